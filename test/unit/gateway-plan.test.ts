// The gateway network planner against a stateful fake host: what a fresh pod needs, that a
// second plan is empty, that vxlan0 is re-created only when an immutable attribute differs,
// and that any sequence of configurations converges.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { GatewayPlanError, planGatewayNetwork, readClusterDnsRecord, summarizeGatewayNetwork, type GatewayNetSettings } from "../../src/core/gateway/plan.ts";
import { killSwitchInput, planKillSwitch, routingFactsAfter } from "../../src/core/gateway/killswitch.ts";
import { gatewayMac } from "../../src/core/net/vxlan.ts";
import { FakeHost } from "../fixtures/gateway/fake-host.ts";
import { formatChange, formatChangeWords } from "../../src/core/net/change.ts";
import { testSettings } from "../helpers/settings.ts";

const base: GatewayNetSettings = testSettings({ VPN_LOCAL_CIDRS: ["10.0.0.0/8", "192.168.0.0/16"] });

const facts = (h: FakeHost) => ({
  links: structuredClone(h.links),
  routes: structuredClone(h.routes.filter((r) => r.table === undefined)),
  allRoutes: structuredClone(h.routes),
  rules: structuredClone(h.rules),
});

/** Plan and apply until nothing is left; returns the number of rounds that changed something. */
function converge(h: FakeHost, s: GatewayNetSettings): number {
  for (let round = 0; round < 3; round++) {
    const p = planGatewayNetwork(s, facts(h));
    if (p.actions.length === 0) return round;
    for (const a of p.actions) {
      const err = h.applyChange(a);
      if (err) throw new Error(`${formatChange(a)}: ${err}`);
    }
  }
  throw new Error("did not converge in 3 rounds");
}

