// The client sidecar's decisions, without a driver: which address is ours, the lease's steps, the
// probe/lookup/repair schedule, the repair's plan, the release. Times are plain numbers (ms).
import { describe, expect, test } from "bun:test";
import { parseClientFacts, type ClientFacts } from "../../src/core/client/facts.ts";
import { planClientAddress, planClientNetwork, type ClientNetworkInput } from "../../src/core/client/plan.ts";
import { SidecarMachine, type MachineConfig } from "../../src/core/client/sidecar-machine.ts";
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

function cfg(over: Partial<MachineConfig> = {}): MachineConfig {
  return {
    policy: { intervalMs: 1000, retryCount: 3, repairBackoffCapMs: 30_000, reacquireDelayMs: 4000, isolationIntervalMs: 30_000 },
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
    const m = new SidecarMachine(cfg({ policy: { intervalMs: 100_000, retryCount: 3, repairBackoffCapMs: 300_000, reacquireDelayMs: 4000, isolationIntervalMs: 30_000 } }), 0);
    m.start(0, initialised("172.16.0.23", 120));
    expect(m.next(0).step).toEqual({ kind: "sleep", untilMs: 60_000 }); // T1 before the first tick
    expect(m.next(60_000).step).toEqual({ kind: "renew", lease: m.lease!, rebind: false });
    const failed = m.renewFailed(60_000, m.lease!, false, "timeout");
    expect(failed[0]!.text).toBe("renewing the DHCP lease of 172.16.0.23 failed: timeout");
    // after a failure: half the time left to T2 (60 s + 45 s / 2)
    expect(m.next(60_001).step).toEqual({ kind: "sleep", untilMs: 82_500 });
    expect(m.next(105_000).step).toMatchObject({ kind: "renew", rebind: true });
    const expired = m.next(120_000);
    expect(expired.step).toEqual({ kind: "acquire", fallbackAddress: "172.16.0.23" });
    expect(expired.notes[0]!.text).toBe("the DHCP lease of 172.16.0.23 expired without a renewal; asking for a new one");
    expect(m.acquireFailed(120_000, "no offer")[0]!.text).toBe("getting a new DHCP lease failed: no offer; trying again in 4 s");
    // the tick that was due at 100 s comes before the next attempt at 124 s
    expect(m.next(121_000).step).toEqual({ kind: "tick", startedAt: 121_000, lookup: false });
    m.tickDone(121_000, 121_005);
    expect(m.next(122_000).step).toEqual({ kind: "sleep", untilMs: 124_000 });
    expect(m.next(124_000).step).toMatchObject({ kind: "acquire" });
    m.acquired(lease(124_000, 600, "172.16.0.30"));
    expect(m.stats).toMatchObject({ leasesAcquired: 1, failedRenewals: 1 });
  });

  test("a renewal asked for (SIGUSR1) comes first, with its note", () => {
    const m = new SidecarMachine(cfg(), 0);
    m.start(0, initialised());
    m.requestRenewal();
    const r = m.next(10);
    expect(r.step).toMatchObject({ kind: "renew", rebind: false });
    expect(r.notes.map((n) => n.text)).toEqual(["renewing the DHCP lease of 172.16.0.23 now, as asked"]);
    const notes = m.renewed(m.lease!, lease(20, 120, "172.16.0.24"), false);
    expect(notes.map((n) => n.text)).toEqual(["the DHCP server moved us from 172.16.0.23 to 172.16.0.24", "DHCP lease of 172.16.0.24 renewed for 120 s"]);
  });

  test("static mode never touches a lease", () => {
    const m = new SidecarMachine(cfg({ mode: { kind: "static", address: "172.16.0.23" } }), 0);
    m.start(0, initialised("172.16.0.23", "forever"));
    expect(m.lease).toBeUndefined();
    expect(m.next(1000).step).toEqual({ kind: "tick", startedAt: 1000, lookup: false });
    expect(m.release(1000)).toBeUndefined();
  });
});

