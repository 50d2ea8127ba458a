// Issue 16: the gateway roles use rtnetlink in-process for links, addresses, routes and rules.
// gateway-init and gateway-sidecar run under `strace -f -e trace=execve`; the programs they
// execute may only be the binary itself, the firewall's (iptables*, ip6tables*, xtables*, nft)
// and dnsmasq — never `ip` or `bridge`. The sidecar runs through the paths that touch the network:
// its start-up reconcile, a client's DHCP lease (the duplicate watch reads neighbours and the
// forwarding database), and a route on the VPN link copied into the kill switch's table.
// The facts the planners read over netlink are also compared with what `ip -j` prints there.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { Subprocess } from "bun";
import type { GatewayFacts } from "../../src/core/gateway/plan.ts";
import { routeDst, type IpAddr, type IpRoute } from "../../src/core/net/ip-json.ts";
import { ROLE_PROGRAMS } from "../../src/core/programs.ts";
import { which } from "../../src/sys/exec.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { collect, waitFor, withLab } from "./helpers.ts";

const t = withLab({ clients: 1 });

let work = "";
let bin = "";
let strace = "";
const procs: Subprocess[] = [];

beforeAll(() => {
  requireRoot();
  bin = binPath();
  const s = which("strace");
  if (!s) throw new Error("`strace` is missing: apt-get install strace");
  strace = s;
  work = mkdtempSync(join(tmpdir(), "pgw-gw-noip-"));
});

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The programs of the successful execve calls in an `strace -f -o` file. */
function execs(file: string): string[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => /\bexecve\(/.test(l) && !/resumed>/.test(l) && !/= -1 /.test(l))
    .map((l) => /execve\("([^"]*)"/.exec(l)?.[1] ?? l);
}

