// The gateway pod's network as its planners read it, from rtnetlink dumps: links with their
// addresses, IPv4 routes of every table, IPv4 policy rules, vxlan0's neighbours and forwarding
// entries. Pure: src/sys/gateway-host.ts dumps and hands the decoded messages here. The shapes
// are those of `ip -j` (src/core/net/ip-json.ts), which the planners were written against and
// which the tests and the lab still read, so one fact reads the same from either source.
import { ipRouteFromNetlink, type NlAddrFact, type NlLinkFact, type NlRouteFact } from "../client/facts.ts";
import type { IpAddr, IpRoute, IpRule } from "../net/ip-json.ts";
import type { RuleMessage } from "../netlink/messages.ts";
import type { GatewayFacts } from "./plan.ts";

const AF_INET = 2;
const AF_INET6 = 10;
const FR_ACT_TO_TBL = 1;
const FIB_RULE_INVERT = 2;
/** FRA_SUPPRESS_PREFIXLEN as the kernel reports "not set" (-1 as u32). */
const UNSET_U32 = 0xffffffff;

/** iproute2's names for the link flags the planners look at (net/if.h IFF_*), in its order. */
const LINK_FLAGS: readonly [number, string][] = [
  [0x8, "LOOPBACK"],
  [0x2, "BROADCAST"],
  [0x10, "POINTOPOINT"],
  [0x1000, "MULTICAST"],
  [0x80, "NOARP"],
  [0x1, "UP"],
  [0x10000, "LOWER_UP"],
];
const OPERSTATES = ["UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"];
const SCOPES: Readonly<Record<number, string>> = { 0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere" };
const TABLES: Readonly<Record<number, string>> = { 253: "default", 254: "main", 255: "local" };
/** FR_ACT_* other than "to table", as `ip -j rule` prints them. */
const RULE_ACTIONS: Readonly<Record<number, string>> = { 2: "goto", 3: "nop", 6: "blackhole", 7: "unreachable", 8: "prohibit" };

/** A decoded rule as the planners read it (the codec's message; its protocol is not looked at). */
export type NlRuleFact = Omit<RuleMessage, "protocol">;

export interface NlNeighFact {
  family: number;
  index: number;
  state: number;
  dst?: string;
  lladdr?: string;
}

/** A link with its addresses, as `ip -j -d addr show` prints it (the fields the planners read). */
export function ipAddrFromNetlink(l: NlLinkFact & { operstate?: number }, addrs: readonly (NlAddrFact & { scope?: number })[], names: ReadonlyMap<number, string>): IpAddr {
  const lower = l.link !== undefined ? names.get(l.link) : undefined;
  const info: Record<string, unknown> | undefined = l.vxlan
    ? {
        ...(l.vxlan.id !== undefined ? { id: l.vxlan.id } : {}),
        ...(l.vxlan.remote !== undefined ? { remote: l.vxlan.remote } : {}),
        ...(l.vxlan.link !== undefined ? { link: names.get(l.vxlan.link) ?? `if${l.vxlan.link}` } : {}),
        ...(l.vxlan.port !== undefined ? { port: l.vxlan.port } : {}),
        ...(l.vxlan.learning !== undefined ? { learning: l.vxlan.learning } : {}),
      }
    : undefined;
  return {
    ifindex: l.index,
    ifname: l.name ?? `if${l.index}`,
    flags: LINK_FLAGS.filter(([bit]) => (l.flags & bit) !== 0).map(([, n]) => n),
    mtu: l.mtu ?? 0,
    operstate: OPERSTATES[l.operstate ?? 0] ?? "UNKNOWN",
    ...(l.address !== undefined ? { address: l.address } : {}),
    ...(lower !== undefined ? { link: lower } : {}),
    ...(l.kind !== undefined ? { linkinfo: { info_kind: l.kind, ...(info ? { info_data: info } : {}) } } : {}),
    addr_info: addrs
      .filter((a) => a.index === l.index && (a.family === AF_INET || a.family === AF_INET6))
      .map((a) => ({
        family: a.family === AF_INET ? ("inet" as const) : ("inet6" as const),
        local: a.local ?? a.address ?? "",
        prefixlen: a.prefixlen,
        ...(a.scope !== undefined ? { scope: SCOPES[a.scope] ?? String(a.scope) } : {}),
      })),
  };
}

/** An IPv4 policy rule as `ip -j rule show` prints it. */
export function ipRuleFromNetlink(r: NlRuleFact): IpRule & Record<string, unknown> {
  const out: IpRule & Record<string, unknown> = { priority: r.priority ?? 0 };
  if (r.flags & FIB_RULE_INVERT) out.not = null;
  out.src = r.srcLen ? (r.src ?? "0.0.0.0") : "all";
  if (r.srcLen && r.srcLen !== 32) out.srclen = r.srcLen;
  if (r.dstLen) {
    out.dst = r.dst ?? "0.0.0.0";
    if (r.dstLen !== 32) out.dstlen = r.dstLen;
  }
  if (r.tos) out.tos = `0x${r.tos.toString(16)}`;
  if (r.fwmark !== undefined && r.fwmark !== 0) out.fwmark = `0x${r.fwmark.toString(16)}`;
  if (r.iifname !== undefined) out.iif = r.iifname;
  if (r.oifname !== undefined) out.oif = r.oifname;
  for (const k of r.otherSelectors ?? []) if (k !== "fwmask") out[k] = true;
  if (r.action === FR_ACT_TO_TBL) {
    const t = r.tableId ?? r.table;
    out.table = TABLES[t] ?? String(t);
  } else out.action = RULE_ACTIONS[r.action] ?? String(r.action);
  if (r.suppressPrefixlen !== undefined && r.suppressPrefixlen !== UNSET_U32) out.suppress_prefixlen = r.suppressPrefixlen;
  return out;
}

/**
 * A route as `ip -j route show table all` prints it: table names local, main and default, and no
 * protocol for "boot" (iproute2 prints it only with -d).
 */
export function ipRouteFromNetlinkAll(r: NlRouteFact, names: ReadonlyMap<number, string>): IpRoute {
  const { protocol, ...x } = ipRouteFromNetlink(r, names);
  const t = r.tableId ?? r.table;
  return { ...x, ...(protocol !== "boot" ? { protocol } : {}), ...(TABLES[t] ? { table: TABLES[t] } : {}) };
}

/**
 * The gateway's facts from dumps of links, addresses, IPv4 routes (every table) and IPv4 rules;
 * what parseGatewayReads took from `ip -j -d -batch -`.
 */
export function parseGatewayNetlink(
  links: readonly (NlLinkFact & { operstate?: number })[],
  addrs: readonly (NlAddrFact & { scope?: number })[],
  routes: readonly NlRouteFact[],
  rules: readonly NlRuleFact[],
): GatewayFacts {
  const names = new Map<number, string>(links.filter((l) => l.name !== undefined).map((l) => [l.index, l.name!]));
  const allRoutes = routes.filter((r) => r.family === AF_INET).map((r) => ipRouteFromNetlinkAll(r, names));
  return {
    links: links.map((l) => ipAddrFromNetlink(l, addrs, names)),
    routes: allRoutes.filter((r) => r.table === "main"),
    allRoutes,
    rules: rules.filter((r) => r.family === AF_INET).map(ipRuleFromNetlink),
  };
}

const NUD: readonly [number, string][] = [
  [0x01, "INCOMPLETE"],
  [0x02, "REACHABLE"],
  [0x04, "STALE"],
  [0x08, "DELAY"],
  [0x10, "PROBE"],
  [0x20, "FAILED"],
  [0x40, "NOARP"],
  [0x80, "PERMANENT"],
];

/** IPv4 neighbours as `ip -j neigh show dev <dev>` prints them: dst, lladdr, state names. */
export function ipNeighFromNetlink(n: readonly NlNeighFact[]): { dst: string; lladdr?: string; state: string[] }[] {
  return n
    .filter((e) => e.dst !== undefined)
    .map((e) => ({ dst: e.dst!, ...(e.lladdr !== undefined ? { lladdr: e.lladdr } : {}), state: NUD.filter(([bit]) => (e.state & bit) !== 0).map(([, s]) => s) }));
}

/** Forwarding entries as `bridge -j fdb show dev <dev>` prints them: mac, dst, state ("permanent", "static" or none). */
export function bridgeFdbFromNetlink(n: readonly NlNeighFact[]): { mac: string; dst?: string; state?: string }[] {
  return n
    .filter((e) => e.lladdr !== undefined)
    .map((e) => ({
      mac: e.lladdr!,
      ...(e.dst !== undefined ? { dst: e.dst } : {}),
      ...(e.state & 0x80 ? { state: "permanent" } : e.state & 0x40 ? { state: "static" } : e.state & 0x04 ? { state: "stale" } : {}),
    }));
}
