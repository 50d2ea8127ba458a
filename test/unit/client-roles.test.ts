// client-init and client-sidecar against a fake world: the pod's network is a ClientFacts value
// changed by the kernel simulator, the gateway/DNS/DHCP server are a few fields, and time is a
// virtual clock whose sleeps advance it (scheduled world events fire as it passes them).
import { describe, expect, test } from "bun:test";
import { ROUTE_PROTO } from "../../src/core/client/constants.ts";
import { parseClientFacts, type ClientFacts } from "../../src/core/client/facts.ts";
import type { RouteGetResult } from "../../src/core/client/isolation.ts";
import { parsePrefix4, prefixContains } from "../../src/core/net/ipv4.ts";
import type { Change } from "../../src/core/client/plan.ts";
import { simulateChanges } from "../../src/core/client/simulate.ts";
import { formatChange } from "../../src/core/net/change.ts";
import { INFINITE_LEASE, type Lease } from "../../src/core/dhcp/types.ts";
import { StepError } from "../../src/core/errors.ts";
import type { IpRoute } from "../../src/core/net/ip-json.ts";
import type { NatEntry } from "../../src/core/settings/types.ts";
import { FACTS_MAX_AGE_MS, runClientInit, type ClientDeps, type ClientInput, type DhcpIdentity } from "../../src/roles/client-init.ts";
import { newStats, runClientSidecar, type PodDoneResult, type SidecarDeps } from "../../src/roles/client-sidecar.ts";
import { createConsola } from "consola/basic";
import { realClock } from "../../src/sys/clock.ts";
import { testSettings } from "../helpers/settings.ts";

const silent = createConsola({ level: -999 });

const natEntry = (name: string, octet: number): NatEntry => ({ name, octet, ports: [], file: "/config/nat.conf", line: 1 });

function freshPod(): ClientFacts {
  return parseClientFacts(
    [{ ifindex: 2, ifname: "eth0", flags: ["UP"], mtu: 1500, operstate: "UP", addr_info: [{ family: "inet", local: "198.18.0.10", prefixlen: 24 }] }],
    [
      { dst: "default", gateway: "198.18.0.1", dev: "eth0", flags: [] },
      { dst: "198.18.0.0/24", dev: "eth0", protocol: "kernel", scope: "link", flags: [] },
    ],
    [{ dst: "default", gateway: "fe80::1", dev: "eth0", metric: 1024, flags: [] }],
  );
}

/** Time passes only by sleeping; world events fire as time passes them; `stopAt` aborts the run. */
class VirtualClock {
  t = 0;
  private events: { at: number; fn: () => void }[] = [];
  constructor(private readonly stop?: { at: number; ctl: AbortController }) {}
  now = () => this.t;
  at(ms: number, fn: () => void): void {
    this.events.push({ at: ms, fn });
    this.events.sort((a, b) => a.at - b.at);
  }
  private advanceTo(target: number): void {
    while (this.events.length && this.events[0]!.at <= target) {
      const e = this.events.shift()!;
      this.t = Math.max(this.t, e.at);
      e.fn();
    }
    this.t = Math.max(this.t, target);
  }
  sleep = async (ms: number, signal?: AbortSignal): Promise<void> => {
    if (signal?.aborted) return;
    let target = this.t + ms;
    if (this.stop && target >= this.stop.at) target = this.stop.at;
    this.advanceTo(target);
    if (this.stop && this.t >= this.stop.at) this.stop.ctl.abort();
    await Promise.resolve();
  };
}

/** The pod, the cluster DNS, the gateway and its DHCP server. */
class World {
  facts = freshPod();
  /** What the cluster DNS answers for the gateway name; undefined = DNS down. */
  dnsAnswer: string | undefined = "198.18.0.2";
  /** The gateway pod that exists (undefined = none running). */
  gatewayAt: string | undefined = "198.18.0.2";
  /** A re-created gateway cannot reach us until we ARP for it (learning-VXLAN side effect). */
  gatewayNeedsArp = false;
  /**
   * A gateway re-created at the same pod IP has a new MAC: eth0's neighbour entry still holds the
   * old pod's until it is flushed (this fake's kernel never doubts it on its own).
   */
  ethNeighbourStale = false;
  /** What each apply() was for (its `what`). */
  appliedWhat: string[] = [];
  dhcpUp = true;
  nextOctet = 20;
  leases = new Map<string, string>();
  log: string[] = [];
  applied: Change[][] = [];
  /** When each apply() happened (virtual ms). */
  appliedAt: number[] = [];
  probes = 0;
  /** Every probeOnce: when it started and whether it was answered. */
  probeLog: { t: number; alive: boolean }[] = [];
  /** When each lookup of the gateway's name was made. */
  lookupTimes: number[] = [];
  acquires: { requestedAddress?: string }[] = [];
  renewals = 0;
  renewFails = 0;
  released: Lease[] = [];
  /** Renewals asking for a lease time (the shutdown's short lease): [address, seconds asked]. */
  shortened: [string, number][] = [];
  leaseSeconds = 120;
  /** DHCP option 26 the gateway sends (none when undefined). */
  leaseMtu: number | undefined = undefined;
  constructor(readonly clock: VirtualClock) {}

  recreateGateway(ip: string): void {
    if (ip === this.facts.vxlan?.remote) this.ethNeighbourStale = true;
    this.gatewayAt = ip;
    this.dnsAnswer = ip;
    this.gatewayNeedsArp = true;
  }

  tunnelWorks(): boolean {
    const vx = this.facts.vxlan;
    return (
      this.gatewayAt !== undefined &&
      !this.gatewayNeedsArp &&
      !this.ethNeighbourStale &&
      vx !== undefined &&
      vx.up &&
      vx.remote === this.gatewayAt &&
      vx.addresses.some((a) => a.local.startsWith("172.16.0.")) &&
      this.facts.routes4.some((r) => r.dst === "default" && r.dev === "vxlan0" && r.gateway === "172.16.0.1")
    );
  }

  lease(id: DhcpIdentity): Lease {
    let addr = this.leases.get(id.clientId);
    if (!addr) this.leases.set(id.clientId, (addr = `172.16.0.${this.nextOctet++}`));
    return { address: addr, prefixLength: 24, router: "172.16.0.1", dns: ["172.16.0.1"], serverId: "172.16.0.1", leaseSeconds: this.leaseSeconds, renewSeconds: this.leaseSeconds / 2, rebindSeconds: (this.leaseSeconds * 7) / 8, obtainedAt: this.clock.now(), ...(this.leaseMtu !== undefined ? { mtu: this.leaseMtu } : {}) };
  }

