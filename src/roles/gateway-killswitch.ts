// The kill switch's reconcile, shared by gateway-init and gateway-sidecar: for each layer (the
// firewall, the routing table) check → apply → check, retried a few times within one check (the
// xtables lock, a concurrent rewrite); when a layer cannot be proven, both fail closed (the
// blocking ruleset, and our table without the VPN's routes) and the caller decides what then
// (gateway-init exits non-zero; the sidecar keeps serving the overlay and retries).
import { readFileSync } from "node:fs";
import { planBlockingFirewall, type FirewallPlan, type FirewallSettings } from "../core/firewall/model.ts";
import { killSwitchInput, planKillSwitch, type KillSwitchFacts, type KillSwitchInput, type KillSwitchPlan } from "../core/gateway/killswitch.ts";
import { GatewayPlanError, planLocalRoutes } from "../core/gateway/plan.ts";
import { describeChanges } from "../core/net/change.ts";
import type { IpRoute } from "../core/net/ip-json.ts";
import { parseResolvConf } from "../core/resolv.ts";
import type { Settings } from "../core/settings/types.ts";
import { checkProblems, type FirewallBackend, type FirewallCheck, type FirewallPart } from "../sys/firewall.ts";
import type { GatewayNet } from "../sys/gateway-host.ts";
import type { Logger } from "../sys/log.ts";

/** Tries within one check before a layer counts as not proven. */
export const ATTEMPTS_PER_CHECK = 3;

/** Where the sidecar keeps the original resolv.conf: next to the copy. */
export function originalResolvPath(copy: string): string {
  return `${copy}.original`;
}

/** The outcome of one layer's reconcile: how many changes were applied, and what is still wrong (empty: proven). */
export interface LayerResult {
  applied: number;
  problems: string[];
}

/**
 * Firewall: check (or use `check`, one made just before) → apply the parts that differ → check
 * those parts again; up to `attempts` times. Never throws: a failure is in `problems`.
 */
export async function reconcileFirewall(
  backend: FirewallBackend,
  plan: FirewallPlan,
  log: Logger,
  opts: { check?: FirewallCheck; attempts?: number } = {},
): Promise<LayerResult & { parts: FirewallPart[]; found: string[] }> {
  const attempts = opts.attempts ?? ATTEMPTS_PER_CHECK;
  const parts = new Set<FirewallPart>();
  let problems: string[] = [];
  let found: string[] | undefined;
  let check = opts.check;
  const done = (p: string[]) => ({ applied: parts.size, parts: [...parts], found: found ?? [], problems: p });
  for (let i = 0; i < attempts; i++) {
    try {
      check ??= await backend.check(plan);
      const differs = checkProblems(check);
      found ??= differs;
      if (differs.length === 0) return done([]);
      if (i > 0 || opts.check === undefined) log.debug(`firewall (${backend.name}) differs: ${differs.join("; ")}`);
      const applied = await backend.apply(plan, check);
      for (const p of applied) parts.add(p);
      const after = checkProblems(await backend.check(plan, { parts: applied }));
      if (after.length === 0) return done([]);
      problems = [`rules read back differ from the plan: ${after.join("; ")}`];
    } catch (e) {
      problems = [(e as Error).message];
    }
    check = undefined;
  }
  return done(problems);
}

/** The kill switch's facts (every table's IPv4 routes, the rules, main's routes) over rtnetlink. */
export async function readRoutingFacts(net: GatewayNet): Promise<KillSwitchFacts & { main: IpRoute[] }> {
  const f = await net.readFacts();
  return { routes: f.allRoutes, rules: f.rules, main: f.routes };
}

/**
 * Routing layer: read → plan → apply and read back → plan again (nothing may be left); up to
 * `attempts` times. `input` builds the plan's input from main's routes (the
 * VPN_LOCAL_CIDRS next hop is learned there). Never throws.
 */
export async function reconcileRouting(
  net: GatewayNet,
  input: (main: readonly IpRoute[]) => KillSwitchInput,
  log: Logger,
  opts: { attempts?: number } = {},
): Promise<LayerResult & { plan?: KillSwitchPlan }> {
  const attempts = opts.attempts ?? ATTEMPTS_PER_CHECK;
  let applied = 0;
  let problems: string[] = [];
  for (let i = 0; i < attempts; i++) {
    try {
      const facts = await readRoutingFacts(net);
      const plan = planKillSwitch(input(facts.main), facts);
      if (plan.actions.length === 0) return { applied, problems: [], plan };
      for (const line of describeChanges(plan.actions)) log.debug(line);
      await net.apply(plan.actions);
      applied += plan.actions.length;
      const after = await readRoutingFacts(net);
      const left = planKillSwitch(input(after.main), after).actions;
      if (left.length === 0) return { applied, problems: [], plan };
      problems = [`still differs after applying: ${left.map((a) => a.why).join("; ")}`];
    } catch (e) {
      problems = [e instanceof GatewayPlanError ? e.message : (e as Error).message];
    }
  }
  return { applied, problems };
}

