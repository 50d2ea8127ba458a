// The client sidecar's decisions, without a driver: which address is ours, the lease's steps, the
// probe/lookup/repair schedule, the repair's plan, the release. Times are plain numbers (ms).
import { describe, expect, test } from "bun:test";
import { parseClientFacts, type ClientFacts } from "../../src/core/client/facts.ts";
import { planClientAddress, planClientNetwork, type ClientNetworkInput } from "../../src/core/client/plan.ts";
import { ANNOUNCE_SPREAD_MS, GOODBYE_FORGET_MS, planNeighbourRefresh, SidecarMachine, type MachineConfig, type MachinePolicy } from "../../src/core/client/sidecar-machine.ts";
import { simulateChanges } from "../../src/core/client/simulate.ts";
import { formatChange } from "../../src/core/net/change.ts";
import type { Lease } from "../../src/core/dhcp/types.ts";

const GW_POD = "198.18.0.2";
const netInput: Omit<ClientNetworkInput, "gatewayPodIp"> = {
  podName: "web-0",
  vni: 42,
  port: 0,
  network: "172.16.0",
  vpnInterfaceMtu: undefined,
  notRoutedCidrs: ["10.0.0.0/8"],
  dnsServers: ["198.18.1.10"],
  kubernetesServiceHost: undefined,
};

const POLICY: MachinePolicy = {
  intervalMs: 1000,
  retryCount: 3,
  repairBackoffCapMs: 30_000,
  reacquireDelayMs: 4000,
  isolationIntervalMs: 30_000,
  probeTimeoutMs: 500,
  lostIntervalMs: 250,
  lookupIntervalMs: 1000,
  lookupJitter: 0.5,
  fastWindowMs: 60_000,
  refreshIntervalMs: 500,
  slowProbeMs: 100,
  watchRetryMs: 30_000,
  watchRetryCapMs: 300_000,
  leavingConfirmMs: 1000,
};

function cfg(over: Partial<MachineConfig> = {}): MachineConfig {
  return {
    policy: POLICY,
    random: () => 0.5,
    mode: { kind: "dhcp" },
    network: "172.16.0",
    overlayGw: "172.16.0.1",
    netInput,
    ...over,
  };
}

/** A pod after client-init: the tunnel to GW_POD and `addr` on it with `validLft` seconds left. */
function initialised(addr = "172.16.0.23", validLft: number | "forever" = 120): ClientFacts {
  const fresh = parseClientFacts(
    [{ ifindex: 2, ifname: "eth0", flags: ["UP"], mtu: 1500, operstate: "UP", addr_info: [{ family: "inet", local: "198.18.0.10", prefixlen: 24 }] }],
    [
      { dst: "default", gateway: "198.18.0.1", dev: "eth0", flags: [] },
      { dst: "198.18.0.0/24", dev: "eth0", protocol: "kernel", scope: "link", flags: [] },
    ],
    [],
  );
  const p1 = simulateChanges(fresh, planClientNetwork(fresh, { ...netInput, gatewayPodIp: GW_POD }).changes);
  const f = simulateChanges(p1, planClientAddress(p1, "172.16.0", { local: addr, prefixlen: 24, lifetime: validLft }));
  return f;
}

const lease = (now: number, seconds = 120, address = "172.16.0.23"): Lease => ({
  address,
  prefixLength: 24,
  router: "172.16.0.1",
  dns: ["172.16.0.1"],
  serverId: "172.16.0.1",
  leaseSeconds: seconds,
  renewSeconds: seconds / 2,
  rebindSeconds: (seconds * 7) / 8,
  obtainedAt: now,
});

describe("start and which address is ours", () => {
  test("no tunnel, or a tunnel without our address: re-initialise", () => {
    const f = initialised();
    const noTunnel = structuredClone(f);
    noTunnel.vxlan = undefined;
    expect(new SidecarMachine(cfg(), 0).start(0, noTunnel)).toEqual({ reinit: "vxlan0 does not exist", notes: [] });
    const other = structuredClone(f);
    other.vxlan!.addresses = [{ local: "192.168.9.9", prefixlen: 24, validLft: Infinity, preferredLft: Infinity }];
    expect(new SidecarMachine(cfg(), 0).start(0, other).reinit).toBe("vxlan0 has no overlay address");
    // static mode: only the nat.conf address is ours
    expect(new SidecarMachine(cfg({ mode: { kind: "static", address: "172.16.0.5" } }), 0).start(0, f).reinit).toBe("vxlan0 has no overlay address");
  });

  test("DHCP: the lease is taken over from the address's lifetime", () => {
    const m = new SidecarMachine(cfg(), 5000);
    const r = m.start(5000, initialised("172.16.0.23", 120));
    expect(r.notes.map((n) => n.text)).toEqual([
      "took over the DHCP lease of 172.16.0.23: 120 s left, renewing in 60 s",
      "watching gateway 172.16.0.1 through vxlan0 (gateway pod 198.18.0.2) every 1 s",
    ]);
    expect(m.lease).toMatchObject({ address: "172.16.0.23", leaseSeconds: 120, obtainedAt: 5000 });
    expect(m.gatewayIp).toBe(GW_POD);
  });
});

