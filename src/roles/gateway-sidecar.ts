// gateway-sidecar: DHCP and DNS for the overlay. Renders dnsmasq's configuration, keeps the
// resolv.conf copy dnsmasq reads in sync with the pod's /etc/resolv.conf (which the VPN client
// rewrites), re-asserts our firewall when another container flushes or reorders it, and runs
// dnsmasq in the foreground: our exit code is dnsmasq's.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { StepError } from "../core/errors.ts";
import { planFirewall } from "../core/firewall/model.ts";
import { renderDnsmasqConfig } from "../core/dnsmasq/render.ts";
import { VXLAN_IF } from "../core/net/vxlan.ts";
import { parseResolvConf, renderResolvCopy } from "../core/resolv.ts";
import { isIPv4 } from "../core/settings/values.ts";
import type { ResolvedConfig } from "../core/settings/types.ts";
import type { Runner } from "../sys/exec.ts";
import type { FirewallBackend } from "../sys/firewall.ts";
import type { Ip } from "../sys/ip.ts";
import type { Logger } from "../sys/log.ts";
import { forwardSignals, spawnSupervised, type SupervisedChild } from "../sys/supervisor.ts";
import { watchFile, writeFileAtomic } from "../sys/watch.ts";
import { selectFirewallBackend } from "./gateway-init.ts";

export interface GatewaySidecarPaths {
  /** dnsmasq.conf and the lease file live here (must be writable; e.g. an emptyDir or /run). */
  runDir: string;
  /** The file the VPN client rewrites: /etc/resolv.conf. */
  resolvConf: string;
}

export interface GatewaySidecarDeps {
  runner: Runner;
  ip: Ip;
  log: Logger;
  /** Seconds between firewall checks (default 5). */
  firewallCheckSeconds?: number;
  firewall?: () => Promise<FirewallBackend>;
  /** dnsmasq command (default "dnsmasq" on PATH). */
  dnsmasq?: string;
  /** Told what the sidecar sees (health status and metrics: src/sys/gateway-telemetry.ts). */
  monitor?: GatewaySidecarMonitor;
}

export interface GatewaySidecarMonitor {
  firewallChecked(r: { problems: readonly string[]; reasserted: boolean; left: readonly string[]; error?: string }): void;
  upstreams(servers: readonly string[], initial: boolean): void;
  dnsmasqStarted(child: { exited: Promise<number> }, leaseFile: string): void;
}

/** Where the original resolv.conf is kept: next to the copy, so it survives container restarts with it. */
export function originalResolvPath(copy: string): string {
  return `${copy}.original`;
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
  let text: string;
  try {
    text = readFileSync(resolvConf, "utf8");
  } catch (e) {
    log.warn(`reading ${resolvConf}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; keeping the current upstreams`);
    return undefined;
  }
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
  const { log, ip } = deps;
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
  const localServer = s.DNS_LOCAL_SERVER || parseResolvConf(original).ipv4[0];
  if (s.DNS_LOCAL_SERVER && !isIPv4(s.DNS_LOCAL_SERVER)) log.warn(`DNS_LOCAL_SERVER ${s.DNS_LOCAL_SERVER} is not an IPv4 address`);
  let upstreams: string[];
  try {
    upstreams = syncResolvCopy(paths.resolvConf, copy, log) ?? parseResolvConf(readFileSync(copy, "utf8")).ipv4;
  } catch (e) {
    throw new StepError("writing RESOLV_CONF_COPY", `${copy}: ${(e as Error).message}`, { cause: e });
  }
  deps.monitor?.upstreams(upstreams, true);
  log.info(`upstream DNS: ${upstreams.join(" ") || "none"}; cluster DNS for ${s.DNS_LOCAL_CIDRS.join(" ") || "(no local domains)"}: ${localServer ?? "unknown"}`);

  // 2. dnsmasq configuration (vxlan0 must exist: gateway-init made it).
  const link = await ip.link(VXLAN_IF);
  if (!link) throw new StepError("reading vxlan0", `${VXLAN_IF} does not exist: gateway-init (the init container) must run first`);
  const confPath = join(paths.runDir, "dnsmasq.conf");
  const leaseFile = join(paths.runDir, "dnsmasq.leases");
  const conf = renderDnsmasqConfig({ settings: s, nat: config.nat, mtu: link.mtu, localServer, leaseFile });
  try {
    writeFileAtomic(confPath, conf);
  } catch (e) {
    throw new StepError("writing the dnsmasq configuration", `${confPath}: ${(e as Error).message}`, { cause: e });
  }

  // 3. Firewall check now and every few seconds: another container (the VPN client) may flush
  // INPUT, set its policy to DROP or insert rules before ours; our jump must stay at position 1.
  const backend = deps.firewall ? await deps.firewall() : await selectFirewallBackend(config, deps.runner, log);
  const fwPlan = planFirewall(s, config.nat);
  let checking = false;
  const checkFirewall = async () => {
    if (checking) return;
    checking = true;
    try {
      const problems = await backend.verify(fwPlan);
      if (problems.length === 0) return deps.monitor?.firewallChecked({ problems, reasserted: false, left: [] });
      log.warn(`firewall changed by someone else, re-asserting (${backend.name}): ${problems.join("; ")}`);
      await backend.apply(fwPlan);
      const left = await backend.verify(fwPlan);
      if (left.length) log.error(`firewall still differs after re-asserting: ${left.join("; ")}`);
      deps.monitor?.firewallChecked({ problems, reasserted: true, left });
    } catch (e) {
      log.error(`checking the firewall: ${(e as Error).message}`);
      deps.monitor?.firewallChecked({ problems: [], reasserted: false, left: [], error: (e as Error).message });
    } finally {
      checking = false;
    }
  };
  await checkFirewall();
  const interval = setInterval(() => void checkFirewall(), (deps.firewallCheckSeconds ?? 5) * 1000);

  // 4. Keep the copy in sync (dnsmasq re-reads its resolv-file when it changes).
  const watcher = watchFile(paths.resolvConf, () => {
    try {
      const changed = syncResolvCopy(paths.resolvConf, copy, log);
      if (changed) log.info(`upstream DNS now ${changed.join(" ") || "none"} (from ${paths.resolvConf})`);
      if (changed) deps.monitor?.upstreams(changed, false);
    } catch (e) {
      log.error(`updating ${copy}: ${(e as Error).message}`);
    }
  });

  // 5. dnsmasq in the foreground.
  let child: SupervisedChild;
  try {
    child = spawnSupervised([deps.dnsmasq ?? "dnsmasq", "--keep-in-foreground", `--conf-file=${confPath}`], { logger: log.withTag("dnsmasq") });
  } catch (e) {
    clearInterval(interval);
    watcher.close();
    throw new StepError("starting dnsmasq", (e as Error).message, { cause: e });
  }
  deps.monitor?.dnsmasqStarted(child, leaseFile);
  const unforward = forwardSignals(child, log);
  log.info(`dnsmasq running (pid ${child.pid}): DHCP and DNS on ${VXLAN_IF}`);
  const code = await child.exited;
  unforward();
  clearInterval(interval);
  watcher.close();
  if (child.stopping) {
    log.info(`dnsmasq stopped (exit ${code})`);
    return code;
  }
  // Not asked to stop: let Kubernetes restart the container.
  log.error(`dnsmasq exited unexpectedly (exit ${code})`);
  return code === 0 ? 1 : code;
}