describe("planGatewayNetwork", () => {
  test("a fresh pod: create vxlan0 with VNI, port, stable MAC and MTU; address; up; rule; local routes", () => {
    const p = planGatewayNetwork(base, facts(FakeHost.pod()));
    expect(p.actions.map((a) => formatChange(a))).toEqual([
      `link add vxlan0 address ${gatewayMac(42)} mtu 1450 type vxlan id 42 dev eth0 dstport 8472`,
      "addr replace 172.16.0.1/24 dev vxlan0 valid_lft forever preferred_lft forever",
      "link set vxlan0 up",
      "rule add pref 50 lookup main suppress_prefixlength 0",
      "route replace 10.0.0.0/8 via 198.18.0.1 dev eth0 proto 201",
      "route replace 192.168.0.0/16 via 198.18.0.1 dev eth0 proto 201",
    ]);
    expect(p.defaultGateway).toBe("198.18.0.1");
    expect(summarizeGatewayNetwork(p)).toEqual([
      `vxlan0: VNI 42, port 8472, MAC ${gatewayMac(42)}, MTU 1450 (eth0 MTU 1500 - 50), 172.16.0.1/24`,
      "policy rule: from all lookup main suppress_prefixlength 0 pref 50",
      "routes: 10.0.0.0/8 via 198.18.0.1 dev eth0, 192.168.0.0/16 via 198.18.0.1 dev eth0",
    ]);
  });

  test("applied once, the second plan is empty (the fake keeps state like the kernel)", () => {
    const h = FakeHost.pod();
    expect(converge(h, base)).toBe(1);
    expect(planGatewayNetwork(base, facts(h)).actions).toEqual([]);
    expect(h.print()).toContain(`link vxlan0 vxlan id 42 dev eth0 port 8472 mac ${gatewayMac(42)} mtu 1450 up addr 172.16.0.1/24`);
  });

  test("MTU: eth0 - 50, bounded by VPN_INTERFACE_MTU; a changed MTU is set in place (vxlan0 not re-created)", () => {
    const h = FakeHost.pod({ mtu: 9001 });
    converge(h, base);
    const index = h.link("vxlan0")!.ifindex;
    expect(h.link("vxlan0")!.mtu).toBe(8951);
    const p = planGatewayNetwork({ ...base, VPN_INTERFACE_MTU: 1380 }, facts(h));
    expect(p.actions.map((a) => formatChange(a))).toEqual(["link set vxlan0 mtu 1380"]);
    expect(p.vxlan.mtuWhy).toBe("VPN_INTERFACE_MTU 1380 < eth0 MTU 9001 - 50");
    converge(h, { ...base, VPN_INTERFACE_MTU: 1380 });
    expect(h.link("vxlan0")!.ifindex).toBe(index);
    // A VPN MTU above eth0 - 50 does not raise it.
    expect(planGatewayNetwork({ ...base, VPN_INTERFACE_MTU: 9500 }, facts(h)).vxlan.mtu).toBe(8951);
  });

  test("a vxlan0 with another VNI, port, lower device or MAC is deleted and re-created", () => {
    for (const [what, change] of [
      ["VNI", { VXLAN_ID: 43 }],
      ["port", { VXLAN_PORT: 4789 }],
    ] as const) {
      const h = FakeHost.pod();
      converge(h, base);
      const p = planGatewayNetwork({ ...base, ...change }, facts(h));
      expect(formatChangeWords(p.actions[0]!)).toEqual(["link", "del", "vxlan0"]);
      expect(p.actions[0]!.why).toContain(what);
      expect(formatChangeWords(p.actions[1]!).slice(0, 3)).toEqual(["link", "add", "vxlan0"]);
    }
    const h = FakeHost.pod();
    converge(h, base);
    h.link("vxlan0")!.address = "02:00:00:00:00:01";
    expect(planGatewayNetwork(base, facts(h)).actions[0]!.why).toBe(`existing vxlan0 does not match (MAC 02:00:00:00:00:01, want ${gatewayMac(42)})`);
    const other = FakeHost.pod();
    other.addLink({ ifname: "vxlan0", linkinfo: { info_kind: "veth" } });
    expect(planGatewayNetwork(base, facts(other)).actions[0]!.why).toContain("kind veth, not vxlan");
  });

  test("stale overlay addresses are removed, a down vxlan0 is brought up", () => {
    const h = FakeHost.pod();
    converge(h, { ...base, VXLAN_IP_NETWORK: "172.17.0" });
    h.link("vxlan0")!.flags = ["BROADCAST"];
    const p = planGatewayNetwork(base, facts(h));
    expect(p.actions.map((a) => formatChange(a))).toEqual([
      "addr del 172.17.0.1/24 dev vxlan0",
      "addr replace 172.16.0.1/24 dev vxlan0 valid_lft forever preferred_lft forever",
      "link set vxlan0 up",
    ]);
  });

  test("the policy rule exactly once: duplicates left by someone else are deleted", () => {
    const h = FakeHost.pod();
    converge(h, base);
    const r = h.rules.find((x) => x.priority === 50)!;
    h.rules.push(structuredClone(r), structuredClone(r));
    expect(planGatewayNetwork(base, facts(h)).actions.map((a) => formatChange(a))).toEqual([
      "rule del pref 50 lookup main suppress_prefixlength 0",
      "rule del pref 50 lookup main suppress_prefixlength 0",
    ]);
    // A different rule at preference 50 is not ours and is left alone.
    const g = FakeHost.pod();
    g.rules.push({ priority: 50, src: "10.0.0.0/8", table: "main" });
    expect(planGatewayNetwork(base, facts(g)).actions.filter((a) => formatChangeWords(a)[0] === "rule").map((a) => formatChangeWords(a)[1])).toEqual(["add"]);
  });

  test("local routes: only with a VPN interface; a wrong next hop is replaced; IPv6 CIDRs left to planLocalRoutes6 (no ip action, no warning here)", () => {
    expect(planGatewayNetwork({ ...base, VPN_INTERFACE: "" }, facts(FakeHost.pod())).actions.some((a) => formatChangeWords(a)[0] === "route")).toBe(false);
    const h = FakeHost.pod();
    h.routes.push({ dst: "10.0.0.0/8", gateway: "198.18.0.99", dev: "eth0" });
    const p = planGatewayNetwork({ ...base, VPN_LOCAL_CIDRS: ["10.0.0.0/8", "fd00::/8", "192.168.7.9/16"] }, facts(h));
    expect(p.actions.filter((a) => formatChangeWords(a)[0] === "route").map((a) => formatChange(a))).toEqual([
      "route replace 10.0.0.0/8 via 198.18.0.1 dev eth0 proto 201",
      "route replace 192.168.0.0/16 via 198.18.0.1 dev eth0 proto 201",
    ]);
    expect(p.warnings).toEqual([]);
    expect(p.localRoutes.map((r) => r.dst)).toEqual(["10.0.0.0/8", "192.168.0.0/16"]);
  });

  test("a re-run after a VPN client replaced the default route finds the gateway in our earlier routes", () => {
    const h = FakeHost.pod();
    converge(h, base);
    h.routes = h.routes.filter((r) => r.dst !== "default");
    h.routes.push({ dst: "default", dev: "tun0" });
    expect(planGatewayNetwork(base, facts(h)).actions).toEqual([]);
  });

  test("impossible facts are errors naming what is missing", () => {
    expect(() => planGatewayNetwork(base, { links: [], routes: [], allRoutes: [], rules: [] })).toThrow(GatewayPlanError);
    expect(() => planGatewayNetwork(base, { links: [], routes: [], allRoutes: [], rules: [] })).toThrow("eth0 not found");
    expect(() => planGatewayNetwork(base, facts(FakeHost.pod({ gateway: "" })))).toThrow(
      "no default route via eth0: cannot route VPN_LOCAL_CIDRS (10.0.0.0/8 192.168.0.0/16) via the pod's own gateway",
    );
    // Without local CIDRs no default gateway is needed.
    expect(planGatewayNetwork({ ...base, VPN_LOCAL_CIDRS: [] }, facts(FakeHost.pod({ gateway: "" }))).actions).toHaveLength(4);
  });
});

