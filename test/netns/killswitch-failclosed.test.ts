// Fail closed, always (compiled binary, real iptables, kernel and dnsmasq in the lab): the
// sidecar's iptables-restore refuses every ruleset while a marker file exists (as when the
// xtables lock is held for good or the kernel refuses a target), and another process flushes the
// filter table with the VPN link up. The firewall cannot be re-asserted, nor can its blocking
// ruleset go in: the routing layer alone stops the clients (our table loses the VPN's routes), not
// one packet reaches the internet or leak host, dnsmasq keeps serving; once the firewall can be
// written again traffic flows, and when it never can the sidecar exits 1 after its failed checks.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { KILLSWITCH_TABLE } from "../../src/core/firewall/names.ts";
import { clientMac } from "../../src/core/net/vxlan.ts";
import type { EchoReply, Lab, PodName } from "../../src/lab/types.ts";
import { which } from "../../src/sys/exec.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { collect, LAB, waitFor, withLab } from "./helpers.ts";

const GW = "172.16.0.1";
const t = withLab({ clients: 1 });
const procs: Subprocess[] = [];
let bin = "";
let wrapDir = "";
let marker = "";
let unverifiable = "";
const ip = (r: EchoReply) => (r.ok ? r.source.replace(/:\d+$/, "") : `no answer: ${r.error}`);

async function vxlanClient(lab: Lab, pod: PodName): Promise<void> {
  const cmds = [
    `link add vxlan0 address ${clientMac(pod, 42)} mtu 1450 type vxlan id 42 dev eth0 dstport 8472`,
    "link set vxlan0 up",
    "route replace 198.18.0.0/16 via 198.18.0.1 dev eth0",
    "addr add 172.16.0.10/24 dev vxlan0",
    `route replace default via ${GW} dev vxlan0`,
  ];
  await lab.exec(pod, ["ip", "-batch", "-"], { input: cmds.join("\n") + "\n" });
  await lab.exec(pod, ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan0", "dst", lab.gatewayPodIp()]);
}

async function copies(lab: Lab): Promise<number> {
  const r = await lab.exec("gateway", ["ip", "-j", "route", "show", "table", String(KILLSWITCH_TABLE)]);
  return (JSON.parse(r.stdout || "[]") as { dev?: string }[]).filter((x) => x.dev === lab.vpnInterface).length;
}

async function seen(lab: Lab): Promise<{ internet: number; leak: number }> {
  return { internet: (await lab.packetsSeen("internet")).packets, leak: (await lab.packetsSeen("leak")).packets };
}

beforeAll(async () => {
  requireRoot();
  bin = binPath();
  for (const tool of ["dnsmasq", "bridge", "iptables", "iptables-nft-restore"]) if (!which(tool)) throw new Error(`${tool} is missing: apt-get install dnsmasq-base iproute2 iptables`);
  const lab = t.lab;
  await vxlanClient(lab, "client-0");
  wrapDir = join(lab.runDir, "failbin");
  marker = join(lab.runDir, "restore-refuses");
  unverifiable = join(lab.runDir, "save-lies");
  mkdirSync(wrapDir, { recursive: true });
  for (const tool of ["iptables-nft-restore", "ip6tables-nft-restore"]) {
    const real = which(tool)!;
    writeFileSync(join(wrapDir, tool), `#!/bin/sh\nif [ -e '${marker}' ]; then cat >/dev/null; echo "iptables-restore: line 2 failed: Resource temporarily unavailable" >&2; exit 4; fi\nexec '${real}' "$@"\n`);
    chmodSync(join(wrapDir, tool), 0o755);
  }
  // Unverifiable: while the other marker exists, every IPv4 save misses our FORWARD chain's rules
  // (as if a concurrent rewriter removed them between our apply and our read back).
  const save = which("iptables-nft-save")!;
  writeFileSync(join(wrapDir, "iptables-nft-save"), `#!/bin/sh\nif [ -e '${unverifiable}' ]; then '${save}' "$@" | grep -v -- '^-A POD-GATEWAY-FORWARD '; exit 0; fi\nexec '${save}' "$@"\n`);
  chmodSync(join(wrapDir, "iptables-nft-save"), 0o755);
  await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init" });
}, 30_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
});

