// The lab itself, on the real kernel (root): build and teardown leave nothing behind, labs run
// side by side, the cluster DNS follows the gateway, the echo services see true source
// addresses, the VPN link can go down / away / up, and half-built leftovers are removed.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { createLab, destroyLabById, listLabs, openLab, readLabState, type Lab } from "../../src/lab/lab.ts";
import { isAlive, readNetnsInode, readNetnsNames, readPidsInNetns } from "../../src/lab/procs.ts";
import { makeLabId, runDirOf } from "../../src/lab/plan.ts";
import { binPath } from "../helpers/bin.ts";
import { LAB, selfCommand, waitFor, withLab } from "./helpers.ts";

function labNamespaces(id: string): string[] {
  return readNetnsNames().filter((n) => n.startsWith(`pgw-${id}-`)).sort();
}

function etcNetns(id: string): string[] {
  try {
    return readdirSync("/etc/netns").filter((n) => n.startsWith(`pgw-${id}-`));
  } catch {
    return [];
  }
}

function pidsOf(id: string): number[] {
  const inodes = new Set(labNamespaces(id).map((n) => readNetnsInode(n)!));
  return readPidsInNetns(inodes);
}

async function hostLinks(): Promise<string[]> {
  const r = Bun.spawnSync(["ip", "-j", "link", "show"]);
  return (JSON.parse(r.stdout.toString()) as { ifname: string }[]).map((l) => l.ifname).sort();
}

async function routes(lab: Lab, pod: "gateway"): Promise<string[]> {
  const r = await lab.exec(pod, ["ip", "-j", "route", "show"]);
  return (JSON.parse(r.stdout || "[]") as { dst: string; dev?: string }[]).map((x) => `${x.dst} ${x.dev ?? ""}`.trim());
}

// Building a lab takes well under a second; recreating the gateway and the CLI test a few.
setDefaultTimeout(30_000);

