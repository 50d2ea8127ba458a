// `pod-gateway lab demo`: builds a lab, runs this binary's roles in it the way the chart and
// the webhook do, checks what a user cares about (address, exit address, DNS, port forward,
// kill switch) and gathers one StepResult per step for renderDemoReport. Roles that are not
// written yet report "not implemented yet"; checks that depend on them are skipped.
import { readFileSync } from "node:fs";
import { createLab, selfCommand, startDaemon, type Lab } from "./lab.ts";
import { isAlive } from "./procs.ts";
import { classifyRoleExit, type StepResult, type StepStatus } from "./report.ts";
import { LAB, type EchoHost, type LabOptions, type PodName } from "./types.ts";

export interface DemoOptions {
  clients?: number;
  /** Leave the lab up afterwards. */
  keep?: boolean;
  /** Appended to the lab's settings.sh (e.g. to show what a disabled kill switch lets through). */
  extraSettings?: string;
  /** The lab's VPN: the veth stand-in (default) or a real OpenVPN server and client. */
  vpn?: LabOptions["vpn"];
  openvpn?: LabOptions["openvpn"];
  /** Called as each step finishes (progress output). */
  onStep?: (s: StepResult) => void;
}

/** client-0 gets a static overlay address and a port forward; the others use DHCP. */
export const DEMO_STATIC_OCTET = 10;
export const DEMO_FORWARD_PORT = 8080;
export const DEMO_GATEWAY_METRICS_PORT = 9100;
export const DEMO_CLIENT_METRICS_PORT = 9101;
const OVERLAY = "172.16.0"; // the shipped VXLAN_IP_NETWORK; the gateway is .1
const ROLE_TIMEOUT_MS = 30_000;
const ANY_EXIT = Array.from({ length: 255 }, (_, i) => i + 1);

type Outcome = { status: StepStatus; detail?: string };

