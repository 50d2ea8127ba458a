// DNS always through the tunnel (compiled binary, real dnsmasq and kernel in the lab), against
// both VPN kinds. VPN providers hand out resolvers inside private ranges that fall in
// VPN_LOCAL_CIDRS; here the same address, 198.18.7.53 (inside the lab's 198.18.0.0/16), answers on
// both sides: behind the VPN exit (on the internet host, answering *.probe.test with 10.0.0.2) and
// on the eth0 side (on the node, answering 10.0.0.1). Each side counts the queries that reach it.
// Once the VPN client writes that resolver into resolv.conf (the stand-in: the lab writes it; the
// real OpenVPN client: its server pushes it and the up script writes it), every query the gateway
// forwards goes through the VPN, and none leaves by eth0, also while the VPN is down: the
// stand-in's link down or deleted; OpenVPN's own events (client killed, soft restart, server
// killed and the client's ping-restart), with queries running throughout. After the VPN client's
// down script puts the cluster DNS back, the resolver is a *former* upstream: dnsmasq's queries in
// flight and the VPN container's own processes (here: the gateway's own queries) still send to
// it, and it stays pinned to the VPN (unreachable without it), never routed by eth0.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { clientMac } from "../../src/core/net/vxlan.ts";
import type { VpnKind } from "../../src/lab/openvpn-plan.ts";
import type { Lab, PodName } from "../../src/lab/types.ts";
import { which } from "../../src/sys/exec.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { collect, LAB, waitFor, withLab } from "./helpers.ts";

const GW = "172.16.0.1";
const RESOLVER = "198.18.7.53";
const ANSWER = { eth0: "10.0.0.1", vpn: "10.0.0.2" } as const;
const SIDE = { eth0: "node", vpn: "internet" } as const satisfies Record<string, PodName>;
const procs: Subprocess[] = [];
let bin = "";
let n = 0;
const fresh = () => `q${++n}.probe.test`; // a new name each time: nothing from a cache

/** Queries that reached RESOLVER on one side (an nft counter in front of its dnsmasq). */
async function queries(lab: Lab, side: keyof typeof SIDE): Promise<number> {
  const r = await lab.exec(SIDE[side], ["nft", "-j", "list", "counter", "inet", "pgw_dnscount", "queries"]);
  const c = (JSON.parse(r.stdout).nftables as { counter?: { packets: number } }[]).find((x) => x.counter)?.counter;
  return c!.packets;
}
async function counts(lab: Lab) {
  return { eth0: await queries(lab, "eth0"), vpn: await queries(lab, "vpn") };
}

async function resolverOn(lab: Lab, side: keyof typeof SIDE): Promise<void> {
  const pod = SIDE[side];
  await lab.exec(pod, ["ip", "addr", "add", `${RESOLVER}/32`, "dev", "lo"]);
  await lab.exec(pod, ["nft", "-f", "-"], {
    input: `table inet pgw_dnscount {\n counter queries { }\n chain input {\n  type filter hook input priority -300; policy accept;\n  ip daddr ${RESOLVER} udp dport 53 counter name "queries"\n }\n}\n`,
  });
  const dir = join(lab.runDir, `resolver-${side}`);
  const p = lab.spawn(pod, [
    "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", `--listen-address=${RESOLVER}`, "--bind-interfaces", "--user=root",
    `--pid-file=${dir}.pid`, `--address=/probe.test/${ANSWER[side]}`, "--log-facility=-",
  ]);
  procs.push(p);
  collect(p);
}

interface Sidecar {
  p: Subprocess<"ignore", "pipe", "pipe">;
  out: { text: () => string };
}
async function startSidecar(lab: Lab): Promise<Sidecar> {
  const p = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gateway", "sidecar"), "--route-check-interval", "0.2"], { env: lab.roleEnv("gateway") });
  procs.push(p);
  const out = collect(p);
  await waitFor("dnsmasq to bind vxlan0", () => out.text().includes("sockets bound exclusively to interface vxlan0"), 15_000, { detail: () => out.text() });
  return { p, out };
}

/** The gateway's own query straight to the resolver: its answer says which side it reached. */
async function gatewayQuery(lab: Lab, timeoutMs = 1000) {
  return lab.resolve("gateway", fresh(), { server: RESOLVER, timeoutMs });
}

