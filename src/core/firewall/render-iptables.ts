// The iptables side of the firewall: renders a FirewallPlan to `iptables-restore --noflush`
// input, parses `iptables-save` output, and diffs the two. Rules are rendered in exactly the
// form iptables-save prints them, so verification is a string comparison.
import { checkInterfaceName } from "../settings/values.ts";
import { IPT_CHAIN } from "./names.ts";
import { canonicalCidr, rulesOf, type Family, type FirewallPlan, type FwRule, type Hook, type Table } from "./model.ts";

/** Our chains, the built-in chain each hangs from, and the families that have it. */
export interface IptHookChain {
  table: Table;
  hook: Hook;
  builtin: string;
  chain: string;
  families: readonly Family[];
}

// Always all of them, even when empty (e.g. OUTPUT with the kill switch off): the set of our
// objects stays the same whatever the settings, so a re-run flushes what an earlier run filled.
// Order is the order of the restore: filter first, so the kill switch lands first.
export const IPT_CHAINS: readonly IptHookChain[] = [
  { table: "filter", hook: "input", builtin: "INPUT", chain: IPT_CHAIN.input, families: [4, 6] },
  { table: "filter", hook: "forward", builtin: "FORWARD", chain: IPT_CHAIN.forward, families: [4, 6] },
  { table: "filter", hook: "output", builtin: "OUTPUT", chain: IPT_CHAIN.output, families: [4, 6] },
  { table: "nat", hook: "prerouting", builtin: "PREROUTING", chain: IPT_CHAIN.prerouting, families: [4] },
  { table: "nat", hook: "postrouting", builtin: "POSTROUTING", chain: IPT_CHAIN.postrouting, families: [4] },
  { table: "mangle", hook: "forward", builtin: "FORWARD", chain: IPT_CHAIN.forward, families: [4] },
];

export function chainsOf(family: Family): IptHookChain[] {
  return IPT_CHAINS.filter((c) => c.families.includes(family));
}

/**
 * The one way a string argument reaches iptables-restore input: exactly as iptables-save prints
 * it (xtables_save_string), so verification stays a string comparison — bare when it is only
 * letters, digits, "_" and "-", otherwise in double quotes with '"', "'" and '\\' escaped by a
 * backslash (iptables-restore's tokenizer undoes exactly that). A control character cannot be
 * written (a newline would end the rule): refused.
 */
export function quoteLikeSave(value: string): string {
  if (/[\x00-\x1f\x7f]/.test(value)) throw new Error(`cannot write ${JSON.stringify(value)} into iptables-restore input: it holds a control character`);
  return /^[A-Za-z0-9_-]+$/.test(value) ? value : `"${value.replace(/["'\\]/g, "\\$&")}"`;
}

/**
 * An interface name for -i/-o: one exact interface, written bare as iptables-save prints it. A
 * trailing '+' would make it a wildcard ("-o +" is every interface), so names are checked with
 * the settings' own rule (no '+', '*', blanks, quotes, backslashes or control characters).
 */
export function iptablesInterface(name: string): string {
  const c = checkInterfaceName(name);
  if (!c.ok) throw new Error(`interface name ${c.error}`);
  return name;
}

/** A one-byte field (ICMPv6 type, hop limit) as iptables-save prints it: decimal. */
function oneByte(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new Error(`${n} is not a one-byte value`);
  return String(n);
}

const CT_ORDER = ["RELATED", "ESTABLISHED", "DNAT"] as const;

