// Pure decisions of the client roles: isolation verdicts, lease timing, probe cadence, the DNS
// probe's wire format; and the gateway resolver's retry logic with a fake lookup and clock.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeDnsAReply, decodeDnsReplyHeader, DNS_CLASS_CH, DNS_CLASS_IN, DNS_TYPE_A, DNS_TYPE_TXT, encodeDnsQuery, sameDnsQuestion } from "../../src/core/client/dns-wire.ts";
import { decideIsolation } from "../../src/core/client/isolation.ts";
import { addressLifetime, leaseFromAddress, planLeaseStep } from "../../src/core/client/lease.ts";
import { INFINITE_LEASE } from "../../src/core/dhcp/types.ts";
import { planFast, planLookupWithProbe, planNextLookupAt, planNextTickAt, planProbeTimeout, planRepair, planSlowProbeLookupAt, repairDelayMs, type OutageState, type ProbePolicy } from "../../src/core/client/sidecar.ts";
import type { Lease } from "../../src/core/dhcp/types.ts";
import type { Clock } from "../../src/sys/clock.ts";
import { GatewayResolveError, resolveGatewayAddress } from "../../src/sys/dns.ts";

describe("decideIsolation", () => {
  test("every lookup unreachable: isolated", () => {
    const v = decideIsolation([
      { dst: "1.1.1.1", ok: false, errno: 101, message: "looking up the route to 1.1.1.1: Network is unreachable (ENETUNREACH)" },
      { dst: "2606:4700:4700::1111", ok: false, errno: 101, message: "looking up the route to 2606:4700:4700::1111: Network is unreachable (ENETUNREACH)" },
    ]);
    expect(v).toEqual({ isolated: true, leaks: [], leaking: [], details: ["1.1.1.1: no route (ENETUNREACH)", "2606:4700:4700::1111: no route (ENETUNREACH)"] });
  });

  test("unreachable, prohibit and blackhole routes answer with their errors: isolated", () => {
    const v = decideIsolation([
      { dst: "1.1.1.1", ok: false, errno: 113, message: "x" },
      { dst: "1.0.0.1", ok: false, errno: 13, message: "x" },
      { dst: "8.8.8.8", ok: false, errno: 22, message: "x" },
    ]);
    expect(v.details).toEqual(["1.1.1.1: unreachable route (EHOSTUNREACH)", "1.0.0.1: prohibit route (EACCES)", "8.8.8.8: blackhole route (EINVAL)"]);
    expect(v.isolated).toBe(true);
  });

  test("through the tunnel (a re-run) or into a blackhole: isolated", () => {
    expect(decideIsolation([{ dst: "1.1.1.1", ok: true, dev: "vxlan0", gateway: "172.16.0.1" }]).isolated).toBe(true);
    expect(decideIsolation([{ dst: "1.1.1.1", ok: true, type: "blackhole" }]).isolated).toBe(true);
  });

  test("IPv6 lookups on a kernel without IPv6 (ipv6.disable=1): isolated; the same errors for IPv4 are not", () => {
    expect(decideIsolation([{ dst: "2606:4700:4700::1111", ok: false, errno: 95, message: "x" }])).toEqual({ isolated: true, leaks: [], leaking: [], details: ["2606:4700:4700::1111: no IPv6 in this kernel (EOPNOTSUPP)"] });
    expect(decideIsolation([{ dst: "2606:4700:4700::1111", ok: false, errno: 97, message: "x" }]).isolated).toBe(true);
    expect(decideIsolation([{ dst: "1.1.1.1", ok: false, errno: 95, message: "x" }]).isolated).toBe(false);
  });

  test("a route via eth0 is a leak, named in the verdict", () => {
    const v = decideIsolation([
      { dst: "1.1.1.1", ok: false, errno: 101, message: "looking up the route to 1.1.1.1: Network is unreachable (ENETUNREACH)" },
      { dst: "208.67.222.222", ok: true, dev: "eth0", gateway: "198.18.0.1" },
    ]);
    expect(v.isolated).toBe(false);
    expect(v.leaks).toEqual(["208.67.222.222 is reachable via 198.18.0.1 dev eth0"]);
  });

  test("a lookup failing for another reason proves nothing", () => {
    const v = decideIsolation([{ dst: "1.1.1.1", ok: false, errno: 110, message: "looking up the route to 1.1.1.1: the kernel did not answer (ETIMEDOUT)" }]);
    expect(v.isolated).toBe(false);
    expect(v.leaks).toEqual(["1.1.1.1: route lookup failed unexpectedly (looking up the route to 1.1.1.1: the kernel did not answer (ETIMEDOUT))"]);
  });
});