  routeGet(dst: string): RouteGetResult {
    if (dst.includes(":")) {
      const d = this.facts.defaults6[0];
      return d ? { dst, ok: true, dev: d.dev, gateway: d.gateway } : { dst, ok: false, errno: 101, message: `looking up the route to ${dst}: Network is unreachable (ENETUNREACH)` };
    }
    const target = parsePrefix4(dst)!;
    const best = this.facts.routes4
      .map((r) => ({ r, p: parsePrefix4(r.dst)! }))
      .filter((x) => x.p && prefixContains(x.p, target))
      .sort((a, b) => b.p.len - a.p.len)[0];
    return best ? { dst, ok: true, dev: best.r.dev, gateway: best.r.gateway } : { dst, ok: false, errno: 101, message: `looking up the route to ${dst}: Network is unreachable (ENETUNREACH)` };
  }

  deps(): SidecarDeps {
    return {
      clock: this.clock,
      log: silent,
      host: {
        readFacts: async () => structuredClone(this.facts),
        apply: async (changes, what) => {
          this.facts = simulateChanges(this.facts, changes);
          this.applied.push([...changes]);
          this.appliedAt.push(this.clock.now());
          this.appliedWhat.push(what);
          if (changes.some((c) => c.op === "neigh-flush" && c.dev === "vxlan0")) this.gatewayNeedsArp = false;
          if (changes.some((c) => c.op === "neigh-flush" && c.dev === "eth0" && c.to === this.gatewayAt)) this.ethNeighbourStale = false;
        },
        readFactsAndRoutes: async (dsts) => ({ facts: structuredClone(this.facts), routes: dsts.map((d) => this.routeGet(d)) }),
      },
      random: () => 0.5,
      resolveGateway: async (name) => {
        this.log.push(`resolve ${name}`);
        this.lookupTimes.push(this.clock.now());
        if (!this.dnsAnswer) throw new Error("ETIMEOUT");
        return { address: this.dnsAnswer, via: "198.18.1.10" };
      },
      probeGateway: async () => {
        this.log.push("probe-until");
        return this.tunnelWorks() ? { alive: true, detail: "ok", attempts: 1 } : { alive: false, detail: "timeout", attempts: 5 };
      },
      probeOnce: async (_ip, o) => {
        this.probes++;
        const entry = { t: this.clock.now(), alive: true };
        this.probeLog.push(entry);
        if (this.tunnelWorks()) return { alive: true, detail: "ok" };
        // A probe that gets no answer takes its timeout, unless it is cut short first: a lookup
        // that went out with it answers within this turn of the event loop.
        await new Promise((r) => setImmediate(r));
        entry.alive = false;
        if (o.signal?.aborted) return { alive: false, detail: "aborted" };
        let waited = 0;
        if (o.slow) {
          // unanswered for afterMs: the lookup the driver asked for goes out, and may cut the probe short
          await this.clock.sleep(o.slow.afterMs);
          waited = o.slow.afterMs;
          o.slow.then();
          await new Promise((r) => setImmediate(r));
          if (o.signal?.aborted) return { alive: false, detail: "aborted" };
        }
        await this.clock.sleep(o.timeoutMs - waited);
        entry.alive = this.tunnelWorks();
        return entry.alive ? { alive: true, detail: "ok" } : { alive: false, detail: "timeout" };
      },
      dhcp: {
        acquire: async (id, o) => {
          this.acquires.push({ requestedAddress: o.requestedAddress });
          if (!this.dhcpUp || !this.tunnelWorksForDhcp()) throw new Error("DHCP: no answer");
          return this.lease(id);
        },
        renew: async (_lease, id, o) => {
          if (!this.dhcpUp) {
            this.renewFails++;
            throw new Error("DHCP: no answer");
          }
          const l = this.lease(id);
          if (o.leaseSeconds !== undefined) {
            this.shortened.push([l.address, o.leaseSeconds]);
            const secs = Math.min(l.leaseSeconds, o.leaseSeconds);
            return { ...l, leaseSeconds: secs, renewSeconds: secs / 2, rebindSeconds: (secs * 7) / 8 };
          }
          this.renewals++;
          return l;
        },
        release: async (lease) => {
          this.released.push(lease);
        },
      },
    };
  }

  private tunnelWorksForDhcp(): boolean {
    return this.gatewayAt !== undefined && this.facts.vxlan?.remote === this.gatewayAt;
  }
}

function clientInput(over: Partial<ClientInput> = {}): ClientInput {
  return { settings: testSettings(), nat: [], podName: "web-7d9f8b6c4d-x2x4z", kubernetesServiceHost: "198.18.1.1", ...over };
}

