// The firewall backends' processes against a fake kernel: what each run starts. A ruleset that
// already is the plan is read and left alone (no restore, no nft -f, no second read); only the
// iptables family that differs is restored and read back; reads made by the backend choice are
// not made again.
import { describe, expect, test } from "bun:test";
import { CommandError } from "../../src/core/errors.ts";
import { planFirewall, type FirewallPlan } from "../../src/core/firewall/model.ts";
import { planIptablesChains } from "../../src/core/firewall/render-iptables.ts";
import { planNftTable, renderNftScript } from "../../src/core/firewall/render-nft.ts";
import type { RunOptions, RunResult, Runner } from "../../src/sys/exec.ts";
import { checkProblems, partsToApply } from "../../src/sys/firewall.ts";
import { IptablesBackend } from "../../src/sys/firewall-iptables.ts";
import { NftBackend } from "../../src/sys/firewall-nft.ts";
import { testSettings } from "../helpers/settings.ts";

const plan = planFirewall(testSettings(), [{ name: "web", octet: 10, ports: [{ proto: "tcp", port: 8080 }] }]);
const other = planFirewall(testSettings({ VPN_TRAFFIC_PORT: [444] }), []);

/** What iptables-save prints once a plan's restore went in (our chains, one jump each). */
function saveOf(p: FirewallPlan, family: 4 | 6): string {
  const chains = planIptablesChains(p, family);
  const out: string[] = [];
  for (const t of new Set([...chains.keys()].map((c) => c.table))) {
    out.push(`*${t}`);
    for (const [c] of [...chains].filter(([c]) => c.table === t)) out.push(`:${c.chain} - [0:0]`);
    for (const [c, rules] of [...chains].filter(([c]) => c.table === t)) out.push(`-A ${c.builtin} -j ${c.chain}`, ...rules.map((r) => `-A ${c.chain} ${r}`));
    out.push("COMMIT");
  }
  return out.join("\n") + "\n";
}

// which() must find the tools, so programs every machine has stand in for them: the fake runner
// below answers in their place and never runs them.
const TOOLS = { save: { 4: "cat", 6: "tac" }, restore: { 4: "head", 6: "tail" } } as const;

/** A kernel holding one save text per family; a restore of a plan makes that plan's save. */
class FakeIptables implements Runner {
  saves: Record<4 | 6, string> = { 4: "", 6: "" };
  calls: string[] = [];
  /** `restores`: the plan a restore puts in (the restore's text is not interpreted). */
  constructor(readonly restores: FirewallPlan) {}
  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const family = argv[0] === TOOLS.save[4] || argv[0] === TOOLS.restore[4] ? 4 : 6;
    const save = argv[0] === TOOLS.save[4] || argv[0] === TOOLS.save[6];
    this.calls.push(`${save ? "save" : "restore"} ${family}`);
    if (save) return { code: 0, stdout: this.saves[family], stderr: "" };
    expect(opts.input).toStartWith("*filter\n");
    this.saves[family] = saveOf(this.restores, family);
    return { code: 0, stdout: "", stderr: "" };
  }
}

describe("IptablesBackend", () => {
  const backend = (k: FakeIptables) => new IptablesBackend(k, "nft", { ipv6: true, tools: TOOLS });

  test("a fresh pod: both families read, both restored, both read back clean", async () => {
    const k = new FakeIptables(plan);
    const b = backend(k);
    const c = await b.check(plan);
    expect(partsToApply(c)).toEqual(["ipv4", "ipv6"]);
    expect(await b.apply(plan, c)).toEqual(["ipv4", "ipv6"]);
    expect(checkProblems(await b.check(plan, { parts: ["ipv4", "ipv6"] }))).toEqual([]);
    expect(k.calls).toEqual(["save 4", "save 6", "restore 4", "restore 6", "save 4", "save 6"]);
  });

  test("unchanged ruleset: the reads are all, no restore process", async () => {
    const k = new FakeIptables(plan);
    k.saves = { 4: saveOf(plan, 4), 6: saveOf(plan, 6) };
    const b = backend(k);
    const c = await b.check(plan);
    expect(checkProblems(c)).toEqual([]);
    expect(await b.apply(plan, c)).toEqual([]);
    expect(k.calls).toEqual(["save 4", "save 6"]);
  });

  test("only the family that differs is restored and read back", async () => {
    const k = new FakeIptables(plan);
    k.saves = { 4: saveOf(other, 4), 6: saveOf(plan, 6) };
    const b = backend(k);
    const c = await b.check(plan);
    expect(partsToApply(c)).toEqual(["ipv4"]);
    expect(c.parts.get("ipv4")![0]).toStartWith("iptables filter POD-GATEWAY-FORWARD:");
    const applied = await b.apply(plan, c);
    expect(applied).toEqual(["ipv4"]);
    expect(checkProblems(await b.check(plan, { parts: applied }))).toEqual([]);
    expect(k.calls).toEqual(["save 4", "save 6", "restore 4", "save 4"]);
  });

  test("an IPv4 save the backend choice already read is not read again", async () => {
    const k = new FakeIptables(plan);
    const c = await backend(k).check(plan, { known: new Map([["ipv4", saveOf(plan, 4)]]) });
    expect(k.calls).toEqual(["save 6"]);
    expect(partsToApply(c)).toEqual(["ipv6"]);
  });

  test("apply without a check (the sidecar's re-assert, the fail-closed fallback) restores every family from fresh saves", async () => {
    const k = new FakeIptables(plan);
    k.saves = { 4: saveOf(plan, 4), 6: saveOf(plan, 6) };
    expect(await backend(k).apply(plan)).toEqual(["ipv4", "ipv6"]);
    expect(k.calls).toEqual(["save 4", "save 6", "restore 4", "restore 6"]);
  });

  test("verify is a check flattened", async () => {
    const k = new FakeIptables(plan);
    k.saves = { 4: saveOf(plan, 4), 6: "" };
    expect(await backend(k).verify(plan)).toContain("ip6tables filter INPUT: no jump to POD-GATEWAY-INPUT");
  });
});

