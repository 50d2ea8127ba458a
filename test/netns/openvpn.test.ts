// The gateway roles (compiled binary, kill switch on) against a real OpenVPN client in the
// gateway pod and server in the VPN exit (UDP 1194), with the client's own events as faults:
// soft restarts with and without persist-tun, the server killed and restarted (the client's
// ping-restart), the client killed and started again (tun deleted and re-created). Probes run
// from a client and from the gateway throughout each fault; not one packet may reach the leak
// host and no source but the tunnel's may reach the internet host; traffic flows again after
// each. Last, a wrong VPN_TRAFFIC_PORT keeps the tunnel down and the sidecar says why (drop
// report). One lab, one server for the whole file; the tests run in order.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { which } from "../../src/sys/exec.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { LAB, waitFor, withLab } from "./helpers.ts";
import {
  expectNoLeak,
  expectWrongPortKeepsTunnelDown,
  GW,
  leakBaseline,
  probeContinuously,
  startRoles,
  tail,
  vpnIfindex,
  waitTrafficFlows,
  type Roles,
} from "./openvpn-fixture.ts";

setDefaultTimeout(60_000);

// The client is started by the first test, after the gateway's own containers (see there).
const t = withLab({ clients: 1, vpn: "openvpn", vpnLink: "deleted" });
let bin = "";
let roles: Roles | undefined;

beforeAll(() => {
  requireRoot();
  bin = binPath();
  for (const tool of ["openvpn", "openssl", "busybox", "iptables-save"]) if (!which(tool)) throw new Error(`${tool} is missing: apt-get install openvpn openssl busybox iptables`);
});

const measured: Record<string, unknown>[] = [];
afterAll(() => {
  console.log("measured (ms: fault until reconnected, probes winding down, then until client traffic and DNS flowed):", JSON.stringify(measured));
  for (const p of [roles?.sidecar, roles?.clientSidecar]) if (p && p.exitCode === null) p.kill("SIGKILL");
});

const clientLog = () => tail(join(t.lab.runDir, "logs", "openvpn-client.log"));

