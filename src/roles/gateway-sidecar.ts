// gateway-sidecar: DHCP and DNS for the overlay. Renders dnsmasq's configuration, keeps the
// resolv.conf copy dnsmasq reads in sync with the pod's /etc/resolv.conf (which the VPN client
// rewrites), keeps the kill switch proven (gateway-killswitch.ts: re-asserts our firewall when
// another container flushes or reorders it, copies the VPN's routes into our routing table,
// fails closed and finally exits 1 when it cannot), holds the client sidecars' watch connections
// (src/sys/watch-server.ts: ended first when we stop), and runs dnsmasq in the foreground: our exit
// code is dnsmasq's.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { StepError } from "../core/errors.ts";
import { planFirewall } from "../core/firewall/model.ts";
import { KILLSWITCH_TABLE } from "../core/firewall/names.ts";
import { planDnsUpstreams } from "../core/gateway/killswitch.ts";
import { LeaseGuard, renderLeaseSeed } from "../core/gateway/leases.ts";
import { readGuardLook, startLeaseGuard } from "../sys/lease-guard.ts";
import { renderDnsmasqConfig } from "../core/dnsmasq/render.ts";
import { DNSMASQ_PROGRAM } from "../core/programs.ts";
import { VXLAN_IF } from "../core/net/vxlan.ts";
import { parseResolvConf, renderResolvCopy } from "../core/resolv.ts";
import { isIPv4 } from "../core/settings/values.ts";
import type { ResolvedConfig } from "../core/settings/types.ts";
import type { Runner } from "../sys/exec.ts";
import { removeStaleFirewall, type FirewallBackend } from "../sys/firewall.ts";
import type { GatewayNet } from "../sys/gateway-host.ts";
import type { Logger } from "../sys/log.ts";
import { forwardSignals, spawnSupervised, type SupervisedChild } from "../sys/supervisor.ts";
import { readRegularFile } from "../sys/files.ts";
import { MAX_CONFIG_FILE_BYTES } from "../core/settings/limits.ts";
import { startDuplicateWatch } from "../sys/duplicates-watch.ts";
import { startDropReport, type DropReport } from "../sys/drop-report.ts";
import type { LoggedPacket } from "../core/netlink/nflog.ts";
import { readRouteSignature } from "../sys/route-signature.ts";
import { watchFile, writeFileAtomic } from "../sys/watch.ts";
import { planWatchListen } from "../core/gateway/watch.ts";
import { startWatchServer } from "../sys/watch-server.ts";
import { openFirewall, reconcileGatewayNetwork } from "./gateway-init.ts";
import { KillSwitchGuard, originalResolvPath } from "./gateway-killswitch.ts";

export { originalResolvPath };

/**
 * A new pod's hold of its first DHCP offers (src/core/gateway/leases.ts, LeaseGuard): until this
 * long without a new client on vxlan0, at most NEW_POD_MAX_HOLD_SECONDS (or twice the hold) after
 * the first one: a herd of new pods at a first deployment is not held longer than that.
 * Clients of a lost gateway look its name up about twice a second (gaps jittered up to 0.75 s)
 * and ARP for .1 at the next probe (every 250 ms): each is seen within about 1 s of the new IP
 * being in the cluster DNS. Our DHCP client's DISCOVERs go out at 0, 0.25, 0.75, 1.75 s, so a
 * hold up to 1.75 s costs the first new client one retransmission.
 */
export const NEW_POD_HOLD_SECONDS = 1.5;
export const NEW_POD_MAX_HOLD_SECONDS = 3;
/** Reservations of clients seen but not yet in the lease file are kept (and learned) this long after the hold. */
export const NEW_POD_LEARN_SECONDS = 120;

/** Full reads of routes and rules at least this often (seconds), whatever the fingerprint says. */
export const ROUTE_FULL_CHECK_SECONDS = 2;

export interface GatewaySidecarPaths {
  /** dnsmasq.conf and the lease file live here (must be writable; e.g. an emptyDir or /run). */
  runDir: string;
  /** The file the VPN client rewrites: /etc/resolv.conf. */
  resolvConf: string;
  /** User dnsmasq drop-ins (default /etc/dnsmasq.d): when the directory exists, its *.conf files are included. */
  dnsmasqDir?: string;
}

/** The *.conf files of a drop-in directory, sorted as dnsmasq reads them; undefined when there is no such directory. */
export function listDropIns(dir: string): string[] | undefined {
  try {
    if (!statSync(dir).isDirectory()) return undefined;
    return readdirSync(dir)
      .filter((f) => f.endsWith(".conf") && !f.startsWith("."))
      .sort();
  } catch {
    return undefined;
  }
}

