// The kill switch's routing layer: a routing table of ours that every packet from the clients
// (iif vxlan0) is routed by, and that holds no way out but the VPN. It does not depend on any
// firewall rule, so a flushed filter table (a VPN container's start-up script, `iptables -F`
// with policies ACCEPT) does not open the gateway. Pure: plans the table and our policy rules
// from the routes of every table and the rules (rtnetlink dumps in `ip -j`'s shapes), and returns
// the changes (src/core/net/change.ts) that make the kernel's state exactly the plan (adds before
// deletes; a second plan is empty).
//
// Our table (KILLSWITCH_TABLE) holds:
//   - the overlay /24 on vxlan0 (client to client, and the replies the gateway forwards);
//   - VPN_LOCAL_CIDRS via eth0's original gateway (the cluster stays reachable);
//   - a copy of every IPv4 route whose device is VPN_INTERFACE, from any table, with its next hop
//     (VPN clients put their default in main, split as 0/1 + 128/1, or in a table of their own
//     behind fwmark rules): when the VPN link goes down or away the kernel deletes the copies
//     with the originals, and only the last entry is left;
//   - per DNS upstream (§3 of the leak-proof issue): a host route through VPN_INTERFACE with the
//     next hop of the VPN route that covers it, and an unreachable host route under it ("pins",
//     each with its `to <addr>/32 lookup 4201` rule at preference 46). A former upstream inside
//     VPN_LOCAL_CIDRS keeps its pin (planDnsPins): after OpenVPN's down script puts the cluster DNS
//     back, dnsmasq's in-flight queries and the VPN container's own processes still talk to the
//     VPN's resolver, which eth0 would otherwise reach;
//   - `unreachable default` at the lowest priority.
// Routes to the gateway itself (DHCP, DNS and ping to .1, broadcasts) are decided by the local
// table at preference 0, before any rule of ours.
import { KILLSWITCH_CLIENT_RULE_PREF, KILLSWITCH_DNS_RULE_PREF, KILLSWITCH_TABLE, LOWEST_ROUTE_PRIORITY } from "../firewall/names.ts";
import { canonicalCidr } from "../firewall/model.ts";
import type { IpRoute, IpRule } from "../net/ip-json.ts";
import { routeDst } from "../net/ip-json.ts";
import { parsePrefix4, prefixContains } from "../net/ipv4.ts";
import { POD_IF, VXLAN_IF } from "../net/vxlan.ts";
import { CLUSTER_DNS_ROUTE_PROTO } from "../firewall/names.ts";
import type { Settings } from "../settings/types.ts";
import type { NetChange, RouteSpec, RouteType, RuleSpec } from "../net/change.ts";

/** One route of our table, as planned or as read back. */
export interface TableRoute {
  type: "unicast" | "unreachable";
  /** "default" or a canonical a.b.c.d/n. */
  dst: string;
  via?: string;
  dev?: string;
  onlink?: boolean;
  src?: string;
  metric: number;
}

export interface KillSwitchInput {
  /** VPN_BLOCK_OTHER_TRAFFIC with a VPN_INTERFACE: off plans an empty table and no rules. */
  enabled: boolean;
  vpnInterface: string;
  /** The overlay network, e.g. 172.16.0.0/24. */
  overlayCidr: string;
  /** VPN_LOCAL_CIDRS (IPv4) via the pod's original gateway on eth0. */
  localRoutes: readonly { dst: string; via: string }[];
  /** DNS upstreams that must go through the VPN (not loopback, not the cluster DNS). */
  dnsUpstreams: readonly string[];
  /** The cluster DNS as decided, if known: a former upstream that is now the cluster DNS loses its pin. */
  clusterDns?: string;
  /**
   * Fail closed: the VPN route copies (and the DNS host routes through the VPN) are left out,
   * so clients reach nothing but the overlay and VPN_LOCAL_CIDRS.
   */
  closed: boolean;
}

export interface KillSwitchFacts {
  /** IPv4 routes of every table (`ip -j route show table all`, IPv6 filtered out). */
  routes: readonly IpRoute[];
  /** IPv4 policy rules. */
  rules: readonly IpRule[];
}

export interface KillSwitchPlan {
  /** What the table should hold, in the order it is filled. */
  table: TableRoute[];
  /** Former DNS upstreams whose pin is kept (planDnsPins). */
  formerDns: string[];
  /** Route copies taken from VPN_INTERFACE routes (0 while the VPN link is down or absent). */
  vpnRoutes: number;
  actions: NetChange[];
}

