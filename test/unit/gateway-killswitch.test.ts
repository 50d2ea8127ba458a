// The kill switch's routing layer, pure: what our table and rules hold for the VPN clients'
// usual route shapes, that a second plan is empty, that stale copies (a renamed or vanished
// link) are removed, that closing drops the copies, and the DNS upstreams' host routes.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  killSwitchInput,
  planDnsUpstreams,
  planKillSwitch,
  readDnsUpstreamRecord,
  planKillSwitchTable,
  describeTableRoute,
  MAX_FORMER_DNS_PINS,
  type KillSwitchInput,
} from "../../src/core/gateway/killswitch.ts";
import type { IpRoute } from "../../src/core/net/ip-json.ts";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConsola } from "consola/basic";
import { planFirewall, type FirewallPlan } from "../../src/core/firewall/model.ts";
import type { Settings } from "../../src/core/settings/types.ts";
import { KillSwitchGuard } from "../../src/roles/gateway-killswitch.ts";
import type { FirewallBackend, FirewallCheck, FirewallPart } from "../../src/sys/firewall.ts";
import { readRouteSignature } from "../../src/sys/route-signature.ts";
import { FakeHost } from "../fixtures/gateway/fake-host.ts";
import { formatChange, formatChangeWords } from "../../src/core/net/change.ts";
import { testSettings } from "../helpers/settings.ts";

const s = testSettings({ VPN_LOCAL_CIDRS: ["10.0.0.0/8"], VPN_INTERFACE: "tun0", VPN_BLOCK_OTHER_TRAFFIC: true });
const local = [{ dst: "10.0.0.0/8", via: "198.18.0.1" }];

function host(): FakeHost {
  const h = FakeHost.pod();
  h.addLink({ ifname: "vxlan0", flags: ["UP"] });
  h.addLink({ ifname: "tun0", flags: ["UP"] });
  return h;
}
const facts = (h: FakeHost) => ({ routes: structuredClone(h.routes), rules: structuredClone(h.rules) });

/** Plan and apply until nothing is left; returns the rounds that changed something. */
function converge(h: FakeHost, input: KillSwitchInput): number {
  for (let round = 0; round < 3; round++) {
    const p = planKillSwitch(input, facts(h));
    if (p.actions.length === 0) return round;
    for (const a of p.actions) {
      const err = h.applyChange(a);
      if (err) throw new Error(`${formatChange(a)}: ${err}`);
    }
  }
  throw new Error("did not converge in 3 rounds");
}
const ours = (h: FakeHost) => h.print().split("\n").filter((l) => l.includes("4201"));