describe("runClientInit", () => {
  test("DHCP mode on a fresh pod: resolve before any change, then routes, tunnel, lease, default route, probe", async () => {
    const w = new World(new VirtualClock());
    const order: string[] = [];
    const deps = w.deps();
    const origApply = deps.host.apply;
    deps.host.apply = async (c, what) => (order.push("apply"), origApply(c, what));
    const origResolve = deps.resolveGateway;
    deps.resolveGateway = async (...a) => (order.push("resolve"), origResolve(...a));
    const r = await runClientInit(deps, clientInput());
    expect(order[0]).toBe("resolve");
    expect(r).toMatchObject({ gatewayPodIp: "198.18.0.2", mode: "dhcp", address: "172.16.0.20" });
    expect(w.tunnelWorks()).toBe(true);
    expect(w.facts.vxlan!.addresses).toEqual([{ local: "172.16.0.20", prefixlen: 24, validLft: 120, preferredLft: 120 }]);
    expect(w.facts.defaults6).toEqual([]);
    expect(w.facts.routes4.filter((x) => x.protocol === String(ROUTE_PROTO)).map((x) => x.dst).sort()).toEqual(["10.0.0.0/8", "198.18.1.1", "198.18.1.10", "default"]);
    expect(w.applied).toHaveLength(2); // one ip -batch per phase
  });

  test("static mode: a Deployment pod matches its workload's nat.conf entry; DHCP is never asked", async () => {
    const w = new World(new VirtualClock());
    const r = await runClientInit(w.deps(), clientInput({ nat: [natEntry("web", 7)] }));
    expect(r).toMatchObject({ mode: "static", address: "172.16.0.7", lease: undefined });
    expect(w.acquires).toEqual([]);
    expect(w.facts.vxlan!.addresses[0]).toMatchObject({ local: "172.16.0.7", validLft: Infinity });
  });

  test("static mode by the reference's first-dash rule: the address is taken, and the match is warned about", async () => {
    const w = new World(new VirtualClock());
    const warnings: string[] = [];
    const log = createConsola({ level: 5 });
    log.setReporters([{ log: (o) => void (o.type === "warn" && warnings.push(o.args.join(" "))) }]);
    const r = await runClientInit({ ...w.deps(), log }, clientInput({ podName: "db-main", nat: [natEntry("db", 8)] }));
    expect(r).toMatchObject({ mode: "static", address: "172.16.0.8" });
    expect(warnings).toEqual([expect.stringContaining('matches pod "db-main" only by the text before its first dash')]);
  });

  test("a second run changes nothing (static) and asks DHCP for the same address (DHCP)", async () => {
    for (const nat of [[natEntry("web", 7)], []]) {
      const w = new World(new VirtualClock());
      await runClientInit(w.deps(), clientInput({ nat }));
      const before = JSON.stringify(w.facts.routes4);
      const again = await runClientInit(w.deps(), clientInput({ nat }));
      expect(again.changed).toBe(0);
      expect(JSON.stringify(w.facts.routes4)).toBe(before);
      if (nat.length === 0) expect(w.acquires.at(-1)).toEqual({ requestedAddress: "172.16.0.20" });
    }
  });

  test("the network is read while the gateway's name is looked up; a read that failed, or went stale during a slow lookup, is done again in its own step", async () => {
    // Fast answer: one read, made before the answer came back.
    const w = new World(new VirtualClock());
    const events: string[] = [];
    const deps = w.deps();
    const read = deps.host.readFacts;
    deps.host.readFacts = async () => (events.push("read"), read());
    const resolve = deps.resolveGateway;
    deps.resolveGateway = async (...a) => {
      events.push("ask");
      await new Promise((r) => setTimeout(r, 5));
      events.push("answer");
      return resolve(...a);
    };
    await runClientInit(deps, clientInput({ nat: [natEntry("web", 7)] }));
    expect(events).toEqual(["ask", "read", "answer"]);

    // Slow lookup (the clock passes FACTS_MAX_AGE_MS while it waits): read again after the answer.
    const w2 = new World(new VirtualClock());
    const events2: string[] = [];
    const deps2 = w2.deps();
    const read2 = deps2.host.readFacts;
    deps2.host.readFacts = async () => (events2.push("read"), read2());
    const resolve2 = deps2.resolveGateway;
    deps2.resolveGateway = async (...a) => {
      await new Promise((r) => setTimeout(r, 5));
      await w2.clock.sleep(FACTS_MAX_AGE_MS + 1);
      events2.push("answer");
      return resolve2(...a);
    };
    await runClientInit(deps2, clientInput({ nat: [natEntry("web", 7)] }));
    expect(events2).toEqual(["read", "answer", "read"]);

    // The early read fails: the error comes from the read's own step, after the lookup.
    const w3 = new World(new VirtualClock());
    const deps3 = w3.deps();
    let reads = 0;
    deps3.host.readFacts = async () => {
      reads++;
      throw new Error("netlink: Operation not permitted (EPERM)");
    };
    const e = await runClientInit(deps3, clientInput()).catch((x) => x);
    expect(e).toBeInstanceOf(StepError);
    expect(e.step).toBe("read network state");
    expect(reads).toBe(2);
  });

  test("resolving fails: StepError naming the step, and nothing was changed", async () => {
    const w = new World(new VirtualClock());
    w.dnsAnswer = undefined;
    const before = structuredClone(w.facts);
    const e = await runClientInit(w.deps(), clientInput()).catch((x) => x);
    expect(e).toBeInstanceOf(StepError);
    expect(e.step).toBe("resolve gateway");
    expect(w.facts).toEqual(before);
  });

  test("a route around the tunnel that the tool does not own fails the isolation check before any address is set", async () => {
    const w = new World(new VirtualClock());
    w.facts.routes4.push({ dst: "0.0.0.0/1", gateway: "198.18.0.1", dev: "eth0", flags: [] } as IpRoute);
    const e = await runClientInit(w.deps(), clientInput()).catch((x) => x);
    expect(e).toBeInstanceOf(StepError);
    expect(e.step).toBe("isolation check");
    expect(e.message).toContain("1.1.1.1 is reachable via 198.18.0.1 dev eth0");
    expect(w.acquires).toEqual([]);
  });

  test("a gateway that does not answer through the tunnel fails the init at the probe step", async () => {
    const w = new World(new VirtualClock());
    w.gatewayNeedsArp = true; // stays unreachable: nothing flushes during init
    const e = await runClientInit(w.deps(), clientInput()).catch((x) => x);
    expect(e.step).toBe("probe gateway");
    expect(e.message).toContain("did not answer through the tunnel");
  });

  test("DHCP failing: StepError DHCP", async () => {
    const w = new World(new VirtualClock());
    w.dhcpUp = false;
    const e = await runClientInit(w.deps(), clientInput()).catch((x) => x);
    expect(e.step).toBe("DHCP");
  });
});

async function initThenSidecar(w: World, stopAt: number, ctl: AbortController, over: Partial<ClientInput> = {}, deps: Partial<SidecarDeps> = {}) {
  await runClientInit(w.deps(), clientInput(over));
  w.applied = [];
  w.appliedAt = [];
  w.appliedWhat = [];
  w.log = [];
  w.probeLog = [];
  w.lookupTimes = [];
  const stats = newStats();
  const r = await runClientSidecar({ ...w.deps(), ...deps }, { ...clientInput(over), signal: ctl.signal }, stats);
  return r;
}

/** What the sidecar sets when it takes the tunnel over: vxlan0's ARP retransmit time (SidecarMachine.tunnelTuning). */
const TUNED: Change[] = [{ op: "neigh-retrans", dev: "vxlan0", retransMs: 250, why: "ask again for .1 within one lost probe interval (the kernel's default: 1 s)" }];

