// `pod-gateway doctor`: what a person runs with `kubectl exec <pod> -c <container> -- pod-gateway
// doctor` (no shell, ping or dig in the image). Detects the role from what it finds, checks in
// order, prints one ✓/✗ line per check with cause and fix for each ✗; exit 0 when all pass, 1
// otherwise. Reads only: netlink dumps and route lookups, DNS queries, the sidecar's status socket,
// files, firewall reads. Every network question has a deadline; the whole run stays under 5 s.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { defineCommand } from "citty";
import { ISOLATION_PROBES_V4, ISOLATION_PROBES_V6 } from "../core/client/constants.ts";
import type { ClientFacts } from "../core/client/facts.ts";
import { decideIsolation, type RouteGetResult } from "../core/client/isolation.ts";
import { checkClientVxlan, checkForwarding, checkIsolation, checkLease, checkReadiness, checkRecentDrops, checkRoute, checkRoutingLayer, detectRole, fail, pass, renderDoctor, renderDoctorJson, type Check, type DoctorRole } from "../core/doctor.ts";
import { UsageError } from "../core/errors.ts";
import { decideHealth, parseStatus, type GatewayStatus } from "../core/health.ts";
import { dhcpPoolSize, parseDnsmasqLeases } from "../core/metrics/gateway.ts";
import { gatewayOverlayIp } from "../core/net/vxlan.ts";
import { parseResolvConf } from "../core/resolv.ts";
import type { ResolvedConfig } from "../core/settings/types.ts";
import { configDirArg } from "./args.ts";
import { DEFAULT_RUN_DIR } from "./gateway-sidecar.ts";

/** Each DNS question's deadline: the whole run must end within 5 s. */
const DNS_TIMEOUT_MS = 800;

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

async function loadSettings(configDir: string | undefined): Promise<{ cfg?: ResolvedConfig; check: (role: DoctorRole | undefined) => Check }> {
  const { loadConfig } = await import("../sys/config.ts");
  const warnings: string[] = [];
  try {
    const cfg = loadConfig({ configDir, onWarning: (w) => warnings.push(w) });
    const s = cfg.settings;
    const check = (role: DoctorRole | undefined) => {
      const what =
        role === "gateway"
          ? `VPN interface ${s.VPN_INTERFACE}, kill switch ${s.VPN_BLOCK_OTHER_TRAFFIC ? "on" : "off"}, firewall ${s.FIREWALL_BACKEND}, ${cfg.nat.length} nat.conf entr${cfg.nat.length === 1 ? "y" : "ies"}`
          : `gateway ${s.GATEWAY_NAME || "(unset)"}, cluster DNS ${s.K8S_DNS_IPS.join(" ") || "(unset)"}, probe every ${s.CLIENT_PROBE_INTERVAL} s`;
      const summary = `${cfg.files.join(", ")}; overlay ${s.VXLAN_IP_NETWORK}.0/24, VNI ${s.VXLAN_ID}, ${what}`;
      if (warnings.length) return fail("settings", `${summary}; ${warnings.length} warning(s): ${warnings.join("; ")}`, "a setting is misspelt, unknown or doubtful", "fix the keys named in the ConfigMap's settings.sh");
      return pass("settings", summary);
    };
    return { cfg, check };
  } catch (e) {
    const message = messageOf(e);
    return { check: () => fail("settings", message, "settings.sh or nat.conf is invalid (file and line above)", "fix the ConfigMap mounted at /config, then restart the pod") };
  }
}

/** The client-sidecar's answer to "ready", decided as `health --ready` decides it. */
async function sidecarReadiness(): Promise<{ ok: boolean; line: string } | { error: string }> {
  const { askStatus } = await import("../sys/status-socket.ts");
  const r = await askStatus("client-sidecar", "ready", 1500);
  if (!r.ok) return { error: r.error };
  try {
    return decideHealth(parseStatus(r.text), "ready");
  } catch (e) {
    return { error: messageOf(e) };
  }
}