describe("planKillSwitch", () => {
  test("OpenVPN's def1 split default in main: both halves copied with their next hop, after the device route", () => {
    const h = host();
    h.routes.push(
      { dst: "10.8.0.0/24", dev: "tun0", protocol: "kernel", scope: "link", prefsrc: "10.8.0.2" },
      { dst: "0.0.0.0/1", gateway: "10.8.0.1", dev: "tun0" },
      { dst: "128.0.0.0/1", gateway: "10.8.0.1", dev: "tun0" },
      { dst: "203.0.113.7", gateway: "198.18.0.1", dev: "eth0" }, // the VPN server's host route: never for clients
    );
    const p = planKillSwitch(killSwitchInput(s, local, []), facts(h));
    expect(p.table.map(describeTableRoute)).toEqual([
      "172.16.0.0/24 dev vxlan0",
      "10.0.0.0/8 via 198.18.0.1 dev eth0",
      "10.8.0.0/24 dev tun0 src 10.8.0.2",
      "0.0.0.0/1 via 10.8.0.1 dev tun0",
      "128.0.0.0/1 via 10.8.0.1 dev tun0",
      "unreachable default metric 4294967295",
    ]);
    expect(p.vpnRoutes).toBe(3);
    // The unreachable default goes in first, the rule after the table is filled.
    expect(p.actions.map((a) => formatChange(a))[0]).toBe("route replace unreachable 0.0.0.0/0 metric 4294967295 table 4201");
    expect(formatChange(p.actions.at(-1)!)).toBe("rule add pref 45 iif vxlan0 lookup 4201");
    expect(converge(h, killSwitchInput(s, local, []))).toBe(1);
    expect(planKillSwitch(killSwitchInput(s, local, []), facts(h)).actions).toEqual([]);
  });

  test("a default route in the VPN's own table (wg-quick style, behind fwmark rules) is copied too; onlink kept", () => {
    const h = host();
    h.routes.push({ dst: "default", gateway: "10.2.0.1", dev: "tun0", table: "51820", flags: ["onlink"] });
    const p = planKillSwitch(killSwitchInput(s, local, []), facts(h));
    expect(p.table.map(describeTableRoute)).toContain("default via 10.2.0.1 dev tun0 onlink");
  });

  test("link down, deleted or renamed: the copies whose link no longer has the name are removed; re-created: copied again", () => {
    const h = host();
    h.routes.push({ dst: "0.0.0.0/1", gateway: "10.8.0.1", dev: "tun0" });
    const input = killSwitchInput(s, local, []);
    converge(h, input);
    expect(ours(h)).toContain("route 0.0.0.0/1 via 10.8.0.1 dev tun0 table 4201");
    // Renamed: the kernel renames the device in every route, ours included.
    for (const r of h.routes) if (r.dev === "tun0") r.dev = "tun0-old";
    expect(converge(h, input)).toBe(1);
    expect(ours(h).some((l) => l.includes("tun0"))).toBe(false);
    // Re-created with another next hop.
    h.routes.push({ dst: "0.0.0.0/1", gateway: "10.8.0.5", dev: "tun0" });
    converge(h, input);
    expect(ours(h)).toContain("route 0.0.0.0/1 via 10.8.0.5 dev tun0 table 4201");
    expect(ours(h)).toContain("route unreachable default table 4201 metric 4294967295");
  });

  test("closed: no copies, no DNS route through the VPN; the unreachable routes stay", () => {
    const h = host();
    h.routes.push({ dst: "0.0.0.0/1", gateway: "10.8.0.1", dev: "tun0" });
    converge(h, killSwitchInput(s, local, ["10.64.0.1"]));
    expect(ours(h)).toContain("route 10.64.0.1 via 10.8.0.1 dev tun0 table 4201");
    converge(h, killSwitchInput(s, local, ["10.64.0.1"], true));
    expect(ours(h).filter((l) => l.startsWith("route"))).toEqual([
      "route 10.0.0.0/8 via 198.18.0.1 dev eth0 table 4201",
      "route 172.16.0.0/24 dev vxlan0 table 4201",
      "route unreachable 10.64.0.1 table 4201 metric 4294967295",
      "route unreachable default table 4201 metric 4294967295",
    ]);
  });

  test("DNS upstreams: a host route with the next hop of the most specific VPN route, an unreachable one under it, and a rule", () => {
    const h = host();
    h.routes.push({ dst: "0.0.0.0/1", gateway: "10.8.0.1", dev: "tun0" }, { dst: "10.64.0.0/16", gateway: "10.8.0.9", dev: "tun0" });
    converge(h, killSwitchInput(s, local, ["10.64.0.1", "1.1.1.1"]));
    expect(ours(h)).toContain("route 10.64.0.1 via 10.8.0.9 dev tun0 table 4201");
    expect(ours(h)).toContain("route 1.1.1.1 via 10.8.0.1 dev tun0 table 4201");
    expect(ours(h)).toContain("route unreachable 1.1.1.1 table 4201 metric 4294967295");
    expect(ours(h)).toContain('rule {"priority":46,"src":"all","dst":"10.64.0.1","table":"4201"}');
    // What a gateway-init re-run keeps without the sidecar's resolv.conf copy: the kernel's record.
    expect(readDnsUpstreamRecord(facts(h).rules)).toEqual(["10.64.0.1", "1.1.1.1"]);
    expect(planKillSwitch(killSwitchInput(s, local, readDnsUpstreamRecord(facts(h).rules)), facts(h)).actions).toEqual([]);
    // An upstream outside VPN_LOCAL_CIDRS that is gone from resolv.conf loses its routes and rule
    // (the firewall's kill switch stops it on eth0).
    converge(h, killSwitchInput(s, local, ["10.64.0.1"]));
    expect(ours(h).some((l) => l.includes("1.1.1.1"))).toBe(false);
    expect(readDnsUpstreamRecord(facts(h).rules)).toEqual(["10.64.0.1"]);
  });

  test("a former upstream inside VPN_LOCAL_CIDRS keeps its pin (OpenVPN's down script put the cluster DNS back): through the VPN while it is up, unreachable without it", () => {
    const h = host();
    h.routes.push({ dst: "0.0.0.0/1", gateway: "10.8.0.1", dev: "tun0" });
    converge(h, killSwitchInput(s, local, ["10.64.0.1"], false, "10.96.0.10"));
    const pinned = ours(h).filter((l) => l.includes("10.64.0.1"));
    expect(pinned).toHaveLength(3);
    // resolv.conf names the cluster DNS again: nothing changes in the kernel, the pin is "former".
    const back = planKillSwitch(killSwitchInput(s, local, [], false, "10.96.0.10"), facts(h));
    expect(back.actions).toEqual([]);
    expect(back.formerDns).toEqual(["10.64.0.1"]);
    // The VPN goes (the kernel deletes its routes): the former upstream is unreachable, not routed by eth0.
    h.routes = h.routes.filter((r) => r.dev !== "tun0");
    converge(h, killSwitchInput(s, local, [], false, "10.96.0.10"));
    expect(ours(h).filter((l) => l.includes("10.64.0.1"))).toEqual([
      "route unreachable 10.64.0.1 table 4201 metric 4294967295",
      'rule {"priority":46,"src":"all","dst":"10.64.0.1","table":"4201"}',
    ]);
    // A restarted sidecar (fresh filesystem, no memory of it) finds it in the kernel and keeps it.
    expect(planKillSwitch(killSwitchInput(s, local, []), facts(h)).actions).toEqual([]);
  });

  test("a former upstream loses its pin when it is no longer dangerous: the cluster DNS now, an address of the pod, on eth0's subnet, outside VPN_LOCAL_CIDRS; and with the kill switch off", () => {
    const wide = [{ dst: "10.0.0.0/8", via: "198.18.0.1" }, { dst: "198.18.0.0/16", via: "198.18.0.1" }];
    const pinnedThen = (dns: string, change: (h: FakeHost) => void, input: (h: FakeHost) => KillSwitchInput) => {
      const h = host();
      converge(h, killSwitchInput(s, wide, [dns]));
      change(h);
      converge(h, input(h));
      return readDnsUpstreamRecord(facts(h).rules);
    };
    const none = () => {};
    expect(pinnedThen("10.64.0.1", none, () => killSwitchInput(s, wide, []))).toEqual(["10.64.0.1"]);
    expect(pinnedThen("10.96.0.10", none, () => killSwitchInput(s, wide, [], false, "10.96.0.10"))).toEqual([]);
    // The cluster DNS as the kernel records it (gateway-init's host route with protocol 202).
    expect(pinnedThen("10.96.0.10", (h) => h.routes.push({ dst: "10.96.0.10", gateway: "198.18.0.1", dev: "eth0", protocol: "202" }), () => killSwitchInput(s, wide, []))).toEqual([]);
    expect(pinnedThen("10.64.0.1", (h) => h.routes.push({ type: "local", dst: "10.64.0.1", dev: "eth0", table: "local", scope: "host" }), () => killSwitchInput(s, wide, []))).toEqual([]);
    expect(pinnedThen("198.18.0.53", none, () => killSwitchInput(s, wide, []))).toEqual([]);
    expect(pinnedThen("172.16.0.9", none, () => killSwitchInput(s, [...wide, { dst: "172.16.0.0/12", via: "198.18.0.1" }], []))).toEqual([]);
    expect(pinnedThen("10.64.0.1", none, () => killSwitchInput(s, [{ dst: "192.168.0.0/16", via: "198.18.0.1" }], []))).toEqual([]);
    expect(pinnedThen("10.64.0.1", none, () => killSwitchInput({ ...s, VPN_BLOCK_OTHER_TRAFFIC: false }, wide, []))).toEqual([]);
    // It becomes the upstream again: one pin, not two.
    expect(pinnedThen("10.64.0.1", none, () => killSwitchInput(s, wide, ["10.2.0.1", "10.64.0.1"]))).toEqual(["10.64.0.1", "10.2.0.1"]);
  });

  test(`resolvers accumulate (a new one on each reconnect): at most ${MAX_FORMER_DNS_PINS} former ones stay pinned, the newest`, () => {
    const h = host();
    const addrs = Array.from({ length: MAX_FORMER_DNS_PINS + 4 }, (_, i) => `10.64.0.${i + 1}`);
    for (const a of addrs) converge(h, killSwitchInput(s, local, [a]));
    const last = addrs[addrs.length - 1]!;
    expect(readDnsUpstreamRecord(facts(h).rules)).toEqual([...addrs.slice(-MAX_FORMER_DNS_PINS - 1)]);
    expect(planKillSwitch(killSwitchInput(s, local, [last]), facts(h)).formerDns).toEqual(addrs.slice(-MAX_FORMER_DNS_PINS - 1, -1));
    // The last one becomes former too: the oldest goes.
    converge(h, killSwitchInput(s, local, []));
    expect(readDnsUpstreamRecord(facts(h).rules)).toEqual(addrs.slice(-MAX_FORMER_DNS_PINS));
    expect(ours(h).filter((l) => l.startsWith("route unreachable 10.64."))).toHaveLength(MAX_FORMER_DNS_PINS);
  });

  test("kill switch off (VPN_BLOCK_OTHER_TRAFFIC=false): our table is emptied and our rules removed", () => {
    const h = host();
    h.routes.push({ dst: "0.0.0.0/1", gateway: "10.8.0.1", dev: "tun0" });
    converge(h, killSwitchInput(s, local, ["10.64.0.1"]));
    expect(converge(h, killSwitchInput({ ...s, VPN_BLOCK_OTHER_TRAFFIC: false }, local, ["10.64.0.1"]))).toBe(1);
    expect(ours(h)).toEqual([]);
  });

  test("duplicate rules and foreign routes in our table are removed; others' rules at our preferences are left alone", () => {
    const h = host();
    const input = killSwitchInput(s, local, []);
    converge(h, input);
    h.rules.push({ priority: 45, src: "all", iif: "vxlan0", table: "4201" } as never, { priority: 45, src: "all", table: "100" });
    h.routes.push({ dst: "192.0.2.0/24", gateway: "198.18.0.1", dev: "eth0", table: "4201" });
    expect(converge(h, input)).toBe(1);
    expect(h.rules.filter((r) => r.priority === 45)).toHaveLength(2);
    expect(ours(h).some((l) => l.includes("192.0.2.0"))).toBe(false);
  });
});