describe("runClientSidecar", () => {
  test("healthy: one probe per interval, nothing else", async () => {
    const ctl = new AbortController();
    const w = new World(new VirtualClock({ at: 20_000, ctl }));
    w.leaseSeconds = 3600;
    const r = await initThenSidecar(w, 20_000, ctl);
    expect(r.stats.probes).toBe(9); // t = 2, 4, ... 18 s (20 s is the stop)
    expect(r.stats.heals).toBe(0);
    // Only the shutdown's shortened lease (SIGTERM with the rest of the pod maybe running).
    expect(w.shortened).toEqual([["172.16.0.20", 120]]);
    expect(w.applied).toHaveLength(2);
    expect(w.applied[0]).toEqual(TUNED); // at the take-over
    expect(w.facts.vxlan!.addresses.map((a) => [a.local, a.validLft])).toEqual([["172.16.0.20", 120]]);
    expect(w.log).toEqual([]); // a gateway that answers is not looked up
  });

  test("the gateway comes back with a new IP: remote and pinned route follow, neighbours flushed, same lease, no re-init", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 30_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 3600;
    const settingsOver = { settings: testSettings({ NOT_ROUTED_TO_GATEWAY_CIDRS: [] }) };
    // the gateway pod lives off-link (another node), so it has a pinned /32
    w.dnsAnswer = w.gatewayAt = "10.244.1.5";
    clock.at(10_000, () => (w.gatewayAt = undefined)); // deleted
    clock.at(12_500, () => w.recreateGateway("10.244.2.9")); // back with a new IP, DNS follows
    const r = await initThenSidecar(w, 30_000, ctl, settingsOver);
    expect(r.stats.gatewayMoves).toBe(1);
    expect(r.stats.reinits).toBe(0);
    expect(w.acquires).toHaveLength(1); // only client-init's
    expect(w.facts.vxlan!.remote).toBe("10.244.2.9");
    const pinned = w.facts.routes4.filter((x) => x.protocol === String(ROUTE_PROTO) && x.dev === "eth0").map((x) => x.dst);
    expect(pinned).toContain("10.244.2.9");
    expect(pinned).not.toContain("10.244.1.5");
    expect(w.tunnelWorks()).toBe(true);
    expect(w.facts.vxlan!.addresses[0]!.local).toBe("172.16.0.20");
  });

  test("a gateway re-created at a new IP at once: found by the lookup alongside the first unanswered probe, before its timeout", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 20_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 3600;
    clock.at(5_000, () => w.recreateGateway("198.18.0.9")); // gone and ready in the same instant: no outage to notice
    const r = await initThenSidecar(w, 20_000, ctl);
    const moveAt = w.appliedAt[w.applied.findIndex((c) => c.some((x) => x.op === "vxlan-set-remote" && x.remote === "198.18.0.9"))];
    // the probe at 6 s gets no answer; 300 ms later (random 0.5 between 100 and 500 ms) the name
    // is looked up, shows the move, cuts the probe short, and the tunnel is repointed
    expect(w.lookupTimes.filter((t) => t >= 5_000)[0]).toBe(6_300);
    expect(moveAt).toBe(6_300);
    expect(w.probeLog.find((p) => p.t > 6_000 && p.alive)!.t).toBe(6_300);
    expect(r.stats).toMatchObject({ gatewayMoves: 1, reinits: 0 });
  });

  test("a gateway re-created at the same IP: the neighbour flush alone heals it", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 20_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 3600;
    clock.at(5_000, () => w.recreateGateway("198.18.0.2"));
    const r = await initThenSidecar(w, 20_000, ctl);
    expect(r.stats.gatewayMoves).toBe(0);
    expect(r.stats.heals).toBe(1);
    expect(w.tunnelWorks()).toBe(true);
  });

  test("gateway down for 30 s: probes every 250 ms, a lookup about twice a second, neighbours refreshed once a second, repairs back off; back at the same IP, healed within a second", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 60_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 3600;
    clock.at(10_000, () => (w.gatewayAt = undefined));
    clock.at(40_000, () => w.recreateGateway("198.18.0.2")); // same pod IP: a new MAC behind it
    const r = await initThenSidecar(w, 60_000, ctl);
    const during = (ts: number[]) => ts.filter((t) => t >= 10_000 && t < 40_000);
    const gaps = (ts: number[]) => ts.slice(1).map((t, i) => t - ts[i]!);
    const probes = during(w.probeLog.map((p) => p.t));
    // the first failure waits out the usual 500 ms; from then on a probe every 250 ms
    expect(probes[0]).toBe(10_000);
    expect(new Set(gaps(probes.slice(1)))).toEqual(new Set([250]));
    expect(probes.length).toBe(1 + (40_000 - 10_500) / 250);
    // lookups: alongside the first probe once it went unanswered for 300 ms (random 0.5 between
    // 100 and 500 ms); the outage's own within one jittered gap of the second failure (random 0.5:
    // 250 ms after 10.75 s), then every 0.5 s × (1 ± 0.5)
    const lookups = during(w.lookupTimes);
    expect(lookups.slice(0, 2)).toEqual([10_300, 11_000]);
    expect(new Set(gaps(lookups.slice(1)))).toEqual(new Set([500]));
    // repairs at 10, 12, 16, 24 s (the backoff); every other failed tick refreshes the neighbours
    const what = (prefix: string) => during(w.appliedAt.filter((_, i) => w.appliedWhat[i]!.startsWith(prefix)));
    expect(what("repairing")).toEqual([10_500, 12_250, 16_250, 24_250]); // (applied once the tick's probe timed out)
    // refreshes between the repairs, at most one a second (each makes the pod ARP: a broadcast on a bridge CNI's node)
    const touches = [...what("repairing"), ...what("refreshing")].sort((x, y) => x - y);
    for (const g of gaps(touches)) expect(g).toBeGreaterThanOrEqual(1000 - 250); // (applied after each tick's 250 ms probe)
    expect(what("refreshing").length).toBe(26); // 30 s, less the 4 repairs' seconds
    expect(w.applied[w.appliedWhat.findIndex((x) => x.startsWith("refreshing"))]!.map(formatChange)).toEqual(["neigh flush dev eth0 to 198.18.0.2", "neigh flush dev vxlan0"]);
    // back: the next refresh (at most a second after the gateway returned; here the tick at 40 s)
    // forgets the old MAC and makes the gateway learn us, and the probe after it answers
    const firstAlive = w.probeLog.find((p) => p.t >= 40_000 && p.alive)!.t;
    expect(firstAlive).toBe(40_250);
    expect(r.stats.reinits).toBe(0);
    expect(w.tunnelWorks()).toBe(true);
    expect(r.reason).toBe("signal");
  });

  test("a gateway re-created at the same IP is not reached while eth0 keeps the old MAC: the sidecar forgets it", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 20_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 3600;
    clock.at(5_000, () => ((w.recreateGateway("198.18.0.2"), (w.gatewayNeedsArp = false)))); // only eth0's entry is stale
    await initThenSidecar(w, 20_000, ctl);
    expect(w.applied.flat().filter((c) => c.op === "neigh-flush" && c.dev === "eth0").map(formatChange)[0]).toBe("neigh flush dev eth0 to 198.18.0.2");
    expect(w.probeLog.find((p) => p.t > 5_000 && p.alive)!.t).toBe(6_500); // the tick at 6 s failed (500 ms), refreshed; the next answered
    expect(w.tunnelWorks()).toBe(true);
  });

  test("after a 30 s outage the gateway comes back at a new IP: repointed at the first lookup after its name follows, without waiting out a probe", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 60_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 3600;
    clock.at(10_000, () => (w.gatewayAt = undefined));
    clock.at(40_300, () => w.recreateGateway("198.18.0.7"));
    const r = await initThenSidecar(w, 60_000, ctl);
    const moveAt = w.appliedAt[w.applied.findIndex((c) => c.some((x) => x.op === "vxlan-set-remote" && x.remote === "198.18.0.7"))];
    // the lookups: 10.3 s (the first probe went unanswered for 300 ms: random 0.5 between 100 and
    // 500 ms), then 11, 11.5, ... 40.5 s: the first after 40.3 s, not its probe's timeout later
    expect(moveAt).toBe(40_500);
    expect(w.facts.vxlan!.remote).toBe("198.18.0.7");
    expect(r.stats.gatewayMoves).toBe(1);
    expect(r.stats.reinits).toBe(0);
    expect(w.tunnelWorks()).toBe(true);
  });

  test("a 10-minute outage: the fast cadence lasts a minute, then one probe and one lookup per interval; repairs settle at one per 30 s", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 610_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = INFINITE_LEASE;
    clock.at(10_000, () => (w.gatewayAt = undefined));
    const r = await initThenSidecar(w, 610_000, ctl);
    const probes = w.probeLog.map((p) => p.t).filter((t) => t >= 10_000);
    const fast = probes.filter((t) => t < 70_000);
    const slow = probes.filter((t) => t >= 70_000);
    expect(fast.length).toBe(1 + (70_000 - 10_500) / 250);
    expect(new Set(slow.slice(1).map((t, i) => t - slow[i]!))).toEqual(new Set([2000]));
    expect(r.stats.failedProbes).toBe(probes.length - 1); // the last (at 609.75 s) is cut short by the stop
    expect(w.lookupTimes.filter((t) => t >= 70_000).length).toBe(slow.length); // one with each probe
    expect(w.lookupTimes.filter((t) => t < 70_000).length).toBe(119); // 10.75, 11.25, ... 69.75 s
    // 10, 12, 16, 24, 40, 70, 100, ... 580 s
    expect(r.stats.heals).toBe(4 + 19);
    expect(w.appliedWhat.filter((x) => x.startsWith("repairing"))).toHaveLength(23);
  });

  test("the cluster DNS down during the outage too: the tunnel's remote is kept, the failed lookups are warned about once", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 40_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 3600;
    const warnings: string[] = [];
    const log = createConsola({ level: 5 });
    log.setReporters([{ log: (o) => void (o.type === "warn" && warnings.push(o.args.join(" "))) }]);
    clock.at(10_000, () => ((w.gatewayAt = undefined), (w.dnsAnswer = undefined)));
    clock.at(30_000, () => ((w.gatewayAt = "198.18.0.2"), (w.dnsAnswer = "198.18.0.2")));
    const r = await initThenSidecar(w, 40_000, ctl, {}, { log });
    expect(w.log.length).toBeGreaterThanOrEqual(10); // it kept asking
    expect(warnings.filter((x) => x.includes("re-resolving the gateway failed"))).toHaveLength(1);
    expect(r.stats.gatewayMoves).toBe(0);
    expect(w.facts.vxlan!.remote).toBe("198.18.0.2");
    expect(w.tunnelWorks()).toBe(true);
  });

  test("vxlan0 deleted under it: full re-init, asking for the same address", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 20_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 3600;
    clock.at(5_000, () => (w.facts = simulateChanges(w.facts, [{ op: "link-del", dev: "vxlan0", why: "test" }])));
    const r = await initThenSidecar(w, 20_000, ctl);
    expect(r.stats.reinits).toBe(1);
    expect(w.acquires.at(-1)).toEqual({ requestedAddress: "172.16.0.20" });
    expect(w.tunnelWorks()).toBe(true);
  });

  test("started on a pod without the tunnel (client-init's work undone): re-initialises at once, then watches", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 10_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 3600;
    const r = await runClientSidecar(w.deps(), { ...clientInput(), signal: ctl.signal, events: new EventTarget() });
    expect(r.stats.reinits).toBe(1);
    expect(w.tunnelWorks()).toBe(true);
    expect(r.stats.probes).toBeGreaterThan(0);
  });

  test("a short lease is taken over from the kernel and renewed before it runs out; the kernel lifetime follows", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 300_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 120;
    const r = await initThenSidecar(w, 300_000, ctl);
    expect(r.stats.renewals).toBeGreaterThanOrEqual(4); // every ~60 s over 300 s
    expect(w.facts.vxlan!.addresses[0]!.local).toBe("172.16.0.20");
    expect(w.facts.vxlan!.addresses[0]!.validLft).toBeGreaterThan(0);
  });

  test("renewals failing until the lease expires: a new lease is acquired (same address asked for)", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 200_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 120;
    clock.at(1, () => (w.dhcpUp = false));
    clock.at(125_000, () => {
      w.dhcpUp = true;
      // the kernel dropped the expired address
      w.facts = simulateChanges(w.facts, [{ op: "addr-del", dev: "vxlan0", local: "172.16.0.20", prefixlen: 24, why: "expired" }]);
    });
    const r = await initThenSidecar(w, 200_000, ctl);
    expect(w.renewFails).toBeGreaterThanOrEqual(3);
    expect(r.stats.leasesAcquired + r.stats.reinits).toBeGreaterThanOrEqual(1);
    expect(w.acquires.slice(1).every((a) => a.requestedAddress === "172.16.0.20")).toBe(true);
    expect(w.tunnelWorks()).toBe(true);
  });

  test("the sidecar renews and releases with the identity client-init acquired with (name and eth0's IPv4 address)", async () => {
    const ctl = new AbortController();
    const w = new World(new VirtualClock({ at: 130_000, ctl }));
    const ids: string[] = [];
    const d = w.deps().dhcp;
    const dhcp = {
      acquire: (id: DhcpIdentity, o: Parameters<typeof d.acquire>[1]) => (ids.push(`acquire ${id.clientId} ${id.mac}`), d.acquire(id, o)),
      renew: (l: Lease, id: DhcpIdentity, o: Parameters<typeof d.renew>[2]) => (ids.push(`renew ${id.clientId} ${id.mac}`), d.renew(l, id, o)),
      release: (l: Lease, id: DhcpIdentity) => (ids.push(`release ${id.clientId} ${id.mac}`), d.release(l, id)),
    };
    await runClientInit({ ...w.deps(), dhcp }, clientInput());
    // A native sidecar: the kubelet stops it after the app, so SIGTERM releases (issue 13 §7).
    await runClientSidecar({ ...w.deps(), dhcp, watchPodDone: async () => "native-sidecar" as const }, { ...clientInput(), signal: ctl.signal });
    const mac = w.facts.vxlan!.mac;
    expect(new Set(ids.map((x) => x.split(" ").slice(1).join(" ")))).toEqual(new Set([`web-7d9f8b6c4d-x2x4z@198.18.0.10 ${mac}`]));
    expect(ids.map((x) => x.split(" ")[0])).toEqual(expect.arrayContaining(["acquire", "renew", "release"]));
    expect(w.released.map((l) => l.address)).toEqual(["172.16.0.20"]);
  });

  test("SIGTERM while the rest of the pod may still run: not released, but shortened to a 120 s lease, in the kernel too (issue 13 §7)", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 7_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 43_200;
    const r = await initThenSidecar(w, 7_000, ctl);
    expect(r).toMatchObject({ reason: "signal", released: false });
    expect(w.released).toEqual([]);
    expect(w.shortened).toEqual([["172.16.0.20", 120]]);
    expect(w.facts.vxlan!.addresses.map((a) => [a.local, a.validLft])).toEqual([["172.16.0.20", 120]]);
    // Also when the Job check runs but has not seen the pod finish.
    const ctl2 = new AbortController();
    const w2 = new World(new VirtualClock({ at: 7_000, ctl: ctl2 }));
    const r2 = await initThenSidecar(w2, 7_000, ctl2, {}, { watchPodDone: () => new Promise<PodDoneResult>(() => {}) });
    expect(r2.released).toBe(false);
    expect(w2.shortened).toEqual([["172.16.0.20", 120]]);
  });

  test("a shortening renewal that fails or hangs does not hold the exit; the lease is left as it was", async () => {
    const ctl = new AbortController();
    const w = new World(new VirtualClock({ at: 3_000, ctl }));
    w.leaseSeconds = 3600;
    const hanging = { ...w.deps().dhcp, renew: () => new Promise<Lease>(() => {}) };
    const r = await initThenSidecar(w, 3_000, ctl, {}, { dhcp: hanging });
    expect(r.released).toBe(false);
    expect(w.applied).toEqual([TUNED]);
    const ctl2 = new AbortController();
    const w2 = new World(new VirtualClock({ at: 3_000, ctl: ctl2 }));
    w2.dhcpUp = true;
    const failing = { ...w2.deps().dhcp, renew: async () => Promise.reject(new Error("DHCP: no answer")) };
    const r2 = await initThenSidecar(w2, 3_000, ctl2, {}, { dhcp: failing });
    expect(r2.released).toBe(false);
    expect(w2.applied).toEqual([TUNED]);
  });

  test("SIGTERM as a native sidecar (the kubelet stops it after the app): the lease is released", async () => {
    const ctl = new AbortController();
    const w = new World(new VirtualClock({ at: 7_000, ctl }));
    const r = await initThenSidecar(w, 7_000, ctl, {}, { watchPodDone: async () => "native-sidecar" });
    expect(r).toMatchObject({ reason: "signal", released: true });
    expect(w.released.map((l) => l.address)).toEqual(["172.16.0.20"]);
  });

  test("a release that hangs does not hold the exit (bounded by releaseTimeoutMs)", async () => {
    const ctl = new AbortController();
    const w = new World(new VirtualClock({ at: 3_000, ctl }));
    const hanging = { ...w.deps().dhcp, release: () => new Promise<void>(() => {}) };
    const r = await initThenSidecar(w, 3_000, ctl, {}, { dhcp: hanging, watchPodDone: async () => "native-sidecar" });
    expect(r.released).toBe(false);
  });

  test("static mode: nothing to release", async () => {
    const ctl = new AbortController();
    const w = new World(new VirtualClock({ at: 5_000, ctl }));
    const r = await initThenSidecar(w, 5_000, ctl, { nat: [natEntry("web", 7)] });
    expect(r.released).toBe(false);
    expect(w.released).toEqual([]);
  });

  test("the rest of the pod finished (Jobs): lease released, exit reason pod-done", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 60_000, ctl });
    const w = new World(clock);
    let finish!: (r: PodDoneResult) => void;
    clock.at(9_000, () => finish("done"));
    const r = await initThenSidecar(w, 60_000, ctl, {}, { watchPodDone: () => new Promise((res) => (finish = res)) });
    expect(r.reason).toBe("pod-done");
    expect(r.released).toBe(true);
    expect(clock.t).toBeLessThan(12_000);
  });
});

