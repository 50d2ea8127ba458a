// The client sidecar's decisions as a pure state machine: which address is ours, when to get,
// renew or rebind the DHCP lease, when to probe and look the gateway up, when and how to repair
// (in place, or a full re-initialisation), what to release at the end. No sockets, no clock reads,
// no sleeping: the driver (src/roles/client-sidecar.ts) asks next(now) what to do, does it, and
// reports the outcome back with the time. Every method returns the log lines it decided on
// (`notes`), so the words are tested with the decisions.
//
//   loop:   next(now) → acquire | renew/rebind | tick | sleep(until)
//   tick:   probe (+ lookup when one is due) → probed() → decide() → repair target? neighbour refresh?
//   repair: planRepair(facts) → reinit | apply(changes) | nothing → repaired()
//   refresh: planNeighbourRefresh(facts) → apply(changes)
//   watch:  watchStep(now) → close/open the watch connection → watchEstablished | watchFailed | watchClosed
//   end:    release() → the lease to release, if it is still good
import { leaseTimes, type Lease } from "../dhcp/types.ts";
import { addressLifetime, leaseFromAddress, planLeaseStep, type LeaseStep } from "./lease.ts";
import { planClientAddress, planClientNetwork, stateChanges, type Change, type ClientNetworkInput } from "./plan.ts";
import { planFast, planLookupWithProbe, planNextLookupAt, planNextTickAt, planProbeTimeout, planRepair as planRepairNow, planSlowProbeLookupAt, type OutageState, type ProbePolicy } from "./sidecar.ts";
import { parsePrefix4, prefixContains } from "../net/ipv4.ts";
import { simulateChanges } from "./simulate.ts";
import type { AddressFact, ClientFacts } from "./facts.ts";
import { POD_IF, VXLAN_IF } from "../net/vxlan.ts";
import { IsolationWatch, type IsolationState } from "./isolation-watch.ts";

export type Note = { level: "trace" | "debug" | "info" | "warn" | "error"; text: string };

export type SidecarMode = { kind: "static"; address: string } | { kind: "dhcp" };

export interface MachinePolicy extends ProbePolicy {
  /** DHCP mode without a lease: the wait between two attempts to get a new one. */
  reacquireDelayMs: number;
  /** How often the pod's isolation is re-checked besides on route changes (IsolationWatch). */
  isolationIntervalMs: number;
  /**
   * A watch connection that never got established (refused, unanswered, no greeting: an older
   * gateway, or a firewall in the way) is tried again this long after the first failure, twice as
   * long after each further one, up to watchRetryCapMs.
   */
  watchRetryMs: number;
  watchRetryCapMs: number;
  /** After a goodbye, a gateway that has answered every probe this long is back even without a new watch. */
  leavingConfirmMs: number;
}

export interface MachineConfig {
  policy: MachinePolicy;
  mode: SidecarMode;
  /** VXLAN_IP_NETWORK, "172.16.0". */
  network: string;
  /** The gateway's overlay address <network>.1 (also the DHCP server). */
  overlayGw: string;
  /** What the planner needs besides the gateway pod's address. */
  netInput: Omit<ClientNetworkInput, "gatewayPodIp">;
  /** An address held before the sidecar started (asked for again). */
  requestedAddress?: string;
  /** Uniform in [0, 1): spreads the lookups of pods that lost the gateway together (default Math.random). */
  random?: () => number;
  /** GATEWAY_WATCH_PORT: the gateway's watch port on overlayGw (0 or absent: no watch connection). */
  watchPort?: number;
}

/**
 * What the driver does about the watch connection: close the one it holds (`close`, its number:
 * a close of ours, never a goodbye), then open a new one (`open`, the number its outcome is
 * reported with).
 */
export interface WatchStep {
  close?: number;
  open?: number;
}

type WatchState = { kind: "off" } | { kind: "idle" } | { kind: "connecting"; id: number } | { kind: "open"; id: number };

export interface SidecarStats {
  probes: number;
  failedProbes: number;
  heals: number;
  gatewayMoves: number;
  reinits: number;
  renewals: number;
  failedRenewals: number;
  leasesAcquired: number;
  /** The gateway answered again after CONNECTION_RETRY_COUNT failed probes (pod_gateway_client_recoveries_total). */
  recoveries: number;
  /** Established watch connections that the gateway ended: it told us it was leaving. */
  watchGoodbyes: number;
  /** Whether the pod is still isolated (no route around the tunnel): readiness reads `isolation.holds`. */
  isolation: IsolationState;
}

export function newStats(): SidecarStats {
  return {
    probes: 0, failedProbes: 0, heals: 0, gatewayMoves: 0, reinits: 0, renewals: 0, failedRenewals: 0, leasesAcquired: 0, recoveries: 0, watchGoodbyes: 0,
    isolation: { holds: undefined, problem: undefined, checks: 0 },
  };
}

export type NextStep =
  /** DHCP mode without a lease: get one (ask for `fallbackAddress` unless the kernel shows ours). */
  | { kind: "acquire"; fallbackAddress: string | undefined }
  /**
   * Start renewing (rebinding) `lease`. The driver runs the exchange beside the loop, which goes
   * on probing meanwhile, and reports its end with renewalEnded(renewal) first: a renewal that a
   * re-initialisation overtook no longer counts.
   */
  | { kind: "renew"; lease: Lease; rebind: boolean; renewal: number }
  /** Probe the gateway (waiting `timeoutMs` for its answer); look its name up alongside when `lookup`. */
  | { kind: "tick"; startedAt: number; lookup: boolean; timeoutMs: number }
  | { kind: "sleep"; untilMs: number };