/** The resolver on both sides, and client-0's VXLAN endpoint with a static address. */
async function setUp(lab: Lab): Promise<void> {
  await resolverOn(lab, "eth0");
  await resolverOn(lab, "vpn");
  // Behind the VPN exit, the resolver's address is the internet host's.
  await lab.exec("vpn", ["ip", "route", "add", `${RESOLVER}/32`, "via", LAB.internetIp]);
  const cmds = [
    `link add vxlan0 address ${clientMac("client-0", 42)} mtu 1450 type vxlan id 42 dev eth0 dstport 8472`,
    "link set vxlan0 up",
    "addr add 172.16.0.10/24 dev vxlan0",
    "route replace 198.18.0.0/16 via 198.18.0.1 dev eth0",
    `route replace default via ${GW} dev vxlan0`,
  ];
  await lab.exec("client-0", ["ip", "-batch", "-"], { input: cmds.join("\n") + "\n" });
  await lab.exec("client-0", ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan0", "dst", lab.gatewayPodIp()]);
}

/**
 * Queries for fresh names from client-0 through .1 and, with `gatewayOwn`, from the gateway
 * straight to the resolver, until stop().
 */
function queryContinuously(lab: Lab, gatewayOwn: boolean): { stop: () => Promise<number> } {
  let running = true;
  let sent = 0;
  const loop = async (pod: PodName, server: string) => {
    for (let i = 0; running || i < 2; i++) {
      sent++;
      await lab.resolve(pod, fresh(), { server, timeoutMs: 500 });
      await Bun.sleep(50);
    }
  };
  const loops = [loop("client-0", GW), gatewayOwn ? loop("gateway", RESOLVER) : loop("client-0", GW)];
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return sent;
    },
  };
}

/**
 * A VPN outage. `held` faults stay until end(): while they last, queries get no answer at all;
 * the others (OpenVPN's own reconnects) end by themselves, begin() returns once reconnected.
 */
interface DnsFault {
  name: string;
  held: boolean;
  begin: (lab: Lab) => Promise<void>;
  end: (lab: Lab) => Promise<void>;
}

const FAULTS: Record<VpnKind, DnsFault[]> = {
  veth: (["down", "deleted"] as const).map((f) => ({
    name: `VPN link ${f}`,
    held: true,
    begin: (lab) => lab.setVpnLink(f),
    end: (lab) => lab.setVpnLink("up"),
  })),
  openvpn: [
    {
      name: "the OpenVPN client killed (SIGKILL: tun0 goes, no down script, resolv.conf still names the resolver) and started again",
      held: true,
      begin: async (lab) => {
        await lab.openvpn().stop("client", "SIGKILL");
        await lab.openvpn().waitLinkGone();
      },
      end: async (lab) => {
        const vpn = lab.openvpn();
        const n = vpn.connections();
        await vpn.start("client");
        await vpn.waitConnected(n);
      },
    },
    {
      name: "a soft restart (SIGUSR1: the down script, tun0 deleted and re-created, the up script)",
      held: false,
      begin: async (lab) => {
        const vpn = lab.openvpn();
        const n = vpn.connections();
        vpn.signal("client", "SIGUSR1");
        await vpn.waitConnected(n);
      },
      end: async () => {},
    },
    {
      name: "the server killed and started again (the client's ping-restart)",
      held: false,
      begin: async (lab) => {
        const vpn = lab.openvpn();
        const n = vpn.connections();
        const restarts = () => readFileSync(vpn.logFile("client"), "utf8").split("ping-restart").length;
        const before = restarts();
        await vpn.stop("server", "SIGKILL");
        await waitFor("the client's ping-restart", () => restarts() > before, 15_000);
        await vpn.start("server");
        await vpn.waitConnected(n);
      },
      end: async () => {},
    },
  ],
};

beforeAll(() => {
  requireRoot();
  bin = binPath();
  for (const tool of ["dnsmasq", "bridge", "nft", "openvpn"]) if (!which(tool)) throw new Error(`${tool} is missing: apt-get install dnsmasq-base iproute2 nftables openvpn`);
});

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
});