describe("planDnsUpstreams", () => {
  test("loopback and the cluster DNS are left out; the cluster DNS alone is a warning", () => {
    expect(planDnsUpstreams(["127.0.0.53", "10.96.0.10", "10.64.0.1"], "10.96.0.10")).toEqual({ upstreams: ["10.64.0.1"] });
    const only = planDnsUpstreams(["10.96.0.10"], "10.96.0.10");
    expect(only.upstreams).toEqual([]);
    expect(only.warning).toContain("names are resolved outside the VPN");
    expect(planDnsUpstreams([], "10.96.0.10")).toEqual({ upstreams: [] });
  });
});

describe("property: any sequence of VPN route sets and inputs converges in one round, and the table is exactly the plan", () => {
  const cidr = fc.tuple(fc.integer({ min: 1, max: 223 }), fc.integer({ min: 0, max: 255 }), fc.constantFrom(1, 8, 16, 24, 32)).map(([a, b, len]) => {
    const o = [a, len >= 16 ? b : 0, 0, 0];
    return len === 32 ? `${a}.${b}.0.1` : `${o.join(".")}/${len}`;
  });
  const route = fc.record({
    dst: fc.oneof(cidr, fc.constant("default")),
    dev: fc.constantFrom("tun0", "eth0", "tun1"),
    gateway: fc.option(fc.constantFrom("10.8.0.1", "10.8.0.5"), { nil: undefined }),
    table: fc.constantFrom(undefined, "51820", "100"),
  });
  const step = fc.record({
    routes: fc.array(route, { maxLength: 6 }),
    dns: fc.subarray(["10.64.0.1", "1.1.1.1", "10.2.0.1"]),
    closed: fc.boolean(),
    on: fc.boolean(),
  });
  test("holds", () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 5 }), (steps) => {
        const h = host();
        h.addLink({ ifname: "tun1", flags: ["UP"] });
        const base = h.routes.length;
        for (const st of steps) {
          h.routes = h.routes.filter((r, i) => i < base || r.table === "4201");
          const seen = new Set<string>();
          for (const r of st.routes as IpRoute[]) {
            const key = `${r.dst} ${r.table}`;
            if (seen.has(key)) continue;
            seen.add(key);
            h.routes.push(Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as IpRoute);
          }
          const input = killSwitchInput({ ...s, VPN_BLOCK_OTHER_TRAFFIC: st.on }, local, st.dns, st.closed);
          expect(converge(h, input)).toBeLessThanOrEqual(1);
          const want = planKillSwitchTable(input, facts(h)).table.length;
          expect(h.routes.filter((r) => r.table === "4201")).toHaveLength(want);
        }
      }),
      { numRuns: 200 },
    );
  });
});

