// Overlay facts shared by both roles. The MAC goldens pin the derivation: a MAC that changed
// between versions would break every client's ARP cache and every DHCP lease on upgrade.
import { describe, expect, test } from "bun:test";
import { clientMac, effectiveVxlanPort, gatewayMac, planVxlanMtu, stableMac } from "../../src/core/net/vxlan.ts";

describe("stable MACs", () => {
  test("goldens (computed with SHA-256 by an independent implementation: never change them)", () => {
    expect(gatewayMac(42)).toBe(stableMac("pod-gateway/gateway/vni=42"));
    expect(clientMac("web-0", 42)).toBe(stableMac("pod-gateway/client/web-0/vni=42"));
    expect([gatewayMac(42), clientMac("web-0", 42), clientMac("transmission-7d9f8b6c4d-x2x4z", 4242)]).toEqual(GOLDEN);
  });
  test("locally administered unicast, distinct per pod and per VNI", () => {
    for (const m of [gatewayMac(1), clientMac("a", 1), clientMac("b", 1), clientMac("a", 2)]) {
      const first = parseInt(m.slice(0, 2), 16);
      expect(first & 0x01).toBe(0);
      expect(first & 0x02).toBe(2);
      expect(m).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    }
    expect(new Set([clientMac("a", 1), clientMac("b", 1), clientMac("a", 2), gatewayMac(1)]).size).toBe(4);
  });
});

describe("MTU rule", () => {
  test("eth0 - 50, capped by VPN_INTERFACE_MTU only when lower", () => {
    expect(planVxlanMtu(1500, undefined).mtu).toBe(1450);
    expect(planVxlanMtu(1500, 1420).mtu).toBe(1420);
    expect(planVxlanMtu(1500, 1480).mtu).toBe(1450);
    expect(planVxlanMtu(9001, undefined).mtu).toBe(8951);
  });
  test("DHCP option 26 lowers it when at least 576; a smaller value is ignored and said so", () => {
    expect(planVxlanMtu(1500, undefined, 1300)).toEqual({ mtu: 1300, why: "the gateway's DHCP option 26 MTU 1300 < eth0 MTU 1500 - 50" });
    expect(planVxlanMtu(1500, 1400, 1300).mtu).toBe(1300);
    expect(planVxlanMtu(1500, 1200, 1300).mtu).toBe(1200);
    expect(planVxlanMtu(1500, undefined, 1500).mtu).toBe(1450);
    expect(planVxlanMtu(1500, undefined, 576).mtu).toBe(576);
    const low = planVxlanMtu(1500, undefined, 575);
    expect(low.mtu).toBe(1450);
    expect(low.why).toContain("DHCP option 26 MTU 575 ignored (below 576)");
    expect(planVxlanMtu(1500, 1420).why).toBe("VPN_INTERFACE_MTU 1420 < eth0 MTU 1500 - 50");
  });
  test("port 0 means the kernel default 8472", () => {
    expect(effectiveVxlanPort(0)).toBe(8472);
    expect(effectiveVxlanPort(4789)).toBe(4789);
  });
});

const GOLDEN = ["4e:ce:6e:57:67:01", "66:f6:a9:fb:6c:e1", "32:d9:6b:e2:ba:da"];