/** A kernel holding our nft table as the plan last applied (listed as nft -j would list it). */
class FakeNft implements Runner {
  applied: FirewallPlan | undefined;
  calls: string[] = [];
  listing: (p: FirewallPlan) => string = () => "";
  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const a = argv.join(" ");
    this.calls.push(a);
    if (a === "nft -f -") {
      expect(opts.input).toBe(renderNftScript(plan));
      this.applied = plan;
      return { code: 0, stdout: "", stderr: "" };
    }
    if (a === "nft -j list table inet pod_gateway") {
      if (!this.applied) return { code: 1, stdout: "", stderr: "Error: No such file or directory" };
      return { code: 0, stdout: this.listing(this.applied), stderr: "" };
    }
    throw new CommandError(argv, 127, "fake nft: unknown command", opts.what);
  }
}

/** `nft -j list table` for a plan, built from its table plan in the form nft prints (the parts the parser reads). */
function listingOf(p: FirewallPlan): string {
  const t = planNftTable(p);
  const items: unknown[] = [{ table: { family: "inet", name: "pod_gateway" } }];
  for (const s of t.sets) {
    const [key, value] = s.type.split(" : ");
    const elem = s.elements.map((e) => (s.kind === "map" ? [Number(e.split(" : ")[0]), e.split(" : ")[1]] : { concat: [e.split(" . ")[0], Number(e.split(" . ")[1])] }));
    items.push({ [s.kind]: { name: s.name, type: s.kind === "map" ? key : key!.split(" . "), ...(s.kind === "map" ? { map: value } : {}), elem } });
  }
  for (const { def, rules } of t.chains) {
    items.push({ chain: { name: def.name, type: def.type, hook: def.hook, prio: def.prio, policy: "accept" } });
    for (const r of rules) items.push({ rule: { chain: def.name, comment: r.comment, expr: [{ match: {} }, { [r.verdict]: null }] } });
  }
  return JSON.stringify({ nftables: items });
}

describe("NftBackend", () => {
  test("a fresh pod: the read finds no table, one nft -f, one read back", async () => {
    const k = new FakeNft();
    k.listing = listingOf;
    const b = new NftBackend(k);
    const c = await b.check(plan);
    expect(checkProblems(c)).toEqual(["nft table inet pod_gateway: missing"]);
    expect(await b.apply(plan, c)).toEqual(["table"]);
    expect(checkProblems(await b.check(plan, { parts: ["table"] }))).toEqual([]);
    expect(k.calls).toEqual(["nft -j list table inet pod_gateway", "nft -f -", "nft -j list table inet pod_gateway"]);
  });

  test("unchanged table: one read, no nft -f", async () => {
    const k = new FakeNft();
    k.listing = listingOf;
    k.applied = plan;
    const b = new NftBackend(k);
    const c = await b.check(plan);
    expect(await b.apply(plan, c)).toEqual([]);
    expect(k.calls).toEqual(["nft -j list table inet pod_gateway"]);
  });

  test("the backend choice's read (our table missing) is not made again; apply without a check applies", async () => {
    const k = new FakeNft();
    k.listing = listingOf;
    const b = new NftBackend(k);
    expect(checkProblems(await b.check(plan, { known: new Map([["table", null]]) }))).toEqual(["nft table inet pod_gateway: missing"]);
    expect(k.calls).toEqual([]);
    expect(await b.apply(plan)).toEqual(["table"]);
    expect(k.calls).toEqual(["nft -f -"]);
  });

  test("a table of another plan is replaced", async () => {
    const k = new FakeNft();
    k.listing = () => listingOf(other);
    k.applied = plan;
    const c = await new NftBackend(k).check(plan);
    expect(partsToApply(c)).toEqual(["table"]);
  });
});