// ---- the sidecar's guard against fakes: a firewall that cannot be written or proven

class FlakyBackend implements FirewallBackend {
  readonly name = "iptables-nft" as const;
  readonly warnings: string[] = [];
  kernel: FirewallPlan | undefined;
  /** Every apply throws while set (the xtables lock held, a refused target). */
  refuse = false;
  /** Every read differs while set (a concurrent rewriter). */
  rewritten = false;
  applies: string[] = [];
  async check(plan: FirewallPlan): Promise<FirewallCheck> {
    const ok = !this.rewritten && JSON.stringify(this.kernel) === JSON.stringify(plan);
    return { parts: new Map([["ipv4", ok ? [] : ["iptables filter FORWARD: no jump to POD-GATEWAY-FORWARD"]]]) };
  }
  async apply(plan: FirewallPlan): Promise<FirewallPart[]> {
    const kind = plan.rules.some((r) => r.comment === "fail closed") ? "blocking" : "plan";
    this.applies.push(kind);
    if (this.refuse) throw new Error("iptables-nft-restore failed (exit 4): Resource temporarily unavailable");
    this.kernel = plan;
    return ["ipv4"];
  }
  async verify(plan: FirewallPlan) {
    return [...(await this.check(plan)).parts.values()].flat();
  }
}