describe("the loop's steps", () => {
  test("sleep to the next tick, tick, renew at T1, rebind at T2, a new lease after expiry", () => {
    const m = new SidecarMachine(cfg({ policy: { ...POLICY, intervalMs: 100_000, repairBackoffCapMs: 300_000 } }), 0);
    m.start(0, initialised("172.16.0.23", 120));
    expect(m.next(0).step).toEqual({ kind: "sleep", untilMs: 60_000 }); // T1 before the first tick
    expect(m.next(60_000).step).toEqual({ kind: "renew", lease: m.lease!, rebind: false, renewal: 1 });
    const failed = m.renewFailed(60_000, m.lease!, false, "timeout");
    expect(failed[0]!.text).toBe('renewing the DHCP lease of 172.16.0.23 failed: timeout (pod_gateway_client_dhcp_renewals_total{result="failed"} 1)');
    // after a failure: half the time left to T2 (60 s + 45 s / 2)
    expect(m.next(60_001).step).toEqual({ kind: "sleep", untilMs: 82_500 });
    expect(m.next(105_000).step).toMatchObject({ kind: "renew", rebind: true, renewal: 2 });
    m.renewFailed(105_000, m.lease!, true, "timeout");
    const expired = m.next(120_000);
    expect(expired.step).toEqual({ kind: "acquire", fallbackAddress: "172.16.0.23" });
    expect(expired.notes[0]!.text).toBe("the DHCP lease of 172.16.0.23 expired without a renewal; asking for a new one");
    expect(m.acquireFailed(120_000, "no offer")[0]!.text).toBe("getting a new DHCP lease failed: no offer; trying again in 4 s");
    // the tick that was due at 100 s comes before the next attempt at 124 s
    expect(m.next(121_000).step).toEqual({ kind: "tick", startedAt: 121_000, lookup: false, timeoutMs: 500 });
    m.tickDone(121_000, 121_005);
    expect(m.next(122_000).step).toEqual({ kind: "sleep", untilMs: 124_000 });
    expect(m.next(124_000).step).toMatchObject({ kind: "acquire" });
    m.acquired(lease(124_000, 600, "172.16.0.30"));
    expect(m.stats).toMatchObject({ leasesAcquired: 1, failedRenewals: 2 });
  });

  test("a renewal asked for (SIGUSR1) comes first, with its note", () => {
    const m = new SidecarMachine(cfg(), 0);
    m.start(0, initialised());
    m.requestRenewal();
    const r = m.next(10);
    expect(r.step).toMatchObject({ kind: "renew", rebind: false });
    expect(r.notes.map((n) => n.text)).toEqual(["renewing the DHCP lease of 172.16.0.23 now, as asked"]);
    const notes = m.renewed(m.lease!, lease(20, 120, "172.16.0.24"), false);
    expect(notes.map((n) => n.text)).toEqual(["the DHCP server moved us from 172.16.0.23 to 172.16.0.24", 'DHCP lease of 172.16.0.24 renewed for 120 s (pod_gateway_client_dhcp_renewals_total{result="ok"} 1)']);
  });

  test("a renewal in flight does not hold the probes back; one at a time; what falls due meanwhile waits for its end", () => {
    const m = new SidecarMachine(cfg(), 0);
    m.start(0, initialised("172.16.0.23", 120));
    // T1 at 60 s: the renewal starts; the loop goes on ticking at its interval while it runs
    expect(m.next(60_000).step).toMatchObject({ kind: "renew", renewal: 1 });
    expect(m.renewalInFlight).toBe(true);
    expect(m.next(60_000).step).toEqual({ kind: "tick", startedAt: 60_000, lookup: false, timeoutMs: 500 });
    m.probed(60_000, 60_000, false, "timeout", false);
    m.decide(60_000, undefined);
    m.tickDone(60_000, 60_500);
    // a renewal asked for meanwhile (SIGUSR1) is not a second exchange: it waits; the outage's
    // first lookup is a tick of its own (random 0.5: half a mean gap after the failure)
    m.requestRenewal();
    expect(m.next(60_500).step).toEqual({ kind: "tick", startedAt: 60_500, lookup: true, timeoutMs: 250 });
    m.probed(60_500, 60_500, true, "DNS NOERROR", true);
    m.tickDone(60_500, 60_510);
    for (const t of [61_500, 62_500]) {
      expect(m.next(t).step).toMatchObject({ kind: "tick", startedAt: t });
      m.probed(t, t, true, "DNS NOERROR", false);
      m.tickDone(t, t + 10);
    }
    // the gateway answered again after the failure: an announce is due at 60.5 + 2.5 s, but the
    // renewal is still in flight: the loop sleeps to its next tick, not to the announce
    expect(m.next(62_510).step).toEqual({ kind: "sleep", untilMs: 63_500 });
    expect(m.next(63_100).step).toEqual({ kind: "sleep", untilMs: 63_500 });
    // its end (the exchange timed out) counts, then the renewal asked for goes out
    expect(m.renewalEnded(1)).toBe(true);
    m.renewFailed(65_000, m.lease!, false, "no answer within 5 s");
    expect(m.renewalInFlight).toBe(false);
    const again = m.next(65_000);
    expect(again.step).toMatchObject({ kind: "renew", renewal: 2, rebind: false });
    expect(again.notes.map((n) => n.text)).toEqual(["renewing the DHCP lease of 172.16.0.23 now, as asked"]);
    m.renewed(m.lease!, lease(65_100), false);
    // that one renewal was the announce too: none more
    expect(m.next(65_100).step).toMatchObject({ kind: "tick", startedAt: 65_100 });
  });

  test("a renewal in flight across a move, granted once the gateway answers again, is the announcement: no second one", () => {
    const m = new SidecarMachine(cfg({ policy: { ...POLICY, retryCount: 1 } }), 0);
    m.start(0, initialised("172.16.0.23", 120));
    m.requestRenewal();
    expect(m.next(500).step).toMatchObject({ kind: "renew", renewal: 1 });
    // the gateway goes while the renewal waits; the next probe fails, a later one is answered
    expect(m.next(1000).step).toMatchObject({ kind: "tick" });
    m.probed(1000, 1000, false, "timeout", false);
    m.tickDone(1000, 1500);
    expect(m.next(1500).step).toMatchObject({ kind: "tick" });
    m.probed(1500, 1500, true, "DNS NOERROR", false); // an announce is now due within 5 s
    m.tickDone(1500, 1505);
    // the renewal's retransmission reaches the gateway that is back: granted
    expect(m.renewalEnded(1)).toBe(true);
    m.renewed(m.lease!, lease(1600), false);
    for (let t = 2500; t <= 9500; t += 1000) {
      const st = m.next(t).step;
      expect(st.kind).toBe("tick"); // never a second renewal
      m.probed(t, t, true, "DNS NOERROR", false);
      m.tickDone(t, t + 5);
    }
  });

  test("a renewal overtaken by a re-initialisation no longer counts", () => {
    const m = new SidecarMachine(cfg(), 0);
    m.start(0, initialised("172.16.0.23", 120));
    expect(m.next(60_000).step).toMatchObject({ kind: "renew", renewal: 1 });
    m.reinitStarted("vxlan0 is gone");
    m.reinitDone({ gatewayPodIp: GW_POD, address: "172.16.0.40", mode: "dhcp", lease: lease(61_000, 600, "172.16.0.40") });
    expect(m.renewalEnded(1)).toBe(false); // its lease (172.16.0.23) must not replace the new one
    expect(m.lease!.address).toBe("172.16.0.40");
    expect(m.next(61_000).step).toMatchObject({ kind: "tick" });
  });

  test("static mode never touches a lease", () => {
    const m = new SidecarMachine(cfg({ mode: { kind: "static", address: "172.16.0.23" } }), 0);
    m.start(0, initialised("172.16.0.23", "forever"));
    expect(m.lease).toBeUndefined();
    expect(m.next(1000).step).toEqual({ kind: "tick", startedAt: 1000, lookup: false, timeoutMs: 500 });
    expect(m.release(1000)).toBeUndefined();
  });
});

