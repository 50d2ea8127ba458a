// The client sidecar's probe cadence and repair schedule. The probe (one DNS datagram) goes out
// once per interval, measured from the start of one tick to the start of the next — and faster
// (lostIntervalMs) while the gateway is lost, for the first fastWindowMs of an outage, so a gateway
// that is back is seen within a fraction of a second. From the first failed probe, the gateway's
// name is looked up again (one datagram to the cluster DNS) on its own jittered schedule: every
// routed pod of a cluster loses the gateway in the same instant, and lookups in lockstep would hit
// the cluster DNS as one burst per round; a regular probe that goes unanswered for slowProbeMs
// has one lookup alongside it (at a jittered point before its timeout), so that a gateway re-created
// at a new IP at once is followed before the probe times out. The repair in place (reading and
// changing the pod's network over rtnetlink) is what a long outage must not repeat every interval
// on every routed pod of a node: it waits for the retry count and backs off, except when the lookup
// shows the gateway moved, which is repaired at once. The neighbour refresh (a few local netlink
// requests) is not a repair: it goes with a failed tick from the first failure, at most every
// refreshIntervalMs, because a gateway re-created at the same pod IP is only reached again once
// the kernel forgets the old pod's MAC.

export interface ProbePolicy {
  intervalMs: number;
  /** Consecutive failed probes before the sidecar acts (CONNECTION_RETRY_COUNT, at least 1). */
  retryCount: number;
  /** Longest wait between two repairs in place while the gateway stays down at the same address. */
  repairBackoffCapMs: number;
  /** The probe's answer is waited for this long (shortened to lostIntervalMs while lost, see planProbeTimeout). */
  probeTimeoutMs: number;
  /** The probe cadence while the gateway is lost (at most intervalMs), for the first fastWindowMs of the outage. */
  lostIntervalMs: number;
  /** The mean gap between two lookups of the gateway's name while lost (intervalMs after the fast window). */
  lookupIntervalMs: number;
  /** Each gap is the mean × (1 ± lookupJitter), uniformly; the first lookup of an outage comes within one mean gap. */
  lookupJitter: number;
  /** How long an outage is probed and looked up at the fast cadence; after that, at intervalMs. */
  fastWindowMs: number;
  /**
   * Least time between two neighbour refreshes in one outage. Each refresh makes the pod ARP
   * for the gateway again, a broadcast every pod on a bridge CNI's node sees: at every 250 ms
   * probe, 200 pods made a storm of 160,000 ARP frames a second on one bridge.
   */
  refreshIntervalMs: number;
  /**
   * A probe of a gateway that was answering, unanswered this long, has the gateway's name looked
   * up alongside (at a random point between this and its timeout; see planSlowProbeLookupAt).
   */
  slowProbeMs: number;
}

/**
 * A probe of a gateway that was answering, still unanswered `slowProbeMs` after it left: when
 * (ms after the probe left) to look the gateway's name up alongside it, or undefined when the
 * probe's timeout comes first. A gateway re-created at a new IP at once (gone and ready within a
 * second) is noticed only by the next regular probe; looked up while that probe waits, the move
 * is found before its timeout, and the probe is cut short — instead of the timeout and then the
 * first lookup's jittered wait. Uniform over [slowProbeMs, timeout): pods whose probes go out
 * together spread their lookups over that window, as they spread an outage's first lookups.
 * A healthy gateway answers in well under a millisecond (30 ms the worst seen on a loaded
 * machine), so a false alarm is one DNS datagram.
 */
export function planSlowProbeLookupAt(p: ProbePolicy, timeoutMs: number, random: number): number | undefined {
  if (p.slowProbeMs >= timeoutMs) return undefined;
  return p.slowProbeMs + random * (timeoutMs - p.slowProbeMs);
}

/** Whether the sidecar is in the fast part of an outage: lost (a probe failed) since `downSince`, less than fastWindowMs ago. */
export function planFast(p: ProbePolicy, downSince: number | undefined, now: number): boolean {
  return downSince !== undefined && now - downSince < p.fastWindowMs;
}

/** The wait for one probe's answer: the policy's, but no longer than the fast cadence while lost. */
export function planProbeTimeout(p: ProbePolicy, fast: boolean): number {
  return fast ? Math.min(p.probeTimeoutMs, p.lostIntervalMs) : p.probeTimeoutMs;
}

/**
 * When the next lookup of the gateway's name goes out. `first`: the outage's first (the sidecar
 * just started acting): somewhere in [now, now + mean), so that pods that lost the gateway
 * together spread their first lookups over a whole gap. Later ones: mean × (1 ± jitter) after
 * this one. `random` is uniform in [0, 1).
 */
export function planNextLookupAt(p: ProbePolicy, now: number, fast: boolean, first: boolean, random: number): number {
  const mean = fast ? Math.min(p.lookupIntervalMs, p.intervalMs) : p.intervalMs;
  if (first) return now + random * mean;
  const j = Math.min(Math.max(p.lookupJitter, 0), 1);
  return now + mean * (1 - j + 2 * j * random);
}

/** What the loop remembers about the current outage. */
export interface OutageState {
  /** Consecutive failed probes. */
  failures: number;
  /** Repairs made in this outage. */
  repairs: number;
  /** Start of the tick that made the last repair. */
  lastRepairTickAt: number | undefined;
}

/** When the next tick starts: one interval (the fast one while `fast`) after this one started, never in the past. */
export function planNextTickAt(p: ProbePolicy, tickStartedAt: number, now: number, fast = false): number {
  return Math.max(now, tickStartedAt + (fast ? Math.min(p.lostIntervalMs, p.intervalMs) : p.intervalMs));
}

/**
 * Whether the gateway's name is looked up (on its jittered schedule) and the tunnel's neighbours
 * refreshed: from the first failed probe on, whatever CONNECTION_RETRY_COUNT says. A healthy
 * gateway is not looked up. The retry count still holds back the repair in place (reading and
 * rewriting the network) and the "unreachable" state; but a gateway re-created at a new IP or
 * with a new MAC can only be found by a lookup and a refresh, and waiting for more failed probes
 * before either added a whole probe interval or more (plus a timeout) to every recovery
 * (issue 11 §6). A false alarm costs one DNS datagram and a few local netlink requests.
 */
export function planLookupWithProbe(_p: ProbePolicy, failures: number): boolean {
  return failures >= 1;
}

/** Wait after the k-th repair (k ≥ 1) before the next one: interval × 2^(k-1), capped, never below the interval. */
export function repairDelayMs(p: ProbePolicy, repairs: number): number {
  const grown = p.intervalMs * 2 ** Math.min(Math.max(repairs - 1, 0), 20);
  return Math.max(p.intervalMs, Math.min(grown, p.repairBackoffCapMs));
}

/**
 * Whether the tick that started at `tickStartedAt` repairs, given the state after its probe.
 * `moved`: the lookup answered an address other than the tunnel's remote.
 */
export function planRepair(p: ProbePolicy, s: OutageState, tickStartedAt: number, moved: boolean): boolean {
  if (moved) return true;
  if (s.failures < p.retryCount) return false;
  if (s.repairs === 0 || s.lastRepairTickAt === undefined) return true;
  return tickStartedAt - s.lastRepairTickAt >= repairDelayMs(p, s.repairs);
}