const lease = (over: Partial<Lease> = {}): Lease => ({
  address: "172.16.0.23",
  prefixLength: 24,
  dns: [],
  serverId: "172.16.0.1",
  leaseSeconds: 120,
  renewSeconds: 60,
  rebindSeconds: 105,
  obtainedAt: 1_000_000,
  ...over,
});

describe("planLeaseStep", () => {
  const t0 = 1_000_000;
  test("bound: wait until T1; at T1 renew; at T2 rebind; at expiry expired", () => {
    expect(planLeaseStep(lease(), t0)).toEqual({ kind: "wait", untilMs: t0 + 60_000 });
    expect(planLeaseStep(lease(), t0 + 60_000)).toEqual({ kind: "renew" });
    expect(planLeaseStep(lease(), t0 + 105_000)).toEqual({ kind: "rebind" });
    expect(planLeaseStep(lease(), t0 + 120_000)).toEqual({ kind: "expired" });
  });

  test("after a failed renewal: half the time to T2, at least the floor; after a failed rebind: half the time to expiry", () => {
    // failed at T1 (60 s): T2 at 105 s → next at 60 + 22.5 = 82.5 s
    expect(planLeaseStep(lease(), t0 + 61_000, t0 + 60_000)).toEqual({ kind: "wait", untilMs: t0 + 82_500 });
    expect(planLeaseStep(lease(), t0 + 82_500, t0 + 60_000)).toEqual({ kind: "renew" });
    // failed at 100 s: half of 5 s is below the floor (120 s / 20 = 6 s) → 106 s, but T2 (105 s) comes first
    expect(planLeaseStep(lease(), t0 + 101_000, t0 + 100_000)).toEqual({ kind: "wait", untilMs: t0 + 105_000 });
    // a failure before T2 does not delay the first rebind
    expect(planLeaseStep(lease(), t0 + 105_000, t0 + 100_000)).toEqual({ kind: "rebind" });
    expect(planLeaseStep(lease(), t0 + 106_000, t0 + 105_000)).toEqual({ kind: "wait", untilMs: t0 + 112_500 });
  });

  test("property: the next wake is never in the past and never after expiry", () => {
    fc.assert(
      fc.property(fc.integer({ min: 10, max: 100_000 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }), (secs, at, failedAt) => {
        const l = lease({ leaseSeconds: secs, renewSeconds: secs / 2, rebindSeconds: (secs * 7) / 8, obtainedAt: 0 });
        const now = at * secs * 1000;
        const failed = failedAt === undefined ? undefined : Math.min(now, failedAt * secs * 1000);
        const s = planLeaseStep(l, now, failed);
        if (s.kind === "wait") {
          expect(s.untilMs).toBeGreaterThan(now);
          expect(s.untilMs).toBeLessThanOrEqual(secs * 1000);
        }
      }),
    );
  });

  test("an infinite lease needs nothing", () => {
    expect(planLeaseStep(lease({ leaseSeconds: INFINITE_LEASE }), 0).kind).toBe("none");
    expect(addressLifetime(lease({ leaseSeconds: INFINITE_LEASE }), 0)).toBe("forever");
  });

  test("the lease is read back from the kernel's remaining lifetime; a permanent address is an infinite lease", () => {
    expect(leaseFromAddress({ local: "172.16.0.23", prefixlen: 24, validLft: 7000, preferredLft: 7000 }, "172.16.0.1", 5)).toEqual({
      address: "172.16.0.23",
      prefixLength: 24,
      router: "172.16.0.1",
      dns: ["172.16.0.1"],
      serverId: "172.16.0.1",
      leaseSeconds: 7000,
      renewSeconds: 3500,
      rebindSeconds: 6125,
      obtainedAt: 5,
    });
    const forever = leaseFromAddress({ local: "172.16.0.5", prefixlen: 24, validLft: Infinity, preferredLft: Infinity }, "172.16.0.1", 5);
    expect(forever).toMatchObject({ address: "172.16.0.5", leaseSeconds: INFINITE_LEASE, renewSeconds: INFINITE_LEASE, rebindSeconds: INFINITE_LEASE });
    expect(planLeaseStep(forever, 10 ** 12).kind).toBe("none");
    expect(addressLifetime(forever, 10 ** 12)).toBe("forever");
    expect(addressLifetime(lease(), t0 + 30_000)).toBe(90);
  });
});