describe("runClientSidecar: an infinite lease", () => {
  test("is taken over as it is: no new lease is asked for, nothing is renewed, and it is released at the end", async () => {
    const ctl = new AbortController();
    const w = new World(new VirtualClock({ at: 20_000, ctl }));
    w.leaseSeconds = INFINITE_LEASE;
    const r = await initThenSidecar(w, 20_000, ctl, {}, { watchPodDone: async () => "native-sidecar" });
    expect(w.facts.vxlan!.addresses).toEqual([{ local: "172.16.0.20", prefixlen: 24, validLft: Infinity, preferredLft: Infinity }]);
    expect(w.acquires).toHaveLength(1); // client-init's
    expect(r.stats).toMatchObject({ leasesAcquired: 0, renewals: 0, reinits: 0 });
    expect(w.applied).toEqual([TUNED]);
    expect(r.released).toBe(true);
    expect(w.released.map((l) => l.address)).toEqual(["172.16.0.20"]);
  });
});

describe("runClientSidecar: renew on request", () => {
  test("a renew event renews at once, long before T1", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 20_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 3600;
    const events = new EventTarget();
    clock.at(5_000, () => events.dispatchEvent(new Event("renew")));
    await runClientInit(w.deps(), clientInput());
    const r = await runClientSidecar(w.deps(), { ...clientInput(), signal: ctl.signal, events });
    expect(r.stats.renewals).toBe(1);
    expect(w.renewals).toBe(1); // and the shutdown's short lease, not counted as a renewal
    expect(w.shortened).toHaveLength(1);
  });

  test("a renewal nobody answers (the gateway is being re-created) does not hold the probes back: the new gateway is found while it waits", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 20_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 3600;
    const events = new EventTarget();
    const d = w.deps().dhcp;
    const renewStarts: number[] = [];
    // the renewal goes to the old pod: no answer until its 5 s deadline
    const dhcp = {
      ...d,
      renew: async (l: Lease, id: DhcpIdentity, o: Parameters<typeof d.renew>[2]) => {
        if (o.leaseSeconds !== undefined) return d.renew(l, id, o); // the shutdown's shortening
        renewStarts.push(clock.now());
        // (this virtual clock jumps to the end of any sleep: the deadline is an event instead,
        // reached as the loop's own sleeps move the clock on)
        return new Promise<Lease>((_, reject) => {
          clock.at(clock.now() + o.deadlineMs, () => reject(new Error("DHCP: no answer within 5 s")));
          o.signal?.addEventListener("abort", () => reject(new Error("aborted")));
        });
      },
    };
    clock.at(5_000, () => events.dispatchEvent(new Event("renew")));
    clock.at(6_100, () => w.recreateGateway("198.18.0.77"));
    let healedBy10s = false;
    clock.at(10_500, () => (healedBy10s = w.tunnelWorks()));
    await runClientInit(w.deps(), clientInput());
    const r = await runClientSidecar({ ...w.deps(), dhcp }, { ...clientInput(), signal: ctl.signal, events });
    // the one asked for, then (5 s later, one at a time) the announcement to the gateway that is back
    expect(renewStarts[0]).toBeLessThanOrEqual(6_000);
    expect(renewStarts[1]).toBeGreaterThanOrEqual(renewStarts[0]! + 5_000);
    // a loop that waited for the renewal (until 10-11 s) probed nothing after the gateway left at 6.1 s
    expect(healedBy10s).toBe(true);
    expect(r.stats.gatewayMoves).toBe(1);
    expect(r.stats.failedRenewals).toBeGreaterThanOrEqual(1);
    expect(w.facts.vxlan!.remote).toBe("198.18.0.77");
  });
});