describe("the cluster DNS recorded in the kernel (for a sidecar restarted with a fresh filesystem)", () => {
  test("recorded as a host route on eth0 with protocol 202; a new one replaces it; unknown keeps it", () => {
    const h = FakeHost.pod();
    const apply = (clusterDns?: string) => {
      for (const a of planGatewayNetwork(base, facts(h), { clusterDns }).actions) expect(h.applyChange(a)).toBeUndefined();
    };
    apply("10.96.0.10");
    expect(h.print()).toContain("route 10.96.0.10 via 198.18.0.1 dev eth0 proto 202");
    expect(readClusterDnsRecord(facts(h).routes)).toBe("10.96.0.10");
    expect(planGatewayNetwork(base, facts(h), { clusterDns: "10.96.0.10" }).actions).toEqual([]);
    apply(undefined);
    expect(readClusterDnsRecord(facts(h).routes)).toBe("10.96.0.10");
    apply("10.43.0.10");
    expect(readClusterDnsRecord(facts(h).routes)).toBe("10.43.0.10");
    expect(h.print()).not.toContain("10.96.0.10");
    // After a VPN client replaced the default route, the record still tells eth0's gateway.
    h.routes = h.routes.filter((r) => !(r.dst === "default" || (r.protocol === "201")));
    expect(planGatewayNetwork(base, facts(h), { clusterDns: "10.43.0.10" }).defaultGateway).toBe("198.18.0.1");
  });
});