export interface GatewaySidecarDeps {
  runner: Runner;
  /** Links, addresses, rules, routes, neighbours: rtnetlink (src/sys/gateway-host.ts). */
  net: GatewayNet;
  log: Logger;
  /** Seconds between firewall checks (default 5). */
  firewallCheckSeconds?: number;
  /** Seconds between looks at the routing fingerprint (default 0.2); routes and rules are dumped on a change and every ROUTE_FULL_CHECK_SECONDS. */
  routeCheckSeconds?: number;
  /** The fingerprint (tests inject one); default: /proc/net/route and the VPN link's sysfs files. */
  routeSignature?: () => string;
  /** Consecutive failed firewall checks (or as long in routing checks) before exiting non-zero (default 5). */
  maxFailedChecks?: number;
  firewall?: () => Promise<FirewallBackend>;
  /**
   * A start without a lease file (a new pod) holds dnsmasq's answers to unknown clients until no
   * new client appeared on vxlan0 for this long (s; default NEW_POD_HOLD_SECONDS; 0: no guard).
   */
  newPodHoldSeconds?: number;
  /** dnsmasq command (default "dnsmasq" on PATH). */
  dnsmasq?: string;
  /** Told what the sidecar sees (health status and metrics: src/sys/gateway-telemetry.ts). */
  monitor?: GatewaySidecarMonitor;
}

export interface GatewaySidecarMonitor {
  firewallChecked(r: { problems: readonly string[]; reasserted: boolean; left: readonly string[]; error?: string }): void;
  upstreams(servers: readonly string[], initial: boolean): void;
  dnsmasqStarted(child: { exited: Promise<number> }, leaseFile: string): void;
  /** The kill switch's drop report started (only with the kill switch on): its running counts. */
  dropReport?(r: DropReport): void;
  /** Overlay addresses and MACs behind two or more pod IPs now (after each duplicate poll). */
  duplicates?(counts: { address: number; mac: number }): void;
  /** Packets the kill switch's NFLOG rule logged on eth0 (drained every second). */
  killSwitchDropped?(packets: readonly LoggedPacket[]): void;
  /** Client watch connections held now (GATEWAY_WATCH_PORT; only while listening). */
  watchConnections?(held: number): void;
}

/**
 * Save /etc/resolv.conf once (the first start of the pod): later starts find the VPN client's
 * rewritten file there, not the cluster's. Returns the saved text.
 */
export function saveOriginalResolvConf(resolvConf: string, copy: string, log: Logger): string {
  const orig = originalResolvPath(copy);
  if (existsSync(orig)) return readFileSync(orig, "utf8");
  const text = readFileSync(resolvConf, "utf8");
  mkdirSync(dirname(orig), { recursive: true });
  writeFileSync(orig, text, { flag: "wx", mode: 0o644 });
  log.info(`saved the original ${resolvConf} as ${orig}`);
  return text;
}

/** Bring the copy in line with the source; returns the IPv4 nameservers when it changed, undefined otherwise. */
export function syncResolvCopy(resolvConf: string, copy: string, log: Logger): string[] | undefined {
  // A regular file of bounded size only: a FIFO or a device there must not hang or flood us.
  const r = readRegularFile(resolvConf, MAX_CONFIG_FILE_BYTES);
  if (!r.ok) {
    log.warn(`reading ${resolvConf}: ${r.message}; keeping the current upstreams`);
    return undefined;
  }
  const text = new TextDecoder().decode(r.bytes);
  const parsed = parseResolvConf(text);
  const want = renderResolvCopy(parsed.ipv4, resolvConf);
  let have: string | undefined;
  try {
    have = readFileSync(copy, "utf8");
  } catch {}
  if (have === want) return undefined;
  writeFileAtomic(copy, want);
  for (const s of parsed.skipped) log.debug(`${resolvConf}:${s.line}: skipped (${s.why}): ${s.text.trim()}`);
  if (parsed.ipv4.length === 0) log.warn(`${resolvConf} has no IPv4 nameserver: DNS for clients has no upstream until it does`);
  return parsed.ipv4;
}

