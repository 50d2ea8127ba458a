// client-sidecar: keep the pod's tunnel healthy for the pod's lifetime. Probe the gateway every
// CLIENT_PROBE_INTERVAL seconds; after CONNECTION_RETRY_COUNT consecutive failures heal in place
// (re-resolve the gateway; if it moved, point vxlan0's remote and the pinned route at the new pod
// IP and flush vxlan0's neighbours — same MAC, same lease); while it stays down, look its name up
// again with every probe, so a move is repaired within one interval, and repeat the in-place repair
// with backoff; re-initialise fully only when the tunnel itself is gone. Renew the DHCP lease at
// T1/T2, release it when the rest of the pod has finished (Jobs; on SIGTERM only then). Never exits
// on failure: a crash-looping sidecar heals nothing.
import { leaseFromAddress, addressLifetime, planLeaseStep } from "../core/client/lease.ts";
import { planClientAddress, planClientNetwork, stateChanges, type Change } from "../core/client/plan.ts";
import { planLookupWithProbe, planNextTickAt, planRepair, type OutageState, type ProbePolicy } from "../core/client/sidecar.ts";
import { leaseTimes, type Lease } from "../core/dhcp/types.ts";
import { gatewayOverlayIp, VXLAN_IF } from "../core/net/vxlan.ts";
import type { ClientFacts } from "../core/client/facts.ts";
import {
  addressMode,
  applyLogged,
  dhcpIdentity,
  messageOf,
  networkInput,
  runClientInit,
  type AddressMode,
  type ClientDeps,
  type ClientInput,
} from "./client-init.ts";

export type PodDoneResult = "done" | "native-sidecar" | "forbidden" | "aborted" | "never-completes";

