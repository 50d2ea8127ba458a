// The probe's decision from a sidecar's status, the status parser, and the status socket itself.
import { describe, expect, test } from "bun:test";
import { createConnection } from "node:net";
import { decideHealth, parseStatus, type ClientStatus, type GatewayStatus } from "../../src/core/health.ts";
import { askStatus, serveStatus } from "../../src/sys/status-socket.ts";

const client: ClientStatus = { role: "client-sidecar", version: "v", tickAgeMs: 1000, intervalMs: 2000, gatewayAnswerAgeMs: 500, gatewayReachable: true, isolation: { ok: true, detail: "" } };
const gateway: GatewayStatus = { role: "gateway-sidecar", version: "v", tickAgeMs: 1000, intervalMs: 5000, dnsmasqRunning: true, firewallVerified: true, firewallDetail: "", dns: { ok: true, detail: "dnsmasq answered on 172.16.0.1:53 in 0.4 ms" } };

describe("decideHealth", () => {
  test("client liveness is the loop only, never the network", () => {
    expect(decideHealth({ ...client, gatewayAnswerAgeMs: undefined, isolation: { ok: false, detail: "leak" } }, "live")).toEqual({ ok: true, line: "client-sidecar liveness: ok: loop ticked 1.0 s ago (limit 6.0 s)" });
    expect(decideHealth({ ...client, tickAgeMs: 6001 }, "live")).toEqual({ ok: false, line: "client-sidecar liveness: NOT OK: loop stuck: last tick 6.0 s ago, limit 6.0 s" });
  });

  test("client readiness: a recent answer and isolation", () => {
    expect(decideHealth(client, "ready")).toEqual({ ok: true, line: "client-sidecar readiness: ok: loop ticked 1.0 s ago (limit 6.0 s), gateway answered 0.5 s ago, isolated" });
    expect(decideHealth({ ...client, gatewayAnswerAgeMs: 7000 }, "ready").line).toBe("client-sidecar readiness: NOT OK: the gateway last answered through the tunnel 7.0 s ago (limit 6.0 s)");
    expect(decideHealth({ ...client, gatewayAnswerAgeMs: undefined }, "ready").line).toContain("has not answered through the tunnel since start");
    expect(decideHealth({ ...client, gatewayReachable: false }, "ready").line).toBe("client-sidecar readiness: NOT OK: the gateway does not answer through the tunnel (last answer 0.5 s ago)");
    expect(decideHealth({ ...client, isolation: { ok: false, detail: "1.1.1.1 is reachable via 10.0.0.1 dev eth0" } }, "ready")).toEqual({
      ok: false,
      line: "client-sidecar readiness: NOT OK: not isolated: 1.1.1.1 is reachable via 10.0.0.1 dev eth0",
    });
    const { isolation: _, ...noIso } = client;
    expect(decideHealth(noIso, "ready").ok).toBe(false);
  });

  test("gateway: liveness is the loop and dnsmasq; readiness adds DNS on the overlay and the firewall, not the VPN link", () => {
    expect(decideHealth({ ...gateway, firewallVerified: false, dns: { ok: false, detail: "x" } }, "live").ok).toBe(true);
    expect(decideHealth({ ...gateway, dnsmasqRunning: false }, "live").line).toBe("gateway-sidecar liveness: NOT OK: dnsmasq is not running");
    expect(decideHealth(gateway, "ready")).toEqual({ ok: true, line: "gateway-sidecar readiness: ok: loop ticked 1.0 s ago (limit 15 s), dnsmasq running, firewall verified, dnsmasq answered on 172.16.0.1:53 in 0.4 ms" });
    expect(decideHealth({ ...gateway, firewallVerified: false, firewallDetail: "no jump" }, "ready").line).toBe("gateway-sidecar readiness: NOT OK: firewall not verified: no jump");
    expect(decideHealth({ ...gateway, firewallVerified: undefined }, "ready").line).toBe("gateway-sidecar readiness: NOT OK: firewall not verified yet");
    expect(decideHealth({ ...gateway, dns: { ok: false, detail: "timeout" } }, "ready").line).toBe("gateway-sidecar readiness: NOT OK: dnsmasq does not answer: timeout");
  });
});

describe("parseStatus", () => {
  test("accepts both roles, refuses garbage", () => {
    expect(parseStatus(JSON.stringify(client))).toEqual(client);
    expect(parseStatus(JSON.stringify(gateway))).toEqual(gateway);
    expect(() => parseStatus("nope")).toThrow("not JSON");
    expect(() => parseStatus("{}")).toThrow("no number tickAgeMs");
    expect(() => parseStatus(JSON.stringify({ ...client, role: "x" }))).toThrow("unknown role");
    expect(() => parseStatus(JSON.stringify({ ...gateway, dnsmasqRunning: "yes" }))).toThrow("dnsmasqRunning");
  });
});

describe("status socket (abstract, in this test's network namespace)", () => {
  test("answers the question asked; a second server is refused; nobody listening is ECONNREFUSED", async () => {
    const asked: string[] = [];
    // A name of this run's own: other test runs on the machine share the host's namespace.
    const name = `pod-gateway-test/${process.pid}/${Math.random().toString(36).slice(2)}`;
    const srv = await serveStatus(
      "gateway-sidecar",
      (q) => {
        asked.push(q);
        return { ...gateway, q };
      },
      { name },
    );
    try {
      const r = await askStatus("gateway-sidecar", "ready", 1000, name);
      expect(r.ok).toBe(true);
      expect(JSON.parse((r as { text: string }).text)).toMatchObject({ role: "gateway-sidecar", q: "ready" });
      expect(asked).toEqual(["ready"]);
      await expect(serveStatus("gateway-sidecar", () => ({}), { name })).rejects.toThrow();
      // A question that is not live or ready gets an error object, not a status.
      const bad = await new Promise<string>((resolve) => {
        let buf = "";
        const c = createConnection(`\0${name}`, () => c.write("status?\n"));
        c.on("data", (d) => (buf += d));
        c.on("end", () => resolve(buf));
      });
      expect(JSON.parse(bad)).toEqual({ error: 'unknown question "status?"' });
    } finally {
      srv.close();
    }
    const none = await askStatus("gateway-sidecar", "live", 1000, name);
    expect(none).toMatchObject({ ok: false, code: "ECONNREFUSED", error: "no gateway-sidecar serves @pod-gateway/gateway-sidecar in this network namespace" });
  });
});