const TABLE = String(KILLSWITCH_TABLE);

/** The table a route read from `ip -j route show table all` is in ("main" when not printed). */
function tableOf(r: IpRoute): string {
  return r.table ?? "main";
}

/** A route read back from our table, in the planned shape (scope and protocol are derived, so not compared). */
export function toTableRoute(r: IpRoute): TableRoute | undefined {
  const type = r.type ?? "unicast";
  if (type !== "unicast" && type !== "unreachable") return undefined;
  return {
    type,
    dst: routeDst(r) === "0.0.0.0/0" ? "default" : routeDst(r),
    ...(type === "unicast" && r.gateway ? { via: r.gateway } : {}),
    ...(type === "unicast" && r.dev ? { dev: r.dev } : {}),
    ...(r.flags?.includes("onlink") ? { onlink: true } : {}),
    ...(r.prefsrc ? { src: r.prefsrc } : {}),
    metric: r.metric ?? 0,
  };
}

/** The route's identity in the kernel (what `ip route replace` matches on). */
function slot(r: TableRoute): string {
  return `${r.dst} metric ${r.metric}`;
}

export function describeTableRoute(r: TableRoute): string {
  const parts = [r.type === "unreachable" ? `unreachable ${r.dst}` : r.dst];
  if (r.via) parts.push(`via ${r.via}`);
  if (r.dev) parts.push(`dev ${r.dev}`);
  if (r.onlink) parts.push("onlink");
  if (r.src) parts.push(`src ${r.src}`);
  if (r.metric) parts.push(`metric ${r.metric}`);
  return parts.join(" ");
}

/** A route of our table as a change's route: all of it to replace, its slot (type, dst, metric) to delete. */
function routeSpec(verb: "replace" | "del", r: TableRoute): RouteSpec {
  return {
    family: 4,
    dst: r.dst,
    ...(r.type === "unreachable" ? { type: "unreachable" as const } : {}),
    ...(verb === "replace" && r.via ? { via: r.via } : {}),
    ...(verb === "replace" && r.dev ? { dev: r.dev } : {}),
    ...(verb === "replace" && r.onlink ? { onlink: true } : {}),
    ...(verb === "replace" && r.src ? { src: r.src } : {}),
    metric: r.metric,
    table: TABLE,
  };
}

const DELETABLE_TYPES: readonly string[] = ["unicast", "unreachable", "blackhole", "prohibit", "throw"];

/** The prefix length of `dst` when it holds the IPv4 address, else -1. */
function covers(dst: string, addr: string): number {
  const p = parsePrefix4(dst);
  const a = parsePrefix4(addr);
  return p && a && prefixContains(p, a) ? p.len : -1;
}

/** The desired table: what the header comment lists, without duplicates of a (dst, metric) slot. */
export function planKillSwitchTable(input: KillSwitchInput, facts: KillSwitchFacts, pins: readonly string[] = planDnsPins(input, facts).pins): { table: TableRoute[]; vpnRoutes: number } {
  if (!input.enabled) return { table: [], vpnRoutes: 0 };
  const table: TableRoute[] = [];
  const taken = new Set<string>();
  const put = (r: TableRoute) => {
    if (taken.has(slot(r))) return false;
    taken.add(slot(r));
    table.push(r);
    return true;
  };
  put({ type: "unicast", dst: canonicalCidr(input.overlayCidr), dev: VXLAN_IF, metric: 0 });
  for (const l of input.localRoutes) put({ type: "unicast", dst: canonicalCidr(l.dst), via: l.via, dev: POD_IF, metric: 0 });

  // Copies of the VPN's routes: device routes first (a next hop must be reachable when its route is added).
  const copies: TableRoute[] = [];
  if (!input.closed)
    for (const r of facts.routes) {
      if (r.dev !== input.vpnInterface || tableOf(r) === TABLE || tableOf(r) === "local") continue;
      const t = toTableRoute(r);
      if (t?.type === "unicast") copies.push(t);
    }
  copies.sort((a, b) => Number(!!a.via) - Number(!!b.via));
  let vpnRoutes = 0;
  for (const c of copies) if (put(c)) vpnRoutes++;

  // DNS upstreams: through the VPN with the next hop of the most specific copy that covers them.
  for (const addr of pins) {
    const host = `${addr}/32`;
    let best: TableRoute | undefined;
    let bestLen = -1;
    for (const c of copies) {
      const len = covers(c.dst, addr);
      if (len > bestLen) [best, bestLen] = [c, len];
    }
    if (best) put({ type: "unicast", dst: host, ...(best.via ? { via: best.via } : {}), dev: input.vpnInterface, ...(best.onlink ? { onlink: true } : {}), metric: 0 });
    put({ type: "unreachable", dst: host, metric: LOWEST_ROUTE_PRIORITY });
  }
  put({ type: "unreachable", dst: "default", metric: LOWEST_ROUTE_PRIORITY });
  return { table, vpnRoutes };
}