describe("probe cadence and repair schedule", () => {
  const fastFields = { probeTimeoutMs: 500, lostIntervalMs: 250, lookupIntervalMs: 1000, lookupJitter: 0.5, fastWindowMs: 60_000, refreshIntervalMs: 1000, slowProbeMs: 100 };
  const p: ProbePolicy = { intervalMs: 2000, retryCount: 1, repairBackoffCapMs: 30_000, ...fastFields };

  test("ticks: one interval from the start of the last one (a probe's timeout does not stretch the cadence), never in the past", () => {
    expect(planNextTickAt(p, 10_000, 10_500)).toBe(12_000);
    expect(planNextTickAt(p, 10_000, 13_100)).toBe(13_100); // a long repair: the next tick at once
  });

  test("a regular probe unanswered for slowProbeMs has the name looked up alongside, at a random point before its timeout", () => {
    const q = { ...p, slowProbeMs: 100 };
    expect([0, 0.5, 0.999].map((r) => planSlowProbeLookupAt(q, 500, r))).toEqual([100, 300, 100 + 0.999 * 400]);
    expect(planSlowProbeLookupAt(q, 100, 0.5)).toBeUndefined(); // the timeout comes first
    expect(planSlowProbeLookupAt(q, 80, 0)).toBeUndefined();
  });

  test("the name is looked up (and the neighbours refreshed) from the first failed probe on, whatever the retry count", () => {
    expect([0, 1, 5].map((f) => planLookupWithProbe(p, f))).toEqual([false, true, true]);
    expect([0, 1, 2, 3].map((f) => planLookupWithProbe({ ...p, retryCount: 3 }, f))).toEqual([false, true, true, true]);
  });

  test("while lost: the fast cadence and a probe timeout no longer than it, for the fast window only", () => {
    expect(planNextTickAt(p, 10_000, 10_010, true)).toBe(10_250);
    expect(planNextTickAt({ ...p, intervalMs: 100 }, 10_000, 10_010, true)).toBe(10_100); // never slower than the interval
    expect([planFast(p, undefined, 5000), planFast(p, 1000, 60_999), planFast(p, 1000, 61_000)]).toEqual([false, true, false]);
    expect([planProbeTimeout(p, true), planProbeTimeout(p, false), planProbeTimeout({ ...p, probeTimeoutMs: 100 }, true)]).toEqual([250, 500, 100]);
  });

  test("lookups: the first within one mean gap, later ones mean × (1 ± jitter); the interval after the fast window", () => {
    expect([0, 0.5, 0.999].map((r) => planNextLookupAt(p, 1000, true, true, r))).toEqual([1000, 1500, 1999]);
    expect([0, 0.5, 0.999].map((r) => Math.round(planNextLookupAt(p, 1000, true, false, r)))).toEqual([1500, 2000, 2499]);
    expect(planNextLookupAt(p, 1000, false, false, 0.5)).toBe(3000);
    expect(planNextLookupAt({ ...p, lookupJitter: 0 }, 1000, true, false, 0.9)).toBe(2000);
  });

  test("repair delay: interval × 2^(k-1), capped, never below the interval", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 1000].map((k) => repairDelayMs(p, k))).toEqual([2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000]);
    expect(repairDelayMs({ ...p, intervalMs: 60_000 }, 3)).toBe(60_000);
  });

  test("repair: not below the retry count; the first at once; then by the backoff; a move always and at once", () => {
    const st = (failures: number, repairs: number, lastRepairTickAt?: number): OutageState => ({ failures, repairs, lastRepairTickAt });
    const p3 = { ...p, retryCount: 3 };
    expect(planRepair(p3, st(2, 0), 0, false)).toBe(false);
    expect(planRepair(p3, st(3, 0), 0, false)).toBe(true);
    expect(planRepair(p, st(4, 2, 10_000), 12_000, false)).toBe(false); // 2nd repair → wait 4 s
    expect(planRepair(p, st(4, 2, 10_000), 14_000, false)).toBe(true);
    expect(planRepair(p, st(4, 2, 10_000), 12_000, true)).toBe(true);
  });

  test("property: over any outage, one probe per interval, a lookup with each after the first failure, and repairs spread by the backoff", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 10_000 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 1500 }),
        fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 50 }),
        (intervalMs, retryCount, ticks, delays) => {
          const pol: ProbePolicy = { intervalMs, retryCount, repairBackoffCapMs: Math.max(intervalMs, 30_000), ...fastFields };
          const s: OutageState = { failures: 0, repairs: 0, lastRepairTickAt: undefined };
          const starts: number[] = [];
          const repairTicks: number[] = [];
          let lookups = 0;
          let t = 0;
          for (let i = 0; i < ticks; i++) {
            starts.push(t);
            if (planLookupWithProbe(pol, s.failures)) lookups++;
            s.failures++; // every probe fails
            if (planRepair(pol, s, t, false)) {
              s.repairs++;
              s.lastRepairTickAt = t;
              repairTicks.push(i);
            }
            // the probe, lookup and repair took some time; the timer fires a few ms late
            const d = delays[i % delays.length]!;
            t = planNextTickAt(pol, t, t + d) + (d % 7);
          }
          for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(intervalMs);
          expect(lookups).toBe(ticks - 1);
          if (ticks >= retryCount) expect(repairTicks[0]).toBe(retryCount - 1);
          else expect(repairTicks).toEqual([]);
          const at = repairTicks.map((i) => starts[i]!);
          for (let k = 1; k < at.length; k++) expect(at[k]! - at[k - 1]!).toBeGreaterThanOrEqual(repairDelayMs(pol, k));
          // gaps from the (n0+1)-th on are at least the cap: at most 1 + n0 + span/cap repairs
          const n0 = Math.ceil(Math.log2(pol.repairBackoffCapMs / intervalMs));
          const span = at.length ? at.at(-1)! - at[0]! : 0;
          expect(at.length).toBeLessThanOrEqual(1 + n0 + Math.floor(span / pol.repairBackoffCapMs));
        },
      ),
    );
  });
});