export async function runDemo(opts: DemoOptions = {}): Promise<{ labId: string; steps: StepResult[] }> {
  const steps: StepResult[] = [];
  const add = (s: StepResult) => {
    steps.push(s);
    opts.onStep?.(s);
  };
  const timed = async (name: string, f: () => Promise<Outcome>): Promise<StepStatus> => {
    const t0 = performance.now();
    let r: Outcome;
    try {
      r = await f();
    } catch (e) {
      r = { status: "failed", detail: (e as Error).message.split("\n")[0] };
    }
    add({ name, ms: performance.now() - t0, ...r });
    return r.status;
  };
  const skip = (name: string, why: string) => add({ name, status: "skipped", detail: why });

  const clients = Math.max(1, opts.clients ?? 2);
  let lab: Lab | undefined;
  await timed("lab up", async () => {
    lab = await createLab({
      clients,
      createdBy: "lab demo",
      // Metrics on for the demo (off by default): the report shows a few values from both sidecars.
      extraSettings: `GATEWAY_METRICS_PORT=${DEMO_GATEWAY_METRICS_PORT}\nCLIENT_METRICS_PORT=${DEMO_CLIENT_METRICS_PORT}\n` + (opts.extraSettings ?? ""),
      natConf: `# the demo: client-0 has a static address and a port forward\nclient-0 ${DEMO_STATIC_OCTET} tcp:${DEMO_FORWARD_PORT}\n`,
      vpn: opts.vpn,
      openvpn: opts.openvpn,
      // The real VPN client connects once the gateway's own containers run (a step below), as
      // when the VPN container is slower to start than gateway-sidecar.
      vpnLink: opts.vpn === "openvpn" ? "deleted" : "up",
    });
    const vpn = lab.vpnKind === "openvpn" ? `OpenVPN ${lab.openvpn().settings.proto}/${lab.openvpn().settings.port} on ${lab.vpnInterface}` : `VPN interface ${lab.vpnInterface} (veth stand-in)`;
    return { status: "ok", detail: `lab ${lab.id}: ${clients} client pod(s), ${vpn}` };
  });
  if (!lab) return { labId: "-", steps };
  const l = lab;
  const self = selfCommand();

  try {
    // The port forward's target: a service in client-0 that reports who connected.
    await startDaemon(l, "client-0", "echo-client-0", [...self, "lab", "echo", "--tcp", String(DEMO_FORWARD_PORT)]);

    const gwInit = await timed("gateway-init", () => runRole(l, "gateway", "gateway-init"));
    let gwSidecar: StepStatus = "skipped";
    if (gwInit === "ok") {
      gwSidecar = await timed("gateway-sidecar", () =>
        startRole(l, "gateway", "gateway-sidecar", async () => (await l.resolve("gateway", LAB.apiServerName, { server: `${OVERLAY}.1`, timeoutMs: 300 })).ok),
      );
    } else skip("gateway-sidecar", "needs gateway-init");
    if (gwSidecar === "ok") {
      // What a VPN client does once connected: point the pod's resolv.conf at the VPN's DNS, in
      // place. The real OpenVPN client's up script did that already; the stand-in's is done here.
      await timed(l.vpnKind === "openvpn" ? "VPN client connects, sets its DNS" : "VPN client sets its DNS", async () => {
        if (l.vpnKind === "openvpn") {
          await l.setVpnLink("up");
          const text = readFileSync(l.resolvConfPath("gateway"), "utf8");
          const ok = text.includes(`nameserver ${LAB.vpnDnsIp}`);
          return {
            status: ok ? "ok" : "failed",
            detail: ok ? `${l.vpnInterface} up with the pushed routes; OpenVPN's up script wrote nameserver ${LAB.vpnDnsIp} (pushed by the server)` : `gateway resolv.conf: ${JSON.stringify(text)}`,
          };
        }
        await l.writeResolvConf("gateway", `nameserver ${LAB.vpnDnsIp}\n`);
        return { status: "ok", detail: `gateway resolv.conf → nameserver ${LAB.vpnDnsIp}` };
      });
    }
    const gatewayUp = gwInit === "ok" && gwSidecar === "ok";

    const routed: PodName[] = [];
    for (const c of l.clients as PodName[]) {
      const init = await timed(`${c}: client-init`, () => runRole(l, c, "client-init"));
      if (init !== "ok") {
        skip(`${c}: client-sidecar`, "needs client-init");
        continue;
      }
      const side = await timed(`${c}: client-sidecar`, () => startRole(l, c, "client-sidecar", async () => true));
      await timed(`${c}: address`, () => describeAddress(l, c));
      if (side === "ok" && gatewayUp) routed.push(c);
    }

    const needs = !gatewayUp ? "needs the gateway roles" : "needs a routed client";
    const c0 = routed[0];
    for (const c of routed) {
      await timed(`${c}: internet sees`, async () => {
        const r = await l.echoFrom(c, "internet", "tcp");
        if (!r.ok) return { status: "failed", detail: r.error };
        const ok = r.source.startsWith(`${LAB.vpnGatewayIp}:`);
        return { status: ok ? "ok" : "failed", detail: `${r.source}${ok ? " (the gateway's VPN address)" : `, expected ${LAB.vpnGatewayIp}`}` };
      });
      await timed(`${c}: DNS via gateway`, async () => {
        const r = await l.resolve(c, LAB.internetName, { server: `${OVERLAY}.1` });
        const ok = r.ok && r.addresses.includes(LAB.internetIp);
        return { status: ok ? "ok" : "failed", detail: ok ? `${LAB.internetName} → ${r.addresses.join(", ")} from ${OVERLAY}.1 (answered by the VPN's DNS)` : r.error };
      });
    }
    if (routed.includes("client-0")) {
      await timed(`port forward tcp ${DEMO_FORWARD_PORT} → client-0`, async () => {
        const r = await l.echoFrom("internet", LAB.vpnGatewayIp, "tcp", { port: DEMO_FORWARD_PORT });
        return r.ok
          ? { status: "ok", detail: `internet → ${LAB.vpnGatewayIp}:${DEMO_FORWARD_PORT} reached client-0 (it saw ${r.source})` }
          : { status: "failed", detail: r.error };
      });
    } else skip(`port forward tcp ${DEMO_FORWARD_PORT} → client-0`, routed.length ? "needs client-0 routed" : needs);

    // What the kubelet's exec probes and a Prometheus would see.
    if (gatewayUp) {
      await timed("gateway: health --ready", () => probeStep(l, "gateway"));
      await timed("gateway: metrics", () => metricsStep(l, "gateway", DEMO_GATEWAY_METRICS_PORT, ["pod_gateway_gateway_dnsmasq_up", "pod_gateway_gateway_firewall_verified", "pod_gateway_gateway_vpn_interface_up", "pod_gateway_gateway_dhcp_leases"]));
    }
    if (c0) {
      await timed(`${c0}: health --ready`, () => probeStep(l, c0));
      await timed(`${c0}: metrics`, () => metricsStep(l, c0, DEMO_CLIENT_METRICS_PORT, ["pod_gateway_client_gateway_reachable", "pod_gateway_client_probe_rtt_seconds_count", "pod_gateway_client_recoveries_total"]));
    }

    if (c0) {
      for (const state of ["down", "deleted"] as const) {
        await timed(`kill switch, VPN link ${state}`, () => killSwitchHolds(l, c0, state));
      }
      await timed(l.vpnKind === "openvpn" ? "VPN link back up (OpenVPN client restarted)" : "VPN link back up", async () => {
        await l.setVpnLink("up");
        const r = await l.echoFrom(c0, "internet", "tcp", { timeoutMs: 5000 });
        return r.ok ? { status: "ok", detail: `${c0} reaches the internet again (seen as ${r.source})` } : { status: "failed", detail: r.error };
      });
    } else {
      for (const n of ["internet sees", "DNS via gateway"]) skip(`client: ${n}`, needs);
      skip("kill switch", needs);
    }
  } finally {
    if (!opts.keep) await timed("lab down", async () => (await l.destroy(), { status: "ok" as const }));
  }
  return { labId: l.id, steps };
}