export type RepairPlan =
  | { kind: "reinit"; why: string }
  | { kind: "apply"; target: string; changes: Change[] }
  | { kind: "none"; notes: Note[] };

export interface ReinitOutcome {
  gatewayPodIp: string;
  address: string;
  mode: "static" | "dhcp";
  lease: Lease | undefined;
}

const note = (level: Note["level"], text: string): Note => ({ level, text });

export class SidecarMachine {
  readonly stats: SidecarStats;
  gatewayIp: string | undefined;
  lease: Lease | undefined;
  private leaseFailedAt: number | undefined;
  /** The address of the last lease, asked for again when a new lease is needed. */
  private lastAddress: string | undefined;
  /** Why a renewal is due at the next step (SIGUSR1, a restart, the gateway back after an outage). */
  private renewRequested: string | undefined;
  /** The gateway is back after an outage: when this pod announces its lease to it (ANNOUNCE_SPREAD_MS). */
  private announceAt: number | undefined;
  /** DHCP mode without a lease (it expired, or re-acquiring failed): when to try again. */
  private reacquireAt: number | undefined;
  /**
   * The renewal in flight (its number), run beside the loop. Measured: a renewal sent to a
   * gateway that is being re-created waits its whole deadline (5 s) for an answer, and while the
   * loop waited with it, no probe saw the new gateway — the last of 200 pods back 5.1 s after it
   * was ready. One renewal at a time; what falls due meanwhile (T1, an announce) waits for its end.
   */
  private renewing: number | undefined;
  private renewalCount = 0;
  private readonly outage: OutageState = { failures: 0, repairs: 0, lastRepairTickAt: undefined };
  private downSince: number | undefined;
  /** A failed lookup is logged once per outage. */
  private lookupWarned = false;
  private nextTickAt: number;
  /** While acting on an outage: when the next lookup of the gateway's name is due. */
  private nextLookupAt: number | undefined;
  /** The neighbour refresh is logged once per outage. */
  private refreshSaid = false;
  /**
   * The refresh's changes, planned once per outage and per repair: every failed tick of a lost
   * gateway (4 a second) refreshes, and reading the whole network for it each time would cost a
   * node of 200 routed pods most of a core. A repair or a re-initialisation plans afresh.
   */
  private refreshPlan: Change[] | undefined;
  /** Start of the tick that last refreshed the neighbours (or repaired) in this outage. */
  private lastRefreshAt: number | undefined;
  /** The next tick starts at once, whatever the cadence says (the tunnel was just repointed). */
  private tickNow = false;
  /** The last probe was answered (client-init's probe counts at the start). */
  private answering = true;
  /** Since when the gateway has answered every probe (undefined while it does not). */
  private answeringSince: number | undefined = 0;
  /**
   * The watch connection (issue 11 §6): one TCP connection to the gateway's watch port, which the
   * gateway closes as it terminates. `watchId` numbers the connections, so that the outcome of
   * one this machine already gave up on is recognised and ignored.
   */
  private watch: WatchState;
  private watchId = 0;
  /** Connections in a row that never got established (the back-off's exponent). */
  private watchFailures = 0;
  /** No connection is opened before this (back-off, or the spacing after a goodbye). */
  private watchRetryAt: number | undefined;
  /** The connection held is dropped and a new one opened (after a recovery or a move: it may lead nowhere now). */
  private watchRenew = false;
  /** The "does not offer a watch" line is said once until a connection is established. */
  private watchFailSaid = false;
  /**
   * When the gateway said goodbye (closed an established watch connection): from then the sidecar
   * probes and looks up at the lost cadence until the gateway answers AND a new watch connection
   * is established, or the fast window ends. A probe answered by the leaving gateway's dnsmasq in
   * its last milliseconds does not end it.
   */
  private leavingSince: number | undefined;
  private readonly random: () => number;
  /** When and what to report about routes around the tunnel. */
  readonly isolation: IsolationWatch;
  /**
   * DHCP option 26 of the lease held (planVxlanMtu takes it from 576 up). Taken over from client-init,
   * vxlan0's MTU stands for it until a lease of our own says otherwise.
   */
  dhcpMtu: number | undefined;

  constructor(
    readonly cfg: MachineConfig,
    now: number,
    stats: SidecarStats = newStats(),
  ) {
    this.stats = stats;
    this.random = cfg.random ?? Math.random;
    this.nextTickAt = now + cfg.policy.intervalMs;
    this.watch = cfg.watchPort ? { kind: "idle" } : { kind: "off" };
    this.isolation = new IsolationWatch(cfg.policy.isolationIntervalMs, now, this.stats.isolation);
  }

  /** Which of vxlan0's addresses is ours: the static one, or (DHCP) any of the overlay network. */
  ourAddress(f: ClientFacts): AddressFact | undefined {
    const m = this.cfg.mode;
    return f.vxlan?.addresses.find((a) => (m.kind === "static" ? a.local === m.address : a.local.startsWith(`${this.cfg.network}.`)));
  }

  /** The address a re-initialisation asks for. */
  reinitAddress(): string | undefined {
    return this.lease?.address ?? this.lastAddress ?? this.cfg.requestedAddress;
  }

  // ---------------------------------------------------------------- start and re-initialisation

