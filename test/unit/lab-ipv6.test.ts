// The lab's optional IPv6 (LabOptions.ipv6, issue 13 §6): off by default, so every other test's
// lab is unchanged; on, pods' eth0 are dual-stack with a default route via the node.
import { describe, expect, test } from "bun:test";
import { parseState, planPodConfig, planSysctls, podIp6, renderState, STATE_VERSION, type LabState } from "../../src/lab/plan.ts";
import { LAB6 } from "../../src/lab/types.ts";

const state: LabState = {
  version: STATE_VERSION, id: "ab12cd", clients: 2, vpnInterface: "tun0", gatewayGeneration: 0, vpnLink: "up",
  configDir: "/run/pod-gateway-lab/ab12cd/config", runDir: "/run/pod-gateway-lab/ab12cd", createdAt: "2026-01-01T00:00:00.000Z",
};
const lines = (s: LabState, pod: Parameters<typeof planPodConfig>[1]) => planPodConfig(s, pod).map((c) => c.join(" "));

describe("lab IPv6 option", () => {
  test("off (the default): no IPv6 address, route or sysctl anywhere", () => {
    for (const pod of ["node", "gateway", "client-0", "client-1", "leak", "internet", "vpn"] as const) {
      expect(lines(state, pod).join("\n")).not.toMatch(/fd00|::/);
      expect(planSysctls(pod).join(" ")).not.toContain("ipv6.conf.all.forwarding");
    }
  });

  test("on: pods get fd00:18::N (N as in 198.18.0.N) and a default via the node; the node routes and holds the service; the leak host counts the rest", () => {
    const s = { ...state, ipv6: true };
    expect(podIp6("198.18.0.2")).toBe("fd00:18::2");
    expect(lines(s, "gateway")).toEqual(expect.arrayContaining(["addr add fd00:18::2/64 dev eth0 nodad", "route add ::/0 via fd00:18::1 dev eth0"]));
    expect(lines({ ...s, gatewayGeneration: 8 }, "gateway")).toContain("addr add fd00:18::210/64 dev eth0 nodad"); // 198.18.0.210
    expect(lines(s, "client-1")).toEqual(expect.arrayContaining(["addr add fd00:18::11/64 dev eth0 nodad", "route add ::/0 via fd00:18::1 dev eth0"]));
    expect(lines(s, "node")).toEqual(expect.arrayContaining([
      `addr add ${LAB6.nodeIp}/64 dev br0 nodad`, `addr add ${LAB6.serviceIp}/128 dev lo`, `addr add ${LAB6.nodeLeakIp}/64 dev veth-leak nodad`, `route add ::/0 via ${LAB6.leakHostIp}`,
    ]));
    expect(lines(s, "leak")).toEqual(expect.arrayContaining([`addr add ${LAB6.leakHostIp}/64 dev eth0 nodad`, `route add ::/0 via ${LAB6.nodeLeakIp}`]));
    expect(planSysctls("node", true)).toContain("net.ipv6.conf.all.forwarding=1");
    expect(planSysctls("gateway", true).join(" ")).not.toContain("forwarding");
    // Addresses are added after the link is up in the node (br0 first), before any route that uses them.
    const node = lines(s, "node");
    expect(node.indexOf(`addr add ${LAB6.nodeLeakIp}/64 dev veth-leak nodad`)).toBeLessThan(node.indexOf(`route add ::/0 via ${LAB6.leakHostIp}`));
  });

  test("the state file keeps it; anything but a boolean is refused", () => {
    expect(parseState(renderState({ ...state, ipv6: true }), "state.json").ipv6).toBe(true);
    expect(parseState(renderState(state), "state.json").ipv6).toBeUndefined();
    expect(() => parseState(JSON.stringify({ ...state, ipv6: "yes" }), "state.json")).toThrow(/bad ipv6/);
  });
});
