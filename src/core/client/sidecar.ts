// The client sidecar's probe cadence: every interval while the gateway answers; while it does not,
// a backoff that grows with each repair attempt and is capped, so a long outage neither spins
// (probes, DNS queries and log lines stay a few per interval) nor delays recovery by much once the
// gateway is back.

export interface ProbePolicy {
  intervalMs: number;
  /** Consecutive failed probes before the sidecar acts (CONNECTION_RETRY_COUNT, at least 1). */
  retryCount: number;
  backoffCapMs: number;
}

/**
 * Delay before the next probe. `failures`: consecutive failed probes; `heals`: repair attempts in
 * this outage. Below the retry count the next probe comes after one interval (confirm quickly);
 * after the k-th repair attempt, interval × 2^(k-1), at most the cap (never below the interval).
 */
export function nextProbeDelayMs(p: ProbePolicy, failures: number, heals: number): number {
  if (failures === 0 || heals === 0) return p.intervalMs;
  const grown = p.intervalMs * 2 ** Math.min(heals - 1, 20);
  return Math.max(p.intervalMs, Math.min(grown, p.backoffCapMs));
}