describe("probes, lookups and repairs", () => {
  test("the third failure looks up and repairs; the next repair waits for the backoff; an answer ends the outage", () => {
    const m = new SidecarMachine(cfg(), 0);
    m.start(0, initialised());
    const fail = (t: number, lookedUp = false) => m.probed(t, t, false, "timeout", lookedUp);
    expect(fail(1000)).toEqual({ lookupNow: false, notes: [{ level: "trace", text: "probe 172.16.0.1: failed (timeout)" }, { level: "warn", text: "gateway 172.16.0.1 did not answer: timeout" }] });
    expect(m.decide(1000, undefined)).toEqual({ repair: false });
    expect(fail(2000).lookupNow).toBe(false);
    expect(fail(3000).lookupNow).toBe(true);
    expect(m.decide(3000, GW_POD)).toEqual({ repair: true, target: undefined });
    // from now on the lookup goes out with the probe
    expect(m.next(4000).step).toEqual({ kind: "tick", startedAt: 4000, lookup: true });
    expect(fail(4000, true).lookupNow).toBe(false);
    // backoff: 1 s after the first repair, 2 s after the second, ...
    expect(m.decide(4000, GW_POD)).toEqual({ repair: true, target: undefined });
    fail(5000, true);
    expect(m.decide(5000, GW_POD)).toEqual({ repair: false });
    fail(6000, true);
    expect(m.decide(6000, GW_POD)).toEqual({ repair: true, target: undefined });
    expect(m.stats).toMatchObject({ probes: 6, failedProbes: 6 });
    const back = m.probed(7000, 7000, true, "DNS NOERROR", true);
    expect(back.notes.map((n) => n.text)).toEqual(["probe 172.16.0.1: alive (DNS NOERROR)", "gateway 172.16.0.1 answers again after 6 failed probe(s) (6 s)"]);
    // the lease is announced again (a gateway back after an outage may have lost its lease file), once
    const announce = m.next(8000);
    expect(announce.step).toMatchObject({ kind: "renew", rebind: false, lease: { address: "172.16.0.23" } });
    expect(announce.notes.map((n) => n.text)).toEqual(["renewing the DHCP lease of 172.16.0.23 now, to announce it to the gateway again (it may have lost its lease file while away)"]);
    expect(m.next(8000).step).toEqual({ kind: "tick", startedAt: 8000, lookup: false });
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
    expect(plan.changes.map(formatChange)).toEqual(["link set vxlan0 type vxlan remote 198.18.0.77", "neigh flush dev vxlan0"]);
    expect(m.repaired("198.18.0.77").map((n) => n.text)).toEqual(["gateway pod moved from 198.18.0.2 to 198.18.0.77: tunnel remote and pinned route updated, neighbours flushed (address kept)"]);
    expect(m.stats).toMatchObject({ heals: 1, gatewayMoves: 1 });
    // answering again ends the outage
    const alive = m.probed(2000, 2000, true, "DNS NOERROR", false);
    expect(alive.notes.at(-1)!.text).toBe("gateway 172.16.0.1 answers again after 1 failed probe(s) (1 s)");
    // a new gateway pod starts with an empty lease file: the lease is announced to it
    expect(m.next(3000).step).toMatchObject({ kind: "renew", lease: { address: "172.16.0.23" } });
    expect(m.next(3000).step).toMatchObject({ kind: "tick", lookup: false });
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
    expect(m.reinitDone({ gatewayPodIp: "198.18.0.9", address: "172.16.0.23", mode: "dhcp", lease: lease(0) })[0]!.text).toBe("tunnel re-initialised: 172.16.0.23 (dhcp) via gateway pod 198.18.0.9");
    expect(m.gatewayIp).toBe("198.18.0.9");
    expect(m.stats.reinits).toBe(1);
  });

  test("a repair where nothing moved only flushes the neighbours", () => {
    const m = new SidecarMachine(cfg({ mode: { kind: "static", address: "172.16.0.23" } }), 0);
    m.start(0, initialised("172.16.0.23", "forever"));
    const plan = m.planRepair(0, initialised("172.16.0.23", "forever"), undefined);
    expect(plan.kind === "apply" && plan.changes.map(formatChange)).toEqual(["neigh flush dev vxlan0"]);
    expect(m.repaired(GW_POD).map((n) => n.text)).toEqual(["gateway pod still at 198.18.0.2: neighbours flushed, waiting for it to answer"]);
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