  /** Take over what client-init left in the kernel; a re-initialisation when it left nothing usable. */
  start(now: number, f: ClientFacts): { reinit?: string; notes: Note[] } {
    const addr = this.ourAddress(f);
    if (!f.vxlan || !addr) return { reinit: f.vxlan ? `${VXLAN_IF} has no overlay address` : `${VXLAN_IF} does not exist`, notes: [] };
    const notes: Note[] = [];
    this.gatewayIp = f.vxlan.remote;
    if (this.cfg.mode.kind === "dhcp") {
      this.lease = leaseFromAddress(addr, this.cfg.overlayGw, now);
      this.dhcpMtu = f.vxlan.mtu;
      if (leaseTimes(this.lease)) notes.push(note("info", `took over the DHCP lease of ${addr.local}: ${this.lease.leaseSeconds} s left, renewing in ${Math.round(this.lease.renewSeconds)} s`));
      else notes.push(note("info", `took over the DHCP lease of ${addr.local}: it does not expire, nothing to renew`));
    }
    notes.push(note("info", `watching gateway ${this.cfg.overlayGw} through ${VXLAN_IF} (gateway pod ${this.gatewayIp ?? "unknown"}) every ${this.cfg.policy.intervalMs / 1000} s`));
    return { notes };
  }

  reinitStarted(why: string): Note[] {
    this.stats.reinits++;
    // A renewal in flight is overtaken: client-init gets (or keeps) the lease; its end no longer counts.
    this.renewing = undefined;
    return [note("warn", `${why}: re-initialising the tunnel`)];
  }

  reinitDone(r: ReinitOutcome): Note[] {
    this.gatewayIp = r.gatewayPodIp;
    this.refreshPlan = undefined;
    this.renewWatch();
    if (r.lease) {
      this.dhcpMtu = r.lease.mtu;
      this.lease = r.lease;
      this.leaseFailedAt = undefined;
      this.reacquireAt = undefined;
      this.stats.leasesAcquired++;
    }
    return [note("info", `tunnel re-initialised: ${r.address} (${r.mode}) via gateway pod ${r.gatewayPodIp} (pod_gateway_client_repairs_total{kind="reinit"} ${this.stats.reinits})`)];
  }

  reinitFailed(message: string): Note[] {
    return [note("warn", `re-initialising failed: ${message}`)];
  }

  // ---------------------------------------------------------------- the loop

  /** Ask for a renewal at the next step (SIGUSR1). */
  requestRenewal(why = "as asked"): void {
    this.renewRequested = why;
  }

  /** What to do at `now`. */
  next(now: number): { step: NextStep; notes: Note[] } {
    const notes: Note[] = [];
    let leaseWake: number | undefined;
    if (this.cfg.mode.kind === "dhcp") {
      if (!this.lease) {
        if (this.reacquireAt === undefined || now >= this.reacquireAt) return { step: { kind: "acquire", fallbackAddress: this.lastAddress }, notes };
      } else if (this.renewing === undefined) {
        if (this.announceAt !== undefined && now >= this.announceAt) {
          this.announceAt = undefined;
          this.renewRequested ??= "to announce it to the gateway again (it may have lost its lease file while away)";
        }
        let s: LeaseStep = planLeaseStep(this.lease, now, this.leaseFailedAt);
        if (this.renewRequested !== undefined) {
          const why = this.renewRequested;
          this.renewRequested = undefined;
          if (s.kind === "wait" || (s.kind === "none" && why === "as asked")) {
            notes.push(note("info", `renewing the DHCP lease of ${this.lease.address} now, ${why}`));
            s = { kind: "renew" };
          }
        }
        if (s.kind === "expired") {
          notes.push(note("warn", `the DHCP lease of ${this.lease.address} expired without a renewal; asking for a new one`));
          this.lastAddress = this.lease.address;
          this.lease = undefined;
          return { step: { kind: "acquire", fallbackAddress: this.lastAddress }, notes };
        }
        if (s.kind === "renew" || s.kind === "rebind") {
          this.renewing = ++this.renewalCount;
          return { step: { kind: "renew", lease: this.lease, rebind: s.kind === "rebind", renewal: this.renewing }, notes };
        }
        if (s.kind === "wait") leaseWake = s.untilMs;
      }
    }
    // In the fast part of an outage a lookup that falls due between two probes is a tick of its own
    // (with a probe: it is cheap), and the probe cadence restarts from it, so pods that lost the
    // gateway together also leave it with their probes out of step. After it, the lookup goes with
    // every probe, as the outage's ticks are spread by then.
    const fast = this.fast(now);
    const tickAt = this.tickNow ? now : Math.min(this.nextTickAt, fast ? (this.nextLookupAt ?? Infinity) : Infinity);
    // (While a renewal is in flight its end wakes the driver: an announce due meanwhile waits for it.)
    const announceWake = this.lease && this.renewing === undefined ? (this.announceAt ?? Infinity) : Infinity;
    const wakeAt = Math.min(tickAt, leaseWake ?? Infinity, this.reacquireAt ?? Infinity, announceWake);
    if (wakeAt > now) return { step: { kind: "sleep", untilMs: wakeAt }, notes };
    if (now < tickAt) return { step: { kind: "sleep", untilMs: tickAt }, notes };
    let lookup = false;
    if (this.nextLookupAt !== undefined && (!fast || now >= this.nextLookupAt)) {
      lookup = true;
      this.nextLookupAt = planNextLookupAt(this.cfg.policy, now, fast, false, this.random());
    }
    this.tickNow = false;
    // The short wait is for a gateway that does not answer (the next probe goes out sooner); one
    // that answers, even while it is looked for after a goodbye, gets the regular wait: with 200
    // pods on a gateway that was just starting, answers slower than 250 ms counted as failures.
    return { step: { kind: "tick", startedAt: now, lookup, timeoutMs: planProbeTimeout(this.cfg.policy, fast && !this.answering) }, notes };
  }

