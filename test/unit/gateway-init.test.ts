// The gateway-init role against fakes: a stateful fake host for `ip`, an in-memory sysctl and
// a recording firewall backend. Order of effects, idempotence, fail-closed behaviour, errors.
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConsola } from "consola/basic";
import { StepError } from "../../src/core/errors.ts";
import type { FirewallPlan } from "../../src/core/firewall/model.ts";
import type { ResolvedConfig, Settings } from "../../src/core/settings/types.ts";
import { runGatewayInit } from "../../src/roles/gateway-init.ts";
import { loadConfig } from "../../src/sys/config.ts";
import type { FirewallBackend } from "../../src/sys/firewall.ts";
import { Ip } from "../../src/sys/ip.ts";
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

/** Records applied plans; verify() compares against the last successful apply. */
class RecordingBackend implements FirewallBackend {
  readonly name = "nft" as const;
  readonly warnings: string[] = [];
  applied: FirewallPlan[] = [];
  failApplies = 0;
  lie = false;
  events: string[];
  constructor(events: string[]) {
    this.events = events;
  }
  async apply(plan: FirewallPlan) {
    this.events.push(`firewall apply (${plan.rules.length} rules)`);
    if (this.failApplies > 0) {
      this.failApplies--;
      throw new Error("nft: Error: Could not process rule: No such file or directory");
    }
    this.applied.push(plan);
  }
  async verify(plan: FirewallPlan) {
    if (this.lie) return ["nft table inet pod_gateway: chain output missing"];
    return JSON.stringify(this.applied.at(-1)) === JSON.stringify(plan) ? [] : ["differs"];
  }
  async read() {
    return JSON.stringify(this.applied.at(-1));
  }
}

/** A host whose `ip -batch` is recorded in the shared event list (to check the order of effects). */
function setup(over: Partial<Settings> = {}, nat: ResolvedConfig["nat"] = []) {
  const events: string[] = [];
  const host = FakeHost.pod();
  const runner = {
    run: async (argv: readonly string[], opts?: { input?: string }) => {
      if (argv.includes("-batch")) events.push(`ip batch (${(opts?.input ?? "").trim().split("\n").length} commands)`);
      return host.run(argv, opts);
    },
  };
  const sysctl = new MemSysctl();
  const origWrite = sysctl.write.bind(sysctl);
  sysctl.write = (k, v) => {
    events.push(`sysctl ${k}=${v}`);
    origWrite(k, v);
  };
  const fw = new RecordingBackend(events);
  const { log, lines } = quietLog();
  const deps = { runner, ip: new Ip(runner), sysctl, log, firewall: async () => fw };
  return { events, host, sysctl, fw, lines, deps, cfg: config(over, nat) };
}

