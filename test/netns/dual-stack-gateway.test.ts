// Issue 13 §3/§6 on the real kernel: a dual-stack gateway pod (the lab's IPv6 option) with the
// kill switch on, for the iptables-nft and the native nft backend.
//   - IPv6 neighbour discovery works: the gateway connects to its IPv6 router (the node) after its
//     neighbour cache was flushed. Control: with our ND/MLD accepts deleted, the same connection fails.
//   - An IPv6 CIDR of VPN_LOCAL_CIDRS is routed via eth0's IPv6 gateway (our protocol) and
//     reached there, although the "VPN" holds ::/1 and 8000::/1 (as OpenVPN's ipv6 redirect does).
//   - Other IPv6 output on eth0 is dropped: a host route via eth0 to an outside address (as a VPN
//     client adds for its server) leads nowhere; a counter at the node's uplink host sees nothing,
//     while the same connection attempt from a pod without the kill switch is counted there.
// The same ND allowance holds in the fail-closed (blocking) ruleset.
// And the client side of a dual-stack cluster: after client-init, IPv6 service traffic stays on
// eth0 and the IPv6 default route is gone.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, chmodSync, cpSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { LAB6, type Lab } from "../../src/lab/types.ts";
import { which } from "../../src/sys/exec.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { collect, LAB, waitFor, withLab } from "./helpers.ts";

const t = withLab({
  clients: 1,
  ipv6: true,
  extraSettings: `VPN_LOCAL_CIDRS="198.18.0.0/16 ${LAB6.clusterCidr}"\nNOT_ROUTED_TO_GATEWAY_CIDRS="198.18.0.0/16 ${LAB6.clusterCidr}"\n`,
});
let bin = "";
const procs: Subprocess[] = [];
const COUNTER_TABLE = "h13i_outside";

function config(lab: Lab, name: string, extra: string): string {
  const cfg = join(lab.runDir, name);
  cpSync(lab.configDir, cfg, { recursive: true });
  appendFileSync(join(cfg, "settings.sh"), extra);
  return cfg;
}

/** Packets that reached the leak host (the node's uplink) for LAB6.outsideIp. */
async function outsideCount(lab: Lab): Promise<number> {
  const r = await lab.exec("leak", ["nft", "-j", "list", "counter", "inet", COUNTER_TABLE, "outside"]);
  const doc = JSON.parse(r.stdout) as { nftables: { counter?: { packets: number } }[] };
  const c = doc.nftables.find((x) => x.counter)?.counter;
  if (!c) throw new Error(`no counter in ${r.stdout}`);
  return c.packets;
}

/** The test's own TCP listener on the node (every address, so the router's and the service's). */
const NODE_PORT = 7777;

/**
 * A TCP connection from a pod (this machine has no ping): "connected" proves the path and, on a
 * flushed neighbour cache, neighbour discovery; anything else is the failure's kind.
 */
async function tcp6(lab: Lab, pod: "gateway" | "client-0", host: string, port = NODE_PORT, ms = 2000): Promise<string> {
  const script = `
    const t = setTimeout(() => { console.log("timeout"); process.exit(1); }, ${ms});
    Bun.connect({ hostname: ${JSON.stringify(host)}, port: ${port}, socket: {
      open(s) { console.log("connected"); s.end(); process.exit(0); },
      data() {},
      connectError(s, e) { console.log("error " + (e.code ?? e.message)); process.exit(1); },
    } }).catch((e) => { console.log("error " + (e.code ?? e.message)); process.exit(1); });`;
  const r = await lab.exec(pod, [process.execPath, "-e", script], { okCodes: [1] });
  return r.stdout.trim();
}

interface Route6 {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
}

async function routeGet6(lab: Lab, pod: "gateway" | "client-0", dst: string): Promise<{ code: number; route?: Route6 }> {
  const r = await lab.exec(pod, ["ip", "-j", "-6", "route", "get", dst], { okCodes: [2] });
  return { code: r.code, route: r.code === 0 ? (JSON.parse(r.stdout) as Route6[])[0] : undefined };
}

