// gateway-init as the compiled binary on the real kernel, each in a throwaway network namespace
// of its own (a pod's eth0 and default route, nothing else): repeated runs on every firewall
// backend leave byte-identical state, a bad nat.conf changes nothing and exits 2, and a
// firewall that cannot be applied leaves traffic blocked (fail closed).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseNftTableJson } from "../../src/core/firewall/render-nft.ts";
import { ProcessRunner, which, type RunResult } from "../../src/sys/exec.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";

const PREFIX = `pgwt${Math.random().toString(36).slice(2, 8)}`;
const made: string[] = [];
const host = new ProcessRunner();
let bin = "";
let dir = "";

async function makePod(name: string): Promise<string> {
  const ns = `${PREFIX}-${name}`;
  await host.run(["ip", "netns", "add", ns]);
  made.push(ns);
  const input = [
    "link set lo up",
    "link add eth0 type veth peer name eth0p",
    "link set eth0 up",
    "link set eth0p up",
    "addr add 198.18.0.2/24 dev eth0",
    "route add default via 198.18.0.1",
  ].join("\n");
  await host.run(["ip", "-n", ns, "-batch", "-"], { input: input + "\n" });
  return ns;
}

function inNs(ns: string, argv: string[], opts: { env?: Record<string, string>; okCodes?: number[] } = {}): Promise<RunResult> {
  return host.run(["ip", "netns", "exec", ns, ...argv], { env: { KUBERNETES_SERVICE_HOST: "198.18.1.1", ...opts.env }, okCodes: opts.okCodes });
}

function configDir(name: string, settings: string, nat = ""): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, "settings.sh"), settings);
  writeFileSync(join(d, "nat.conf"), nat);
  return d;
}

