// client-sidecar: keep the pod's tunnel healthy for the pod's lifetime. Probe the gateway every
// CLIENT_PROBE_INTERVAL seconds (a probe unanswered for 100 ms has the gateway's name looked up
// alongside: a gateway re-created at a new IP is followed before the probe times out). From the
// first failed probe: probe every 250 ms (for the first minute), look its name up about twice a
// second on a jittered schedule, so a move is repaired within a second without 200 pods asking
// the cluster DNS in the same instant, and forget the neighbours the tunnel relies on at a
// failed probe, at most once a second (a gateway re-created at the same IP has a new MAC); the
// kernel asks again for .1 every 250 ms, not every second (vxlan0's ARP retransmit time). Hold a
// watch connection to the gateway (GATEWAY_WATCH_PORT): when the gateway ends it, it is leaving —
// probe and look up as when lost from then on (the first within 250 / 500 ms). If it moved,
// point vxlan0's remote and the pinned route at the new pod IP, flush vxlan0's neighbours and
// probe at once — same MAC, same lease; after CONNECTION_RETRY_COUNT consecutive failures
// repeat the in-place repair with backoff; re-initialise fully only when the tunnel itself is
// gone. Renew the DHCP lease at T1/T2 (beside the probes: a renewal nobody answers must not hold
// them back), release it when the rest of the pod has finished (Jobs; on SIGTERM only then, otherwise
// shorten it to SHUTDOWN_LEASE_SECONDS so the pool survives churn). Never exits
// on failure: a crash-looping sidecar heals nothing.
//
// This file is the driver: every decision is SidecarMachine's (src/core/client/sidecar-machine.ts);
// here are only the effects (network reads and changes, DHCP, probes, lookups, sleeping) and the
// signals that cut them short, and what happens to the lease at exit is sidecar-exit-lease.ts's.
import { planClientAddress, planVxlanMtuChange } from "../core/client/plan.ts";
import type { IsolationOutcome } from "../core/client/isolation-watch.ts";
import { newStats, SidecarMachine, type MachinePolicy, type Note, type SidecarStats } from "../core/client/sidecar-machine.ts";
import type { Lease } from "../core/dhcp/types.ts";
import type { Settings } from "../core/settings/types.ts";
import { gatewayOverlayIp, VXLAN_IF } from "../core/net/vxlan.ts";
import type { WatchConnection, WatchHandlers } from "../sys/gateway-watch.ts";
import { addressMode, applyLogged, dhcpIdentity, messageOf, networkInput, readIsolation, runClientInit, type ClientDeps, type ClientInput, type DhcpIdentity } from "./client-init.ts";
import { endLease } from "./sidecar-exit-lease.ts";

export { newStats, type SidecarStats };

export type PodDoneResult = "done" | "native-sidecar" | "forbidden" | "aborted" | "never-completes";

export interface SidecarDeps extends ClientDeps {
  /**
   * One probe of the gateway through the tunnel. `slow`: call `then` once the probe has gone
   * unanswered for `afterMs` (never after it settled).
   */
  probeOnce(ip: string, opts: { timeoutMs: number; signal?: AbortSignal; slow?: { afterMs: number; then: () => void } }): Promise<{ alive: boolean; detail: string; rttMs?: number }>;
  /** Resolves when every other container of the pod has finished (Jobs); absent when not watching. */
  watchPodDone?: (signal: AbortSignal) => Promise<PodDoneResult>;
  /** A cheap fingerprint of the routes (src/sys/route-signature.ts), read every tick: a change re-checks isolation at once. */
  routeSignature?: () => string;
  /** Uniform in [0, 1): the jitter of the gateway lookups (default Math.random). */
  random?: () => number;
  /** Open a watch connection to the gateway (src/sys/gateway-watch.ts); absent: none (as GATEWAY_WATCH_PORT=0). */
  openWatch?: (ip: string, port: number, handlers: WatchHandlers) => WatchConnection;
}