/** The routing layer's input from the settings and main's routes. */
export function routingInputFor(s: Settings, dnsUpstreams: readonly string[], closed: boolean, clusterDns?: string): (main: readonly IpRoute[]) => KillSwitchInput {
  return (main) => killSwitchInput(s, planLocalRoutes(s, main).localRoutes, dnsUpstreams, closed, clusterDns);
}

/**
 * Both layers closed: the blocking ruleset (no forwarding; own output only to loopback and the
 * overlay, so dnsmasq keeps serving), and our table without the VPN's routes. Each half is tried
 * even when the other fails; returns what failed.
 */
export async function failClosed(
  backend: FirewallBackend,
  s: Settings & FirewallSettings,
  net: GatewayNet,
  dnsUpstreams: readonly string[],
  log: Logger,
): Promise<string[]> {
  const errors: string[] = [];
  const [fw, routes] = await Promise.all([
    reconcileFirewall(backend, planBlockingFirewall(s), log, { attempts: 1 }),
    s.VPN_BLOCK_OTHER_TRAFFIC && s.VPN_INTERFACE !== "" ? reconcileRouting(net, routingInputFor(s, dnsUpstreams, true), log, { attempts: 1 }) : undefined,
  ]);
  if (fw.problems.length) errors.push(`the blocking ruleset: ${fw.problems.join("; ")}`);
  if (routes?.problems.length) errors.push(`dropping the VPN routes from our table: ${routes.problems.join("; ")}`);
  return errors;
}

/**
 * What gateway-init knows of DNS from files: the nameservers of the resolv.conf copy the sidecar
 * keeps (none before its first start), and cluster DNS candidates — the sidecar's saved original,
 * then the pod's resolv.conf (at gateway-init time, before any VPN container, the cluster's).
 */
export function readDnsFacts(s: Pick<Settings, "RESOLV_CONF_COPY">, resolvConf: string): { nameservers: string[]; clusterDnsCandidates: (string | undefined)[] } {
  const read = (p: string) => {
    try {
      return readFileSync(p, "utf8");
    } catch {
      return undefined;
    }
  };
  const first = (text: string | undefined) => (text === undefined ? undefined : parseResolvConf(text).ipv4[0]);
  const copy = read(s.RESOLV_CONF_COPY);
  return {
    nameservers: copy === undefined ? [] : parseResolvConf(copy).ipv4,
    clusterDnsCandidates: [first(read(originalResolvPath(s.RESOLV_CONF_COPY))), first(read(resolvConf))],
  };
}

export interface GuardDeps {
  backend: FirewallBackend;
  plan: FirewallPlan;
  settings: Settings;
  net: GatewayNet;
  log: Logger;
  /** Told each firewall check's outcome (health and metrics: src/sys/gateway-telemetry.ts). */
  onFirewallChecked?(r: { problems: readonly string[]; reasserted: boolean; left: readonly string[]; error?: string }): void;
}

/**
 * The sidecar's side of the kill switch: the firewall reconciled every few seconds, the routing
 * table every fraction of a second (the VPN link comes, goes, is renamed or re-created), both
 * failing closed when they cannot be proven and opening again once they are. Checks never run
 * concurrently. `exhausted` says why the container should exit (several consecutive failures).
 */
export class KillSwitchGuard {
  /** The firewall could not be proven at its last check: both layers are closed. */
  closed = false;
  firewallFailures = 0;
  routingFailures = 0;
  /** Firewall re-assertions that left the rules as planned (pod_gateway_gateway_firewall_reasserts_total). */
  private reasserts = 0;
  private dns: string[] = [];
  private clusterDns: string | undefined;
  /** Former DNS upstreams whose pin was kept at the last check (logged when it changes). */
  private formerDns = "";
  // One queue per layer: a firewall check (which may wait up to 5 s for the xtables lock) never
  // delays the copy of a VPN link's routes. The firewall side may wait for the routing side,
  // never the other way round.
  private fwQueue: Promise<unknown> = Promise.resolve();
  private rtQueue: Promise<unknown> = Promise.resolve();
  private readonly enabled: boolean;

  constructor(
    private readonly d: GuardDeps,
    private readonly opts: { maxFailedChecks: number; routingChecksPerFirewallCheck: number },
  ) {
    this.enabled = d.plan.killSwitch;
  }

  /** The upstreams to pin, and the cluster DNS (a former upstream that is now the cluster DNS loses its pin). */
  setDnsUpstreams(upstreams: readonly string[], clusterDns?: string): void {
    this.dns = [...upstreams];
    this.clusterDns = clusterDns;
  }