interface WantRule {
  rule: RuleSpec;
  key: string;
  why: string;
}

function ruleKey(pref: number, sel: string): string {
  return `${pref} ${sel}`;
}

/**
 * The DNS upstreams our rules route through the VPN (`to <addr>/32 lookup 4201` at preference 46),
 * as the kernel holds them: what a gateway-init re-run (a container that never sees the sidecar's
 * resolv.conf copy) keeps, so that it does not drop the upstreams' routes the sidecar keeps.
 */
export function readDnsUpstreamRecord(rules: readonly IpRule[]): string[] {
  const out: string[] = [];
  for (const r of rules as readonly (IpRule & Record<string, unknown>)[])
    if (r.table === TABLE && r.priority === KILLSWITCH_DNS_RULE_PREF && typeof r.dst === "string" && (r.dstlen === undefined || r.dstlen === 32) && !out.includes(r.dst)) out.push(r.dst);
  return out;
}

/** Our rules as read: preference 45/46 and our table. */
function ourRules(rules: readonly IpRule[]): { key: string; del: RuleSpec }[] {
  const out: { key: string; del: RuleSpec }[] = [];
  for (const r of rules as readonly (IpRule & Record<string, unknown>)[]) {
    if (r.table !== TABLE || (r.priority !== KILLSWITCH_CLIENT_RULE_PREF && r.priority !== KILLSWITCH_DNS_RULE_PREF)) continue;
    const sel: string[] = [];
    const to = typeof r.dst === "string" ? `${r.dst}/${typeof r.dstlen === "number" ? r.dstlen : 32}` : undefined;
    const from = r.src !== undefined && r.src !== "all" ? `${r.src}/${typeof r.srclen === "number" ? r.srclen : 32}` : undefined;
    if (typeof r.iif === "string") sel.push("iif", r.iif);
    if (to) sel.push("to", to);
    if (from) sel.push("from", from);
    for (const k of ["oif", "fwmark", "not", "ipproto", "sport", "dport", "tos", "uidrange", "l3mdev", "suppress_prefixlen"]) if (r[k] !== undefined) sel.push(`${k}=${JSON.stringify(r[k])}`);
    const clean = sel.every((a) => !a.includes("="));
    out.push({
      key: ruleKey(r.priority, sel.join(" ")),
      // A rule with selectors we never add is not re-created; deleting it by preference and table alone is exact enough (ours).
      del: clean
        ? { pref: r.priority, ...(from ? { from } : {}), ...(to ? { to } : {}), ...(typeof r.iif === "string" ? { iif: r.iif } : {}), table: TABLE }
        : { pref: r.priority, table: TABLE },
    });
  }
  return out;
}

function wantRules(input: KillSwitchInput, pins: readonly string[]): WantRule[] {
  if (!input.enabled) return [];
  const out: WantRule[] = [];
  out.push({ rule: { pref: KILLSWITCH_CLIENT_RULE_PREF, iif: VXLAN_IF, table: TABLE }, key: ruleKey(KILLSWITCH_CLIENT_RULE_PREF, `iif ${VXLAN_IF}`), why: "clients' packets are routed by our table only" });
  for (const addr of pins) {
    const former = input.dnsUpstreams.includes(addr) ? "" : "former ";
    out.push({ rule: { pref: KILLSWITCH_DNS_RULE_PREF, to: `${addr}/32`, table: TABLE }, key: ruleKey(KILLSWITCH_DNS_RULE_PREF, `to ${addr}/32`), why: `${former}DNS upstream ${addr} only through ${input.vpnInterface}` });
  }
  return out;
}