describe("OpenVPN in the gateway pod", () => {
  test("the lab's settings allow the server's port (VPN_TRAFFIC_PORT=1194); the server runs, the client does not yet", async () => {
    const lab = t.lab;
    expect(readFileSync(join(lab.configDir, "settings.sh"), "utf8")).toContain('VPN_TRAFFIC_PORT="1194"');
    const vpn = lab.openvpn();
    expect(vpn.settings).toEqual({ proto: "udp", port: 1194, pushDns: LAB.vpnDnsIp, persistTun: false });
    expect(vpn.running("server")).toBe(true);
    expect(vpn.running("client")).toBe(false);
    expect(await vpnIfindex(lab)).toBeUndefined();
    expect(readFileSync(vpn.files.clientConf, "utf8")).toContain("remote 198.51.100.1 1194");
  });

  test("gateway roles first, then the VPN connects: tun0 from OpenVPN with the pushed def1 routes, resolv.conf rewritten in place, client traffic through the tunnel", async () => {
    const lab = t.lab;
    roles = await startRoles(lab, bin);
    const resolv = lab.resolvConfPath("gateway");
    const inode = statSync(resolv).ino;
    await lab.setVpnLink("up");
    // A tun device, made by the OpenVPN process (not a veth made by the lab).
    const link = JSON.parse((await lab.exec("gateway", ["ip", "-d", "-j", "link", "show", "dev", "tun0"])).stdout)[0];
    expect(link.linkinfo.info_kind).toBe("tun");
    const routes = (await lab.exec("gateway", ["ip", "route", "show"])).stdout;
    expect(routes).toContain("0.0.0.0/1 via 198.19.0.1 dev tun0");
    expect(routes).toContain("128.0.0.0/1 via 198.19.0.1 dev tun0");
    expect(routes).toContain(`${LAB.vpnServerIp} via ${LAB.nodeIp} dev eth0`);
    // The up script wrote the pushed DNS into the same file (a bind mount cannot be renamed over).
    expect(statSync(resolv).ino).toBe(inode);
    expect(readFileSync(resolv, "utf8")).toBe(`# written by the OpenVPN client's up script (tun0)\nnameserver ${LAB.vpnDnsIp}\n`);
    await waitTrafficFlows(lab, "client-0");
    expect((await lab.echoFrom("client-0", "internet", "udp")).ok).toBe(true);
    // The sidecar followed resolv.conf; cluster names still go to the cluster DNS.
    expect(await lab.resolve("client-0", LAB.internetName, { server: GW })).toMatchObject({ ok: true, addresses: [LAB.internetIp] });
    expect(await lab.resolve("client-0", LAB.apiServerName, { server: GW })).toMatchObject({ ok: true, addresses: [LAB.apiServerIp] });
  });

  test("control: the probes see a leak when there is one (a client routed around the gateway reaches the leak host)", async () => {
    const lab = t.lab;
    const before = await leakBaseline(lab);
    // client-0's own eth0 (the cluster network) reaches the leak host directly: a leak by definition.
    await lab.exec("client-0", ["ip", "route", "add", `${LAB.leakHostIp}/32`, "via", LAB.nodeIp, "dev", "eth0"]);
    try {
      const p = probeContinuously(lab, "client-0");
      await Bun.sleep(800);
      await p.stop();
    } finally {
      await lab.exec("client-0", ["ip", "route", "del", `${LAB.leakHostIp}/32`]);
    }
    expect((await lab.packetsSeen("leak")).packets).toBeGreaterThan(before.leak);
  });

  const faults: { name: string; run: () => Promise<void>; check?: (before: number | undefined, after: number | undefined) => void }[] = [
    {
      name: "soft restart (SIGUSR1) without persist-tun: the down script restores resolv.conf, tun0 is deleted and re-created",
      run: async () => {
        const vpn = t.lab.openvpn();
        const n = vpn.connections();
        vpn.signal("client", "SIGUSR1");
        await vpn.waitConnected(n);
      },
      check: (before, after) => expect(after).not.toBe(before),
    },
    {
      name: "soft restart (SIGUSR1) with persist-tun: tun0 stays while the client reconnects",
      run: async () => {
        const vpn = t.lab.openvpn();
        const n = vpn.connections();
        vpn.signal("client", "SIGUSR1");
        await vpn.waitConnected(n);
      },
      check: (before, after) => expect(after).toBe(before),
    },
    {
      name: "the server killed and started again: the client's ping-restart reconnects (tun0 kept with persist-tun)",
      run: async () => {
        const vpn = t.lab.openvpn();
        const n = vpn.connections();
        await vpn.stop("server", "SIGKILL");
        await Bun.sleep(1500);
        await vpn.start("server");
        await vpn.waitConnected(n, 30_000);
        expect(clientLog()).toContain("ping-restart");
      },
    },
    {
      name: "the client killed (SIGKILL) and started again: tun0 deleted with the process and re-created by the new one",
      run: async () => {
        const vpn = t.lab.openvpn();
        const n = vpn.connections();
        const pid = vpn.pid("client");
        await vpn.stop("client", "SIGKILL");
        await waitFor("tun0 to go with its process", async () => (await vpnIfindex(t.lab)) === undefined, 5000);
        await Bun.sleep(500); // probes run against a gateway with no VPN link at all
        await vpn.start("client");
        expect(vpn.pid("client")).not.toBe(pid);
        await vpn.waitConnected(n);
      },
      check: (before, after) => expect(after).not.toBe(before),
    },
    {
      name: "the server stopped cleanly (SIGTERM, so it tells the client) and started again",
      run: async () => {
        const vpn = t.lab.openvpn();
        const n = vpn.connections();
        await vpn.stop("server", "SIGTERM");
        await Bun.sleep(1000);
        await vpn.start("server");
        await vpn.waitConnected(n, 30_000);
      },
    },
  ];

  for (const [i, f] of faults.entries()) {
    test(`${f.name}: no leak while it happens, traffic flows again`, async () => {
      const lab = t.lab;
      if (i === 1) {
        // From here on the client keeps its tun device across soft restarts.
        const vpn = lab.openvpn();
        vpn.configure({ persistTun: true });
        await lab.setVpnLink("deleted");
        await lab.setVpnLink("up");
        expect(readFileSync(vpn.files.clientConf, "utf8")).toContain("\npersist-tun\n");
        await waitTrafficFlows(lab, "client-0");
      }
      const before = await leakBaseline(lab);
      const ifBefore = await vpnIfindex(lab);
      const probes = probeContinuously(lab, "client-0");
      const t0 = performance.now();
      let t1 = t0;
      try {
        await f.run();
        t1 = performance.now();
      } finally {
        const counts = await probes.stop();
        expect(counts.probes).toBeGreaterThanOrEqual(14); // seven loops, each at least twice
      }
      const t2 = performance.now();
      await waitTrafficFlows(lab, "client-0");
      measured.push({ fault: f.name.split(":")[0]!, reconnectedMs: Math.round(t1 - t0), probesStoppedMs: Math.round(t2 - t1), flowingAfterMs: Math.round(performance.now() - t2) });
      f.check?.(ifBefore, await vpnIfindex(lab));
      // The same file rewritten by the up script again (or left as it was with persist-tun).
      expect(readFileSync(lab.resolvConfPath("gateway"), "utf8")).toContain(`nameserver ${LAB.vpnDnsIp}`);
      await expectNoLeak(lab, before, f.name);
      expect(await lab.resolve("client-0", LAB.apiServerName, { server: GW })).toMatchObject({ ok: true, addresses: [LAB.apiServerIp] });
    });
  }

  test("with the kill switch on and a wrong VPN_TRAFFIC_PORT the tunnel does not come up, nothing leaks, and the sidecar's drop report names 198.51.100.1 udp/1194", async () => {
    await expectWrongPortKeepsTunnelDown(t.lab, bin, roles, 1195);
  });
});