describe("runClientSidecar: memory", () => {
  // The soak of issue 8 saw the sidecar's anonymous memory grow: each turn of the loop left an
  // AbortSignal, its abort listener and a timer reachable from the sidecar's lifelong signal. Here
  // the loop runs on the real clock (1 ms interval) through a healthy phase and an outage, and a
  // census of the heap after a full GC must not grow with the number of probes.
  test("the probe loop keeps nothing per probe, healthy or down", async () => {
    const { heapStats } = await import("bun:jsc");
    const w = new World(new VirtualClock());
    w.leaseSeconds = INFINITE_LEASE;
    await runClientInit(w.deps(), clientInput());
    const facts = w.facts;
    let up = true;
    let probes = 0;
    const deps: SidecarDeps = {
      ...w.deps(),
      clock: realClock,
      host: { readFacts: async () => facts, readFactsAndRoutes: async () => ({ facts, routes: [] }), apply: async () => {} },
      resolveGateway: async () => ({ address: "198.18.0.2", via: "198.18.1.10" }),
      probeOnce: async () => (probes++, { alive: up, detail: up ? "ok" : "timeout" }),
    };
    const ctl = new AbortController();
    const run = runClientSidecar(deps, { ...clientInput(), signal: ctl.signal, events: new EventTarget(), policy: { intervalMs: 1, repairBackoffCapMs: 4 } });
    const until = async (n: number) => {
      while (probes < n) await Bun.sleep(10);
    };
    const census = () => {
      Bun.gc(true);
      const c = heapStats().objectTypeCounts as Record<string, number>;
      return { AbortSignal: c.AbortSignal ?? 0, Timeout: c.Timeout ?? 0, Promise: c.Promise ?? 0 };
    };
    await until(200);
    const first = census();
    await until(1000);
    up = false;
    await until(2000);
    const last = census();
    ctl.abort();
    await run;
    // 1800 probes later (half of them failed, each with a lookup, with repairs between)
    for (const k of ["AbortSignal", "Timeout", "Promise"] as const) expect(last[k] - first[k]).toBeLessThan(20);
  }, 30_000);
});