/**
 * At most this many former DNS upstreams keep their pin; beyond it the oldest pinned go first.
 * Resolvers accumulate when a provider hands out a different one on each reconnect, and each pin
 * is two routes and a rule that every packet of the pod passes.
 */
export const MAX_FORMER_DNS_PINS = 8;

/**
 * The addresses pinned through the VPN: the current DNS upstreams, then former ones still pinned
 * in the kernel (the preference-46 rules, the only record: a restarted sidecar has a fresh
 * filesystem) that stay dangerous. When OpenVPN's down script puts the cluster DNS back in
 * resolv.conf, the VPN's resolver stops being an upstream, but dnsmasq's queries in flight (it
 * re-reads its resolv-file later than we do) and the VPN container's own processes still send to
 * it; inside VPN_LOCAL_CIDRS the main table would route those by eth0. So a former upstream keeps
 * its pin (through the VPN while it is up, unreachable otherwise: it fails closed) while it is
 * inside VPN_LOCAL_CIDRS and not genuinely local: the cluster DNS (as decided, or the kernel's
 * record of it), an address of the pod itself, the overlay, a neighbour on eth0's own subnet or
 * loopback. Outside VPN_LOCAL_CIDRS the firewall's kill switch already stops it on eth0. At most
 * MAX_FORMER_DNS_PINS are kept, the newest: rules of one preference are listed in the order
 * they were added. Pure.
 */
export function planDnsPins(input: KillSwitchInput, facts: KillSwitchFacts): { pins: string[]; former: string[] } {
  if (!input.enabled) return { pins: [], former: [] };
  const current = [...input.dnsUpstreams];
  const main = facts.routes.filter((r) => tableOf(r) === "main");
  const cluster = new Set([input.clusterDns, ...main.filter((r) => r.protocol === String(CLUSTER_DNS_ROUTE_PROTO) && r.dev === POD_IF).map((r) => routeDst(r).replace(/\/32$/, ""))]);
  const local = (addr: string) =>
    addr.startsWith("127.") ||
    cluster.has(addr) ||
    covers(input.overlayCidr, addr) >= 0 ||
    facts.routes.some((r) => tableOf(r) === "local" && r.type === "local" && routeDst(r) === `${addr}/32`) ||
    main.some((r) => r.dev === POD_IF && !r.gateway && r.scope === "link" && routeDst(r) !== "default" && covers(routeDst(r), addr) >= 0);
  const eligible = readDnsUpstreamRecord(facts.rules).filter((a) => !current.includes(a) && input.localRoutes.some((l) => covers(l.dst, a) >= 0) && !local(a));
  const former = eligible.slice(Math.max(0, eligible.length - MAX_FORMER_DNS_PINS));
  return { pins: [...current, ...former], former };
}

/**
 * The commands that make our table and rules exactly the plan: routes added (or replaced) before
 * stale ones are deleted, the table filled before the rule that points at it, stale rules last.
 */
export function planKillSwitch(input: KillSwitchInput, facts: KillSwitchFacts): KillSwitchPlan {
  const { pins, former } = planDnsPins(input, facts);
  const { table, vpnRoutes } = planKillSwitchTable(input, facts, pins);
  const actions: NetChange[] = [];
  const have = new Map<string, TableRoute>();
  for (const r of facts.routes) {
    if (tableOf(r) !== TABLE) continue;
    const t = toTableRoute(r);
    // Anything in our table we cannot express (a multipath or blackhole route) is stale by definition.
    if (!t) {
      const type = r.type !== undefined && DELETABLE_TYPES.includes(r.type) ? { type: r.type as RouteType } : {};
      actions.push({ op: "route-del", route: { family: 4, dst: routeDst(r), ...type, metric: r.metric ?? 0, table: TABLE }, why: `not ours to keep: ${r.type ?? "route"} ${r.dst} in table ${TABLE}` });
      continue;
    }
    have.set(slot(t), t);
  }
  const want = new Set<string>();
  // Unreachable routes first: the table never holds a way out without its last entry.
  const order = [...table.filter((r) => r.type === "unreachable"), ...table.filter((r) => r.type !== "unreachable")];
  for (const r of order) {
    want.add(slot(r));
    const h = have.get(slot(r));
    if (h && describeTableRoute(h) === describeTableRoute(r)) continue;
    actions.push({ op: "route-replace", route: routeSpec("replace", r), why: `table ${TABLE}: ${describeTableRoute(r)}` });
  }
  const rulesHave = ourRules(facts.rules);
  const rulesWant = wantRules(input, pins);
  const haveKeys = new Set<string>();
  for (const w of rulesWant) {
    if (rulesHave.some((h) => h.key === w.key)) continue;
    actions.push({ op: "rule-add", rule: w.rule, why: w.why });
  }
  for (const [k, h] of have) if (!want.has(k)) actions.push({ op: "route-del", route: routeSpec("del", h), why: `stale in table ${TABLE}: ${describeTableRoute(h)}` });
  for (const h of rulesHave) {
    // Exactly once: duplicates go too.
    if (rulesWant.some((w) => w.key === h.key) && !haveKeys.has(h.key)) {
      haveKeys.add(h.key);
      continue;
    }
    actions.push({ op: "rule-del", rule: h.del, why: `stale rule (${h.key} lookup ${TABLE})` });
  }
  return { table, formerDns: former, vpnRoutes, actions };
}

