// The gateway-init role against fakes: a stateful fake host for `ip`, an in-memory sysctl and
// a recording firewall backend. Order of effects, idempotence, fail-closed behaviour, errors.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConsola } from "consola/basic";
import { CommandError, StepError } from "../../src/core/errors.ts";
import type { FirewallPlan } from "../../src/core/firewall/model.ts";
import type { ResolvedConfig, Settings } from "../../src/core/settings/types.ts";
import { runGatewayInit } from "../../src/roles/gateway-init.ts";
import { formatChange, type NetChange } from "../../src/core/net/change.ts";
import type { IpRoute } from "../../src/core/net/ip-json.ts";
import { loadConfig } from "../../src/sys/config.ts";
import type { Runner } from "../../src/sys/exec.ts";
import type { FirewallBackend, FirewallCheck, FirewallPart } from "../../src/sys/firewall.ts";
import type { Sysctl } from "../../src/sys/sysctl.ts";
import { FakeHost } from "../fixtures/gateway/fake-host.ts";

const empty = mkdtempSync(join(tmpdir(), "pgw-gwinit-"));
/** The shipped defaults (embedded settings.sh), with overrides. */
function config(over: Partial<Settings> = {}, nat: ResolvedConfig["nat"] = []): ResolvedConfig {
  const c = loadConfig({ configDir: empty, defaultConfigDir: empty, env: {}, onWarning: () => {} });
  return { ...c, settings: { ...c.settings, ...over }, nat };
}

function quietLog() {
  const lines: string[] = [];
  const l = createConsola({ level: 5 });
  l.setReporters([{ log: (o) => void lines.push(`${o.type}: ${o.args.join(" ")}`) }]);
  return { log: l, lines };
}

class MemSysctl implements Sysctl {
  values = new Map<string, string>([["net.ipv4.ip_forward", "0"]]);
  readOnly = false;
  writes: string[] = [];
  read(k: string) {
    return this.values.get(k);
  }
  write(k: string, v: string) {
    if (this.readOnly) throw Object.assign(new Error("EROFS: read-only file system"), { code: "EROFS" });
    this.writes.push(`${k}=${v}`);
    this.values.set(k, v);
  }
}

/**
 * A backend whose "kernel" holds the last plan applied. check() compares it with the plan (one
 * part, "table"); apply() with a check applies only when that check found differences. `lie`
 * makes every read report a difference (a ruleset that never reads back as applied).
 */
class RecordingBackend implements FirewallBackend {
  readonly name = "nft" as const;
  readonly warnings: string[] = [];
  applied: FirewallPlan[] = [];
  kernel: FirewallPlan | undefined;
  failApplies = 0;
  lie = false;
  events: string[];
  constructor(events: string[]) {
    this.events = events;
  }
  async check(plan: FirewallPlan, opts: { parts?: readonly FirewallPart[] } = {}): Promise<FirewallCheck> {
    this.events.push(`firewall read${opts.parts ? ` (${opts.parts.join(", ")})` : ""}`);
    if (this.lie) return { parts: new Map([["table", ["nft table inet pod_gateway: chain output missing"]]]) };
    return { parts: new Map([["table", JSON.stringify(this.kernel) === JSON.stringify(plan) ? [] : ["differs"]]]) };
  }
  async apply(plan: FirewallPlan, check?: FirewallCheck): Promise<FirewallPart[]> {
    if (check && !check.parts.get("table")?.length) return [];
    this.events.push(`firewall apply (${plan.rules.length} rules)`);
    if (this.failApplies > 0) {
      this.failApplies--;
      throw new Error("nft: Error: Could not process rule: No such file or directory");
    }
    this.applied.push(plan);
    this.kernel = plan;
    return ["table"];
  }
  async verify(plan: FirewallPlan) {
    return [...(await this.check(plan)).parts.values()].flat();
  }
}

/** The fake host, each read and apply an event (what used to be an `ip` process is now a netlink exchange). */
function eventHost(events: string[]): FakeHost {
  const host = FakeHost.pod();
  const read = host.readFacts.bind(host);
  const apply = host.apply.bind(host);
  host.readFacts = async () => (events.push("net read"), read());
  host.apply = async (changes) => (events.push(`net apply (${changes.length} changes)`), apply(changes));
  return host;
}