describe("runClientSidecar: the monitor (health status and metrics)", () => {
  test("a gateway that moves: reachable 0 then 1, one recovery, the in-place repairs counted; every loop turn reported", async () => {
    const { ClientMonitor } = await import("../../src/core/metrics/client.ts");
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 30_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 3600;
    w.dnsAnswer = w.gatewayAt = "10.244.1.5";
    clock.at(10_000, () => (w.gatewayAt = undefined));
    clock.at(12_500, () => w.recreateGateway("10.244.2.9"));
    const over = { settings: testSettings({ NOT_ROUTED_TO_GATEWAY_CIDRS: [] }) };
    await runClientInit(w.deps(), clientInput(over));
    const mon = new ClientMonitor({ intervalMs: 2000, retryCount: 1, version: "v", commit: "c" }, clock.now());
    const notes: string[] = [];
    let turns = 0;
    const log = createConsola({ level: 5 });
    log.setReporters([{ log: (o) => void ((o.type === "warn" || o.type === "info") && notes.push(o.args.join(" "))) }]);
    const r = await runClientSidecar({ ...w.deps(), log }, {
      ...clientInput(over),
      signal: ctl.signal,
      monitor: {
        probe: (now, alive, rttMs) => mon.probe(now, alive, rttMs),
        turn(now, stats, lease) {
          turns++;
          mon.turn(now, stats, lease);
        },
      },
    });
    expect(r.stats.gatewayMoves).toBe(1);
    // The sidecar's lines for the state changes name the metrics they move, one line each.
    const named = notes.filter((n) => n.includes("(pod_gateway_client_gateway_reachable"));
    expect(named).toEqual([
      expect.stringMatching(/^gateway 172\.16\.0\.1 did not answer: .* \(pod_gateway_client_gateway_reachable 0\)$/),
      expect.stringMatching(/^gateway 172\.16\.0\.1 answers again after \d+ failed probe\(s\) \([0-9.]+ s\) \(pod_gateway_client_gateway_reachable 1, pod_gateway_client_recoveries_total 1\)$/),
    ]);
    expect(notes.filter((n) => n.startsWith("gateway 172.16.0.1 "))).toHaveLength(2); // lost, back: one line each
    expect(notes).toContainEqual(expect.stringMatching(/^gateway pod moved from 10\.244\.1\.5 to 10\.244\.2\.9: .* \(pod_gateway_client_repairs_total\{kind="in_place"\} \d+\)$/));
    const text = mon.registry!.render();
    expect(text).toContain("pod_gateway_client_recoveries_total 1\n");
    // Every repair in place counts: the neighbour flushes while the gateway was gone, then the move.
    expect(r.stats.heals).toBeGreaterThanOrEqual(1);
    expect(text).toContain(`pod_gateway_client_repairs_total{kind="in_place"} ${r.stats.heals}\n`);
    expect(text).toContain("pod_gateway_client_gateway_reachable 1\n");
    expect(text).toMatch(/pod_gateway_client_lease_expiry_timestamp_seconds \d+\n/);
    expect(turns).toBeGreaterThanOrEqual(r.stats.probes);
    expect(mon.status(clock.now(), "v").tickAgeMs).toBeLessThanOrEqual(2000);
  });
});