export async function runGatewaySidecar(config: ResolvedConfig, paths: GatewaySidecarPaths, deps: GatewaySidecarDeps): Promise<number> {
  const { log, net: host } = deps;
  const s = config.settings;
  const copy = s.RESOLV_CONF_COPY;

  // 1. Files: the original resolv.conf (once), the copy, the runtime dir.
  let original: string;
  try {
    mkdirSync(paths.runDir, { recursive: true });
    mkdirSync(dirname(copy), { recursive: true });
    original = saveOriginalResolvConf(paths.resolvConf, copy, log);
  } catch (e) {
    throw new StepError("preparing the sidecar's files", (e as Error).message, { cause: e });
  }
  if (s.DNS_LOCAL_SERVER && !isIPv4(s.DNS_LOCAL_SERVER)) log.warn(`DNS_LOCAL_SERVER ${s.DNS_LOCAL_SERVER} is not an IPv4 address`);
  let upstreams: string[];
  try {
    upstreams = syncResolvCopy(paths.resolvConf, copy, log) ?? parseResolvConf(readFileSync(copy, "utf8")).ipv4;
  } catch (e) {
    throw new StepError("writing RESOLV_CONF_COPY", `${copy}: ${(e as Error).message}`, { cause: e });
  }

  // 2. The network (vxlan0 must exist: gateway-init made it) as gateway-init would make it for
  // these settings: the ConfigMap may have changed since gateway-init ran, and nothing stale may
  // stay. The cluster DNS comes from DNS_LOCAL_SERVER, else the kernel's record (gateway-init
  // wrote it before any VPN container rewrote resolv.conf; our own filesystem may be fresh from
  // a restart), else the original we saved.
  let mtu = await host.linkMtu(VXLAN_IF);
  if (mtu === undefined) throw new StepError("reading vxlan0", `${VXLAN_IF} does not exist: gateway-init (the init container) must run first`);
  const net = await reconcileGatewayNetwork(s, host, { nameservers: upstreams, clusterDnsCandidates: [parseResolvConf(original).ipv4[0]] }, log);
  if (net.changes) {
    log.info(`network brought in line with the current settings (${net.changes} changes)`);
    mtu = (await host.linkMtu(VXLAN_IF)) ?? mtu;
  }
  const localServer = net.clusterDns;
  deps.monitor?.upstreams(upstreams, true);
  log.info(`upstream DNS: ${upstreams.join(" ") || "none"}; cluster DNS for ${s.DNS_LOCAL_CIDRS.join(" ") || "(no local domains)"}: ${localServer ?? "unknown"}`);

  // 3. dnsmasq configuration.
  const confPath = join(paths.runDir, "dnsmasq.conf");
  const leaseFile = join(paths.runDir, "dnsmasq.leases");
  const hostsFile = join(paths.runDir, "dnsmasq.hosts");
  const dropInDir = paths.dnsmasqDir ?? "/etc/dnsmasq.d";
  const dropIns = listDropIns(dropInDir);
  const conf = renderDnsmasqConfig({ settings: s, nat: config.nat, mtu, localServer, leaseFile, hostsFile, dropInDir: dropIns ? dropInDir : undefined });
  // A fresh filesystem (a restarted container) has no lease file: rebuild it from the clients
  // the kernel knows on vxlan0, so that no new client is given an address still in use. A new
  // pod knows none yet: its first offers are guarded (LeaseGuard, started with dnsmasq below).
  const holdSeconds = deps.newPodHoldSeconds ?? NEW_POD_HOLD_SECONDS;
  const noLeaseFile = !existsSync(leaseFile);
  const guard0 = noLeaseFile && holdSeconds > 0
    ? new LeaseGuard({ network: s.VXLAN_IP_NETWORK, firstDynamic: s.VXLAN_GATEWAY_FIRST_DYNAMIC_IP, quietSeconds: holdSeconds, maxHoldSeconds: Math.max(NEW_POD_MAX_HOLD_SECONDS, 2 * holdSeconds), learnSeconds: NEW_POD_LEARN_SECONDS })
    : undefined;
  try {
    writeFileAtomic(hostsFile, guard0 ? guard0.initialHosts() : "");
  } catch (e) {
    throw new StepError("writing the dnsmasq hosts file", `${hostsFile}: ${(e as Error).message}`, { cause: e });
  }
  if (noLeaseFile)
    try {
      const neighbours = await host.neighbours(VXLAN_IF);
      const seed = renderLeaseSeed(neighbours, { network: s.VXLAN_IP_NETWORK, firstDynamic: s.VXLAN_GATEWAY_FIRST_DYNAMIC_IP, leaseTime: s.DHCP_LEASE_TIME, nowSeconds: Math.floor(Date.now() / 1000) });
      writeFileAtomic(leaseFile, seed);
      if (seed) log.info(`no lease file: ${seed.split("\n").length - 1} lease(s) rebuilt from ${VXLAN_IF}'s neighbours (addresses in use stay with their clients)`);
    } catch (e) {
      log.warn(`rebuilding the lease file from ${VXLAN_IF}'s neighbours: ${(e as Error).message}`);
    }
  // The guard's first look, before dnsmasq starts: clients there already (a restarted sidecar's,
  // in the seed) are named in the hosts file, so the hold line never ignores their renewals.
  if (guard0)
    try {
      const first = guard0.look(await readGuardLook(host, leaseFile, Date.now()));
      if (first.hosts !== undefined) writeFileAtomic(hostsFile, first.hosts);
    } catch (e) {
      log.warn(`reading ${VXLAN_IF}'s neighbours for the hosts file: ${(e as Error).message}`);
    }
  try {
    writeFileAtomic(confPath, conf);
  } catch (e) {
    throw new StepError("writing the dnsmasq configuration", `${confPath}: ${(e as Error).message}`, { cause: e });
  }
  if (dropIns) {
    // A drop-in is the user's dnsmasq syntax: a mistake there must stop us here with dnsmasq's
    // own words, not make dnsmasq exit later in a restart loop.
    log.info(`dnsmasq drop-ins from ${dropInDir}: ${dropIns.length ? dropIns.join(", ") : "none (no *.conf files)"}`);
    try {
      await deps.runner.run([deps.dnsmasq ?? DNSMASQ_PROGRAM, "--test", `--conf-file=${confPath}`], { what: "checking the dnsmasq configuration with the drop-ins" });
    } catch (e) {
      throw new StepError(`checking the dnsmasq drop-ins in ${dropInDir}`, (e as Error).message, { cause: e });
    }
  }

  // 4. The kill switch, both layers, now and then on a timer: the firewall every few seconds
  // (another container may flush INPUT, set policies, insert rules before ours: our jump must
  // stay at position 1), our routing table whenever the VPN link or main's routes change (the
  // link comes, goes, is renamed or re-created, and its routes must be copied: a file-read
  // fingerprint every fraction of a second, rtnetlink dumps only on a change) and in full every
  // ROUTE_FULL_CHECK_SECONDS (routes in the VPN's own table, our rules). What cannot be proven
  // fails closed.
  const opened = deps.firewall ? { backend: await deps.firewall(), reads: undefined } : await openFirewall(config, deps.runner, log);
  const backend = opened.backend;
  const fwPlan = planFirewall(s, config.nat);
  const fwEvery = deps.firewallCheckSeconds ?? 5;
  const routeEvery = Math.min(deps.routeCheckSeconds ?? 0.2, fwEvery);
  const fullEvery = Math.max(routeEvery, Math.min(ROUTE_FULL_CHECK_SECONDS, fwEvery));
  const maxFailedChecks = deps.maxFailedChecks ?? 5;
  const guard = new KillSwitchGuard({ backend, plan: fwPlan, settings: s, net: host, log, onFirewallChecked: (r) => deps.monitor?.firewallChecked(r) }, { maxFailedChecks, routingChecksPerFirewallCheck: Math.ceil(fwEvery / fullEvery) });
  const signature = deps.routeSignature ?? (() => readRouteSignature(s.VPN_INTERFACE));
  const dnsFor = (list: readonly string[]) => {
    const d = planDnsUpstreams(list, localServer);
    if (d.warning && fwPlan.killSwitch) log.warn(d.warning);
    guard.setDnsUpstreams(fwPlan.killSwitch ? d.upstreams : [], localServer);
    if (fwPlan.killSwitch && d.upstreams.length) log.info(`DNS upstreams ${d.upstreams.join(" ")}: only through ${s.VPN_INTERFACE} (host routes in table ${KILLSWITCH_TABLE})`);
  };
  dnsFor(upstreams);
  await guard.checkFirewall();
  await guard.syncRoutes();
  // Nothing stale: a ConfigMap that changed FIREWALL_BACKEND leaves our objects in the old one.
  if (!deps.firewall && !guard.closed)
    try {
      for (const line of await removeStaleFirewall(backend.name, deps.runner, await opened.reads)) log.info(`firewall: ${line}`);
    } catch (e) {
      log.error(`removing our rules from a firewall backend no longer chosen: ${(e as Error).message}`);
    }
  let giveUp: (why: string) => void = () => {};
  const exhausted = new Promise<string>((resolve) => (giveUp = resolve));
  const afterCheck = () => {
    const why = guard.exhausted;
    if (why) giveUp(why);
  };
  afterCheck();
  const fwTimer = setInterval(() => void guard.checkFirewall().then(afterCheck), fwEvery * 1000);
  let lastSignature = signature();
  let lastFull = performance.now();
  let followUps = 0;
  const routeTimer = setInterval(() => {
    const now = signature();
    // A change is followed by full checks for a few more ticks: a VPN client adds its routes
    // (and those of its own table) just after the link comes up.
    if (now !== lastSignature) [lastSignature, followUps] = [now, 3];
    const due = performance.now() - lastFull >= fullEvery * 1000 - 1;
    if (followUps === 0 && !due) return;
    followUps = Math.max(0, followUps - 1);
    lastFull = performance.now();
    void guard.syncRoutes().then(afterCheck);
  }, routeEvery * 1000);
  const stopTimers = () => {
    clearInterval(fwTimer);
    clearInterval(routeTimer);
  };

  // 5. Keep the copy in sync (dnsmasq re-reads its resolv-file when it changes), and the DNS
  // upstreams' host routes with it.
  const watcher = watchFile(paths.resolvConf, () => {
    try {
      const changed = syncResolvCopy(paths.resolvConf, copy, log);
      if (changed) {
        log.info(`upstream DNS now ${changed.join(" ") || "none"} (from ${paths.resolvConf})`);
        dnsFor(changed);
        deps.monitor?.upstreams(changed, false);
        void guard.syncRoutes().then(afterCheck);
      }
    } catch (e) {
      log.error(`updating ${copy}: ${(e as Error).message}`);
    }
  });

  // Duplicate overlay addresses and MACs (issue 13 §2): src/sys/duplicates-watch.ts.
  const duplicates = startDuplicateWatch({ net: host, log: log.withTag("duplicates"), onCounts: (c) => deps.monitor?.duplicates?.(c) });
  // What the kill switch drops on eth0 (issue 13 §5): src/sys/drop-report.ts; `drops.counter` is for metrics.
  const drops = fwPlan.killSwitch ? startDropReport({ log: log.withTag("kill switch"), onPackets: (p) => deps.monitor?.killSwitchDropped?.(p) }) : undefined;
  if (drops) deps.monitor?.dropReport?.(drops);

  // 6. dnsmasq in the foreground.
  let child: SupervisedChild;
  try {
    child = spawnSupervised([deps.dnsmasq ?? DNSMASQ_PROGRAM, "--keep-in-foreground", `--conf-file=${confPath}`], { logger: log.withTag("dnsmasq") });
  } catch (e) {
    stopTimers();
    watcher.close();
    duplicates.stop();
    drops?.stop();
    throw new StepError("starting dnsmasq", (e as Error).message, { cause: e });
  }
  deps.monitor?.dnsmasqStarted(child, leaseFile);
  // The clients' watch connections (GATEWAY_WATCH_PORT, src/sys/watch-server.ts), from the moment
  // dnsmasq runs: however we stop, they are ended first, so clients look for the next gateway
  // while this one shuts down.
  const listen = planWatchListen(s);
  const watch = listen ? startWatchServer({ ...listen, log: log.withTag("watch"), onCount: (n) => deps.monitor?.watchConnections?.(n) }) : undefined;
  const endWatch = () => void watch?.close();
  const leaseGuard = guard0 ? startLeaseGuard({ guard: guard0, net: host, hostsFile, leaseFile, pid: child.pid, log: log.withTag("leases") }) : undefined;
  if (guard0) log.info(`no lease file: offers to clients dnsmasq does not know wait until no new client appeared on ${VXLAN_IF} for ${holdSeconds} s; addresses seen in use are reserved for ${NEW_POD_LEARN_SECONDS} s after that`);
  const unforward = forwardSignals(child, log, { first: endWatch });
  log.info(`dnsmasq running (pid ${child.pid}): DHCP and DNS on ${VXLAN_IF}`);
  let gaveUp: string | undefined;
  void exhausted.then((why) => {
    gaveUp = why;
    log.error(`${why}: exiting so that Kubernetes restarts the container (the kill switch stays closed)`);
    endWatch();
    child.stop("SIGTERM");
  });
  const code = await child.exited;
  endWatch();
  leaseGuard?.stop();
  unforward();
  stopTimers();
  watcher.close();
  duplicates.stop();
  drops?.stop();
  await guard.idle();
  if (gaveUp) return 1;
  if (child.stopping) {
    log.info(`dnsmasq stopped (exit ${code})`);
    return code;
  }
  // Not asked to stop: let Kubernetes restart the container.
  log.error(`dnsmasq exited unexpectedly (exit ${code})`);
  return code === 0 ? 1 : code;
}