  /**
   * For a tick `next` returned: after how long without an answer its probe has the gateway's
   * name looked up alongside (planSlowProbeLookupAt) — only while the gateway answers (in an
   * outage the lookups keep their own schedule) and when the tick has no lookup of its own.
   */
  slowProbeLookupAfterMs(step: { lookup: boolean; timeoutMs: number }): number | undefined {
    if (step.lookup || this.downSince !== undefined || this.leavingSince !== undefined) return undefined;
    return planSlowProbeLookupAt(this.cfg.policy, step.timeoutMs, this.random());
  }

  /** In the fast part of an outage (src/core/client/sidecar.ts), or of the gateway's leaving (it closed the watch connection). */
  private fast(now: number): boolean {
    return planFast(this.cfg.policy, this.downSince, now) || this.leaving(now);
  }

  /** The gateway said goodbye less than the fast window before `now` and no new watch is established yet. */
  private leaving(now: number): boolean {
    return planFast(this.cfg.policy, this.leavingSince, now);
  }

  // ---------------------------------------------------------------- the lease

  /** The address to write for a lease (its lifetime counted from `now`). */
  leaseAddress(lease: Lease, now: number) {
    return { local: lease.address, prefixlen: lease.prefixLength, lifetime: addressLifetime(lease, now) };
  }

  acquired(lease: Lease): Note[] {
    this.dhcpMtu = lease.mtu;
    this.lease = lease;
    this.leaseFailedAt = undefined;
    this.reacquireAt = undefined;
    this.stats.leasesAcquired++;
    return [note("info", `new DHCP lease ${lease.address} for ${lease.leaseSeconds} s`)];
  }

  acquireFailed(now: number, message: string): Note[] {
    this.reacquireAt = now + this.cfg.policy.reacquireDelayMs;
    return [note("warn", `getting a new DHCP lease failed: ${message}; trying again in ${this.cfg.policy.reacquireDelayMs / 1000} s`)];
  }

  /** Whether a renewal in flight whose exchange ended still counts (it is the current one); either way none is in flight now. */
  renewalEnded(renewal: number): boolean {
    const current = this.renewing === renewal;
    if (current) this.renewing = undefined;
    return current;
  }

  /** Whether a renewal is in flight. */
  get renewalInFlight(): boolean {
    return this.renewing !== undefined;
  }

  renewed(previous: Lease, lease: Lease, rebind: boolean): Note[] {
    const notes: Note[] = [];
    if (lease.address !== previous.address) notes.push(note("warn", `the DHCP server moved us from ${previous.address} to ${lease.address}`));
    this.renewing = undefined;
    // Granted while the gateway answers: the gateway that is back has recorded the lease, and an
    // announce still pending (a renewal that was in flight across the move ended after it) is done.
    if (this.outage.failures === 0) this.announceAt = undefined;
    this.dhcpMtu = lease.mtu;
    this.lease = lease;
    this.leaseFailedAt = undefined;
    this.stats.renewals++;
    notes.push(note("info", `DHCP lease of ${lease.address} ${rebind ? "rebound" : "renewed"} for ${lease.leaseSeconds} s (pod_gateway_client_dhcp_renewals_total{result="ok"} ${this.stats.renewals})`));
    return notes;
  }

  renewFailed(now: number, previous: Lease, rebind: boolean, message: string): Note[] {
    this.renewing = undefined;
    this.leaseFailedAt = now;
    this.stats.failedRenewals++;
    return [note("warn", `${rebind ? "rebinding" : "renewing"} the DHCP lease of ${previous.address} failed: ${message} (pod_gateway_client_dhcp_renewals_total{result="failed"} ${this.stats.failedRenewals})`)];
  }

  // ---------------------------------------------------------------- probing and deciding

  lookupFailed(message: string): Note[] {
    if (this.lookupWarned) return [];
    this.lookupWarned = true;
    return [note("warn", `re-resolving the gateway failed: ${message}; keeping ${this.gatewayIp ?? "the current remote"}`)];
  }

  /** Whether an address the lookup found means the gateway pod moved (the probe can be cut short). */
  isMove(found: string | undefined): boolean {
    return found !== undefined && found !== this.gatewayIp;
  }

