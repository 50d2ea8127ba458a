// The rtnetlink layer against the real kernel: the same operations applied with `ip` in one
// throwaway namespace and with src/sys/netlink.ts in another must leave the same state (read back
// with `ip -j` and `bridge -j`); our dumps must agree with ip's view; kernel errors become messages
// naming the operation and the object; lost events (ENOBUFS) turn into a re-dump.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { requireRoot } from "../helpers/bin.ts";
import { formatChange, type NetChange } from "../../src/core/net/change.ts";

const RUN = Math.random().toString(16).slice(2, 8);
const NS_IP = `nlt-${RUN}-ip`;
const NS_NL = `nlt-${RUN}-nl`;
const RUNNER = join(import.meta.dir, "netlink-run.ts");

function sh(argv: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", input });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}
function must(argv: string[]): string {
  const r = sh(argv);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

type Call = { call: string; args: unknown[] };
interface RunOut {
  ok: boolean;
  results?: unknown[];
  index?: number;
  name?: string;
  code?: string;
  message?: string;
}
/** Our operations, in the namespace, in a child running the source (optionally wrapped, e.g. setpriv). */
function ours(ns: string, calls: Call[], wrap: string[] = []): RunOut {
  const r = sh(["ip", "netns", "exec", ns, ...wrap, process.execPath, RUNNER, JSON.stringify(calls)]);
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line) as RunOut;
  } catch {
    throw new Error(`netlink-run printed no result (exit ${r.code}): ${r.stdout}${r.stderr}`);
  }
}
function ip(ns: string, ...args: string[]): string {
  return must(["ip", "-n", ns, ...args]);
}