/** The pid strace runs the role as (its only child). */
function tracee(stracePid: number): number {
  const kids = readFileSync(`/proc/${stracePid}/task/${stracePid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
  if (kids.length !== 1) throw new Error(`strace ${stracePid} has children ${JSON.stringify(kids)}`);
  return Number(kids[0]);
}

/** What the gateway roles may run besides the binary: the firewall's programs and dnsmasq, as the image ships them. */
const ALLOWED = new Set(ROLE_PROGRAMS.gateway);

function checkPrograms(programs: string[]): void {
  expect(programs[0]).toBe(bin);
  const others = programs.slice(1).map((p) => basename(p));
  expect(others.filter((p) => p === "ip" || p === "bridge")).toEqual([]);
  expect(others.filter((p) => !ALLOWED.has(p))).toEqual([]);
}

describe("the gateway roles run no ip", () => {
  test("gateway-init under strace: only the binary and the firewall's programs", async () => {
    const lab = t.lab;
    const log = join(work, "init.strace");
    const r = await lab.exec("gateway", [strace, "-f", "-qq", "-e", "trace=execve", "-o", log, bin, "gateway-init"], { env: lab.roleEnv("gateway"), okCodes: [1, 2, 3] });
    if (r.code !== 0) throw new Error(`gateway-init exited ${r.code}:\n${r.stderr}`);
    expect(r.stderr).toContain("gateway ready");
    const programs = execs(log);
    checkPrograms(programs);
    // The firewall is still applied by its programs (this is not a test that runs nothing).
    expect(programs.length).toBeGreaterThan(1);
  }, 60_000);

  test("gateway-sidecar under strace, through a client's lease and a VPN route copied into our table: no ip", async () => {
    const lab = t.lab;
    const log = join(work, "sidecar.strace");
    const p = lab.spawn("gateway", [strace, "-f", "-qq", "-e", "trace=execve", "-o", log, bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gw-strace")], {
      env: lab.roleEnv("gateway"),
    });
    procs.push(p);
    const out = collect(p);
    await waitFor("dnsmasq", () => out.text().includes("dnsmasq running") || p.exitCode !== null, 20_000, { detail: out.text });
    if (p.exitCode !== null) throw new Error(`gateway-sidecar exited ${p.exitCode}:\n${out.text()}`);
    const init = await lab.exec("client-0", [bin, "client-init"], { env: lab.roleEnv("client-0"), okCodes: [1, 2, 3] });
    if (init.code !== 0) throw new Error(`client-init exited ${init.code}:\n${init.stderr}`);
    // A route on the VPN link: the sidecar's routing sync copies it into table 4201 over netlink.
    await lab.exec("gateway", ["ip", "route", "add", "203.0.113.0/24", "dev", lab.vpnInterface]);
    await waitFor(
      "the VPN route copied into table 4201",
      async () => (await lab.exec("gateway", ["ip", "route", "show", "table", "4201"])).stdout.includes(`203.0.113.0/24 dev ${lab.vpnInterface}`),
      10_000,
    );
    // One more poll of the duplicate watch (every 5 s) after the client's lease.
    await Bun.sleep(5_500);
    // SIGTERM to the sidecar itself (strace's only child): it stops dnsmasq and exits; strace follows.
    process.kill(tracee(p.pid), "SIGTERM");
    await p.exited;
    expect(out.text()).not.toContain("looking for duplicate overlay addresses:");
    const programs = execs(log);
    checkPrograms(programs);
    expect(programs.map((x) => basename(x))).toContain("dnsmasq");
  }, 90_000);

  test("the facts read over netlink are what ip -j prints (links, addresses, every table's IPv4 routes, rules)", () => {
    const lab = t.lab;
    const ns = lab.ns("gateway");
    const run = (argv: string[]) => {
      const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${r.exitCode}: ${r.stderr.toString()}`);
      return r.stdout.toString();
    };
    const ours = JSON.parse(run(["ip", "netns", "exec", ns, process.execPath, join(import.meta.dir, "gateway-facts-run.ts")])) as GatewayFacts;
    const ipLinks = JSON.parse(run(["ip", "-n", ns, "-j", "-d", "addr", "show"])) as IpAddr[];
    const ipRoutes = JSON.parse(run(["ip", "-n", ns, "-j", "-4", "route", "show", "table", "all"])) as IpRoute[];
    const ipRules = JSON.parse(run(["ip", "-n", ns, "-j", "-4", "rule", "show"])) as Record<string, unknown>[];
    const link = (l: IpAddr) => {
      const d = (l.linkinfo?.info_data ?? {}) as Record<string, unknown>;
      return {
        ifname: l.ifname,
        mtu: l.mtu,
        address: l.address,
        up: l.flags.includes("UP"),
        kind: l.linkinfo?.info_kind,
        ...(l.linkinfo?.info_kind === "vxlan" ? { vxlan: { id: d.id, port: d.port, link: d.link, learning: d.learning } } : {}),
        addrs: l.addr_info.map((a) => `${a.family} ${a.local}/${a.prefixlen}`).sort(),
      };
    };
    const route = (r: IpRoute) =>
      [r.type ?? "unicast", routeDst(r), r.gateway ?? "-", r.dev ?? "-", r.table ?? "main", r.metric ?? 0, r.prefsrc ?? "-", r.protocol ?? "-", (r.flags ?? []).includes("onlink")].join(" ");
    expect(ours.links.map(link)).toEqual(ipLinks.map(link));
    expect(ours.allRoutes.map(route).sort()).toEqual(ipRoutes.map(route).sort());
    expect(ours.routes.map(route).sort()).toEqual(ipRoutes.filter((r) => (r.table ?? "main") === "main").map(route).sort());
    // The rules as ip prints them, key for key (without -d, ip leaves the protocol out).
    expect(ours.rules as unknown[]).toEqual(ipRules);
    // What was compared holds our objects (this is not two empty lists).
    expect(ours.rules.some((r) => r.priority === 45)).toBe(true);
    expect(ours.allRoutes.some((r) => r.table === "4201" && r.type === "unreachable")).toBe(true);
    expect(ours.links.some((l) => l.ifname === "vxlan0")).toBe(true);
  });
});