/** Deletes our ND/MLD accepts (the control): what the gateway would be without §6. */
async function deleteNdAccepts(lab: Lab, backend: "iptables-nft" | "nft"): Promise<number> {
  if (backend === "nft") {
    const list = await lab.exec("gateway", ["nft", "-a", "list", "chain", "inet", "pod_gateway", "output"]);
    const handles = list.stdout.split("\n").filter((l) => l.includes("icmpv6 type")).map((l) => /# handle (\d+)/.exec(l)?.[1]).filter((h): h is string => h !== undefined);
    for (const h of handles) await lab.exec("gateway", ["nft", "delete", "rule", "inet", "pod_gateway", "output", "handle", h]);
    return handles.length;
  }
  const save = await lab.exec("gateway", ["ip6tables-nft-save", "-t", "filter"]);
  const specs = save.stdout.split("\n").filter((l) => l.startsWith("-A POD-GATEWAY-OUTPUT ") && l.includes("--icmpv6-type"));
  for (const s of specs) {
    // The spec as iptables-save printed it; only the comment is quoted (no spaces elsewhere).
    const args = s.slice(3).match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"(.*)"$/, "$1"));
    await lab.exec("gateway", ["ip6tables-nft", "-D", ...args]);
  }
  return specs.length;
}

beforeAll(async () => {
  requireRoot();
  bin = binPath();
  for (const tool of ["nft", "iptables-nft", "ip6tables-nft", "ss"]) if (!which(tool)) throw new Error(`${tool} is missing: apt-get install nftables iptables iproute2`);
  const lab = t.lab;
  // The "VPN" takes all of IPv6 (OpenVPN's redirect-gateway ipv6 adds these two halves), so a
  // VPN_LOCAL_CIDRS route is what keeps the cluster's IPv6 on eth0; and a host route to an
  // outside address via eth0, as a VPN client adds for its server, is the leak path to close.
  await lab.exec("gateway", ["ip", "-6", "route", "add", "::/1", "dev", "tun0"]);
  await lab.exec("gateway", ["ip", "-6", "route", "add", "8000::/1", "dev", "tun0"]);
  await lab.exec("gateway", ["ip", "-6", "route", "add", `${LAB6.outsideIp}/128`, "via", LAB6.nodeIp, "dev", "eth0"]);
  const listener = lab.spawn("node", [process.execPath, "-e", `Bun.listen({ hostname: "::", port: ${NODE_PORT}, socket: { open(s) { s.end(); }, data() {} } }); setInterval(() => {}, 1e9);`]);
  procs.push(listener);
  await waitFor("the node's TCP listener", async () => (await lab.exec("node", ["ss", "-Htln", `sport = :${NODE_PORT}`])).stdout.includes(String(NODE_PORT)), 10_000);
  // What reaches the node's uplink for the outside address is counted at the leak host.
  const counter = `table inet ${COUNTER_TABLE} {\n  counter outside { }\n  chain prerouting {\n    type filter hook prerouting priority -300; policy accept;\n    ip6 daddr ${LAB6.outsideIp} counter name "outside"\n  }\n}\n`;
  await lab.exec("leak", ["nft", "-f", "-"], { input: counter });
}, 30_000);

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
});

