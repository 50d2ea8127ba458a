// The kill switch's two layers in the lab (compiled binary, real kernel, real iptables/nft and
// dnsmasq): with the VPN link down, deleted, or absent when the gateway starts, while another
// process in the gateway pod flushes the filter table and sets the policies to ACCEPT over and
// over (what VPN containers' start-up scripts do), clients send TCP, UDP and ICMP to the internet
// and leak hosts: not one packet may arrive at either. The control run (our routing rule removed,
// nothing to put it back) shows the same probes do leak. With both layers on, port forwards,
// DHCP, DNS and ping to .1 and replies keep working. Prints how long a re-created VPN link waits
// for its routes in our table.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { KILLSWITCH_CLIENT_RULE_PREF, KILLSWITCH_TABLE } from "../../src/core/firewall/names.ts";
import { clientMac } from "../../src/core/net/vxlan.ts";
import type { EchoReply, Lab, PodName } from "../../src/lab/types.ts";
import { which } from "../../src/sys/exec.ts";
import { binPath, REPO, requireRoot } from "../helpers/bin.ts";
import { collect, LAB, waitFor, withLab } from "./helpers.ts";

const GW = "172.16.0.1";
const STATIC = "172.16.0.10";
const SCRIPT = join(REPO, "test/fixtures/gateway/udhcpc-script.sh");
// The stand-in VPN link (a veth the lab adds, takes down, deletes and renames at will); the last
// describe repeats the flush faults against a real OpenVPN client in a lab of its own.
const NAT_CONF = "client-1 10 tcp:8080,udp:8081\n";
const t = withLab({ clients: 2, natConf: NAT_CONF, vpn: "veth" });
const CLIENTS = ["client-0", "client-1"] as const;

let bin = "";
const procs: Subprocess[] = [];
const ip = (r: EchoReply) => (r.ok ? r.source.replace(/:\d+$/, "") : `no answer: ${r.error}`);
const env = (lab: Lab) => lab.roleEnv("gateway");