/** One rule in iptables-save form, without the leading "-A CHAIN". */
export function renderIptablesRule(r: FwRule, family: Family): string {
  const m = r.match;
  const out: string[] = [];
  if (m.src) out.push("-s", canonicalCidr(m.src));
  if (m.dst) out.push("-d", canonicalCidr(m.dst));
  if (m.in) out.push("-i", iptablesInterface(m.in));
  if (m.out) out.push("-o", iptablesInterface(m.out));
  if (m.notOut) out.push("!", "-o", iptablesInterface(m.notOut));
  if (m.proto === "icmp") {
    if (family !== 4) throw new Error("icmp rules are IPv4 only");
    out.push("-p", "icmp");
    if (m.icmpEchoRequest) out.push("-m", "icmp", "--icmp-type", "8");
  } else if (m.proto === "icmpv6") {
    if (family !== 6) throw new Error("icmpv6 rules are IPv6 only");
    out.push("-p", "ipv6-icmp");
    if (m.icmpv6Type !== undefined) out.push("-m", "icmp6", "--icmpv6-type", oneByte(m.icmpv6Type));
  } else if (m.proto) {
    out.push("-p", m.proto);
    if (m.dport !== undefined || m.tcpSyn) {
      out.push("-m", m.proto);
      if (m.dport !== undefined) out.push("--dport", String(m.dport));
      if (m.tcpSyn) out.push("--tcp-flags", "SYN,RST", "SYN");
    }
  }
  if (m.hopLimit !== undefined) {
    if (family !== 6) throw new Error("hop limit rules are IPv6 only");
    out.push("-m", "hl", "--hl-eq", oneByte(m.hopLimit));
  }
  if (m.ctState?.length || m.ctDnat || m.ctReply) {
    const states = new Set<string>([...(m.ctState ?? []).map((s) => s.toUpperCase()), ...(m.ctDnat ? ["DNAT"] : [])]);
    out.push("-m", "conntrack");
    if (states.size > 0) out.push("--ctstate", CT_ORDER.filter((s) => states.has(s)).join(","));
    if (m.ctReply) out.push("--ctdir", "REPLY");
  }
  const t = r.target;
  // iptables-save prints matches in the order they were given: the limit before the comment.
  if (t.kind === "nflog") out.push("-m", "limit", "--limit", `${t.perSecond}/sec`);
  out.push("-m", "comment", "--comment", quoteLikeSave(r.comment));
  switch (t.kind) {
    case "accept": out.push("-j", "ACCEPT"); break;
    case "drop": out.push("-j", "DROP"); break;
    case "reject": out.push("-j", "REJECT", "--reject-with", family === 4 ? "icmp-port-unreachable" : "icmp6-port-unreachable"); break;
    case "masquerade": out.push("-j", "MASQUERADE"); break;
    case "snat": out.push("-j", "SNAT", "--to-source", t.to); break;
    case "dnat": out.push("-j", "DNAT", "--to-destination", `${t.to}:${t.port}`); break;
    case "clamp-mss": out.push("-j", "TCPMSS", "--clamp-mss-to-pmtu"); break;
    case "nflog": out.push("-j", "NFLOG", "--nflog-group", String(t.group)); break;
  }
  return out.join(" ");
}

// A plan is a value: rendered once per family, whether for the check before applying, the
// restore or the read back (800 port-forward rules take milliseconds to render each time, and
// gateway-init's time is the product).
const rendered = new WeakMap<FirewallPlan, Partial<Record<Family, ReadonlyMap<IptHookChain, readonly string[]>>>>();

/** The rules each of our chains should hold, in iptables-save form. */
export function planIptablesChains(plan: FirewallPlan, family: Family): ReadonlyMap<IptHookChain, readonly string[]> {
  const memo = rendered.get(plan) ?? {};
  const known = memo[family];
  if (known) return known;
  const out = new Map<IptHookChain, string[]>();
  const byChain = new Map<string, string[]>(chainsOf(family).map((c) => [`${c.table}/${c.hook}`, []]));
  for (const r of rulesOf(plan, family)) byChain.get(`${r.table}/${r.hook}`)?.push(renderIptablesRule(r, family));
  for (const c of chainsOf(family)) out.set(c, byChain.get(`${c.table}/${c.hook}`)!);
  memo[family] = out;
  rendered.set(plan, memo);
  return out;
}

// ---------------------------------------------------------------- iptables-save parsing

export interface IptTableState {
  /** Chain name → policy ("ACCEPT", "DROP") for built-in chains, "-" for user chains. */
  chains: Map<string, string>;
  /** Chain name → rule specs (the text after "-A CHAIN "), in order. */
  rules: Map<string, string[]>;
}
export type IptSave = Map<string, IptTableState>;

/** Parse iptables-save output (without -c). Counters on chain lines are ignored. */
export function parseIptablesSave(text: string): IptSave {
  const save: IptSave = new Map();
  let cur: IptTableState | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("*")) {
      cur = { chains: new Map(), rules: new Map() };
      save.set(line.slice(1), cur);
    } else if (line === "COMMIT") {
      cur = undefined;
    } else if (cur && line.startsWith(":")) {
      const [name = "", policy = "-"] = line.slice(1).split(/\s+/);
      cur.chains.set(name, policy);
    } else if (cur && line.startsWith("-A ")) {
      const rest = line.slice(3);
      const sp = rest.indexOf(" ");
      const chain = sp < 0 ? rest : rest.slice(0, sp);
      const spec = sp < 0 ? "" : rest.slice(sp + 1);
      const list = cur.rules.get(chain) ?? [];
      list.push(spec);
      cur.rules.set(chain, list);
    }
  }
  return save;
}

