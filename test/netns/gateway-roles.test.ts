// gateway-init and gateway-sidecar (the compiled binary, real dnsmasq and kernel) in the lab,
// with the shipped defaults plus the lab's settings (kill switch on). Clients are plain VXLAN
// endpoints set up by the test: client-0 takes a lease with Debian's busybox udhcpc (a standard
// DHCP client, script in test/fixtures/gateway/), client-1 has nat.conf's static octet 10 and
// port forwards. The tests share one lab and run in order.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, cpSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { clientMac } from "../../src/core/net/vxlan.ts";
import type { EchoReply, Lab, PodName } from "../../src/lab/types.ts";
import { which } from "../../src/sys/exec.ts";
import { binPath, REPO, requireRoot } from "../helpers/bin.ts";
import { collect, defaultVpnKind, LAB, waitFor, withLab } from "./helpers.ts";

const GW = "172.16.0.1";
const WATCH_PORT = 4790; // GATEWAY_WATCH_PORT's default
const STATIC = "172.16.0.10";
const SCRIPT = join(REPO, "test/fixtures/gateway/udhcpc-script.sh");
// With POD_GATEWAY_LAB_VPN=openvpn the real client is not started with the lab but by the control
// test's setVpnLink("up"): after a gateway-init, as a VPN container starts after the init containers.
const t = withLab({
  clients: 2,
  natConf: "client-1 10 tcp:8080,udp:8081\n",
  extraSettings: "DHCP_LEASE_TIME=10m\n",
  ...(defaultVpnKind() === "openvpn" ? { vpnLink: "deleted" as const } : {}),
});

let bin = "";
let sidecar: Subprocess<"ignore", "pipe", "pipe"> | undefined;
let sidecarOut = { text: () => "" };
const others: Subprocess[] = [];
/** The watch peer the SIGTERM test expects to see EOF. */
let watcher: ReturnType<typeof watchPeer> | undefined;

/** The source address an echo service saw ("ip:port" → "ip"), or the probe's error. */
const ip = (r: EchoReply) => (r.ok ? r.source.replace(/:\d+$/, "") : `no answer: ${r.error}`);

const env = (lab: Lab) => lab.roleEnv("gateway");
const gatewayInit = (lab: Lab, configDir?: string) =>
  lab.exec("gateway", [bin, "gateway-init", ...(configDir ? ["--config-dir", configDir] : [])], { env: env(lab), what: "gateway-init" });

