// The client planner: facts + settings → changes; rendered `ip` lines; apply twice → nothing left;
// configurations replayed in any order converge to the same state.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ROUTE_PROTO } from "../../src/core/client/constants.ts";
import { parseClientFacts, type ClientFacts } from "../../src/core/client/facts.ts";
import { formatIpv4, parsePrefix4, prefixContains } from "../../src/core/net/ipv4.ts";
import {
  findOriginalGateway,
  planClientAddress,
  planClientNetwork,
  PlanError,
  stateChanges,
  type ClientNetworkInput,
} from "../../src/core/client/plan.ts";
import { formatChange } from "../../src/core/net/change.ts";
import { simulateChanges, SimulationError } from "../../src/core/client/simulate.ts";
import type { IpAddr, IpRoute } from "../../src/core/net/ip-json.ts";

/** A fresh lab-like client pod: eth0 198.18.0.10/24, default via the node 198.18.0.1, an IPv6 default. */
function freshPod(opts: { defaultRoute?: IpRoute; extraRoutes?: IpRoute[]; v6Default?: boolean; mtu?: number } = {}): ClientFacts {
  const links: IpAddr[] = [
    { ifindex: 1, ifname: "lo", flags: ["LOOPBACK", "UP"], mtu: 65536, operstate: "UNKNOWN", addr_info: [{ family: "inet", local: "127.0.0.1", prefixlen: 8 }] },
    {
      ifindex: 2,
      ifname: "eth0",
      flags: ["BROADCAST", "UP", "LOWER_UP"],
      mtu: opts.mtu ?? 1500,
      operstate: "UP",
      linkinfo: { info_kind: "veth" },
      addr_info: [{ family: "inet", local: "198.18.0.10", prefixlen: 24 }],
    },
  ];
  const routes4: IpRoute[] = [
    opts.defaultRoute ?? { dst: "default", gateway: "198.18.0.1", dev: "eth0", flags: [] },
    { dst: "198.18.0.0/24", dev: "eth0", protocol: "kernel", scope: "link", prefsrc: "198.18.0.10", flags: [] },
    ...(opts.extraRoutes ?? []),
  ];
  const routes6: IpRoute[] = opts.v6Default === false ? [] : [{ dst: "default", gateway: "fe80::1", dev: "eth0", metric: 1024, flags: [] }];
  return parseClientFacts(links, routes4, routes6);
}

function input(over: Partial<ClientNetworkInput> = {}): ClientNetworkInput {
  return {
    podName: "web-0",
    vni: 42,
    port: 0,
    network: "172.16.0",
    vpnInterfaceMtu: undefined,
    notRoutedCidrs: ["10.0.0.0/8"],
    dnsServers: ["198.18.1.10", "fd00::10"],
    gatewayPodIp: "198.18.0.2",
    kubernetesServiceHost: "198.18.1.1",
    ...over,
  };
}

const lines = (f: ClientFacts, i: ClientNetworkInput) => planClientNetwork(f, i).changes.map(formatChange);

