// The IPv6 VPN_LOCAL_CIDRS routes of the gateway (issue 13 §3): planned as typed changes from
// the IPv6 routes of table main (pure; the netns test applies them in a dual-stack lab).
import { describe, expect, test } from "bun:test";
import { findGateway6, planLocalRoutes6 } from "../../src/core/gateway/local6.ts";
import { formatChange } from "../../src/core/net/change.ts";
import type { IpRoute } from "../../src/core/net/ip-json.ts";

const s = { VPN_INTERFACE: "tun0", VPN_LOCAL_CIDRS: ["10.0.0.0/8", "fd00:18::/48", "fd00:99::5/128"] };
const ra: IpRoute = { dst: "default", gateway: "fe80::1", dev: "eth0", protocol: "ra", metric: 1024, flags: [] };
const connected: IpRoute = { dst: "fd00:18::/64", dev: "eth0", protocol: "kernel", metric: 256, flags: [] };
const ours = (dst: string, via = "fe80::1", dev = "eth0"): IpRoute => ({ dst, gateway: via, dev, protocol: "201", metric: 1024, flags: [] });
const show = (routes6: IpRoute[], settings = s) => planLocalRoutes6(settings, routes6).changes.map(formatChange);

describe("planLocalRoutes6", () => {
  test("each IPv6 CIDR via eth0's IPv6 gateway with our protocol; IPv4 CIDRs are not its business", () => {
    const p = planLocalRoutes6(s, [ra, connected]);
    expect(p.changes.map(formatChange)).toEqual([
      "route replace fd00:18::/48 via fe80::1 dev eth0 proto 201",
      "route replace fd00:99::5/128 via fe80::1 dev eth0 proto 201",
    ]);
    expect(p.changes.every((c) => c.op === "route-replace" && c.route.family === 6)).toBe(true);
    expect(p.warnings).toEqual([]);
    expect(p.gateway).toEqual({ via: "fe80::1", onlink: false, source: "default route" });
  });

  test("converged: nothing to do (metrics are the kernel's)", () => {
    expect(show([ra, connected, ours("fd00:18::/48"), ours("fd00:99::5/128")])).toEqual([]);
  });

  test("the lowest-metric default on eth0 that is not ours; onlink kept; other devices ignored", () => {
    const routes = [
      { ...ra, gateway: "fe80::2", metric: 2048 },
      { dst: "default", gateway: "fe80::9", dev: "tun0", protocol: "static", metric: 1, flags: [] },
      { ...ra, gateway: "fd00:18::1", metric: 100, flags: ["onlink"] },
    ];
    expect(findGateway6(routes)).toEqual({ via: "fd00:18::1", onlink: true, source: "default route" });
    expect(show(routes)[0]).toBe("route replace fd00:18::/48 via fd00:18::1 dev eth0 onlink proto 201");
  });

  test("a VPN client took the IPv6 default route away: our earlier routes still know the gateway", () => {
    const routes = [{ dst: "default", dev: "tun0", protocol: "static", metric: 1, flags: [] }, ours("fd00:18::/48"), ours("fd00:99::5/128")];
    expect(findGateway6(routes)?.source).toBe("routes of an earlier run");
    expect(show(routes)).toEqual([]);
  });

  test("a CIDR taken out of the setting, or all of them without VPN_INTERFACE: our routes go, others stay", () => {
    const routes = [ra, connected, ours("fd00:18::/48"), ours("fd00:77::/64"), ours("fd00:55::/64", "fe80::1", "wg0"), { ...ours("fd00:66::/64"), protocol: "static" }];
    expect(show(routes, { ...s, VPN_LOCAL_CIDRS: ["fd00:18::/48"] })).toEqual(["route del fd00:77::/64 via fe80::1 dev eth0 proto 201 metric 1024"]);
    expect(show(routes, { ...s, VPN_INTERFACE: "" })).toEqual([
      "route del fd00:18::/48 via fe80::1 dev eth0 proto 201 metric 1024",
      "route del fd00:77::/64 via fe80::1 dev eth0 proto 201 metric 1024",
    ]);
  });

  test("eth0's IPv6 gateway changed: the old route goes before the new one is added", () => {
    const routes = [{ ...ra, gateway: "fe80::2" }, ours("fd00:18::/48", "fe80::1")];
    expect(show(routes, { ...s, VPN_LOCAL_CIDRS: ["fd00:18::/48"] })).toEqual([
      "route del fd00:18::/48 via fe80::1 dev eth0 proto 201 metric 1024",
      "route replace fd00:18::/48 via fe80::2 dev eth0 proto 201",
    ]);
  });

  test("a pod without IPv6: a warning naming the CIDRs, no change", () => {
    const p = planLocalRoutes6(s, []);
    expect(p.changes).toEqual([]);
    expect(p.warnings).toEqual(["VPN_LOCAL_CIDRS fd00:18::/48 fd00:99::5/128: not routed, eth0 has no IPv6 default route (the pod has no IPv6); the kill switch still accepts them"]);
    expect(planLocalRoutes6({ ...s, VPN_LOCAL_CIDRS: ["10.0.0.0/8"] }, []).warnings).toEqual([]);
  });
});
