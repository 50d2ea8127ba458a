// `pod-gateway doctor` in the lab (compiled binary, real kernel, dnsmasq and firewall): all checks
// pass on a healthy client and gateway; then one thing at a time is broken and the doctor must
// name it (✗ line, exit 1) and pass again once it is put back. It never changes anything: the
// state it reads is compared before and after.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import type { Lab, PodName } from "../../src/lab/types.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { collect, LAB, waitFor, withLab } from "./helpers.ts";

const t = withLab({ clients: 2 });
let bin = "";
const procs: Subprocess[] = [];
let gwOut = { text: () => "" };

beforeAll(() => {
  requireRoot();
  bin = binPath();
});

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
});

async function doctor(lab: Lab, pod: PodName, args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number; out: string; ms: number }> {
  const t0 = performance.now();
  const extra = pod.startsWith("client") ? ["--internet-name", LAB.internetName] : [];
  const r = await lab.exec(pod, [bin, "doctor", ...extra, ...args], { env: { ...lab.roleEnv(pod), ...env }, okCodes: [1] });
  return { code: r.code, out: r.stdout, ms: performance.now() - t0 };
}

const failed = (out: string) => out.split("\n").filter((l) => l.startsWith("✗"));

async function snapshot(lab: Lab, pod: PodName): Promise<string> {
  const parts = await Promise.all([
    lab.exec(pod, ["ip", "-j", "-d", "addr"]),
    lab.exec(pod, ["ip", "-j", "route", "show", "table", "all"]),
    lab.exec(pod, ["ip", "-j", "rule"]),
    lab.exec(pod, ["nft", "list", "ruleset"]),
    lab.exec(pod, ["cat", "/proc/sys/net/ipv4/ip_forward"]),
  ]);
  // Address lifetimes count down and rule counters count packets: leave them out.
  return parts.map((p) => p.stdout.replace(/"(valid|preferred)_life_time":\d+/g, "").replace(/counter packets \d+ bytes \d+/g, "counter")).join("\n");
}