describe("dual-stack gateway with the kill switch on", () => {
  test("the lab's IPv6 option: pods and node are dual-stack, the client reaches the outside address through the node (counted)", async () => {
    const lab = t.lab;
    const before = await outsideCount(lab);
    // Nobody answers at the leak host (it forwards nothing); the point is that it counts the SYNs.
    expect(await tcp6(lab, "client-0", LAB6.outsideIp, 80, 1500)).toBe("timeout");
    await waitFor("the leak host's count", async () => (await outsideCount(lab)) > before, 5_000);
    expect(await tcp6(lab, "client-0", LAB6.nodeIp)).toBe("connected");
  }, 30_000);

  for (const backend of ["iptables-nft", "nft"] as const) {
    test(`${backend}: ND on eth0 works, the IPv6 VPN_LOCAL_CIDRS leave via eth0, other IPv6 on eth0 is dropped; without the ND accepts the router is unreachable`, async () => {
      const lab = t.lab;
      await lab.exec("gateway", ["nft", "flush", "ruleset"]);
      const init = await lab.exec("gateway", [bin, "gateway-init", "--config-dir", config(lab, `config-${backend}`, `FIREWALL_BACKEND=${backend}\n`)], { env: lab.roleEnv("gateway"), what: "gateway-init" });
      expect(init.stderr).toContain("gateway ready");
      expect(init.stderr).toContain(`routes (IPv6): ${LAB6.clusterCidr} via ${LAB6.nodeIp} dev eth0`);

      // A neighbour left FAILED by the previous test's control makes the kernel pass over routes
      // via it (the IPv6 route lookup skips a next hop known to be unreachable): start clean.
      await lab.exec("gateway", ["ip", "-6", "neigh", "flush", "dev", "eth0"]);
      // §3: the route, and the kernel's choice for a cluster IPv6 service despite the VPN's ::/1 + 8000::/1.
      const ours = JSON.parse((await lab.exec("gateway", ["ip", "-j", "-6", "route", "show", "proto", "201"])).stdout) as Route6[];
      expect(ours.map((r) => [r.dst, r.gateway, r.dev])).toEqual([[LAB6.clusterCidr, LAB6.nodeIp, "eth0"]]);
      const svc = await routeGet6(lab, "gateway", LAB6.serviceIp);
      expect([svc.route?.dev, svc.route?.gateway]).toEqual(["eth0", LAB6.nodeIp]);
      expect((await routeGet6(lab, "gateway", "2001:db8:1::1")).route?.dev).toBe("tun0");

      // §6: ND on a flushed neighbour cache, then the service address over eth0.
      expect(await tcp6(lab, "gateway", LAB6.nodeIp)).toBe("connected");
      expect(await tcp6(lab, "gateway", LAB6.serviceIp)).toBe("connected");

      // Other IPv6 out of eth0 (the host route to the outside address) is dropped: nothing arrives.
      const before = await outsideCount(lab);
      expect(await tcp6(lab, "gateway", LAB6.outsideIp, 80, 1500)).not.toBe("connected");
      expect(await outsideCount(lab)).toBe(before);

      // A re-run changes nothing (the IPv6 routes included).
      const again = await lab.exec("gateway", [bin, "gateway-init", "--config-dir", join(lab.runDir, `config-${backend}`)], { env: lab.roleEnv("gateway"), what: "gateway-init (re-run)" });
      expect(again.stderr).toContain("network already as planned");

      // Control: the same kill switch without our ND/MLD accepts loses the IPv6 router.
      expect(await deleteNdAccepts(lab, backend)).toBe(5);
      await lab.exec("gateway", ["ip", "-6", "neigh", "flush", "dev", "eth0"]);
      expect(await tcp6(lab, "gateway", LAB6.nodeIp)).not.toBe("connected");
    }, 120_000);
  }
});

