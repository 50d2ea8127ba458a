// What the client sidecar tells operators: its metrics, and the status its probe reads. Pure: the
// driver (src/roles/client-sidecar.ts) reports events with the time they happened; the command
// serves status() on the status socket and registry.render() on /metrics when asked to.
import type { ClientStatus } from "../health.ts";
import type { Lease } from "../dhcp/types.ts";
import { leaseTimes } from "../dhcp/types.ts";
import { MetricsRegistry } from "./registry.ts";

/** Counts kept by the sidecar's state machine (SidecarStats), read after each turn of its loop. */
export interface ClientCounts {
  heals: number;
  reinits: number;
  renewals: number;
  failedRenewals: number;
  /** The gateway answered again after CONNECTION_RETRY_COUNT failed probes. */
  recoveries: number;
  /** Established watch connections the gateway ended (it said it was leaving). */
  watchGoodbyes?: number;
  /** The sidecar's isolation watch (IsolationWatch): holds undefined until its first check. */
  isolation?: { holds: boolean | undefined; problem: string | undefined };
}

export interface ClientMonitorConfig {
  intervalMs: number;
  /** Consecutive failed probes before the gateway counts as unreachable (CONNECTION_RETRY_COUNT). */
  retryCount: number;
  version: string;
  commit: string;
  /** Keep the metrics (false when no port serves them); default true. */
  metrics?: boolean;
}

/**
 * Probe round trips are a fraction of a millisecond in the lab (one hop over the overlay) and up to
 * the 500 ms probe timeout; the buckets span both.
 */
export const PROBE_RTT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5];

function clientFamilies(r: MetricsRegistry) {
  return {
    build: r.gauge("pod_gateway_build_info", "The running pod-gateway: version and commit (value 1).", ["version", "commit", "role"]),
    reachable: r.gauge("pod_gateway_client_gateway_reachable", "1 when the gateway answered the last probe through the tunnel (0 after CONNECTION_RETRY_COUNT failed probes)."),
    lastAnswer: r.gauge("pod_gateway_client_gateway_last_answer_timestamp_seconds", "When the gateway last answered a probe, seconds since the epoch."),
    rtt: r.histogram("pod_gateway_client_probe_rtt_seconds", "Round trip of the DNS probe to the gateway's overlay address.", PROBE_RTT_BUCKETS),
    probes: r.counter("pod_gateway_client_probes_total", "Probes of the gateway, by result.", ["result"]),
    recoveries: r.counter("pod_gateway_client_recoveries_total", "Times the gateway answered again after being unreachable."),
    goodbyes: r.counter("pod_gateway_client_watch_goodbyes_total", "Times the gateway ended the watch connection (GATEWAY_WATCH_PORT): it was leaving."),
    repairs: r.counter("pod_gateway_client_repairs_total", "Repairs of the tunnel: in_place (remote and neighbours) or reinit (the tunnel rebuilt).", ["kind"]),
    renewals: r.counter("pod_gateway_client_dhcp_renewals_total", "DHCP lease renewals, by result.", ["result"]),
    leaseExpiry: r.gauge("pod_gateway_client_lease_expiry_timestamp_seconds", "When the current DHCP lease expires, seconds since the epoch (absent without an expiring lease)."),
    isolated: r.gauge("pod_gateway_client_isolated", "1 while the sidecar's isolation watch finds no route around the tunnel, 0 when it found one (absent before its first check)."),
  };
}

/**
 * With `metrics: false` (the port is 0) no registry exists and nothing but the few times the
 * probe reads is kept: metrics off costs no work per probe.
 */
export class ClientMonitor {
  readonly registry: MetricsRegistry | undefined;
  private readonly m: ReturnType<typeof clientFamilies> | undefined;
  private lastTurnAt: number;
  private lastAnswerAt: number | undefined;
  private failures = 0;
  private reachable: boolean | undefined;
  private watch: { holds: boolean | undefined; problem: string | undefined } | undefined;