function guardSetup() {
  const h = host();
  h.routes.push({ dst: "0.0.0.0/1", gateway: "10.8.0.1", dev: "tun0" }, { dst: "128.0.0.0/1", gateway: "10.8.0.1", dev: "tun0" });
  const settings = { ...testSettings({ VPN_LOCAL_CIDRS: ["10.0.0.0/8"] }), VPN_INTERFACE: "tun0", VPN_BLOCK_OTHER_TRAFFIC: true } as Settings;
  const backend = new FlakyBackend();
  const lines: string[] = [];
  const log = createConsola({ level: 5 });
  log.setReporters([{ log: (o) => void lines.push(`${o.type}: ${o.args.join(" ")}`) }]);
  const guard = new KillSwitchGuard({ backend, plan: planFirewall(settings, []), settings, net: h, log }, { maxFailedChecks: 3, routingChecksPerFirewallCheck: 2 });
  return { h, settings, backend, guard, lines, tunCopies: () => h.routes.filter((r) => r.table === "4201" && r.dev === "tun0").length };
}

describe("KillSwitchGuard (the sidecar's reconcile)", () => {
  test("a former DNS upstream stays pinned, logged once; a restarted guard keeps it; it goes when it becomes the cluster DNS", async () => {
    const g = guardSetup();
    const pinned = (h: FakeHost) => readDnsUpstreamRecord(h.rules);
    g.guard.setDnsUpstreams(["10.64.0.1"], "10.96.0.10");
    await g.guard.syncRoutes();
    expect(pinned(g.h)).toEqual(["10.64.0.1"]);
    g.guard.setDnsUpstreams([], "10.96.0.10"); // the down script put the cluster DNS back
    await g.guard.syncRoutes();
    await g.guard.syncRoutes();
    expect(pinned(g.h)).toEqual(["10.64.0.1"]);
    expect(g.h.routes.filter((r) => r.table === "4201" && r.dst === "10.64.0.1").map((r) => r.type ?? r.dev)).toEqual(["unreachable", "tun0"]);
    expect(g.lines.filter((l) => l.includes("former DNS upstreams 10.64.0.1: still only through tun0"))).toHaveLength(1);
    // A restarted sidecar: a new guard that knows only the current upstreams.
    const again = new KillSwitchGuard({ backend: g.backend, plan: planFirewall(g.settings, []), settings: g.settings, net: g.h, log: createConsola({ level: 0 }) }, { maxFailedChecks: 3, routingChecksPerFirewallCheck: 2 });
    again.setDnsUpstreams([], "10.96.0.10");
    await again.syncRoutes();
    expect(pinned(g.h)).toEqual(["10.64.0.1"]);
    again.setDnsUpstreams([], "10.64.0.1");
    await again.syncRoutes();
    expect(pinned(g.h)).toEqual([]);
    expect(g.h.routes.some((r) => r.table === "4201" && r.dst === "10.64.0.1")).toBe(false);
  });

  test("a firewall apply that fails twice is retried within the check and then proven", async () => {
    const g = guardSetup();
    let fails = 2;
    const apply = g.backend.apply.bind(g.backend);
    g.backend.apply = async (p) => (fails-- > 0 ? Promise.reject(new Error("xtables lock")) : apply(p));
    await g.guard.checkFirewall();
    await g.guard.syncRoutes();
    expect(g.guard.closed).toBe(false);
    expect(g.guard.firewallFailures).toBe(0);
    expect(g.tunCopies()).toBe(2);
  });

  test("unwritable: blocking ruleset tried, the VPN's routes dropped from our table; proven again: they come back", async () => {
    const g = guardSetup();
    await g.guard.checkFirewall();
    await g.guard.syncRoutes();
    expect(g.tunCopies()).toBe(2);
    g.backend.kernel = undefined; // flushed by someone else
    g.backend.refuse = true;
    await g.guard.checkFirewall();
    expect(g.backend.applies.slice(-4)).toEqual(["plan", "plan", "plan", "blocking"]);
    expect(g.guard.closed).toBe(true);
    expect(g.tunCopies()).toBe(0);
    // The routing checks keep it closed while the firewall is not proven.
    await g.guard.syncRoutes();
    expect(g.tunCopies()).toBe(0);
    expect(g.lines.some((l) => l.startsWith("error: failing closed: the blocking ruleset:"))).toBe(true);
    g.backend.refuse = false;
    await g.guard.checkFirewall();
    expect(g.guard.closed).toBe(false);
    expect(g.tunCopies()).toBe(2);
    expect(g.lines).toContain("info: the firewall is proven again: the VPN's routes go back into our table");
  });

  test("unverifiable (a concurrent rewriter): closed with the blocking ruleset; several consecutive failed checks exhaust the sidecar", async () => {
    const g = guardSetup();
    g.backend.rewritten = true;
    for (let i = 1; i <= 3; i++) {
      expect(g.guard.exhausted).toBeUndefined();
      await g.guard.checkFirewall();
      expect(g.guard.firewallFailures).toBe(i);
    }
    expect(g.backend.applies.at(-1)).toBe("blocking");
    expect(g.tunCopies()).toBe(0);
    expect(g.guard.exhausted).toBe("the firewall could not be proven in 3 consecutive checks");
  });

  test("a routing table that cannot be written closes the firewall too (blocking ruleset), and counts towards exiting", async () => {
    const g = guardSetup();
    await g.guard.checkFirewall();
    const apply = g.h.apply1.bind(g.h);
    g.h.apply1 = (args) => (args[0] === "route" ? "RTNETLINK answers: Operation not permitted" : apply(args));
    for (let i = 0; i < 6; i++) await g.guard.syncRoutes();
    await g.guard.idle();
    expect(g.backend.applies.at(-1)).toBe("blocking");
    expect(g.guard.routingFailures).toBe(6);
    expect(g.guard.exhausted).toBe("the kill switch's routing table could not be proven in 6 consecutive checks");
    // Firewall checks meanwhile keep the blocking ruleset.
    await g.guard.checkFirewall();
    expect(g.backend.applies.at(-1)).toBe("blocking");
    g.h.apply1 = apply;
    await g.guard.syncRoutes();
    await g.guard.idle();
    expect(g.guard.routingFailures).toBe(0);
    expect(g.backend.applies.at(-1)).toBe("plan");
    expect(g.tunCopies()).toBe(2);
  });
});