describe("issue 11 §7: MTU from DHCP option 26, isolation watched by the sidecar", () => {
  const logged = () => {
    const lines: { type: string; text: string }[] = [];
    const log = createConsola({ level: 5 });
    log.setReporters([{ log: (o) => void lines.push({ type: o.type, text: o.args.join(" ") }) }]);
    return { log, lines };
  };

  test("client-init takes a smaller MTU from option 26 (from 576 up) and a re-run converges", async () => {
    const w = new World(new VirtualClock());
    w.leaseMtu = 1300;
    await runClientInit(w.deps(), clientInput());
    expect(w.facts.vxlan!.mtu).toBe(1300);
    const again = await runClientInit(w.deps(), clientInput());
    expect(again.changed).toBe(0);
    expect(w.facts.vxlan!.mtu).toBe(1300);
    // The gateway stops sending it: back to eth0 - 50.
    w.leaseMtu = undefined;
    await runClientInit(w.deps(), clientInput());
    expect(w.facts.vxlan!.mtu).toBe(1450);
    const w2 = new World(new VirtualClock());
    w2.leaseMtu = 575;
    await runClientInit(w2.deps(), clientInput());
    expect(w2.facts.vxlan!.mtu).toBe(1450);
    // Static mode has no lease: VPN_INTERFACE_MTU and eth0 only.
    const w3 = new World(new VirtualClock());
    w3.leaseMtu = 1300;
    await runClientInit(w3.deps(), clientInput({ nat: [natEntry("web", 5)] }));
    expect(w3.facts.vxlan!.mtu).toBe(1450);
  });

  test("the sidecar keeps option 26's MTU through a repair, and follows a renewal's new one", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 100_000, ctl });
    const w = new World(clock);
    w.leaseMtu = 1300;
    clock.at(10_000, () => w.recreateGateway("198.18.0.9"));
    clock.at(30_000, () => (w.leaseMtu = 1400));
    const r = await initThenSidecar(w, 100_000, ctl);
    expect(r.stats.gatewayMoves).toBe(1);
    // The repair changed no MTU; the renewal at T1 (60 s) set the new one.
    expect(w.applied.flat().filter((c) => c.op === "link-set").map((c) => (c.op === "link-set" ? c.mtu : 0))).toEqual([1400]);
    expect(w.facts.vxlan!.mtu).toBe(1400);
  });

  test("a route around the tunnel is reported once, naming it, left in place, and its removal reported", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 40_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 3600;
    const split: IpRoute = { dst: "0.0.0.0/1", gateway: "198.18.0.1", dev: "eth0" };
    clock.at(5_000, () => w.facts.routes4.push(split));
    clock.at(21_000, () => (w.facts.routes4 = w.facts.routes4.filter((r) => r !== split)));
    const { log, lines } = logged();
    const stats = newStats();
    const seen: (boolean | undefined)[] = [];
    clock.at(10_000, () => seen.push(stats.isolation.holds));
    clock.at(25_000, () => seen.push(stats.isolation.holds));
    await runClientInit(w.deps(), clientInput());
    w.applied = [];
    // The fingerprint: the main table as the fake kernel holds it.
    await runClientSidecar({ ...w.deps(), log, routeSignature: () => JSON.stringify(w.facts.routes4) }, { ...clientInput(), signal: ctl.signal }, stats);
    const errors = lines.filter((l) => l.type === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]!.text).toContain('isolation broken: route "0.0.0.0/1 via 198.18.0.1 dev eth0" sends 1.1.1.1 around the tunnel (via 198.18.0.1 dev eth0)');
    expect(lines.filter((l) => l.text.startsWith("isolation holds again"))).toHaveLength(1);
    expect(seen).toEqual([false, true]);
    // Never fought: no route changed (the one change is the lease shortened at SIGTERM, issue 13 §7).
    expect(w.applied.flat().filter((c) => c.op !== "addr-set").map(formatChange)).toEqual(TUNED.map(formatChange));
    // Checked at the first tick (2 s) and on the two changes (6 s, 22 s); the next periodic one is due at 52 s.
    expect(stats.isolation.checks).toBe(3);
  });

  test("a change the fingerprint cannot see (none here) is found by the check every 30 s", async () => {
    const ctl = new AbortController();
    const clock = new VirtualClock({ at: 40_000, ctl });
    const w = new World(clock);
    w.leaseSeconds = 3600;
    clock.at(5_000, () => w.facts.routes4.push({ dst: "128.0.0.0/1", gateway: "198.18.0.1", dev: "eth0", metric: 5 }));
    const { log, lines } = logged();
    const errorsAt: number[] = [];
    log.addReporter({ log: (o) => void (o.type === "error" && errorsAt.push(clock.now())) });
    await initThenSidecar(w, 40_000, ctl, {}, { log });
    const errors = lines.filter((l) => l.type === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]!.text).toContain('route "128.0.0.0/1 via 198.18.0.1 dev eth0 metric 5" sends 208.67.222.222 around the tunnel');
    expect(errorsAt).toEqual([32_000]);
  });
});
