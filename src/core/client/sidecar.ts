// The client sidecar's probe cadence and repair schedule. The probe (one DNS datagram) and, while
// the gateway is down, a lookup of its name (one datagram to the cluster DNS) are cheap: they go
// out once per interval, measured from the start of one tick to the start of the next, so a
// gateway that comes back at a new address is seen within one interval. The repair in place
// (reading and changing the pod's network over rtnetlink) is what a long outage must not
// repeat every interval on every routed pod of a node: it backs off, except when the lookup shows
// the gateway moved, which is repaired at once.

export interface ProbePolicy {
  intervalMs: number;
  /** Consecutive failed probes before the sidecar acts (CONNECTION_RETRY_COUNT, at least 1). */
  retryCount: number;
  /** Longest wait between two repairs in place while the gateway stays down at the same address. */
  repairBackoffCapMs: number;
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

/** When the next tick starts: one interval after this one started, never in the past. */
export function planNextTickAt(p: ProbePolicy, tickStartedAt: number, now: number): number {
  return Math.max(now, tickStartedAt + p.intervalMs);
}

/**
 * Whether this tick looks the gateway up along with the probe: only once the sidecar acts on
 * failures (a healthy gateway is not looked up; below the retry count we only confirm).
 */
export function planLookupWithProbe(p: ProbePolicy, failures: number): boolean {
  return failures >= p.retryCount;
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