export interface SidecarPolicy extends MachinePolicy {
  /** The deadline client-init gets when the sidecar re-initialises the tunnel. */
  resolveDeadlineMs: number;
  renewDeadlineMs: number;
  /** SIGTERM must end the sidecar within a second, release (or shortening) included. */
  releaseTimeoutMs: number;
  /**
   * On SIGTERM while the pod's other containers may still use the address: renew asking for this
   * lease time instead of releasing, so the address stays with the pod through its termination
   * grace period but returns to the pool soon after (dnsmasq's minimum is 120 s).
   */
  shutdownLeaseSeconds: number;
}

/**
 * The gateway is one hop away over the overlay. Measured in the lab (1000 probes each): median
 * 0.3 ms, p99 2.2 ms, max 9 ms; with both cores oversubscribed twice over, p99 8 ms, max 30 ms.
 * Half a second is still many times the worst seen, and a false alarm costs only one lookup and
 * one neighbour flush, while every millisecond of it passes before a gateway that was answering is
 * looked for again.
 */
const PROBE_TIMEOUT_MS = 500;

/** The probe cadence while the gateway is lost (issue 11 §6: one client back within 0.5 s of the gateway's return). */
export const LOST_INTERVAL_MS = 250;
/** The mean gap between lookups of the gateway's name while it is lost (jittered, see sidecarPolicy). */
export const LOST_LOOKUP_INTERVAL_MS = 500;
/**
 * A regular probe unanswered this long has the gateway's name looked up alongside (between this
 * and its timeout): 3× the slowest answer seen with both cores oversubscribed twice over.
 */
export const SLOW_PROBE_MS = 100;
/** Least time between two neighbour refreshes while lost (each makes the pod ARP: a broadcast on a bridge CNI's node). */
export const REFRESH_INTERVAL_MS = 1000;
/** How long an outage is probed and looked up at the fast cadence before dropping back to the interval. */
export const FAST_WINDOW_MS = 60_000;

/** A watch connection that never got established is tried again after 30 s, then twice as long each time, up to 5 min. */
export const WATCH_RETRY_MS = 30_000;
export const WATCH_RETRY_CAP_MS = 300_000;
/** After a goodbye, a gateway that answered every probe for a second is back, watched or not (the leaving one answers for milliseconds). */
export const LEAVING_CONFIRM_MS = 1000;

/** Isolation is re-checked this often (issue 11 §7), and at the first tick after the main table changed. */
export const ISOLATION_INTERVAL_MS = 30_000;

/** dnsmasq grants no lease shorter than 120 s (verified in the churn test); longer than the default 30 s grace period. */
export const SHUTDOWN_LEASE_SECONDS = 120;

export function sidecarPolicy(input: Pick<ClientInput, "settings">, over: Partial<SidecarPolicy> = {}): SidecarPolicy {
  const intervalMs = Math.max(100, input.settings.CLIENT_PROBE_INTERVAL * 1000);
  return {
    intervalMs,
    retryCount: Math.max(1, input.settings.CONNECTION_RETRY_COUNT),
    // Only the repair in place (reading and changing the network) backs off this far; the probe and the lookup
    // keep their interval, which is what bounds recovery once the gateway is back.
    repairBackoffCapMs: Math.max(intervalMs, 30_000),
    probeTimeoutMs: Math.min(PROBE_TIMEOUT_MS, intervalMs),
    // While the gateway is lost: a probe every 250 ms, so a gateway that is back is seen within a
    // quarter of a second (one DNS datagram each; a long outage drops back to the interval after
    // a minute), and a lookup of its name about twice a second, each gap jittered by ±50 % and
    // the first spread over half a second, so the routed pods that lost the gateway together
    // spread their queries over the cluster DNS (200 pods: ~400 queries a second, evenly).
    lostIntervalMs: Math.min(LOST_INTERVAL_MS, intervalMs),
    lookupIntervalMs: Math.min(LOST_LOOKUP_INTERVAL_MS, intervalMs),
    lookupJitter: 0.5,
    fastWindowMs: FAST_WINDOW_MS,
    refreshIntervalMs: REFRESH_INTERVAL_MS,
    slowProbeMs: SLOW_PROBE_MS,
    resolveDeadlineMs: 2000,
    renewDeadlineMs: 5000,
    reacquireDelayMs: Math.max(intervalMs, 4000),
    isolationIntervalMs: ISOLATION_INTERVAL_MS,
    watchRetryMs: WATCH_RETRY_MS,
    watchRetryCapMs: WATCH_RETRY_CAP_MS,
    leavingConfirmMs: LEAVING_CONFIRM_MS,
    releaseTimeoutMs: 500,
    shutdownLeaseSeconds: SHUTDOWN_LEASE_SECONDS,
    ...over,
  };
}

