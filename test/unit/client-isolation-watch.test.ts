// The client sidecar's isolation watch (issue 11 §7): when to re-check, what to report, once per
// distinct problem and again when it clears; and the words naming the route around the tunnel.
import { describe, expect, test } from "bun:test";
import { decideIsolation, type RouteGetResult } from "../../src/core/client/isolation.ts";
import { explainLeak, IsolationWatch, type IsolationOutcome } from "../../src/core/client/isolation-watch.ts";
import type { IpRoute } from "../../src/core/net/ip-json.ts";

const MAIN: IpRoute[] = [
  { dst: "10.0.0.0/8", gateway: "198.18.0.1", dev: "eth0", protocol: "static" },
  { dst: "198.18.0.0/24", dev: "eth0", protocol: "kernel", scope: "link" },
  { dst: "default", gateway: "172.16.0.1", dev: "vxlan0", protocol: "static" },
];
const TUNNEL: RouteGetResult[] = [
  { dst: "1.1.1.1", ok: true, dev: "vxlan0", gateway: "172.16.0.1" },
  { dst: "2606:4700:4700::1111", ok: false, errno: 101, message: "x" },
];
const SPLIT: IpRoute = { dst: "0.0.0.0/1", gateway: "198.18.0.1", dev: "eth0" };
const viaEth0: RouteGetResult = { dst: "1.1.1.1", ok: true, dev: "eth0", gateway: "198.18.0.1" };

const holds = (): IsolationOutcome => ({ verdict: decideIsolation(TUNNEL), routes4: MAIN });
const leak = (routes4: IpRoute[], r: RouteGetResult = viaEth0): IsolationOutcome => ({ verdict: decideIsolation([r, TUNNEL[1]!]), routes4 });

describe("explainLeak", () => {
  test("names the main-table route that sends the address around the tunnel (longest prefix, same next hop)", () => {
    expect(explainLeak(viaEth0, [...MAIN, SPLIT])).toBe('route "0.0.0.0/1 via 198.18.0.1 dev eth0" sends 1.1.1.1 around the tunnel (via 198.18.0.1 dev eth0)');
    const def: IpRoute = { dst: "default", gateway: "198.18.0.1", dev: "eth0", metric: 100 };
    expect(explainLeak(viaEth0, [...MAIN, def])).toBe('route "default via 198.18.0.1 dev eth0 metric 100" sends 1.1.1.1 around the tunnel (via 198.18.0.1 dev eth0)');
    expect(explainLeak(viaEth0, [...MAIN, def, SPLIT])).toContain('route "0.0.0.0/1 via');
  });
  test("a path main does not hold (a policy rule's table) is said to be outside the main table", () => {
    expect(explainLeak(viaEth0, MAIN)).toBe("1.1.1.1 is reachable via 198.18.0.1 dev eth0 by a route outside the main table (another table chosen by a policy rule?)");
  });
  test("an IPv6 path is named as one", () => {
    expect(explainLeak({ dst: "2606:4700:4700::1111", ok: true, dev: "eth0", gateway: "fe80::1" }, MAIN)).toBe("an IPv6 route sends 2606:4700:4700::1111 around the tunnel (via fe80::1 dev eth0)");
  });
  test("a lookup that failed oddly is named as such", () => {
    expect(explainLeak({ dst: "1.1.1.1", ok: false, errno: 1, message: "EPERM" }, MAIN)).toBe("1.1.1.1: route lookup failed unexpectedly (EPERM)");
  });
});

describe("IsolationWatch", () => {
  test("checks at the first tick, then every interval, and at once when the fingerprint changes", () => {
    const w = new IsolationWatch(30_000, 0);
    expect(w.due(2000, "a")).toBe(true);
    w.checked(2000, "a", holds());
    expect(w.due(4000, "a")).toBe(false);
    expect(w.due(31_999, "a")).toBe(false);
    expect(w.due(32_000, "a")).toBe(true);
    expect(w.due(4000, "b")).toBe(true);
    // No fingerprint (none readable): the interval alone.
    expect(w.due(4000, undefined)).toBe(false);
    expect(w.state).toEqual({ holds: true, problem: undefined, checks: 1 });
  });

  test("a route around the tunnel: one error naming it, silence while it stays, one line when it clears", () => {
    const w = new IsolationWatch(30_000, 0);
    expect(w.checked(0, "a", holds())).toEqual([{ level: "debug", text: "isolation holds (1.1.1.1: through the tunnel (via 172.16.0.1 dev vxlan0); 2606:4700:4700::1111: no route (ENETUNREACH))" }]);
    const broken = w.checked(2000, "b", leak([...MAIN, SPLIT]));
    expect(broken).toHaveLength(1);
    expect(broken[0]!.level).toBe("error");
    expect(broken[0]!.text).toContain('isolation broken: route "0.0.0.0/1 via 198.18.0.1 dev eth0" sends 1.1.1.1 around the tunnel');
    expect(broken[0]!.text).toContain("leaves it in place");
    expect(w.state.holds).toBe(false);
    expect(w.state.problem).toContain("0.0.0.0/1");
    expect(w.checked(32_000, "b", leak([...MAIN, SPLIT]))).toEqual([]);
    expect(w.state.holds).toBe(false);
    const cleared = w.checked(34_000, "c", holds());
    expect(cleared).toHaveLength(1);
    expect(cleared[0]!.level).toBe("info");
    expect(cleared[0]!.text).toStartWith("isolation holds again");
    expect(w.state).toEqual({ holds: true, problem: undefined, checks: 4 });
  });

  test("a different problem is reported again; the same one after it cleared is reported again too", () => {
    const w = new IsolationWatch(30_000, 0);
    expect(w.checked(0, "a", leak([...MAIN, SPLIT]))).toHaveLength(1);
    const other = w.checked(1000, "b", leak([...MAIN, { dst: "default", gateway: "198.18.0.1", dev: "eth0" }]));
    expect(other).toHaveLength(1);
    expect(other[0]!.text).toContain('route "default via 198.18.0.1 dev eth0"');
    w.checked(2000, "c", holds());
    expect(w.checked(3000, "d", leak([...MAIN, SPLIT]))).toHaveLength(1);
  });

  test("a check that cannot run: warned once, isolation unknown, until a check runs again", () => {
    const w = new IsolationWatch(30_000, 0);
    w.checked(0, "a", holds());
    expect(w.checked(30_000, "a", { error: "netlink: EPERM" })).toEqual([{ level: "warn", text: "cannot check the pod's isolation: netlink: EPERM" }]);
    expect(w.state.holds).toBeUndefined();
    expect(w.checked(60_000, "a", { error: "netlink: EPERM" })).toEqual([]);
    expect(w.checked(90_000, "a", holds())[0]!.level).toBe("debug");
    expect(w.state.holds).toBe(true);
  });
});
