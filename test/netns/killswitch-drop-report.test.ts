// The kill switch's drop report (issue 13 §5) in the lab, on both nf_tables backends: with the kill
// switch on and VPN_TRAFFIC_PORT not matching the "VPN server" (the leak host's UDP and TCP echo
// ports: the lab's VPN_TRAFFIC_PORT is 443), something in the gateway pod sends to it over eth0;
// the kill switch drops it and gateway-sidecar's log names the address, protocol and port with
// the hint. Control: with the port added to VPN_TRAFFIC_PORT the same send gets its answer.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, cpSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { Lab } from "../../src/lab/types.ts";
import { which } from "../../src/sys/exec.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { collect, LAB, waitFor, withLab } from "./helpers.ts";

const t = withLab({ clients: 1 });
const procs: Subprocess[] = [];
let bin = "";

function config(lab: Lab, name: string, extra: string): string {
  const cfg = join(lab.runDir, name);
  cpSync(lab.configDir, cfg, { recursive: true });
  appendFileSync(join(cfg, "settings.sh"), extra);
  return cfg;
}

/** gateway-init and gateway-sidecar with this configuration, on a clean firewall; the sidecar's output. */
async function gateway(lab: Lab, cfg: string): Promise<{ p: Subprocess; out: { text: () => string } }> {
  await lab.exec("gateway", ["nft", "flush", "ruleset"]);
  const init = await lab.exec("gateway", [bin, "gateway-init", "--config-dir", cfg], { env: lab.roleEnv("gateway"), what: "gateway-init" });
  // gateway-init reads its firewall back and compares it with the plan: the NFLOG rule included.
  expect(init.stderr).toContain("gateway ready");
  const p = lab.spawn("gateway", [bin, "gateway-sidecar", "--config-dir", cfg, "--run-dir", join(lab.runDir, "gateway", "sidecar")], { env: lab.roleEnv("gateway") });
  procs.push(p);
  const out = collect(p);
  await waitFor("dnsmasq to bind vxlan0", () => out.text().includes("sockets bound exclusively to interface vxlan0"), 15_000, { detail: () => out.text() });
  return { p, out };
}

async function stopSidecar(p: Subprocess): Promise<void> {
  p.kill("SIGTERM");
  await p.exited;
}

beforeAll(async () => {
  requireRoot();
  bin = binPath();
  for (const tool of ["dnsmasq", "nft", "iptables-nft"]) if (!which(tool)) throw new Error(`${tool} is missing: apt-get install dnsmasq-base nftables iptables`);
  // The "VPN server" is the leak host, reached as a VPN client reaches its server: a host route
  // via eth0's gateway (OpenVPN adds one), past the VPN's own routes.
  await t.lab.exec("gateway", ["ip", "route", "replace", `${LAB.leakHostIp}/32`, "via", "198.18.0.1", "dev", "eth0"]);
});

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
});

describe("the kill switch's drop report", () => {
  for (const backend of ["iptables-nft", "nft"] as const) {
    test(`${backend}: a send to a port VPN_TRAFFIC_PORT does not allow is dropped and reported with address, protocol and port`, async () => {
      const lab = t.lab;
      const g = await gateway(lab, config(lab, `config-report-${backend}`, `FIREWALL_BACKEND=${backend}\n`));
      try {
        expect(g.out.text()).not.toContain("drop report is off");
        const udp = await lab.echoFrom("gateway", "leak", "udp", { timeoutMs: 500 });
        expect(udp.ok).toBe(false);
        const line = new RegExp(`the kill switch dropped \\d+ packets? to ${LAB.leakHostIp.replaceAll(".", "\\.")} udp/${LAB.echoUdpPort} on eth0 — if that is your VPN server, add ${LAB.echoUdpPort} to VPN_TRAFFIC_PORT`);
        await waitFor("the drop report", () => line.test(g.out.text()), 10_000, { detail: () => g.out.text() });
        // At most one report a minute: a TCP attempt now is counted, not reported yet.
        expect((await lab.echoFrom("gateway", "leak", "tcp", { timeoutMs: 500 })).ok).toBe(false);
        await Bun.sleep(2500);
        expect(g.out.text().match(/the kill switch dropped/g)).toHaveLength(1);
      } finally {
        await stopSidecar(g.p);
      }
    }, 60_000);
  }

  test("control: with the port in VPN_TRAFFIC_PORT the same send gets its answer", async () => {
    const lab = t.lab;
    const g = await gateway(lab, config(lab, "config-allowed", `VPN_TRAFFIC_PORT="443 ${LAB.echoUdpPort}"\n`));
    try {
      const udp = await lab.echoFrom("gateway", "leak", "udp", { timeoutMs: 2000 });
      expect(udp.ok).toBe(true);
    } finally {
      await stopSidecar(g.p);
    }
    await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init (the lab's configuration)" });
    await lab.exec("gateway", ["ip", "route", "del", `${LAB.leakHostIp}/32`]);
  }, 60_000);
});
