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
// signals that cut them short.
import { planClientAddress, planVxlanMtuChange } from "../core/client/plan.ts";
import type { IsolationOutcome } from "../core/client/isolation-watch.ts";
import { newStats, SidecarMachine, type MachinePolicy, type Note, type SidecarStats } from "../core/client/sidecar-machine.ts";
import type { Lease } from "../core/dhcp/types.ts";
import { gatewayOverlayIp, VXLAN_IF } from "../core/net/vxlan.ts";
import type { WatchConnection, WatchHandlers } from "../sys/gateway-watch.ts";
import { addressMode, applyLogged, dhcpIdentity, messageOf, networkInput, readIsolation, runClientInit, type ClientDeps, type ClientInput, type DhcpIdentity } from "./client-init.ts";

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
  const { clock, log } = deps;
  const policy = sidecarPolicy(input, input.policy);
  const s = input.settings;
  const overlayGw = gatewayOverlayIp(s.VXLAN_IP_NETWORK);
  // The DHCP identity comes from the name and eth0's IPv4 address (as client-init's does), so it is
  // known once the network was read; a lease can only be held after that.
  let id: DhcpIdentity | undefined;
  const identity = async (): Promise<DhcpIdentity> => (id ??= dhcpIdentity(input, await deps.host.readFacts()));
  const mode = addressMode(input);
  const { gatewayPodIp: _, ...netInput } = networkInput(input, "");
  const m = new SidecarMachine(
    {
      policy,
      mode: mode.kind === "static" ? { kind: "static", address: mode.address } : { kind: "dhcp" },
      network: s.VXLAN_IP_NETWORK,
      overlayGw,
      netInput,
      requestedAddress: input.requestedAddress,
      ...(deps.random ? { random: deps.random } : {}),
      watchPort: deps.openWatch ? s.GATEWAY_WATCH_PORT : 0,
    },
    clock.now(),
    stats,
  );
  const say = (notes: readonly Note[]) => {
    for (const n of notes) log[n.level](n.text);
  };

  const podDone = new AbortController();
  const signal = AbortSignal.any([input.signal, podDone.signal]);
  let exitReason: SidecarExit["reason"] = "signal";
  // Release the lease at exit only when nothing else in the pod can still use the address
  // (issue 13 §7): the rest of the pod is done, or we are a native sidecar (the kubelet stops
  // those after the app containers). A plain SIGTERM reaches the app's containers at the same
  // time, so the address stays leased to lapse rather than go to another pod while in use.
  let releaseAtExit = false;
  if (deps.watchPodDone) {
    deps
      .watchPodDone(signal)
      .then((r) => {
        if (r === "done") {
          log.info("every other container of this pod has finished: releasing the lease and exiting");
          exitReason = "pod-done";
          releaseAtExit = true;
          podDone.abort();
        } else if (r === "native-sidecar") {
          log.info("running as a native sidecar: the kubelet stops this container when the pod is done");
          releaseAtExit = true;
        }
      })
      .catch((e) => log.warn(`watching the pod for completion failed: ${messageOf(e)}; routing continues`));
  }

  // A "renew" event cuts the current sleep short.
  let wakeUp: (() => void) | undefined;
  const onRenew = () => {
    m.requestRenewal();
    wakeUp?.();
  };
  input.events?.addEventListener("renew", onRenew);
  const nap = (ms: number) =>
    scoped(signal, async (sleepSignal, abort) => {
      wakeUp = abort;
      try {
        await clock.sleep(ms, sleepSignal);
      } finally {
        wakeUp = undefined;
      }
    });

  // A renewal runs beside the loop (the machine's `renewing`): a gateway being re-created answers
  // none, and a loop that waited out the renewal's deadline probed nothing meanwhile. Only the
  // DHCP exchange runs beside it; the lease is written to the kernel by the loop, between its
  // other changes of the network.
  // (Declared before reinit, which aborts it, and which the start may already call.)
  interface Renewal {
    id: number;
    current: Lease;
    rebind: boolean;
    outcome?: { lease: Lease } | { error: string };
    done: Promise<void>;
    abort(): void;
  }
  let renewal: Renewal | undefined;

  /** The tunnel's ARP retransmit time (SidecarMachine.tunnelTuning); a failure is logged, routing goes on. */
  const tune = async (): Promise<void> => {
    try {
      await applyLogged(deps, m.tunnelTuning(), "tuning the tunnel");
    } catch (e) {
      log.warn(`setting ${VXLAN_IF}'s ARP retransmit time failed: ${messageOf(e)}; a new gateway may take up to a second longer to be reached`);
    }
  };

  /** Full client-init. Failure is logged; the next repair tries again. */
  const reinit = async (why: string, callSignal: AbortSignal): Promise<void> => {
    say(m.reinitStarted(why));
    renewal?.abort(); // overtaken: client-init gets (or keeps) the lease
    try {
      const r = await runClientInit(deps, {
        ...input,
        signal: callSignal,
        requestedAddress: m.reinitAddress(),
        // Short deadlines: a failed re-init is tried again by the next repair.
        timing: { resolveDeadlineMs: policy.resolveDeadlineMs, probeDeadlineMs: 3000, ...input.timing },
      });
      say(m.reinitDone(r));
      await tune();
    } catch (e) {
      say(m.reinitFailed(messageOf(e)));
    }
  };

  // ---- start: take over what client-init left in the kernel
  if (mode.kind === "static" && mode.shared) log.warn(mode.shared);
  try {
    const facts = await deps.host.readFacts();
    id ??= dhcpIdentity(input, facts);
    const st = m.start(clock.now(), facts);
    say(st.notes);
    const why = st.reinit;
    if (why) await scoped(signal, (sig) => reinit(why, sig));
    else await tune();
  } catch (e) {
    log.warn(`reading the network state failed: ${messageOf(e)}`);
  }

  // ---- lease upkeep
  const writeLease = async (lease: Lease, what: string) => {
    const f = await deps.host.readFacts();
    const mtu = planVxlanMtuChange(f, { vpnInterfaceMtu: s.VPN_INTERFACE_MTU, dhcpMtu: lease.mtu });
    await applyLogged(deps, [...mtu, ...planClientAddress(f, s.VXLAN_IP_NETWORK, m.leaseAddress(lease, clock.now()))], what);
  };

  const acquire = async (fallbackAddress: string | undefined): Promise<void> => {
    try {
      const facts = await deps.host.readFacts();
      const who = (id ??= dhcpIdentity(input, facts));
      const cur = m.ourAddress(facts);
      const lease = await scoped(signal, (sig) => deps.dhcp.acquire(who, { requestedAddress: cur?.local ?? fallbackAddress, deadlineMs: policy.renewDeadlineMs, signal: sig }));
      await writeLease(lease, `setting the new lease ${lease.address} on ${VXLAN_IF}`);
      say(m.acquired(lease));
    } catch (e) {
      if (!signal.aborted) say(m.acquireFailed(clock.now(), messageOf(e)));
    }
  };

  const startRenewal = async (id: number, current: Lease, rebind: boolean): Promise<void> => {
    let who: DhcpIdentity;
    try {
      who = await identity();
    } catch (e) {
      if (m.renewalEnded(id)) say(m.renewFailed(clock.now(), current, rebind, messageOf(e)));
      return;
    }
    const child = childSignal(signal);
    const r: Renewal = { id, current, rebind, done: Promise.resolve(), abort: child.abort };
    r.done = deps.dhcp
      .renew(current, who, { broadcast: rebind, deadlineMs: policy.renewDeadlineMs, signal: child.signal })
      .then(
        (lease) => void (r.outcome = { lease }),
        (e) => void (r.outcome = { error: messageOf(e) }),
      )
      .finally(() => {
        child.release();
        wakeUp?.();
      });
    renewal = r;
  };
  /** The loop's part of a renewal that ended: write the lease, tell the machine. */
  const finishRenewal = async (): Promise<void> => {
    const r = renewal;
    if (!r?.outcome) return;
    renewal = undefined;
    if (!m.renewalEnded(r.id) || signal.aborted) return;
    const o = r.outcome;
    try {
      if ("error" in o) throw new Error(o.error);
      await writeLease(o.lease, `renewing ${o.lease.address} on ${VXLAN_IF}`);
      say(m.renewed(r.current, o.lease, r.rebind));
    } catch (e) {
      say(m.renewFailed(clock.now(), r.current, r.rebind, messageOf(e)));
    }
  };

  // ---- healing
  /** One round of lookups of the gateway's name (each cluster DNS server once); undefined when none answered. */
  const lookUpGateway = async (callSignal: AbortSignal): Promise<string | undefined> => {
    try {
      return (await deps.resolveGateway(s.GATEWAY_NAME, s.K8S_DNS_IPS, { deadlineMs: 0, signal: callSignal })).address;
    } catch (e) {
      if (!callSignal.aborted) say(m.lookupFailed(messageOf(e)));
      return undefined;
    }
  };

  /** Repair towards gateway pod `gw` (undefined: the tunnel's current remote). */
  const repair = async (gw: string | undefined, callSignal: AbortSignal): Promise<void> => {
    let facts;
    try {
      facts = await deps.host.readFacts();
    } catch (e) {
      log.warn(`reading the network state failed: ${messageOf(e)}`);
      return;
    }
    const plan = m.planRepair(clock.now(), facts, gw);
    if (plan.kind === "reinit") return reinit(plan.why, callSignal);
    if (plan.kind === "none") return say(plan.notes);
    try {
      await applyLogged(deps, plan.changes, `repairing the tunnel to gateway pod ${plan.target}`);
    } catch (e) {
      log.warn(`repairing the tunnel failed: ${messageOf(e)}`);
      return;
    }
    say(m.repaired(plan.target));
  };

  /** Forget the neighbours the tunnel relies on (while the gateway does not answer). Failures are logged at debug: the next tick tries again. */
  const refresh = async (gatewayMacOnly = false): Promise<void> => {
    try {
      let changes = m.cachedRefresh();
      if (!changes) {
        const r = m.planRefresh(await deps.host.readFacts());
        say(r.notes);
        changes = r.changes;
      }
      if (gatewayMacOnly) changes = SidecarMachine.gatewayMacChanges(changes);
      if (changes.length) await deps.host.apply(changes, "refreshing the tunnel's neighbours");
    } catch (e) {
      log.debug(`refreshing the tunnel's neighbours failed: ${messageOf(e)}`);
    }
  };

  /**
   * One probe. While the gateway is down the lookup of its name goes out with it: when the name
   * points elsewhere the probe (which can only time out) is cut short and the tunnel repointed at once.
   */
  const tick = async (startedAt: number, lookupWithProbe: boolean, timeoutMs: number): Promise<void> => {
    const slowAfter = m.slowProbeLookupAfterMs({ lookup: lookupWithProbe, timeoutMs });
    const decision = await scoped(signal, async (callSignal, abortCall) => {
      let found: string | undefined;
      const startLookup = () =>
        lookUpGateway(callSignal).then((ip) => {
          found = ip;
          if (m.isMove(ip)) abortCall();
        });
      let lookup = lookupWithProbe ? startLookup() : undefined;
      const slow = slowAfter === undefined ? {} : { slow: { afterMs: slowAfter, then: () => void (lookup ??= startLookup()) } };
      const r = await deps.probeOnce(overlayGw, { timeoutMs, signal: callSignal, ...slow });
      if (signal.aborted) return undefined;
      input.monitor?.probe(clock.now(), r.alive, r.rttMs);
      const p = m.probed(clock.now(), startedAt, r.alive, r.detail, lookup !== undefined);
      say(p.notes);
      if (r.alive) {
        // An unfinished lookup is not waited for; aborting keeps its failure, if any, out of the log.
        abortCall();
        return undefined;
      }
      if (lookup) await lookup;
      else if (p.lookupNow) found = await lookUpGateway(callSignal);
      return signal.aborted ? undefined : m.decide(startedAt, found);
    });
    if (!decision || signal.aborted) return;
    if (decision.repair) await scoped(signal, (sig) => repair(decision.target, sig));
    else if (decision.refresh) await refresh();
    else if (decision.forgetGatewayMac) await refresh(true);
  };

  // ---- isolation: client-init's check again, every isolationIntervalMs and when the routes changed; reported, never undone
  const watchIsolation = async (): Promise<void> => {
    const sig = deps.routeSignature?.();
    if (!m.isolation.due(clock.now(), sig)) return;
    let outcome: IsolationOutcome;
    try {
      const { facts, verdict } = await readIsolation(deps.host);
      outcome = { verdict, routes4: facts.routes4 };
    } catch (e) {
      outcome = { error: messageOf(e) };
    }
    say(m.isolation.checked(clock.now(), sig, outcome));
  };

  // ---- the watch connection: the gateway closes it as it leaves, which wakes the loop (issue 11 §6)
  let watch: { id: number; conn: WatchConnection } | undefined;
  const stepWatch = (): void => {
    const w = m.watchStep(clock.now());
    if (w.close !== undefined && watch?.id === w.close) {
      watch.conn.close();
      watch = undefined;
    }
    const id = w.open;
    if (id === undefined || !deps.openWatch) return;
    const ended = () => void (watch?.id === id && (watch = undefined));
    watch = {
      id,
      conn: deps.openWatch(overlayGw, s.GATEWAY_WATCH_PORT, {
        established: () => {
          const r = m.watchEstablished(id, clock.now());
          say(r.notes);
          if (!r.keep && watch?.id === id) watch.conn.close(), ended();
        },
        failed: (why) => (ended(), say(m.watchFailed(id, clock.now(), why))),
        closed: (why) => (ended(), say(m.watchClosed(id, clock.now(), why)), wakeUp?.()),
      }),
    };
  };

  // ---- the loop
  while (!signal.aborted) {
    await finishRenewal();
    stepWatch();
    const { step, notes } = m.next(clock.now());
    say(notes);
    if (step.kind === "sleep") {
      // A renewal that ended while the loop was busy is handled before sleeping.
      if (renewal?.outcome) continue;
      await nap(Math.max(0, step.untilMs - clock.now()));
    } else if (step.kind === "acquire") await acquire(step.fallbackAddress);
    else if (step.kind === "renew") await startRenewal(step.renewal, step.lease, step.rebind);
    else {
      await tick(step.startedAt, step.lookup, step.timeoutMs);
      if (!signal.aborted) await watchIsolation();
      m.tickDone(step.startedAt, clock.now());
    }
    input.monitor?.turn(clock.now(), stats, m.lease);
  }
  input.events?.removeEventListener("renew", onRenew);
  watch?.conn.close();
  if (renewal) {
    renewal.abort();
    await renewal.done;
  }

  // ---- shutdown: release (or shorten the lease) within the second Kubernetes users expect
  let released = false;
  const live = m.release(clock.now());
  // A lease is only held once the network was read, and with it the identity.
  const who = id;
  /** `work` or the release timeout, whichever ends first; false on failure or timeout. */
  const bounded = async (what: string, work: Promise<unknown>): Promise<boolean> => {
    const timeout = new AbortController();
    let settled = false;
    const ok = await Promise.race([
      work.then(
        () => true,
        (e) => (log.warn(`${what} failed: ${messageOf(e)}`), false),
      ),
      clock.sleep(policy.releaseTimeoutMs, timeout.signal).then(() => {
        if (!settled) log.warn(`${what} took longer than ${policy.releaseTimeoutMs} ms; exiting anyway`);
        return false;
      }),
    ]);
    settled = true;
    timeout.abort();
    return ok;
  };
  if (live && who && releaseAtExit) {
    released = await bounded(`releasing the DHCP lease of ${live.address}`, deps.dhcp.release(live, who));
    if (released) log.info(`released the DHCP lease of ${live.address}`);
  } else if (live && who) {
    // Not released: the pod's other containers may still use the address. Not left at its full
    // time either: pods that come and go would drain the pool with 12 h leases. A renewal asking
    // for a short lease keeps the address with this pod for its grace period and frees it soon
    // after. The kernel's copy is shortened too, so a sidecar restarted in the same pod renews in time.
    let granted: Lease | undefined;
    const ok = await bounded(
      `shortening the DHCP lease of ${live.address}`,
      (async () => {
        granted = await deps.dhcp.renew(live, who, { broadcast: false, deadlineMs: policy.releaseTimeoutMs, leaseSeconds: policy.shutdownLeaseSeconds });
        await writeLease(granted, `shortening the lease of ${granted.address} on ${VXLAN_IF}`);
      })(),
    );
    if (ok && granted) log.info(`not releasing the DHCP lease of ${live.address}: the pod's other containers may still use the address; shortened it to ${granted.leaseSeconds} s, after which the gateway reclaims it`);
    else log.info(`not releasing the DHCP lease of ${live.address}: the pod's other containers may still use the address; the gateway reclaims it when the lease lapses`);
  }
  return { reason: exitReason, released, stats };
}