export interface SidecarDeps extends ClientDeps {
  /** One probe of the gateway through the tunnel. */
  probeOnce(ip: string, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<{ alive: boolean; detail: string }>;
  /** Resolves when every other container of the pod has finished (Jobs); absent when not watching. */
  watchPodDone?: (signal: AbortSignal) => Promise<PodDoneResult>;
}

export interface SidecarPolicy extends ProbePolicy {
  probeTimeoutMs: number;
  /** The deadline client-init gets when the sidecar re-initialises the tunnel. */
  resolveDeadlineMs: number;
  renewDeadlineMs: number;
  /** DHCP mode without a lease: the wait between two attempts to get a new one. */
  reacquireDelayMs: number;
  /** SIGTERM must end the sidecar within a second, release included. */
  releaseTimeoutMs: number;
}

/**
 * The gateway is one hop away over the overlay. Measured in the lab (1000 probes each): median
 * 0.3 ms, p99 2.2 ms, max 9 ms; with both cores oversubscribed twice over, p99 8 ms, max 30 ms.
 * Half a second is still many times the worst seen, and a false alarm costs only one lookup and
 * one neighbour flush, while every millisecond of it passes before a gateway that was answering is
 * looked for again.
 */
const PROBE_TIMEOUT_MS = 500;

export function sidecarPolicy(input: Pick<ClientInput, "settings">, over: Partial<SidecarPolicy> = {}): SidecarPolicy {
  const intervalMs = Math.max(100, input.settings.CLIENT_PROBE_INTERVAL * 1000);
  return {
    intervalMs,
    retryCount: Math.max(1, input.settings.CONNECTION_RETRY_COUNT),
    // Only the repair in place (two `ip` processes) backs off this far; the probe and the lookup
    // keep their interval, which is what bounds recovery once the gateway is back.
    repairBackoffCapMs: Math.max(intervalMs, 30_000),
    probeTimeoutMs: Math.min(PROBE_TIMEOUT_MS, intervalMs),
    resolveDeadlineMs: 2000,
    renewDeadlineMs: 5000,
    reacquireDelayMs: Math.max(intervalMs, 4000),
    releaseTimeoutMs: 500,
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
}

export interface SidecarStats {
  probes: number;
  failedProbes: number;
  heals: number;
  gatewayMoves: number;
  reinits: number;
  renewals: number;
  failedRenewals: number;
  leasesAcquired: number;
}

export interface SidecarExit {
  reason: "signal" | "pod-done";
  released: boolean;
  stats: SidecarStats;
}

interface State extends OutageState {
  mode: AddressMode;
  gatewayIp: string | undefined;
  lease: Lease | undefined;
  leaseFailedAt: number | undefined;
  /** The address of the last lease, asked for again when a new lease is needed. */
  lastAddress: string | undefined;
  renewRequested: boolean;
  /** DHCP mode without a lease (it expired, or re-acquiring failed): when to try again. */
  reacquireAt: number | undefined;
  downSince: number | undefined;
  /** A failed lookup is logged once per outage. */
  lookupWarned: boolean;
  nextTickAt: number;
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
  const id = dhcpIdentity(input);

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

  const st: State = {
    mode: addressMode(input),
    gatewayIp: undefined,
    lease: undefined,
    lastAddress: undefined,
    renewRequested: false,
    leaseFailedAt: undefined,
    reacquireAt: undefined,
    failures: 0,
    repairs: 0,
    lastRepairTickAt: undefined,
    downSince: undefined,
    lookupWarned: false,
    nextTickAt: clock.now() + policy.intervalMs,
  };

  // A "renew" event cuts the current sleep short.
  let wakeUp: (() => void) | undefined;
  const onRenew = () => {
    st.renewRequested = true;
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

  const ourAddress = (f: ClientFacts) =>
    f.vxlan?.addresses.find((a) => (st.mode.kind === "static" ? a.local === st.mode.address : a.local.startsWith(`${s.VXLAN_IP_NETWORK}.`)));

  /** Full client-init. Returns false (logged) when it failed; the loop tries again later. */
  const reinit = async (why: string, callSignal: AbortSignal): Promise<boolean> => {
    log.warn(`${why}: re-initialising the tunnel`);
    stats.reinits++;
    try {
      const r = await runClientInit(deps, {
        ...input,
        signal: callSignal,
        requestedAddress: st.lease?.address ?? st.lastAddress ?? input.requestedAddress,
        // Short deadlines: a failed re-init is tried again by the next repair.
        timing: { resolveDeadlineMs: policy.resolveDeadlineMs, probeDeadlineMs: 3000, ...input.timing },
      });
      st.gatewayIp = r.gatewayPodIp;
      if (r.lease) {
        st.lease = r.lease;
        st.leaseFailedAt = undefined;
        st.reacquireAt = undefined;
        stats.leasesAcquired++;
      }
      log.info(`tunnel re-initialised: ${r.address} (${r.mode}) via gateway pod ${r.gatewayPodIp}`);
      return true;
    } catch (e) {
      log.warn(`re-initialising failed: ${messageOf(e)}`);
      return false;
    }
  };

  // ---- start: take over what client-init left in the kernel
  try {
    const f = await deps.host.readFacts();
    const addr = ourAddress(f);
    if (!f.vxlan || !addr) await scoped(signal, (sig) => reinit(f.vxlan ? `${VXLAN_IF} has no overlay address` : `${VXLAN_IF} does not exist`, sig));
    else {
      st.gatewayIp = f.vxlan.remote;
      if (st.mode.kind === "dhcp") {
        st.lease = leaseFromAddress(addr, overlayGw, clock.now());
        if (leaseTimes(st.lease)) log.info(`took over the DHCP lease of ${addr.local}: ${st.lease.leaseSeconds} s left, renewing in ${Math.round(st.lease.renewSeconds)} s`);
        else log.info(`took over the DHCP lease of ${addr.local}: it does not expire, nothing to renew`);
      }
      log.info(`watching gateway ${overlayGw} through ${VXLAN_IF} (gateway pod ${st.gatewayIp ?? "unknown"}) every ${policy.intervalMs / 1000} s`);
    }
  } catch (e) {
    log.warn(`reading the network state failed: ${messageOf(e)}`);
  }

  // ---- lease upkeep
  const writeLease = async (lease: Lease, what: string) => {
    const f = await deps.host.readFacts();
    const changes = planClientAddress(f, s.VXLAN_IP_NETWORK, { local: lease.address, prefixlen: lease.prefixLength, lifetime: addressLifetime(lease, clock.now()) });
    await applyLogged(deps, changes, what);
  };

  const leaseUpkeep = async (): Promise<number | undefined> => {
    if (st.mode.kind !== "dhcp") return undefined;
    const now = clock.now();
    if (!st.lease) {
      if (st.reacquireAt !== undefined && now < st.reacquireAt) return st.reacquireAt;
      try {
        const cur = ourAddress(await deps.host.readFacts());
        const lease = await scoped(signal, (sig) => deps.dhcp.acquire(id, { requestedAddress: cur?.local ?? st.lastAddress, deadlineMs: policy.renewDeadlineMs, signal: sig }));
        await writeLease(lease, `setting the new lease ${lease.address} on ${VXLAN_IF}`);
        st.lease = lease;
        st.leaseFailedAt = undefined;
        st.reacquireAt = undefined;
        stats.leasesAcquired++;
        log.info(`new DHCP lease ${lease.address} for ${lease.leaseSeconds} s`);
      } catch (e) {
        if (signal.aborted) return undefined;
        st.reacquireAt = clock.now() + policy.reacquireDelayMs;
        log.warn(`getting a new DHCP lease failed: ${messageOf(e)}; trying again in ${policy.reacquireDelayMs / 1000} s`);
      }
      return undefined;
    }
    let step = planLeaseStep(st.lease, now, st.leaseFailedAt);
    if (st.renewRequested) {
      st.renewRequested = false;
      if (step.kind === "wait" || step.kind === "none") {
        log.info(`renewing the DHCP lease of ${st.lease.address} now, as asked`);
        step = { kind: "renew" };
      }
    }
    if (step.kind === "none") return undefined;
    if (step.kind === "wait") return step.untilMs;
    if (step.kind === "expired") {
      log.warn(`the DHCP lease of ${st.lease.address} expired without a renewal; asking for a new one`);
      st.lastAddress = st.lease.address;
      st.lease = undefined;
      return undefined;
    }
    const rebind = step.kind === "rebind";
    const current = st.lease;
    try {
      const lease = await scoped(signal, (sig) => deps.dhcp.renew(current, id, { broadcast: rebind, deadlineMs: policy.renewDeadlineMs, signal: sig }));
      if (lease.address !== current.address) log.warn(`the DHCP server moved us from ${current.address} to ${lease.address}`);
      await writeLease(lease, `renewing ${lease.address} on ${VXLAN_IF}`);
      st.lease = lease;
      st.leaseFailedAt = undefined;
      stats.renewals++;
      log.debug(`DHCP lease of ${lease.address} ${rebind ? "rebound" : "renewed"} for ${lease.leaseSeconds} s`);
    } catch (e) {
      if (signal.aborted) return undefined;
      st.leaseFailedAt = clock.now();
      stats.failedRenewals++;
      log.warn(`${rebind ? "rebinding" : "renewing"} the DHCP lease of ${current.address} failed: ${messageOf(e)}`);
    }
    return undefined;
  };

  // ---- healing
  /**
   * One round of lookups of the gateway's name (each cluster DNS server once): the next tick asks
   * again, so retrying here would only overlap it. Undefined when no server answered.
   */
  const lookUpGateway = async (callSignal: AbortSignal): Promise<string | undefined> => {
    try {
      return (await deps.resolveGateway(s.GATEWAY_NAME, s.K8S_DNS_IPS, { deadlineMs: 0, signal: callSignal })).address;
    } catch (e) {
      if (!callSignal.aborted && !st.lookupWarned) {
        st.lookupWarned = true;
        log.warn(`re-resolving the gateway failed: ${messageOf(e)}; keeping ${st.gatewayIp ?? "the current remote"}`);
      }
      return undefined;
    }
  };

  /** Repair in place towards gateway pod `gw` (undefined: the tunnel's current remote). */
  const repair = async (gw: string | undefined, callSignal: AbortSignal): Promise<void> => {
    stats.heals++;
    let facts: ClientFacts;
    try {
      facts = await deps.host.readFacts();
    } catch (e) {
      log.warn(`reading the network state failed: ${messageOf(e)}`);
      return;
    }
    if (!facts.vxlan || facts.vxlan.kind !== "vxlan") {
      await reinit(`${VXLAN_IF} is gone`, callSignal);
      return;
    }
    const addr = ourAddress(facts);
    if (!addr) {
      await reinit(`${VXLAN_IF} lost its overlay address`, callSignal);
      return;
    }
    const target = gw ?? st.gatewayIp ?? facts.vxlan.remote;
    if (!target) return;
    let changes: Change[];
    try {
      const plan = planClientNetwork(facts, networkInput(input, target));
      if (plan.changes.some((c) => c.op === "vxlan-add")) {
        await reinit(`${VXLAN_IF} no longer matches the settings`, callSignal);
        return;
      }
      const want =
        st.mode.kind === "static"
          ? { local: st.mode.address, prefixlen: 24, lifetime: "forever" as const }
          : { local: addr.local, prefixlen: addr.prefixlen, lifetime: st.lease ? addressLifetime(st.lease, clock.now()) : addr.validLft === Infinity ? ("forever" as const) : addr.validLft };
      const addrChanges = stateChanges(planClientAddress(facts, s.VXLAN_IP_NETWORK, want));
      // Flushing makes us ARP for .1 again: our broadcast reaches the gateway through the flood
      // entry, and that is how a re-created gateway (empty neighbour table, no flood entry of its
      // own) learns where we are.
      changes = [...plan.changes, ...addrChanges, { op: "neigh-flush", dev: VXLAN_IF, why: "make the gateway learn us again" }];
    } catch (e) {
      log.warn(`planning the repair failed: ${messageOf(e)}`);
      return;
    }
    try {
      await applyLogged(deps, changes, `repairing the tunnel to gateway pod ${target}`);
    } catch (e) {
      log.warn(`repairing the tunnel failed: ${messageOf(e)}`);
      return;
    }
    if (target !== st.gatewayIp) {
      stats.gatewayMoves++;
      log.info(`gateway pod moved from ${st.gatewayIp ?? "unknown"} to ${target}: tunnel remote and pinned route updated, neighbours flushed (address kept)`);
      st.gatewayIp = target;
    } else if (st.repairs <= 1) log.info(`gateway pod still at ${target}: neighbours flushed, waiting for it to answer`);
  };

  /**
   * One probe. While the gateway is down the lookup of its name goes out with it: when the name
   * points elsewhere the probe (which can only time out) is cut short and the tunnel repointed at
   * once. Returns what to repair, if anything.
   */
  const probeAndLookUp = (startedAt: number): Promise<{ repair: boolean; movedTo?: string }> =>
    scoped(signal, async (callSignal, abortCall) => {
      stats.probes++;
      let found: string | undefined;
      let moved = false;
      const lookup = planLookupWithProbe(policy, st.failures)
        ? lookUpGateway(callSignal).then((ip) => {
            found = ip;
            if (ip !== undefined && ip !== st.gatewayIp) {
              moved = true;
              abortCall();
            }
          })
        : undefined;
      const r = await deps.probeOnce(overlayGw, { timeoutMs: policy.probeTimeoutMs, signal: callSignal });
      if (signal.aborted) return { repair: false };
      log.trace(`probe ${overlayGw}: ${r.alive ? "alive" : "failed"} (${r.detail})`);
      if (r.alive) {
        if (st.failures > 0) log.info(`gateway ${overlayGw} answers again after ${st.failures} failed probe(s) (${Math.round((clock.now() - (st.downSince ?? clock.now())) / 100) / 10} s)`);
        st.failures = 0;
        st.repairs = 0;
        st.lastRepairTickAt = undefined;
        st.downSince = undefined;
        st.lookupWarned = false;
        // An unfinished lookup is not waited for; aborting keeps its failure, if any, out of the log.
        abortCall();
        return { repair: false };
      }
      stats.failedProbes++;
      st.failures++;
      st.downSince ??= startedAt;
      if (st.failures === 1) log.warn(`gateway ${overlayGw} did not answer: ${r.detail}`);
      else if (st.failures % 10 === 0) log.warn(`gateway ${overlayGw} still not answering after ${st.failures} probes (${Math.round((clock.now() - st.downSince) / 1000)} s)`);
      if (lookup) await lookup;
      else if (planLookupWithProbe(policy, st.failures)) {
        // This failure is the one that makes the sidecar act: look the gateway up now.
        found = await lookUpGateway(callSignal);
        moved = found !== undefined && found !== st.gatewayIp;
      }
      if (signal.aborted || !planRepair(policy, st, startedAt, moved)) return { repair: false };
      return { repair: true, movedTo: moved ? found : undefined };
    });

  const tick = async (startedAt: number): Promise<void> => {
    const next = await probeAndLookUp(startedAt);
    if (!next.repair || signal.aborted) return;
    st.repairs++;
    st.lastRepairTickAt = startedAt;
    await scoped(signal, (sig) => repair(next.movedTo, sig));
  };

  // ---- the loop
  while (!signal.aborted) {
    const leaseWake = await leaseUpkeep();
    if (signal.aborted) break;
    const now = clock.now();
    const wakeAt = Math.min(st.nextTickAt, leaseWake ?? Infinity, st.reacquireAt ?? Infinity);
    if (wakeAt > now) {
      await nap(wakeAt - now);
      continue;
    }
    if (now < st.nextTickAt) continue;
    await tick(now);
    st.nextTickAt = planNextTickAt(policy, now, clock.now());
  }
  input.events?.removeEventListener("renew", onRenew);

  // ---- shutdown: release within the second Kubernetes users expect
  let released = false;
  const live = st.mode.kind === "dhcp" && st.lease && planLeaseStep(st.lease, clock.now()).kind !== "expired" ? st.lease : undefined;
  if (live && !releaseAtExit) {
    log.info(`not releasing the DHCP lease of ${live.address}: the pod's other containers may still use the address; the gateway reclaims it when the lease lapses`);
  }
  if (live && releaseAtExit) {
    const lease = live;
    const timeout = new AbortController();
    let settled = false;
    const ok = await Promise.race([
      deps.dhcp.release(lease, id).then(
        () => true,
        (e) => (log.warn(`releasing the DHCP lease of ${lease.address} failed: ${messageOf(e)}`), false),
      ),
      clock.sleep(policy.releaseTimeoutMs, timeout.signal).then(() => {
        if (!settled) log.warn(`releasing the DHCP lease of ${lease.address} took longer than ${policy.releaseTimeoutMs} ms; exiting anyway`);
        return false;
      }),
    ]);
    settled = true;
    timeout.abort();
    released = ok;
    if (ok) log.info(`released the DHCP lease of ${lease.address}`);
  }
  return { reason: exitReason, released, stats };
}

export function newStats(): SidecarStats {
  return { probes: 0, failedProbes: 0, heals: 0, gatewayMoves: 0, reinits: 0, renewals: 0, failedRenewals: 0, leasesAcquired: 0 };
}
