// The metrics registry and its text exposition; the client and gateway monitors built on it.
import { describe, expect, test } from "bun:test";
import { decideHealth } from "../../src/core/health.ts";
import { newDuplicateState, planDuplicateReports } from "../../src/core/gateway/duplicates.ts";
import { createLogger } from "../../src/sys/log.ts";
import { ClientMonitor } from "../../src/core/metrics/client.ts";
import { dhcpPoolSize, DROP_PROTOCOLS, dropProtocol, GatewayMonitor, parseDnsmasqLeases } from "../../src/core/metrics/gateway.ts";
import { escapeHelp, escapeLabelValue, formatValue, MetricsRegistry } from "../../src/core/metrics/registry.ts";

describe("registry", () => {
  test("renders counters, gauges and a histogram in the text format", () => {
    const r = new MetricsRegistry();
    const c = r.counter("pod_gateway_x_total", "Things.\nSecond line \\ here.", ["kind"]);
    const g = r.gauge("pod_gateway_up", "Up.");
    const h = r.histogram("pod_gateway_rtt_seconds", "RTT.", [0.001, 0.01]);
    c.inc(1, { kind: 'a"b\\c\nd' });
    c.inc(2, { kind: "plain" });
    g.set(1);
    h.observe(0.0005);
    h.observe(0.005);
    h.observe(1);
    expect(r.render()).toBe(
      [
        "# HELP pod_gateway_x_total Things.\\nSecond line \\\\ here.",
        "# TYPE pod_gateway_x_total counter",
        'pod_gateway_x_total{kind="a\\"b\\\\c\\nd"} 1',
        'pod_gateway_x_total{kind="plain"} 2',
        "# HELP pod_gateway_up Up.",
        "# TYPE pod_gateway_up gauge",
        "pod_gateway_up 1",
        "# HELP pod_gateway_rtt_seconds RTT.",
        "# TYPE pod_gateway_rtt_seconds histogram",
        'pod_gateway_rtt_seconds_bucket{le="0.001"} 1',
        'pod_gateway_rtt_seconds_bucket{le="0.01"} 2',
        'pod_gateway_rtt_seconds_bucket{le="+Inf"} 3',
        "pod_gateway_rtt_seconds_sum 1.0055",
        "pod_gateway_rtt_seconds_count 3",
        "",
      ].join("\n"),
    );
  });

  test("refuses bad names, counters without _total, wrong labels and decreasing counters", () => {
    const r = new MetricsRegistry();
    expect(() => r.gauge("bad-name", "x")).toThrow("not valid");
    expect(() => r.counter("pod_gateway_things", "x")).toThrow("_total");
    expect(() => r.gauge("pod_gateway_l", "x", ["le"])).toThrow("label name");
    const g = r.gauge("pod_gateway_g", "x", ["a"]);
    expect(() => g.set(1, { b: "1" })).toThrow("takes labels a");
    const c = r.counter("pod_gateway_c_total", "x");
    expect(() => c.inc(-1)).toThrow("only goes up");
    expect(() => r.gauge("pod_gateway_g", "again")).toThrow("twice");
    expect(() => r.histogram("pod_gateway_h", "x", [1, 1])).toThrow("ascend");
  });

  test("one escaping function per context", () => {
    expect(escapeLabelValue('\\"\n')).toBe('\\\\\\"\\n');
    expect(escapeHelp('"\\\n')).toBe('"\\\\\\n');
    expect([formatValue(Infinity), formatValue(-Infinity), formatValue(NaN), formatValue(3), formatValue(0.25)]).toEqual(["+Inf", "-Inf", "NaN", "3", "0.25"]);
  });
});