describe("DNS probe wire format", () => {
  test("version.bind CH TXT, id 0x1234, RD set (golden bytes)", () => {
    const q = encodeDnsQuery(0x1234, { name: "version.bind", type: DNS_TYPE_TXT, class: DNS_CLASS_CH });
    // prettier-ignore
    expect([...q]).toEqual([
      0x12, 0x34, // id
      0x01, 0x00, // flags: RD
      0, 1, 0, 0, 0, 0, 0, 0, // qd=1 an=0 ns=0 ar=0
      7, ...Buffer.from("version"), 4, ...Buffer.from("bind"), 0, // qname
      0, 16, // TXT
      0, 3, // CH
    ]);
  });

  test("reply header: id, rcode; a query (QR clear) or a short packet is not a reply; never throws", () => {
    const reply = new Uint8Array([0x12, 0x34, 0x81, 0x85, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect(decodeDnsReplyHeader(reply)).toEqual({ id: 0x1234, rcode: 5, answers: 0 });
    expect(decodeDnsReplyHeader(new Uint8Array([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]))).toBeUndefined();
    expect(decodeDnsReplyHeader(new Uint8Array(11))).toBeUndefined();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => void decodeDnsReplyHeader(b)));
  });

  test("A reply: answers after a CNAME, compressed names, other classes and types skipped (golden bytes)", () => {
    const q = encodeDnsQuery(0xbeef, { name: "gw.svc", type: DNS_TYPE_A, class: DNS_CLASS_IN });
    // prettier-ignore
    const reply = new Uint8Array([
      0xbe, 0xef, // id
      0x81, 0x80, // QR RD RA, NOERROR
      0, 1, 0, 4, 0, 0, 0, 0, // qd=1 an=4
      2, ...Buffer.from("gw"), 3, ...Buffer.from("svc"), 0, 0, 1, 0, 1, // question (offset 12): gw.svc A IN
      0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 30, 0, 4, 1, ...Buffer.from("x"), 0xc0, 15, // gw.svc CNAME x.svc
      0xc0, 31, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 244, 1, 9, // x.svc A 10.244.1.9 (pointer to the CNAME's target)
      0xc0, 31, 0, 1, 0, 3, 0, 0, 0, 30, 0, 4, 9, 9, 9, 9, // class CH: not an address of ours
      0xc0, 31, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 244, 1, 10, // x.svc A 10.244.1.10
    ]);
    expect(decodeDnsAReply(reply)).toEqual({ id: 0xbeef, rcode: 0, answers: 4, truncated: false, addresses: ["10.244.1.9", "10.244.1.10"] });
    expect(sameDnsQuestion(q, reply)).toBe(true);
    // The name in another case is the same question (RFC 4343); another name is not.
    expect(sameDnsQuestion(q, Uint8Array.from(reply, (b, i) => (i === 13 ? 0x47 : b)))).toBe(true);
    expect(sameDnsQuestion(q, Uint8Array.from(reply, (b, i) => (i === 14 ? 0x78 : b)))).toBe(false);
    // Cut anywhere inside the answers: not a reply we can use, never an exception.
    for (let n = 12; n < reply.length; n++) expect(decodeDnsAReply(reply.subarray(0, n))).toBeUndefined();
    // NXDOMAIN with TC set and no answers.
    expect(decodeDnsAReply(Uint8Array.from(reply.subarray(0, 24), (b, i) => (i === 2 ? 0x83 : i === 3 ? 0x83 : i === 7 ? 0 : b)))).toEqual({
      id: 0xbeef, rcode: 3, answers: 0, truncated: true, addresses: [],
    });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 96 }), (b) => void decodeDnsAReply(b)));
  });

  test("a label over 63 bytes is refused", () => {
    expect(() => encodeDnsQuery(1, { name: "a".repeat(64) + ".x", type: 1, class: 1 })).toThrow(/label too long/);
  });
});

