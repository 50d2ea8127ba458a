// Operating it, on the real kernel in the lab: `pod-gateway health [--ready]` against running
// sidecars (compiled binary, real dnsmasq), /metrics scraped from a client and a gateway sidecar,
// checked by `promtool check metrics` and a parser, and values that follow events (VPN link down →
// its gauge 0; the gateway pod moves → recoveries +1, readiness lost while it is gone).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Subprocess } from "bun";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { which } from "../../src/sys/exec.ts";
import type { Lab, PodName } from "../../src/lab/types.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { collect, LAB, waitFor, withLab } from "./helpers.ts";

const GW_PORT = 9108;
const CLIENT_PORT = 9109;
const t = withLab({ clients: 2, extraSettings: `CLIENT_PROBE_INTERVAL=0.5\nGATEWAY_METRICS_PORT=${GW_PORT}\nCLIENT_METRICS_PORT=${CLIENT_PORT}\n` });

let bin = "";
const procs: Subprocess[] = [];

beforeAll(() => {
  requireRoot();
  bin = binPath();
  if (!which("promtool")) throw new Error("`promtool` is missing (the test lints the exposition with it): apt-get install prometheus");
});

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
});

async function startGateway(lab: Lab, runDir: string) {
  await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init" });
  const proc = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, runDir), "--firewall-check-interval", "1"], { env: lab.roleEnv("gateway") });
  procs.push(proc);
  const out = collect(proc);
  await waitFor("the gateway's dnsmasq", () => out.text().includes("dnsmasq running") || proc.exitCode !== null, 15_000);
  if (proc.exitCode !== null) throw new Error(`gateway-sidecar exited ${proc.exitCode}:\n${out.text()}`);
  return { proc, out };
}

async function health(lab: Lab, pod: PodName, ...args: string[]): Promise<{ code: number; line: string; ms: number }> {
  const t0 = performance.now();
  const r = await lab.exec(pod, [bin, "health", ...args], { okCodes: [1] });
  return { code: r.code, line: r.stdout.trim(), ms: performance.now() - t0 };
}

/** GET a path of a sidecar's metrics port from inside its pod. */
async function get(lab: Lab, pod: PodName, port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  const script = `const r = await fetch("http://127.0.0.1:${port}${path}"); process.stdout.write(JSON.stringify({ status: r.status, type: r.headers.get("content-type"), body: await r.text() }));`;
  const r = await lab.exec(pod, [process.execPath, "-e", script]);
  return JSON.parse(r.stdout);
}

function promtool(text: string): { code: number; out: string } {
  const r = Bun.spawnSync(["promtool", "check", "metrics"], { stdin: new TextEncoder().encode(text) });
  return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

interface Family {
  name: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string }[];
}

async function scrape(lab: Lab, pod: PodName, port: number): Promise<Map<string, Family>> {
  const r = await get(lab, pod, port, "/metrics");
  expect(r.status).toBe(200);
  return new Map((parsePrometheusTextFormat(r.body) as Family[]).map((f) => [f.name, f]));
}

