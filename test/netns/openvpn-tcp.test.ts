// OpenVPN over TCP 443, in a lab built by the CLI (`pod-gateway lab up --vpn openvpn
// --vpn-proto tcp`): the client connects at start; for the gateway roles it is stopped and
// started again between gateway-init and gateway-sidecar, as a pod starts its VPN container after
// the init containers (gateway-init takes the cluster DNS from resolv.conf as it finds it); the kill switch holds while the client is killed and restarted and
// while the server is killed (the client sees its TCP connection end) and restarted; a
// VPN_TRAFFIC_PORT that names UDP's port instead keeps the tunnel down, and the gateway says why. `lab down` removes
// the OpenVPN processes with everything else.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { destroyLabById, openLab } from "../../src/lab/lab.ts";
import { makeLabId } from "../../src/lab/plan.ts";
import { isAlive } from "../../src/lab/procs.ts";
import type { Lab } from "../../src/lab/types.ts";
import { which } from "../../src/sys/exec.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { LAB } from "./helpers.ts";
import { expectNoLeak, expectWrongPortKeepsTunnelDown, leakBaseline, probeContinuously, startRoles, vpnIfindex, waitTrafficFlows, type Roles } from "./openvpn-fixture.ts";

// Generous: at load 100 on the shared 2 cores a kill, reconnect and probe wind-down took over 60 s.
setDefaultTimeout(120_000);

const id = makeLabId(Math.random);
let bin = "";
let lab: Lab;
let roles: Roles | undefined;

const cli = (args: string[]) => {
  const r = Bun.spawnSync([bin, "lab", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

beforeAll(async () => {
  requireRoot();
  bin = binPath();
  for (const tool of ["openvpn", "openssl", "busybox", "iptables-save"]) if (!which(tool)) throw new Error(`${tool} is missing: apt-get install openvpn openssl busybox iptables`);
});

afterAll(async () => {
  for (const p of [roles?.sidecar, roles?.clientSidecar]) if (p && p.exitCode === null) p.kill("SIGKILL");
  await destroyLabById(id);
});

describe("OpenVPN over TCP 443, lab built by the CLI", () => {
  test("lab up --vpn openvpn --vpn-proto tcp: the map names the server, VPN_TRAFFIC_PORT follows it, the client is connected", async () => {
    expect(cli(["up", "--vpn-proto", "tcp"]).code).toBe(2); // only with --vpn openvpn
    const up = cli(["up", "--id", id, "--clients", "1", "--vpn", "openvpn", "--vpn-proto", "tcp"]);
    expect(up.err).toBe("");
    expect(up.code).toBe(0);
    expect(up.out).toContain(`OpenVPN server ${LAB.vpnServerIp} tcp/443`);
    lab = await openLab(id);
    expect(lab.vpnKind).toBe("openvpn");
    expect(lab.openvpn().settings).toMatchObject({ proto: "tcp", port: 443 });
    expect(readFileSync(join(lab.configDir, "settings.sh"), "utf8")).toContain('VPN_TRAFFIC_PORT="443"');
    expect(readFileSync(lab.openvpn().files.clientConf, "utf8")).toContain("proto tcp4-client");
    expect(cli(["status", "--id", id]).out).toContain("(OpenVPN tcp/443)");
    const r = await lab.echoFrom("gateway", "internet", "tcp");
    expect(r.ok && r.source).toMatch(/^198\.19\.0\.2:/);
    expect((await lab.exec("gateway", ["cat", "/etc/resolv.conf"])).stdout).toContain(`nameserver ${LAB.vpnDnsIp}`);
  });

  test("the gateway roles with the kill switch: client traffic leaves through the TCP tunnel", async () => {
    await lab.setVpnLink("deleted"); // its down script puts the cluster's resolv.conf back
    roles = await startRoles(lab, bin, { afterInit: () => lab.setVpnLink("up") });
    await waitTrafficFlows(lab, "client-0");
  });

  for (const fault of ["client", "server"] as const) {
    test(`the ${fault} killed and started again: no leak while it happens, traffic flows again`, async () => {
      const vpn = lab.openvpn();
      const before = await leakBaseline(lab);
      const ifBefore = await vpnIfindex(lab);
      const probes = probeContinuously(lab, "client-0");
      try {
        const n = vpn.connections();
        await vpn.stop(fault, "SIGKILL");
        await Bun.sleep(1000);
        await vpn.start(fault);
        await vpn.waitConnected(n, 30_000);
      } finally {
        await probes.stop();
      }
      await waitTrafficFlows(lab, "client-0");
      if (fault === "client") expect(await vpnIfindex(lab)).not.toBe(ifBefore);
      await expectNoLeak(lab, before, `${fault} killed`);
    });
  }

  test("VPN_TRAFFIC_PORT naming 1194 (UDP's port) instead of 443: the TCP tunnel does not come up, nothing leaks, the drop report names 198.51.100.1 tcp/443", async () => {
    await expectWrongPortKeepsTunnelDown(lab, bin, roles, 1194);
  });

  test("lab down removes the lab with its OpenVPN processes", async () => {
    const vpn = lab.openvpn();
    const pids = [vpn.pid("server"), vpn.pid("client")];
    expect(pids.every((p) => p !== undefined)).toBe(true);
    const down = cli(["down", "--id", id]);
    expect(down.code).toBe(0);
    expect(pids.filter((p) => isAlive(p!))).toEqual([]);
  });
});