describe("planClientNetwork on a fresh pod", () => {
  test("pins cluster destinations via the original gateway, deletes both default routes, creates vxlan0", () => {
    const mac = "aa:61:af:7c:c1:9a"; // from "web-0" and eth0's 198.18.0.10 (test/unit/client-identity.test.ts)
    expect(lines(freshPod(), input())).toEqual([
      `route add 10.0.0.0/8 via 198.18.0.1 dev eth0 proto ${ROUTE_PROTO}`,
      `route add 198.18.1.10/32 via 198.18.0.1 dev eth0 proto ${ROUTE_PROTO}`,
      `route add 198.18.1.1/32 via 198.18.0.1 dev eth0 proto ${ROUTE_PROTO}`,
      "route del 0.0.0.0/0 via 198.18.0.1 dev eth0",
      "route del ::/0 via fe80::1 dev eth0 metric 1024",
      `link add vxlan0 address ${mac} mtu 1450 up type vxlan id 42 dev eth0 dstport 8472 remote 198.18.0.2 nolearning`,
    ]);
  });

  test("the on-link gateway pod and an IPv6 DNS server are not pinned, and say why", () => {
    const p = planClientNetwork(freshPod(), input());
    expect(p.skipped.map((s) => [s.target, s.reason])).toEqual([
      ["fd00::10", "K8S_DNS_IPS"],
      ["198.18.0.2/32", "gateway pod"],
    ]);
    expect(p.skipped[1]!.why).toContain("198.18.0.0/24 dev eth0");
  });

  test("Calico-style pod: default via 169.254.1.1 onlink; the gateway pod (another /32) is pinned with onlink", () => {
    const f = freshPod({ defaultRoute: { dst: "default", gateway: "169.254.1.1", dev: "eth0", flags: ["onlink"] } });
    const l = lines(f, input({ gatewayPodIp: "10.244.3.7", notRoutedCidrs: [], kubernetesServiceHost: undefined }));
    expect(l).toContain(`route add 10.244.3.7/32 via 169.254.1.1 dev eth0 onlink proto ${ROUTE_PROTO}`);
    expect(l).toContain("route del 0.0.0.0/0 via 169.254.1.1 dev eth0");
  });

  test("a device default route (no next hop) is remembered as such", () => {
    const f = freshPod({ defaultRoute: { dst: "default", dev: "eth0", scope: "link", flags: [] } });
    expect(lines(f, input({ notRoutedCidrs: [], kubernetesServiceHost: undefined }))[0]).toBe(`route add 198.18.1.10/32 dev eth0 proto ${ROUTE_PROTO}`);
  });

  test("duplicate targets are pinned once; a CIDR given with host bits is canonicalised", () => {
    const p = planClientNetwork(freshPod(), input({ notRoutedCidrs: ["10.1.2.3/8", "198.18.1.10/32"], dnsServers: ["198.18.1.10"] }));
    expect(p.pins.map((r) => r.dst)).toEqual(["10.0.0.0/8", "198.18.1.10/32", "198.18.1.1/32"]);
  });

  test("MTU: eth0 - 50, bounded by VPN_INTERFACE_MTU", () => {
    expect(planClientNetwork(freshPod({ mtu: 9001 }), input()).vxlan.mtu).toBe(8951);
    expect(planClientNetwork(freshPod(), input({ vpnInterfaceMtu: 1380 })).vxlan.mtu).toBe(1380);
  });

  test("VXLAN_PORT is used as given when not 0", () => {
    expect(lines(freshPod(), input({ port: 4789 })).at(-1)).toContain("dstport 4789");
  });

  test("no eth0: PlanError", () => {
    const f = freshPod();
    f.eth0 = undefined;
    expect(() => planClientNetwork(f, input())).toThrow(PlanError);
  });
});