async function sidecarStatus(role: "client-sidecar" | "gateway-sidecar") {
  const { askStatus } = await import("../sys/status-socket.ts");
  const r = await askStatus(role, "live", 400);
  if (!r.ok) return undefined;
  try {
    return parseStatus(r.text);
  } catch {
    return undefined;
  }
}

async function lookup(name: string, server: string): Promise<{ ok: true; addrs: string[]; ms: number } | { ok: false; error: string }> {
  const { lookupA } = await import("../sys/dns.ts");
  const t0 = performance.now();
  try {
    return { ok: true, addrs: await lookupA(name, server, DNS_TIMEOUT_MS), ms: performance.now() - t0 };
  } catch (e) {
    return { ok: false, error: (e as NodeJS.ErrnoException).code ?? messageOf(e) };
  }
}

async function probe(ip: string): Promise<{ ok: boolean; detail: string }> {
  const { probeDns } = await import("../sys/probe.ts");
  const r = await probeDns(ip, { timeoutMs: DNS_TIMEOUT_MS });
  return r.alive ? { ok: true, detail: `answered ${r.rcode} in ${r.rttMs.toFixed(1)} ms` } : { ok: false, detail: r.detail };
}

async function readNetwork(dsts: readonly string[]): Promise<{ facts: ClientFacts; routes: RouteGetResult[] } | { error: string }> {
  const { NetlinkClientHost } = await import("../sys/client-host.ts");
  const host = new NetlinkClientHost();
  try {
    return await host.readFactsAndRoutes(dsts);
  } catch (e) {
    return { error: messageOf(e) };
  } finally {
    host.close();
  }
}

interface DoctorOptions {
  clusterName?: string;
  /** A client-sidecar answers on its status socket: its readiness is shown too. */
  clientSidecar?: boolean;
  internetName: string;
  runDir: string;
}