/** A client pod's VXLAN endpoint towards the gateway (what client-init does, minus addressing). */
async function vxlanClient(lab: Lab, pod: PodName): Promise<void> {
  const cmds = [
    `link add vxlan0 address ${clientMac(pod, 42)} mtu 1450 type vxlan id 42 dev eth0 dstport 8472`,
    "link set vxlan0 up",
    "route replace 198.18.0.0/16 via 198.18.0.1 dev eth0",
  ];
  await lab.exec(pod, ["ip", "-batch", "-"], { input: cmds.join("\n") + "\n" });
  await lab.exec(pod, ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan0", "dst", lab.gatewayPodIp()]);
}

async function udhcpc(lab: Lab, pod: PodName): Promise<Record<string, string>> {
  const out = join(lab.runDir, `${pod}-lease.env`);
  await lab.exec(pod, ["busybox", "udhcpc", "-i", "vxlan0", "-f", "-q", "-n", "-t", "8", "-T", "1", "-s", SCRIPT], { env: { PGW_LEASE_OUT: out }, what: `udhcpc in ${pod}` });
  return Object.fromEntries(readFileSync(out, "utf8").trim().split("\n").map((l) => l.split("=", 2) as [string, string]));
}

async function seen(lab: Lab): Promise<{ internet: number; leak: number }> {
  return { internet: (await lab.packetsSeen("internet")).packets, leak: (await lab.packetsSeen("leak")).packets };
}

/** Another container of the gateway pod opening the filter layer again and again. */
function flusher(lab: Lab, backend: "iptables" | "nft"): Subprocess {
  const once =
    backend === "iptables"
      ? "iptables -w -F; iptables -w -P INPUT ACCEPT; iptables -w -P FORWARD ACCEPT; iptables -w -P OUTPUT ACCEPT"
      : "nft flush table inet pod_gateway 2>/dev/null; true";
  const p = lab.spawn("gateway", ["sh", "-c", `while :; do ${once}; sleep 0.2; done`]);
  procs.push(p);
  return p;
}

async function stop(p: Subprocess | undefined): Promise<void> {
  if (!p || p.exitCode !== null) return;
  p.kill("SIGKILL");
  await p.exited;
}

/** TCP, UDP and ICMP from every client to both hosts; returns the probes that got an answer. */
async function probeAll(lab: Lab, clients: readonly PodName[] = CLIENTS): Promise<string[]> {
  const answered: string[] = [];
  const probes: Promise<void>[] = [];
  for (const pod of clients)
    for (const target of ["internet", "leak"] as const) {
      for (const proto of ["tcp", "udp"] as const)
        probes.push(lab.echoFrom(pod, target, proto, { timeoutMs: 1000 }).then((r) => void (r.ok && answered.push(`${pod} ${proto} ${target}`))));
      const dst = target === "internet" ? LAB.internetIp : LAB.leakHostIp;
      probes.push(
        lab.exec(pod, ["busybox", "ping", "-c", "1", "-W", "1", dst], { okCodes: [1] }).then((r) => void (r.code === 0 && answered.push(`${pod} icmp ${target}`))),
      );
    }
  await Promise.all(probes);
  return answered.sort();
}

/** Our rule, table, and the VPN link's copies in it. */
async function ourTable(lab: Lab): Promise<string[]> {
  const r = await lab.exec("gateway", ["ip", "-j", "route", "show", "table", String(KILLSWITCH_TABLE)]);
  return (JSON.parse(r.stdout || "[]") as { type?: string; dst: string; dev?: string }[]).map((x) => `${x.type ?? "unicast"} ${x.dst} ${x.dev ?? ""}`.trim());
}
const copies = async (lab: Lab) => (await ourTable(lab)).filter((l) => l.endsWith(` ${lab.vpnInterface}`));

let sidecar: Subprocess<"ignore", "pipe", "pipe"> | undefined;
let sidecarOut = { text: () => "" };

async function startSidecar(lab: Lab, configDir?: string): Promise<void> {
  const args = [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gateway", "sidecar"), "--route-check-interval", "0.2", "--firewall-check-interval", "5"];
  if (configDir) args.push("--config-dir", configDir);
  sidecar = lab.spawn("gateway", args, { env: env(lab) });
  procs.push(sidecar);
  sidecarOut = collect(sidecar);
  await waitFor("dnsmasq to bind vxlan0", () => sidecarOut.text().includes("sockets bound exclusively to interface vxlan0"), 15_000, { detail: () => sidecarOut.text() });
}

async function stopSidecar(): Promise<void> {
  if (!sidecar || sidecar.exitCode !== null) return;
  sidecar.kill("SIGTERM");
  await sidecar.exited;
}

/** Bring the VPN link up and measure how long until our table holds its routes and a client's traffic flows. */
async function vpnUpAndMeasure(lab: Lab, what: string): Promise<void> {
  await lab.setVpnLink("up");
  const t0 = performance.now();
  await waitFor("the VPN link's routes in our table", async () => (await copies(lab)).length >= 3, 10_000, { everyMs: 10, detail: () => sidecarOut.text() });
  const copied = performance.now() - t0;
  let flowing = 0;
  await waitFor("client traffic through the VPN", async () => ip(await lab.echoFrom("client-1", "internet", "tcp", { timeoutMs: 500 })) === LAB.vpnGatewayIp, 10_000, { everyMs: 0 });
  flowing = performance.now() - t0;
  console.log(`[measure] ${what}: VPN link up -> its routes in table ${KILLSWITCH_TABLE} after ${copied.toFixed(0)} ms, client traffic through it after ${flowing.toFixed(0)} ms (route check every 200 ms)`);
}

/** Both clients' VXLAN endpoints; client-1 with nat.conf's static address. */
async function setUpClients(lab: Lab): Promise<void> {
  for (const pod of CLIENTS) await vxlanClient(lab, pod);
  await lab.exec("client-1", ["ip", "-batch", "-"], { input: `addr add ${STATIC}/24 dev vxlan0\nroute replace default via ${GW} dev vxlan0\n` });
}

/**
 * With another process in the gateway pod flushing the filter layer and setting the policies to
 * ACCEPT over and over, `fault` happens; then not one probe is answered and not one packet
 * arrives at either host. `meanwhile` runs under the same conditions (e.g. the overlay's DHCP and
 * DNS, which must keep working).
 */
async function expectSealedWhileFlushed(
  lab: Lab,
  opts: { backend?: "iptables" | "nft"; fault?: () => Promise<void>; meanwhile?: () => Promise<void>; clients?: readonly PodName[] } = {},
): Promise<void> {
  const f = flusher(lab, opts.backend ?? "iptables");
  try {
    await opts.fault?.();
    await Bun.sleep(500);
    const before = await seen(lab);
    expect(await probeAll(lab, opts.clients)).toEqual([]);
    expect(await seen(lab)).toEqual(before);
    await opts.meanwhile?.();
  } finally {
    await stop(f);
  }
}

/**
 * VPN outages: the stand-in's link taken down or deleted; with OpenVPN also the client's own
 * events (tun0 goes with a killed process; a killed server ends in the client's ping-restart,
 * which deletes tun0 without persist-tun). `end` brings the VPN back (or lets it come back).
 */
const LINK_FAULTS = {
  down: { begin: (lab: Lab) => lab.setVpnLink("down"), end: async (_lab: Lab) => {} },
  deleted: { begin: (lab: Lab) => lab.setVpnLink("deleted"), end: async (_lab: Lab) => {} },
  "client killed (SIGKILL)": {
    begin: async (lab: Lab) => {
      await lab.openvpn().stop("client", "SIGKILL");
      await lab.openvpn().waitLinkGone();
    },
    end: async (_lab: Lab) => {}, // setVpnLink("up") starts a client when none runs
  },
  "server killed (SIGKILL), the client's ping-restart": {
    begin: async (lab: Lab) => {
      await lab.openvpn().stop("server", "SIGKILL");
      await lab.openvpn().waitLinkGone(15_000); // keepalive 1 4: ping-restart after 4 s
    },
    end: async (lab: Lab) => {
      const vpn = lab.openvpn();
      const n = vpn.connections();
      await vpn.start("server");
      await vpn.waitConnected(n, 40_000);
    },
  },
} as const;
type LinkFault = keyof typeof LINK_FAULTS;

/**
 * A VPN outage while another process flushes the filter table and sets the policies to ACCEPT:
 * not one probe answered, not one packet at either host, and the gateway still serves DNS and
 * DHCP on the overlay; then the VPN comes back and traffic flows.
 */
async function flushedWithLinkFault(lab: Lab, fault: LinkFault): Promise<void> {
  await expectSealedWhileFlushed(lab, {
    fault: async () => {
      await LINK_FAULTS[fault].begin(lab);
      await waitFor("the copies to leave our table", async () => (await copies(lab)).length === 0, 10_000);
    },
    meanwhile: async () => {
      expect(await lab.resolve("client-0", LAB.apiServerName, { server: GW })).toMatchObject({ ok: true, addresses: [LAB.apiServerIp] });
      expect((await udhcpc(lab, "client-0")).router).toBe(GW);
    },
  });
  await LINK_FAULTS[fault].end(lab);
  await vpnUpAndMeasure(lab, `${lab.vpnKind === "openvpn" ? "OpenVPN, " : ""}after the ${fault === "down" || fault === "deleted" ? `link was ${fault}` : fault}`);
}

beforeAll(async () => {
  requireRoot();
  bin = binPath();
  for (const tool of ["dnsmasq", "busybox", "bridge", "iptables", "nft"]) if (!which(tool)) throw new Error(`${tool} is missing: apt-get install dnsmasq-base busybox iproute2 iptables nftables`);
  await setUpClients(t.lab);
}, 30_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
});

describe("kill switch: firewall and routing layers", () => {
  test("control: routing layer removed, VPN link down, filter table flushed over and over: client probes leak", async () => {
    const lab = t.lab;
    await lab.exec("gateway", [bin, "gateway-init"], { env: env(lab), what: "gateway-init" });
    // Only the routing layer goes: no sidecar runs to put the rule back.
    await lab.exec("gateway", ["ip", "rule", "del", "pref", String(KILLSWITCH_CLIENT_RULE_PREF), "iif", "vxlan0", "lookup", String(KILLSWITCH_TABLE)]);
    await lab.setVpnLink("down");
    const f = flusher(lab, "iptables");
    try {
      await Bun.sleep(500);
      const before = await seen(lab);
      const answered = await probeAll(lab);
      const after = await seen(lab);
      console.log(`[measure] control: ${answered.length} probes answered (${answered.join(", ")}); packets at the leak host +${after.leak - before.leak}, internet host +${after.internet - before.internet}`);
      expect(answered).toContain("client-1 tcp leak");
      expect(after.leak).toBeGreaterThan(before.leak);
    } finally {
      await stop(f);
      await lab.setVpnLink("up");
    }
  }, 60_000);

  test("both layers on: DHCP, DNS and ping to .1, traffic out through the VPN, port forwards and their replies", async () => {
    const lab = t.lab;
    await lab.exec("gateway", ["iptables", "-F"]);
    const init = await lab.exec("gateway", [bin, "gateway-init"], { env: env(lab), what: "gateway-init" });
    expect(init.stderr).toContain(`kill switch routing layer: iif vxlan0 lookup ${KILLSWITCH_TABLE} (pref ${KILLSWITCH_CLIENT_RULE_PREF}): 3 ${lab.vpnInterface} route(s) copied`);
    await startSidecar(lab);
    const lease = await udhcpc(lab, "client-0");
    expect(lease).toMatchObject({ router: GW, dns: GW });
    expect(await lab.resolve("client-0", LAB.apiServerName, { server: GW })).toMatchObject({ ok: true, addresses: [LAB.apiServerIp] });
    expect((await lab.exec("client-0", ["busybox", "ping", "-c", "1", "-W", "2", GW], { okCodes: [] })).code).toBe(0);
    for (const pod of CLIENTS) expect(ip(await lab.echoFrom(pod, "internet", "tcp"))).toBe(LAB.vpnGatewayIp);
    const state = join(lab.runDir, "client-1-echo.json");
    procs.push(lab.spawn("client-1", [bin, "lab", "echo", "--tcp", "8080", "--udp", "8081", "--state", state]));
    await waitFor("the echo service in client-1", async () => (await Bun.file(state).exists()), 10_000);
    expect(ip(await lab.echoFrom("internet", LAB.vpnGatewayIp, "tcp", { port: 8080 }))).toBe(LAB.internetIp);
    expect(ip(await lab.echoFrom("internet", LAB.vpnGatewayIp, "udp", { port: 8081 }))).toBe(LAB.internetIp);
  }, 60_000);

  for (const fault of ["down", "deleted"] as const) {
    test(`VPN link ${fault}, filter table flushed and policies ACCEPT every 0.2 s: zero packets at the internet and leak hosts; DHCP and DNS to .1 still work`, async () => {
      await flushedWithLinkFault(t.lab, fault);
    }, 60_000);
  }

  test("VPN link renamed (and its routes re-added under the new name): the copies go, nothing leaks; renamed back: copied again", async () => {
    const lab = t.lab;
    const dev = lab.vpnInterface;
    const other = `${dev}x`;
    try {
      await expectSealedWhileFlushed(lab, {
        fault: async () => {
          // A link must be down to be renamed; the kernel drops its IPv4 routes then.
          await lab.exec("gateway", ["ip", "-batch", "-"], {
            input: `link set ${dev} down\nlink set ${dev} name ${other}\nlink set ${other} up\nroute replace 0.0.0.0/1 via ${LAB.vpnExitIp} dev ${other}\nroute replace 128.0.0.0/1 via ${LAB.vpnExitIp} dev ${other}\n`,
          });
          await waitFor("no copies under either name", async () => (await ourTable(lab)).every((l) => !l.endsWith(` ${dev}`) && !l.endsWith(` ${other}`)), 10_000, { detail: () => sidecarOut.text() });
        },
      });
    } finally {
      await lab.exec("gateway", ["ip", "-batch", "-"], { input: `link set ${other} down\nlink set ${other} name ${dev}\n` });
    }
    await vpnUpAndMeasure(lab, "after a rename and back");
  }, 60_000);

  test("VPN link absent when the gateway starts: nothing leaks; once it appears its routes are copied and traffic flows", async () => {
    const lab = t.lab;
    await stopSidecar();
    await lab.setVpnLink("deleted");
    await lab.exec("gateway", ["iptables", "-F"]);
    const init = await lab.exec("gateway", [bin, "gateway-init"], { env: env(lab), what: "gateway-init" });
    expect(init.stderr).toContain(`0 ${lab.vpnInterface} route(s) copied`);
    await startSidecar(lab);
    await expectSealedWhileFlushed(lab);
    await vpnUpAndMeasure(lab, "a link absent at start");
  }, 60_000);

  test("nothing stale: a sidecar restarted with a ConfigMap newer than what gateway-init applied leaves exactly what gateway-init makes of it", async () => {
    const lab = t.lab;
    await stopSidecar();
    const cfg = join(lab.runDir, "config-newer");
    cpSync(lab.configDir, cfg, { recursive: true });
    appendFileSync(join(cfg, "settings.sh"), 'VPN_LOCAL_CIDRS="198.18.0.0/16 10.0.0.0/8"\nVPN_INTERFACE_MTU=1400\n');
    writeFileSync(join(cfg, "nat.conf"), "client-1 10 tcp:9090\n");
    await startSidecar(lab, cfg);
    expect(sidecarOut.text()).toContain("network brought in line with the current settings");
    await waitFor("the firewall re-asserted with the new port forwards", () => sidecarOut.text().includes("firewall differed from the plan (changed by someone else, or a new configuration), re-asserted"), 10_000, { detail: () => sidecarOut.text() });
    // gateway-init with the same configuration finds nothing to do: the sidecar left a fresh pod's state.
    const init = await lab.exec("gateway", [bin, "gateway-init", "--config-dir", cfg], { env: env(lab), what: "gateway-init (newer ConfigMap)" });
    expect(init.stderr).toContain("gateway ready (network already as planned, firewall iptables-nft already as planned)");
    expect((await lab.exec("gateway", ["ip", "-j", "link", "show", "vxlan0"])).stdout).toContain('"mtu":1400');
    await stopSidecar();
    await lab.exec("gateway", [bin, "gateway-init"], { env: env(lab), what: "gateway-init (back to the lab's configuration)" });
  }, 60_000);

  test("nft backend: our table's chains flushed over and over with the VPN link down: zero packets at either host", async () => {
    const lab = t.lab;
    await stopSidecar();
    await lab.exec("gateway", ["nft", "flush", "ruleset"]);
    const cfg = join(lab.runDir, "config-nft");
    cpSync(lab.configDir, cfg, { recursive: true });
    appendFileSync(join(cfg, "settings.sh"), "FIREWALL_BACKEND=nft\n");
    await lab.exec("gateway", [bin, "gateway-init", "--config-dir", cfg], { env: env(lab), what: "gateway-init (nft)" });
    await startSidecar(lab, cfg);
    await expectSealedWhileFlushed(lab, {
      backend: "nft",
      fault: async () => {
        await lab.setVpnLink("down");
        await waitFor("the copies to leave our table", async () => (await copies(lab)).length === 0, 10_000);
      },
    });
    await vpnUpAndMeasure(lab, "nft backend, after the link was down");
    await stopSidecar();
  }, 60_000);
});

// The same faults with a real OpenVPN client (issue 17), and the client's own events: SIGTERM
// removes tun0 with its routes (its down script runs), a downed tun0 loses them, a killed client
// takes tun0 with it (no down script), a killed server ends in the client's ping-restart. The
// lab starts without the client, as a pod starts its VPN container after the init containers:
// gateway-init first (nothing may leak while no VPN exists), then the client connects and
// rewrites resolv.conf, then gateway-sidecar (the cluster DNS comes from gateway-init's kernel
// record). SIGUSR1 under the flusher is in openvpn-routing-layer.test.ts; the same events without
// it, with probes from the gateway itself too, in openvpn.test.ts.
describe("kill switch with a real OpenVPN client", () => {
  const ovpn = withLab({ clients: 2, natConf: NAT_CONF, vpn: "openvpn", vpnLink: "deleted" });

  test("gateway-init with no VPN yet: nothing leaks; the client connects, the sidecar starts: traffic through the tunnel, DHCP and cluster names through .1", async () => {
    const lab = ovpn.lab;
    await setUpClients(lab);
    await lab.exec("gateway", [bin, "gateway-init"], { env: env(lab), what: "gateway-init" });
    // client-1 only: client-0 has no lease before the sidecar's DHCP, so its default route is
    // still its own eth0 (its probes would never touch the gateway).
    await expectSealedWhileFlushed(lab, { clients: ["client-1"] });
    await lab.exec("gateway", [bin, "gateway-init"], { env: env(lab), what: "gateway-init (its firewall back after the flusher)" });
    await lab.setVpnLink("up");
    await startSidecar(lab);
    expect((await udhcpc(lab, "client-0")).router).toBe(GW);
    await waitFor("the tunnel's routes in our table", async () => (await copies(lab)).length >= 3, 10_000, { detail: () => sidecarOut.text() });
    for (const pod of CLIENTS) expect(ip(await lab.echoFrom(pod, "internet", "tcp"))).toBe(LAB.vpnGatewayIp);
    expect(await lab.resolve("client-0", LAB.apiServerName, { server: GW })).toMatchObject({ ok: true, addresses: [LAB.apiServerIp] });
  }, 60_000);

  for (const fault of ["down", "deleted", "client killed (SIGKILL)", "server killed (SIGKILL), the client's ping-restart"] as const)
    test(`${fault === "down" || fault === "deleted" ? `tun0 ${fault}` : `the OpenVPN ${fault}`}, filter table flushed and policies ACCEPT every 0.2 s: zero packets at the internet and leak hosts; DHCP and DNS to .1 still work`, async () => {
      await flushedWithLinkFault(ovpn.lab, fault);
    }, 90_000);

  afterAll(stopSidecar);
});