describe("fail closed", () => {
  let sidecar: Subprocess<"ignore", "pipe", "pipe"> | undefined;
  let out = { text: () => "" };
  const start = async (lab: Lab, maxFailed: number) => {
    if (sidecar && sidecar.exitCode === null) {
      sidecar.kill("SIGTERM"); // a test that failed left it running (SIGTERM: its dnsmasq must go too)
      await sidecar.exited;
    }
    sidecar = lab.spawn(
      "gateway",
      [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gateway", "sidecar"), "--firewall-check-interval", "1", "--route-check-interval", "0.2", "--max-failed-checks", String(maxFailed)],
      { env: { ...lab.roleEnv("gateway"), PATH: `${wrapDir}:${process.env.PATH}` } },
    );
    procs.push(sidecar);
    out = collect(sidecar);
    await waitFor("dnsmasq to bind vxlan0", () => out.text().includes("sockets bound exclusively to interface vxlan0"), 15_000, { detail: () => out.text() });
  };

  test("firewall unwritable and flushed: the routing layer alone closes; dnsmasq keeps serving; written again, traffic flows", async () => {
    const lab = t.lab;
    await start(lab, 60);
    expect(ip(await lab.echoFrom("client-0", "internet", "tcp"))).toBe(LAB.vpnGatewayIp);

    writeFileSync(marker, "");
    await lab.exec("gateway", ["iptables", "-F"]);
    await lab.exec("gateway", ["iptables", "-t", "nat", "-F"]);
    await waitFor("the sidecar to fail closed", () => out.text().includes("the firewall could not be proven"), 10_000, { detail: () => out.text() });
    await waitFor("the VPN's routes to leave our table", async () => (await copies(lab)) === 0, 5000, { detail: () => out.text() });
    expect(out.text()).toContain("iptables-restore: line 2 failed: Resource temporarily unavailable");
    await waitFor("the blocking ruleset to be tried (and refused too)", () => out.text().includes("failing closed: the blocking ruleset:"), 5000, { detail: () => out.text() });

    const before = await seen(lab);
    const probes = await Promise.all([
      ...(["internet", "leak"] as const).flatMap((h) => (["tcp", "udp"] as const).map((p) => lab.echoFrom("client-0", h, p, { timeoutMs: 1000 }))),
    ]);
    expect(probes.filter((r) => r.ok)).toEqual([]);
    expect((await lab.exec("client-0", ["busybox", "ping", "-c", "1", "-W", "1", LAB.leakHostIp], { okCodes: [1] })).code).toBe(1);
    expect(await seen(lab)).toEqual(before);
    // Still serving the overlay: DNS through .1 (the cluster DNS is on eth0, a VPN_LOCAL_CIDR).
    expect(await lab.resolve("client-0", LAB.apiServerName, { server: GW })).toMatchObject({ ok: true, addresses: [LAB.apiServerIp] });
    expect(sidecar!.exitCode).toBeNull();

    rmSync(marker);
    await waitFor("the firewall proven again", () => out.text().includes("the firewall is proven again"), 10_000, { detail: () => out.text() });
    await waitFor("traffic through the VPN again", async () => ip(await lab.echoFrom("client-0", "internet", "tcp", { timeoutMs: 500 })) === LAB.vpnGatewayIp, 10_000, { everyMs: 0 });
    expect(await copies(lab)).toBeGreaterThanOrEqual(3);
    sidecar!.kill("SIGTERM");
    expect(await sidecar!.exited).toBe(0);
  }, 60_000);

  test("firewall unverifiable (every read back differs): blocking ruleset and closed table; zero packets out with the VPN up; proven again, traffic flows", async () => {
    const lab = t.lab;
    await start(lab, 60);
    expect(ip(await lab.echoFrom("client-0", "internet", "tcp"))).toBe(LAB.vpnGatewayIp);
    writeFileSync(unverifiable, "");
    await waitFor("the sidecar to fail closed", () => out.text().includes("rules read back differ from the plan"), 10_000, { detail: () => out.text() });
    await waitFor("the VPN's routes to leave our table", async () => (await copies(lab)) === 0, 5000, { detail: () => out.text() });
    // The blocking ruleset went in (its restore works; only reads lie).
    const blocking = '-A POD-GATEWAY-FORWARD -m comment --comment "fail closed" -j DROP';
    await waitFor("the blocking ruleset", async () => (await lab.exec("gateway", ["iptables-nft-save", "-t", "filter"])).stdout.includes(blocking), 5000, { detail: () => out.text() });
    const before = await seen(lab);
    const probes = await Promise.all((["internet", "leak"] as const).flatMap((h) => (["tcp", "udp"] as const).map((p) => lab.echoFrom("client-0", h, p, { timeoutMs: 1000 }))));
    expect(probes.filter((r) => r.ok)).toEqual([]);
    expect(await seen(lab)).toEqual(before);
    expect(await lab.resolve("client-0", LAB.apiServerName, { server: GW })).toMatchObject({ ok: true, addresses: [LAB.apiServerIp] });
    rmSync(unverifiable);
    await waitFor("traffic through the VPN again", async () => ip(await lab.echoFrom("client-0", "internet", "tcp", { timeoutMs: 500 })) === LAB.vpnGatewayIp, 15_000, { everyMs: 0 });
    sidecar!.kill("SIGTERM");
    expect(await sidecar!.exited).toBe(0);
  }, 60_000);

  test("never writable again: the sidecar exits 1 after 3 failed checks, the kill switch still closed", async () => {
    const lab = t.lab;
    await start(lab, 3);
    writeFileSync(marker, "");
    await lab.exec("gateway", ["iptables", "-F"]);
    const code = await Promise.race([sidecar!.exited, Bun.sleep(30_000).then(() => "still running after 30 s")]);
    expect(code).toBe(1);
    expect(out.text()).toContain("the firewall could not be proven in 3 consecutive checks: exiting so that Kubernetes restarts the container");
    expect(await copies(lab)).toBe(0);
    const before = await seen(lab);
    expect((await lab.echoFrom("client-0", "leak", "tcp", { timeoutMs: 1000 })).ok).toBe(false);
    expect(await seen(lab)).toEqual(before);
    rmSync(marker);
    expect(existsSync(marker)).toBe(false);
  }, 60_000);
});