function setup(ns: string): void {
  must(["ip", "netns", "add", ns]);
  // no IPv6 duplicate address detection: its timing ("tentative" for a second or two) would
  // differ between the two namespaces
  must(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
  ip(ns, "link", "set", "lo", "up");
  // fixed MACs: random ones (and the IPv6 link-local addresses made from them) would differ
  ip(ns, "link", "add", "veth0", "address", "02:00:00:00:10:01", "type", "veth", "peer", "name", "veth1", "address", "02:00:00:00:10:02");
  ip(ns, "addr", "add", "10.0.0.1/24", "dev", "veth0");
  ip(ns, "link", "set", "veth0", "up");
  ip(ns, "link", "set", "veth1", "up");
}

/** The namespace's state as JSON, with what changes by the second (lifetimes, timers) reduced. */
function state(ns: string): Record<string, unknown> {
  const j = (args: string[]) => JSON.parse(must(args) || "[]");
  const addrs = j(["ip", "-n", ns, "-j", "addr", "show"]) as { addr_info?: Record<string, unknown>[] }[];
  for (const l of addrs)
    for (const a of l.addr_info ?? [])
      for (const k of ["valid_life_time", "preferred_life_time"])
        if (typeof a[k] === "number" && (a[k] as number) < 4294967295) a[k] = `${Math.round((a[k] as number) / 100) * 100}ish`;
  const hasVxlan = sh(["ip", "-n", ns, "link", "show", "dev", "vxlan0"]).code === 0;
  const fdb = (hasVxlan ? j(["bridge", "-n", ns, "-j", "fdb", "show", "dev", "vxlan0"]) : []) as Record<string, unknown>[];
  for (const e of fdb) delete e.used, delete e.updated;
  return {
    links: j(["ip", "-n", ns, "-j", "-d", "link", "show"]),
    addrs,
    routes: j(["ip", "-n", ns, "-j", "route", "show", "table", "all"]),
    rules4: j(["ip", "-n", ns, "-j", "-4", "rule", "show"]),
    fdb,
  };
}

beforeAll(() => {
  requireRoot();
  setup(NS_IP);
  setup(NS_NL);
});
afterAll(() => {
  for (const ns of [NS_IP, NS_NL]) sh(["ip", "netns", "del", ns]);
});

/** Each step: what `ip` runs, and the same with our layer. */
const CREATE: { ip: string[][]; nl: Call[] }[] = [
  {
    ip: [["link", "add", "vxlan0", "address", "02:00:00:00:00:01", "mtu", "1400", "type", "vxlan", "id", "42", "dev", "veth0", "dstport", "4789", "remote", "10.0.0.2", "local", "10.0.0.1", "nolearning"]],
    nl: [{ call: "createVxlan", args: [{ name: "vxlan0", mac: "02:00:00:00:00:01", mtu: 1400, vni: 42, dev: "veth0", port: 4789, remote: "10.0.0.2", local: "10.0.0.1", learning: false }] }],
  },
  { ip: [["link", "set", "vxlan0", "up"]], nl: [{ call: "setLink", args: ["vxlan0", { up: true }] }] },
  { ip: [["link", "set", "vxlan0", "mtu", "1350"]], nl: [{ call: "setLink", args: ["vxlan0", { mtu: 1350 }] }] },
  { ip: [["link", "set", "vxlan0", "address", "02:00:00:00:00:02"]], nl: [{ call: "setLink", args: ["vxlan0", { mac: "02:00:00:00:00:02" }] }] },
  { ip: [["link", "set", "vxlan0", "type", "vxlan", "remote", "10.0.0.3"]], nl: [{ call: "setVxlanRemote", args: ["vxlan0", "10.0.0.3"] }] },
  {
    ip: [["addr", "add", "172.16.0.5/24", "dev", "vxlan0", "valid_lft", "3600", "preferred_lft", "1800"]],
    nl: [{ call: "address", args: ["add", { family: 4, dev: "vxlan0", local: "172.16.0.5", prefixlen: 24, valid: 3600, preferred: 1800 }] }],
  },
  {
    ip: [["addr", "add", "172.16.0.6/24", "dev", "vxlan0"]],
    nl: [{ call: "address", args: ["add", { family: 4, dev: "vxlan0", local: "172.16.0.6", prefixlen: 24 }] }],
  },
  {
    ip: [["addr", "replace", "172.16.0.6/24", "dev", "vxlan0", "valid_lft", "600", "preferred_lft", "600"]],
    nl: [{ call: "address", args: ["replace", { family: 4, dev: "vxlan0", local: "172.16.0.6", prefixlen: 24, valid: 600, preferred: 600 }] }],
  },
  {
    ip: [["route", "add", "10.96.0.0/12", "via", "10.0.0.254", "dev", "veth0", "proto", "201", "metric", "5", "table", "1000"]],
    nl: [{ call: "route", args: ["add", { family: 4, dst: "10.96.0.0/12", via: "10.0.0.254", dev: "veth0", protocol: 201, metric: 5, table: 1000 }] }],
  },
  {
    ip: [["route", "add", "10.97.0.0/16", "via", "10.9.9.9", "dev", "veth0", "onlink", "proto", "201"]],
    nl: [{ call: "route", args: ["add", { family: 4, dst: "10.97.0.0/16", via: "10.9.9.9", dev: "veth0", onlink: true, protocol: 201 }] }],
  },
  {
    ip: [["route", "add", "10.98.0.0/16", "dev", "veth0", "proto", "201", "scope", "link"]],
    nl: [{ call: "route", args: ["add", { family: 4, dst: "10.98.0.0/16", dev: "veth0", protocol: 201 }] }],
  },
  {
    ip: [["route", "replace", "default", "via", "172.16.0.1", "dev", "vxlan0", "proto", "201"]],
    nl: [{ call: "route", args: ["replace", { family: 4, dst: "default", via: "172.16.0.1", dev: "vxlan0", protocol: 201 }] }],
  },
  {
    ip: [["route", "add", "unreachable", "default", "table", "100", "metric", "1000", "proto", "201"]],
    nl: [{ call: "route", args: ["add", { family: 4, dst: "default", type: "unreachable", table: 100, metric: 1000, protocol: 201 }] }],
  },
  {
    ip: [["route", "add", "10.99.0.0/16", "via", "10.0.0.254", "dev", "veth0", "table", "100"]],
    nl: [{ call: "route", args: ["add", { family: 4, dst: "10.99.0.0/16", via: "10.0.0.254", dev: "veth0", table: 100 }] }],
  },
  {
    ip: [["-6", "route", "add", "default", "via", "fe80::1", "dev", "veth0", "proto", "ra", "metric", "1024"]],
    nl: [{ call: "route", args: ["add", { family: 6, dst: "default", via: "fe80::1", dev: "veth0", protocol: 9, metric: 1024 }] }],
  },
  { ip: [["rule", "add", "pref", "50", "iif", "vxlan0", "table", "100"]], nl: [{ call: "rule", args: ["add", { family: 4, priority: 50, iif: "vxlan0", table: 100 }] }] },
  { ip: [["rule", "add", "pref", "60", "from", "10.1.0.0/16", "table", "1000"]], nl: [{ call: "rule", args: ["add", { family: 4, priority: 60, from: "10.1.0.0/16", table: 1000 }] }] },
];

const DELETE: { ip: string[][]; nl: Call[] }[] = [
  { ip: [["addr", "del", "172.16.0.6/24", "dev", "vxlan0"]], nl: [{ call: "address", args: ["delete", { family: 4, dev: "vxlan0", local: "172.16.0.6", prefixlen: 24 }] }] },
  {
    ip: [["route", "del", "10.96.0.0/12", "via", "10.0.0.254", "dev", "veth0", "proto", "201", "metric", "5", "table", "1000"]],
    nl: [{ call: "route", args: ["delete", { family: 4, dst: "10.96.0.0/12", via: "10.0.0.254", dev: "veth0", protocol: 201, metric: 5, table: 1000 }] }],
  },
  { ip: [["route", "del", "unreachable", "default", "table", "100", "metric", "1000"]], nl: [{ call: "route", args: ["delete", { family: 4, dst: "default", type: "unreachable", table: 100, metric: 1000 }] }] },
  { ip: [["rule", "del", "pref", "50", "iif", "vxlan0", "table", "100"]], nl: [{ call: "rule", args: ["delete", { family: 4, priority: 50, iif: "vxlan0", table: 100 }] }] },
  {
    ip: [["-6", "route", "del", "default", "via", "fe80::1", "dev", "veth0", "proto", "ra", "metric", "1024"]],
    nl: [{ call: "route", args: ["delete", { family: 6, dst: "default", via: "fe80::1", dev: "veth0", protocol: 9, metric: 1024 }] }],
  },
  { ip: [["link", "set", "vxlan0", "down"]], nl: [{ call: "setLink", args: ["vxlan0", { up: false }] }] },
];

function applyBoth(steps: { ip: string[][]; nl: Call[] }[]): void {
  for (const s of steps) for (const c of s.ip) ip(NS_IP, ...c);
  const r = ours(NS_NL, steps.flatMap((s) => s.nl));
  expect(r).toMatchObject({ ok: true });
}

describe("ip and our layer leave the same kernel state", () => {
  test("create: vxlan with every option, up, MTU, MAC, remote; addresses with lifetimes; routes in tables, onlink, scope link, replace, unreachable; rules", () => {
    applyBoth(CREATE);
    const a = state(NS_IP);
    const b = state(NS_NL);
    expect(b).toEqual(a);
    // the state has what we meant to compare (not two empty namespaces)
    expect(JSON.stringify(a.links)).toContain('"remote":"10.0.0.3"');
    expect(JSON.stringify(a.routes)).toContain('"type":"unreachable"');
    expect(JSON.stringify(a.rules4)).toContain('"iif":"vxlan0"');
    expect(JSON.stringify(a.routes)).toContain('"gateway":"fe80::1"');
  });

  test("delete: address, route by its full key, unreachable route, rule; link down", () => {
    applyBoth(DELETE);
    expect(state(NS_NL)).toEqual(state(NS_IP));
  });

  test("delete the link", () => {
    applyBoth([{ ip: [["link", "del", "vxlan0"]], nl: [{ call: "deleteLink", args: ["vxlan0"] }] }]);
    expect(state(NS_NL)).toEqual(state(NS_IP));
  });
});

describe("the change model: what is printed is what is executed", () => {
  // Every kind of change, in an order that makes sense on a pod. The printed form is iproute2's
  // notation, so `ip -batch` of the printed lines must leave the state the executor leaves.
  const vxlan = { name: "vxlan9", vni: 9, port: 4789, dev: "veth0", remote: "10.0.0.9", mac: "02:00:00:00:00:99", mtu: 1450, mtuWhy: "test" };
  const batches: NetChange[][] = [
    [
      { op: "vxlan-add", vxlan, why: "t" },
      { op: "link-set", dev: "vxlan9", mtu: 1400, why: "t" },
      { op: "vxlan-set-remote", dev: "vxlan9", remote: "10.0.0.10", why: "t" },
      { op: "addr-set", dev: "vxlan9", local: "172.18.0.5", prefixlen: 24, lifetime: 600, why: "t" },
      { op: "addr-set", dev: "vxlan9", local: "172.18.0.6", prefixlen: 24, lifetime: "forever", why: "t" },
      { op: "route-add", route: { family: 4, dst: "10.50.0.0/16", via: "10.0.0.254", dev: "veth0", onlink: true, proto: 201 }, why: "t" },
      { op: "route-add", route: { family: 4, dst: "10.51.0.0/16", via: "10.0.0.254", dev: "veth0", proto: 201, metric: 7 }, why: "t" },
      { op: "route-replace", route: { family: 4, dst: "10.50.0.0/16", via: "10.0.0.253", dev: "veth0", proto: 201 }, why: "t" },
      { op: "route-add", route: { family: 4, dst: "10.52.0.0/16", via: "172.18.0.1", dev: "vxlan9", proto: 201, table: "500" }, why: "t" },
    ],
    [
      { op: "addr-del", dev: "vxlan9", local: "172.18.0.6", prefixlen: 24, why: "t" },
      { op: "route-del", route: { family: 4, dst: "10.51.0.0/16", via: "10.0.0.254", dev: "veth0", proto: "201", metric: 7 }, why: "t" },
      // one address's entry (the sidecar's refresh of the gateway pod's MAC), permanent ones kept
      { op: "neigh-flush", dev: "vxlan9", to: "172.18.0.77", why: "t" },
      { op: "neigh-flush", dev: "vxlan9", to: "172.18.0.80", why: "t" },
    ],
    // the ARP retransmit time of the tunnel (the sidecar's 250 ms)
    [{ op: "neigh-retrans", dev: "vxlan9", retransMs: 250, why: "t" }],
    [{ op: "neigh-flush", dev: "vxlan9", why: "t" }],
    [{ op: "link-del", dev: "vxlan9", why: "t" }],
  ];
  for (const [i, changes] of batches.entries()) {
    test(`batch ${i + 1}: ${changes.map((c) => c.op).join(", ")}`, () => {
      if (i === 1)
        for (const ns of [NS_IP, NS_NL])
          for (const [n, nud] of [["77", "reachable"], ["78", "stale"], ["79", "noarp"], ["80", "permanent"]])
            ip(ns, "neigh", "add", `172.18.0.${n}`, "lladdr", `02:00:00:00:00:${n}`, "dev", "vxlan9", "nud", nud!);
      const r = sh(["ip", "-n", NS_IP, "-batch", "-"], changes.map(formatChange).join("\n") + "\n");
      if (r.code !== 0) throw new Error(`ip -batch: ${r.stderr}`);
      expect(ours(NS_NL, changes.map((c) => ({ call: "applyNetChange", args: [c] })))).toMatchObject({ ok: true });
      // vxlan9's neighbours only: veth0 collects INCOMPLETE entries as the vxlan tries its remotes;
      // sorted: the kernel dumps its neighbour hash table, whose order differs between namespaces
      const neigh = (ns: string) =>
        (JSON.parse(ip(ns, "-j", "-4", "neigh", "show")) as { dev: string; dst?: string }[])
          .filter((n) => n.dev === "vxlan9")
          .sort((a, b) => (a.dst ?? "").localeCompare(b.dst ?? "", "en", { numeric: true }));
      // `to` takes only that address's entry, never a permanent one; the full flush keeps the permanent entry (and only that one)
      // (`ip neigh show` leaves out the NOARP entry .79)
      if (i === 1) expect(neigh(NS_NL).map((n) => n.dst)).toEqual(["172.18.0.78", "172.18.0.80"]);
      if (i === 2)
        for (const ns of [NS_IP, NS_NL]) // (jiffies: 250 ms reads back as 252 at HZ=250)
          expect(Number(sh(["ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/neigh/vxlan9/retrans_time_ms"], "").stdout)).toBeWithin(248, 260);
      if (i === 3) expect(neigh(NS_NL).map((n) => n.dst)).toEqual(["172.18.0.80"]);
      expect({ ...state(NS_NL), neigh: neigh(NS_NL) }).toEqual({ ...state(NS_IP), neigh: neigh(NS_IP) });
    });
  }
});

describe("our dumps agree with ip", () => {
  test("links, addresses, routes, rules, fdb, route get", () => {
    const ns = NS_NL;
    ip(ns, "link", "add", "vxlan1", "type", "vxlan", "id", "7", "dev", "veth0", "dstport", "4789", "remote", "10.0.0.7", "nolearning");
    ip(ns, "link", "set", "vxlan1", "up");
    ip(ns, "addr", "add", "172.17.0.2/24", "dev", "vxlan1", "valid_lft", "900", "preferred_lft", "900");
    must(["bridge", "-n", ns, "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan1", "dst", "10.0.0.8"]);
    const r = ours(ns, [
      { call: "links", args: [] },
      { call: "link", args: ["vxlan1"] },
      { call: "addresses", args: [4] },
      { call: "routes", args: [4] },
      { call: "rules", args: [4] },
      { call: "fdb", args: ["vxlan1"] },
      { call: "routeGet", args: ["172.17.0.9"] },
      { call: "routeGet", args: ["1.1.1.1"] },
      { call: "link", args: ["nope0"] },
    ]);
    expect(r.ok).toBe(true);
    const [links, vx1, addrs, routes, rules, fdb, get1, get2, none] = r.results as any[];
    const ipLinks = JSON.parse(ip(ns, "-j", "-d", "link", "show")) as any[];
    expect(links.map((l: any) => [l.index, l.name, l.mtu, l.address])).toEqual(ipLinks.map((l) => [l.ifindex, l.ifname, l.mtu, l.address]));
    const ipVx = ipLinks.find((l) => l.ifname === "vxlan1");
    expect(vx1.vxlan).toMatchObject({ id: ipVx.linkinfo.info_data.id, remote: ipVx.linkinfo.info_data.remote, port: ipVx.linkinfo.info_data.port, learning: false });
    const ipAddrs = (JSON.parse(ip(ns, "-4", "-j", "addr", "show")) as any[]).flatMap((l) => l.addr_info.map((a: any) => [l.ifindex, a.local, a.prefixlen]));
    expect(addrs.map((a: any) => [a.index, a.local, a.prefixlen])).toEqual(ipAddrs);
    expect(addrs.find((a: any) => a.local === "172.17.0.2").cacheinfo.valid).toBeLessThanOrEqual(900);
    const ipRoutes = JSON.parse(ip(ns, "-4", "-j", "route", "show", "table", "all")) as any[];
    expect(routes.length).toBe(ipRoutes.length);
    expect(routes.filter((x: any) => x.protocol === 201).map((x: any) => `${x.dst ?? "default"}/${x.dstLen} ${x.gateway ?? ""}`).sort()).toEqual(
      ipRoutes.filter((x) => x.protocol === "201").map((x) => `${x.dst === "default" ? "default" : x.dst.split("/")[0]}/${x.dst === "default" ? 0 : Number(x.dst.split("/")[1] ?? 32)} ${x.gateway ?? ""}`).sort(),
    );
    const ipRules = JSON.parse(ip(ns, "-4", "-j", "rule", "show")) as any[];
    expect(rules.map((x: any) => x.priority ?? 0)).toEqual(ipRules.map((x) => x.priority));
    expect(fdb.map((e: any) => [e.lladdr, e.dst])).toEqual([["00:00:00:00:00:00", "10.0.0.7"], ["00:00:00:00:00:00", "10.0.0.8"]]);
    expect(get1).toMatchObject({ ok: true, route: { oif: ipVx.ifindex, prefsrc: "172.17.0.2" } });
    // the default route went with vxlan0; nothing else leads to 1.1.1.1
    expect(get2).toMatchObject({ ok: false, errno: 101 });
    expect(none).toBeNull();
  });
});

describe("errors name the operation and the object", () => {
  test("EEXIST", () => {
    const r = ours(NS_NL, [{ call: "createVxlan", args: [{ name: "vxlan1", vni: 7, learning: false }] }]);
    expect(r).toMatchObject({ ok: false, code: "EEXIST" });
    expect(r.message).toBe("creating vxlan vxlan1 (VNI 7): File exists (EEXIST)");
  });
  test("ENODEV", () => {
    const r = ours(NS_NL, [{ call: "setLink", args: ["nope0", { up: true }] }]);
    expect(r).toMatchObject({ ok: false, code: "ENODEV", message: "setting link nope0 up: no device nope0 (ENODEV)" });
  });
  test("the kernel's extended ACK text is kept", () => {
    const r = ours(NS_NL, [{ call: "route", args: ["add", { family: 4, dst: "10.5.0.0/16", via: "99.9.9.9", dev: "veth0" }] }]);
    expect(r).toMatchObject({ ok: false, code: "ENETUNREACH" });
    expect(r.message).toBe("adding route 10.5.0.0/16 via 99.9.9.9 dev veth0: Network is unreachable (ENETUNREACH) (kernel: Nexthop has invalid gateway)");
  });
  test("deleting what is not there", () => {
    expect(ours(NS_NL, [{ call: "route", args: ["delete", { family: 4, dst: "10.55.0.0/16" }] }]).message).toBe("deleting route 10.55.0.0/16: no such route (ESRCH)");
    expect(ours(NS_NL, [{ call: "rule", args: ["delete", { family: 4, priority: 4242, table: 100 }] }]).message).toBe("deleting rule pref 4242 table 100: no such rule (ENOENT)");
  });
  test("EPERM without CAP_NET_ADMIN", () => {
    const r = ours(NS_NL, [{ call: "setLink", args: ["vxlan1", { mtu: 1300 }] }], ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin", "--"]);
    expect(r).toMatchObject({ ok: false, code: "EPERM" });
    expect(r.message).toBe("setting link vxlan1 mtu 1300: Operation not permitted (EPERM): the container needs the NET_ADMIN capability");
    // and dumps still work without it
    expect(ours(NS_NL, [{ call: "links", args: [] }], ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin", "--"]).ok).toBe(true);
  });
});

describe("events", () => {
  test("a link change arrives as an event", async () => {
    const p = Bun.spawn(["ip", "netns", "exec", NS_NL, process.execPath, RUNNER, JSON.stringify({ events: { waitMs: 10_000, until: "link" } })], { stdin: "pipe", stdout: "pipe" });
    const reader = p.stdout.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('"ready":true');
    ip(NS_NL, "link", "set", "vxlan1", "mtu", "1234");
    p.stdin.write("go\n");
    p.stdin.flush();
    let out = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    await p.exited;
    const r = JSON.parse(out.trim().split("\n").at(-1)!);
    expect(r.ok).toBe(true);
    expect(r.found.link).toMatchObject({ name: "vxlan1", mtu: 1234 });
  });

  test("events lost to a full receive buffer (ENOBUFS) become a re-dump", async () => {
    const p = Bun.spawn(["ip", "netns", "exec", NS_NL, process.execPath, RUNNER, JSON.stringify({ events: { rcvbuf: 1024, waitMs: 10_000, until: "resync" } })], { stdin: "pipe", stdout: "pipe" });
    const reader = p.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('"ready":true');
    // far more route events than a 1 KiB (doubled by the kernel) buffer holds, while nobody reads
    const batch = Array.from({ length: 300 }, (_, i) => `route add 10.200.${i >> 8}.${i & 255}/32 dev vxlan1 table 300`).join("\n") + "\n";
    const r0 = sh(["ip", "-n", NS_NL, "-batch", "-"], batch);
    expect(r0.code).toBe(0);
    p.stdin.write("go\n");
    p.stdin.flush();
    let out = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    await p.exited;
    const r = JSON.parse(out.trim().split("\n").at(-1)!);
    expect(r.ok).toBe(true);
    // the re-dump holds the state after the burst: every one of the 300 routes
    expect(r.found.routes).toBeGreaterThanOrEqual(300);
  });
});