export interface SidecarInput extends ClientInput {
  /** Aborted on SIGTERM/SIGINT. */
  signal: AbortSignal;
  /**
   * "renew" events ask for a renewal now (the command sends one on SIGUSR1, as udhcpc does): for
   * operators, and for tests that cannot wait for T1 of a real lease.
   */
  events?: EventTarget;
  policy?: Partial<SidecarPolicy>;
  /** Told of every probe and every turn of the loop (health status and metrics, src/core/metrics/client.ts). */
  monitor?: SidecarMonitor;
}

export interface SidecarMonitor {
  probe(now: number, alive: boolean, rttMs: number | undefined): void;
  turn(now: number, stats: SidecarStats, lease: Lease | undefined): void;
}

export interface SidecarExit {
  reason: "signal" | "pod-done";
  released: boolean;
  stats: SidecarStats;
}

/**
 * A signal for one call out of the loop, aborted with the sidecar or by `abort()`. Whatever the
 * callee hangs on it goes away with it once the call ends: realClock.sleep leaves its abort
 * listener behind when its timer fires, and a sleep on the sidecar's lifelong signal (or on an
 * AbortSignal.any() of it, which that listener keeps alive) piled up one signal, listener and
 * timer per loop turn — the client-sidecar's memory growth over the soak.
 */
function childSignal(parent: AbortSignal): { signal: AbortSignal; abort(): void; release(): void } {
  const c = new AbortController();
  const abort = () => c.abort();
  if (parent.aborted) c.abort();
  else parent.addEventListener("abort", abort, { once: true });
  return { signal: c.signal, abort, release: () => parent.removeEventListener("abort", abort) };
}

/** Run `fn` with a child signal of `parent`, released when it settles. */
async function scoped<T>(parent: AbortSignal, fn: (signal: AbortSignal, abort: () => void) => Promise<T>): Promise<T> {
  const child = childSignal(parent);
  try {
    return await fn(child.signal, child.abort);
  } finally {
    child.release();
  }
}

export async function runClientSidecar(deps: SidecarDeps, input: SidecarInput, stats: SidecarStats = newStats()): Promise<SidecarExit> {
  const d = new SidecarDriver(deps, input, stats);
  d.watchPod();
  await d.start();
  await d.loop();
  return d.stop();
}

/** A renewal running beside the loop (the machine's `renewing`); only its DHCP exchange, the loop writes the lease. */
interface Renewal {
  id: number;
  current: Lease;
  rebind: boolean;
  outcome?: { lease: Lease } | { error: string };
  done: Promise<void>;
  abort(): void;
}

/**
 * The effects of one sidecar's life, one method per kind of work; every decision is the machine's.
 * Work that waits takes a child signal of `signal` (see scoped): SIGTERM, or the pod being done,
 * cuts any of it short.
 */
class SidecarDriver {
  private readonly log: SidecarDeps["log"];
  private readonly clock: SidecarDeps["clock"];
  private readonly policy: SidecarPolicy;
  private readonly settings: Settings;
  private readonly overlayGw: string;
  private readonly m: SidecarMachine;
  private readonly podDone = new AbortController();
  /** Aborted on SIGTERM/SIGINT or when the rest of the pod is done. */
  private readonly signal: AbortSignal;
  /**
   * The DHCP identity comes from the name and eth0's IPv4 address (as client-init's does), so it is
   * known once the network was read; a lease can only be held after that.
   */
  private id: DhcpIdentity | undefined;
  private exitReason: SidecarExit["reason"] = "signal";
  /** See sidecar-exit-lease.ts: released only when nothing else in the pod can still use the address. */
  private releaseAtExit = false;
  /** Cuts the current sleep short (a "renew" event, a renewal or a watch that ended). */
  private wakeUp: (() => void) | undefined;
  private renewal: Renewal | undefined;
  private watch: { id: number; conn: WatchConnection } | undefined;

