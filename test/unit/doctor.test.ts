// The doctor's pure verdicts and rendering.
import { describe, expect, test } from "bun:test";
import type { VxlanFact } from "../../src/core/client/facts.ts";
import { decideIsolation } from "../../src/core/client/isolation.ts";
import { checkClientVxlan, checkForwarding, checkIsolation, checkLease, checkReadiness, checkRoute, detectRole, fail, pass, renderDoctor, renderDoctorJson, checkRecentDrops, checkRoutingLayer, RECENT_DROPS_MS } from "../../src/core/doctor.ts";

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

describe("gateway checks", () => {
  test("kill switch routing: off, proven, closed (failed closed by the sidecar), changed by someone else, unreadable", () => {
    const summary = "kill switch routing layer: iif vxlan0 lookup 4201 (pref 45): 2 tun0 route(s) copied, unreachable otherwise";
    expect(checkRoutingLayer({ enabled: false, summary: "off", open: ["x"], closed: [] })).toMatchObject({ ok: true, detail: expect.stringContaining("off") });
    expect(checkRoutingLayer({ enabled: true, summary, open: [], closed: ["stale copy"] })).toEqual({ name: "kill switch routing", ok: true, detail: summary });
    const closed = checkRoutingLayer({ enabled: true, summary, open: ["copy 0.0.0.0/1 via 10.8.0.1 dev tun0"], closed: [] });
    expect(closed.ok).toBe(false);
    expect(closed.detail).toStartWith("closed: ");
    expect(closed.cause).toContain("failed closed");
    const changed = checkRoutingLayer({ enabled: true, summary, open: ["rule iif vxlan0 lookup 4201 missing"], closed: ["rule iif vxlan0 lookup 4201 missing"] });
    expect(changed).toMatchObject({ ok: false, detail: "rule iif vxlan0 lookup 4201 missing" });
    expect(changed.cause).toContain("another process");
    expect(checkRoutingLayer({ error: "EPERM" })).toMatchObject({ ok: false, detail: "reading routes and rules over netlink: EPERM" });
  });

  test("kill switch drops: recent reports shown; the VPN-port hint while the VPN link is not up fails; old ones only counted", () => {
    const hint = "the kill switch dropped 3 packets to 203.0.113.5 udp/51820 on eth0 — if that is your VPN server, add 51820 to VPN_TRAFFIC_PORT";
    expect(checkRecentDrops(undefined, false, undefined)).toMatchObject({ ok: true, detail: "the kill switch is off" });
    expect(checkRecentDrops(undefined, true, true).ok).toBe(true);
    expect(checkRecentDrops({ packets: 0 }, true, true).detail).toBe("0 packet(s) logged since the sidecar started; none reported in the last 10 min");
    const down = checkRecentDrops({ packets: 7, last: { text: hint, ageMs: 12_000 } }, true, false);
    expect(down).toMatchObject({ ok: false, detail: `12 s ago: ${hint}` });
    expect(down.fix).toContain("VPN_TRAFFIC_PORT");
    expect(checkRecentDrops({ packets: 7, last: { text: hint, ageMs: 12_000 } }, true, undefined).ok).toBe(false); // no VPN link at all
    // The VPN up: the report is shown, not failed (the tunnel works, so the port is right).
    expect(checkRecentDrops({ packets: 7, last: { text: hint, ageMs: 12_000 } }, true, true)).toMatchObject({ ok: true, detail: expect.stringContaining(hint) });
    // ICMP only: no hint, never a failure.
    expect(checkRecentDrops({ packets: 1, last: { text: "the kill switch dropped 1 packet to 198.51.100.1 icmp on eth0", ageMs: 1000 } }, true, false).ok).toBe(true);
    expect(checkRecentDrops({ packets: 7, last: { text: hint, ageMs: RECENT_DROPS_MS + 1 } }, true, false)).toMatchObject({ ok: true, detail: expect.stringContaining("none reported in the last") });
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