/** One line for the logs: what the routing layer holds. */
export function summarizeKillSwitch(p: KillSwitchPlan, input: KillSwitchInput): string {
  if (!input.enabled) return "kill switch routing layer: off";
  const dns =
    (input.dnsUpstreams.length ? `, DNS upstreams ${input.dnsUpstreams.join(" ")} only through ${input.vpnInterface}` : "") +
    (p.formerDns.length ? `, former DNS upstreams ${p.formerDns.join(" ")} kept off ${POD_IF}` : "");
  return `kill switch routing layer: iif ${VXLAN_IF} lookup ${KILLSWITCH_TABLE} (pref ${KILLSWITCH_CLIENT_RULE_PREF}): ${p.vpnRoutes} ${input.vpnInterface} route(s) copied${input.closed ? " (closed: no copies)" : ""}${dns}, unreachable otherwise`;
}

/** The routing layer's input from the settings: on exactly when the firewall's kill switch is. */
export function killSwitchInput(
  s: Pick<Settings, "VPN_BLOCK_OTHER_TRAFFIC" | "VPN_INTERFACE" | "VXLAN_IP_NETWORK">,
  localRoutes: readonly { dst: string; via: string }[],
  dnsUpstreams: readonly string[],
  closed = false,
  clusterDns?: string,
): KillSwitchInput {
  return {
    enabled: s.VPN_BLOCK_OTHER_TRAFFIC && s.VPN_INTERFACE !== "",
    vpnInterface: s.VPN_INTERFACE,
    overlayCidr: `${s.VXLAN_IP_NETWORK}.0/24`,
    localRoutes,
    dnsUpstreams,
    closed,
    ...(clusterDns ? { clusterDns } : {}),
  };
}

/**
 * The DNS upstreams that must go through the VPN: the IPv4 nameservers dnsmasq forwards to,
 * less loopback (a VPN container's own resolver) and the cluster DNS (which answers
 * DNS_LOCAL_CIDRS names on eth0). A warning when the cluster DNS is the only upstream: the VPN
 * client never rewrote resolv.conf, and names are resolved outside the VPN.
 */
export function planDnsUpstreams(nameservers: readonly string[], clusterDns: string | undefined): { upstreams: string[]; warning?: string } {
  const upstreams = nameservers.filter((a) => !a.startsWith("127.") && a !== clusterDns);
  const onlyCluster = nameservers.length > 0 && nameservers.every((a) => a === clusterDns);
  return {
    upstreams,
    ...(onlyCluster ? { warning: `the only DNS upstream is the cluster DNS ${clusterDns}: names are resolved outside the VPN (the VPN client has not written its resolvers to resolv.conf)` } : {}),
  };
}

/**
 * The routing layer's facts as the network plan's actions leave them: a vxlan0 that is deleted
 * and re-created takes its routes (ours included) with it, so they are neither deleted again (the
 * batch would stop at "No such process") nor counted as present.
 */
export function routingFactsAfter(net: { actions: readonly NetChange[] }, facts: { allRoutes: readonly IpRoute[]; rules: readonly IpRule[] }): KillSwitchFacts {
  const gone = new Set(net.actions.flatMap((a) => (a.op === "link-del" ? [a.dev] : [])));
  return { routes: gone.size ? facts.allRoutes.filter((r) => !gone.has(r.dev ?? "")) : facts.allRoutes, rules: facts.rules };
}