async function clientChecks(cfg: ResolvedConfig, o: DoctorOptions): Promise<Check[]> {
  const s = cfg.settings;
  const checks: Check[] = [];
  const overlayGw = gatewayOverlayIp(s.VXLAN_IP_NETWORK);
  const clusterDns = s.K8S_DNS_IPS.find((a) => a.includes("."));
  const apiServer = process.env.KUBERNETES_SERVICE_HOST;
  const internet = ISOLATION_PROBES_V4[0]!;
  const dsts = [...(clusterDns ? [clusterDns] : []), ...(apiServer?.includes(".") ? [apiServer] : []), internet];
  // The lookups the sidecar's readiness and isolation watch make (readIsolation): the same verdict.
  const isolationDsts = [...ISOLATION_PROBES_V4, ...ISOLATION_PROBES_V6];

  // The gateway's name through the cluster DNS (read first: vxlan0's remote is compared with it).
  let gatewayPodIp: string | undefined;
  const [net, gwName] = await Promise.all([
    readNetwork([...dsts, ...isolationDsts]),
    clusterDns && s.GATEWAY_NAME ? lookup(s.GATEWAY_NAME, clusterDns) : Promise.resolve(undefined),
  ]);
  let nameCheck: Check;
  if (!s.GATEWAY_NAME) nameCheck = fail("gateway name", "GATEWAY_NAME is empty", "the webhook or chart did not pass $gateway", "set GATEWAY_NAME in settings.sh or the gateway env");
  else if (!clusterDns) nameCheck = fail("gateway name", "no IPv4 cluster DNS server (K8S_DNS_IPS)", "the webhook did not pass $K8S_DNS_ips", "set K8S_DNS_IPS in settings.sh");
  else if (gwName?.ok && gwName.addrs.length) {
    gatewayPodIp = gwName.addrs[0];
    nameCheck = pass("gateway name", `${s.GATEWAY_NAME} → ${gwName.addrs.join(" ")} (cluster DNS ${clusterDns}, ${gwName.ms.toFixed(1)} ms)`);
  } else
    nameCheck = fail("gateway name", `${s.GATEWAY_NAME} through ${clusterDns}: ${gwName && !gwName.ok ? gwName.error : "no address"}`, "the gateway pod is not running or not ready (a not-ready pod leaves its headless Service), or GATEWAY_NAME is wrong", "kubectl get pods -l <gateway selector>; run `pod-gateway doctor` in the gateway; check GATEWAY_NAME");

  if ("error" in net) {
    checks.push(fail("network", `reading links and routes over netlink: ${net.error}`, "the container lacks NET_ADMIN or netlink is blocked", "run doctor in the client-sidecar container (it has NET_ADMIN)"));
    checks.push(nameCheck);
    return checks;
  }
  checks.push(checkClientVxlan(net.facts.vxlan, s.VXLAN_IP_NETWORK, gatewayPodIp));
  let i = 0;
  if (clusterDns) checks.push(checkRoute("route to the cluster", "cluster DNS", net.routes[i++]!, "eth0"));
  if (apiServer?.includes(".")) checks.push(checkRoute("route to the API server", "API server", net.routes[i++]!, "eth0"));
  checks.push(checkRoute("route to the internet", "internet address", net.routes[i++]!, "vxlan0"));
  checks.push(checkIsolation(decideIsolation(net.routes.slice(dsts.length))));
  checks.push(nameCheck);

  const clusterName = o.clusterName ?? (s.GATEWAY_NAME && !/^[0-9.:]+$/.test(s.GATEWAY_NAME) ? s.GATEWAY_NAME : "kubernetes.default.svc.cluster.local");
  const [p, cl, inet] = await Promise.all([probe(overlayGw), lookup(clusterName, overlayGw), lookup(o.internetName, overlayGw)]);
  checks.push(
    p.ok
      ? pass("gateway answers", `DNS probe of ${overlayGw} through vxlan0 ${p.detail}`)
      : fail("gateway answers", `DNS probe of ${overlayGw} through vxlan0: ${p.detail}`, "the gateway pod or its dnsmasq is down, the tunnel points at an old gateway IP, or UDP VXLAN_PORT is blocked between the pods (NetworkPolicy)", "run `pod-gateway doctor` in the gateway; check vxlan0's remote above; allow UDP to the gateway on the VXLAN port"),
  );
  checks.push(
    cl.ok && cl.addrs.length
      ? pass("cluster name via gateway", `${clusterName} → ${cl.addrs.join(" ")} (${cl.ms.toFixed(1)} ms)`)
      : fail("cluster name via gateway", `${clusterName} through ${overlayGw}: ${cl.ok ? "no address" : cl.error}`, "the gateway's dnsmasq does not forward the cluster's domain to the cluster DNS", "add the cluster domain to DNS_LOCAL_CIDRS (e.g. \"local\") and check DNS_LOCAL_SERVER in the gateway"),
  );
  checks.push(
    inet.ok && inet.addrs.length
      ? pass("internet name via gateway", `${o.internetName} → ${inet.addrs.join(" ")} (${inet.ms.toFixed(1)} ms)`)
      : fail("internet name via gateway", `${o.internetName} through ${overlayGw}: ${inet.ok ? "no address" : inet.error}`, "the gateway has no working upstream DNS (the VPN is down, or its resolv.conf has no nameserver)", "run `pod-gateway doctor` in the gateway (VPN link, upstream DNS)"),
  );
  checks.push(checkLease(net.facts.vxlan, s.VXLAN_IP_NETWORK, Date.now() / 1000));
  // What `pod-gateway health --ready` would say, when a client-sidecar runs in this pod.
  if (o.clientSidecar) checks.push(checkReadiness(await sidecarReadiness()));
  return checks;
}