  constructor(
    private readonly deps: SidecarDeps,
    private readonly input: SidecarInput,
    private readonly stats: SidecarStats,
  ) {
    this.log = deps.log;
    this.clock = deps.clock;
    this.policy = sidecarPolicy(input, input.policy);
    this.settings = input.settings;
    this.overlayGw = gatewayOverlayIp(this.settings.VXLAN_IP_NETWORK);
    this.signal = AbortSignal.any([input.signal, this.podDone.signal]);
    const mode = addressMode(input);
    const { gatewayPodIp: _, ...netInput } = networkInput(input, "");
    this.m = new SidecarMachine(
      {
        policy: this.policy,
        mode: mode.kind === "static" ? { kind: "static", address: mode.address } : { kind: "dhcp" },
        network: this.settings.VXLAN_IP_NETWORK,
        overlayGw: this.overlayGw,
        netInput,
        requestedAddress: input.requestedAddress,
        ...(deps.random ? { random: deps.random } : {}),
        watchPort: deps.openWatch ? this.settings.GATEWAY_WATCH_PORT : 0,
      },
      this.clock.now(),
      stats,
    );
    if (mode.kind === "static" && mode.shared) this.log.warn(mode.shared);
  }

  private say(notes: readonly Note[]): void {
    for (const n of notes) this.log[n.level](n.text);
  }

  /** The identity, from `facts` the first time (later ones change nothing: the identity is kept for the sidecar's life). */
  private identityFrom(facts: Parameters<typeof dhcpIdentity>[1]): DhcpIdentity {
    return (this.id ??= dhcpIdentity(this.input, facts));
  }

  private async identity(): Promise<DhcpIdentity> {
    return this.id ?? this.identityFrom(await this.deps.host.readFacts());
  }

  private readonly onRenew = (): void => {
    this.m.requestRenewal();
    this.wakeUp?.();
  };

  /** Jobs: end when every other container of the pod has finished; native sidecars release at exit. */
  watchPod(): void {
    this.deps
      .watchPodDone?.(this.signal)
      .then((r) => {
        if (r === "done") {
          this.log.info("every other container of this pod has finished: releasing the lease and exiting");
          this.exitReason = "pod-done";
          this.releaseAtExit = true;
          this.podDone.abort();
        } else if (r === "native-sidecar") {
          this.log.info("running as a native sidecar: the kubelet stops this container when the pod is done");
          this.releaseAtExit = true;
        }
      })
      .catch((e) => this.log.warn(`watching the pod for completion failed: ${messageOf(e)}; routing continues`));
  }

  /** Take over what client-init left in the kernel. */
  async start(): Promise<void> {
    this.input.events?.addEventListener("renew", this.onRenew);
    try {
      const facts = await this.deps.host.readFacts();
      this.identityFrom(facts);
      const st = this.m.start(this.clock.now(), facts);
      this.say(st.notes);
      const why = st.reinit;
      if (why) await scoped(this.signal, (sig) => this.reinit(why, sig));
      else await this.tune();
    } catch (e) {
      this.log.warn(`reading the network state failed: ${messageOf(e)}`);
    }
  }