describe("re-runs converge", () => {
  function initOnce(f: ClientFacts, i: ClientNetworkInput, addr = { local: "172.16.0.23", prefixlen: 24, lifetime: 600 as number | "forever" }) {
    const p1 = planClientNetwork(f, i);
    const after1 = simulateChanges(f, p1.changes);
    const p2 = planClientAddress(after1, i.network, addr);
    return simulateChanges(after1, p2);
  }

  test("second run: no state change (static), only the lease refresh (DHCP)", () => {
    const i = input();
    const done = initOnce(freshPod(), i, { local: "172.16.0.5", prefixlen: 24, lifetime: "forever" });
    expect(planClientNetwork(done, i).changes).toEqual([]);
    expect(planClientAddress(done, i.network, { local: "172.16.0.5", prefixlen: 24, lifetime: "forever" })).toEqual([]);
    const dhcp = initOnce(freshPod(), i);
    const again = planClientAddress(dhcp, i.network, { local: "172.16.0.23", prefixlen: 24, lifetime: 500 });
    expect(again.map((c) => c.op)).toEqual(["addr-set"]);
    expect(stateChanges(again)).toEqual([]);
  });

  test("the original gateway is found again from our proto routes once the default route is gone", () => {
    const done = initOnce(freshPod(), input());
    expect(done.routes4.some((r) => r.dst === "default" && r.dev === "eth0")).toBe(false);
    expect(findOriginalGateway(done)).toEqual({ via: "198.18.0.1", onlink: false, source: "routes of an earlier run" });
    // The container restarts with new settings: the new CIDR is still routed via the remembered gateway.
    const l = lines(done, input({ notRoutedCidrs: ["10.0.0.0/8", "192.168.0.0/16"] }));
    expect(l).toEqual([`route add 192.168.0.0/16 via 198.18.0.1 dev eth0 proto ${ROUTE_PROTO}`]);
  });

  test("without a default route and without routes of an earlier run, the plan fails and says why", () => {
    const f = freshPod();
    f.routes4 = f.routes4.filter((r) => r.dst !== "default");
    expect(() => planClientNetwork(f, input())).toThrow(/no default route on eth0 and no routes with proto 201/);
  });

  test("the gateway pod moves off-link: new /32 added before the old remote is replaced; nothing torn down", () => {
    const i = input({ gatewayPodIp: "10.99.0.5", notRoutedCidrs: [] });
    const done = initOnce(freshPod(), i);
    const moved = lines(done, { ...i, gatewayPodIp: "10.99.0.6" });
    expect(moved).toEqual([
      `route add 10.99.0.6/32 via 198.18.0.1 dev eth0 proto ${ROUTE_PROTO}`,
      `route del 10.99.0.5/32 via 198.18.0.1 dev eth0 proto ${ROUTE_PROTO}`,
      "link set vxlan0 type vxlan remote 10.99.0.6",
    ]);
  });

  test("a default route that comes back (CNI, DHCP on eth0) is deleted; ours via vxlan0 is kept", () => {
    const i = input();
    const done = initOnce(freshPod(), i);
    done.routes4.push({ dst: "default", gateway: "198.18.0.1", dev: "eth0", metric: 100, flags: [] });
    expect(lines(done, i)).toEqual(["route del 0.0.0.0/0 via 198.18.0.1 dev eth0 metric 100"]);
  });

  test("vxlan0 with another VNI (or learning on, or another MAC) is recreated; a wrong MTU or a down link is fixed in place", () => {
    const i = input();
    const done = initOnce(freshPod(), i);
    const wrongVni = structuredClone(done);
    wrongVni.vxlan!.vni = 7;
    expect(lines(wrongVni, i).map((l) => l.split(" ").slice(0, 3).join(" "))).toEqual(["link del vxlan0", "link add vxlan0"]);
    const learning = structuredClone(done);
    learning.vxlan!.learning = true;
    expect(lines(learning, i)[0]).toBe("link del vxlan0");
    const mtu = structuredClone(done);
    mtu.vxlan!.mtu = 1500;
    mtu.vxlan!.up = false;
    expect(lines(mtu, i)).toEqual(["link set vxlan0 mtu 1450 up"]);
  });

  test("a different address on vxlan0 is removed before the new one is set, and the default route re-asserted", () => {
    const i = input();
    const done = initOnce(freshPod(), i);
    const c = planClientAddress(done, i.network, { local: "172.16.0.40", prefixlen: 24, lifetime: 600 });
    expect(c.map(formatChange)).toEqual([
      "addr del 172.16.0.23/24 dev vxlan0",
      "addr replace 172.16.0.40/24 dev vxlan0 valid_lft 600 preferred_lft 600",
      `route replace 0.0.0.0/0 via 172.16.0.1 dev vxlan0 proto ${ROUTE_PROTO}`,
    ]);
    const after = simulateChanges(done, c);
    expect(after.routes4.some((r) => r.dst === "default" && r.dev === "vxlan0")).toBe(true);
    expect(stateChanges(planClientAddress(after, i.network, { local: "172.16.0.40", prefixlen: 24, lifetime: 600 }))).toEqual([]);
  });

  test("an address that exists but expires is made permanent in static mode", () => {
    const i = input();
    const done = initOnce(freshPod(), i, { local: "172.16.0.5", prefixlen: 24, lifetime: 300 });
    const c = planClientAddress(done, i.network, { local: "172.16.0.5", prefixlen: 24, lifetime: "forever" });
    expect(c.map(formatChange)).toEqual(["addr replace 172.16.0.5/24 dev vxlan0 valid_lft forever preferred_lft forever"]);
  });

  test("a route of ours that duplicates a pin with another metric is removed", () => {
    const i = input();
    const done = initOnce(freshPod(), i);
    done.routes4.push({ dst: "10.0.0.0/8", gateway: "198.18.0.1", dev: "eth0", protocol: String(ROUTE_PROTO), metric: 5, flags: [] });
    expect(lines(done, i)).toEqual([`route del 10.0.0.0/8 via 198.18.0.1 dev eth0 proto ${ROUTE_PROTO} metric 5`]);
  });
});