/** A client pod's VXLAN endpoint towards the gateway (what client-init does, minus addressing). */
async function vxlanClient(lab: Lab, pod: PodName): Promise<void> {
  const cmds = [
    `link add vxlan0 address ${clientMac(pod, 42)} type vxlan id 42 dev eth0 dstport 8472`,
    "link set vxlan0 mtu 1400 up", // below the gateway's 1450: the lease's option 26 must fix it
    "route replace 198.18.0.0/16 via 198.18.0.1 dev eth0", // the cluster stays on eth0
  ];
  await lab.exec(pod, ["ip", "-batch", "-"], { input: cmds.join("\n") + "\n" });
  await lab.exec(pod, ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan0", "dst", lab.gatewayPodIp()]);
}

async function udhcpc(lab: Lab, pod: PodName): Promise<Record<string, string>> {
  const out = join(lab.runDir, `${pod}-lease.env`);
  await lab.exec(pod, ["busybox", "udhcpc", "-i", "vxlan0", "-f", "-q", "-n", "-t", "8", "-T", "1", "-O", "mtu", "-s", SCRIPT], {
    env: { PGW_LEASE_OUT: out },
    what: `udhcpc in ${pod}`,
  });
  return Object.fromEntries(readFileSync(out, "utf8").trim().split("\n").map((l) => l.split("=", 2) as [string, string]));
}

/**
 * A client sidecar's end of the watch port, as a small Bun program in a client pod: connects to
 * .1:port through vxlan0 and prints one line per event ("data <json>", "EOF", "closed", "error <code>").
 */
function watchPeer(lab: Lab, pod: PodName, port = WATCH_PORT) {
  const script = `
    const say = (l) => process.stdout.write(l + "\\n");
    const bye = (code) => setTimeout(() => process.exit(code), 20);
    Bun.connect({ hostname: ${JSON.stringify(GW)}, port: ${port}, socket: {
      open() { say("connected"); },
      data(_s, d) { say("data " + JSON.stringify(d.toString())); },
      end() { say("EOF"); },
      close() { say("closed"); bye(0); },
    } }).catch((e) => { say("error " + (e.code ?? e.message)); bye(3); });
    setInterval(() => {}, 1e6);`;
  const p = lab.spawn(pod, [process.execPath, "-e", script]);
  others.push(p);
  return { p, out: collect(p) };
}

async function seen(lab: Lab): Promise<{ internet: number; leak: number }> {
  return { internet: (await lab.packetsSeen("internet")).packets, leak: (await lab.packetsSeen("leak")).packets };
}

beforeAll(async () => {
  requireRoot();
  bin = binPath();
  for (const tool of ["dnsmasq", "busybox", "bridge", "iptables", "nft"]) if (!which(tool)) throw new Error(`${tool} is missing: apt-get install dnsmasq-base busybox iproute2 iptables nftables`);
  await vxlanClient(t.lab, "client-0");
  await vxlanClient(t.lab, "client-1");
  await t.lab.exec("client-1", ["ip", "-batch", "-"], { input: `addr add ${STATIC}/24 dev vxlan0\nroute replace default via ${GW} dev vxlan0\nlink set vxlan0 mtu 1450\n` });
}, 30_000);

afterAll(async () => {
  if (sidecar && sidecar.exitCode === null) sidecar.kill("SIGKILL");
  for (const p of others) if (p.exitCode === null) p.kill("SIGKILL");
});

describe("gateway roles in the lab", () => {
  test("control: without the kill switch a VPN link that goes down leaks (so the probes below can see a leak)", async () => {
    const lab = t.lab;
    const open = join(lab.runDir, "config-open");
    cpSync(lab.configDir, open, { recursive: true });
    appendFileSync(join(open, "settings.sh"), "VPN_BLOCK_OTHER_TRAFFIC=false\n");
    await gatewayInit(lab, open);
    await lab.setVpnLink("down");
    try {
      const before = await seen(lab);
      const r = await lab.echoFrom("client-1", "leak", "tcp");
      expect(ip(r)).toBe(lab.gatewayPodIp()); // out of eth0, masqueraded
      expect((await seen(lab)).leak).toBeGreaterThan(before.leak);
    } finally {
      await lab.setVpnLink("up");
    }
  });

  test("gateway-init (kill switch on) and the sidecar start; a standard DHCP client gets a lease with router, DNS and MTU", async () => {
    const lab = t.lab;
    const init = await gatewayInit(lab);
    expect(init.stderr).toContain("kill switch: on (traffic leaves only through tun0)");
    sidecar = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gateway", "sidecar"), "--firewall-check-interval", "1"], { env: env(lab) });
    sidecarOut = collect(sidecar);
    await waitFor("dnsmasq to bind vxlan0", () => sidecarOut.text().includes("sockets bound exclusively to interface vxlan0"), 10_000);

    const lease = await udhcpc(lab, "client-0");
    const octet = Number(lease.ip!.split(".")[3]);
    expect(lease.ip!.startsWith("172.16.0.")).toBe(true);
    expect(octet).toBeGreaterThanOrEqual(20);
    expect(octet).toBeLessThanOrEqual(254);
    expect(lease).toMatchObject({ mask: "24", router: GW, dns: GW, mtu: "1450", lease: "600", serverid: GW });
    const link = JSON.parse((await lab.exec("client-0", ["ip", "-j", "link", "show", "vxlan0"])).stdout)[0];
    expect(link.mtu).toBe(1450);
    // The lease is in the sidecar's run dir, keyed by the client's MAC.
    const leases = readFileSync(join(lab.runDir, "gateway", "sidecar", "dnsmasq.leases"), "utf8");
    expect(leases).toContain(`${clientMac("client-0", 42)} ${lease.ip}`);
  }, 30_000);

  test("client traffic leaves through the VPN with the gateway's VPN-side address", async () => {
    const lab = t.lab;
    for (const pod of ["client-0", "client-1"] as const)
      for (const proto of ["tcp", "udp"] as const) expect(ip(await lab.echoFrom(pod, "internet", proto))).toBe(LAB.vpnGatewayIp);
    expect((await lab.echoHits("internet")).sources).toEqual([LAB.vpnGatewayIp]);
  });

  test("names resolve through .1: a local domain goes to the cluster DNS", async () => {
    const lab = t.lab;
    // The gateway's resolv.conf still names the cluster DNS: it answers cluster names only.
    const local = await lab.resolve("client-0", LAB.apiServerName, { server: GW });
    expect(local).toMatchObject({ ok: true, addresses: [LAB.apiServerIp] });
    expect((await lab.resolve("client-0", LAB.internetName, { server: GW, timeoutMs: 1000 })).ok).toBe(false);
  });

  test("a rewrite of resolv.conf in place (as a VPN client does) reaches dnsmasq within a second; local names stay with the cluster DNS", async () => {
    const lab = t.lab;
    const copy = join(lab.runDir, "gateway", "resolv_copy.conf");
    expect(readFileSync(copy, "utf8")).toContain(`nameserver ${LAB.clusterDnsIp}`);
    // The original was saved once, next to the copy.
    expect(readFileSync(`${copy}.original`, "utf8")).toContain(`nameserver ${LAB.clusterDnsIp}`);
    await lab.writeResolvConf("gateway", `# written by the VPN client\nnameserver fd00::53\nnameserver ${LAB.vpnDnsIp}\n`);
    await waitFor("the copy to follow /etc/resolv.conf", () => readFileSync(copy, "utf8").includes(`nameserver ${LAB.vpnDnsIp}`), 1000, { everyMs: 20 });
    expect(readFileSync(copy, "utf8")).not.toContain("fd00::53");
    let answer;
    await waitFor("dnsmasq to use the new upstream", async () => (answer = await lab.resolve("client-0", LAB.internetName, { server: GW, timeoutMs: 500 })).ok, 1000, { everyMs: 0 });
    expect(answer).toMatchObject({ ok: true, addresses: [LAB.internetIp] });
    // The VPN's DNS does not know cluster names: this answer can only come from the cluster DNS.
    expect(await lab.resolve("client-0", LAB.apiServerName, { server: GW })).toMatchObject({ ok: true, addresses: [LAB.apiServerIp] });
    expect(readFileSync(`${copy}.original`, "utf8")).toContain(`nameserver ${LAB.clusterDnsIp}`);
  });

  test("port forwards from the VPN exit side reach the client with the static octet; other ports are rejected", async () => {
    const lab = t.lab;
    const state = join(lab.runDir, "client-1-echo.json");
    const echo = lab.spawn("client-1", [bin, "lab", "echo", "--tcp", "8080", "--udp", "8081", "--state", state]);
    others.push(echo);
    await waitFor("the echo service in client-1", () => existsSync(state), 5000);
    expect(ip(await lab.echoFrom("internet", LAB.vpnGatewayIp, "tcp", { port: 8080 }))).toBe(LAB.internetIp);
    expect(ip(await lab.echoFrom("internet", LAB.vpnGatewayIp, "udp", { port: 8081 }))).toBe(LAB.internetIp);
    // tcp/8081 is not forwarded (only udp/8081 is): nothing from the VPN reaches the client.
    expect((await lab.echoFrom("internet", LAB.vpnGatewayIp, "tcp", { port: 8081, timeoutMs: 1000 })).ok).toBe(false);
    expect((await lab.echoHits("internet")).tcp).toBeGreaterThan(0);
  });

  for (const state of ["down", "deleted"] as const) {
    test(`kill switch: with the VPN link ${state}, not one packet from a client (or the gateway) reaches the internet or the leak host`, async () => {
      const lab = t.lab;
      await lab.setVpnLink(state);
      try {
        const before = await seen(lab);
        const probes: Promise<unknown>[] = [];
        for (const pod of ["client-0", "client-1", "gateway"] as const)
          for (const target of ["internet", "leak"] as const)
            for (const proto of ["tcp", "udp"] as const) probes.push(lab.echoFrom(pod, target, proto, { timeoutMs: 1200 }).then((r) => expect(r.ok).toBe(false)));
        // DNS through the gateway (whose upstream is now unreachable) must not leak either.
        probes.push(lab.resolve("client-0", "leak.example", { server: GW, timeoutMs: 1200 }));
        await Promise.all(probes);
        expect(await seen(lab)).toEqual(before);
      } finally {
        await lab.setVpnLink("up");
      }
      // Rules match interface names; the sidecar copies the link's routes into our table again:
      // the link coming back (even re-created) carries traffic again.
      await waitFor("traffic through the VPN again", async () => ip(await lab.echoFrom("client-0", "internet", "tcp", { timeoutMs: 500 })) === LAB.vpnGatewayIp, 10_000, { everyMs: 0 });
    }, 30_000);
  }

  test("the sidecar re-asserts the client rules after a foreign `iptables -P INPUT DROP`, `-F INPUT` and a rule put before ours", async () => {
    const lab = t.lab;
    const jumpFirst = async () => (await lab.exec("gateway", ["iptables", "-S", "INPUT"])).stdout.split("\n")[1] === "-A INPUT -j POD-GATEWAY-INPUT";
    try {
      await lab.exec("gateway", ["iptables", "-P", "INPUT", "DROP"]);
      await lab.exec("gateway", ["iptables", "-F", "INPUT"]);
      await waitFor("the jump to POD-GATEWAY-INPUT to come back", jumpFirst, 5000, { everyMs: 100 });
      const reasserted = "firewall differed from the plan (changed by someone else, or a new configuration), re-asserted (iptables-nft): iptables filter INPUT: no jump to POD-GATEWAY-INPUT";
      await waitFor("the sidecar to report what it re-asserted (after its read back)", () => sidecarOut.text().includes(reasserted), 5000);
      await lab.exec("gateway", ["iptables", "-I", "INPUT", "1", "-i", "vxlan0", "-j", "DROP"]);
      await waitFor("our jump to be first again", jumpFirst, 5000, { everyMs: 100 });
      // With INPUT policy DROP and a foreign DROP for vxlan0, clients still get DNS and DHCP.
      expect(await lab.resolve("client-0", LAB.apiServerName, { server: GW })).toMatchObject({ ok: true, addresses: [LAB.apiServerIp] });
      const lease = await udhcpc(lab, "client-0");
      expect(lease.router).toBe(GW);
      expect((await lab.exec("client-0", ["busybox", "ping", "-c", "1", "-W", "2", GW], { okCodes: [] })).code).toBe(0);
    } finally {
      await lab.exec("gateway", ["iptables", "-P", "INPUT", "ACCEPT"]);
      await lab.exec("gateway", ["iptables", "-D", "INPUT", "-i", "vxlan0", "-j", "DROP"], { okCodes: [1] });
    }
  }, 20_000);

  test("the watch port: a client pod's connection to .1 through vxlan0 is greeted and held, with the kill switch on and INPUT's policy DROP", async () => {
    const lab = t.lab;
    expect(sidecarOut.text()).toContain(`watch port: listening on ${GW}:${WATCH_PORT}`);
    // Bound to the overlay's .1 only, never every address.
    expect((await lab.exec("gateway", ["ss", "-Htln", `sport = :${WATCH_PORT}`])).stdout.trim().split(/\s+/)[3]).toBe(`${GW}:${WATCH_PORT}`);
    await lab.exec("gateway", ["iptables", "-P", "INPUT", "DROP"]);
    try {
      const peer = (watcher = watchPeer(lab, "client-1"));
      await waitFor("the greeting at client-1", () => peer.out.text().includes('data "pod-gateway watch 1\\n"'), 5000, { detail: () => peer.out.text() });
      expect(peer.out.text()).toBe('connected\ndata "pod-gateway watch 1\\n"\n'); // the greeting and nothing else, still open
      // Keepalive armed: a client pod gone without a FIN must not hold its slot for ever.
      expect((await lab.exec("gateway", ["ss", "-Htno", "state", "established", `sport = :${WATCH_PORT}`])).stdout).toContain("timer:(keepalive,");
    } finally {
      await lab.exec("gateway", ["iptables", "-P", "INPUT", "ACCEPT"]);
    }
  }, 15_000);

  test("SIGTERM ends the watch connections first (the client sees EOF), then dnsmasq and the sidecar within a second, with exit 0", async () => {
    const p = sidecar!;
    const peer = watcher!;
    const pid = Number(/dnsmasq running \(pid (\d+)\)/.exec(sidecarOut.text())?.[1]);
    expect(pid).toBeGreaterThan(1);
    expect(() => process.kill(pid, 0)).not.toThrow();
    p.kill("SIGTERM");
    const code = await Promise.race([p.exited, Bun.sleep(1000).then(() => "still running after 1 s")]);
    expect(code).toBe(0);
    expect(() => process.kill(pid, 0)).toThrow();
    const out = sidecarOut.text();
    expect(out).toContain("dnsmasq stopped (exit 0)");
    // Ended before dnsmasq was told to stop (its own last line says it got the signal).
    const ended = out.indexOf("watch port: ended 1 client connection first");
    expect(ended).toBeGreaterThan(out.indexOf("SIGTERM received: stopping"));
    expect(ended).toBeLessThan(out.indexOf("exiting on receipt of SIGTERM"));
    expect(await Promise.race([peer.p.exited, Bun.sleep(2000).then(() => "client still connected after 2 s")])).toBe(0);
    expect(peer.out.text()).toBe('connected\ndata "pod-gateway watch 1\\n"\nEOF\nclosed\n');
  });

  test("restarted with DNSSEC on (the shipped default) and GATEWAY_WATCH_PORT=0: the embedded root anchors load, cluster names still resolve, the saved original is kept; no watch port listens and its accept is gone", async () => {
    const lab = t.lab;
    const cfg = join(lab.runDir, "config-dnssec");
    cpSync(lab.configDir, cfg, { recursive: true });
    appendFileSync(join(cfg, "settings.sh"), "GATEWAY_ENABLE_DNSSEC=true\nGATEWAY_WATCH_PORT=0\n");
    const watchRule = async () => (await lab.exec("gateway", ["iptables-save", "-t", "filter"])).stdout.includes('"watch from clients"');
    expect(await watchRule()).toBe(true); // gateway-init's, with the default port
    const p = lab.spawn("gateway", [bin, "gateway-sidecar", "--config-dir", cfg, "--run-dir", join(lab.runDir, "gateway", "sidecar")], { env: env(lab) });
    others.push(p);
    const out = collect(p);
    try {
      await waitFor("dnsmasq to bind vxlan0", () => out.text().includes("sockets bound exclusively to interface vxlan0"), 10_000);
      expect(out.text()).toContain("DNSSEC validation enabled");
      expect(out.text()).toContain("configured with trust anchor for <root> keytag 20326");
      expect(out.text()).toContain("configured with trust anchor for <root> keytag 38696");
      expect(out.text()).not.toContain("saved the original");
      expect(out.text()).not.toContain("watch port");
      expect((await lab.exec("gateway", ["ss", "-Htln", `sport = :${WATCH_PORT}`])).stdout.trim()).toBe("");
      expect(await watchRule()).toBe(false); // the sidecar's reconcile: nothing stale
      const peer = watchPeer(lab, "client-1");
      expect(await peer.p.exited).toBe(3);
      expect(peer.out.text()).toBe("error ECONNREFUSED\n");
      // Cluster-local names are not validated (the cluster DNS signs nothing).
      expect(await lab.resolve("client-0", LAB.apiServerName, { server: GW })).toMatchObject({ ok: true, addresses: [LAB.apiServerIp] });
      // The client's lease survives the restart (dhcp-authoritative, leases kept in the run dir).
      const again = await udhcpc(lab, "client-0");
      expect(readFileSync(join(lab.runDir, "gateway", "sidecar", "dnsmasq.leases"), "utf8")).toContain(again.ip!);
    } finally {
      p.kill("SIGTERM");
      expect(await p.exited).toBe(0);
    }
  }, 20_000);

  test("the nft backend (port forwards as sets): forwards reach the static client, other ports are rejected, the kill switch holds, a re-run applies nothing", async () => {
    const lab = t.lab;
    // No sidecar runs any more (the tests above stopped theirs): nothing re-asserts the iptables rules.
    await lab.exec("gateway", ["nft", "flush", "ruleset"]);
    const cfg = join(lab.runDir, "config-nft");
    cpSync(lab.configDir, cfg, { recursive: true });
    appendFileSync(join(cfg, "settings.sh"), "FIREWALL_BACKEND=nft\n");
    expect((await gatewayInit(lab, cfg)).stderr).toContain("firewall nft applied table");
    expect(ip(await lab.echoFrom("internet", LAB.vpnGatewayIp, "tcp", { port: 8080 }))).toBe(LAB.internetIp);
    expect(ip(await lab.echoFrom("internet", LAB.vpnGatewayIp, "udp", { port: 8081 }))).toBe(LAB.internetIp);
    expect((await lab.echoFrom("internet", LAB.vpnGatewayIp, "tcp", { port: 8081, timeoutMs: 1000 })).ok).toBe(false);
    expect(ip(await lab.echoFrom("client-1", "internet", "tcp"))).toBe(LAB.vpnGatewayIp);
    await lab.setVpnLink("down");
    try {
      const before = await seen(lab);
      const probes: Promise<unknown>[] = [];
      for (const pod of ["client-1", "gateway"] as const)
        for (const proto of ["tcp", "udp"] as const) probes.push(lab.echoFrom(pod, "leak", proto, { timeoutMs: 1200 }).then((r) => expect(r.ok).toBe(false)));
      await Promise.all(probes);
      expect(await seen(lab)).toEqual(before);
    } finally {
      await lab.setVpnLink("up");
    }
    expect((await gatewayInit(lab, cfg)).stderr).toContain("firewall nft already as planned");
  }, 20_000);
});
