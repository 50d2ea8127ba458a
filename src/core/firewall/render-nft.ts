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
import { NFT_CHAIN, NFT_FAMILY, NFT_PRIORITY, NFT_TABLE } from "./names.ts";
import { canonicalCidr, cidrFamily, type FirewallPlan, type FwRule, type Hook } from "./model.ts";

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

/** The verdict/statement kind of a rule as it appears in `nft -j` (for verification). */
export function nftVerdict(r: FwRule): string {
  switch (r.target.kind) {
    case "clamp-mss": return "mangle";
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

/** One rule as an nft statement list. */
export function renderNftRule(r: FwRule): string {
  const m = r.match;
  const out: string[] = [];
  const hasAddress = m.src !== undefined || m.dst !== undefined;
  if (r.families.length === 1 && !hasAddress) out.push(`meta nfproto ipv${r.families[0]}`);
  if (m.in) out.push(`iifname "${m.in}"`);
  if (m.out) out.push(`oifname "${m.out}"`);
  if (m.notOut) out.push(`oifname != "${m.notOut}"`);
  if (m.src) out.push(`${cidrFamily(m.src) === 4 ? "ip" : "ip6"} saddr ${addr(m.src)}`);
  if (m.dst) out.push(`${cidrFamily(m.dst) === 4 ? "ip" : "ip6"} daddr ${addr(m.dst)}`);
  if (m.proto === "icmp") out.push(m.icmpEchoRequest ? "icmp type echo-request" : "meta l4proto icmp");
  else if (m.proto) {
    if (m.dport !== undefined) out.push(`${m.proto} dport ${m.dport}`);
    if (m.tcpSyn) out.push("tcp flags & (syn | rst) == syn");
    if (m.dport === undefined && !m.tcpSyn) out.push(`meta l4proto ${m.proto}`);
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
  }
  out.push(`comment "${r.comment}"`);
  return out.join(" ");
}

/**
 * One `nft -f -` script, applied as a single transaction: create our table if it is missing
 * (so the delete cannot fail), delete it, and create it whole. Other tables are never touched.
 */
export function renderNftScript(plan: FirewallPlan): string {
  const t = `${NFT_FAMILY} ${NFT_TABLE}`;
  const lines = [`table ${t}`, `delete table ${t}`, `table ${t} {`];
  NFT_CHAINS.forEach((c, i) => {
    if (i > 0) lines.push("");
    lines.push(`\tchain ${c.name} {`);
    lines.push(`\t\ttype ${c.type} hook ${c.hook} priority ${c.priority}; policy accept;`);
    for (const r of nftChainRules(plan, c)) lines.push(`\t\t${renderNftRule(r)}`);
    lines.push("\t}");
  });
  lines.push("}");
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
export type NftTableState = Map<string, NftChainState>;

const VERDICTS = ["accept", "drop", "reject", "masquerade", "snat", "dnat", "mangle"];

/** Parse `nft -j list table inet pod_gateway` into chains and their rules (comment + verdict). */
export function parseNftTableJson(text: string): NftTableState {
  const doc = JSON.parse(text) as { nftables?: Record<string, any>[] };
  const state: NftTableState = new Map();
  for (const item of doc.nftables ?? []) {
    if (item.chain) {
      const c = item.chain as { name: string; type?: string; hook?: string; prio?: number; policy?: string };
      state.set(c.name, { type: c.type, hook: c.hook, prio: c.prio, policy: c.policy, rules: state.get(c.name)?.rules ?? [] });
    } else if (item.rule) {
      const r = item.rule as { chain: string; comment?: string; expr?: Record<string, unknown>[] };
      const verdict = (r.expr ?? []).map((e) => Object.keys(e)[0]).filter((k): k is string => k !== undefined && VERDICTS.includes(k)).pop();
      const c = state.get(r.chain) ?? { rules: [] };
      c.rules.push({ comment: r.comment, verdict });
      state.set(r.chain, c);
    }
  }
  return state;
}

/** Differences between the plan and our table as read back; empty when it is exactly ours. */
export function diffNft(plan: FirewallPlan, state: NftTableState | undefined): string[] {
  const where = `nft table ${NFT_FAMILY} ${NFT_TABLE}`;
  if (!state) return [`${where}: missing`];
  const problems: string[] = [];
  for (const c of NFT_CHAINS) {
    const have = state.get(c.name);
    if (!have) {
      problems.push(`${where}: chain ${c.name} missing`);
      continue;
    }
    if (have.type !== c.type || have.hook !== c.hook || have.prio !== c.prio || have.policy !== "accept")
      problems.push(`${where}: chain ${c.name} is type ${have.type} hook ${have.hook} priority ${have.prio} policy ${have.policy}, expected ${c.type} ${c.hook} ${c.prio} accept`);
    const want = nftChainRules(plan, c).map((r) => ({ comment: r.comment, verdict: nftVerdict(r) }));
    const n = Math.max(want.length, have.rules.length);
    for (let i = 0; i < n; i++) {
      const h = have.rules[i];
      const w = want[i];
      if (h && w && h.comment === w.comment && h.verdict === w.verdict) continue;
      problems.push(`${where}: chain ${c.name} has ${have.rules.length} rules, expected ${want.length} (first difference at rule ${i + 1}: ${h ? `${h.verdict} "${h.comment ?? ""}"` : "none"} instead of ${w ? `${w.verdict} "${w.comment}"` : "none"})`);
      break;
    }
  }
  for (const name of state.keys()) if (!NFT_CHAINS.some((c) => c.name === name)) problems.push(`${where}: unexpected chain ${name}`);
  return problems;
}
