// The lease file rebuilt from vxlan0's neighbours for a sidecar with a fresh filesystem.
import { describe, expect, test } from "bun:test";
import { HOLD_LINE, LeaseGuard, parseLeaseFile, renderGuardHosts, renderLeaseSeed } from "../../src/core/gateway/leases.ts";

const o = { network: "172.16.0", firstDynamic: 20, leaseTime: "12h", nowSeconds: 1_000_000 };

describe("renderLeaseSeed", () => {
  test("clients in the DHCP range with a MAC, once each, a whole lease from now; static, other networks and failed entries left out", () => {
    const text = renderLeaseSeed(
      [
        { dst: "172.16.0.42", lladdr: "AA:bb:cc:dd:ee:01", state: ["REACHABLE"] },
        { dst: "172.16.0.42", lladdr: "aa:bb:cc:dd:ee:09", state: ["STALE"] },
        { dst: "172.16.0.254", lladdr: "aa:bb:cc:dd:ee:02", state: ["STALE"] },
        { dst: "172.16.0.10", lladdr: "aa:bb:cc:dd:ee:03", state: ["REACHABLE"] }, // nat.conf's static octet
        { dst: "172.16.0.77", state: ["FAILED"] },
        { dst: "172.16.0.78", lladdr: "aa:bb:cc:dd:ee:04", state: ["INCOMPLETE"] },
        { dst: "10.1.0.50", lladdr: "aa:bb:cc:dd:ee:05", state: ["REACHABLE"] },
        { dst: "fe80::1", lladdr: "aa:bb:cc:dd:ee:06", state: ["REACHABLE"] },
      ],
      o,
    );
    expect(text).toBe("1043200 aa:bb:cc:dd:ee:01 172.16.0.42 * *\n1043200 aa:bb:cc:dd:ee:02 172.16.0.254 * *\n");
  });

  test("infinite leases never expire (0); no neighbours, no lines", () => {
    expect(renderLeaseSeed([{ dst: "172.16.0.20", lladdr: "aa:bb:cc:dd:ee:01" }], { ...o, leaseTime: "infinite" })).toBe("0 aa:bb:cc:dd:ee:01 172.16.0.20 * *\n");
    expect(renderLeaseSeed([], o)).toBe("");
  });
});