/** Everything gateway-init may touch, as text: every rule of every backend, links, rules, routes, forwarding. */
async function snapshot(ns: string): Promise<string> {
  const strip = (t: string) => t.split("\n").filter((l) => !l.startsWith("#")).map((l) => l.replace(/\[\d+:\d+\]$/, "[0:0]")).join("\n");
  const parts: string[] = [];
  for (const cmd of [["iptables-nft-save"], ["ip6tables-nft-save"], ["iptables-legacy-save"], ["ip6tables-legacy-save"]]) parts.push(`## ${cmd[0]}`, strip((await inNs(ns, cmd)).stdout));
  parts.push("## nft", (await inNs(ns, ["nft", "-s", "list", "ruleset"])).stdout);
  parts.push("## links", (await inNs(ns, ["ip", "-d", "-o", "link", "show"])).stdout);
  parts.push("## addrs", (await inNs(ns, ["ip", "-o", "-4", "addr", "show"])).stdout);
  parts.push("## rules", (await inNs(ns, ["ip", "rule", "show"])).stdout);
  parts.push("## routes", (await inNs(ns, ["ip", "-4", "route", "show", "table", "all"])).stdout); // IPv6 link-local routes appear as DAD completes: not ours
  parts.push("## ip_forward", (await inNs(ns, ["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout);
  return parts.join("\n");
}

/**
 * What a pod's state means rather than how it was reached: every iptables flavour's saves with
 * empty built-in tables left out (a table once used stays listed), our nft table (or its absence:
 * iptables-nft's own tables are in its saves), addresses, rules, routes, forwarding.
 */
async function ourState(ns: string): Promise<string> {
  const parts: string[] = [];
  for (const cmd of ["iptables-nft-save", "ip6tables-nft-save", "iptables-legacy-save", "ip6tables-legacy-save"]) {
    const tables = (await inNs(ns, [cmd])).stdout.split(/^COMMIT$/m).map((t) => t.split("\n").filter((l) => l !== "" && !l.startsWith("#")).map((l) => l.replace(/\[\d+:\d+\]$/, "")));
    const used = tables.filter((t) => t.some((l) => l.startsWith("-A ") || (l.startsWith(":") && !/ ACCEPT $/.test(l))));
    parts.push(`## ${cmd}`, ...used.map((t) => t.join("\n")));
  }
  const nft = await inNs(ns, ["nft", "-s", "list", "table", "inet", "pod_gateway"], { okCodes: [1] });
  parts.push("## nft table inet pod_gateway", nft.code === 0 ? nft.stdout : "absent");
  parts.push("## addrs", (await inNs(ns, ["ip", "-o", "-4", "addr", "show"])).stdout.replace(/^\d+: /gm, ""));
  parts.push("## rules", (await inNs(ns, ["ip", "rule", "show"])).stdout);
  parts.push("## routes", (await inNs(ns, ["ip", "-4", "route", "show", "table", "all"])).stdout);
  parts.push("## ip_forward", (await inNs(ns, ["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout);
  return parts.join("\n");
}

/** Every nf_tables rule with its handle (iptables-legacy's rules are not there: empty for it). */
async function handles(ns: string): Promise<string> {
  return (await inNs(ns, ["nft", "-a", "-s", "list", "ruleset"])).stdout;
}

const NAT = "web 10 tcp:8080,udp:8081\nmail 11 tcp:25\n";

beforeAll(() => {
  requireRoot();
  bin = binPath();
  for (const tool of ["ip", "iptables-nft-restore", "iptables-legacy-restore", "ip6tables-nft-restore", "ip6tables-legacy-restore", "nft"])
    if (!which(tool)) throw new Error(`${tool} is missing: apt-get install iproute2 iptables nftables`);
  dir = mkdtempSync(join(tmpdir(), "pgw-gwinit-"));
});

afterAll(async () => {
  for (const ns of made) await host.run(["ip", "netns", "del", ns], { okCodes: [1] });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("gateway-init run again and again", () => {
  for (const backend of ["iptables-nft", "iptables-legacy", "nft"] as const) {
    test(`${backend}: the second and the tenth run leave byte-identical rules, links, rules and routes`, async () => {
      const ns = await makePod(backend);
      const cfg = configDir(backend, `FIREWALL_BACKEND=${backend}\n`, NAT);
      const run = () => inNs(ns, [bin, "gateway-init", "--config-dir", cfg]);
      const first = await run();
      expect(first.stderr).toContain(`firewall ${backend} applied`);
      const after1 = await snapshot(ns);
      const handles1 = await handles(ns);
      const second = await run();
      // The re-run read everything and applied nothing: no rule was even re-created (nf_tables
      // gives every new rule a new handle; iptables-nft's rules are nf_tables rules too).
      expect(second.stderr).toContain(`(network already as planned, firewall ${backend} already as planned)`);
      expect(await handles(ns)).toBe(handles1);
      const after2 = await snapshot(ns);
      for (let i = 3; i <= 10; i++) await run();
      const after10 = await snapshot(ns);
      expect(after2).toBe(after1);
      expect(after10).toBe(after1);
      // What the first run made is really there, on this backend only.
      if (backend === "nft") {
        expect(after1).toContain("table inet pod_gateway");
        expect(after1).not.toContain("POD-GATEWAY");
      } else {
        const save = (await inNs(ns, [`iptables-${backend === "iptables-nft" ? "nft" : "legacy"}-save`])).stdout;
        expect(save.match(/^-A FORWARD -j POD-GATEWAY-FORWARD$/gm)).toHaveLength(2); // filter and mangle
        expect(save).toContain("-A POD-GATEWAY-PREROUTING -i tun0 -p tcp -m tcp --dport 25");
        expect(after1).not.toContain("table inet pod_gateway");
      }
      expect(after1.match(/suppress_prefixlength 0/g)).toHaveLength(1);
      expect(after1).toMatch(/vxlan0: .* mtu 1450 .*\n?.*vxlan id 42 dev eth0 .*dstport 8472/);
      expect(after1).toContain("## ip_forward\n1");
      // The re-runs planned no network change at all.
      expect((await run()).stderr).toContain("network already as planned");
    });
  }

  for (const backend of ["iptables-nft", "iptables-legacy", "nft"] as const) {
    test(`${backend}: a changed nat.conf on a re-run replaces the port forwards, and the next run is a no-op again`, async () => {
      const ns = await makePod(`${backend}-nat`);
      const run = (name: string, nat: string) => inNs(ns, [bin, "gateway-init", "--config-dir", configDir(`${backend}-${name}`, `FIREWALL_BACKEND=${backend}\n`, nat)]);
      const NAT2 = "web 10 tcp:8080\nmail 12 tcp:2525\n";
      await run("before", NAT);
      expect((await run("after", NAT2)).stderr).toContain(`firewall ${backend} applied`);
      if (backend === "nft") {
        const sets = parseNftTableJson((await inNs(ns, ["nft", "-j", "list", "table", "inet", "pod_gateway"])).stdout).sets;
        expect(sets.get("pf_dnat_tcp")!.elements.sort()).toEqual(["2525 : 172.16.0.12", "8080 : 172.16.0.10"]);
        expect(sets.get("pf_fwd_tcp")!.elements.sort()).toEqual(["172.16.0.10 . 8080", "172.16.0.12 . 2525"]);
        expect([...sets.keys()].sort()).toEqual(["pf_dnat_tcp", "pf_fwd_tcp"]);
      } else {
        const save = (await inNs(ns, [`iptables-${backend.slice("iptables-".length)}-save`])).stdout;
        expect(save).toContain('-A POD-GATEWAY-PREROUTING -i tun0 -p tcp -m tcp --dport 2525 -m comment --comment "port forward mail tcp/2525" -j DNAT --to-destination 172.16.0.12:2525');
        expect(save).not.toContain("172.16.0.11");
        expect(save).not.toContain("8081");
      }
      expect((await run("after", NAT2)).stderr).toContain(`firewall ${backend} already as planned`);
    });
  }

  /** The commands a run started, from its debug log. */
  const started = (stderr: string) => stderr.split("\n").filter((l) => l.includes("[exec]")).map((l) => l.slice(l.indexOf("[exec]") + 7));

  test("the choice follows existing rules: after legacy, auto stays on legacy, and its reads serve as the check", async () => {
    const ns = await makePod("auto");
    await inNs(ns, [bin, "gateway-init", "--config-dir", configDir("auto-legacy", "FIREWALL_BACKEND=iptables-legacy\n")]);
    const r = await inNs(ns, [bin, "gateway-init", "--config-dir", configDir("auto", "")], { env: { LOG_LEVEL: "debug" } });
    expect(r.stderr).toContain("firewall backend iptables-legacy (our rules are already there)");
    expect(r.stderr).toContain("firewall iptables-legacy already as planned");
    // The choice read IPv4 of both flavours and our nft table; the check read only IPv6 on top.
    // The network is read over rtnetlink in-process (issue 16): no ip process.
    expect(started(r.stderr).sort()).toEqual(["ip6tables-legacy-save", "iptables-legacy-save", "iptables-nft-save", "nft -j list table inet pod_gateway"]);
    expect((await inNs(ns, ["iptables-nft-save"])).stdout).not.toContain("POD-GATEWAY");
  });

  test("after nft, auto stays on nft and reads our table once", async () => {
    const ns = await makePod("auto-nft");
    await inNs(ns, [bin, "gateway-init", "--config-dir", configDir("auto-nft-first", "FIREWALL_BACKEND=nft\n")]);
    const r = await inNs(ns, [bin, "gateway-init", "--config-dir", configDir("auto-nft", "")], { env: { LOG_LEVEL: "debug" } });
    expect(r.stderr).toContain("firewall backend nft (our rules are already there)");
    expect(r.stderr).toContain("firewall nft already as planned");
    expect(started(r.stderr).filter((c) => c.startsWith("nft"))).toEqual(["nft -j list table inet pod_gateway"]);
  });
});

test("a bad nat.conf changes nothing and exits 2", async () => {
  const ns = await makePod("badnat");
  const before = await snapshot(ns);
  const cfg = configDir("badnat", "", "web 10 tcp:8080\nweb2 999 tcp:80\nmail 11 smtp:25\n");
  const r = await inNs(ns, [bin, "gateway-init", "--config-dir", cfg], { okCodes: [2] });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`${cfg}/nat.conf:2`);
  expect(r.stderr).toContain(`${cfg}/nat.conf:3`);
  expect(await snapshot(ns)).toBe(before);
});

test("fail closed: a firewall that cannot be applied leaves forwarding and output blocked, and exits non-zero", async () => {
  const ns = await makePod("failclosed");
  // An iptables-nft-restore that refuses any ruleset with a port forward (as a kernel without
  // the DNAT target would), and passes everything else on to the real one.
  const wrap = join(dir, "failbin");
  mkdirSync(wrap, { recursive: true });
  const real = which("iptables-nft-restore")!;
  writeFileSync(join(wrap, "iptables-nft-restore"), `#!/bin/sh\nin=$(cat)\ncase "$in" in *DNAT*) echo "iptables-restore: line 9 failed: No chain/target/match by that name" >&2; exit 1;; esac\nprintf '%s\\n' "$in" | exec ${real} "$@"\n`);
  chmodSync(join(wrap, "iptables-nft-restore"), 0o755);
  // A VPN link with a def1 half: without the fault its route would be copied into our table.
  await host.run(["ip", "-n", ns, "-batch", "-"], {
    input: "link add tun0 type veth peer name tun0p\naddr add 10.8.0.2/24 dev tun0\nlink set tun0 up\nlink set tun0p up\nroute add 0.0.0.0/1 via 10.8.0.1 dev tun0\n",
  });
  const cfg = configDir("failclosed", "FIREWALL_BACKEND=iptables-nft\n", NAT);
  const r = await inNs(ns, [bin, "gateway-init", "--config-dir", cfg], { env: { PATH: `${wrap}:${process.env.PATH}` }, okCodes: [1] });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("all forwarded and outgoing traffic is blocked (fail closed)");
  const save = (await inNs(ns, ["iptables-nft-save", "-t", "filter"])).stdout;
  expect(save).toContain("-A FORWARD -j POD-GATEWAY-FORWARD");
  expect(save).toContain('-A POD-GATEWAY-FORWARD -m comment --comment "fail closed" -j DROP');
  expect(save).toContain('-A POD-GATEWAY-OUTPUT -m comment --comment "fail closed" -j DROP');
  // The routing layer failed closed with it (our table: no route through the VPN, unreachable
  // otherwise), and forwarding was never turned on.
  const table = (await inNs(ns, ["ip", "route", "show", "table", "4201"])).stdout;
  expect(table).toContain("unreachable default");
  expect(table).not.toContain("tun0");
  expect((await inNs(ns, ["ip", "rule", "show", "pref", "45"])).stdout).toContain("iif vxlan0 lookup 4201");
  expect((await inNs(ns, ["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout.trim()).toBe("0");
  // And the gateway's own traffic really is blocked: the kernel refuses a UDP send out of eth0
  // (EPERM from the OUTPUT drop; the same send succeeds in a namespace without our rules).
  const send = async (target: string) => {
    const r = await inNs(target, ["bash", "-c", "{ echo x > /dev/udp/192.0.2.10/9; } 2>&1; echo rc=$?"]);
    return r.stdout.trim();
  };
  expect(await send(ns)).toMatch(/Operation not permitted\nrc=1$/);
  expect(await send(await makePod("control"))).toBe("rc=0");
});

test("nothing stale: after FIREWALL_BACKEND, VPN_LOCAL_CIDRS, VPN_INTERFACE, SNAT_IP and nat.conf changed run after run, the state is a fresh pod's with the last configuration", async () => {
  const configs = [
    configDir("stale-1", 'FIREWALL_BACKEND=iptables-nft\nVPN_LOCAL_CIDRS="10.0.0.0/8 192.168.0.0/16"\n', NAT),
    configDir("stale-2", 'FIREWALL_BACKEND=nft\nVPN_LOCAL_CIDRS="172.20.0.0/14"\nSNAT_IP=198.18.0.2\n', "web 10 tcp:8080\nmail 12 tcp:2525\n"),
    configDir("stale-3", 'FIREWALL_BACKEND=iptables-legacy\nVPN_INTERFACE=wg0\nVPN_LOCAL_CIDRS="10.0.0.0/8"\n', ""),
    configDir("stale-4", 'FIREWALL_BACKEND=iptables-nft\nVPN_LOCAL_CIDRS="10.0.0.0/8"\n', NAT),
  ];
  const ns = await makePod("stale");
  const logs: string[] = [];
  for (const cfg of configs) logs.push((await inNs(ns, [bin, "gateway-init", "--config-dir", cfg])).stderr);
  // Each switch of backend removed what the previous one held.
  expect(logs[1]).toContain("firewall: iptables-nft: our IPv4 and IPv6 chains removed");
  expect(logs[2]).toContain("firewall: nft: table inet pod_gateway removed");
  expect(logs[3]).toContain("firewall: iptables-legacy: our IPv4 and IPv6 chains removed");
  const fresh = await makePod("stale-fresh");
  await inNs(fresh, [bin, "gateway-init", "--config-dir", configs[3]!]);
  expect(await ourState(ns)).toBe(await ourState(fresh));
}, 60_000);