/** The IPv6 main table as the IPv6 step sees it: replace and delete by destination. */
function applyRoute6(table: IpRoute[], c: NetChange, events: string[]): void {
  events.push(`ip -6 ${formatChange(c)}`);
  if (c.op !== "route-replace" && c.op !== "route-del") throw new Error(`unexpected ${c.op}`);
  const i = table.findIndex((r) => r.dst === c.route.dst && (c.op === "route-replace" || r.gateway === c.route.via));
  if (c.op === "route-del") {
    if (i < 0) throw new Error("no such route");
    table.splice(i, 1);
  } else {
    const r: IpRoute = { dst: c.route.dst, gateway: c.route.via, dev: c.route.dev, protocol: String(c.route.proto), metric: 1024, flags: [] };
    if (i < 0) table.push(r);
    else table[i] = r;
  }
}

function setup(over: Partial<Settings> = {}, nat: ResolvedConfig["nat"] = []) {
  const events: string[] = [];
  const host = eventHost(events);
  const runner: Runner = { run: async (argv) => Promise.reject(new Error(`no program expected: ${argv.join(" ")}`)) };
  const sysctl = new MemSysctl();
  const origWrite = sysctl.write.bind(sysctl);
  sysctl.write = (k, v) => {
    events.push(`sysctl ${k}=${v}`);
    origWrite(k, v);
  };
  const fw = new RecordingBackend(events);
  const { log, lines } = quietLog();
  const stale: string[] = [];
  const routes6: IpRoute[] = [];
  const deps = {
    runner,
    net: host,
    sysctl,
    log,
    firewall: async () => fw,
    resolvConf: join(empty, "no-resolv.conf"),
    removeStaleFirewall: async (chosen: string) => (events.push(`stale firewall removal (not ${chosen})`), stale),
    // Never the host's own routes: the IPv6 step reads and changes this list only.
    routes6: () => ({ readRoutes6: () => routes6.slice(), apply: (c: NetChange) => applyRoute6(routes6, c, events), close: () => {} }),
  };
  return { events, host, sysctl, fw, lines, deps, stale, routes6, cfg: config(over, nat) };
}