describe("probes, lookups and repairs", () => {
  test("lost: from the first failure probes every 250 ms, jittered lookups and refreshes; the third failure repairs; an answer ends it all", () => {
    const m = new SidecarMachine(cfg(), 0);
    m.start(0, initialised());
    const fail = (t: number, lookedUp = false) => m.probed(t, t, false, "timeout", lookedUp);
    expect(m.next(1000).step).toEqual({ kind: "tick", startedAt: 1000, lookup: false, timeoutMs: 500 });
    expect(fail(1000)).toEqual({ lookupNow: false, notes: [{ level: "trace", text: "probe 172.16.0.1: failed (timeout)" }, { level: "warn", text: "gateway 172.16.0.1 did not answer: timeout" }] });
    // below the retry count no repair, but the neighbours are refreshed at once (a gateway
    // re-created at the same IP is only reached once the old pod's MAC is forgotten), and the
    // first lookup is scheduled within one mean gap (random 0.5 → 500 ms)
    expect(m.decide(1000, undefined)).toEqual({ repair: false, refresh: true });
    m.tickDone(1000, 1010);
    // lost: the next probe 250 ms after this one started, waiting at most 250 ms for its answer
    expect(m.next(1010).step).toEqual({ kind: "sleep", untilMs: 1250 });
    expect(m.next(1250).step).toEqual({ kind: "tick", startedAt: 1250, lookup: false, timeoutMs: 250 });
    fail(1250);
    expect(m.decide(1250, undefined)).toEqual({ repair: false, refresh: false }); // at most every 500 ms here
    m.tickDone(1250, 1260);
    // the lookup is due with the tick at 1500; the next one a jittered gap later: 1 s × (1 ± 0.5), 0.5 → 1 s
    expect(m.next(1500).step).toEqual({ kind: "tick", startedAt: 1500, lookup: true, timeoutMs: 250 });
    fail(1500, true); // the third: acting
    expect(m.decide(1500, GW_POD)).toEqual({ repair: true, target: undefined });
    m.tickDone(1500, 1510);
    expect(m.next(1750).step).toEqual({ kind: "tick", startedAt: 1750, lookup: false, timeoutMs: 250 });
    fail(1750);
    // no repair (the backoff: 1 s after the first), and no refresh yet (the repair flushed)
    expect(m.decide(1750, undefined)).toEqual({ repair: false, refresh: false });
    m.tickDone(1750, 1760);
    expect(m.next(1760).step).toEqual({ kind: "sleep", untilMs: 2000 });
    expect(m.next(2000).step).toEqual({ kind: "tick", startedAt: 2000, lookup: false, timeoutMs: 250 });
    fail(2000);
    expect(m.decide(2000, undefined)).toEqual({ repair: false, refresh: true }); // 500 ms after the repair's
    m.tickDone(2000, 2010);
    for (const t of [2250, 2500, 2750]) {
      expect(m.next(t).step).toMatchObject({ kind: "tick", lookup: t === 2500 });
      fail(t, t === 2500);
      expect(m.decide(t, t === 2500 ? GW_POD : undefined)).toEqual(t === 2500 ? { repair: true, target: undefined } : { repair: false, refresh: false });
      m.tickDone(t, t + 10);
    }
    expect(m.next(3000).step).toEqual({ kind: "tick", startedAt: 3000, lookup: false, timeoutMs: 250 });
    expect(m.stats).toMatchObject({ probes: 8, failedProbes: 8 });
    const back = m.probed(3000, 3000, true, "DNS NOERROR", false);
    expect(back.notes.map((n) => n.text)).toEqual(["probe 172.16.0.1: alive (DNS NOERROR)", "gateway 172.16.0.1 answers again after 8 failed probe(s) (2 s) (pod_gateway_client_gateway_reachable 1, pod_gateway_client_recoveries_total 1)"]);
    m.tickDone(3000, 3005);
    // answering: back to one probe per interval, no lookup
    expect(m.next(3005).step).toEqual({ kind: "sleep", untilMs: 4000 });
    expect(m.next(4000).step).toEqual({ kind: "tick", startedAt: 4000, lookup: false, timeoutMs: 500 });
    m.probed(4000, 4000, true, "DNS NOERROR", false);
    m.tickDone(4000, 4005);
    // the lease is announced again (a gateway back after an outage may have lost its lease file),
    // once, at a random point of ANNOUNCE_SPREAD_MS after the answer (random 0.5 → 2.5 s)
    expect(m.next(4005).step).toEqual({ kind: "sleep", untilMs: 5000 });
    m.next(5000);
    m.probed(5000, 5000, true, "DNS NOERROR", false);
    m.tickDone(5000, 5005);
    expect(m.next(5005).step).toEqual({ kind: "sleep", untilMs: 3000 + ANNOUNCE_SPREAD_MS / 2 });
    const announce = m.next(3000 + ANNOUNCE_SPREAD_MS / 2);
    expect(announce.step).toMatchObject({ kind: "renew", rebind: false, lease: { address: "172.16.0.23" } });
    expect(announce.notes.map((n) => n.text)).toEqual(["renewing the DHCP lease of 172.16.0.23 now, to announce it to the gateway again (it may have lost its lease file while away)"]);
    expect(m.next(3000 + ANNOUNCE_SPREAD_MS / 2).step).toEqual({ kind: "sleep", untilMs: 6000 });
  });

  test("jitter: 200 sidecars that lose the gateway in the same instant spread their lookups; each later gap is 0.5-1.5 mean gaps", () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const firsts: number[] = [];
    const gaps: number[] = [];
    for (let i = 0; i < 200; i++) {
      const m = new SidecarMachine(cfg({ random, policy: { ...POLICY, retryCount: 1 } }), 0);
      m.start(0, initialised());
      const lookups: number[] = [];
      // every sidecar started together: the same tick times; the gateway gone at 1 s
      let t = 1000;
      while (t < 6000) {
        const st = m.next(t).step;
        if (st.kind === "sleep") {
          t = st.untilMs;
          continue;
        }
        if (st.kind !== "tick") throw new Error(`unexpected step ${st.kind}`);
        if (st.lookup) lookups.push(t);
        m.probed(t, t, false, "timeout", st.lookup);
        m.decide(t, undefined);
        m.tickDone(t, t);
      }
      firsts.push(lookups[0]!);
      for (let k = 1; k < lookups.length; k++) gaps.push(lookups[k]! - lookups[k - 1]!);
    }
    // the first lookups fall within one mean gap after the failure, never all in one instant
    for (const f of firsts) expect(f).toBeGreaterThanOrEqual(1000), expect(f).toBeLessThan(2000);
    const perSlot = new Map<number, number>();
    for (const f of firsts) perSlot.set(Math.floor(f / 100), (perSlot.get(Math.floor(f / 100)) ?? 0) + 1);
    expect(perSlot.size).toBe(10); // every 100 ms slot of the second has some
    expect(Math.max(...perSlot.values())).toBeLessThan(40); // and none more than a fifth of the herd
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(500), expect(g).toBeLessThanOrEqual(1500);
    expect(new Set(gaps).size).toBeGreaterThan(50); // not one lockstep gap
  });

  test("a long outage: after the fast minute, one probe (with its usual timeout) and about one lookup per interval", () => {
    const m = new SidecarMachine(cfg({ policy: { ...POLICY, retryCount: 1 }, mode: { kind: "static", address: "172.16.0.23" } }), 0);
    m.start(0, initialised("172.16.0.23", "forever"));
    const ticks: { t: number; lookup: boolean; timeoutMs: number }[] = [];
    let t = 1000;
    while (t < 121_000) {
      const st = m.next(t).step;
      if (st.kind === "sleep") {
        t = st.untilMs;
        continue;
      }
      if (st.kind !== "tick") throw new Error(`unexpected step ${st.kind}`);
      ticks.push({ t, lookup: st.lookup, timeoutMs: st.timeoutMs });
      m.probed(t, t, false, "timeout", st.lookup);
      m.decide(t, undefined);
      m.tickDone(t, t);
    }
    const fast = ticks.filter((x) => x.t < 61_000);
    const slow = ticks.filter((x) => x.t >= 62_000);
    expect(fast.length).toBe(240); // every 250 ms for 60 s
    expect(fast[0]!.timeoutMs).toBe(500); // the first failure: not lost yet
    expect(fast.slice(1).every((x) => x.timeoutMs === 250)).toBe(true);
    expect(fast.filter((x) => x.lookup).length).toBe(60); // random 0.5: every second
    expect(slow.every((x) => x.timeoutMs === 500)).toBe(true);
    for (let k = 1; k < slow.length; k++) expect(slow[k]!.t - slow[k - 1]!.t).toBe(1000);
    expect(slow.filter((x) => x.lookup).length).toBe(slow.length);
  });

  test("a slow probe is looked up alongside only while the gateway answers and the tick has no lookup of its own", () => {
    const m = new SidecarMachine(cfg({ policy: { ...POLICY, retryCount: 1 } }), 0);
    m.start(0, initialised());
    const st = m.next(1000).step;
    expect(st).toEqual({ kind: "tick", startedAt: 1000, lookup: false, timeoutMs: 500 });
    expect(m.slowProbeLookupAfterMs({ lookup: false, timeoutMs: 500 })).toBe(300); // random 0.5: between 100 and 500 ms
    expect(m.slowProbeLookupAfterMs({ lookup: true, timeoutMs: 500 })).toBeUndefined();
    m.probed(1000, 1000, false, "timeout", true);
    m.tickDone(1000, 1500);
    // in the outage the lookups keep their own jittered schedule
    expect(m.next(1500).step).toMatchObject({ kind: "tick", timeoutMs: 250 });
    expect(m.slowProbeLookupAfterMs({ lookup: false, timeoutMs: 250 })).toBeUndefined();
    m.probed(1500, 1500, true, "DNS NOERROR", false);
    expect(m.slowProbeLookupAfterMs({ lookup: false, timeoutMs: 500 })).toBe(300);
  });

  test("a lookup that finds the gateway elsewhere repairs at once, towards it", () => {
    const m = new SidecarMachine(cfg(), 0);
    m.start(0, initialised());
    m.probed(1000, 1000, false, "timeout", false);
    expect(m.isMove("198.18.0.77")).toBe(true);
    expect(m.decide(1000, "198.18.0.77")).toEqual({ repair: true, target: "198.18.0.77" });
    const plan = m.planRepair(1000, initialised(), "198.18.0.77");
    expect(plan.kind).toBe("apply");
    if (plan.kind !== "apply") return;
    // (the gateway pod's subnet is the CNI's on-link route: no pin to move, only the remote)
    expect(plan.changes.map(formatChange)).toEqual(["link set vxlan0 type vxlan remote 198.18.0.77", "neigh flush dev eth0 to 198.18.0.77", "neigh flush dev vxlan0"]);
    expect(m.repaired("198.18.0.77").map((n) => n.text)).toEqual(["gateway pod moved from 198.18.0.2 to 198.18.0.77: tunnel remote and pinned route updated, neighbours flushed (address kept) (pod_gateway_client_repairs_total{kind=\"in_place\"} 1)"]);
    expect(m.stats).toMatchObject({ heals: 1, gatewayMoves: 1 });
    // answering again ends the outage
    const alive = m.probed(2000, 2000, true, "DNS NOERROR", false);
    expect(alive.notes.at(-1)!.text).toBe("gateway 172.16.0.1 answers again after 1 failed probe(s) (1 s)");
    // a new gateway pod starts with an empty lease file: the lease is announced to it, within
    // ANNOUNCE_SPREAD_MS (random 0.5: half of it), not with the next probe
    expect(m.next(3000).step).toMatchObject({ kind: "tick", lookup: false });
    const at = 2000 + ANNOUNCE_SPREAD_MS / 2;
    expect(m.next(at).step).toMatchObject({ kind: "renew", lease: { address: "172.16.0.23" } });
    expect(m.next(at).step).toMatchObject({ kind: "tick", lookup: false });
  });

  test("a repair re-initialises when the tunnel is gone or lost our address", () => {
    const m = new SidecarMachine(cfg(), 0);
    m.start(0, initialised());
    const gone = initialised();
    gone.vxlan = undefined;
    expect(m.planRepair(0, gone, undefined)).toEqual({ kind: "reinit", why: "vxlan0 is gone" });
    const bare = initialised();
    bare.vxlan!.addresses = [];
    expect(m.planRepair(0, bare, undefined)).toEqual({ kind: "reinit", why: "vxlan0 lost its overlay address" });
    expect(m.reinitStarted("vxlan0 is gone")[0]!.text).toBe("vxlan0 is gone: re-initialising the tunnel");
    expect(m.reinitDone({ gatewayPodIp: "198.18.0.9", address: "172.16.0.23", mode: "dhcp", lease: lease(0) })[0]!.text).toBe('tunnel re-initialised: 172.16.0.23 (dhcp) via gateway pod 198.18.0.9 (pod_gateway_client_repairs_total{kind="reinit"} 1)');
    expect(m.gatewayIp).toBe("198.18.0.9");
    expect(m.stats.reinits).toBe(1);
  });

  test("a repair where nothing moved only refreshes the neighbours (eth0's of the gateway pod, vxlan0's)", () => {
    const m = new SidecarMachine(cfg({ mode: { kind: "static", address: "172.16.0.23" } }), 0);
    m.start(0, initialised("172.16.0.23", "forever"));
    const plan = m.planRepair(0, initialised("172.16.0.23", "forever"), undefined);
    expect(plan.kind === "apply" && plan.changes.map(formatChange)).toEqual(["neigh flush dev eth0 to 198.18.0.2", "neigh flush dev vxlan0"]);
    expect(m.repaired(GW_POD).map((n) => n.text)).toEqual(["gateway pod still at 198.18.0.2: neighbours flushed, waiting for it to answer (pod_gateway_client_repairs_total{kind=\"in_place\"} 1)"]);
  });
});