  /**
   * The probe's answer. Alive: the outage (if any) is over. Failed: counted; the failure that makes
   * the sidecar act schedules the outage's lookups (the first within one jittered gap: pods that
   * lost the gateway together do not all ask the cluster DNS at once). `lookupNow` is always
   * false now (kept for the driver's shape): lookups go out only on their schedule.
   */
  probed(now: number, startedAt: number, alive: boolean, detail: string, lookedUp: boolean): { lookupNow: boolean; notes: Note[] } {
    this.stats.probes++;
    const gw = this.cfg.overlayGw;
    const notes: Note[] = [note("trace", `probe ${gw}: ${alive ? "alive" : "failed"} (${detail})`)];
    if (alive) {
      // One line per state change, named like the metric it moves: unreachable (after
      // CONNECTION_RETRY_COUNT failures) → reachable is a recovery.
      const f = this.outage.failures;
      const recovered = f >= this.cfg.policy.retryCount;
      if (recovered) this.stats.recoveries++;
      const moved = recovered ? ` (pod_gateway_client_gateway_reachable 1, pod_gateway_client_recoveries_total ${this.stats.recoveries})` : "";
      if (f > 0) notes.push(note("info", `gateway ${gw} answers again after ${f} failed probe(s) (${Math.round((now - (this.downSince ?? now)) / 100) / 10} s)${moved}`));
      // A gateway that was away may be a new pod, or a restarted sidecar, without our lease in
      // its lease file: announce it again before it can be handed to a new pod.
      // At a random point of the next ANNOUNCE_SPREAD_MS: every pod of the gateway comes back in
      // the same second, and 200 renewals at once held dnsmasq's answers back for up to a minute.
      if (f > 0 && this.cfg.mode.kind === "dhcp" && this.lease) this.announceAt ??= now + this.random() * ANNOUNCE_SPREAD_MS;
      // Back after failed probes: the watch connection held may lead nowhere now (a gateway that
      // died without a goodbye), and one that failed may have failed for the outage: a new one.
      if (f > 0) this.renewWatch();
      this.answering = true;
      this.answeringSince ??= startedAt;
      // A gateway that said goodbye is looked for until a new watch is established too — or until
      // it has answered every probe for leavingConfirmMs: the leaving gateway's dnsmasq answers for
      // milliseconds, and 200 pods probing every 250 ms a new gateway whose watch port was slow to
      // greet them (a starting gateway on a loaded node) kept it too busy to answer.
      if (this.leavingSince !== undefined && (this.watch.kind === "open" || startedAt - this.answeringSince >= this.cfg.policy.leavingConfirmMs)) notes.push(...this.leavingEnds(now, this.watch.kind === "open"));
      const leaving = this.leaving(now);
      this.outage.failures = 0;
      this.outage.repairs = 0;
      this.outage.lastRepairTickAt = undefined;
      this.downSince = undefined;
      this.lookupWarned = false;
      if (!leaving) this.nextLookupAt = undefined;
      this.refreshSaid = false;
      this.refreshPlan = undefined;
      this.lastRefreshAt = undefined;
      return { lookupNow: false, notes };
    }
    this.stats.failedProbes++;
    this.answering = false;
    this.answeringSince = undefined;
    this.outage.failures++;
    this.downSince ??= startedAt;
    const f = this.outage.failures;
    const lost = f === this.cfg.policy.retryCount ? " (pod_gateway_client_gateway_reachable 0)" : "";
    if (f === 1) notes.push(note("warn", `gateway ${gw} did not answer: ${detail}${lost}`));
    else if (lost) notes.push(note("warn", `gateway ${gw} unreachable: ${f} probes failed${lost}`));
    else if (f % 10 === 0 && !this.fast(now)) notes.push(note("warn", `gateway ${gw} still not answering after ${f} probes (${Math.round((now - this.downSince) / 1000)} s)`));
    if (this.nextLookupAt === undefined && !lookedUp && planLookupWithProbe(this.cfg.policy, f))
      this.nextLookupAt = planNextLookupAt(this.cfg.policy, now, this.fast(now), true, this.random());
    return { lookupNow: false, notes };
  }

  /**
   * After a failed probe (and its lookup): repair, and towards which gateway pod (undefined: the
   * current remote)? Else, once acting and at most every refreshIntervalMs, `refresh`: forget the
   * neighbours the tunnel relies on (planNeighbourRefresh) — the repair does that too.
   */
  decide(startedAt: number, found: string | undefined): { repair: false; refresh: boolean; forgetGatewayMac?: true } | { repair: true; target: string | undefined } {
    const moved = this.isMove(found);
    if (!planRepairNow(this.cfg.policy, this.outage, startedAt, moved)) {
      // After a goodbye the second failed probe refreshes too: the first one often failed against
      // the leaving pod, still there (its dnsmasq gone: refused), and the refresh it made re-learned
      // that pod's MAC — measured, a client back only after the next refresh, 0.74 s after ready.
      const secondSinceGoodbye = this.leavingSince !== undefined && this.downSince !== undefined && this.downSince >= this.leavingSince && this.outage.failures === 2;
      const due = planLookupWithProbe(this.cfg.policy, this.outage.failures) && (this.lastRefreshAt === undefined || startedAt - this.lastRefreshAt >= this.cfg.policy.refreshIntervalMs || secondSinceGoodbye);
      if (due) this.lastRefreshAt = startedAt;
      // Between whole refreshes, for GOODBYE_FORGET_MS after a goodbye: forget eth0's entry of the
      // gateway pod (one entry, no dump). The leaving pod is still there for a moment and answers
      // the ARP a refresh causes, so its MAC is learned again; a new pod at the same IP was then
      // reached only at the next whole refresh, up to a second later (measured: 0.5 s after ready).
      const gatewayMac = !due && this.leavingSince !== undefined && startedAt - this.leavingSince < GOODBYE_FORGET_MS && planLookupWithProbe(this.cfg.policy, this.outage.failures);
      return { repair: false, refresh: due, ...(gatewayMac ? { forgetGatewayMac: true as const } : {}) };
    }
    this.outage.repairs++;
    this.outage.lastRepairTickAt = startedAt;
    this.lastRefreshAt = startedAt;
    return { repair: true, target: moved ? found : undefined };
  }