  constructor(
    readonly cfg: ClientMonitorConfig,
    now: number,
  ) {
    this.lastTurnAt = now;
    if (cfg.metrics === false) return;
    this.registry = new MetricsRegistry();
    const m = (this.m = clientFamilies(this.registry));
    m.build.set(1, { version: cfg.version, commit: cfg.commit, role: "client-sidecar" });
    m.reachable.set(0);
    for (const result of ["ok", "failed"]) m.probes.inc(0, { result });
    for (const kind of ["in_place", "reinit"]) m.repairs.inc(0, { kind });
    for (const result of ["ok", "failed"]) m.renewals.inc(0, { result });
  }

  /**
   * One probe's outcome. The lines for reachability changes are the sidecar machine's (it counts
   * the failures and the recoveries, and names these metrics in them): one line per change.
   */
  probe(now: number, alive: boolean, rttMs: number | undefined): void {
    this.m?.probes.inc(1, { result: alive ? "ok" : "failed" });
    if (alive) {
      this.failures = 0;
      this.lastAnswerAt = now;
      this.m?.lastAnswer.set(now / 1000);
      if (rttMs !== undefined) this.m?.rtt.observe(rttMs / 1000);
      this.reachable = true;
      this.m?.reachable.set(1);
      return;
    }
    this.failures++;
    if (this.failures >= this.cfg.retryCount) {
      this.reachable = false;
      this.m?.reachable.set(0);
    }
  }

  /** Has the gateway answered since start (a probe of the loop, or one made for readiness)? */
  get answeredSinceStart(): boolean {
    return this.lastAnswerAt !== undefined;
  }

  /**
   * An answer seen outside the loop (the readiness check probes once before the loop's first
   * probe, an interval after start): readiness only, no probe counted.
   */
  answered(now: number): void {
    if (this.lastAnswerAt !== undefined) return;
    this.lastAnswerAt = now;
    if (this.reachable === undefined) {
      this.reachable = true;
      this.m?.reachable.set(1);
    }
    this.m?.lastAnswer.set(now / 1000);
  }

  /** The end of one turn of the sidecar's loop: liveness, and the machine's counts and lease. */
  turn(now: number, counts: ClientCounts, lease: Lease | undefined): void {
    this.lastTurnAt = now;
    this.watch = counts.isolation && { holds: counts.isolation.holds, problem: counts.isolation.problem };
    if (this.watch?.holds === undefined) this.m?.isolated.clear();
    else this.m?.isolated.set(this.watch.holds ? 1 : 0);
    this.m?.recoveries.set(counts.recoveries);
    this.m?.goodbyes.set(counts.watchGoodbyes ?? 0);
    this.m?.repairs.set(counts.heals, { kind: "in_place" });
    this.m?.repairs.set(counts.reinits, { kind: "reinit" });
    this.m?.renewals.set(counts.renewals, { result: "ok" });
    this.m?.renewals.set(counts.failedRenewals, { result: "failed" });
    const t = lease && leaseTimes(lease);
    if (t) this.m?.leaseExpiry.set(Math.round(t.expiry / 1000));
    else this.m?.leaseExpiry.clear();
  }

  /**
   * `isolation`: the route lookups made for a readiness answer. Isolation holds when they find no
   * route around the tunnel AND the sidecar's isolation watch (its last check) found none: a leak
   * either one sees makes the pod not ready.
   */
  status(now: number, version: string, lookups?: { ok: boolean; detail: string }): ClientStatus {
    let isolation = lookups;
    if (lookups && this.watch?.holds === false) isolation = { ok: false, detail: `the sidecar's isolation watch: ${this.watch.problem ?? "a route around the tunnel"}${lookups.ok ? "" : `; now: ${lookups.detail}`}` };
    return {
      role: "client-sidecar",
      version,
      tickAgeMs: Math.max(0, now - this.lastTurnAt),
      intervalMs: this.cfg.intervalMs,
      gatewayAnswerAgeMs: this.lastAnswerAt === undefined ? undefined : Math.max(0, now - this.lastAnswerAt),
      gatewayReachable: this.reachable === true,
      ...(isolation ? { isolation } : {}),
    };
  }
}