async function gatewayChecks(cfg: ResolvedConfig, o: DoctorOptions, status: GatewayStatus | undefined): Promise<Check[]> {
  const s = cfg.settings;
  const checks: Check[] = [];
  const overlayGw = gatewayOverlayIp(s.VXLAN_IP_NETWORK);
  const internet = ISOLATION_PROBES_V4[0]!;
  // The copy of resolv.conf dnsmasq reads: its upstreams are looked up with the internet address.
  let upstreams: string[] | undefined;
  let upstreamError: string | undefined;
  try {
    upstreams = parseResolvConf(readFileSync(s.RESOLV_CONF_COPY, "utf8")).ipv4;
  } catch (e) {
    upstreamError = (e as NodeJS.ErrnoException).code ?? messageOf(e);
  }
  const net = await readNetwork([internet, ...(upstreams ?? [])]);
  // vxlan0: exists, up, holds the overlay's .1.
  if ("error" in net) checks.push(fail("vxlan0", `reading links over netlink: ${net.error}`, "the container lacks NET_ADMIN", "run doctor in the gateway-sidecar container"));
  else {
    const vx = net.facts.vxlan;
    if (!vx) checks.push(fail("vxlan0", "vxlan0 does not exist", "gateway-init did not run or failed", "read gateway-init's log; restart the gateway pod"));
    else if (!vx.up) checks.push(fail("vxlan0", "vxlan0 is down", "something set the link down", "restart the gateway pod"));
    else if (!vx.addresses.some((a) => a.local === overlayGw)) checks.push(fail("vxlan0", `vxlan0 does not hold ${overlayGw}`, "gateway-init ran with another VXLAN_IP_NETWORK, or the address was removed", "use the same settings in gateway and clients; restart the gateway pod"));
    else checks.push(pass("vxlan0", `up, ${overlayGw}/24, VNI ${vx.vni ?? "?"}, MTU ${vx.mtu}`));
  }
  let fwd: string | undefined;
  try {
    fwd = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
  } catch {}
  checks.push(checkForwarding(fwd));

  // The firewall, read back and compared with the plan (reads only).
  try {
    const [{ openFirewall }, { ProcessRunner }, { planFirewall }, { createLogger }] = await Promise.all([
      import("../roles/gateway-init.ts"),
      import("../sys/exec.ts"),
      import("../core/firewall/model.ts"),
      import("../sys/log.ts"),
    ]);
    const quiet = createLogger({ LOG_LEVEL: "silent" });
    const { backend } = await openFirewall(cfg, new ProcessRunner(), quiet);
    const problems = await backend.verify(planFirewall(s, cfg.nat));
    checks.push(
      problems.length === 0
        ? pass("firewall", `verified (${backend.name})${s.VPN_BLOCK_OTHER_TRAFFIC ? ", kill switch on" : ""}`)
        : fail("firewall", `${backend.name}: ${problems.join("; ")}`, "another container (the VPN client) changed the rules, or the gateway-sidecar is not running to re-assert them", "check the gateway-sidecar's log (it re-asserts every few seconds); restart the gateway pod if it persists"),
    );
  } catch (e) {
    checks.push(fail("firewall", `reading the firewall: ${messageOf(e)}`, "iptables/nft missing or the container lacks NET_ADMIN", "run doctor in the gateway-sidecar container"));
  }

  // The routing layer, re-planned from the kernel (reads only).
  checks.push(checkRoutingLayer(await readRoutingLayer(s, upstreams ?? [])));

  // The VPN link and its routes.
  const { readLinkUp } = await import("../sys/gateway-telemetry.ts");
  const up = readLinkUp(s.VPN_INTERFACE);
  const route = "error" in net ? undefined : net.routes[0];
  if (up === undefined) checks.push(fail("VPN link", `${s.VPN_INTERFACE} does not exist`, "the VPN client is not connected (or VPN_INTERFACE names another interface)", "check the VPN client's container log; set VPN_INTERFACE to its interface"));
  else if (!up) checks.push(fail("VPN link", `${s.VPN_INTERFACE} is down (no carrier)`, "the VPN client lost its connection", "check the VPN client's container log"));
  else if (!route?.ok || route.dev !== s.VPN_INTERFACE)
    checks.push(fail("VPN link", `${s.VPN_INTERFACE} up, but ${internet} goes ${route ? (route.ok ? `dev ${route.dev}` : route.message) : "?"}`, "the VPN client did not install its routes", "check the VPN client's configuration (redirect-gateway / AllowedIPs)"));
  else checks.push(pass("VPN link", `${s.VPN_INTERFACE} up; ${internet} via dev ${route.dev}`));

  // Upstream DNS, and the way each one is routed (through the VPN interface or around it).
  if (upstreamError) checks.push(fail("upstream DNS", `${s.RESOLV_CONF_COPY}: ${upstreamError}`, "the gateway-sidecar has not started (it writes the copy)", "check the gateway-sidecar's log"));
  const via = (i: number) => {
    const r = "error" in net ? undefined : net.routes[1 + i];
    return !r ? "" : r.ok ? ` via dev ${r.dev ?? "?"}${r.dev === s.VPN_INTERFACE ? " (through the VPN)" : ""}` : ` (${r.message})`;
  };
  if (upstreams) checks.push(upstreams.length ? pass("upstream DNS", `${upstreams.map((u, i) => `${u}${via(i)}`).join(", ")} (from ${s.RESOLV_CONF_COPY})`) : fail("upstream DNS", `${s.RESOLV_CONF_COPY} has no IPv4 nameserver`, "the VPN client wrote no nameserver", "configure the VPN client to set DNS (or push one)"));

  // dnsmasq: running (the sidecar's status) and answering on the overlay.
  const p = await probe(overlayGw);
  if (!status) checks.push(fail("dnsmasq", "no gateway-sidecar answers on @pod-gateway/gateway-sidecar", "the gateway-sidecar is not running in this pod", "kubectl logs <gateway pod> -c <sidecar container>"));
  else if (!status.dnsmasqRunning) checks.push(fail("dnsmasq", "dnsmasq is not running", "dnsmasq exited (see the sidecar's log)", "the container restarts; read its log for dnsmasq's error"));
  else if (!p.ok) checks.push(fail("dnsmasq", `running but ${overlayGw}:53 does not answer: ${p.detail}`, "dnsmasq is not bound to vxlan0, or a firewall rule drops DNS", "check the firewall line above and dnsmasq's log"));
  else checks.push(pass("dnsmasq", `running; ${overlayGw}:53 ${p.detail}`));

  // Leases of the pool.
  const pool = dhcpPoolSize(s.VXLAN_GATEWAY_FIRST_DYNAMIC_IP);
  let text: string | undefined;
  try {
    text = readFileSync(join(o.runDir, "dnsmasq.leases"), "utf8");
  } catch {}
  if (text === undefined) checks.push(fail("leases", `${join(o.runDir, "dnsmasq.leases")} is missing`, "dnsmasq has not written its lease file (or --run-dir differs from the sidecar's)", "pass the sidecar's --run-dir (or POD_GATEWAY_RUN_DIR)"));
  else {
    const now = Date.now() / 1000;
    const live = parseDnsmasqLeases(text).filter((l) => l.expiry === 0 || l.expiry > now).length;
    checks.push(live >= pool ? fail("leases", `${live} of ${pool} in use`, "the DHCP pool is exhausted", "lower VXLAN_GATEWAY_FIRST_DYNAMIC_IP or shorten DHCP_LEASE_TIME") : pass("leases", `${live} of ${pool} in use`));
  }
  checks.push(checkRecentDrops(status?.drops, s.VPN_BLOCK_OTHER_TRAFFIC && s.VPN_INTERFACE !== "", up));
  return checks;
}