/** A clock whose sleeps return at once and move time forward (time only passes by sleeping). */
function virtualClock(start = 0): Clock & { slept: number[] } {
  let now = start;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
  };
}

describe("resolveGatewayAddress", () => {
  test("an IP literal is used as is, without asking anyone", async () => {
    const r = await resolveGatewayAddress("10.0.0.7", { servers: [], lookup: () => Promise.reject(new Error("must not be asked")) });
    expect(r).toEqual({ address: "10.0.0.7", via: "literal", all: ["10.0.0.7"], attempts: 0 });
  });

  test("IPv6 servers are skipped, each IPv4 server is tried in turn, then rounds repeat with backoff", async () => {
    const clock = virtualClock();
    const asked: string[] = [];
    const r = await resolveGatewayAddress("gw.svc", {
      servers: ["fd00::a", "10.96.0.10", "10.96.0.11"],
      clock,
      lookup: async (name, server) => {
        asked.push(server);
        if (asked.length < 5) throw Object.assign(new Error("timeout"), { code: "ETIMEOUT" });
        return ["10.244.1.9", "10.244.1.10"];
      },
    });
    expect(asked).toEqual(["10.96.0.10", "10.96.0.11", "10.96.0.10", "10.96.0.11", "10.96.0.10"]);
    expect(clock.slept).toEqual([100, 200]);
    expect(r).toEqual({ address: "10.244.1.9", via: "10.96.0.10", all: ["10.244.1.9", "10.244.1.10"], attempts: 5 });
  });

  test("gives up at the deadline naming every server's last error", async () => {
    const clock = virtualClock();
    const p = resolveGatewayAddress("gw.svc", {
      servers: ["10.96.0.10"],
      clock,
      deadlineMs: 1000,
      lookup: async () => {
        throw Object.assign(new Error("nx"), { code: "ENOTFOUND" });
      },
    });
    await expect(p).rejects.toThrow(/resolving gw\.svc through 10\.96\.0\.10 failed after \d+ queries \(10\.96\.0\.10: ENOTFOUND\)/);
    expect(clock.slept.reduce((a, b) => a + b, 0)).toBe(1000);
  });

  test("no IPv4 server at all: a clear error at once", async () => {
    await expect(resolveGatewayAddress("gw.svc", { servers: ["fd00::a"] })).rejects.toThrow(GatewayResolveError);
    await expect(resolveGatewayAddress("gw.svc", { servers: [] })).rejects.toThrow(/K8S_DNS_ips/);
  });
});