describe("client monitor", () => {
  const cfg = { intervalMs: 2000, retryCount: 2, version: "1.2.3", commit: "abc" };
  const stats = { heals: 0, reinits: 0, renewals: 0, failedRenewals: 0, recoveries: 0 };

  test("reachable follows the probes (unreachable after CONNECTION_RETRY_COUNT failures); recoveries are the machine's count", () => {
    const m = new ClientMonitor(cfg, 0);
    m.probe(1000, true, 0.4);
    expect(m.registry!.render()).toContain("pod_gateway_client_gateway_reachable 1\n");
    m.probe(3000, false, undefined); // one failure: below CONNECTION_RETRY_COUNT
    expect(m.registry!.render()).toContain("pod_gateway_client_gateway_reachable 1\n");
    m.probe(5000, false, undefined);
    m.probe(7000, false, undefined);
    expect(m.registry!.render()).toContain("pod_gateway_client_gateway_reachable 0\n");
    expect(m.status(7000, "v").gatewayReachable).toBe(false);
    m.probe(9000, true, 0.3);
    m.turn(9000, { ...stats, recoveries: 1, watchGoodbyes: 2 }, undefined);
    const text = m.registry!.render();
    expect(text).toContain("pod_gateway_client_watch_goodbyes_total 2\n");
    expect(text).toContain("pod_gateway_client_gateway_reachable 1\n");
    expect(text).toContain("pod_gateway_client_recoveries_total 1\n");
    expect(text).toContain('pod_gateway_client_probes_total{result="failed"} 3\n');
    expect(text).toContain('pod_gateway_client_probe_rtt_seconds_bucket{le="0.0005"} 2\n');
    expect(text).toContain("pod_gateway_client_gateway_last_answer_timestamp_seconds 9\n");
    expect(text).toContain('pod_gateway_build_info{commit="abc",role="client-sidecar",version="1.2.3"} 1\n');
  });

  test("metrics off: no registry, the same status", () => {
    const m = new ClientMonitor({ ...cfg, metrics: false }, 0);
    expect(m.registry).toBeUndefined();
    m.probe(1000, true, 0.4);
    m.probe(3000, false, undefined);
    m.probe(5000, false, undefined);
    expect(m.status(5000, "v").gatewayReachable).toBe(false);
    m.probe(7000, true, 0.4);
    m.turn(8000, stats, undefined);
    expect(m.status(9000, "v")).toEqual({ role: "client-sidecar", version: "v", tickAgeMs: 1000, intervalMs: 2000, gatewayAnswerAgeMs: 2000, gatewayReachable: true });
  });

  test("an answer seen by the readiness check before the first probe: reachable, no probe counted, once", () => {
    const m = new ClientMonitor(cfg, 0);
    expect(m.answeredSinceStart).toBe(false);
    m.answered(500);
    expect(m.answeredSinceStart).toBe(true);
    expect(m.status(1000, "v")).toMatchObject({ gatewayAnswerAgeMs: 500, gatewayReachable: true });
    const text = m.registry!.render();
    expect(text).toContain("pod_gateway_client_gateway_reachable 1\n");
    expect(text).toContain('pod_gateway_client_probes_total{result="ok"} 0\n');
    m.answered(900);
    expect(m.status(1000, "v").gatewayAnswerAgeMs).toBe(500);
  });

  test("turn copies the machine's counts and the lease's expiry; status ages", () => {
    const m = new ClientMonitor(cfg, 0);
    const lease = { address: "172.16.0.21", obtainedAt: 10_000, leaseSeconds: 120, renewSeconds: 60, rebindSeconds: 105 } as never;
    m.turn(20_000, { heals: 2, reinits: 1, renewals: 4, failedRenewals: 1, recoveries: 0 }, lease);
    const text = m.registry!.render();
    expect(text).toContain('pod_gateway_client_repairs_total{kind="in_place"} 2\n');
    expect(text).toContain('pod_gateway_client_repairs_total{kind="reinit"} 1\n');
    expect(text).toContain('pod_gateway_client_dhcp_renewals_total{result="ok"} 4\n');
    expect(text).toContain("pod_gateway_client_lease_expiry_timestamp_seconds 130\n");
    m.turn(21_000, stats, undefined);
    expect(m.registry!.render()).not.toContain("pod_gateway_client_lease_expiry_timestamp_seconds 130");
    expect(m.status(25_000, "v")).toEqual({ role: "client-sidecar", version: "v", tickAgeMs: 4000, intervalMs: 2000, gatewayAnswerAgeMs: undefined, gatewayReachable: false });
  });

  test("isolation: readiness holds only when the lookups made for it AND the sidecar's isolation watch find no route around the tunnel", () => {
    const m = new ClientMonitor(cfg, 0);
    m.probe(1000, true, 0.4);
    const ok = { ok: true, detail: "no route around the tunnel" };
    const leak = { ok: false, detail: "1.1.1.1 is reachable via 198.18.0.1 dev eth0" };
    // Before the watch's first check: the lookups decide; no gauge yet.
    m.turn(1000, { ...stats, isolation: { holds: undefined, problem: undefined } }, undefined);
    expect(m.registry!.render()).not.toMatch(/^pod_gateway_client_isolated /m);
    expect(decideHealth(m.status(1500, "v", ok), "ready").ok).toBe(true);
    expect(decideHealth(m.status(1500, "v", leak), "ready").line).toBe("client-sidecar readiness: NOT OK: not isolated: 1.1.1.1 is reachable via 198.18.0.1 dev eth0");
    // The watch found a leak: not ready even if the lookups now pass (the two agree again at its next check).
    m.turn(2000, { ...stats, isolation: { holds: false, problem: 'route "1.1.1.1 via 198.18.0.1 dev eth0" sends 1.1.1.1 around the tunnel' } }, undefined);
    expect(m.registry!.render()).toContain("pod_gateway_client_isolated 0\n");
    const v = decideHealth(m.status(2500, "v", ok), "ready");
    expect(v).toEqual({ ok: false, line: `client-sidecar readiness: NOT OK: not isolated: the sidecar's isolation watch: route "1.1.1.1 via 198.18.0.1 dev eth0" sends 1.1.1.1 around the tunnel` });
    expect(decideHealth(m.status(2500, "v", leak), "ready").line).toContain("; now: 1.1.1.1 is reachable via 198.18.0.1 dev eth0");
    // Liveness never looks at it.
    expect(decideHealth(m.status(2500, "v"), "live").ok).toBe(true);
    m.turn(3000, { ...stats, isolation: { holds: true, problem: undefined } }, undefined);
    expect(m.registry!.render()).toContain("pod_gateway_client_isolated 1\n");
    expect(decideHealth(m.status(3500, "v", ok), "ready").line).toBe("client-sidecar readiness: ok: loop ticked 0.5 s ago (limit 6.0 s), gateway answered 2.5 s ago, isolated");
  });
});