describe("the neighbour refresh (a gateway re-created at the same pod IP)", () => {
  test("the tunnel asks again for .1 within the lost probe interval (set at the take-over and after each re-initialisation)", () => {
    const m = new SidecarMachine(cfg(), 0);
    expect(m.tunnelTuning().map(formatChange)).toEqual(["ntable change name arp_cache dev vxlan0 retrans 250"]);
  });

  test("the gateway pod on the pod's own subnet: its eth0 entry and vxlan0's", () => {
    expect(planNeighbourRefresh(initialised(), GW_POD).map(formatChange)).toEqual(["neigh flush dev eth0 to 198.18.0.2", "neigh flush dev vxlan0"]);
  });

  test("the gateway pod on another node, reached through a next hop: that next hop's entry too", () => {
    const f = initialised();
    f.routes4.push({ dst: "10.244.2.9", gateway: "198.18.0.1", dev: "eth0", flags: [] } as (typeof f.routes4)[number]);
    f.routes4.push({ dst: "10.244.0.0/16", gateway: "198.18.0.254", dev: "eth0", flags: [] } as (typeof f.routes4)[number]);
    expect(planNeighbourRefresh(f, "10.244.2.9").map(formatChange)).toEqual(["neigh flush dev eth0 to 10.244.2.9", "neigh flush dev eth0 to 198.18.0.1", "neigh flush dev vxlan0"]);
    // only the most specific route counts, and one through the tunnel has no eth0 next hop
    expect(planNeighbourRefresh(f, "10.244.7.7").map(formatChange)).toEqual(["neigh flush dev eth0 to 10.244.7.7", "neigh flush dev eth0 to 198.18.0.254", "neigh flush dev vxlan0"]);
    expect(planNeighbourRefresh(f, "8.8.8.8").map(formatChange)).toEqual(["neigh flush dev eth0 to 8.8.8.8", "neigh flush dev vxlan0"]);
  });

  test("no tunnel, no known gateway: only what exists", () => {
    const f = initialised();
    f.vxlan = undefined;
    expect(planNeighbourRefresh(f, GW_POD).map(formatChange)).toEqual(["neigh flush dev eth0 to 198.18.0.2"]);
    expect(planNeighbourRefresh(initialised(), undefined).map(formatChange)).toEqual(["neigh flush dev vxlan0"]);
  });

  test("the refresh is said once per outage, and planned once per outage and repair", () => {
    const m = new SidecarMachine(cfg({ policy: { ...POLICY, retryCount: 1 } }), 0);
    m.start(0, initialised());
    m.probed(1000, 1000, false, "timeout", false);
    const first = m.planRefresh(initialised());
    expect(first.notes.map((n) => n.text)).toEqual(["refreshing the neighbours the tunnel relies on while gateway 172.16.0.1 does not answer: eth0 198.18.0.2 and every entry of vxlan0"]);
    expect(m.planRefresh(initialised()).notes).toEqual([]);
    // planned once per outage: the driver need not read the network for every refresh
    expect(m.cachedRefresh()!.map(formatChange)).toEqual(["neigh flush dev eth0 to 198.18.0.2", "neigh flush dev vxlan0"]);
    m.repaired("198.18.0.9");
    expect(m.cachedRefresh()).toBeUndefined(); // a repair (here a move) plans afresh
    m.planRefresh(initialised());
    m.probed(1250, 1250, true, "ok", false);
    expect(m.cachedRefresh()).toBeUndefined();
    m.probed(2000, 2000, false, "timeout", false);
    expect(m.planRefresh(initialised()).notes).toHaveLength(1);
  });
});

