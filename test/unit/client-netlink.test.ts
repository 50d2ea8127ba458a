// The client's view of rtnetlink dumps: parseNetlinkFacts must give the planner the same facts
// parseClientFacts gives it from the `ip -j` output of the same kernel state (a pod after
// client-init, written out by hand in both forms, field names and values as the kernel and
// iproute2 6.1 give them), and planned routes must map to the netlink operation ip would have run.
import { describe, expect, test } from "bun:test";
import { parseClientFacts, parseNetlinkFacts, protoNumber } from "../../src/core/client/facts.ts";
import { netlinkRoute } from "../../src/sys/net-apply.ts";

// One pod's state, as rtnetlink messages (decoded) and as ip -j printed it.
const links = [
  { index: 1, name: "lo", flags: 0x10049, mtu: 65536 },
  { index: 2, name: "eth0", flags: 0x11043, mtu: 1500, address: "02:00:00:00:00:02" },
  { index: 3, name: "vxlan0", flags: 0x11043, mtu: 1450, address: "02:aa:bb:cc:dd:ee", kind: "vxlan", vxlan: { id: 42, port: 4789, link: 2, remote: "10.244.1.7", learning: false } },
];
const addrs = [
  { family: 2, index: 1, prefixlen: 8, local: "127.0.0.1", cacheinfo: { valid: 0xffffffff, preferred: 0xffffffff } },
  { family: 2, index: 2, prefixlen: 24, local: "10.244.2.5", cacheinfo: { valid: 0xffffffff, preferred: 0xffffffff } },
  { family: 2, index: 3, prefixlen: 24, local: "172.16.0.23", cacheinfo: { valid: 110, preferred: 110 } },
  { family: 10, index: 2, prefixlen: 64, local: "fd00::5", cacheinfo: { valid: 0xffffffff, preferred: 0xffffffff } },
];
const routes = [
  { family: 2, dstLen: 0, table: 254, tableId: 254, protocol: 201, scope: 0, type: 1, flags: 0, gateway: "172.16.0.1", oif: 3 },
  { family: 2, dstLen: 16, table: 254, tableId: 254, protocol: 201, scope: 0, type: 1, flags: 4, dst: "10.96.0.0", gateway: "10.244.2.1", oif: 2 },
  { family: 2, dstLen: 32, table: 254, tableId: 254, protocol: 201, scope: 0, type: 1, flags: 4, dst: "10.244.1.7", gateway: "10.244.2.1", oif: 2 },
  { family: 2, dstLen: 24, table: 254, tableId: 254, protocol: 2, scope: 253, type: 1, flags: 0, dst: "10.244.2.0", prefsrc: "10.244.2.5", oif: 2 },
  { family: 2, dstLen: 32, table: 255, tableId: 255, protocol: 2, scope: 254, type: 2, flags: 0, dst: "10.244.2.5", prefsrc: "10.244.2.5", oif: 2 },
  { family: 2, dstLen: 0, table: 100, tableId: 100, protocol: 3, scope: 0, type: 7, flags: 0, priority: 1000 },
  { family: 10, dstLen: 0, table: 254, tableId: 254, protocol: 9, scope: 0, type: 1, flags: 0, gateway: "fe80::1", oif: 2, priority: 1024 },
  { family: 10, dstLen: 64, table: 254, tableId: 254, protocol: 2, scope: 0, type: 1, flags: 0, dst: "fd00::", oif: 2, priority: 256 },
];
const ipAddr = [
  { ifindex: 1, ifname: "lo", flags: ["LOOPBACK", "UP", "LOWER_UP"], mtu: 65536, operstate: "UNKNOWN", addr_info: [{ family: "inet", local: "127.0.0.1", prefixlen: 8 }] },
  { ifindex: 2, ifname: "eth0", flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], mtu: 1500, operstate: "UP", address: "02:00:00:00:00:02", addr_info: [{ family: "inet", local: "10.244.2.5", prefixlen: 24 }, { family: "inet6", local: "fd00::5", prefixlen: 64 }] },
  {
    ifindex: 3, ifname: "vxlan0", flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], mtu: 1450, operstate: "UNKNOWN", address: "02:aa:bb:cc:dd:ee",
    linkinfo: { info_kind: "vxlan", info_data: { id: 42, remote: "10.244.1.7", link: "eth0", port: 4789, learning: false } },
    addr_info: [{ family: "inet", local: "172.16.0.23", prefixlen: 24, valid_life_time: 110, preferred_life_time: 110 }],
  },
];
const ipRoutes4 = [
  { dst: "default", gateway: "172.16.0.1", dev: "vxlan0", protocol: "201", scope: "global", flags: [], table: "main" },
  { dst: "10.96.0.0/16", gateway: "10.244.2.1", dev: "eth0", protocol: "201", scope: "global", flags: ["onlink"], table: "main" },
  { dst: "10.244.1.7/32", gateway: "10.244.2.1", dev: "eth0", protocol: "201", scope: "global", flags: ["onlink"], table: "main" },
  { dst: "10.244.2.0/24", dev: "eth0", protocol: "kernel", scope: "link", prefsrc: "10.244.2.5", flags: [], table: "main" },
];
const ipDefaults6 = [{ dst: "default", gateway: "fe80::1", dev: "eth0", protocol: "ra", scope: "global", metric: 1024, flags: [], table: "main" }];

describe("parseNetlinkFacts", () => {
  test("the same facts as from ip -j", () => {
    const nl = parseNetlinkFacts(links, addrs, routes);
    expect(nl).toEqual(parseClientFacts(ipAddr as never, ipRoutes4, ipDefaults6));
    expect(nl.vxlan).toMatchObject({ dev: "eth0", remote: "10.244.1.7", learning: false, addresses: [{ local: "172.16.0.23", validLft: 110 }] });
    expect(nl.routes4.map((r) => r.dst)).toEqual(["default", "10.96.0.0/16", "10.244.1.7/32", "10.244.2.0/24"]);
  });
  test("no vxlan0, no eth0", () => {
    expect(parseNetlinkFacts([links[0]!], [], [])).toEqual({ eth0: undefined, vxlan: undefined, routes4: [], defaults6: [], ours6: [] });
  });
});

describe("planned routes as netlink operations", () => {
  test("protocol names and numbers", () => {
    expect([protoNumber("201"), protoNumber("kernel"), protoNumber("ra"), protoNumber(201), protoNumber("zebra-of-somebody"), protoNumber(undefined)]).toEqual([201, 2, 9, 201, undefined, undefined]);
  });
  test("a pin, and the IPv6 default route it deletes", () => {
    expect(netlinkRoute({ family: 4, dst: "10.96.0.0/16", via: "10.244.2.1", dev: "eth0", onlink: true, proto: 201 }, false)).toEqual({
      family: 4, dst: "10.96.0.0/16", via: "10.244.2.1", dev: "eth0", onlink: true, protocol: 201, table: 254,
    });
    expect(netlinkRoute({ family: 6, dst: "default", via: "fe80::1", dev: "eth0", onlink: false, proto: "ra", metric: 1024 }, true)).toEqual({
      family: 6, dst: "default", via: "fe80::1", dev: "eth0", protocol: 9, metric: 1024, table: 254,
    });
    // a protocol name we cannot map is not repeated (the delete matches any protocol, as ip would)
    expect(netlinkRoute({ family: 4, dst: "default", via: "10.0.0.1", dev: "eth0", proto: "bird2" }, true)).not.toHaveProperty("protocol");
  });
});