describe("runGatewayInit", () => {
  test("IPv6 VPN_LOCAL_CIDRS (issue 13 §3) are routed via eth0's IPv6 gateway after the IPv4 network; a re-run changes nothing; a CIDR taken out goes", async () => {
    const t = setup({ VPN_LOCAL_CIDRS: ["10.0.0.0/8", "fd00:18::/48"] });
    t.routes6.push({ dst: "default", gateway: "fe80::1", dev: "eth0", protocol: "ra", metric: 1024, flags: [] });
    const r = await runGatewayInit(t.cfg, t.deps);
    expect(t.events.filter((e) => e.startsWith("ip -6"))).toEqual(["ip -6 route replace fd00:18::/48 via fe80::1 dev eth0 proto 201"]);
    // After the IPv4 network's changes.
    expect(t.events.findIndex((e) => e.startsWith("ip -6"))).toBeGreaterThan(t.events.findIndex((e) => e.startsWith("net apply")));
    expect(t.lines.join("\n")).toContain("routes (IPv6): fd00:18::/48 via fe80::1 dev eth0");
    expect(r.networkChanges).toBeGreaterThan(1);
    t.events.length = 0;
    expect((await runGatewayInit(t.cfg, t.deps)).networkChanges).toBe(0);
    expect(t.events.some((e) => e.startsWith("ip -6"))).toBe(false);
    t.events.length = 0;
    await runGatewayInit({ ...t.cfg, settings: { ...t.cfg.settings, VPN_LOCAL_CIDRS: ["10.0.0.0/8"] } }, t.deps);
    expect(t.events.filter((e) => e.startsWith("ip -6"))).toEqual(["ip -6 route del fd00:18::/48 via fe80::1 dev eth0 proto 201 metric 1024"]);
  });

  test("IPv6 VPN_LOCAL_CIDRS on a pod without IPv6: a warning, nothing applied, the gateway comes up", async () => {
    const t = setup({ VPN_LOCAL_CIDRS: ["10.0.0.0/8", "fd00:18::/48"] });
    await runGatewayInit(t.cfg, t.deps);
    expect(t.events.some((e) => e.startsWith("ip -6"))).toBe(false);
    expect(t.lines.join("\n")).toContain("VPN_LOCAL_CIDRS fd00:18::/48: not routed, eth0 has no IPv6 default route");
  });

  test("order: reads side by side, the firewall reconcile beside links/rules/routes/our table (applied and read back over netlink), then forwarding", async () => {
    const t = setup({}, [{ name: "web", octet: 10, ports: [{ proto: "tcp", port: 8080 }], file: "nat.conf", line: 1 }]);
    const r = await runGatewayInit(t.cfg, t.deps);
    expect(t.events).toEqual([
      "net read",
      "firewall read",
      "firewall apply (35 rules)",
      "net apply (11 changes)",
      "firewall read (table)",
      "net read",
      "stale firewall removal (not nft)",
      "sysctl net.ipv4.ip_forward=1",
    ]);
    expect(r.networkChanges).toBe(11);
    expect(r.firewallApplied).toEqual(["table"]);
    expect(r.forwardingChanged).toBe(true);
    expect(r.firewall.killSwitch).toBe(true);
    expect(t.lines.filter((l) => l.startsWith("info:"))).toContain("info: port forwards: tun0:tcp/8080 -> 172.16.0.10 (web)");
    expect(t.lines).toContain("info: gateway ready (11 network changes, firewall nft applied table)");
    expect(t.lines).toContain("info: kill switch routing layer: iif vxlan0 lookup 4201 (pref 45): 0 tun0 route(s) copied, unreachable otherwise");
    expect(t.host.print().split("\n").filter((l) => l.includes("4201"))).toEqual([
      "route 10.0.0.0/8 via 198.18.0.1 dev eth0 table 4201",
      "route 172.16.0.0/24 dev vxlan0 table 4201",
      "route 192.168.0.0/16 via 198.18.0.1 dev eth0 table 4201",
      "route unreachable default table 4201 metric 4294967295",
      'rule {"priority":45,"src":"all","iif":"vxlan0","table":"4201"}',
    ]);
    // Two reads (before and after) and one list of changes; no program ran (the runner refuses any).
    expect(t.host.calls.map((c) => c[0])).toEqual(["read", "apply", "read"]);
  });

  test("a second run only reads: no firewall apply, no network change, the same state", async () => {
    const t = setup();
    await runGatewayInit(t.cfg, t.deps);
    const state = t.host.print();
    const vxlanIndex = t.host.link("vxlan0")!.ifindex;
    t.events.length = 0;
    const r = await runGatewayInit(t.cfg, t.deps);
    expect(t.events).toEqual(["net read", "firewall read", "stale firewall removal (not nft)"]);
    expect(r.networkChanges).toBe(0);
    expect(r.firewallApplied).toEqual([]);
    expect(r.forwardingChanged).toBe(false);
    expect(t.host.print()).toBe(state);
    expect(t.host.link("vxlan0")!.ifindex).toBe(vxlanIndex);
    expect(t.fw.applied).toHaveLength(1);
    expect(t.lines).toContain("info: gateway ready (network already as planned, firewall nft already as planned)");
  });

  test("a firewall changed by someone else on a correct network: only the firewall is applied and read back", async () => {
    const t = setup();
    await runGatewayInit(t.cfg, t.deps);
    t.fw.kernel = undefined; // flushed
    t.events.length = 0;
    const r = await runGatewayInit(t.cfg, t.deps);
    expect(t.events).toEqual(["net read", "firewall read", "firewall apply (33 rules)", "firewall read (table)", "stale firewall removal (not nft)"]);
    expect(r.networkChanges).toBe(0);
    expect(r.firewallApplied).toEqual(["table"]);
  });

  test("another plan (a port forward added) is applied on a re-run", async () => {
    const t = setup();
    await runGatewayInit(t.cfg, t.deps);
    t.events.length = 0;
    const nat: ResolvedConfig["nat"] = [{ name: "web", octet: 10, ports: [{ proto: "tcp", port: 8080 }], file: "nat.conf", line: 1 }];
    await runGatewayInit({ ...t.cfg, nat }, t.deps);
    expect(t.events).toContain("firewall apply (35 rules)");
    expect(t.fw.kernel!.portForwards).toHaveLength(1);
  });

  test("our objects in a backend no longer chosen are removed once the chosen one is proven, and said so", async () => {
    const t = setup();
    t.stale.push("iptables-nft: our IPv4 and IPv6 chains removed");
    await runGatewayInit(t.cfg, t.deps);
    expect(t.lines).toContain("info: firewall: iptables-nft: our IPv4 and IPv6 chains removed");
    expect(t.events.indexOf("stale firewall removal (not nft)")).toBeGreaterThan(t.events.indexOf("firewall read (table)"));
    expect(t.events.at(-1)).toBe("sysctl net.ipv4.ip_forward=1");
  });

  test("the cluster DNS from the pod's resolv.conf is recorded in the kernel; a re-run after the VPN rewrote resolv.conf keeps it", async () => {
    const t = setup();
    const resolv = join(empty, "resolv-record.conf");
    writeFileSync(resolv, "search svc.cluster.local\nnameserver 10.96.0.10\n");
    await runGatewayInit(t.cfg, { ...t.deps, resolvConf: resolv });
    expect(t.host.print()).toContain("route 10.96.0.10 via 198.18.0.1 dev eth0 proto 202");
    writeFileSync(resolv, "nameserver 10.64.0.1\n");
    const r = await runGatewayInit(t.cfg, { ...t.deps, resolvConf: resolv });
    expect(r.networkChanges).toBe(0);
    expect(t.host.print()).toContain("route 10.96.0.10 via 198.18.0.1 dev eth0 proto 202");
  });

  test("a firewall apply that fails once (the xtables lock, a concurrent rewrite) is retried within the check", async () => {
    const t = setup();
    t.fw.failApplies = 1;
    const r = await runGatewayInit(t.cfg, t.deps);
    expect(r.firewallApplied).toEqual(["table"]);
    expect(t.events.filter((e) => e.startsWith("firewall"))).toEqual(["firewall read", "firewall apply (33 rules)", "firewall read", "firewall apply (33 rules)", "firewall read (table)"]);
    expect(t.sysctl.values.get("net.ipv4.ip_forward")).toBe("1");
  });

  test("fail closed: when the firewall cannot be applied with the kill switch on, a blocking ruleset goes in, our table holds no VPN route, forwarding stays off", async () => {
    const t = setup();
    t.host.addLink({ ifname: "tun0", flags: ["UP"] });
    t.host.routes.push({ dst: "0.0.0.0/1", gateway: "10.8.0.1", dev: "tun0" }, { dst: "128.0.0.0/1", gateway: "10.8.0.1", dev: "tun0" });
    t.fw.failApplies = 3;
    const err = await runGatewayInit(t.cfg, t.deps).catch((e) => e);
    expect(err).toBeInstanceOf(StepError);
    expect(err.message).toStartWith("applying the firewall (nft): nft: Error: Could not process rule");
    expect(t.fw.applied).toHaveLength(1);
    const block = t.fw.applied[0]!;
    expect(block.rules.filter((r) => r.hook === "forward").map((r) => r.target.kind)).toEqual(["drop"]);
    expect(t.events.filter((e) => e.startsWith("firewall apply"))).toEqual([...Array(3).fill("firewall apply (33 rules)"), "firewall apply (19 rules)"]);
    expect(t.sysctl.values.get("net.ipv4.ip_forward")).toBe("0");
    expect(t.host.print().split("\n").filter((l) => l.includes("table 4201") && l.includes("tun0"))).toEqual([]);
    expect(t.host.print()).toContain("route unreachable default table 4201 metric 4294967295");
    expect(t.lines).toContain("error: the kill switch could not be proven: all forwarded and outgoing traffic is blocked (fail closed)");
  });

  test("without a fault the VPN's routes are copied into our table, next hops and all", async () => {
    const t = setup();
    t.host.addLink({ ifname: "tun0", flags: ["UP"] });
    t.host.routes.push({ dst: "0.0.0.0/1", gateway: "10.8.0.1", dev: "tun0" }, { dst: "default", dev: "tun0", table: "51820" });
    await runGatewayInit(t.cfg, t.deps);
    expect(t.host.print().split("\n").filter((l) => l.includes("table 4201") && l.includes("tun0"))).toEqual([
      "route 0.0.0.0/1 via 10.8.0.1 dev tun0 table 4201",
      "route default dev tun0 table 4201",
    ]);
  });

  test("fail closed also when the rules read back differ from the plan: blocking ruleset in, forwarding never turned on", async () => {
    const t = setup();
    t.fw.lie = true;
    const err = await runGatewayInit(t.cfg, t.deps).catch((e) => e);
    expect(err.message).toStartWith("applying the firewall (nft): rules read back differ from the plan: nft table inet pod_gateway: chain output missing");
    expect(t.fw.applied.at(-1)!.rules.some((r) => r.comment === "fail closed")).toBe(true);
    expect(t.sysctl.values.get("net.ipv4.ip_forward")).toBe("0");
    expect(t.events.filter((e) => e.startsWith("firewall apply")).at(-1)).toBe("firewall apply (19 rules)");
  });

  test("when even the blocking ruleset fails, the error says so", async () => {
    const t = setup();
    t.fw.failApplies = 4;
    const err = await runGatewayInit(t.cfg, t.deps).catch((e) => e);
    expect(err.message).toContain("and failing closed failed too: the blocking ruleset: nft: Error");
  });

  test("kill switch off: a firewall failure is an error without the blocking fallback", async () => {
    const t = setup({ VPN_BLOCK_OTHER_TRAFFIC: false });
    t.fw.failApplies = 3;
    await expect(runGatewayInit(t.cfg, t.deps)).rejects.toThrow("applying the firewall (nft)");
    expect(t.events.filter((e) => e.startsWith("firewall apply"))).toEqual(Array(3).fill("firewall apply (13 rules)"));
  });

  test("kill switch off: rules that read back wrong are an error, without the blocking fallback", async () => {
    const t = setup({ VPN_BLOCK_OTHER_TRAFFIC: false });
    t.fw.lie = true;
    await expect(runGatewayInit(t.cfg, t.deps)).rejects.toThrow("applying the firewall (nft): rules read back differ from the plan");
    expect(t.fw.applied).toHaveLength(3);
  });

  test("a read-only /proc/sys is an error naming the privilege gateway-init needs", async () => {
    const t = setup();
    t.sysctl.readOnly = true;
    await expect(runGatewayInit(t.cfg, t.deps)).rejects.toThrow(
      "enabling IPv4 forwarding: cannot write 1 to /proc/sys/net/ipv4/ip_forward: EROFS (/proc/sys is read-only here: gateway-init needs a privileged container",
    );
  });

  test("forwarding already on (set by the pod spec): no write needed, so no privilege needed", async () => {
    const t = setup();
    t.sysctl.values.set("net.ipv4.ip_forward", "1");
    t.sysctl.readOnly = true;
    const r = await runGatewayInit(t.cfg, t.deps);
    expect(r.forwardingChanged).toBe(false);
  });

  test("no eth0: planning fails after the reads, before anything is changed", async () => {
    const t = setup();
    t.host.links = t.host.links.filter((l) => l.ifname !== "eth0");
    await expect(runGatewayInit(t.cfg, t.deps)).rejects.toThrow("planning the gateway network: eth0 not found");
    expect(t.events).toEqual(["net read", "firewall read"]);
    expect(t.fw.applied).toHaveLength(0);
  });

  test("a failing change is named with what it was for", async () => {
    const t = setup();
    t.host.addLink({ ifname: "vxlan0", linkinfo: { info_kind: "vxlan", info_data: { id: 42, port: 8472, link: "eth0" } }, address: "02:00:00:00:00:09" });
    // The fake refuses to delete this link, like a busy device would.
    const apply = t.host.apply1.bind(t.host);
    t.host.apply1 = (args) => (args[0] === "link" && args[1] === "del" ? "RTNETLINK answers: Device or resource busy" : apply(args));
    const e = await runGatewayInit(t.cfg, t.deps).catch((x) => x);
    expect(e.message).toMatch(/^configuring the gateway network: link del vxlan0 \(existing vxlan0 does not match \(MAC 02:00:00:00:00:09.*\)\): RTNETLINK answers: Device or resource busy$/);
  });

  test("a network that still differs after applying (a change the kernel ignored) is an error", async () => {
    const t = setup();
    const apply = t.host.apply1.bind(t.host);
    // The kernel takes the policy rule without error but does not keep it.
    t.host.apply1 = (args) => (args[0] === "rule" ? undefined : apply(args));
    const e = await runGatewayInit(t.cfg, t.deps).catch((x) => x);
    expect(e.message).toStartWith(
      "verifying the gateway network: still differs after applying: main table before the VPN's catch-all (rule add pref 50 lookup main suppress_prefixlength 0); clients' packets are routed by our table only (rule add pref 45 iif vxlan0 lookup 4201)\n  and failing closed failed too: dropping the VPN routes from our table: still differs after applying",
    );
    expect(t.sysctl.values.get("net.ipv4.ip_forward")).toBe("0");
  });
});
