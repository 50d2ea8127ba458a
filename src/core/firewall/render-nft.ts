// The native nftables side of the firewall: renders a FirewallPlan to one `nft -f -` script
// that replaces our table atomically, and checks a table read back with `nft -j`.
//
// How this backend behaves next to a VPN container's own firewall: nftables evaluates every
// base chain registered on a hook, table after table by priority. An `accept` ends the packet's
// trip through *our* chain only; a `drop` in any other base chain (for example the `ip filter`
// table that iptables-nft makes for gluetun, with INPUT policy DROP) still drops it. So:
//   - our kill switch (drop) is effective whatever other tables do: a drop anywhere is final;
//   - our client-input accepts can NOT override another table's INPUT drop policy. With an
//     iptables-based VPN container (gluetun), use an iptables backend (auto picks one when
//     iptables-nft or iptables-legacy is available): there our jump sits at position 1 of the
//     same INPUT chain the VPN container fills, so our accepts come first and are final.
//
// Port forwards are data here, not rules: per protocol one DNAT map (port → client address) and
// one FORWARD set (client address . port), so 200 nat.conf entries cost four rules and their
// elements instead of 800 rules. `nft -f` and `nft -j list` pay per rule: about 70 and 80 ms
// for 800 rules against about 20 ms each with the sets, on the 2-core machine of issue 8.
//
// Every rule's comment ends in a tag, a hash of the rule's own statements ("kill switch
// #46516870"). The read back compares comments, verdicts, chains and
// set elements: with the tag, a rule whose match changed (another VPN_TRAFFIC_PORT, another
// VPN_INTERFACE) no longer compares equal, so one read tells whether the table already is the
// plan and the apply can be skipped. (A rule replaced in place by someone who kept its comment
// would pass; that needs a deliberate forgery inside our own table.)
import { NFT_CHAIN, NFT_FAMILY, NFT_PRIORITY, NFT_SET, NFT_TABLE } from "./names.ts";
import { checkInterfaceName } from "../settings/values.ts";
import { canonicalCidr, cidrFamily, type FirewallPlan, type FwRule, type Hook } from "./model.ts";

/**
 * The one way a string reaches an nft script: in double quotes. nft's scanner has no escape
 * inside a quoted string (a '"' ends it, a backslash is nft's own escape for '*' in names), so a
 * value holding either, or a control character (a newline ends the statement), cannot be
 * written: it is refused, never mangled. Validation keeps such values out of the settings.
 */