describe("dual-stack gateway, failed closed", () => {
  test("iptables-nft: with the blocking ruleset in (the rules read back never match), ND still works and the IPv6 VPN_LOCAL_CIDRS are reached; other IPv6 on eth0 is still dropped", async () => {
    const lab = t.lab;
    // Unverifiable: every IPv4 save misses our FORWARD chain's rules, so gateway-init fails closed.
    const wrapDir = join(lab.runDir, "lying-save");
    mkdirSync(wrapDir, { recursive: true });
    const save = which("iptables-nft-save")!;
    writeFileSync(join(wrapDir, "iptables-nft-save"), `#!/bin/sh\n'${save}' "$@" | grep -v -- '^-A POD-GATEWAY-FORWARD '; exit 0\n`);
    chmodSync(join(wrapDir, "iptables-nft-save"), 0o755);
    await lab.exec("gateway", ["nft", "flush", "ruleset"]);
    const cfg = config(lab, "config-failclosed", "FIREWALL_BACKEND=iptables-nft\n");
    const init = await lab.exec("gateway", [bin, "gateway-init", "--config-dir", cfg], { env: { ...lab.roleEnv("gateway"), PATH: `${wrapDir}:${process.env.PATH}` }, okCodes: [1] });
    expect(init.code).toBe(1);
    expect(init.stderr).toContain("fail closed");
    const rules6 = (await lab.exec("gateway", ["ip6tables-nft-save", "-t", "filter"])).stdout.split("\n").filter((l) => l.startsWith("-A POD-GATEWAY-OUTPUT "));
    expect(rules6.at(-1)).toContain('--comment "fail closed" -j DROP');
    expect(rules6.filter((l) => l.includes("--icmpv6-type"))).toHaveLength(5);
    await lab.exec("gateway", ["ip", "-6", "neigh", "flush", "dev", "eth0"]);
    expect(await tcp6(lab, "gateway", LAB6.nodeIp)).toBe("connected");
    expect(await tcp6(lab, "gateway", LAB6.serviceIp)).toBe("connected");
    const before = await outsideCount(lab);
    expect(await tcp6(lab, "gateway", LAB6.outsideIp, 80, 1500)).not.toBe("connected");
    expect(await outsideCount(lab)).toBe(before);
    // Control: the blocking ruleset without the ND accepts loses the router.
    expect(await deleteNdAccepts(lab, "iptables-nft")).toBe(5);
    await lab.exec("gateway", ["ip", "-6", "neigh", "flush", "dev", "eth0"]);
    expect(await tcp6(lab, "gateway", LAB6.nodeIp)).not.toBe("connected");
  }, 120_000);
});

describe("dual-stack client", () => {
  test("the gateway sidecar restores a missing IPv6 VPN_LOCAL_CIDRS route at start; after client-init, IPv6 service traffic stays on eth0 and the IPv6 default is gone (nothing else of IPv6 leaves)", async () => {
    const lab = t.lab;
    await lab.exec("gateway", ["nft", "flush", "ruleset"]);
    await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init" });
    // The sidecar brings the network in line at start, the IPv6 VPN_LOCAL_CIDRS routes included.
    await lab.exec("gateway", ["ip", "-6", "route", "del", LAB6.clusterCidr, "proto", "201"]);
    const proc = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gw")], { env: lab.roleEnv("gateway") });
    procs.push(proc);
    const out = collect(proc);
    await waitFor("the gateway's dnsmasq", () => out.text().includes("dnsmasq running") || proc.exitCode !== null, 15_000, { detail: out.text });
    expect(proc.exitCode).toBeNull();
    expect(out.text()).toContain("network brought in line with the current settings (1 changes)");
    expect((await lab.exec("gateway", ["ip", "-6", "route", "show", "proto", "201"])).stdout).toContain(`${LAB6.clusterCidr} via ${LAB6.nodeIp} dev eth0`);

    const r = await lab.exec("client-0", [bin, "client-init"], { env: lab.roleEnv("client-0"), okCodes: [1, 2, 3] });
    expect(r.code, r.stderr).toBe(0);
    const defaults = JSON.parse((await lab.exec("client-0", ["ip", "-j", "-6", "route", "show", "default"])).stdout || "[]") as Route6[];
    expect(defaults).toEqual([]);
    const svc = await routeGet6(lab, "client-0", LAB6.serviceIp);
    expect([svc.route?.dev, svc.route?.gateway]).toEqual(["eth0", LAB6.nodeIp]);
    expect(await tcp6(lab, "client-0", LAB6.serviceIp)).toBe("connected");
    expect(await tcp6(lab, "client-0", LAB6.nodeIp)).toBe("connected");
    // No IPv6 path out of the cluster: no route, nothing counted at the uplink.
    const before = await outsideCount(lab);
    expect((await routeGet6(lab, "client-0", LAB6.outsideIp)).code).toBe(2);
    expect(await tcp6(lab, "client-0", LAB6.outsideIp, 80)).toMatch(/^error /);
    expect(await outsideCount(lab)).toBe(before);
    // IPv4 goes to the gateway as before.
    expect((await lab.exec("client-0", ["ip", "-j", "route", "get", LAB.internetIp])).stdout).toContain('"dev":"vxlan0"');
  }, 120_000);
});
