// client-init and client-sidecar on the real kernel, in the lab, against the real gateway roles
// (gateway-init + gateway-sidecar with its dnsmasq), run as the compiled binary. The tests share
// one lab and run in order: static and DHCP init, re-runs, leases, isolation, then one sidecar
// through a lease renewal, a gateway that moves, a 30 s outage, an automatic renewal and SIGTERM.
//
// The client roles run with PATH holding nothing but their own drop-in names (no `ip`): any
// program they tried to run would fail the test.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ROUTE_PROTO } from "../../src/core/client/constants.ts";
import { which } from "../../src/sys/exec.ts";
import type { Lab, PodName } from "../../src/lab/types.ts";
import { collect, LAB, startGateway, waitFor, withClientDropIns, withLab } from "./helpers.ts";

const OVERLAY_GW = "172.16.0.1";
const STATIC_POD = "web-7d9f8b6c4d-x2x4z"; // a Deployment's pod; nat.conf names the Deployment "web"
const t = withLab({ clients: 3, natConf: "web 5\n", extraSettings: "DHCP_LEASE_TIME=2m\n" });

const c = withClientDropIns("client");
const procs: Subprocess[] = [];
const measured: Record<string, number> = {};

beforeAll(() => {
  if (!which("ip")) throw new Error("`ip` (iproute2) is missing (the test reads state with it): apt-get install iproute2");
  if (!which("setpriv")) throw new Error("`setpriv` is missing (the sidecar runs with only NET_ADMIN and NET_RAW): apt-get install util-linux");
  if (!which("nft")) throw new Error("`nft` is missing: apt-get install nftables");
});

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  console.log("measured (client-init and SIGTERM: ms, wall clock incl. process start; the 30 s outage: datagrams sent):", JSON.stringify(measured));
});

function clientEnv(lab: Lab, pod: PodName, extra: Record<string, string> = {}): Record<string, string> {
  return { ...lab.roleEnv(pod), ...extra };
}

/** Run as root with only these capabilities, as a container with `--cap-drop all --cap-add NET_ADMIN,NET_RAW`. */
const ONLY_NET_ADMIN_RAW = ["setpriv", "--inh-caps=-all,+net_admin,+net_raw", "--ambient-caps=-all,+net_admin,+net_raw", "--bounding-set=-all,+net_admin,+net_raw", "--"];

async function clientInit(lab: Lab, pod: PodName, extra: Record<string, string> = {}) {
  const t0 = performance.now();
  const r = await lab.exec(pod, c.role("client_init.sh"), { env: clientEnv(lab, pod, extra), okCodes: [1, 2, 3] });
  return { ...r, ms: performance.now() - t0 };
}

const startGatewayHere = (lab: Lab, runDir: string) => startGateway(lab, c.bin, runDir, { track: procs });

interface AddrInfo {
  family: string;
  local: string;
  prefixlen: number;
  valid_life_time: number;
}

async function json<T>(lab: Lab, pod: PodName, args: string[]): Promise<T[]> {
  const r = await lab.exec(pod, ["ip", "-j", ...args], { okCodes: [1] });
  return r.code === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as T[]) : [];
}

async function overlayAddr(lab: Lab, pod: PodName): Promise<AddrInfo | undefined> {
  const links = await json<{ addr_info: AddrInfo[] }>(lab, pod, ["addr", "show", "dev", "vxlan0"]);
  return links[0]?.addr_info.find((a) => a.family === "inet");
}

/** The state client-init owns, lifetimes left out, as comparable text. */
async function ownedState(lab: Lab, pod: PodName): Promise<string> {
  const [routes, routes6, link, addr] = await Promise.all([
    json<Record<string, unknown>>(lab, pod, ["-4", "route", "show", "table", "main"]),
    json<Record<string, unknown>>(lab, pod, ["-6", "route", "show", "default"]),
    json<Record<string, unknown>>(lab, pod, ["-d", "link", "show", "dev", "vxlan0"]),
    overlayAddr(lab, pod),
  ]);
  const l = link[0] as { address?: string; mtu?: number; flags?: string[]; linkinfo?: unknown } | undefined;
  return JSON.stringify({ routes, routes6, link: l && { address: l.address, mtu: l.mtu, flags: l.flags, linkinfo: l.linkinfo }, addr: addr && `${addr.local}/${addr.prefixlen}` });
}