  /** The tick that started at `startedAt` ended at `now`. */
  tickDone(startedAt: number, now: number): void {
    this.nextTickAt = planNextTickAt(this.cfg.policy, startedAt, now, this.fast(now));
  }

  /** eth0's part of a refresh plan: the entries of the gateway pod's IP and of its next hop. */
  static gatewayMacChanges(changes: readonly Change[]): Change[] {
    return changes.filter((c) => c.op === "neigh-flush" && c.dev === POD_IF && c.to !== undefined);
  }

  /** The refresh planned earlier in this outage (since the last repair), if any: no need to read the network. */
  cachedRefresh(): Change[] | undefined {
    return this.refreshPlan;
  }

  /**
   * The tunnel's ARP retransmit time, set when the sidecar takes the tunnel over and after each
   * re-initialisation (a new vxlan0 starts with the kernel's default). An ARP for .1 sent before a
   * new gateway pod had its vxlan0 (a client repoints as soon as the new pod IP is published)
   * leaves the entry INCOMPLETE, and by default the kernel asks again only after 1 s — measured, a
   * client back 0.86 s after its gateway was ready. At the lost probe cadence it asks again within
   * 250 ms. The ARP travels inside the tunnel to the gateway pod alone (eth0's keep the default:
   * there an ARP is a broadcast every pod on a bridge CNI's node sees). Forgetting vxlan0's
   * unresolved entries at every failed probe instead cost 13 % more CPU per lost tick (1.6 against
   * 1.4 ms), and 200 lost pods already keep both cores of the bench machine busy.
   */
  tunnelTuning(): Change[] {
    return [{ op: "neigh-retrans", dev: VXLAN_IF, retransMs: this.cfg.policy.lostIntervalMs, why: "ask again for .1 within one lost probe interval (the kernel's default: 1 s)" }];
  }

  /**
   * The neighbour refresh while the gateway is lost: the changes, and a note the first time in an
   * outage. See planNeighbourRefresh.
   */
  planRefresh(facts: ClientFacts): { changes: Change[]; notes: Note[] } {
    const changes = planNeighbourRefresh(facts, this.gatewayIp ?? facts.vxlan?.remote);
    this.refreshPlan = changes;
    const notes: Note[] = [];
    if (!this.refreshSaid && changes.length) {
      this.refreshSaid = true;
      const eth = changes.filter((c) => c.op === "neigh-flush" && c.dev === POD_IF && c.to !== undefined).map((c) => (c.op === "neigh-flush" ? c.to : ""));
      notes.push(note("info", `refreshing the neighbours the tunnel relies on while gateway ${this.cfg.overlayGw} does not answer: ${POD_IF} ${eth.join(", ")} and every entry of ${VXLAN_IF}`));
    }
    return { changes, notes };
  }

  // ---------------------------------------------------------------- repairing

  /**
   * How to repair towards gateway pod `gw` (undefined: the tunnel's current remote), given the
   * network as it is now: a full re-initialisation when the tunnel is gone, lost its address or no
   * longer matches the settings; else the changes in place — the plan of client-init's phase 1,
   * our address, and a neighbour flush (it makes us ARP for .1 again: our broadcast reaches the
   * gateway through the flood entry, and that is how a re-created gateway, with an empty
   * neighbour table and no flood entry of its own, learns where we are).
   */
  planRepair(now: number, facts: ClientFacts, gw: string | undefined): RepairPlan {
    this.stats.heals++;
    if (!facts.vxlan || facts.vxlan.kind !== "vxlan") return { kind: "reinit", why: `${VXLAN_IF} is gone` };
    const addr = this.ourAddress(facts);
    if (!addr) return { kind: "reinit", why: `${VXLAN_IF} lost its overlay address` };
    const target = gw ?? this.gatewayIp ?? facts.vxlan.remote;
    if (!target) return { kind: "none", notes: [] };
    try {
      const plan = planClientNetwork(facts, { ...this.cfg.netInput, dhcpMtu: this.dhcpMtu, gatewayPodIp: target });
      if (plan.changes.some((c) => c.op === "vxlan-add")) return { kind: "reinit", why: `${VXLAN_IF} no longer matches the settings` };
      const m = this.cfg.mode;
      const want =
        m.kind === "static"
          ? { local: m.address, prefixlen: 24, lifetime: "forever" as const }
          : { local: addr.local, prefixlen: addr.prefixlen, lifetime: this.lease ? addressLifetime(this.lease, now) : addr.validLft === Infinity ? ("forever" as const) : addr.validLft };
      const addrChanges = stateChanges(planClientAddress(facts, this.cfg.network, want));
      return { kind: "apply", target, changes: [...plan.changes, ...addrChanges, ...planNeighbourRefresh(afterChanges(facts, plan.changes), target)] };
    } catch (e) {
      return { kind: "none", notes: [note("warn", `planning the repair failed: ${e instanceof Error ? e.message : String(e)}`)] };
    }
  }

  /** The repair towards `target` was applied. */
  repaired(target: string): Note[] {
    this.refreshPlan = undefined;
    if (target !== this.gatewayIp) {
      // Probe the new pod at once (not at the next tick of the cadence), and watch it, not the old one.
      this.tickNow = true;
      this.renewWatch();
      this.stats.gatewayMoves++;
      const from = this.gatewayIp;
      this.gatewayIp = target;
      return [note("info", `gateway pod moved from ${from ?? "unknown"} to ${target}: tunnel remote and pinned route updated, neighbours flushed (address kept) (pod_gateway_client_repairs_total{kind="in_place"} ${this.stats.heals})`)];
    }
    if (this.outage.repairs <= 1) return [note("info", `gateway pod still at ${target}: neighbours flushed, waiting for it to answer (pod_gateway_client_repairs_total{kind="in_place"} ${this.stats.heals})`)];
    return [];
  }