describe("LeaseGuard (a new pod's first offers)", () => {
  const o = { network: "172.16.0", firstDynamic: 20, quietSeconds: 1.5, maxHoldSeconds: 10, learnSeconds: 120 };
  const A = { dst: "172.16.0.20", lladdr: "02:aa:00:00:00:01", state: ["STALE"] };
  const B = { dst: "172.16.0.21", lladdr: "02:bb:00:00:00:02", state: ["REACHABLE"] };
  const NEWCOMER = "02:cc:00:00:00:03";
  const none = new Map<string, string>();
  const look = (g: LeaseGuard, nowMs: number, neighbours: { dst: string; lladdr?: string; state?: string[] }[], fdbMacs: string[] = [], leases: ReadonlyMap<string, string> = none) => g.look({ nowMs, neighbours, fdbMacs, leases });

  test("a new pod: holds everyone unknown until a client appears, reserves what it sees, lets go once no new client came for the quiet time", () => {
    const g = new LeaseGuard(o);
    expect(g.initialHosts()).toBe(`${HOLD_LINE}\n`);
    expect(look(g, 0, [])).toEqual({ note: undefined, done: false });
    // Nobody for a minute: still held (the pod is not in the cluster DNS until ready; clients come after).
    expect(look(g, 60_000, []).hosts).toBeUndefined();
    expect(g.holdingOffers).toBe(true);
    // A newcomer's DISCOVER: its MAC in the forwarding table; the clock starts.
    expect(look(g, 60_100, [], [NEWCOMER]).hosts).toBeUndefined();
    // A live client ARPs for .1: reserved at once (the hold line stays last).
    expect(look(g, 60_900, [A], [NEWCOMER, A.lladdr]).hosts).toBe(`${A.lladdr},${A.dst}\n${HOLD_LINE}\n`);
    expect(look(g, 62_300, [A], [NEWCOMER, A.lladdr]).hosts).toBeUndefined(); // 1.4 s since A: still held
    const end = look(g, 62_400, [A], [NEWCOMER, A.lladdr]);
    expect(end.hosts).toBe(`${A.lladdr},${A.dst}\n`);
    expect(end.note).toContain("offering addresses now");
    expect(g.holdingOffers).toBe(false);
    // A late client is still reserved; a lease in the file covers a reservation (it is dropped).
    expect(look(g, 63_000, [A, B]).hosts).toBe(`${A.lladdr},${A.dst}\n${B.lladdr},${B.dst}\n`);
    expect(look(g, 64_000, [A, B], [], new Map([[A.dst, A.lladdr]])).hosts).toBe(`${B.lladdr},${B.dst}\n`);
    // A's lease released (gone from the file) while its neighbour entry lingers: not reserved again.
    expect(look(g, 64_500, [A, B]).hosts).toBeUndefined();
    // The window closes: the hosts file is emptied, the reservation left over named.
    const over = look(g, 62_400 + 120_000, [B]);
    expect(over).toEqual({ hosts: "", done: true, note: `address reservations of clients that never renewed dropped: ${B.dst}` });
    expect(look(g, 200_000, [A])).toEqual({ done: true });
  });

  test("clients there already (a restarted sidecar): the hold ends the quiet time after the start", () => {
    const g = new LeaseGuard(o);
    g.initialHosts();
    // Leased (the seed) and named all the same while holding: the hold line would ignore its renewal.
    expect(look(g, 0, [A], [A.lladdr], new Map([[A.dst, A.lladdr]])).hosts).toBe(`${A.lladdr},${A.dst}\n${HOLD_LINE}\n`);
    expect(look(g, 1400, [A], [A.lladdr], new Map([[A.dst, A.lladdr]])).hosts).toBeUndefined();
    expect(look(g, 1500, [A], [A.lladdr], new Map([[A.dst, A.lladdr]])).hosts).toBe("");
  });

  test("clients arriving without a pause are held at most maxHoldSeconds after the first", () => {
    const g = new LeaseGuard(o);
    g.initialHosts();
    look(g, 0, []);
    let t = 1000;
    for (let i = 0; t <= 11_000; i++, t += 1000) look(g, t, [], [`02:00:00:00:01:${(i + 16).toString(16)}`]);
    expect(g.holdingOffers).toBe(false);
  });

  test("neighbours outside the range, without a MAC or failed are not reserved; their MACs still count as clients seen", () => {
    const g = new LeaseGuard(o);
    g.initialHosts();
    look(g, 0, []);
    const step = look(g, 100, [
      { dst: "172.16.0.5", lladdr: "02:00:00:00:00:05", state: ["STALE"] }, // nat.conf's static octet
      { dst: "172.16.0.30", state: ["INCOMPLETE"] },
      { dst: "172.16.0.31", lladdr: "02:00:00:00:00:31", state: ["FAILED"] },
      { dst: "10.1.0.40", lladdr: "02:00:00:00:00:40", state: ["STALE"] },
    ]);
    expect(step.hosts).toBeUndefined();
    expect(look(g, 1600, []).hosts).toBe("");
  });

  test("renderGuardHosts sorts by address; parseLeaseFile reads dnsmasq's lines", () => {
    expect(renderGuardHosts(false, new Map([["172.16.0.100", "02:00:00:00:00:02"], ["172.16.0.20", "02:00:00:00:00:01"]]))).toBe("02:00:00:00:00:01,172.16.0.20\n02:00:00:00:00:02,172.16.0.100\n");
    expect(parseLeaseFile("1700000000 02:AA:00:00:00:01 172.16.0.20 * 01:02:aa:00:00:00:01\n0 02:bb:00:00:00:02 172.16.0.21 * *\nduid 00:01\n")).toEqual(
      new Map([["172.16.0.20", "02:aa:00:00:00:01"], ["172.16.0.21", "02:bb:00:00:00:02"]]),
    );
  });
});