// The same tests against both VPN kinds: the veth stand-in and a real OpenVPN server and client
// (OpenVPN's own faults are in openvpn.test.ts).
for (const vpn of ["veth", "openvpn"] as const)
describe(`one lab (${vpn})`, () => {
  const t = withLab({ clients: 2, vpn });
  test("every namespace exists with its address, and the pods got the lab's resolv.conf", async () => {
    const lab = t.lab;
    expect(labNamespaces(lab.id)).toEqual(
      ["client-0", "client-1", "gateway", "internet", "leak", "node", "vpn"].map((p) => `pgw-${lab.id}-${p}`),
    );
    const addrs = await lab.exec("client-1", ["ip", "-j", "-4", "addr", "show", "dev", "eth0"]);
    expect(addrs.stdout).toContain('"local":"198.18.0.11"');
    const resolv = await lab.exec("client-0", ["cat", "/etc/resolv.conf"]);
    expect(resolv.stdout).toContain(`nameserver ${LAB.clusterDnsIp}`);
    expect(resolv.stdout).toContain("search default.svc.cluster.local svc.cluster.local cluster.local");
    expect(await routes(lab, "gateway")).toEqual(expect.arrayContaining(["0.0.0.0/1 tun0", "128.0.0.0/1 tun0", "default eth0"]));
    // Pods start with forwarding off so that gateway-init has to turn it on.
    expect((await lab.exec("gateway", ["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout.trim()).toBe("0");
    expect((await lab.exec("node", ["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout.trim()).toBe("1");
  });

  test("the generated config dir suits the lab and the role environment points at it", async () => {
    const lab = t.lab;
    const settings = await Bun.file(`${lab.configDir}/settings.sh`).text();
    expect(settings).toContain('NOT_ROUTED_TO_GATEWAY_CIDRS="198.18.0.0/16"');
    expect(settings).toContain(`RESOLV_CONF_COPY="\${POD_GATEWAY_RUN_DIR:-${lab.runDir}/gateway}/resolv_copy.conf"`);
    expect(settings).toContain('VPN_INTERFACE="tun0"');
    expect(existsSync(`${lab.configDir}/nat.conf`)).toBe(true);
    expect(lab.roleEnv("client-0")).toMatchObject({ gateway: LAB.gatewayName, K8S_DNS_ips: LAB.clusterDnsIp, POD_NAME: "client-0", POD_GATEWAY_CONFIG_DIR: lab.configDir });
    expect(lab.roleEnv("gateway")).toMatchObject({ POD_NAME: "gateway", KUBERNETES_SERVICE_HOST: LAB.apiServerIp });
    const env = await lab.exec("client-0", ["env"], { env: lab.roleEnv("client-0") });
    expect(env.stdout).toContain(`gateway=${LAB.gatewayName}`);
  });

  test("the cluster DNS answers the gateway and API server names, also through the pods' search list", async () => {
    const lab = t.lab;
    const full = await lab.resolve("client-0", LAB.gatewayName, { server: LAB.clusterDnsIp });
    expect(full).toEqual({ ok: true, addresses: [lab.gatewayPodIp()] });
    const short = await lab.resolve("client-1", "gateway.pod-gateway");
    expect(short.addresses).toEqual([lab.gatewayPodIp()]);
    expect((await lab.resolve("client-0", "kubernetes.default")).addresses).toEqual([LAB.apiServerIp]);
    const unknown = await lab.resolve("client-0", "nope.default.svc.cluster.local", { server: LAB.clusterDnsIp, timeoutMs: 1000 });
    expect(unknown.ok).toBe(false);
  });

  test("the echo service reports the source address it saw, and the counters see the same", async () => {
    const lab = t.lab;
    const hits0 = await lab.echoHits("leak");
    const pk0 = await lab.packetsSeen("leak");
    const tcp = await lab.echoFrom("client-0", "leak", "tcp");
    const udp = await lab.echoFrom("client-1", "leak", "udp");
    expect(tcp.ok && tcp.source).toMatch(/^198\.18\.0\.10:\d+$/);
    expect(udp.ok && udp.source).toMatch(/^198\.18\.0\.11:\d+$/);
    const hits = await lab.echoHits("leak");
    expect(hits.tcp).toBe(hits0.tcp + 1);
    expect(hits.udp).toBe(hits0.udp + 1);
    expect(hits.sources).toEqual(expect.arrayContaining(["198.18.0.10", "198.18.0.11"]));
    const pk = await lab.packetsSeen("leak");
    expect(pk.packets).toBeGreaterThan(pk0.packets);
    expect(pk.sources).toEqual(expect.arrayContaining(["198.18.0.10", "198.18.0.11"]));
    // GET /hits answers the same counters inside the namespace.
    const probe = await lab.exec("leak", [...selfCommand(), "lab", "probe", "--tcp", `${LAB.leakHostIp}:${LAB.echoTcpPort}`, "--json"]);
    expect(JSON.parse(probe.stdout).ok).toBe(true);
  });

  test("the gateway reaches the internet through the VPN link with its VPN-side address; the internet is not reachable without it", async () => {
    const lab = t.lab;
    const r = await lab.echoFrom("gateway", "internet", "tcp");
    expect(r.ok && r.source).toMatch(/^198\.19\.0\.2:\d+$/);
    expect((await lab.resolve("gateway", LAB.internetName, { server: LAB.vpnDnsIp })).addresses).toEqual([LAB.internetIp]);
    // A client without the gateway: its packets go node → leak host, never to the internet.
    const before = await lab.packetsSeen("leak");
    const leaked = await lab.echoFrom("client-0", "internet", "udp", { timeoutMs: 600 });
    expect(leaked.ok).toBe(false);
    const after = await lab.packetsSeen("leak");
    expect(after.packets).toBeGreaterThan(before.packets);
    expect((await lab.echoHits("internet")).sources).not.toContain("198.18.0.10");
  });

  test("setVpnLink: down and deleted drop the def1 routes (traffic falls back to the leak host), up restores them", async () => {
    const lab = t.lab;
    await lab.setVpnLink("down");
    expect(lab.vpnLinkState()).toBe("down");
    expect(await routes(lab, "gateway")).not.toContain("0.0.0.0/1 tun0");
    const before = await lab.packetsSeen("leak");
    expect((await lab.echoFrom("gateway", "internet", "udp", { timeoutMs: 600 })).ok).toBe(false);
    expect((await lab.packetsSeen("leak")).packets).toBeGreaterThan(before.packets);

    await lab.setVpnLink("deleted");
    const links = await lab.exec("gateway", ["ip", "-j", "link", "show"]);
    expect(links.stdout).not.toContain('"ifname":"tun0"');
    await lab.setVpnLink("deleted"); // idempotent

    await lab.setVpnLink("up");
    expect(await routes(lab, "gateway")).toEqual(expect.arrayContaining(["0.0.0.0/1 tun0", "128.0.0.0/1 tun0"]));
    const r = await lab.echoFrom("gateway", "internet", "tcp");
    expect(r.ok && r.source).toMatch(/^198\.19\.0\.2:/);

    await lab.setVpnLink("down");
    await lab.setVpnLink("up"); // up after down (link exists) restores the routes too
    expect((await lab.echoFrom("gateway", "internet", "tcp")).ok).toBe(true);
  });

  test("writeResolvConf rewrites the pod's resolv.conf in place (same inode, as a VPN client does)", async () => {
    const lab = t.lab;
    const path = lab.resolvConfPath("gateway");
    const ino = statSync(path).ino;
    await lab.writeResolvConf("gateway", `nameserver ${LAB.vpnDnsIp}\n`);
    expect(statSync(path).ino).toBe(ino);
    expect((await lab.exec("gateway", ["cat", "/etc/resolv.conf"])).stdout).toBe(`nameserver ${LAB.vpnDnsIp}\n`);
    expect(() => lab.resolvConfPath("node")).toThrow(/no resolv.conf/);
  });

  test("recreateGateway: new IP, processes in the old pod gone, the VPN link back, the cluster DNS follows", async () => {
    const lab = t.lab;
    const old = lab.gatewayPodIp();
    const sleeper = lab.spawn("gateway", ["sleep", "300"]);
    writeFileSync(`${lab.roleEnv("gateway").POD_GATEWAY_RUN_DIR}/old-pod-state`, "leases of the old pod\n");
    const ip = await lab.recreateGateway();
    expect(readdirSync(lab.roleEnv("gateway").POD_GATEWAY_RUN_DIR!)).toEqual([]); // a new pod's /run is empty
    expect(ip).not.toBe(old);
    expect(ip).toBe(lab.gatewayPodIp());
    expect(await sleeper.exited).not.toBe(0);
    expect((await lab.resolve("client-0", LAB.gatewayName, { server: LAB.clusterDnsIp })).addresses).toEqual([ip]);
    const eth0 = await lab.exec("gateway", ["ip", "-j", "-4", "addr", "show", "dev", "eth0"]);
    expect(eth0.stdout).toContain(`"local":"${ip}"`);
    // The new gateway pod has its VPN link again.
    const r = await lab.echoFrom("gateway", "internet", "tcp");
    expect(r.ok && r.source).toMatch(/^198\.19\.0\.2:/);
    // A fresh pod gets a fresh resolv.conf (which the new pod's OpenVPN client rewrote: it saw the fresh one).
    const resolv = (await lab.exec("gateway", ["cat", "/etc/resolv.conf"])).stdout;
    if (vpn === "veth") expect(resolv).toContain(`nameserver ${LAB.clusterDnsIp}`);
    else {
      expect(resolv).toContain(`nameserver ${LAB.vpnDnsIp}`);
      expect(readFileSync(`${lab.runDir}/openvpn/client-run/resolv.conf.original`, "utf8")).toContain(`nameserver ${LAB.clusterDnsIp}`);
    }
    const again = await lab.recreateGateway();
    expect(again).not.toBe(ip);
    expect((await lab.resolve("node", LAB.gatewayName, { server: LAB.clusterDnsIp })).addresses).toEqual([again]);
  });

  if (vpn === "veth") test("a second lab runs side by side with its own namespaces, counters and DNS, and leaves the first intact", async () => {
    const a = t.lab;
    const b = await createLab({ clients: 1 });
    try {
      expect(b.id).not.toBe(a.id);
      expect(b.vpnKind).toBe("veth");
      const aLeak = await a.echoHits("leak");
      const r = await b.echoFrom("client-0", "leak", "tcp");
      expect(r.ok && r.source).toMatch(/^198\.18\.0\.10:/);
      expect((await b.echoHits("leak")).tcp).toBe(1);
      expect((await a.echoHits("leak")).tcp).toBe(aLeak.tcp);
      expect((await b.resolve("client-0", LAB.gatewayName, { server: LAB.clusterDnsIp })).addresses).toEqual([LAB.gatewayPodIp]);
    } finally {
      await b.destroy();
    }
    expect(labNamespaces(b.id)).toEqual([]);
    expect((await a.resolve("client-0", LAB.gatewayName, { server: LAB.clusterDnsIp })).addresses).toEqual([a.gatewayPodIp()]);
  });
});

describe("teardown", () => {
  test("destroy leaves no namespace, link, /etc/netns entry, run dir or process behind; twice is fine; same id rebuilds", async () => {
    const linksBefore = await hostLinks();
    const id = makeLabId(Math.random);
    const first = await createLab({ id, clients: 1 });
    const firstPids = pidsOf(id);
    expect(firstPids.length).toBeGreaterThanOrEqual(4); // two dnsmasq, two echo services
    // `up` twice with the same id: the old lab goes, a new one stands.
    const lab = await createLab({ id, clients: 2 });
    expect(firstPids.filter(isAlive)).toEqual([]);
    expect(labNamespaces(id)).toHaveLength(7);
    const sleeper = lab.spawn("client-1", ["sleep", "300"]);
    // `ip netns exec` joins the namespace a moment after spawn returns.
    await waitFor("the sleeper to be in the lab", () => pidsOf(id).includes(sleeper.pid), 5000, { everyMs: 10 });
    const pids = pidsOf(id);
    expect(etcNetns(id).sort()).toEqual([`pgw-${id}-client-0`, `pgw-${id}-client-1`, `pgw-${id}-gateway`]);
    expect(existsSync(runDirOf(id))).toBe(true);
    expect(await hostLinks()).toEqual(linksBefore); // nothing in the host's namespace, ever

    await lab.destroy();
    await lab.destroy();
    await first.destroy();
    expect(labNamespaces(id)).toEqual([]);
    expect(etcNetns(id)).toEqual([]);
    expect(existsSync(runDirOf(id))).toBe(false);
    expect(pids.filter(isAlive)).toEqual([]);
    expect(await hostLinks()).toEqual(linksBefore);
    expect(listLabs().map((l) => l.id)).not.toContain(id);
  });

  test("destroyLabById removes a half-built lab (namespaces, a process, /etc/netns, no state file)", async () => {
    const id = makeLabId(Math.random);
    const ns = [`pgw-${id}-node`, `pgw-${id}-gateway`];
    for (const n of ns) Bun.spawnSync(["ip", "netns", "add", n]);
    mkdirSync(`/etc/netns/${ns[1]}`, { recursive: true });
    writeFileSync(`/etc/netns/${ns[1]}/resolv.conf`, "nameserver 198.18.1.10\n");
    mkdirSync(`${runDirOf(id)}/logs`, { recursive: true });
    const orphan = Bun.spawn(["ip", "netns", "exec", ns[0]!, "sleep", "300"], { detached: true, stdio: ["ignore", "ignore", "ignore"] });
    try {
      await waitFor("the orphan to be in the namespace", () => pidsOf(id).includes(orphan.pid), 5000, { everyMs: 10 });
      const info = listLabs().find((l) => l.id === id);
      expect(info?.namespaces.sort()).toEqual([...ns].sort());
      expect(info?.stateError).toBe("no state.json");
      await expect(openLab(id)).rejects.toThrow(/half-built/);

      await destroyLabById(id);
      expect(labNamespaces(id)).toEqual([]);
      expect(etcNetns(id)).toEqual([]);
      expect(existsSync(runDirOf(id))).toBe(false);
      expect(await orphan.exited).not.toBe(0);
      await destroyLabById(id); // nothing left: still fine
    } finally {
      orphan.kill("SIGKILL");
      await destroyLabById(id);
    }
  });
});

describe("the lab command (compiled binary)", () => {
  test("lab demo --vpn openvpn: every step passes against the real tunnel", async () => {
    const r = Bun.spawnSync([binPath(), "lab", "demo", "--vpn", "openvpn", "--clients", "1"], { stdout: "pipe", stderr: "pipe" });
    const out = r.stdout.toString();
    expect(out).toContain("OpenVPN udp/1194 on tun0");
    expect(out).toMatch(/VPN client connects, sets its DNS +\S+ \S+ +ok — tun0 up with the pushed routes/);
    expect(out).toMatch(/kill switch, VPN link deleted +\S+ \S+ +ok — 3\/3 probes blocked; 0 packet\(s\) reached the internet host, 0 the leak host/);
    expect(out).toContain("everything works");
    expect(r.exitCode).toBe(0);
  }, 90_000);

  test("lab up, status, exec, down", async () => {
    const bin = binPath();
    const id = makeLabId(Math.random);
    const run = (args: string[]) => {
      const r = Bun.spawnSync([bin, "lab", ...args], { stdout: "pipe", stderr: "pipe" });
      return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
    };
    try {
      const up = run(["up", "--id", id, "--clients", "1"]);
      expect(up.err).toBe("");
      expect(up.code).toBe(0);
      expect(up.out).toContain(`lab ${id} is up`);
      expect(up.out).toContain(`pgw-${id}-client-0`);
      // Commands without --id pick only labs `lab up` built, never a test's (like this file's fixture).
      expect(readLabState(id).createdBy).toBe("lab up");
      const lib = await createLab({ clients: 0 });
      try {
        expect(readLabState(lib.id).createdBy).toBe("library");
      } finally {
        await lib.destroy();
      }
      const status = run(["status", "--id", id]);
      expect(status.code).toBe(0);
      expect(status.out).toContain("cluster DNS: answers");
      expect(status.out).toContain("dnsmasq");
      const ex = run(["exec", "client-0", "--id", id, "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
      expect(ex.code).toBe(0);
      expect(ex.out).toContain("198.18.0.10/24");
      const failing = run(["exec", "client-0", "--id", id, "--", "sh", "-c", "exit 7"]);
      expect(failing.code).toBe(7);
      const down = run(["down", "--id", id]);
      expect(down.code).toBe(0);
      expect(labNamespaces(id)).toEqual([]);
      expect(run(["status", "--id", id]).code).toBe(1);
    } finally {
      await destroyLabById(id);
    }
  });
});