/** The kill switch's routing layer as planned from the kernel's routes and rules now, open and closed. */
async function readRoutingLayer(s: ResolvedConfig["settings"], nameservers: readonly string[]): Promise<Parameters<typeof checkRoutingLayer>[0]> {
  const [{ NetlinkGatewayNet }, { readRoutingFacts, routingInputFor }, { planDnsUpstreams, planKillSwitch, summarizeKillSwitch }, { readClusterDnsRecord }, { formatChange }] = await Promise.all([
    import("../sys/gateway-host.ts"),
    import("../roles/gateway-killswitch.ts"),
    import("../core/gateway/killswitch.ts"),
    import("../core/gateway/plan.ts"),
    import("../core/net/change.ts"),
  ]);
  const net = new NetlinkGatewayNet();
  try {
    const facts = await readRoutingFacts(net);
    // The DNS upstreams pinned through the VPN: as the sidecar decides them (less loopback and the cluster DNS it recorded).
    const dns = planDnsUpstreams(nameservers, readClusterDnsRecord(facts.main)).upstreams;
    const plan = (closed: boolean) => {
      const input = routingInputFor(s, dns, closed)(facts.main);
      return { input, plan: planKillSwitch(input, facts) };
    };
    const open = plan(false);
    return {
      enabled: open.input.enabled,
      summary: summarizeKillSwitch(open.plan, open.input),
      // What is missing or wrong, as the change that would fix it and why it is needed.
      open: open.plan.actions.map((a) => `needs ${formatChange(a)} (${a.why})`),
      closed: plan(true).plan.actions.map((a) => a.why),
    };
  } catch (e) {
    return { error: messageOf(e) };
  } finally {
    net.close();
  }
}