describe("readRouteSignature (the sidecar's cheap look between full reads)", () => {
  test("changes with main's routes and with the VPN link's index or flags; an absent link reads as such", () => {
    const root = mkdtempSync(join(tmpdir(), "pgw-sig-"));
    mkdirSync(join(root, "proc/net"), { recursive: true });
    writeFileSync(join(root, "proc/net/route"), "Iface\tDestination\tGateway\neth0\t00000000\t0100A8C0\n");
    const absent = readRouteSignature("tun0", root);
    expect(absent).toContain("(ENOENT)");
    mkdirSync(join(root, "sys/class/net/tun0"), { recursive: true });
    writeFileSync(join(root, "sys/class/net/tun0/ifindex"), "7\n");
    writeFileSync(join(root, "sys/class/net/tun0/flags"), "0x1091\n");
    const up = readRouteSignature("tun0", root);
    expect(up).not.toBe(absent);
    writeFileSync(join(root, "sys/class/net/tun0/flags"), "0x1090\n");
    const down = readRouteSignature("tun0", root);
    expect(down).not.toBe(up);
    writeFileSync(join(root, "proc/net/route"), "Iface\tDestination\tGateway\ntun0\t00000000\t0100080A\n");
    expect(readRouteSignature("tun0", root)).not.toBe(down);
    expect(readRouteSignature("tun0", root)).toBe(readRouteSignature("tun0", root));
  });
});