function leaseFile(lab: Lab, runDir: string): Promise<string> {
  return Bun.file(join(lab.runDir, runDir, "dnsmasq.leases"))
    .text()
    .catch(() => "");
}

let gateway: { proc: Subprocess; out: { text: () => string } };

describe("client-init in the lab", () => {
  test("the gateway roles come up (real gateway-init and gateway-sidecar)", async () => {
    gateway = await startGatewayHere(t.lab, "gw1");
  }, 30_000);

  test("static mode through the drop-in name: a pod whose name has dashes gets its workload's nat.conf octet", async () => {
    const lab = t.lab;
    const r = await clientInit(lab, "client-0", { POD_NAME: STATIC_POD });
    measured.static = Math.round(r.ms);
    expect(r.stderr).toContain("Gateway ready and reachable");
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain("first dash"); // a workload match, not the reference's prefix rule
    const a = await overlayAddr(lab, "client-0");
    expect(a).toMatchObject({ local: "172.16.0.5", prefixlen: 24, valid_life_time: 4294967295 });
  }, 30_000);

  test("DHCP mode: a lease from the gateway, kept in the kernel as the address lifetime; no IPv6 default survives", async () => {
    const lab = t.lab;
    // An IPv6 default route the pod started with must go too.
    await lab.exec("client-1", ["ip", "-6", "addr", "add", "fd00:18::11/64", "dev", "eth0", "nodad"]);
    await lab.exec("client-1", ["ip", "-6", "route", "add", "default", "via", "fd00:18::1", "dev", "eth0"]);
    const r = await clientInit(lab, "client-1");
    measured.dhcp = Math.round(r.ms);
    expect(r.stderr).toContain("Gateway ready and reachable");
    expect(r.code).toBe(0);
    const a = await overlayAddr(lab, "client-1");
    expect(a?.local).toMatch(/^172\.16\.0\.(\d+)$/);
    expect(Number(a!.local.split(".")[3])).toBeGreaterThanOrEqual(20);
    expect(a!.valid_life_time).toBeGreaterThan(60);
    expect(a!.valid_life_time).toBeLessThanOrEqual(120);
    expect(await leaseFile(lab, "gw1")).toContain(a!.local);
    expect(await json(lab, "client-1", ["-6", "route", "show", "default"])).toEqual([]);
    const routes = await json<{ dst: string; gateway?: string; dev?: string; protocol?: string }>(lab, "client-1", ["-4", "route", "show", "default"]);
    expect(routes).toEqual([expect.objectContaining({ dst: "default", gateway: OVERLAY_GW, dev: "vxlan0", protocol: String(ROUTE_PROTO) })]);
  }, 30_000);

  test("traffic reaches the internet host only through the gateway, with its VPN-side address; DNS answers through .1", async () => {
    const lab = t.lab;
    const leakBefore = await lab.packetsSeen("leak");
    for (const pod of ["client-0", "client-1"] as const) {
      const tcp = await lab.echoFrom(pod, "internet", "tcp", { timeoutMs: 5000 });
      const udp = await lab.echoFrom(pod, "internet", "udp", { timeoutMs: 5000 });
      expect(tcp).toMatchObject({ ok: true, source: expect.stringMatching(new RegExp(`^${LAB.vpnGatewayIp.replace(/\./g, "\\.")}:`)) });
      expect(udp).toMatchObject({ ok: true, source: expect.stringMatching(new RegExp(`^${LAB.vpnGatewayIp.replace(/\./g, "\\.")}:`)) });
    }
    // The VPN client points the gateway's resolv.conf at the VPN's DNS; the gateway follows it.
    await lab.writeResolvConf("gateway", `nameserver ${LAB.vpnDnsIp}\n`);
    let dns = await lab.resolve("client-1", LAB.internetName, { server: OVERLAY_GW });
    await waitFor(`${LAB.internetName} through ${OVERLAY_GW}`, async () => (dns = await lab.resolve("client-1", LAB.internetName, { server: OVERLAY_GW })).ok, 5000);
    expect(dns.addresses).toContain(LAB.internetIp);
    // the cluster DNS stays reachable on eth0 (its route was pinned before the default route went)
    const cluster = await lab.resolve("client-1", LAB.gatewayName, { server: LAB.clusterDnsIp });
    expect(cluster.addresses).toEqual([lab.gatewayPodIp()]);
    expect((await lab.packetsSeen("leak")).packets).toBe(leakBefore.packets);
  }, 30_000);

  test("running client-init again converges: same state, nothing changed, same lease", async () => {
    const lab = t.lab;
    for (const [pod, env] of [["client-0", { POD_NAME: STATIC_POD }], ["client-1", {}]] as const) {
      const before = await ownedState(lab, pod);
      const r = await clientInit(lab, pod, env);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(", 0 change(s),");
      expect(await ownedState(lab, pod)).toBe(before);
    }
  }, 30_000);

  test("two clients get distinct leases and keep them when their vxlan0 is re-created", async () => {
    const lab = t.lab;
    const r = await clientInit(lab, "client-2");
    expect(r.code).toBe(0);
    const a1 = (await overlayAddr(lab, "client-1"))!.local;
    const a2 = (await overlayAddr(lab, "client-2"))!.local;
    expect(a1).not.toBe(a2);
    for (const pod of ["client-1", "client-2"] as const) {
      await lab.exec(pod, ["ip", "link", "del", "vxlan0"]);
      const again = await clientInit(lab, pod);
      expect(again.code).toBe(0);
    }
    expect((await overlayAddr(lab, "client-1"))!.local).toBe(a1);
    expect((await overlayAddr(lab, "client-2"))!.local).toBe(a2);
    const leases = await leaseFile(lab, "gw1");
    expect(leases.split("\n").filter((l) => l.includes(" 172.16.0.")).length).toBe(2);
  }, 30_000);

  test("the isolation check fails the init when a route the tool does not own leads around the tunnel", async () => {
    const lab = t.lab;
    // 1. a split default (0.0.0.0/1), as VPN clients install: not a default route, so not deleted
    await lab.exec("client-2", ["ip", "route", "add", "0.0.0.0/1", "via", LAB.nodeIp, "dev", "eth0"]);
    const r1 = await clientInit(lab, "client-2");
    await lab.exec("client-2", ["ip", "route", "del", "0.0.0.0/1", "via", LAB.nodeIp, "dev", "eth0"]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain("isolation check");
    expect(r1.stderr).toContain(`1.1.1.1 is reachable via ${LAB.nodeIp} dev eth0`);
    // 2. a default route in another table, chosen by a policy rule before the main table
    await lab.exec("client-2", ["ip", "route", "add", "default", "via", LAB.nodeIp, "dev", "eth0", "table", "100"]);
    await lab.exec("client-2", ["ip", "rule", "add", "pref", "100", "lookup", "100"]);
    const r2 = await clientInit(lab, "client-2");
    await lab.exec("client-2", ["ip", "rule", "del", "pref", "100"]);
    await lab.exec("client-2", ["ip", "route", "flush", "table", "100"]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain("isolation check");
    // with the stray routes gone, the same init succeeds
    expect((await clientInit(lab, "client-2")).code).toBe(0);
  }, 30_000);

  test("a bad configuration exits 2 and changes nothing", async () => {
    const lab = t.lab;
    const before = await ownedState(lab, "client-2");
    const r = await clientInit(lab, "client-2", { gateway: "" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("GATEWAY_NAME");
    expect(await ownedState(lab, "client-2")).toBe(before);
  }, 30_000);
});

// ------------------------------------------------------------------------- the sidecar

async function nftCounters(lab: Lab, pod: PodName): Promise<{ probes: number; lookups: number }> {
  const r = await lab.exec(pod, ["nft", "-j", "list", "table", "inet", "pgwtest_count"]);
  const rules = (JSON.parse(r.stdout).nftables as { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[]).filter((x) => x.rule);
  const count = (c: string) => rules.find((x) => x.rule!.comment === c)?.rule!.expr.find((e) => e.counter)?.counter!.packets ?? NaN;
  return { probes: count("probes"), lookups: count("lookups") };
}

describe("client-sidecar in the lab", () => {
  let side: Subprocess<"ignore", "pipe", "pipe">;
  let out: { text: () => string } = { text: () => "" };
  let address = "";
  // The sidecar's log explains any failure below.
  afterAll(() => {
    if (process.env.PGW_TEST_SHOW_SIDECAR_LOG) console.log(out.text());
  });

  test("starts, takes the lease over from the kernel, and renews it on SIGUSR1", async () => {
    const lab = t.lab;
    // Count what the sidecar sends: probes to .1:53 and lookups to the cluster DNS.
    await lab.exec("client-1", ["nft", "-f", "-"], {
      input: `table inet pgwtest_count {
  chain out {
    type filter hook output priority 0;
    ip daddr ${OVERLAY_GW} udp dport 53 counter comment "probes"
    ip daddr ${LAB.clusterDnsIp} udp dport 53 counter comment "lookups"
  }
}
`,
    });
    address = (await overlayAddr(lab, "client-1"))!.local;
    // As root with only NET_ADMIN and NET_RAW (`--cap-drop all --cap-add NET_ADMIN,NET_RAW`, as
    // config/kubernetes/client-*.yaml): renewals must not need NET_BIND_SERVICE (a bind to port 68).
    side = lab.spawn("client-1", [...ONLY_NET_ADMIN_RAW, ...c.role("client_sidecar.sh")], { env: clientEnv(lab, "client-1") });
    procs.push(side);
    out = collect(side);
    await waitFor("the sidecar to start", () => out.text().includes("took over the DHCP lease"), 10_000);
    // `ip netns exec`, setpriv and env exec in place: the pid is the sidecar's.
    const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(await Bun.file(`/proc/${side.pid}/status`).text())?.[1];
    expect(capEff && BigInt("0x" + capEff)).toBe((1n << 12n) | (1n << 13n)); // CAP_NET_ADMIN | CAP_NET_RAW, no CAP_NET_BIND_SERVICE (10)
    // Let a little of the lifetime run down, so a renewal is visible. The kernel shows a lifetime
    // as what was set less the whole seconds since, and the sidecar writes a renewed lease's
    // lifetime rounded down (119 for 120 s): 1.5 s after the write it shows 119 as well, so the
    // renewal could not be told apart. After 3 s it shows at most 117; a renewal, 119 for 2 s.
    await Bun.sleep(3000);
    const before = (await overlayAddr(lab, "client-1"))!.valid_life_time;
    side.kill("SIGUSR1");
    await waitFor("the renewal", async () => (await overlayAddr(lab, "client-1"))!.valid_life_time > before, 10_000, { detail: () => out.text() });
    expect((await overlayAddr(lab, "client-1"))!.local).toBe(address);
    expect(out.text()).toContain("renewing the DHCP lease");
  }, 30_000);

  test("the gateway pod is re-created with a new IP: the sidecar follows it without a new lease", async () => {
    const lab = t.lab;
    const oldIp = lab.gatewayPodIp();
    const newIp = await lab.recreateGateway();
    expect(newIp).not.toBe(oldIp);
    gateway = await startGatewayHere(lab, "gw2");
    await waitFor("client-1's traffic to flow again", async () => (await lab.echoFrom("client-1", "internet", "udp", { timeoutMs: 500 })).ok, 20_000, { everyMs: 100 });
    const link = (await json<{ linkinfo: { info_data: { remote: string } } }>(lab, "client-1", ["-d", "link", "show", "dev", "vxlan0"]))[0]!;
    expect(link.linkinfo.info_data.remote).toBe(newIp);
    expect((await overlayAddr(lab, "client-1"))!.local).toBe(address);
    expect(out.text()).toContain(`gateway pod moved from ${oldIp} to ${newIp}`);
    // No DHCP exchange since the sidecar started: the client library logs every lease it gets.
    expect(out.text()).not.toContain("leased ");
    expect(out.text()).not.toContain("re-initialising");
    expect(side.exitCode).toBeNull();
  }, 60_000);

  test("the gateway is unreachable for 30 s: the sidecar neither exits nor spins (bounded fast probing, jittered lookups), and recovers", async () => {
    const lab = t.lab;
    const t0 = performance.now();
    const before = await nftCounters(lab, "client-1");
    // Drop the VXLAN port in the gateway pod: to the client it is simply gone.
    await lab.exec("gateway", ["nft", "-f", "-"], {
      input: "table inet pgwtest_outage {\n  chain in {\n    type filter hook input priority -400;\n    udp dport 8472 drop\n  }\n}\n",
    });
    await Bun.sleep(30_000);
    const during = await nftCounters(lab, "client-1");
    // The counting window: the 30 s plus the nft commands around them (slow on a loaded machine).
    const windowMs = performance.now() - t0;
    await lab.exec("gateway", ["nft", "delete", "table", "inet", "pgwtest_outage"]);
    expect(side.exitCode).toBeNull();
    const probes = during.probes - before.probes;
    const lookups = during.lookups - before.lookups;
    measured.outageProbes = probes;
    measured.outageLookups = lookups;
    // While lost (the first minute of an outage) a probe every 250 ms: about the counting window /
    // 250 ms (+ the first at the usual cadence; a lookup that falls due between two ticks starts
    // its tick early, each lookup going with a probe, so a few more: seen 123-125 in 30.1-30.3 s —
    // spinning would be hundreds), and it never stops trying (a slow machine stretches the cadence,
    // hence the loose lower bound).
    expect(probes).toBeGreaterThanOrEqual(30);
    expect(probes).toBeLessThanOrEqual(Math.floor(windowMs / 250) + 6);
    // Lookups of the gateway's name (one cluster DNS server here) on their own jittered schedule:
    // 0.5 s × (1 ± 0.5) apart, so between 40 and 120 in 30 s (fewer on a slow machine); each goes
    // with a probe, never more than one per probe.
    expect(lookups).toBeGreaterThanOrEqual(12);
    expect(lookups).toBeLessThanOrEqual(Math.floor(windowMs / 250) + 6);
    expect(lookups).toBeLessThanOrEqual(probes);
    expect(out.text()).toContain("did not answer");
    await waitFor("client-1's traffic to flow again", async () => (await lab.echoFrom("client-1", "internet", "udp", { timeoutMs: 500 })).ok, 20_000, { everyMs: 100 });
    expect(side.exitCode).toBeNull();
  }, 60_000);

  test("the lease is renewed at T1 without being asked", async () => {
    const lab = t.lab;
    let last = (await overlayAddr(lab, "client-1"))!.valid_life_time;
    // The 2-minute lease was renewed on SIGUSR1 about 45 s ago: T1 comes within ~20 s.
    await waitFor(
      "an automatic renewal (the address lifetime going back up)",
      async () => {
        const now = (await overlayAddr(lab, "client-1"))?.valid_life_time ?? 0;
        const renewed = now > last + 2;
        last = now;
        return renewed;
      },
      90_000,
      { everyMs: 1000 },
    );
    expect((await overlayAddr(lab, "client-1"))!.local).toBe(address);
  }, 100_000);

  test("SIGTERM: the sidecar exits 0 at once; the lease is not released (the app may still use the address) but shortened", async () => {
    const lab = t.lab;
    await waitFor("the lease in the new gateway's lease file", async () => (await leaseFile(lab, "gw2")).includes(address), 5_000);
    const t0 = performance.now();
    side.kill("SIGTERM");
    const code = await Promise.race([side.exited, Bun.sleep(10_000).then(() => "still running")]);
    measured.sigtermExit = Math.round(performance.now() - t0);
    expect(code).toBe(0);
    expect(out.text()).toContain(`not releasing the DHCP lease of ${address}`);
    // A renewal asking for 120 s (this lab's lease time is 2 min already; test/netns/dhcp-churn.test.ts shows the pool effect).
    expect(out.text()).toContain("shortened it to 120 s");
    // Releasing is for a pod whose other containers are done (test/netns/job-completion.test.ts).
    expect((await leaseFile(lab, "gw2")).includes(address)).toBe(true);
  }, 30_000);
});