describe("doctor in the lab", () => {
  test("a pod where nothing ran: the role is unknown and said so", async () => {
    const r = await doctor(t.lab, "client-1");
    expect(r.code).toBe(1);
    expect(failed(r.out)).toEqual(["✗ role: no sidecar answers, no vxlan0 and no VPN interface"]);
  });

  test("healthy gateway and client: every check passes; nothing changes; --json", async () => {
    const lab = t.lab;
    await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init" });
    // A long firewall interval: the breakages below must stay until the doctor has looked.
    const gw = lab.spawn("gateway", [bin, "gateway-sidecar", "--firewall-check-interval", "3600"], { env: lab.roleEnv("gateway") });
    procs.push(gw);
    gwOut = collect(gw);
    await waitFor("dnsmasq", () => gwOut.text().includes("dnsmasq running"), 15_000, { detail: () => gwOut.text() });
    await lab.exec("client-0", [bin, "client-init"], { env: lab.roleEnv("client-0"), what: "client-init" });
    // The VPN client points the gateway's resolv.conf at the VPN's DNS; the sidecar follows it.
    await lab.writeResolvConf("gateway", `nameserver ${LAB.vpnDnsIp}\n`);
    await waitFor("the VPN's DNS through the gateway", async () => (await lab.resolve("client-0", LAB.internetName, { server: "172.16.0.1" })).ok, 10_000, { everyMs: 200 });

    const before = await snapshot(lab, "gateway");
    const g = await doctor(lab, "gateway");
    expect(failed(g.out)).toEqual([]);
    expect(g.code).toBe(0);
    expect(g.out).toContain("pod-gateway doctor: gateway (a gateway-sidecar answers on its status socket)");
    for (const name of ["settings", "vxlan0", "forwarding", "firewall", "kill switch routing", "VPN link", "upstream DNS", "dnsmasq", "leases", "kill switch drops"]) expect(g.out).toContain(`✓ ${name}: `);
    expect(g.out).toContain("✓ leases: 1 of 235 in use");
    expect(await snapshot(lab, "gateway")).toBe(before);

    const beforeClient = await snapshot(lab, "client-0");
    const c = await doctor(lab, "client-0");
    expect(failed(c.out)).toEqual([]);
    expect(c.code).toBe(0);
    expect(c.out).toContain("pod-gateway doctor: client (vxlan0 has a unicast remote (a client's tunnel))");
    for (const name of ["settings", "vxlan0", "route to the cluster", "route to the API server", "route to the internet", "isolation", "gateway name", "gateway answers", "cluster name via gateway", "internet name via gateway", "lease"])
      expect(c.out).toContain(`✓ ${name}: `);
    expect(c.out).toContain(`✓ internet name via gateway: ${LAB.internetName} → ${LAB.internetIp}`);
    expect(await snapshot(lab, "client-0")).toBe(beforeClient);
    console.log(`doctor wall time (ip netns exec + compiled binary): gateway ${Math.round(g.ms)} ms, client ${Math.round(c.ms)} ms\n${g.out}${c.out}`);

    const j = JSON.parse((await doctor(lab, "client-0", ["--json"])).out);
    expect(j).toMatchObject({ role: "client", ok: true });
    expect(j.checks.map((x: { name: string }) => x.name)).toContain("gateway answers");
  }, 60_000);

  test("client: a route around the tunnel", async () => {
    const lab = t.lab;
    await lab.exec("client-0", ["ip", "route", "add", "1.1.1.1/32", "via", LAB.nodeIp, "dev", "eth0"]);
    try {
      const r = await doctor(lab, "client-0");
      expect(r.code).toBe(1);
      expect(failed(r.out)).toEqual([`✗ route to the internet: internet address 1.1.1.1: via ${LAB.nodeIp} dev eth0, expected dev vxlan0`, `✗ isolation: 1.1.1.1 is reachable via ${LAB.nodeIp} dev eth0`]);
      expect(r.out).toContain("cause: a route leads around the tunnel");
    } finally {
      await lab.exec("client-0", ["ip", "route", "del", "1.1.1.1/32"]);
    }
  }, 30_000);

  test("client: the tunnel points at a pod that is not the gateway", async () => {
    const lab = t.lab;
    await lab.exec("client-0", ["ip", "link", "set", "vxlan0", "type", "vxlan", "remote", "198.18.0.99"]);
    try {
      const r = await doctor(lab, "client-0");
      expect(r.code).toBe(1);
      const f = failed(r.out);
      expect(f[0]).toBe(`✗ vxlan0: vxlan0's remote is 198.18.0.99 but the gateway pod is ${lab.gatewayPodIp()}`);
      expect(f[1]).toStartWith("✗ gateway answers: DNS probe of 172.16.0.1 through vxlan0: no DNS answer");
    } finally {
      await lab.exec("client-0", ["ip", "link", "set", "vxlan0", "type", "vxlan", "remote", lab.gatewayPodIp()]);
    }
    expect((await doctor(lab, "client-0")).code).toBe(0);
  }, 30_000);

  test("client: the cluster's range no longer kept on eth0", async () => {
    const lab = t.lab;
    // client-init pins the cluster DNS (K8S_DNS_IPS) and NOT_ROUTED_TO_GATEWAY_CIDRS to eth0: take both away.
    await lab.exec("client-0", ["ip", "route", "del", `${LAB.clusterDnsIp}/32`]);
    await lab.exec("client-0", ["ip", "route", "del", "198.18.0.0/16"]);
    try {
      const r = await doctor(lab, "client-0");
      expect(r.code).toBe(1);
      expect(failed(r.out)[0]).toBe(`✗ route to the cluster: cluster DNS ${LAB.clusterDnsIp}: via 172.16.0.1 dev vxlan0, expected dev eth0`);
      expect(r.out).toContain("fix:   add the cluster's pod and service CIDRs to NOT_ROUTED_TO_GATEWAY_CIDRS");
    } finally {
      await lab.exec("client-0", [bin, "client-init"], { env: lab.roleEnv("client-0"), what: "client-init (repairing)" });
    }
    expect((await doctor(lab, "client-0")).code).toBe(0);
  }, 30_000);

  test("client: the tunnel is gone (--role client: without a sidecar or vxlan0 nothing says what this pod is)", async () => {
    const lab = t.lab;
    await lab.exec("client-0", ["ip", "link", "del", "vxlan0"]);
    try {
      const r = await doctor(lab, "client-0", ["--role", "client"]);
      expect(r.code).toBe(1);
      const f = failed(r.out);
      expect(f[0]).toBe("✗ vxlan0: vxlan0 does not exist");
      expect(f).toContain("✗ route to the internet: internet address 1.1.1.1: no route (ENETUNREACH)");
      expect(f.some((l) => l.startsWith("✗ gateway answers: "))).toBe(true);
      expect(f.some((l) => l.startsWith("✗ lease: no overlay address"))).toBe(true);
    } finally {
      await lab.exec("client-0", [bin, "client-init"], { env: lab.roleEnv("client-0"), what: "client-init (repairing)" });
    }
    expect((await doctor(lab, "client-0")).code).toBe(0);
  }, 30_000);

  test("client: the gateway's name does not resolve", async () => {
    const r = await doctor(t.lab, "client-0", [], { gateway: "nothing.pod-gateway.svc.cluster.local" });
    expect(r.code).toBe(1);
    expect(failed(r.out)[0]).toStartWith(`✗ gateway name: nothing.pod-gateway.svc.cluster.local through ${LAB.clusterDnsIp}: `);
  }, 30_000);

  test("gateway: forwarding off", async () => {
    const lab = t.lab;
    await lab.exec("gateway", ["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    try {
      const r = await doctor(lab, "gateway");
      expect(failed(r.out)).toEqual(["✗ forwarding: net.ipv4.ip_forward = 0"]);
      expect(r.code).toBe(1);
    } finally {
      await lab.exec("gateway", ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    }
  }, 30_000);

  test("gateway: the VPN link down", async () => {
    const lab = t.lab;
    await lab.setVpnLink("down");
    try {
      const r = await doctor(lab, "gateway");
      expect(failed(r.out)).toEqual([`✗ VPN link: ${lab.vpnInterface} is down (no carrier)`]);
      // And from a client, the internet name no longer resolves (the VPN's DNS is out of reach).
      const c = await doctor(lab, "client-0");
      expect(failed(c.out).map((l) => l.split(":")[0])).toEqual(["✗ internet name via gateway"]);
    } finally {
      await lab.setVpnLink("up");
    }
    // The sidecar copies the VPN's routes back into our table within its route check (0.2 s):
    // until then the routing-layer check rightly fails, so wait for it before the next case.
    await waitFor("the doctor to pass again", async () => (await doctor(lab, "gateway")).code === 0, 10_000, { everyMs: 200 });
  }, 30_000);

  test("gateway: someone flushed INPUT (our jump is gone)", async () => {
    const lab = t.lab;
    await lab.exec("gateway", ["iptables", "-F", "INPUT"]);
    try {
      const r = await doctor(lab, "gateway");
      expect(r.code).toBe(1);
      expect(failed(r.out)).toEqual([expect.stringMatching(/^✗ firewall: iptables-nft: .*POD-GATEWAY-INPUT/)]);
    } finally {
      await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init (repairing)" });
    }
    expect((await doctor(lab, "gateway")).code).toBe(0);
  }, 30_000);

  test("gateway: our routing-layer rule deleted while the sidecar is stopped (it would put it back within a second)", async () => {
    const lab = t.lab;
    const sidecar = procs[0]!;
    process.kill(sidecar.pid, "SIGSTOP");
    try {
      await lab.exec("gateway", ["ip", "rule", "del", "pref", "45"]);
      const r = await doctor(lab, "gateway");
      expect(r.code).toBe(1);
      const routing = failed(r.out).filter((l) => l.startsWith("✗ kill switch routing: "));
      expect(routing).toHaveLength(1);
      expect(routing[0]).toContain("4201");
      expect(r.out).toContain("another process changed our rule or table");
    } finally {
      process.kill(sidecar.pid, "SIGCONT");
    }
    await waitFor("the sidecar to restore the rule and the doctor to pass", async () => (await doctor(lab, "gateway")).code === 0, 10_000, { everyMs: 300 });
  }, 30_000);

  test("gateway: the VPN client's resolv.conf has no nameserver", async () => {
    const lab = t.lab;
    const original = await Bun.file(lab.resolvConfPath("gateway")).text();
    await lab.writeResolvConf("gateway", "# nothing\n");
    try {
      await waitFor("the doctor to see it", async () => failed((await doctor(lab, "gateway")).out).some((l) => l.startsWith("✗ upstream DNS: ")), 10_000, { everyMs: 300 });
    } finally {
      await lab.writeResolvConf("gateway", original);
    }
    await waitFor("the doctor to pass again", async () => (await doctor(lab, "gateway")).code === 0, 10_000, { everyMs: 300 });
  }, 30_000);

  test("gateway: dnsmasq gone (the sidecar exits with it)", async () => {
    const lab = t.lab;
    const pid = Number(/dnsmasq running \(pid (\d+)\)/.exec(gwOut.text())?.[1]);
    expect(pid).toBeGreaterThan(1);
    process.kill(pid, "SIGKILL");
    await waitFor("the sidecar to exit", () => procs[0]!.exitCode !== null, 5000);
    const r = await doctor(lab, "gateway");
    expect(r.code).toBe(1);
    expect(failed(r.out)).toEqual(["✗ dnsmasq: no gateway-sidecar answers on @pod-gateway/gateway-sidecar"]);
  }, 30_000);
});