describe("release", () => {
  test("a good lease is released; an expired one is not", () => {
    const m = new SidecarMachine(cfg(), 0);
    m.start(0, initialised("172.16.0.23", 120));
    expect(m.release(1000)?.address).toBe("172.16.0.23");
    expect(m.release(121_000)).toBeUndefined();
  });
});

describe("the watch connection (the gateway says goodbye)", () => {
  const watched = (over: Partial<MachineConfig> = {}) => {
    const m = new SidecarMachine(cfg({ watchPort: 4790, mode: { kind: "static", address: "172.16.0.23" }, ...over }), 0);
    m.start(0, initialised("172.16.0.23", "forever"));
    return m;
  };
  const texts = (notes: { text: string }[]) => notes.map((n) => n.text);

  test("port 0: never a connection", () => {
    const m = new SidecarMachine(cfg({ watchPort: 0 }), 0);
    m.start(0, initialised());
    expect(m.watchStep(0)).toEqual({});
    m.probed(1000, 1000, false, "timeout", false);
    m.probed(1250, 1250, true, "ok", false);
    expect(m.watchStep(1300)).toEqual({});
    expect(m.watchEstablished(1, 1300).keep).toBe(false);
  });

  test("opened at the start (client-init's probe answered); a goodbye starts the lost cadence (its phase jittered) until an answer AND a new watch", () => {
    const m = watched();
    expect(m.watchStep(0)).toEqual({ open: 1 });
    expect(m.watchStep(10)).toEqual({}); // one at a time
    const est = m.watchEstablished(1, 20);
    expect(est.keep).toBe(true);
    expect(texts(est.notes)).toEqual(["watching gateway 172.16.0.1 for its goodbye on TCP port 4790"]);
    expect(m.next(500).step).toEqual({ kind: "sleep", untilMs: 1000 });
    // the gateway-sidecar got SIGTERM: it closed the connection first
    expect(texts(m.watchClosed(1, 500, "closed by the gateway"))).toEqual([
      "gateway 172.16.0.1 closed the watch connection (closed by the gateway): it is leaving; probing every 250 ms and looking it up until a gateway answers and is watched again (pod_gateway_client_watch_goodbyes_total 1)",
    ]);
    expect(m.stats.watchGoodbyes).toBe(1);
    // the first probe within one lost interval (random 0.5: 125 ms), the first lookup within one
    // lookup gap (500 ms): every pod heard the goodbye in the same instant, their cadences differ
    expect(m.next(500).step).toEqual({ kind: "sleep", untilMs: 625 });
    expect(m.next(625).step).toEqual({ kind: "tick", startedAt: 625, lookup: false, timeoutMs: 250 });
    // the leaving gateway's dnsmasq still answers: that does not end the fast mode
    m.probed(626, 625, true, "DNS NOERROR", false);
    m.tickDone(625, 626);
    // a new connection only after the lost interval: its port is closed already (not a "no watch" failure)
    expect(m.watchStep(700)).toEqual({});
    expect(m.watchStep(750)).toEqual({ open: 2 });
    expect(m.watchFailed(2, 750, "connecting: ECONNREFUSED").map((n) => n.level)).toEqual(["debug"]);
    expect(m.next(750).step).toEqual({ kind: "sleep", untilMs: 875 });
    // (a gateway that answered gets the regular wait for its answer, at the lost cadence)
    // now it is gone: the first failed probe refreshes the neighbours, and after a goodbye the
    // second too (the first may have re-learned the leaving pod's MAC); then not within refreshIntervalMs
    expect(m.next(875).step).toEqual({ kind: "tick", startedAt: 875, lookup: false, timeoutMs: 500 });
    m.probed(1125, 875, false, "timeout", false);
    expect(m.decide(875, undefined)).toEqual({ repair: false, refresh: true });
    m.tickDone(875, 1125);
    expect(m.watchStep(1125)).toEqual({}); // not while it does not answer
    expect(m.next(1125).step).toEqual({ kind: "tick", startedAt: 1125, lookup: true, timeoutMs: 250 });
    m.probed(1375, 1125, false, "timeout", true);
    expect(m.decide(1125, GW_POD)).toEqual({ repair: false, refresh: true });
    m.tickDone(1125, 1375);
    // the new gateway answers: a new connection at once (a recovery), but still fast until it is established
    expect(m.next(1375).step).toMatchObject({ kind: "tick", startedAt: 1375, timeoutMs: 250 });
    m.probed(1385, 1375, true, "DNS NOERROR", false);
    m.tickDone(1375, 1385);
    expect(m.watchStep(1385)).toEqual({ open: 3 });
    expect(m.next(1385).step).toEqual({ kind: "sleep", untilMs: 1625 });
    const back = m.watchEstablished(3, 1395);
    expect(texts(back.notes)).toEqual(["watching gateway 172.16.0.1 for its goodbye on TCP port 4790", "gateway 172.16.0.1 answers and is watched again 0.9 s after its goodbye"]);
    // back to the regular cadence: no lookups, the regular timeout, one probe per interval
    expect(m.next(1625).step).toEqual({ kind: "tick", startedAt: 1625, lookup: false, timeoutMs: 500 });
    m.probed(1626, 1625, true, "ok", false);
    m.tickDone(1625, 1626);
    expect(m.next(1626).step).toEqual({ kind: "sleep", untilMs: 2625 });
  });

  test("a goodbye, then a new watch before any answer: the fast mode ends with the next answer", () => {
    const m = watched();
    m.watchStep(0);
    m.watchEstablished(1, 1);
    m.watchClosed(1, 100, "connection lost: ECONNRESET");
    expect(m.next(225).step).toMatchObject({ kind: "tick", startedAt: 225 });
    m.probed(475, 225, false, "timeout", false);
    m.tickDone(225, 475);
    m.next(475);
    m.probed(485, 475, true, "ok", false);
    m.tickDone(475, 485);
    expect(m.watchStep(485)).toEqual({ open: 2 });
    // a probe fails before the greeting arrives: established, but still looking
    expect(m.next(725).step).toMatchObject({ kind: "tick", startedAt: 725 });
    m.probed(975, 725, false, "timeout", true);
    m.tickDone(725, 975);
    expect(texts(m.watchEstablished(2, 985).notes)).toEqual(["watching gateway 172.16.0.1 for its goodbye on TCP port 4790"]);
    expect(m.next(985).step).toMatchObject({ kind: "tick", startedAt: 985, timeoutMs: 250 });
    const ok = m.probed(995, 985, true, "ok", false);
    expect(texts(ok.notes)).toContain("gateway 172.16.0.1 answers and is watched again 0.9 s after its goodbye");
    m.tickDone(985, 995);
    // (the recovery asks for a fresh watch: the one held is dropped for a new one)
    expect(m.watchStep(995)).toEqual({ close: 2, open: 3 });
    expect(m.next(995).step).toEqual({ kind: "sleep", untilMs: 1985 });
  });

  test("200 sidecars that hear the goodbye in the same instant probe out of step", () => {
    let seed = 777;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const firsts: number[] = [];
    for (let i = 0; i < 200; i++) {
      const m = watched({ random });
      m.watchStep(0);
      m.watchEstablished(1, 1);
      m.watchClosed(1, 1000, "closed by the gateway");
      let st = m.next(1000).step;
      if (st.kind === "sleep") st = m.next(st.untilMs).step;
      if (st.kind !== "tick") throw new Error(`unexpected step ${st.kind}`);
      firsts.push(st.startedAt);
    }
    // each first probe (or lookup with its probe) within the first lost interval, spread over it
    expect(firsts.every((x) => x >= 1000 && x < 1250)).toBe(true);
    const per25 = new Map<number, number>();
    for (const x of firsts) per25.set(Math.floor((x - 1000) / 25), (per25.get(Math.floor((x - 1000) / 25)) ?? 0) + 1);
    expect(per25.size).toBe(10); // every 25 ms slot has some
    expect(Math.max(...per25.values())).toBeLessThan(50); // never a quarter of the herd at once
  });

  test("never established (an older gateway): a back-off of 30 s, then 60 s, said once; no fast mode, no probe more", () => {
    const m = watched();
    expect(m.watchStep(0)).toEqual({ open: 1 });
    const first = m.watchFailed(1, 2000, "no greeting within 2000 ms");
    expect(first).toEqual([{ level: "info", text: "gateway 172.16.0.1 offers no watch connection on TCP port 4790 (no greeting within 2000 ms); noticing its departures by probing only; trying again in 30 s" }]);
    // the probes keep their regular cadence
    expect(m.next(2000).step).toEqual({ kind: "tick", startedAt: 2000, lookup: false, timeoutMs: 500 });
    m.probed(2001, 2000, true, "ok", false);
    m.tickDone(2000, 2001);
    expect(m.next(2001).step).toEqual({ kind: "sleep", untilMs: 3000 });
    expect(m.watchStep(31_999)).toEqual({});
    expect(m.watchStep(32_000)).toEqual({ open: 2 });
    expect(m.watchFailed(2, 32_010, "connecting: ECONNREFUSED")).toEqual([{ level: "debug", text: "gateway 172.16.0.1 offers no watch connection on TCP port 4790 (connecting: ECONNREFUSED); noticing its departures by probing only; trying again in 60 s" }]);
    expect(m.watchStep(92_009)).toEqual({});
    expect(m.watchStep(92_010)).toEqual({ open: 3 });
    // an outage and a recovery: tried again at once (the failures may have been the outage's)
    m.watchFailed(3, 92_020, "connecting: EHOSTUNREACH");
    m.probed(93_000, 93_000, false, "timeout", false);
    expect(m.watchStep(93_001)).toEqual({});
    m.probed(94_000, 94_000, true, "ok", false);
    expect(m.watchStep(94_001)).toEqual({ open: 4 });
    expect(m.stats.watchGoodbyes).toBe(0);
  });

  test("after a goodbye, a gateway that answers every probe for a second is back without a new watch; failures then back off", () => {
    const m = watched();
    m.watchStep(0);
    m.watchEstablished(1, 1);
    m.watchClosed(1, 1000, "closed by the gateway");
    let t = 1000;
    const ticks: { t: number; timeoutMs: number }[] = [];
    const said: string[] = [];
    while (t < 8_000) {
      const st = m.next(t).step;
      if (st.kind === "sleep") {
        t = st.untilMs;
        continue;
      }
      if (st.kind !== "tick") throw new Error(`unexpected step ${st.kind}`);
      ticks.push({ t, timeoutMs: st.timeoutMs });
      said.push(...texts(m.probed(t, t, true, "ok", st.lookup).notes)); // an older gateway: it answers, never a watch
      m.tickDone(t, t);
      const w = m.watchStep(t);
      if (w.open) said.push(...texts(m.watchFailed(w.open, t, "connecting: ECONNREFUSED")));
    }
    // the lost cadence for one second of answers (the first probe at the short wait: nothing answered since the goodbye yet)
    // (the first lookup, due at 1500, is a tick of its own and restarts the cadence)
    expect(ticks.filter((x) => x.t <= 2250).map((x) => x.t)).toEqual([1125, 1375, 1500, 1750, 2000, 2250]);
    expect(ticks[0]!.timeoutMs).toBe(250);
    expect(ticks.slice(1).every((x) => x.timeoutMs === 500)).toBe(true);
    expect(said).toContain("gateway 172.16.0.1 has answered every probe for 1 s, 1.3 s after its goodbye: back to the regular cadence without a watch connection yet");
    // then the regular cadence, and the watch tried again only after its back-off
    expect(ticks.filter((x) => x.t > 2250).map((x) => x.t)).toEqual([3250, 4250, 5250, 6250, 7250]);
    expect(said.filter((x) => x.includes("offers no watch connection"))).toHaveLength(1);
  });

  test("after a goodbye, eth0's entry of the gateway pod is forgotten at every failed probe between whole refreshes, for GOODBYE_FORGET_MS", () => {
    const m = watched();
    m.watchStep(0);
    m.watchEstablished(1, 20);
    // down first (an outage), then the goodbye as the old pod is deleted: the leaving pod may answer
    // the ARPs of the refreshes meanwhile, so its MAC is learned again
    m.probed(1500, 1000, false, "timeout", false);
    expect(m.decide(1000, undefined)).toEqual({ repair: false, refresh: true });
    m.watchClosed(1, 2000, "closed by the gateway");
    const kinds: [number, string][] = [];
    for (let t = 2000; t < 9000; t += 250) {
      m.probed(t + 250, t, false, "timeout", true);
      const d = m.decide(t, undefined);
      kinds.push([t, d.repair ? "repair" : d.refresh ? "all" : d.forgetGatewayMac ? "eth0" : "-"]);
    }
    // every failed probe forgets the gateway's MAC one way or the other for 5 s after the goodbye
    expect(kinds.filter(([t, k]) => t < 2000 + GOODBYE_FORGET_MS && k === "-")).toEqual([]);
    expect(kinds.filter(([, k]) => k === "eth0").length).toBeGreaterThan(5);
    // then whole refreshes only, at most every refreshIntervalMs
    expect(kinds.filter(([t, k]) => t >= 2000 + GOODBYE_FORGET_MS && k === "eth0")).toEqual([]);
    expect(kinds.filter(([t, k]) => t >= 2000 + GOODBYE_FORGET_MS && k === "-").length).toBeGreaterThan(0);
    // what is forgotten then: eth0's entries of the gateway pod and its next hop, not vxlan0's
    const f = initialised();
    f.routes4.push({ dst: "10.244.0.0/16", gateway: "198.18.0.254", dev: "eth0", flags: [] } as (typeof f.routes4)[number]);
    expect(SidecarMachine.gatewayMacChanges(planNeighbourRefresh(f, "10.244.2.5")).map(formatChange)).toEqual(["neigh flush dev eth0 to 10.244.2.5", "neigh flush dev eth0 to 198.18.0.254"]);
  });

  test("a goodbye while already lost adds no probe (a one-way outage ends with the gateway's keepalive resetting the connection)", () => {
    // Probes that fail fast (5 ms: refused, unreachable), so the loop sleeps between ticks and the
    // goodbye arrives while it sleeps.
    const probesUntil = (end: number, goodbyeAt: number | undefined) => {
      const m = watched({ random: () => 0 });
      m.watchStep(0);
      m.watchEstablished(1, 20);
      let t = 0;
      let probes = 0;
      while (t < end) {
        if (goodbyeAt !== undefined && t >= goodbyeAt) {
          m.watchClosed(1, t, "reset");
          goodbyeAt = undefined;
        }
        const st = m.next(t).step;
        if (st.kind === "sleep") {
          t = goodbyeAt !== undefined ? Math.min(st.untilMs, goodbyeAt) : st.untilMs;
          continue;
        }
        if (st.kind !== "tick") throw new Error(`unexpected step ${st.kind}`);
        probes++;
        m.probed(t + 5, t, false, "refused", st.lookup);
        m.decide(t, undefined);
        m.tickDone(t, t + 5);
        t += 5;
      }
      return probes;
    };
    const without = probesUntil(6000, undefined);
    expect(without).toBeGreaterThan(10);
    // the goodbye comes between two ticks of the lost cadence, long after the first failed probe
    expect(probesUntil(6000, 4100)).toBe(without);
  });

  test("a goodbye with no answer at all: the fast cadence for the fast minute, then the interval", () => {
    const m = watched();
    m.watchStep(0);
    m.watchEstablished(1, 1);
    m.watchClosed(1, 1000, "closed by the gateway");
    let t = 1000;
    const ticks: number[] = [];
    const refreshes: boolean[] = [];
    while (t < 70_000) {
      const st = m.next(t).step;
      if (st.kind === "sleep") {
        t = st.untilMs;
        continue;
      }
      ticks.push(t);
      m.probed(t, t, false, "timeout", st.kind === "tick" && st.lookup);
      const d = m.decide(t, undefined);
      refreshes.push(!d.repair && d.refresh);
      m.tickDone(t, t);
      expect(m.watchStep(t)).toEqual({});
    }
    // (the static test policy acts after 3 failures: the third repairs)
    // the first and second failures refresh (the first may have re-learned the leaving pod's MAC), then once per refreshIntervalMs
    expect(refreshes.slice(0, 4)).toEqual([true, true, false, false]);
    expect(ticks.filter((x) => x < 61_000)).toHaveLength(240); // every 250 ms for the fast minute
    expect(ticks.filter((x) => x >= 62_000).every((x, i, a) => i === 0 || x - a[i - 1]! === 1000)).toBe(true);
  });

  test("a move repoints, probes at once and watches the new pod; outcomes of dropped connections are ignored", () => {
    const m = watched();
    m.watchStep(0);
    m.watchEstablished(1, 1);
    m.next(1000);
    m.probed(1000, 1000, false, "aborted", true);
    expect(m.decide(1000, "198.18.0.77")).toEqual({ repair: true, target: "198.18.0.77" });
    m.repaired("198.18.0.77");
    m.tickDone(1000, 1005);
    // the next probe at once, not 250 ms after the last one started
    expect(m.next(1005).step).toMatchObject({ kind: "tick", startedAt: 1005 });
    m.probed(1006, 1005, true, "ok", false);
    m.tickDone(1005, 1006);
    expect(m.watchStep(1006)).toEqual({ close: 1, open: 2 });
    expect(m.watchClosed(1, 1007, "connection lost")).toEqual([]); // the old one, closed by us
    expect(m.stats.watchGoodbyes).toBe(0);
    expect(m.watchEstablished(1, 1007).keep).toBe(false);
    expect(m.watchEstablished(2, 1008).keep).toBe(true);
  });
});