export default defineCommand({
  meta: {
    name: "doctor",
    description: "Check this pod's routing (client) or gateway, one line per check with the likely cause and fix of each failure. Changes nothing. Exit 0 when all pass.",
  },
  args: {
    ...configDirArg,
    json: { type: "boolean", description: "Print JSON", default: false },
    role: { type: "string", description: "client or gateway (default: detected)", valueHint: "ROLE" },
    "internet-name": { type: "string", description: "A name the VPN's DNS resolves (default example.com)", valueHint: "NAME" },
    "cluster-name": { type: "string", description: "A cluster name to resolve through the gateway (default GATEWAY_NAME)", valueHint: "NAME" },
    "run-dir": { type: "string", description: `The gateway-sidecar's run dir (default: $POD_GATEWAY_RUN_DIR or ${DEFAULT_RUN_DIR})`, valueHint: "DIR" },
  },
  async run({ args }) {
    if (args.role !== undefined && args.role !== "client" && args.role !== "gateway") throw new UsageError(`--role ${JSON.stringify(args.role)} is not client or gateway`);
    const [settings, client, gateway] = await Promise.all([loadSettings(args["config-dir"]), sidecarStatus("client-sidecar"), sidecarStatus("gateway-sidecar")]);
    let role = args.role as DoctorRole | undefined;
    let why = "--role";
    if (!role) {
      const { readLinkUp } = await import("../sys/gateway-telemetry.ts");
      const net = await readNetwork([]);
      const vx = "error" in net ? undefined : net.facts.vxlan;
      const d = detectRole({
        clientSidecar: client !== undefined,
        gatewaySidecar: gateway !== undefined,
        vxlan: vx ? (vx.remote ? "client" : "gateway") : undefined,
        vpnInterface: settings.cfg ? readLinkUp(settings.cfg.settings.VPN_INTERFACE) !== undefined : false,
      });
      role = d.role;
      why = d.why;
    }
    const checks: Check[] = [settings.check(role)];
    if (!role) checks.push(fail("role", why, "neither client-init nor gateway-init has run in this pod", "run doctor in a routed pod's sidecar container or in the gateway pod"));
    else if (settings.cfg) {
      const o: DoctorOptions = { clusterName: args["cluster-name"], internetName: args["internet-name"] ?? "example.com", runDir: args["run-dir"] ?? process.env.POD_GATEWAY_RUN_DIR ?? DEFAULT_RUN_DIR, clientSidecar: client?.role === "client-sidecar" };
      checks.push(...(role === "client" ? await clientChecks(settings.cfg, o) : await gatewayChecks(settings.cfg, o, gateway?.role === "gateway-sidecar" ? gateway : undefined)));
    }
    if (args.json) process.stdout.write(renderDoctorJson(role, why, checks) + "\n");
    else process.stdout.write(renderDoctor(`${role ?? "unknown role"} (${why})`, checks).join("\n") + "\n");
    return checks.every((c) => c.ok) ? 0 : 1;
  },
});