describe("property: any sequence of configurations converges in one round each, and re-planning is empty", () => {
  const settings = fc.record({
    VXLAN_ID: fc.constantFrom(1, 42, 16777215),
    VXLAN_PORT: fc.constantFrom(0, 4789, 8472),
    VXLAN_IP_NETWORK: fc.constantFrom("172.16.0", "10.250.1"),
    VPN_INTERFACE: fc.constantFrom("", "tun0"),
    VPN_INTERFACE_MTU: fc.constantFrom(undefined, 1280, 1420, 9000),
    VPN_LOCAL_CIDRS: fc.subarray(["10.0.0.0/8", "192.168.0.0/16", "172.20.0.0/14"]),
  });
  test("holds", () => {
    fc.assert(
      fc.property(fc.array(settings, { minLength: 1, maxLength: 5 }), fc.constantFrom(1500, 9001, 1450), (seq, mtu) => {
        const h = FakeHost.pod({ mtu });
        for (const s of seq) {
          expect(converge(h, s)).toBeLessThanOrEqual(1);
          const st = planGatewayNetwork(s, facts(h));
          expect(st.actions).toEqual([]);
          expect(h.rules.filter((r) => r.priority === 50)).toHaveLength(1);
          expect(h.link("vxlan0")!.address).toBe(gatewayMac(s.VXLAN_ID));
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe("property: nothing stale — after any sequence of configurations the state is exactly a fresh pod's with the last one", () => {
  const settings = fc.record({
    VXLAN_ID: fc.constantFrom(1, 42),
    VXLAN_PORT: fc.constantFrom(0, 4789),
    VXLAN_IP_NETWORK: fc.constantFrom("172.16.0", "10.250.1"),
    VPN_INTERFACE: fc.constantFrom("", "tun0", "wg0"),
    VPN_BLOCK_OTHER_TRAFFIC: fc.boolean(),
    VPN_INTERFACE_MTU: fc.constantFrom(undefined, 1280),
    VPN_LOCAL_CIDRS: fc.subarray(["10.0.0.0/8", "192.168.0.0/16", "172.20.0.0/14"]),
  });
  const dns = fc.subarray(["10.64.0.1", "1.1.1.1"]);
  /** A pod whose VPN container made tun0 (def1 routes) and wg0 (a default in its own table). */
  function pod(): FakeHost {
    const h = FakeHost.pod();
    h.addLink({ ifname: "tun0", flags: ["UP"] });
    h.addLink({ ifname: "wg0", flags: ["UP"] });
    h.routes.push({ dst: "0.0.0.0/1", gateway: "10.8.0.1", dev: "tun0" }, { dst: "default", dev: "wg0", table: "51820" });
    return h;
  }
  /** gateway-init's two planners (network, then the routing layer) applied until nothing is left. */
  function apply(h: FakeHost, s: GatewayNetSettings & { VPN_BLOCK_OTHER_TRAFFIC: boolean }, upstreams: string[]): void {
    for (let round = 0; round < 3; round++) {
      const net = planGatewayNetwork(s, facts(h));
      const ks = planKillSwitch(killSwitchInput(s, net.localRoutes, upstreams), routingFactsAfter(net, facts(h)));
      const actions = [...net.actions, ...ks.actions];
      if (actions.length === 0) return;
      for (const a of actions) {
        const err = h.applyChange(a);
        if (err) throw new Error(`${formatChange(a)}: ${err}`);
      }
    }
    throw new Error("did not converge in 3 rounds");
  }
  const state = (h: FakeHost) => h.print().split("\n").sort().join("\n");
  test("holds", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(settings, dns), { minLength: 1, maxLength: 5 }), (seq) => {
        const h = pod();
        for (const [s, up] of seq) apply(h, s, up);
        const [last, lastDns] = seq.at(-1)!;
        // The one piece of history kept on purpose: a former DNS upstream inside VPN_LOCAL_CIDRS
        // stays pinned (something may still send to it). A fresh pod that had it as an upstream
        // before has the same state.
        const net = planGatewayNetwork(last, facts(h));
        const former = planKillSwitch(killSwitchInput(last, net.localRoutes, lastDns), facts(h)).formerDns;
        for (const a of former) {
          expect(seq.some(([, up]) => up.includes(a)) && !lastDns.includes(a)).toBe(true);
          expect(last.VPN_BLOCK_OTHER_TRAFFIC && last.VPN_LOCAL_CIDRS.includes("10.0.0.0/8") && a === "10.64.0.1").toBe(true);
        }
        const fresh = pod();
        if (former.length) apply(fresh, last, [...lastDns, ...former]);
        apply(fresh, last, lastDns);
        expect(state(h)).toBe(state(fresh));
      }),
      { numRuns: 200 },
    );
  });
});
