// The doctor's pure verdicts and rendering.
import { describe, expect, test } from "bun:test";
import type { VxlanFact } from "../../src/core/client/facts.ts";
import { decideIsolation } from "../../src/core/client/isolation.ts";
import { checkClientVxlan, checkForwarding, checkIsolation, checkLease, checkReadiness, checkRoute, detectRole, fail, pass, renderDoctor, renderDoctorJson } from "../../src/core/doctor.ts";

const vx = (over: Partial<VxlanFact> = {}): VxlanFact => ({
  kind: "vxlan",
  mac: "02:00:00:00:00:01",
  mtu: 1450,
  up: true,
  vni: 42,
  port: 8472,
  dev: "eth0",
  remote: "10.0.0.5",
  learning: false,
  addresses: [{ local: "172.16.0.21", prefixlen: 24, validLft: 100, preferredLft: 100 }],
  ...over,
});

describe("detectRole", () => {
  test("a sidecar first, then the tunnel's shape, then the VPN interface", () => {
    const none = { clientSidecar: false, gatewaySidecar: false, vxlan: undefined, vpnInterface: false } as const;
    expect(detectRole({ ...none, gatewaySidecar: true, vxlan: "client" }).role).toBe("gateway");
    expect(detectRole({ ...none, clientSidecar: true }).role).toBe("client");
    expect(detectRole({ ...none, vxlan: "client", vpnInterface: true }).role).toBe("client");
    expect(detectRole({ ...none, vxlan: "gateway" }).role).toBe("gateway");
    expect(detectRole({ ...none, vpnInterface: true }).role).toBe("gateway");
    expect(detectRole(none)).toEqual({ role: undefined, why: "no sidecar answers, no vxlan0 and no VPN interface" });
  });
});

describe("client checks", () => {
  test("vxlan0: missing, down, no address, wrong remote, fine", () => {
    expect(checkClientVxlan(undefined, "172.16.0", undefined)).toMatchObject({ ok: false, detail: "vxlan0 does not exist" });
    expect(checkClientVxlan(vx({ up: false }), "172.16.0", undefined).detail).toBe("vxlan0 is down");
    expect(checkClientVxlan(vx(), "172.17.0", undefined).detail).toBe("vxlan0 has no address in 172.17.0.0/24");
    expect(checkClientVxlan(vx(), "172.16.0", "10.0.0.9")).toMatchObject({ ok: false, detail: "vxlan0's remote is 10.0.0.5 but the gateway pod is 10.0.0.9" });
    expect(checkClientVxlan(vx(), "172.16.0", "10.0.0.5")).toEqual({ name: "vxlan0", ok: true, detail: "up, 172.16.0.21/24, remote 10.0.0.5, VNI 42, MTU 1450" });
  });

  test("routes: the cluster on eth0, the internet through the tunnel; errno names", () => {
    expect(checkRoute("r", "cluster DNS", { dst: "10.96.0.10", ok: true, dev: "eth0", gateway: "10.0.0.1" }, "eth0")).toEqual(pass("r", "cluster DNS 10.96.0.10: via 10.0.0.1 dev eth0"));
    const leak = checkRoute("r", "cluster DNS", { dst: "10.96.0.10", ok: true, dev: "vxlan0", gateway: "172.16.0.1" }, "eth0");
    expect(leak.detail).toBe("cluster DNS 10.96.0.10: via 172.16.0.1 dev vxlan0, expected dev eth0");
    expect(leak.fix).toContain("NOT_ROUTED_TO_GATEWAY_CIDRS");
    expect(checkRoute("r", "internet address", { dst: "1.1.1.1", ok: false, errno: 101, message: "x" }, "vxlan0")).toMatchObject({ ok: false, detail: "internet address 1.1.1.1: no route (ENETUNREACH)" });
    expect(checkRoute("r", "internet address", { dst: "1.1.1.1", ok: true, dev: "eth0" }, "vxlan0").cause).toContain("leads around the tunnel");
  });

  test("isolation: the verdict readiness uses (every lookup), and the sidecar's own readiness line", () => {
    const good = checkIsolation(decideIsolation([{ dst: "1.1.1.1", ok: true, dev: "vxlan0", gateway: "172.16.0.1" }, { dst: "2606:4700:4700::1111", ok: false, errno: 101, message: "x" }]));
    expect(good).toEqual(pass("isolation", "no route around the tunnel (2 lookups: 1.1.1.1: through the tunnel (via 172.16.0.1 dev vxlan0); 2606:4700:4700::1111: no route (ENETUNREACH))"));
    // The second address only: a split route the first lookup does not see.
    const bad = checkIsolation(decideIsolation([{ dst: "1.1.1.1", ok: true, dev: "vxlan0" }, { dst: "208.67.222.222", ok: true, dev: "eth0", gateway: "198.18.0.1" }]));
    expect(bad).toMatchObject({ ok: false, detail: "208.67.222.222 is reachable via 198.18.0.1 dev eth0" });
    expect(bad.cause).toContain("not ready");
    expect(checkReadiness({ ok: true, line: "client-sidecar readiness: ok: x" })).toEqual(pass("readiness", "client-sidecar readiness: ok: x"));
    expect(checkReadiness({ ok: false, line: "client-sidecar readiness: NOT OK: not isolated: y" })).toMatchObject({ ok: false, detail: "client-sidecar readiness: NOT OK: not isolated: y" });
    expect(checkReadiness({ error: "timed out" })).toMatchObject({ ok: false, name: "readiness", detail: "timed out" });
  });

  test("lease: expiring, infinite, expired", () => {
    expect(checkLease(vx(), "172.16.0", 1000).detail).toBe("172.16.0.21: expires in 100 s (at 1970-01-01T00:18:20.000Z)");
    expect(checkLease(vx({ addresses: [{ local: "172.16.0.5", prefixlen: 24, validLft: Infinity, preferredLft: Infinity }] }), "172.16.0", 0).detail).toBe("172.16.0.5: static or infinite (no expiry)");
    expect(checkLease(vx({ addresses: [{ local: "172.16.0.5", prefixlen: 24, validLft: 0, preferredLft: 0 }] }), "172.16.0", 0).ok).toBe(false);
  });

  test("forwarding", () => {
    expect(checkForwarding("1").ok).toBe(true);
    expect(checkForwarding("0").detail).toBe("net.ipv4.ip_forward = 0");
    expect(checkForwarding(undefined).detail).toBe("net.ipv4.ip_forward = unreadable");
  });
});

describe("rendering", () => {
  const checks = [pass("a", "fine"), fail("b", "broken", "because", "do this")];
  test("one line per check; cause and fix under a failed one; a total", () => {
    expect(renderDoctor("client", checks)).toEqual(["pod-gateway doctor: client", "✓ a: fine", "✗ b: broken", "    cause: because", "    fix:   do this", "1 of 2 checks failed"]);
    expect(renderDoctor("client", [checks[0]!]).at(-1)).toBe("all 1 checks passed");
  });
  test("JSON", () => {
    expect(JSON.parse(renderDoctorJson(undefined, "why", checks))).toEqual({ role: null, detectedBy: "why", ok: false, checks });
  });
});