  async loop(): Promise<void> {
    const m = this.m;
    while (!this.signal.aborted) {
      await this.finishRenewal();
      this.stepWatch();
      const { step, notes } = m.next(this.clock.now());
      this.say(notes);
      if (step.kind === "sleep") {
        // A renewal that ended while the loop was busy is handled before sleeping.
        if (this.renewal?.outcome) continue;
        await this.nap(Math.max(0, step.untilMs - this.clock.now()));
      } else if (step.kind === "acquire") await this.acquire(step.fallbackAddress);
      else if (step.kind === "renew") await this.startRenewal(step.renewal, step.lease, step.rebind);
      else {
        await this.tick(step.startedAt, step.lookup, step.timeoutMs);
        if (!this.signal.aborted) await this.watchIsolation();
        m.tickDone(step.startedAt, this.clock.now());
      }
      this.input.monitor?.turn(this.clock.now(), this.stats, m.lease);
    }
  }

  /** Stop the renewal and the watch, then release or shorten the lease (sidecar-exit-lease.ts). */
  async stop(): Promise<SidecarExit> {
    this.input.events?.removeEventListener("renew", this.onRenew);
    this.watch?.conn.close();
    if (this.renewal) {
      this.renewal.abort();
      await this.renewal.done;
    }
    const live = this.m.release(this.clock.now());
    // A lease is only held once the network was read, and with it the identity.
    const who = this.id;
    const released =
      live && who
        ? await endLease(this.deps, {
            live,
            who,
            release: this.releaseAtExit,
            timeoutMs: this.policy.releaseTimeoutMs,
            shortLeaseSeconds: this.policy.shutdownLeaseSeconds,
            writeLease: (l) => this.writeLease(l, `shortening the lease of ${l.address} on ${VXLAN_IF}`),
          })
        : false;
    return { reason: this.exitReason, released, stats: this.stats };
  }

  private nap(ms: number): Promise<void> {
    return scoped(this.signal, async (sleepSignal, abort) => {
      this.wakeUp = abort;
      try {
        await this.clock.sleep(ms, sleepSignal);
      } finally {
        this.wakeUp = undefined;
      }
    });
  }

  /** The tunnel's ARP retransmit time (SidecarMachine.tunnelTuning); a failure is logged, routing goes on. */
  private async tune(): Promise<void> {
    try {
      await applyLogged(this.deps, this.m.tunnelTuning(), "tuning the tunnel");
    } catch (e) {
      this.log.warn(`setting ${VXLAN_IF}'s ARP retransmit time failed: ${messageOf(e)}; a new gateway may take up to a second longer to be reached`);
    }
  }

  /** Full client-init. Failure is logged; the next repair tries again. */
  private async reinit(why: string, callSignal: AbortSignal): Promise<void> {
    this.say(this.m.reinitStarted(why));
    this.renewal?.abort(); // overtaken: client-init gets (or keeps) the lease
    try {
      const r = await runClientInit(this.deps, {
        ...this.input,
        signal: callSignal,
        requestedAddress: this.m.reinitAddress(),
        // Short deadlines: a failed re-init is tried again by the next repair.
        timing: { resolveDeadlineMs: this.policy.resolveDeadlineMs, probeDeadlineMs: 3000, ...this.input.timing },
      });
      this.say(this.m.reinitDone(r));
      await this.tune();
    } catch (e) {
      this.say(this.m.reinitFailed(messageOf(e)));
    }
  }

  // ---- lease upkeep

  private async writeLease(lease: Lease, what: string): Promise<void> {
    const f = await this.deps.host.readFacts();
    const mtu = planVxlanMtuChange(f, { vpnInterfaceMtu: this.settings.VPN_INTERFACE_MTU, dhcpMtu: lease.mtu });
    await applyLogged(this.deps, [...mtu, ...planClientAddress(f, this.settings.VXLAN_IP_NETWORK, this.m.leaseAddress(lease, this.clock.now()))], what);
  }

  private async acquire(fallbackAddress: string | undefined): Promise<void> {
    try {
      const facts = await this.deps.host.readFacts();
      const who = this.identityFrom(facts);
      const cur = this.m.ourAddress(facts);
      const opts = { requestedAddress: cur?.local ?? fallbackAddress, deadlineMs: this.policy.renewDeadlineMs };
      const lease = await scoped(this.signal, (signal) => this.deps.dhcp.acquire(who, { ...opts, signal }));
      await this.writeLease(lease, `setting the new lease ${lease.address} on ${VXLAN_IF}`);
      this.say(this.m.acquired(lease));
    } catch (e) {
      if (!this.signal.aborted) this.say(this.m.acquireFailed(this.clock.now(), messageOf(e)));
    }
  }