/** `pod-gateway health --ready` in the pod, as the kubelet's exec probe runs it. */
async function probeStep(lab: Lab, pod: PodName): Promise<Outcome> {
  const r = await lab.exec(pod, [...selfCommand(), "health", "--ready"], { okCodes: [1] });
  return { status: r.code === 0 ? "ok" : "failed", detail: r.stdout.trim() || r.stderr.trim() };
}

/** A scrape of the sidecar's /metrics from inside its pod; a few values for the report. */
async function metricsStep(lab: Lab, pod: PodName, port: number, names: readonly string[]): Promise<Outcome> {
  const r = await lab.exec(pod, [...selfCommand(), "lab", "get", `http://127.0.0.1:${port}/metrics`], { okCodes: [1] });
  if (r.code !== 0) return { status: "failed", detail: r.stderr.trim().split("\n").at(-1) };
  const values = names.map((n) => {
    const line = r.stdout.split("\n").find((l) => l.startsWith(`${n} `));
    return `${n.replace(/^pod_gateway_(client|gateway)_/, "")}=${line ? line.slice(n.length + 1) : "?"}`;
  });
  return { status: values.some((v) => v.endsWith("=?")) ? "failed" : "ok", detail: `:${port}/metrics ${values.join(" ")}` };
}

function timeout<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let t: Timer | undefined;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: no result after ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

/** An init-container role: run to completion with the environment the chart/webhook give it. */
async function runRole(lab: Lab, pod: PodName, command: string): Promise<Outcome> {
  const r = await timeout(ROLE_TIMEOUT_MS, command, lab.exec(pod, [...selfCommand(), command], { env: lab.roleEnv(pod), okCodes: ANY_EXIT }));
  return classifyRoleExit(r.code, r.stderr);
}

/**
 * A long-running role, started as a lab daemon (it keeps running after `lab demo --keep`
 * exits; its log is <runDir>/logs/<pod>-<command>.log); ok once `ready` says so while it runs.
 */
async function startRole(lab: Lab, pod: PodName, command: string, ready: () => Promise<boolean>, ms = 10_000): Promise<Outcome> {
  const { pid, logFile } = await startDaemon(lab, pod, `${pod}-${command}`, [...selfCommand(), command], { env: lab.roleEnv(pod) });
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    await Bun.sleep(100);
    if (!isAlive(pid)) {
      // An orphan's exit code is not ours to read: judge by what it logged. A sidecar that
      // exits at all is not running, which is a failure here.
      const log = readFileSync(logFile, "utf8");
      const c = classifyRoleExit(1, log);
      return c.status === "not-implemented" ? c : { status: "failed", detail: `exited${c.detail.replace(/^exit 1/, "")}` };
    }
    if (await ready()) return { status: "ok", detail: `running (pid ${pid})` };
  }
  return { status: "failed", detail: `still not ready after ${ms} ms (log: ${logFile})` };
}

interface IpAddrJson {
  addr_info?: { family: string; local: string; prefixlen: number; valid_life_time?: number }[];
}

/** The client's overlay address and how it got it (a finite lifetime means a DHCP lease). */
async function describeAddress(lab: Lab, pod: PodName): Promise<Outcome> {
  const r = await lab.exec(pod, ["ip", "-j", "addr", "show", "dev", "vxlan0"], { okCodes: [1] });
  if (r.code !== 0) return { status: "failed", detail: `no vxlan0: ${r.stderr.trim()}` };
  const links = JSON.parse(r.stdout || "[]") as IpAddrJson[];
  const a = links[0]?.addr_info?.find((x) => x.family === "inet");
  if (!a) return { status: "failed", detail: "vxlan0 has no IPv4 address" };
  const forever = a.valid_life_time === undefined || a.valid_life_time >= 0xffffffff;
  const how = forever ? (pod === "client-0" ? "static, from nat.conf" : "static") : `DHCP lease, ${a.valid_life_time} s left`;
  return { status: "ok", detail: `${a.local}/${a.prefixlen} on vxlan0 (${how})` };
}

async function totalPackets(lab: Lab): Promise<Record<EchoHost, number>> {
  const [i, k] = await Promise.all([lab.packetsSeen("internet"), lab.packetsSeen("leak")]);
  return { internet: i.packets, leak: k.packets };
}

/** With the VPN link down or deleted, a client's probes must fail and reach neither host. */
async function killSwitchHolds(lab: Lab, client: PodName, state: "down" | "deleted"): Promise<Outcome> {
  await lab.setVpnLink(state);
  const before = await totalPackets(lab);
  const probes = await Promise.all([
    lab.echoFrom(client, "internet", "tcp", { timeoutMs: 1000 }),
    lab.echoFrom(client, "internet", "udp", { timeoutMs: 1000 }),
    lab.echoFrom(client, "leak", "tcp", { timeoutMs: 1000 }),
  ]);
  const after = await totalPackets(lab);
  const answered = probes.filter((p) => p.ok).length;
  const leaked = after.internet - before.internet + (after.leak - before.leak);
  const detail = `${probes.length - answered}/${probes.length} probes blocked; ${after.internet - before.internet} packet(s) reached the internet host, ${after.leak - before.leak} the leak host`;
  return { status: answered === 0 && leaked === 0 ? "ok" : "failed", detail };
}