  // ---------------------------------------------------------------- the watch connection

  /**
   * The watch connection (issue 11 §6): the gateway-sidecar closes every watch connection first
   * when it terminates (and the kernel closes them when it dies), so an established connection
   * that ends is the gateway saying it is leaving — noticed at once, where a probe notices only at
   * its next tick plus its timeout (a gateway re-created at the same IP within a second was not
   * noticed for 2 s). Opened while the gateway answers, again after every recovery and move, and
   * dropped for a new one then: after a move the old connection leads to a pod that is gone.
   * A connection that never got established (an older gateway without a watch port, a firewall)
   * tells nothing: it is tried again with a back-off, and costs the probes nothing.
   */
  watchStep(now: number): WatchStep {
    const w = this.watch;
    if (w.kind === "off") return {};
    const step: WatchStep = {};
    if (this.watchRenew) {
      this.watchRenew = false;
      if (w.kind !== "idle") {
        step.close = w.id;
        this.watch = { kind: "idle" };
      }
    }
    if (this.watch.kind === "idle" && this.answering && this.outage.failures === 0 && (this.watchRetryAt === undefined || now >= this.watchRetryAt)) {
      this.watchRetryAt = undefined;
      step.open = ++this.watchId;
      this.watch = { kind: "connecting", id: step.open };
    }
    return step;
  }

  /** Connection `id` read the gateway's greeting. `keep` false: it is no longer wanted (close it). */
  watchEstablished(id: number, now: number): { keep: boolean; notes: Note[] } {
    if (this.watch.kind !== "connecting" || this.watch.id !== id) return { keep: false, notes: [] };
    this.watch = { kind: "open", id };
    const notes: Note[] = [];
    if (this.watchFailures > 0 || this.leavingSince !== undefined || this.watchId === 1 || this.watchFailSaid)
      notes.push(note("info", `watching gateway ${this.cfg.overlayGw} for its goodbye on TCP port ${this.cfg.watchPort}`));
    else notes.push(note("debug", `watch connection ${id} to gateway ${this.cfg.overlayGw}:${this.cfg.watchPort} established`));
    this.watchFailures = 0;
    this.watchFailSaid = false;
    if (this.leavingSince !== undefined && this.answering) notes.push(...this.leavingEnds(now, true));
    return { keep: true, notes };
  }

  /** Connection `id` ended before the greeting (refused, unanswered, no greeting): not a goodbye. */
  watchFailed(id: number, now: number, why: string): Note[] {
    if (this.watch.kind !== "connecting" || this.watch.id !== id) return [];
    this.watch = { kind: "idle" };
    if (this.leaving(now)) {
      // The leaving gateway's port closed before its dnsmasq: try the next gateway that answers, soon.
      this.watchRetryAt = now + this.cfg.policy.lostIntervalMs;
      return [note("debug", `watch connection to gateway ${this.cfg.overlayGw}:${this.cfg.watchPort} failed (${why}); trying again once the gateway answers`)];
    }
    this.watchFailures++;
    const wait = planWatchRetryDelay(this.cfg.policy, this.watchFailures);
    this.watchRetryAt = now + wait;
    const text = `gateway ${this.cfg.overlayGw} offers no watch connection on TCP port ${this.cfg.watchPort} (${why}); noticing its departures by probing only; trying again in ${Math.round(wait / 1000)} s`;
    if (this.watchFailSaid) return [note("debug", text)];
    this.watchFailSaid = true;
    return [note("info", text)];
  }

  /** Connection `id` ended after the greeting (EOF, reset, error): the gateway is leaving. */
  watchClosed(id: number, now: number, why: string): Note[] {
    if (this.watch.kind !== "open" || this.watch.id !== id) return [];
    this.watch = { kind: "idle" };
    this.stats.watchGoodbyes++;
    this.leavingSince = now;
    // Whatever answered before the goodbye says nothing about what answers now.
    this.answering = false;
    this.answeringSince = undefined;
    // The lost cadence from now, refreshing every neighbour at the first failed probe. The first
    // probe and lookup come at a random point of their first gap, not at once: every pod of the
    // gateway hears the goodbye in the same instant, and in lockstep 200 pods would hit the new
    // gateway and the cluster DNS as one burst every 250 ms. The phase costs nothing once the new
    // gateway answers: the next probe is still within 250 ms.
    // A pod already at the lost cadence (down, its next probe within one lost interval) keeps it:
    // the goodbye adds no probe. (A one-way outage ends that way: the gateway's TCP keepalive
    // gives up and resets a connection whose answers it cannot hear.)
    const atLostCadence = this.downSince !== undefined && this.nextTickAt <= now + this.cfg.policy.lostIntervalMs;
    if (!atLostCadence) this.nextTickAt = now + this.random() * this.cfg.policy.lostIntervalMs;
    if (!atLostCadence || this.nextLookupAt === undefined) this.nextLookupAt = planNextLookupAt(this.cfg.policy, now, true, true, this.random());
    this.lastRefreshAt = undefined;
    this.refreshPlan = undefined;
    // A new connection only to a gateway that answers, and at most once per lost interval (a
    // gateway that closes every connection at once cannot spin the sidecar).
    this.watchRetryAt = now + this.cfg.policy.lostIntervalMs;
    return [note("info", `gateway ${this.cfg.overlayGw} closed the watch connection (${why}): it is leaving; probing every ${this.cfg.policy.lostIntervalMs} ms and looking it up until a gateway answers and is watched again (pod_gateway_client_watch_goodbyes_total ${this.stats.watchGoodbyes})`)];
  }