describe("runGatewayInit", () => {
  test("order: firewall, then links/rule/routes in one ip process, then forwarding; then a summary", async () => {
    const t = setup({}, [{ name: "web", octet: 10, ports: [{ proto: "tcp", port: 8080 }], file: "nat.conf", line: 1 }]);
    const r = await runGatewayInit(t.cfg, t.deps);
    expect(t.events).toEqual(["firewall apply (28 rules)", "ip batch (6 commands)", "sysctl net.ipv4.ip_forward=1"]);
    expect(r.networkChanges).toBe(6);
    expect(r.forwardingChanged).toBe(true);
    expect(r.firewall.killSwitch).toBe(true);
    expect(t.lines.filter((l) => l.startsWith("info:"))).toContain("info: port forwards: tun0:tcp/8080 -> 172.16.0.10 (web)");
    expect(t.lines.some((l) => l.includes("gateway ready (6 network changes, firewall nft)"))).toBe(true);
  });

  test("a second run changes no link, rule or route and leaves the same state", async () => {
    const t = setup();
    await runGatewayInit(t.cfg, t.deps);
    const state = t.host.print();
    const vxlanIndex = t.host.link("vxlan0")!.ifindex;
    t.events.length = 0;
    const r = await runGatewayInit(t.cfg, t.deps);
    expect(r.networkChanges).toBe(0);
    expect(r.forwardingChanged).toBe(false);
    expect(t.events).toEqual(["firewall apply (26 rules)"]);
    expect(t.host.print()).toBe(state);
    expect(t.host.link("vxlan0")!.ifindex).toBe(vxlanIndex);
    expect(t.fw.applied[0]).toEqual(t.fw.applied[1]!);
  });

  test("fail closed: when the firewall cannot be applied with the kill switch on, a blocking ruleset goes in and nothing else changes", async () => {
    const t = setup();
    t.fw.failApplies = 1;
    const before = t.host.print();
    const err = await runGatewayInit(t.cfg, t.deps).catch((e) => e);
    expect(err).toBeInstanceOf(StepError);
    expect(err.message).toStartWith("applying the firewall (nft): nft: Error: Could not process rule");
    expect(t.fw.applied).toHaveLength(1);
    const block = t.fw.applied[0]!;
    expect(block.rules.filter((r) => r.hook === "forward").map((r) => r.target.kind)).toEqual(["drop"]);
    expect(t.events).toEqual(["firewall apply (26 rules)", "firewall apply (8 rules)"]);
    expect(t.sysctl.values.get("net.ipv4.ip_forward")).toBe("0");
    expect(t.host.print()).toBe(before);
    expect(t.lines).toContain("error: firewall could not be applied: all forwarded and outgoing traffic is blocked (fail closed)");
  });

  test("fail closed also when the rules read back differ from the plan", async () => {
    const t = setup();
    t.fw.lie = true;
    const err = await runGatewayInit(t.cfg, t.deps).catch((e) => e);
    expect(err.message).toContain("rules read back differ from the plan:\n  nft table inet pod_gateway: chain output missing");
    expect(t.fw.applied.at(-1)!.rules.some((r) => r.comment === "fail closed")).toBe(true);
  });

  test("when even the blocking ruleset fails, the error says so", async () => {
    const t = setup();
    t.fw.failApplies = 2;
    const err = await runGatewayInit(t.cfg, t.deps).catch((e) => e);
    expect(err.message).toContain("and the blocking fallback failed too");
  });

  test("kill switch off: a firewall failure is an error without the blocking fallback", async () => {
    const t = setup({ VPN_BLOCK_OTHER_TRAFFIC: false });
    t.fw.failApplies = 1;
    await expect(runGatewayInit(t.cfg, t.deps)).rejects.toThrow("applying the firewall (nft)");
    expect(t.events).toEqual(["firewall apply (12 rules)"]);
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

  test("no eth0: planning fails before anything is changed", async () => {
    const t = setup();
    t.host.links = t.host.links.filter((l) => l.ifname !== "eth0");
    await expect(runGatewayInit(t.cfg, t.deps)).rejects.toThrow("planning the gateway network: eth0 not found");
    expect(t.events).toEqual([]);
  });

  test("a failing ip command is named with what it was for", async () => {
    const t = setup();
    t.host.addLink({ ifname: "vxlan0", linkinfo: { info_kind: "vxlan", info_data: { id: 42, port: 8472, link: "eth0" } }, address: "02:00:00:00:00:09" });
    // The fake refuses to delete this link, like a busy device would.
    const apply = t.host.apply.bind(t.host);
    t.host.apply = (args) => (args[0] === "link" && args[1] === "del" ? "RTNETLINK answers: Device or resource busy" : apply(args));
    const e = await runGatewayInit(t.cfg, t.deps).catch((x) => x);
    expect(e.message).toMatch(/^configuring the gateway network: ip link del dev vxlan0 \(existing vxlan0 does not match \(MAC 02:00:00:00:00:09.*\)\): RTNETLINK answers: Device or resource busy$/);
  });
});