// ------------------------------------------------------------ property: any order converges

const octet = fc.integer({ min: 1, max: 254 });
const cidr = fc.tuple(octet, octet, fc.integer({ min: 8, max: 32 })).map(([a, b, len]) => {
  const p = parsePrefix4(`${a}.${b}.0.0/${len}`)!;
  return `${formatIpv4(p.net)}/${len}`;
});
const config = fc.record({
  notRoutedCidrs: fc.array(cidr, { maxLength: 4 }),
  dnsServers: fc.array(fc.tuple(octet, octet).map(([a, b]) => `10.96.${a}.${b}`), { minLength: 1, maxLength: 2 }),
  gatewayPodIp: fc.oneof(fc.constant("198.18.0.2"), fc.tuple(octet, octet).map(([a, b]) => `10.244.${a}.${b}`)),
  kubernetesServiceHost: fc.option(fc.tuple(octet, octet).map(([a, b]) => `10.96.${a}.${b}`), { nil: undefined }),
  port: fc.constantFrom(0, 4789),
  vpnInterfaceMtu: fc.option(fc.integer({ min: 1280, max: 1500 }), { nil: undefined }),
});

function sortedState(f: ClientFacts): string {
  const routes = f.routes4.map((r) => `${r.dst} ${r.gateway ?? ""} ${r.dev} ${r.protocol ?? ""} ${r.metric ?? 0}`).sort();
  return JSON.stringify({ routes, v6: f.defaults6.length, vxlan: f.vxlan });
}

describe("property", () => {
  test("after applying any sequence of configurations, the last one's plan is empty and the state equals a fresh apply of it", () => {
    fc.assert(
      fc.property(fc.array(config, { minLength: 1, maxLength: 5 }), (configs) => {
        let state = freshPod();
        for (const c of configs) {
          const i = input(c);
          state = simulateChanges(state, planClientNetwork(state, i).changes);
          state = simulateChanges(state, planClientAddress(state, i.network, { local: "172.16.0.9", prefixlen: 24, lifetime: "forever" }));
          expect(planClientNetwork(state, i).changes).toEqual([]);
        }
        const last = input(configs.at(-1)!);
        let direct = simulateChanges(freshPod(), planClientNetwork(freshPod(), last).changes);
        direct = simulateChanges(direct, planClientAddress(direct, last.network, { local: "172.16.0.9", prefixlen: 24, lifetime: "forever" }));
        expect(sortedState(state)).toBe(sortedState(direct));
        // Every pinned destination that is not on-link goes via the original gateway on eth0.
        for (const r of state.routes4.filter((r) => r.protocol === String(ROUTE_PROTO) && r.dst !== "default")) {
          expect(r.gateway).toBe("198.18.0.1");
          expect(prefixContains(parsePrefix4("198.18.0.0/24")!, parsePrefix4(r.dst)!)).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });

  test("the simulator fails like the kernel: adding twice is an error", () => {
    const p = planClientNetwork(freshPod(), input());
    const once = simulateChanges(freshPod(), p.changes);
    expect(() => simulateChanges(once, p.changes)).toThrow(SimulationError);
  });
});