  /**
   * A renewal runs beside the loop: a gateway being re-created answers none, and a loop that
   * waited out the renewal's deadline probed nothing meanwhile. Its end wakes the loop.
   */
  private async startRenewal(id: number, current: Lease, rebind: boolean): Promise<void> {
    let who: DhcpIdentity;
    try {
      who = await this.identity();
    } catch (e) {
      if (this.m.renewalEnded(id)) this.say(this.m.renewFailed(this.clock.now(), current, rebind, messageOf(e)));
      return;
    }
    const child = childSignal(this.signal);
    const r: Renewal = { id, current, rebind, done: Promise.resolve(), abort: child.abort };
    r.done = this.deps.dhcp
      .renew(current, who, { broadcast: rebind, deadlineMs: this.policy.renewDeadlineMs, signal: child.signal })
      .then(
        (lease) => void (r.outcome = { lease }),
        (e) => void (r.outcome = { error: messageOf(e) }),
      )
      .finally(() => {
        child.release();
        this.wakeUp?.();
      });
    this.renewal = r;
  }

  /** The loop's part of a renewal that ended: write the lease, tell the machine. */
  private async finishRenewal(): Promise<void> {
    const r = this.renewal;
    if (!r?.outcome) return;
    this.renewal = undefined;
    if (!this.m.renewalEnded(r.id) || this.signal.aborted) return;
    const o = r.outcome;
    try {
      if ("error" in o) throw new Error(o.error);
      await this.writeLease(o.lease, `renewing ${o.lease.address} on ${VXLAN_IF}`);
      this.say(this.m.renewed(r.current, o.lease, r.rebind));
    } catch (e) {
      this.say(this.m.renewFailed(this.clock.now(), r.current, r.rebind, messageOf(e)));
    }
  }

  // ---- healing

  /**
   * One probe, then what the machine decides. While the gateway is down the lookup of its name
   * goes out with the probe: when the name points elsewhere the probe (which can only time out)
   * is cut short and the tunnel repointed at once.
   */
  private async tick(startedAt: number, lookupWithProbe: boolean, timeoutMs: number): Promise<void> {
    const decision = await scoped(this.signal, (callSignal, abortCall) => this.probe(startedAt, lookupWithProbe, timeoutMs, callSignal, abortCall));
    if (!decision || this.signal.aborted) return;
    if (decision.repair) await scoped(this.signal, (sig) => this.repair(decision.target, sig));
    else if (decision.refresh) await this.refresh();
    else if (decision.forgetGatewayMac) await this.refresh(true);
  }

  /** The probe and the lookup beside it; the machine's decision when the gateway did not answer. */
  private async probe(startedAt: number, lookupWithProbe: boolean, timeoutMs: number, callSignal: AbortSignal, abortCall: () => void) {
    const m = this.m;
    const slowAfter = m.slowProbeLookupAfterMs({ lookup: lookupWithProbe, timeoutMs });
    let found: string | undefined;
    const startLookup = () =>
      this.lookUpGateway(callSignal).then((ip) => {
        found = ip;
        if (m.isMove(ip)) abortCall();
      });
    let lookup = lookupWithProbe ? startLookup() : undefined;
    const slow = slowAfter === undefined ? {} : { slow: { afterMs: slowAfter, then: () => void (lookup ??= startLookup()) } };
    const r = await this.deps.probeOnce(this.overlayGw, { timeoutMs, signal: callSignal, ...slow });
    if (this.signal.aborted) return undefined;
    this.input.monitor?.probe(this.clock.now(), r.alive, r.rttMs);
    const p = m.probed(this.clock.now(), startedAt, r.alive, r.detail, lookup !== undefined);
    this.say(p.notes);
    if (r.alive) {
      // An unfinished lookup is not waited for; aborting keeps its failure, if any, out of the log.
      abortCall();
      return undefined;
    }
    if (lookup) await lookup;
    else if (p.lookupNow) found = await this.lookUpGateway(callSignal);
    return this.signal.aborted ? undefined : m.decide(startedAt, found);
  }