export function nftString(s: string): string {
  if (/["\\\x00-\x1f\x7f]/.test(s)) throw new Error(`cannot write ${JSON.stringify(s)} into an nft script: it holds a quote, a backslash or a control character`);
  return `"${s}"`;
}

/** An interface name for iifname/oifname: one exact interface (a trailing '*' is a wildcard to nft). */
export function nftIfname(name: string): string {
  const c = checkInterfaceName(name);
  if (!c.ok) throw new Error(`interface name ${c.error}`);
  return nftString(name);
}

interface NftChainDef {
  name: string;
  type: "filter" | "nat";
  hook: Hook;
  priority: string;
  /** The priority as `nft -j` reports it (a number). */
  prio: number;
}

// Always all chains (stable set of objects whatever the settings).
export const NFT_CHAINS: readonly NftChainDef[] = [
  { name: NFT_CHAIN.input, type: "filter", hook: "input", priority: NFT_PRIORITY.filter, prio: -10 },
  { name: NFT_CHAIN.forward, type: "filter", hook: "forward", priority: NFT_PRIORITY.filter, prio: -10 },
  { name: NFT_CHAIN.output, type: "filter", hook: "output", priority: NFT_PRIORITY.filter, prio: -10 },
  { name: NFT_CHAIN.prerouting, type: "nat", hook: "prerouting", priority: NFT_PRIORITY.dstnat, prio: -110 },
  { name: NFT_CHAIN.postrouting, type: "nat", hook: "postrouting", priority: NFT_PRIORITY.srcnat, prio: 90 },
];

/** One rule of our table: its statements, its tagged comment, and its verdict as `nft -j` names it. */
export interface NftRule {
  statement: string;
  comment: string;
  verdict: string;
}

/** A set or map of our table, elements written as nft writes them. */
export interface NftSetDef {
  name: string;
  kind: "set" | "map";
  /** `inet_service : ipv4_addr` (a map), `ipv4_addr . inet_service` (a set of pairs). */
  type: string;
  elements: string[];
}

/** Our table as nft objects: what the script creates and what a read back must show. */
export interface NftTablePlan {
  sets: NftSetDef[];
  chains: { def: NftChainDef; rules: NftRule[] }[];
}

/** The verdict/statement kind of a rule as it appears in `nft -j` (for verification). */
export function nftVerdict(r: FwRule): string {
  switch (r.target.kind) {
    case "clamp-mss": return "mangle";
    case "nflog": return "log";
    default: return r.target.kind;
  }
}

/** Rules of one nft chain, in order: mangle rules first (iptables' mangle runs before filter). */
export function nftChainRules(plan: FirewallPlan, chain: NftChainDef): FwRule[] {
  const tableOrder = chain.type === "nat" ? ["nat"] : ["mangle", "filter"];
  return tableOrder.flatMap((t) => plan.rules.filter((r) => r.table === t && r.hook === chain.hook));
}

function addr(cidr: string): string {
  const c = canonicalCidr(cidr);
  // nft prints host addresses without the prefix; write them the same way.
  return c.endsWith("/32") || c.endsWith("/128") ? c.slice(0, c.lastIndexOf("/")) : c;
}

/** nft limits comments to 128 bytes; ours are short, the tag takes 10. */
const MAX_COMMENT = 128;

/**
 * FNV-1a over the text, 32 bits as 8 hex digits: a content tag, not a security measure (the
 * table is root's to change anyway). Plain arithmetic rather than node:crypto, whose import
 * alone costs a compiled binary about 10 ms of start-up.
 */
function contentTag(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}

/** A comment with the tag of the statements it belongs to (see the top of this file). */
export function nftComment(comment: string, statement: string): string {
  const tag = contentTag(statement);
  return `${comment.slice(0, MAX_COMMENT - tag.length - 2)} #${tag}`;
}

/** The ICMPv6 types the model uses, by the names `nft list` prints for them. */
const ICMPV6_NAMES: ReadonlyMap<number, string> = new Map([
  [133, "nd-router-solicit"],
  [134, "nd-router-advert"],
  [135, "nd-neighbor-solicit"],
  [136, "nd-neighbor-advert"],
  [143, "mld2-listener-report"],
]);

function nftIcmpv6Type(t: number): string {
  const name = ICMPV6_NAMES.get(t);
  if (name === undefined) throw new Error(`ICMPv6 type ${t} has no nft name here (known: ${[...ICMPV6_NAMES.keys()].join(", ")})`);
  return name;
}

/** One rule's statements, without its comment. */
export function renderNftStatement(r: FwRule): string {
  const m = r.match;
  const out: string[] = [];
  const hasAddress = m.src !== undefined || m.dst !== undefined;
  if (r.families.length === 1 && !hasAddress) out.push(`meta nfproto ipv${r.families[0]}`);
  if (m.in) out.push(`iifname ${nftIfname(m.in)}`);
  if (m.out) out.push(`oifname ${nftIfname(m.out)}`);
  if (m.notOut) out.push(`oifname != ${nftIfname(m.notOut)}`);
  if (m.src) out.push(`${cidrFamily(m.src) === 4 ? "ip" : "ip6"} saddr ${addr(m.src)}`);
  if (m.dst) out.push(`${cidrFamily(m.dst) === 4 ? "ip" : "ip6"} daddr ${addr(m.dst)}`);
  if (m.proto === "icmp") out.push(m.icmpEchoRequest ? "icmp type echo-request" : "meta l4proto icmp");
  else if (m.proto === "icmpv6") out.push(m.icmpv6Type !== undefined ? `icmpv6 type ${nftIcmpv6Type(m.icmpv6Type)}` : "meta l4proto ipv6-icmp");
  else if (m.proto) {
    if (m.dport !== undefined) out.push(`${m.proto} dport ${m.dport}`);
    if (m.tcpSyn) out.push("tcp flags & (syn | rst) == syn");
    if (m.dport === undefined && !m.tcpSyn) out.push(`meta l4proto ${m.proto}`);
  }
  if (m.hopLimit !== undefined) {
    if (!Number.isInteger(m.hopLimit) || m.hopLimit < 0 || m.hopLimit > 255) throw new Error(`hop limit ${m.hopLimit} is not a one-byte value`);
    out.push(`ip6 hoplimit ${m.hopLimit}`);
  }
  if (m.ctState?.length) out.push(`ct state ${[...m.ctState].sort().join(",")}`);
  if (m.ctDnat) out.push("ct status dnat");
  if (m.ctReply) out.push("ct direction reply");
  const t = r.target;
  switch (t.kind) {
    case "accept": out.push("accept"); break;
    case "drop": out.push("counter drop"); break;
    case "reject": out.push("reject"); break;
    case "masquerade": out.push("masquerade"); break;
    case "snat": out.push(`snat ip to ${t.to}`); break;
    case "dnat": out.push(`dnat ip to ${t.to}:${t.port}`); break;
    case "clamp-mss": out.push("tcp option maxseg size set rt mtu"); break;
    case "nflog": out.push(`limit rate ${t.perSecond}/second log group ${t.group}`); break;
  }
  return out.join(" ");
}

/** One rule as an nft statement list with its tagged comment. */
export function renderNftRule(r: FwRule): string {
  const statement = renderNftStatement(r);
  return `${statement} comment ${nftString(nftComment(r.comment, statement))}`;
}

interface ForwardGroup {
  set: Omit<NftSetDef, "elements">;
  key: string;
  element: string;
  statement: string;
  verdict: string;
  comment: string;
}

/**
 * The set element and the shared rule a port-forward rule becomes. The model makes exactly two
 * shapes (DNAT to the same port, and the FORWARD accept of DNATed connections); anything else
 * is a programming error, refused rather than rendered differently from iptables.
 */
function forwardGroup(r: FwRule): ForwardGroup {
  const m = r.match;
  const t = r.target;
  const proto = m.proto === "tcp" || m.proto === "udp" ? m.proto : undefined;
  const bad = () => new Error(`port forward rule of an unexpected shape: ${renderNftStatement(r)}`);
  if (!proto || m.dport === undefined || !m.in) throw bad();
  if (r.table === "nat" && t.kind === "dnat") {
    if (t.port !== m.dport || m.out || m.dst || m.src) throw bad();
    const name = NFT_SET.dnat(proto);
    return {
      set: { name, kind: "map", type: "inet_service : ipv4_addr" },
      key: String(m.dport),
      element: `${m.dport} : ${t.to}`,
      statement: `meta nfproto ipv4 iifname ${nftIfname(m.in)} dnat ip to ${proto} dport map @${name}`,
      verdict: "dnat",
      comment: `port forwards ${proto}`,
    };
  }
  if (r.table === "filter" && t.kind === "accept" && m.ctDnat && m.out && m.dst && cidrFamily(m.dst) === 4) {
    const name = NFT_SET.forward(proto);
    const element = `${addr(m.dst)} . ${m.dport}`;
    return {
      set: { name, kind: "set", type: "ipv4_addr . inet_service" },
      key: element,
      element,
      statement: `iifname ${nftIfname(m.in)} oifname ${nftIfname(m.out)} ip daddr . ${proto} dport @${name} ct status dnat accept`,
      verdict: "accept",
      comment: `port forwards ${proto}`,
    };
  }
  throw bad();
}

/**
 * The plan as nft objects. Port-forward rules become one rule per protocol at the place of the
 * first of them (they are contiguous accepts, or DNATs of distinct ports: order within them does
 * not matter) and their elements; a repeated key keeps its first target, as iptables' first
 * match would.
 */
export function planNftTable(plan: FirewallPlan): NftTablePlan {
  const known = tables.get(plan);
  if (known) return known;
  const sets = new Map<string, { def: NftSetDef; keys: Set<string>; statement: string }>();
  const chains = NFT_CHAINS.map((def) => {
    const rules: NftRule[] = [];
    for (const r of nftChainRules(plan, def)) {
      if (r.purpose !== "port-forward") {
        const statement = renderNftStatement(r);
        rules.push({ statement, comment: nftComment(r.comment, statement), verdict: nftVerdict(r) });
        continue;
      }
      const g = forwardGroup(r);
      let s = sets.get(g.set.name);
      if (!s) {
        s = { def: { ...g.set, elements: [] }, keys: new Set(), statement: g.statement };
        sets.set(g.set.name, s);
        rules.push({ statement: g.statement, comment: nftComment(g.comment, g.statement), verdict: g.verdict });
      } else if (s.statement !== g.statement) {
        throw new Error(`port forwards of one set on different interfaces: ${s.statement} / ${g.statement}`);
      }
      if (!s.keys.has(g.key)) {
        s.keys.add(g.key);
        s.def.elements.push(g.element);
      }
    }
    return { def, rules };
  });
  const table = { sets: [...sets.values()].map((s) => s.def), chains };
  tables.set(plan, table);
  return table;
}

// A plan is a value: planned once, whether for the check before applying, the script or the
// read back.
const tables = new WeakMap<FirewallPlan, NftTablePlan>();

/**
 * One `nft -f -` script, applied as a single transaction: create our table if it is missing
 * (so the delete cannot fail), delete it, and create it whole. Other tables are never touched.
 */
export function renderNftScript(plan: FirewallPlan): string {
  const t = `${NFT_FAMILY} ${NFT_TABLE}`;
  const table = planNftTable(plan);
  const blocks: string[][] = [];
  for (const s of table.sets) {
    const b = [`\t${s.kind} ${s.name} {`, `\t\ttype ${s.type}`];
    if (s.elements.length) b.push(`\t\telements = { ${s.elements.join(", ")} }`);
    blocks.push([...b, "\t}"]);
  }
  for (const { def: c, rules } of table.chains) {
    blocks.push([
      `\tchain ${c.name} {`,
      `\t\ttype ${c.type} hook ${c.hook} priority ${c.priority}; policy accept;`,
      ...rules.map((r) => `\t\t${r.statement} comment ${nftString(r.comment)}`),
      "\t}",
    ]);
  }
  const lines = [`table ${t}`, `delete table ${t}`, `table ${t} {`, ...blocks.flatMap((b, i) => (i > 0 ? ["", ...b] : b)), "}"];
  return lines.join("\n") + "\n";
}

// ---------------------------------------------------------------- reading back (nft -j)

export interface NftChainState {
  type?: string;
  hook?: string;
  prio?: number;
  policy?: string;
  rules: { comment?: string; verdict?: string }[];
}

export interface NftSetState {
  kind: "set" | "map";
  type: string;
  elements: string[];
}

export interface NftTableState {
  /** Table flags (`dormant` switches the whole table off). */
  flags: string[];
  chains: Map<string, NftChainState>;
  sets: Map<string, NftSetState>;
  /** Any other object in the table ("flowtable ft", "counter c"): we make none. */
  others: string[];
}

const VERDICTS = ["accept", "drop", "reject", "masquerade", "snat", "dnat", "mangle", "log"];

/** An element (or a part of one) of `nft -j` output, in the syntax nft scripts use. */
function elementText(e: unknown): string {
  if (Array.isArray(e)) return e.map(elementText).join(" : "); // map element: [key, value]
  if (e !== null && typeof e === "object") {
    const o = e as Record<string, any>;
    if (Array.isArray(o.concat)) return o.concat.map(elementText).join(" . ");
    if (o.elem) return elementText(o.elem.val);
    if (o.prefix) return `${o.prefix.addr}/${o.prefix.len}`;
    if (Array.isArray(o.range)) return o.range.map(elementText).join("-");
    return JSON.stringify(e);
  }
  return String(e);
}

function typeText(t: unknown): string {
  return Array.isArray(t) ? t.join(" . ") : String(t);
}

/** Parse `nft -j list table inet pod_gateway` into flags, chains with their rules (comment + verdict), and sets. */
export function parseNftTableJson(text: string): NftTableState {
  const doc = JSON.parse(text) as { nftables?: Record<string, any>[] };
  const state: NftTableState = { flags: [], chains: new Map(), sets: new Map(), others: [] };
  for (const item of doc.nftables ?? []) {
    if (item.table) {
      const f = item.table.flags;
      state.flags = Array.isArray(f) ? f.map(String) : f ? [String(f)] : [];
    } else if (item.chain) {
      const c = item.chain as { name: string; type?: string; hook?: string; prio?: number; policy?: string };
      state.chains.set(c.name, { type: c.type, hook: c.hook, prio: c.prio, policy: c.policy, rules: state.chains.get(c.name)?.rules ?? [] });
    } else if (item.rule) {
      const r = item.rule as { chain: string; comment?: string; expr?: Record<string, unknown>[] };
      const verdict = (r.expr ?? []).map((e) => Object.keys(e)[0]).filter((k): k is string => k !== undefined && VERDICTS.includes(k)).pop();
      const c = state.chains.get(r.chain) ?? { rules: [] };
      c.rules.push({ comment: r.comment, verdict });
      state.chains.set(r.chain, c);
    } else if (item.set || item.map) {
      const s = (item.set ?? item.map) as { name: string; type?: unknown; map?: unknown; elem?: unknown[] };
      const kind = item.map ? "map" : "set";
      state.sets.set(s.name, {
        kind,
        type: kind === "map" ? `${typeText(s.type)} : ${typeText(s.map)}` : typeText(s.type),
        elements: (s.elem ?? []).map(elementText),
      });
    } else {
      const [kind] = Object.keys(item);
      if (kind && kind !== "metainfo") state.others.push(`${kind} ${String(item[kind]?.name ?? "")}`.trim());
    }
  }
  return state;
}

function diffElements(where: string, want: readonly string[], have: readonly string[]): string | undefined {
  const w = new Set(want);
  const h = new Set(have);
  const missing = want.filter((e) => !h.has(e));
  const extra = have.filter((e) => !w.has(e));
  if (!missing.length && !extra.length && have.length === want.length) return undefined;
  const detail = [
    missing.length ? `${missing.length} missing, first ${missing[0]}` : "",
    extra.length ? `${extra.length} unexpected, first ${extra[0]}` : "",
  ].filter(Boolean).join("; ");
  return `${where} has ${have.length} elements, expected ${want.length}${detail ? ` (${detail})` : ""}`;
}

/**
 * Differences between the plan and our table as read back; empty when it is exactly ours:
 * no flags, the five chains with their hooks, priorities and policies, every rule in order by
 * tagged comment and verdict, the port-forward sets with exactly their elements, no other object.
 */
export function diffNft(plan: FirewallPlan, state: NftTableState | undefined): string[] {
  const where = `nft table ${NFT_FAMILY} ${NFT_TABLE}`;
  if (!state) return [`${where}: missing`];
  const want = planNftTable(plan);
  const problems: string[] = [];
  if (state.flags.length) problems.push(`${where}: flags ${state.flags.join(",")} (expected none)`);
  for (const { def: c, rules } of want.chains) {
    const have = state.chains.get(c.name);
    if (!have) {
      problems.push(`${where}: chain ${c.name} missing`);
      continue;
    }
    if (have.type !== c.type || have.hook !== c.hook || have.prio !== c.prio || have.policy !== "accept")
      problems.push(`${where}: chain ${c.name} is type ${have.type} hook ${have.hook} priority ${have.prio} policy ${have.policy}, expected ${c.type} ${c.hook} ${c.prio} accept`);
    const n = Math.max(rules.length, have.rules.length);
    for (let i = 0; i < n; i++) {
      const h = have.rules[i];
      const w = rules[i];
      if (h && w && h.comment === w.comment && h.verdict === w.verdict) continue;
      const show = (r: { verdict?: string; comment?: string } | undefined) => (r ? `${r.verdict} "${r.comment ?? ""}"` : "none");
      problems.push(
        have.rules.length !== rules.length
          ? `${where}: chain ${c.name} has ${have.rules.length} rules, expected ${rules.length} (first difference at rule ${i + 1}: ${show(h)} instead of ${show(w)})`
          : `${where}: chain ${c.name} rule ${i + 1} is ${show(h)}, expected ${show(w)}`,
      );
      break;
    }
  }
  for (const s of want.sets) {
    const have = state.sets.get(s.name);
    if (!have) problems.push(`${where}: ${s.kind} ${s.name} missing`);
    else if (have.kind !== s.kind || have.type !== s.type) problems.push(`${where}: ${have.kind} ${s.name} has type ${have.type}, expected ${s.kind} of ${s.type}`);
    else {
      const d = diffElements(`${where}: ${s.kind} ${s.name}`, s.elements, have.elements);
      if (d) problems.push(d);
    }
  }
  for (const name of state.chains.keys()) if (!NFT_CHAINS.some((c) => c.name === name)) problems.push(`${where}: unexpected chain ${name}`);
  for (const [name, s] of state.sets) if (!want.sets.some((w) => w.name === name)) problems.push(`${where}: unexpected ${s.kind} ${name}`);
  for (const o of state.others) problems.push(`${where}: unexpected ${o}`);
  return problems;
}