  private renewWatch(): void {
    this.watchRenew = true;
    this.watchRetryAt = undefined;
  }

  private leavingEnds(now: number, watched: boolean): Note[] {
    const since = this.leavingSince ?? now;
    this.leavingSince = undefined;
    if (this.outage.failures === 0) this.nextLookupAt = undefined;
    const after = `${Math.round((now - since) / 100) / 10} s after its goodbye`;
    if (watched) return [note("info", `gateway ${this.cfg.overlayGw} answers and is watched again ${after}`)];
    return [note("info", `gateway ${this.cfg.overlayGw} has answered every probe for ${this.cfg.policy.leavingConfirmMs / 1000} s, ${after}: back to the regular cadence without a watch connection yet`)];
  }

  // ---------------------------------------------------------------- the end

  /** The lease to release at shutdown: DHCP mode, one held, not expired. */
  release(now: number): Lease | undefined {
    if (this.cfg.mode.kind !== "dhcp" || !this.lease) return undefined;
    return planLeaseStep(this.lease, now).kind === "expired" ? undefined : this.lease;
  }
}


/** The wait before watch connection attempt k+1 after k (≥ 1) in a row never got established: watchRetryMs × 2^(k-1), capped. */
export function planWatchRetryDelay(p: Pick<MachinePolicy, "watchRetryMs" | "watchRetryCapMs">, failures: number): number {
  return Math.min(p.watchRetryMs * 2 ** Math.min(Math.max(failures - 1, 0), 20), p.watchRetryCapMs);
}

/** The routes after the repair's changes (for the next hop to a new gateway pod); the current ones if they do not simulate. */
function afterChanges(f: ClientFacts, changes: readonly Change[]): ClientFacts {
  try {
    return simulateChanges(f, changes);
  } catch {
    return f;
  }
}

/**
 * The neighbour entries the tunnel relies on, forgotten so that the kernel resolves them again at
 * the next packet instead of waiting for its timers (issue 11 §6). A gateway pod re-created at the
 * same pod IP has a new MAC: the eth0 entry of its IP (and of the next hop that reaches it, when a
 * route sends it via one) still holds the old pod's, which the kernel only doubts after
 * reachable_time plus delay_first_probe_time and three unicast probes — 13 s to over 40 s
 * measured. vxlan0's entries go too: an entry of .1 left INCOMPLETE or FAILED by the outage waits
 * for its own timers, and our broadcast ARP for .1 (through the flood entry) is how a new gateway,
 * with an empty neighbour table and no flood entry of its own, learns where we are. Permanent
 * entries (a CNI's static ARP) are never touched (net-apply skips them, as `ip neigh flush` does).
 */
export function planNeighbourRefresh(f: ClientFacts, gatewayPodIp: string | undefined): Change[] {
  const out: Change[] = [];
  const gw = gatewayPodIp === undefined ? undefined : parsePrefix4(gatewayPodIp);
  if (gatewayPodIp !== undefined && gw && gw.len === 32) {
    out.push({ op: "neigh-flush", dev: POD_IF, to: gatewayPodIp, why: "forget the MAC of the gateway pod's IP (a pod re-created at the same IP has a new one)" });
    // The route the kernel takes to the gateway pod: the longest main-table prefix holding it.
    let best: { len: number; via: string | undefined; dev: string | undefined } | undefined;
    for (const r of f.routes4) {
      if (r.type !== undefined && r.type !== "unicast") continue;
      const p = parsePrefix4(r.dst);
      if (!p || !prefixContains(p, gw)) continue;
      if (!best || p.len > best.len) best = { len: p.len, via: r.gateway, dev: r.dev };
    }
    if (best?.via !== undefined && best.dev === POD_IF && best.via !== gatewayPodIp)
      out.push({ op: "neigh-flush", dev: POD_IF, to: best.via, why: "forget the MAC of the next hop to the gateway pod" });
  }
  if (f.vxlan) out.push({ op: "neigh-flush", dev: VXLAN_IF, why: "ARP for the gateway again: a re-created gateway learns us from it" });
  return out;
}
/**
 * A gateway that answers again after an outage may be a new pod, or a restarted sidecar, without
 * this pod's lease in its lease file: the pod renews (announces) its lease at a random point of
 * this window after the gateway is back. All of a gateway's pods come back within a second of
 * each other; measured with 200 pods, renewing at once delayed their probes' answers by a median
 * of 28 s (max 75 s); spread over 5 s, 40 renewals a second.
 */
export const ANNOUNCE_SPREAD_MS = 5_000;

/**
 * After a goodbye, how long eth0's entry of the gateway pod is forgotten at every failed probe
 * (decide → forgetGatewayMac). Bounded: each time, the next probe makes the kernel broadcast an
 * ARP on eth0, which every pod on a bridge CNI's node sees — 200 pods, 4 a second each, for 5 s.
 */
export const GOODBYE_FORGET_MS = 5_000;