const value = (m: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined => {
  const s = m.get(name)?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return s?.value === undefined ? undefined : Number(s.value);
};

let gw: { proc: Subprocess; out: { text: () => string } };
let side: Subprocess<"ignore", "pipe", "pipe">;
let sideOut = { text: () => "" };

describe("probes and metrics in the lab", () => {
  test("no sidecar in the pod: health says so and exits 1", async () => {
    const r = await health(t.lab, "client-1");
    expect(r.code).toBe(1);
    expect(r.line).toBe("liveness: NOT OK: no client-sidecar serves @pod-gateway/client-sidecar in this network namespace; no gateway-sidecar serves @pod-gateway/gateway-sidecar in this network namespace");
  });

  test("the gateway sidecar is live and ready; its /metrics pass promtool and the parser", async () => {
    const lab = t.lab;
    gw = await startGateway(lab, "gw1");
    await waitFor("the gateway to be ready", async () => (await health(lab, "gateway", "--ready")).code === 0, 15_000, { everyMs: 200, detail: () => gw.out.text() });
    const live = await health(lab, "gateway");
    expect(live.code).toBe(0);
    expect(live.line).toMatch(/^gateway-sidecar liveness: ok: loop ticked [0-9.]+ s ago \(limit 3\.0 s\), dnsmasq running$/);
    const ready = await health(lab, "gateway", "--ready");
    expect(ready.line).toMatch(/^gateway-sidecar readiness: ok: .*firewall verified, dnsmasq answered on 172\.16\.0\.1:53 in [0-9.]+ ms$/);
    console.log(`health probe (exec into the namespace, compiled binary): ${Math.round(live.ms)} ms live, ${Math.round(ready.ms)} ms ready`);

    const raw = await get(lab, "gateway", GW_PORT, "/metrics");
    expect(raw.type).toBe("text/plain; version=0.0.4; charset=utf-8");
    const lint = promtool(raw.body);
    expect(lint).toEqual({ code: 0, out: "" });
    const m = await scrape(lab, "gateway", GW_PORT);
    expect(value(m, "pod_gateway_gateway_dnsmasq_up")).toBe(1);
    expect(value(m, "pod_gateway_gateway_firewall_verified")).toBe(1);
    expect(value(m, "pod_gateway_gateway_vpn_interface_up")).toBe(1);
    expect(value(m, "pod_gateway_gateway_dhcp_pool_size")).toBeGreaterThan(200);
    expect(value(m, "pod_gateway_gateway_firewall_checks_total")).toBeGreaterThanOrEqual(1);
    expect(value(m, "pod_gateway_gateway_watch_connections")).toBe(0); // listening (GATEWAY_WATCH_PORT's default), no client sidecar yet
    expect(m.get("pod_gateway_build_info")?.metrics[0]?.labels).toMatchObject({ role: "gateway-sidecar" });
    expect((await get(lab, "gateway", GW_PORT, "/healthz")).status).toBe(200);
    expect((await get(lab, "gateway", GW_PORT, "/readyz")).status).toBe(200);
    expect((await get(lab, "gateway", GW_PORT, "/nothing")).status).toBe(404);
  }, 60_000);

  test("a client sidecar is live and ready; a lease shows in both sidecars' metrics", async () => {
    const lab = t.lab;
    await lab.exec("client-0", [bin, "client-init"], { env: lab.roleEnv("client-0"), what: "client-init" });
    side = lab.spawn("client-0", [bin, "client-sidecar"], { env: lab.roleEnv("client-0") });
    procs.push(side);
    sideOut = collect(side);
    await waitFor("the client to be ready", async () => (await health(lab, "client-0", "--ready")).code === 0, 15_000, { everyMs: 200, detail: () => sideOut.text() });
    expect((await health(lab, "client-0")).line).toMatch(/^client-sidecar liveness: ok: loop ticked [0-9.]+ s ago \(limit 1\.5 s\)$/);
    expect((await health(lab, "client-0", "--ready")).line).toMatch(/^client-sidecar readiness: ok: .*gateway answered [0-9.]+ s ago, isolated$/);

    // Ready can come before the loop's first probe (readiness asks the gateway itself until then).
    const rttCount = (m: Map<string, Family>) => Number(m.get("pod_gateway_client_probe_rtt_seconds")?.metrics[0]?.count);
    await waitFor("the loop's first probe", async () => rttCount(await scrape(lab, "client-0", CLIENT_PORT)) > 0, 5000, { everyMs: 100 });
    const raw = await get(lab, "client-0", CLIENT_PORT, "/metrics");
    expect(promtool(raw.body)).toEqual({ code: 0, out: "" });
    const m = await scrape(lab, "client-0", CLIENT_PORT);
    expect(value(m, "pod_gateway_client_gateway_reachable")).toBe(1);
    expect(value(m, "pod_gateway_client_recoveries_total")).toBe(0);
    expect(rttCount(m)).toBeGreaterThan(0);
    expect(value(m, "pod_gateway_client_lease_expiry_timestamp_seconds")).toBeGreaterThan(Date.now() / 1000);
    await waitFor("the gateway to count the lease", async () => value(await scrape(lab, "gateway", GW_PORT), "pod_gateway_gateway_dhcp_leases") === 1, 5000, { everyMs: 200 });
    expect(value(await scrape(lab, "gateway", GW_PORT), "pod_gateway_gateway_clients_seen")).toBe(1);
  }, 60_000);

  test("a route around the tunnel: the client is not ready (health, /readyz and doctor agree), stays live, and is ready again once it goes", async () => {
    const lab = t.lab;
    const doctor = async () => {
      const r = await lab.exec("client-0", [bin, "doctor", "--internet-name", LAB.internetName], { env: lab.roleEnv("client-0"), okCodes: [1] });
      // This lab's gateway has no upstream DNS set (doctor.test.ts checks the rest): the routing lines only.
      const failed = r.stdout.split("\n").filter((l) => l.startsWith("✗") && !l.startsWith("✗ internet name via gateway"));
      return { code: r.code, failed, out: r.stdout };
    };
    const healthy = await doctor();
    expect(healthy.failed).toEqual([]);
    expect(healthy.out).toMatch(/✓ readiness: client-sidecar readiness: ok: .*, isolated\n/);
    expect(healthy.out).toContain("✓ isolation: no route around the tunnel");
    await waitFor("isolated 1", async () => value(await scrape(lab, "client-0", CLIENT_PORT), "pod_gateway_client_isolated") === 1, 5000, { everyMs: 200, detail: () => sideOut.text() });

    // A second isolation probe address only, so the first lookup (the doctor's "route to the internet") still passes.
    await lab.exec("client-0", ["ip", "route", "add", "208.67.222.222/32", "via", LAB.nodeIp, "dev", "eth0"]);
    try {
      const notReady = await health(lab, "client-0", "--ready");
      expect(notReady.code).toBe(1);
      expect(notReady.line).toContain(`client-sidecar readiness: NOT OK: not isolated: `);
      expect(notReady.line).toContain(`208.67.222.222 is reachable via ${LAB.nodeIp} dev eth0`);
      expect((await health(lab, "client-0")).code).toBe(0);
      const readyz = await get(lab, "client-0", CLIENT_PORT, "/readyz");
      expect(readyz.status).toBe(503);
      expect(readyz.body).toContain("not isolated");
      // The sidecar's isolation watch sees the route change too: its gauge and its log line.
      await waitFor("isolated 0", async () => value(await scrape(lab, "client-0", CLIENT_PORT), "pod_gateway_client_isolated") === 0, 10_000, { everyMs: 200, detail: () => sideOut.text() });
      const d = await doctor();
      expect(d.failed).toEqual([`✗ isolation: 208.67.222.222 is reachable via ${LAB.nodeIp} dev eth0`, expect.stringMatching(/^✗ readiness: client-sidecar readiness: NOT OK: not isolated: .*208\.67\.222\.222/)]);
    } finally {
      await lab.exec("client-0", ["ip", "route", "del", "208.67.222.222/32"]);
    }
    await waitFor("ready again", async () => (await health(lab, "client-0", "--ready")).code === 0, 10_000, { everyMs: 200, detail: () => sideOut.text() });
    expect(value(await scrape(lab, "client-0", CLIENT_PORT), "pod_gateway_client_isolated")).toBe(1);
    expect((await doctor()).failed).toEqual([]);
    // The isolation watch's lines name the gauge they move.
    expect(sideOut.text()).toMatch(/isolation broken: .*208\.67\.222\.222.* \(pod_gateway_client_isolated 0; not ready\)\n/);
    expect(sideOut.text()).toMatch(/isolation holds again: .* \(pod_gateway_client_isolated 1\)\n/);
  }, 60_000);

  test("VPN link down: its gauge goes to 0 and a log line names it; what the gateway sends falls to eth0 and the kill switch's drops are counted; the gateway stays ready (not the VPN link)", async () => {
    const lab = t.lab;
    const before = await scrape(lab, "gateway", GW_PORT);
    // The drop report runs (the kill switch is on in the lab): every protocol's count is there.
    for (const protocol of ["tcp", "udp", "icmp", "icmpv6", "other"]) expect(value(before, "pod_gateway_gateway_killswitch_drops_total", { protocol })).toBeGreaterThanOrEqual(0);
    const udpBefore = value(before, "pod_gateway_gateway_killswitch_drops_total", { protocol: "udp" })!;
    await lab.setVpnLink("down");
    try {
      await waitFor("vpn_interface_up 0", async () => value(await scrape(lab, "gateway", GW_PORT), "pod_gateway_gateway_vpn_interface_up") === 0, 5000, { everyMs: 200 });
      expect(gw.out.text()).toContain("VPN link tun0 down (pod_gateway_gateway_vpn_interface_up 0)");
      // Without the VPN's routes a send from the gateway pod takes eth0's default route: dropped.
      expect((await lab.echoFrom("gateway", "leak", "udp", { timeoutMs: 500 })).ok).toBe(false);
      await waitFor("udp drops counted", async () => value(await scrape(lab, "gateway", GW_PORT), "pod_gateway_gateway_killswitch_drops_total", { protocol: "udp" })! > udpBefore, 5000, { everyMs: 200, detail: () => gw.out.text() });
      expect(promtool((await get(lab, "gateway", GW_PORT, "/metrics")).body)).toEqual({ code: 0, out: "" });
      expect((await health(lab, "gateway", "--ready")).code).toBe(0);
    } finally {
      await lab.setVpnLink("up");
    }
    await waitFor("vpn_interface_up 1", async () => value(await scrape(lab, "gateway", GW_PORT), "pod_gateway_gateway_vpn_interface_up") === 1, 5000, { everyMs: 200 });
    expect(gw.out.text()).toContain("VPN link tun0 up (pod_gateway_gateway_vpn_interface_up 1)");
  }, 30_000);

  test("someone flushes INPUT: the sidecar re-asserts, the counter says so and the firewall is verified again", async () => {
    const lab = t.lab;
    const before = value(await scrape(lab, "gateway", GW_PORT), "pod_gateway_gateway_firewall_reasserts_total")!;
    await lab.exec("gateway", ["iptables", "-F", "INPUT"]);
    await waitFor("a re-assertion", async () => value(await scrape(lab, "gateway", GW_PORT), "pod_gateway_gateway_firewall_reasserts_total")! > before, 10_000, { everyMs: 200, detail: () => gw.out.text() });
    const m = await scrape(lab, "gateway", GW_PORT);
    expect(value(m, "pod_gateway_gateway_firewall_verified")).toBe(1);
    expect(value(m, "pod_gateway_gateway_firewall_failures_total")).toBe(0);
    // One line, named like the metric it moved.
    expect(gw.out.text()).toMatch(new RegExp(`re-asserted \\([a-z-]+\\): .* \\(pod_gateway_gateway_firewall_reasserts_total ${value(m, "pod_gateway_gateway_firewall_reasserts_total")}\\)\n`));
    expect((await health(lab, "gateway", "--ready")).code).toBe(0);
  }, 30_000);

  test("the gateway pod moves: the client is not ready while it is gone, stays live, and counts one recovery", async () => {
    const lab = t.lab;
    await lab.recreateGateway();
    await waitFor("reachable 0", async () => value(await scrape(lab, "client-0", CLIENT_PORT), "pod_gateway_client_gateway_reachable") === 0, 10_000, { everyMs: 200 });
    const notReady = await health(lab, "client-0", "--ready");
    expect(notReady.code).toBe(1);
    expect(notReady.line).toContain("client-sidecar readiness: NOT OK: the gateway does not answer through the tunnel (last answer");
    expect((await health(lab, "client-0")).code).toBe(0);
    gw = await startGateway(lab, "gw2");
    await waitFor("recoveries_total 1", async () => value(await scrape(lab, "client-0", CLIENT_PORT), "pod_gateway_client_recoveries_total") === 1, 20_000, { everyMs: 200, detail: () => sideOut.text() });
    const m = await scrape(lab, "client-0", CLIENT_PORT);
    expect(value(m, "pod_gateway_client_gateway_reachable")).toBe(1);
    expect(value(m, "pod_gateway_client_repairs_total", { kind: "in_place" })).toBeGreaterThanOrEqual(1);
    // One line per state change, named like the metric it moves (CONNECTION_RETRY_COUNT is 1 here).
    expect(sideOut.text()).toMatch(/gateway 172\.16\.0\.1 did not answer: .* \(pod_gateway_client_gateway_reachable 0\)\n/);
    expect(sideOut.text()).toMatch(/gateway 172\.16\.0\.1 answers again after \d+ failed probe\(s\) \([0-9.]+ s\) \(pod_gateway_client_gateway_reachable 1, pod_gateway_client_recoveries_total 1\)\n/);
    expect(sideOut.text()).toMatch(/gateway pod moved from [0-9.]+ to [0-9.]+: .* \(pod_gateway_client_repairs_total\{kind="in_place"\} \d+\)\n/);
    await waitFor("ready again", async () => (await health(lab, "client-0", "--ready")).code === 0, 10_000, { everyMs: 200 });
  }, 60_000);

  test("SIGTERM: the sidecars exit and their status socket goes with them", async () => {
    const lab = t.lab;
    side.kill("SIGTERM");
    await side.exited;
    const r = await health(lab, "client-0");
    expect(r.code).toBe(1);
    expect(r.line).toContain("no client-sidecar serves @pod-gateway/client-sidecar");
  }, 30_000);
});