/** Does this save hold any of our chains? */
export function hasOurIptablesChains(save: IptSave): boolean {
  for (const c of IPT_CHAINS) if (save.get(c.table)?.chains.has(c.chain)) return true;
  return false;
}

/** Does a save hold anything besides empty built-in chains with ACCEPT policy (someone else's rules)? */
export function hasForeignIptablesRules(save: IptSave): boolean {
  const ours = new Set(IPT_CHAINS.map((c) => c.chain));
  for (const t of save.values()) {
    for (const [chain, policy] of t.chains) if (!ours.has(chain) && policy !== "-" && policy !== "ACCEPT") return true;
    for (const [chain, rules] of t.rules) if (!ours.has(chain) && rules.some((r) => !ours.has(r.replace(/^-j /, "")))) return true;
  }
  return false;
}

function jumpSpec(c: IptHookChain): string {
  return `-j ${c.chain}`;
}

/** Indices of our jump in a built-in chain of the current state. */
function jumpPositions(save: IptSave | undefined, c: IptHookChain): number[] {
  const rules = save?.get(c.table)?.rules.get(c.builtin) ?? [];
  const out: number[] = [];
  rules.forEach((r, i) => r === jumpSpec(c) && out.push(i));
  return out;
}

/**
 * `iptables-restore --noflush` input for one family: our chains declared (which flushes them),
 * flushed again explicitly (cheap insurance across iptables versions), refilled, and the jump
 * from each built-in chain made to be exactly one, at position 1 — using the current state
 * to emit only the jump changes that are needed, so a re-run changes nothing else.
 */
export function renderIptablesRestore(plan: FirewallPlan, family: Family, current: IptSave | undefined): string {
  const chains = planIptablesChains(plan, family);
  const tables: Table[] = [];
  for (const c of chains.keys()) if (!tables.includes(c.table)) tables.push(c.table);
  const lines: string[] = [];
  for (const table of tables) {
    const mine = [...chains.entries()].filter(([c]) => c.table === table);
    lines.push(`*${table}`);
    for (const [c] of mine) lines.push(`:${c.chain} - [0:0]`);
    for (const [c] of mine) lines.push(`-F ${c.chain}`);
    for (const [c, rules] of mine) for (const r of rules) lines.push(`-A ${c.chain} ${r}`);
    for (const [c] of mine) {
      const pos = jumpPositions(current, c);
      if (pos.length === 1 && pos[0] === 0) continue;
      for (let i = 0; i < pos.length; i++) lines.push(`-D ${c.builtin} ${jumpSpec(c)}`);
      lines.push(`-I ${c.builtin} 1 ${jumpSpec(c)}`);
    }
    lines.push("COMMIT");
  }
  return lines.join("\n") + "\n";
}

/**
 * Differences between the plan and a state read back: an empty list means the state is
 * exactly ours. Each line names the table and chain.
 */
export function diffIptables(plan: FirewallPlan, family: Family, save: IptSave): string[] {
  const problems: string[] = [];
  const cmd = family === 4 ? "iptables" : "ip6tables";
  for (const [c, want] of planIptablesChains(plan, family)) {
    const t = save.get(c.table);
    const where = `${cmd} ${c.table} ${c.chain}`;
    if (!t?.chains.has(c.chain)) {
      problems.push(`${where}: chain missing`);
    } else {
      const have = t.rules.get(c.chain) ?? [];
      const n = Math.max(have.length, want.length);
      for (let i = 0; i < n; i++) {
        if (have[i] === want[i]) continue;
        problems.push(
          have.length !== want.length
            ? `${where}: ${have.length} rules, expected ${want.length} (first difference at rule ${i + 1}: ${have[i] ?? "none"} instead of ${want[i] ?? "none"})`
            : `${where}: rule ${i + 1} is ${JSON.stringify(have[i])}, expected ${JSON.stringify(want[i])}`,
        );
        break;
      }
    }
    const pos = jumpPositions(save, c);
    if (pos.length === 0) problems.push(`${cmd} ${c.table} ${c.builtin}: no jump to ${c.chain}`);
    else if (pos.length > 1) problems.push(`${cmd} ${c.table} ${c.builtin}: ${pos.length} jumps to ${c.chain}, expected exactly one`);
    else if (pos[0] !== 0) problems.push(`${cmd} ${c.table} ${c.builtin}: jump to ${c.chain} is rule ${pos[0]! + 1}, expected rule 1`);
  }
  return problems;
}