  get exhausted(): string | undefined {
    const max = this.opts.maxFailedChecks;
    if (this.firewallFailures >= max) return `the firewall could not be proven in ${this.firewallFailures} consecutive checks`;
    if (this.routingFailures >= max * this.opts.routingChecksPerFirewallCheck) return `the kill switch's routing table could not be proven in ${this.routingFailures} consecutive checks`;
    return undefined;
  }

  private onFirewall<T>(f: () => Promise<T>): Promise<T> {
    const next = this.fwQueue.then(f, f);
    this.fwQueue = next.catch(() => undefined);
    return next;
  }

  private onRouting<T>(f: () => Promise<T>): Promise<T> {
    const next = this.rtQueue.then(f, f);
    this.rtQueue = next.catch(() => undefined);
    return next;
  }

  /** check → apply → check the firewall; fail closed (both layers) when it cannot be proven. */
  checkFirewall(): Promise<void> {
    return this.onFirewall(() => this.firewallStep());
  }

  /** Keep our table's copies of the VPN's routes (and the DNS host routes) in sync. */
  syncRoutes(): Promise<void> {
    return this.onRouting(() => this.routesStep());
  }

  private async blocking(attempts?: number): Promise<void> {
    const fw = await reconcileFirewall(this.d.backend, planBlockingFirewall(this.d.settings), this.d.log, { attempts });
    if (fw.problems.length) this.d.log.error(`failing closed: the blocking ruleset: ${fw.problems.join("; ")}`);
  }

  private async firewallStep(): Promise<void> {
    const { backend, plan, log } = this.d;
    // While the routing table is not proven the firewall stays blocking (it is checked all the same).
    if (this.enabled && this.routingFailures > 0) {
      this.d.onFirewallChecked?.({ problems: [], reasserted: false, left: ["the kill switch's routing table is not proven: blocking"] });
      return this.blocking();
    }
    const r = await reconcileFirewall(backend, plan, log);
    this.d.onFirewallChecked?.({ problems: r.found, reasserted: r.found.length > 0 && r.problems.length === 0, left: r.problems });
    if (r.problems.length === 0) {
      // Named like the metric it moves (the monitor counts the same condition).
      if (r.found.length) log.warn(`firewall differed from the plan (changed by someone else, or a new configuration), re-asserted (${backend.name}): ${r.found.join("; ")} (pod_gateway_gateway_firewall_reasserts_total ${++this.reasserts})`);
      this.firewallFailures = 0;
      if (this.closed) {
        log.info("the firewall is proven again: the VPN's routes go back into our table");
        this.closed = false;
        await this.syncRoutes();
      }
      return;
    }
    this.firewallFailures++;
    this.closed = this.enabled;
    log.error(`the firewall could not be proven (${backend.name}, failed check ${this.firewallFailures} of ${this.opts.maxFailedChecks} before exiting): ${r.problems.join("; ")}`);
    if (!this.enabled) return;
    // Both layers close: the routing table first (it holds even when the firewall cannot be written).
    await this.syncRoutes();
    await this.blocking(1);
    if (this.routingFailures === 0) log.error("failed closed: nothing is forwarded and the VPN's routes are out of our table until the firewall is proven again");
  }

  private async routesStep(): Promise<void> {
    const { log, settings: s } = this.d;
    const r = await reconcileRouting(this.d.net, routingInputFor(s, this.dns, this.closed, this.clusterDns), log);
    if (r.problems.length === 0) {
      if (r.plan && this.enabled && r.applied)
        log.info(`kill switch routing table: ${r.applied} change(s), ${r.plan.vpnRoutes} ${s.VPN_INTERFACE} route(s) copied${this.closed ? " (closed)" : ""}`);
      const former = r.plan?.formerDns.join(" ") ?? this.formerDns;
      if (former !== this.formerDns && former)
        log.info(`former DNS upstreams ${former}: still only through ${s.VPN_INTERFACE}, unreachable without it (inside VPN_LOCAL_CIDRS; something may still send to them)`);
      this.formerDns = former;
      if (this.routingFailures) {
        this.routingFailures = 0;
        log.info("the kill switch's routing table is proven again");
        if (this.enabled) void this.checkFirewall();
      }
      return;
    }
    this.routingFailures++;
    log.error(`the kill switch's routing table could not be proven (failed check ${this.routingFailures}): ${r.problems.join("; ")}`);
    // The table may still hold a way out: the firewall layer closes too (queued, not awaited:
    // the firewall side may be waiting for this very check).
    if (this.enabled) void this.onFirewall(() => this.blocking(1));
  }

  /** Resolves when no check is running or queued on either layer. */
  async idle(): Promise<void> {
    for (;;) {
      const [f, r] = [this.fwQueue, this.rtQueue];
      await Promise.all([f, r]);
      if (f === this.fwQueue && r === this.rtQueue) return;
    }
  }
}