describe("gateway monitor", () => {
  const cfg = { intervalMs: 5000, poolSize: dhcpPoolSize(20), version: "1", commit: "c" };
  test("firewall checks: verified, re-asserted, failed; notes only on change", () => {
    const m = new GatewayMonitor(cfg, 0);
    expect(m.firewallChecked(1, { problems: [], reasserted: false, left: [] })?.text).toBe("firewall verified (pod_gateway_gateway_firewall_verified 1)");
    expect(m.firewallChecked(2, { problems: ["no jump"], reasserted: true, left: [] })).toBeUndefined();
    expect(m.firewallChecked(3, { problems: ["no jump"], reasserted: true, left: ["still no jump"] })?.text).toBe("firewall not verified: still no jump (pod_gateway_gateway_firewall_verified 0)");
    expect(m.firewallChecked(4, { problems: [], reasserted: false, left: [], error: "iptables: lock" })).toBeUndefined();
    const t = m.registry!.render();
    expect(t).toContain("pod_gateway_gateway_firewall_checks_total 4\n");
    expect(t).toContain("pod_gateway_gateway_firewall_reasserts_total 2\n");
    expect(t).toContain("pod_gateway_gateway_firewall_failures_total 2\n");
    expect(t).toContain("pod_gateway_gateway_firewall_verified 0\n");
    expect(t).toContain("pod_gateway_gateway_dhcp_pool_size 235\n");
    expect(m.status(4, "1")).toMatchObject({ firewallVerified: false, firewallDetail: "iptables: lock", tickAgeMs: 0, dnsmasqRunning: false });
  });

  test("VPN link notes name the gauge; leases in use and clients seen", () => {
    const m = new GatewayMonitor(cfg, 0);
    expect(m.vpnLink("tun0", true)?.text).toBe("VPN link tun0 up (pod_gateway_gateway_vpn_interface_up 1)");
    expect(m.vpnLink("tun0", true)).toBeUndefined();
    expect(m.vpnLink("tun0", false)).toEqual({ level: "warn", text: "VPN link tun0 down (pod_gateway_gateway_vpn_interface_up 0)" });
    const leases = parseDnsmasqLeases("1000 AA:bb:cc:dd:ee:01 172.16.0.21 client-0 01:aa\n0 aa:bb:cc:dd:ee:02 172.16.0.22 * *\nduid 00:01:00:01\n5 aa:bb:cc:dd:ee:03 172.16.0.23 old *\n");
    expect(leases.map((l) => l.mac)).toEqual(["aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02", "aa:bb:cc:dd:ee:03"]);
    m.leases(10_000, leases); // the third expired at 5 s
    m.leases(10_000, leases.slice(1, 2));
    const t = m.registry!.render();
    expect(t).toContain("pod_gateway_gateway_dhcp_leases 1\n");
    expect(t).toContain("pod_gateway_gateway_clients_seen 2\n");
    expect(t).toContain("pod_gateway_gateway_vpn_interface_up 0\n");
  });

  test("kill-switch drops: absent until the drop report runs, then counted by a bounded protocol label", () => {
    const m = new GatewayMonitor(cfg, 0);
    expect(m.registry.render()).not.toContain("pod_gateway_gateway_killswitch_drops_total{");
    const counter = { packets: 0, lost: 0, reports: 0 };
    m.dropReport(counter);
    let t = m.registry.render();
    for (const protocol of DROP_PROTOCOLS) expect(t).toContain(`pod_gateway_gateway_killswitch_drops_total{protocol="${protocol}"} 0\n`);
    m.killSwitchDropped([{ proto: "udp" }, { proto: "udp" }, { proto: "tcp" }, { proto: "sctp" }, { proto: "proto 47" }, { proto: "icmpv6" }]);
    counter.lost = 2;
    m.refresh();
    t = m.registry.render();
    expect(t).toContain('pod_gateway_gateway_killswitch_drops_total{protocol="udp"} 2\n');
    expect(t).toContain('pod_gateway_gateway_killswitch_drops_total{protocol="tcp"} 1\n');
    expect(t).toContain('pod_gateway_gateway_killswitch_drops_total{protocol="other"} 2\n');
    expect(t).toContain('pod_gateway_gateway_killswitch_drops_total{protocol="icmpv6"} 1\n');
    expect(t).toContain("pod_gateway_gateway_killswitch_drop_log_overruns_total 2\n");
    expect(t.match(/killswitch_drops_total\{/g)).toHaveLength(DROP_PROTOCOLS.length);
    expect(["tcp", "udp", "icmp", "icmpv6", "other", "proto 1", "sctp", "", "TCP"].map(dropProtocol)).toEqual(["tcp", "udp", "icmp", "icmpv6", "other", "other", "other", "other", "other"]);
  });
});

describe("gateway monitor: watch connections", () => {
  test("absent until the watch port listens, then the number held", () => {
    const m = new GatewayMonitor({ intervalMs: 5000, poolSize: 235, version: "v", commit: "c" }, 0);
    expect(m.registry.render()).not.toMatch(/^pod_gateway_gateway_watch_connections /m);
    m.watchConnections(0);
    expect(m.registry.render()).toContain("# TYPE pod_gateway_gateway_watch_connections gauge\npod_gateway_gateway_watch_connections 0\n");
    m.watchConnections(3);
    expect(m.registry.render()).toContain("\npod_gateway_gateway_watch_connections 3\n");
  });
});

describe("state-change lines in both log formats", () => {
  test("each is one line at info or warn, text and JSON, naming its metric", () => {
    const m = new GatewayMonitor({ intervalMs: 5000, poolSize: 235, version: "1", commit: "c" }, 0);
    const st = newDuplicateState();
    const a = { mac: "02:aa:aa:aa:aa:aa", podIp: "10.244.1.17", overlayIp: "172.16.0.5" };
    planDuplicateReports(st, [a], 0);
    const notes = [
      m.vpnLink("tun0", true)!,
      m.vpnLink("tun0", false)!,
      m.firewallChecked(1, { problems: ['iptables filter INPUT: no jump to "POD-GATEWAY-INPUT"'], reasserted: false, left: [] })!,
      ...planDuplicateReports(st, [{ ...a, mac: "02:bb:bb:bb:bb:bb", podIp: "10.244.2.9" }], 1000).map((r) => ({ level: r.over ? "info" : "warn", text: r.text }) as const),
      ...planDuplicateReports(st, [a], 70_000).map((r) => ({ level: r.over ? "info" : "warn", text: r.text }) as const),
    ];
    expect(notes.map((n) => n.level)).toEqual(["info", "warn", "warn", "warn", "info"]);
    for (const format of ["text", "json"]) {
      const lines: string[] = [];
      const log = createLogger({ LOG_FORMAT: format === "json" ? "json" : "" }, (l) => lines.push(l));
      for (const n of notes) log[n.level](n.text);
      expect(lines).toHaveLength(notes.length);
      lines.forEach((line, i) => {
        expect(line).not.toContain("\n");
        const msg = format === "json" ? (JSON.parse(line) as { msg: string; level: string }).msg : line.replace(/^\[(info|warn)\] /, "");
        if (format === "json") expect((JSON.parse(line) as { level: string }).level).toBe(notes[i]!.level);
        expect(msg).toBe(notes[i]!.text);
        expect(msg).toMatch(/\(pod_gateway_[a-z_]+(\{[a-z]+="[a-z_]+"\})? \d+\)$/);
      });
    }
  });
});