for (const kind of ["veth", "openvpn"] as const)
  describe(`DNS upstreams only through the VPN (${kind === "veth" ? "the stand-in VPN link" : "a real OpenVPN client"})`, () => {
    // OpenVPN: the client connects after gateway-init and the sidecar, its server pushing the resolver.
    const t = withLab(kind === "veth" ? { clients: 1, vpn: kind } : { clients: 1, vpn: kind, vpnLink: "deleted", openvpn: { pushDns: RESOLVER } });
    let sidecar: Sidecar | undefined;
    beforeAll(() => setUp(t.lab), 30_000);

    test("control: without our host route, the gateway reaches the resolver's address by eth0 (the leak)", async () => {
      const lab = t.lab;
      await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init" });
      const before = await counts(lab);
      expect(await lab.resolve("gateway", fresh(), { server: RESOLVER })).toMatchObject({ ok: true, addresses: [ANSWER.eth0] });
      const after = await counts(lab);
      expect(after.eth0).toBeGreaterThan(before.eth0);
      expect(after.vpn).toBe(before.vpn);
    }, 60_000);

    test("only the cluster DNS upstream: a warning that names are resolved outside the VPN", async () => {
      sidecar = await startSidecar(t.lab);
      expect(sidecar.out.text()).toContain(`the only DNS upstream is the cluster DNS ${LAB.clusterDnsIp}: names are resolved outside the VPN`);
    }, 60_000);

    test("the VPN client writes the resolver into resolv.conf: every query goes through the VPN, none by eth0; cluster names stay with the cluster DNS", async () => {
      const lab = t.lab;
      if (kind === "veth") await lab.writeResolvConf("gateway", `nameserver ${RESOLVER}\n`);
      else await lab.setVpnLink("up"); // the client connects; its up script writes the pushed resolver
      expect(readFileSync(lab.resolvConfPath("gateway"), "utf8")).toContain(`nameserver ${RESOLVER}`);
      await waitFor("the resolver's host route through the VPN", () => sidecar!.out.text().includes(`DNS upstreams ${RESOLVER}: only through ${lab.vpnInterface}`), 5000, { detail: () => sidecar!.out.text() });
      // Unreachable (exit 2) until the VPN's routes are copied into our table under the host route.
      await waitFor("the host route in our table", async () => (await lab.exec("gateway", ["ip", "route", "get", RESOLVER], { okCodes: [2] })).stdout.includes(`dev ${lab.vpnInterface}`), 10_000);
      const before = await counts(lab);
      for (let i = 0; i < 3; i++) {
        expect(await lab.resolve("client-0", fresh(), { server: GW })).toMatchObject({ ok: true, addresses: [ANSWER.vpn] });
        expect(await lab.resolve("gateway", fresh(), { server: RESOLVER })).toMatchObject({ ok: true, addresses: [ANSWER.vpn] });
      }
      const after = await counts(lab);
      expect(after.eth0).toBe(before.eth0);
      expect(after.vpn - before.vpn).toBeGreaterThanOrEqual(6);
      expect(await lab.resolve("client-0", LAB.apiServerName, { server: GW })).toMatchObject({ ok: true, addresses: [LAB.apiServerIp] });
    }, 60_000);

    test("the sidecar restarted with a fresh filesystem after the VPN rewrote resolv.conf still knows the cluster DNS (recorded in the kernel by gateway-init)", async () => {
      const lab = t.lab;
      expect((await lab.exec("gateway", ["ip", "route", "show", "proto", "202"])).stdout).toContain(`${LAB.clusterDnsIp} via ${LAB.nodeIp} dev eth0`);
      sidecar!.p.kill("SIGTERM");
      expect(await sidecar!.p.exited).toBe(0);
      // What a restarted container loses: everything in its own filesystem.
      const copy = join(lab.runDir, "gateway", "resolv_copy.conf");
      for (const f of [copy, `${copy}.original`, join(lab.runDir, "gateway", "sidecar")]) rmSync(f, { recursive: true, force: true });
      sidecar = await startSidecar(lab);
      expect(sidecar.out.text()).toContain(`upstream DNS: ${RESOLVER}; cluster DNS for local: ${LAB.clusterDnsIp}`);
      expect(await lab.resolve("client-0", LAB.apiServerName, { server: GW })).toMatchObject({ ok: true, addresses: [LAB.apiServerIp] });
      expect(await lab.resolve("client-0", fresh(), { server: GW })).toMatchObject({ ok: true, addresses: [ANSWER.vpn] });
    }, 60_000);

    for (const f of FAULTS[kind])
      test(`${f.name}: not one query reaches the resolver's eth0 side${f.held ? ", queries get no answer while it lasts" : ""}; answers through the VPN again after`, async () => {
        const lab = t.lab;
        const before = await counts(lab);
        // The gateway's own queries straight to the resolver throughout: OpenVPN's down script
        // (soft restart, ping-restart) puts the cluster DNS back for a moment, and the resolver's
        // pin must outlast that (before it did not: 1 to 6 of these queries reached the eth0 side).
        const queries = queryContinuously(lab, true);
        try {
          await f.begin(lab);
          if (f.held) {
            await waitFor("the resolver to be unreachable", async () => (await lab.exec("gateway", ["ip", "route", "get", RESOLVER], { okCodes: [2] })).code !== 0, 5000);
            expect((await lab.resolve("client-0", fresh(), { server: GW, timeoutMs: 1500 })).ok).toBe(false);
            expect((await lab.resolve("gateway", fresh(), { server: RESOLVER, timeoutMs: 1000 })).ok).toBe(false);
          }
        } finally {
          await f.end(lab);
          expect(await queries.stop()).toBeGreaterThanOrEqual(4);
        }
        expect((await counts(lab)).eth0).toBe(before.eth0);
        let answer;
        await waitFor("answers through the VPN again", async () => (answer = await lab.resolve("client-0", fresh(), { server: GW, timeoutMs: 500 })).ok, 20_000, { everyMs: 0 });
        expect(answer).toMatchObject({ addresses: [ANSWER.vpn] });
        expect((await counts(lab)).eth0).toBe(before.eth0);
      }, 60_000);

    test("the VPN client goes and its down script puts the cluster DNS back (held): the former resolver stays pinned, not one query reaches its eth0 side", async () => {
      const lab = t.lab;
      const before = await counts(lab);
      const logged = (s: string) => sidecar!.out.text().includes(s);
      if (kind === "veth") {
        // A down script first (the link still up): the former resolver is reached through the VPN.
        await lab.writeResolvConf("gateway", `nameserver ${LAB.clusterDnsIp}\n`);
        await waitFor("the sidecar to see the former resolver", () => logged(`former DNS upstreams ${RESOLVER}:`), 5000, { detail: () => sidecar!.out.text() });
        expect(await gatewayQuery(lab)).toMatchObject({ ok: true, addresses: [ANSWER.vpn] });
        await lab.setVpnLink("deleted");
      } else {
        await lab.openvpn().stop("client", "SIGTERM"); // the down script runs, tun0 goes
        await lab.openvpn().waitLinkGone();
        await waitFor("the sidecar to see the former resolver", () => logged(`former DNS upstreams ${RESOLVER}:`), 5000, { detail: () => sidecar!.out.text() });
      }
      expect(readFileSync(lab.resolvConfPath("gateway"), "utf8")).toContain(`nameserver ${LAB.clusterDnsIp}`);
      try {
        // Unreachable (exit 2 of `ip route get`), not routed by eth0; no answer from either side.
        const r = await lab.exec("gateway", ["ip", "route", "get", RESOLVER], { okCodes: [2] });
        expect({ code: r.code, out: r.stdout }).toMatchObject({ code: 2 });
        for (let i = 0; i < 3; i++) expect((await gatewayQuery(lab, 500)).ok).toBe(false);
        // Cluster names still resolve (dnsmasq forwards them to the cluster DNS by eth0).
        expect(await lab.resolve("client-0", LAB.apiServerName, { server: GW })).toMatchObject({ ok: true, addresses: [LAB.apiServerIp] });
      } finally {
        if (kind === "veth") {
          await lab.setVpnLink("up");
          await lab.writeResolvConf("gateway", `nameserver ${RESOLVER}\n`);
        } else {
          const vpn = lab.openvpn();
          const n = vpn.connections();
          await vpn.start("client");
          await vpn.waitConnected(n);
        }
      }
      expect((await counts(lab)).eth0).toBe(before.eth0);
      let answer;
      await waitFor("answers through the VPN again", async () => (answer = await gatewayQuery(lab, 500)).ok, 20_000, { everyMs: 0 });
      expect(answer).toMatchObject({ addresses: [ANSWER.vpn] });
      expect(await lab.resolve("client-0", fresh(), { server: GW })).toMatchObject({ ok: true, addresses: [ANSWER.vpn] });
      expect((await counts(lab)).eth0).toBe(before.eth0);
    }, 60_000);
  });