  /** One round of lookups of the gateway's name (each cluster DNS server once); undefined when none answered. */
  private async lookUpGateway(callSignal: AbortSignal): Promise<string | undefined> {
    try {
      return (await this.deps.resolveGateway(this.settings.GATEWAY_NAME, this.settings.K8S_DNS_IPS, { deadlineMs: 0, signal: callSignal })).address;
    } catch (e) {
      if (!callSignal.aborted) this.say(this.m.lookupFailed(messageOf(e)));
      return undefined;
    }
  }

  /** Repair towards gateway pod `gw` (undefined: the tunnel's current remote). */
  private async repair(gw: string | undefined, callSignal: AbortSignal): Promise<void> {
    let facts;
    try {
      facts = await this.deps.host.readFacts();
    } catch (e) {
      this.log.warn(`reading the network state failed: ${messageOf(e)}`);
      return;
    }
    const plan = this.m.planRepair(this.clock.now(), facts, gw);
    if (plan.kind === "reinit") return this.reinit(plan.why, callSignal);
    if (plan.kind === "none") return this.say(plan.notes);
    try {
      await applyLogged(this.deps, plan.changes, `repairing the tunnel to gateway pod ${plan.target}`);
    } catch (e) {
      this.log.warn(`repairing the tunnel failed: ${messageOf(e)}`);
      return;
    }
    this.say(this.m.repaired(plan.target));
  }

  /** Forget the neighbours the tunnel relies on (while the gateway does not answer). Failures are logged at debug: the next tick tries again. */
  private async refresh(gatewayMacOnly = false): Promise<void> {
    try {
      let changes = this.m.cachedRefresh();
      if (!changes) {
        const r = this.m.planRefresh(await this.deps.host.readFacts());
        this.say(r.notes);
        changes = r.changes;
      }
      if (gatewayMacOnly) changes = SidecarMachine.gatewayMacChanges(changes);
      if (changes.length) await this.deps.host.apply(changes, "refreshing the tunnel's neighbours");
    } catch (e) {
      this.log.debug(`refreshing the tunnel's neighbours failed: ${messageOf(e)}`);
    }
  }

  /** client-init's isolation check again, every isolationIntervalMs and when the routes changed; reported, never undone. */
  private async watchIsolation(): Promise<void> {
    const sig = this.deps.routeSignature?.();
    if (!this.m.isolation.due(this.clock.now(), sig)) return;
    let outcome: IsolationOutcome;
    try {
      const { facts, verdict } = await readIsolation(this.deps.host);
      outcome = { verdict, routes4: facts.routes4 };
    } catch (e) {
      outcome = { error: messageOf(e) };
    }
    this.say(this.m.isolation.checked(this.clock.now(), sig, outcome));
  }

  /** The watch connection: the gateway closes it as it leaves, which wakes the loop (issue 11 §6). */
  private stepWatch(): void {
    const m = this.m;
    const w = m.watchStep(this.clock.now());
    if (w.close !== undefined && this.watch?.id === w.close) {
      this.watch.conn.close();
      this.watch = undefined;
    }
    const id = w.open;
    if (id === undefined || !this.deps.openWatch) return;
    const ended = () => void (this.watch?.id === id && (this.watch = undefined));
    const conn = this.deps.openWatch(this.overlayGw, this.settings.GATEWAY_WATCH_PORT, {
      established: () => {
        const r = m.watchEstablished(id, this.clock.now());
        this.say(r.notes);
        if (!r.keep && this.watch?.id === id) this.watch.conn.close(), ended();
      },
      failed: (why) => (ended(), this.say(m.watchFailed(id, this.clock.now(), why))),
      closed: (why) => (ended(), this.say(m.watchClosed(id, this.clock.now(), why)), this.wakeUp?.()),
    });
    this.watch = { id, conn };
  }
}
