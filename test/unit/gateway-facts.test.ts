// The gateway's facts from rtnetlink messages in `ip -j`'s shapes (src/core/gateway/facts.ts): the
// parts a netns test cannot provoke easily (inverted rules, selectors the codec keeps by name,
// non-table actions, IPv6 messages mixed in). test/netns/gateway-no-ip.test.ts compares a real
// gateway's facts with ip -j key for key.
import { describe, expect, test } from "bun:test";
import { bridgeFdbFromNetlink, ipNeighFromNetlink, ipRuleFromNetlink, parseGatewayNetlink } from "../../src/core/gateway/facts.ts";

const rule = { family: 2, dstLen: 0, srcLen: 0, tos: 0, table: 254, action: 1, flags: 0, suppressPrefixlen: 0xffffffff };

describe("ipRuleFromNetlink", () => {
  test("our rules as ip -j rule show prints them", () => {
    expect(ipRuleFromNetlink({ ...rule, priority: 50, suppressPrefixlen: 0 })).toEqual({ priority: 50, src: "all", table: "main", suppress_prefixlen: 0 });
    expect(ipRuleFromNetlink({ ...rule, table: 0, tableId: 4201, priority: 45, iifname: "vxlan0" })).toEqual({ priority: 45, src: "all", iif: "vxlan0", table: "4201" });
    expect(ipRuleFromNetlink({ ...rule, table: 0, tableId: 4201, priority: 46, dstLen: 32, dst: "9.9.9.9" })).toEqual({ priority: 46, src: "all", dst: "9.9.9.9", table: "4201" });
    expect(ipRuleFromNetlink({ ...rule, priority: 0, table: 255 })).toEqual({ priority: 0, src: "all", table: "local" });
  });

  test("what makes a rule not one of ours shows: inversion, fwmark, selectors kept by name, other actions, prefixes", () => {
    // wg-quick: not from all fwmark 0xca6c lookup 51820
    expect(ipRuleFromNetlink({ ...rule, flags: 2, fwmark: 0xca6c, otherSelectors: ["fwmask"], table: 0, tableId: 51820, priority: 32764 })).toEqual({
      priority: 32764,
      not: null,
      src: "all",
      fwmark: "0xca6c",
      table: "51820",
    });
    expect(ipRuleFromNetlink({ ...rule, priority: 50, suppressPrefixlen: 0, otherSelectors: ["uidrange"] }).uidrange).toBe(true);
    expect(ipRuleFromNetlink({ ...rule, action: 6, table: 0, priority: 7 })).toEqual({ priority: 7, src: "all", action: "blackhole" });
    expect(ipRuleFromNetlink({ ...rule, srcLen: 8, src: "10.0.0.0", dstLen: 24, dst: "192.168.1.0", priority: 9 })).toEqual({ priority: 9, src: "10.0.0.0", srclen: 8, dst: "192.168.1.0", dstlen: 24, table: "main" });
  });
});

describe("parseGatewayNetlink", () => {
  test("links with addresses and vxlan data by name; IPv4 routes only, tables named; IPv6 rules left out", () => {
    const f = parseGatewayNetlink(
      [
        { index: 2, name: "eth0", flags: 0x11043, mtu: 1500, address: "02:00:00:00:00:02", operstate: 6 },
        { index: 3, name: "vxlan0", flags: 0x1003, mtu: 1450, address: "4e:ce:6e:57:67:01", kind: "vxlan", vxlan: { id: 42, port: 8472, link: 2, learning: true } },
      ],
      [
        { family: 2, index: 3, prefixlen: 24, local: "172.16.0.1", scope: 0 },
        { family: 10, index: 2, prefixlen: 64, address: "fe80::1", scope: 253 },
      ],
      [
        { family: 2, dstLen: 0, table: 254, protocol: 3, scope: 0, type: 1, flags: 0, gateway: "198.18.0.1", oif: 2 },
        { family: 2, dstLen: 0, table: 0, tableId: 4201, protocol: 3, scope: 0, type: 7, flags: 0, priority: 4294967295 },
        { family: 2, dstLen: 8, dst: "127.0.0.0", table: 255, protocol: 2, scope: 254, type: 2, flags: 0, oif: 1, prefsrc: "127.0.0.1" },
        { family: 10, dstLen: 64, dst: "fe80::", table: 254, protocol: 2, scope: 0, type: 1, flags: 0, oif: 2 },
      ],
      [{ ...rule, priority: 50, suppressPrefixlen: 0 }, { ...rule, family: 10, priority: 50 }],
    );
    expect(f.links.map((l) => [l.ifname, l.flags.includes("UP"), l.operstate, l.linkinfo?.info_data ?? null, l.addr_info.map((a) => `${a.family} ${a.local}/${a.prefixlen} ${a.scope}`)])).toEqual([
      ["eth0", true, "UP", null, ["inet6 fe80::1/64 link"]],
      ["vxlan0", true, "UNKNOWN", { id: 42, port: 8472, link: "eth0", learning: true }, ["inet 172.16.0.1/24 global"]],
    ]);
    expect(f.allRoutes).toEqual([
      { dst: "default", gateway: "198.18.0.1", dev: "eth0", scope: "global", flags: [], table: "main" },
      { dst: "default", type: "unreachable", scope: "global", metric: 4294967295, flags: [], table: "4201" },
      { dst: "127.0.0.0/8", type: "local", dev: "if1", protocol: "kernel", scope: "host", prefsrc: "127.0.0.1", flags: [], table: "local" },
    ]);
    expect(f.routes.map((r) => r.dst)).toEqual(["default"]);
    expect(f.rules).toEqual([{ priority: 50, src: "all", table: "main", suppress_prefixlen: 0 }]);
  });

  test("neighbours and forwarding entries in ip neigh's and bridge fdb's shapes", () => {
    expect(ipNeighFromNetlink([{ family: 2, index: 3, state: 0x02, dst: "172.16.0.5", lladdr: "02:00:00:00:00:05" }, { family: 2, index: 3, state: 0x20, dst: "172.16.0.6" }])).toEqual([
      { dst: "172.16.0.5", lladdr: "02:00:00:00:00:05", state: ["REACHABLE"] },
      { dst: "172.16.0.6", state: ["FAILED"] },
    ]);
    expect(bridgeFdbFromNetlink([{ family: 7, index: 3, state: 0x02, lladdr: "02:00:00:00:00:05", dst: "10.244.1.7" }, { family: 7, index: 3, state: 0x80, lladdr: "00:00:00:00:00:00", dst: "10.244.1.1" }])).toEqual([
      { mac: "02:00:00:00:00:05", dst: "10.244.1.7" },
      { mac: "00:00:00:00:00:00", dst: "10.244.1.1", state: "permanent" },
    ]);
  });
});
