// The client pod's network as the planner sees it: from rtnetlink dumps (what the roles read,
// parseNetlinkFacts) or from `ip -j` output (parseClientFacts: the lab and older tests). Pure:
// src/sys/client-host.ts reads, and hands the messages here.
import type { IpAddr, IpRoute } from "../net/ip-json.ts";
import { POD_IF, VXLAN_IF } from "../net/vxlan.ts";
import { isOurProto } from "./constants.ts";

export interface AddressFact {
  local: string;
  prefixlen: number;
  /** Seconds left; Infinity for "forever" (the kernel prints 4294967295). */
  validLft: number;
  preferredLft: number;
}

export interface VxlanFact {
  kind: string | undefined; // "vxlan" unless something else took the name
  mac: string | undefined;
  mtu: number;
  up: boolean;
  vni: number | undefined;
  port: number | undefined;
  /** Lower device (info_data.link). */
  dev: string | undefined;
  /** Unicast remote: the all-zero FDB entry the kernel keeps for it. */
  remote: string | undefined;
  learning: boolean | undefined;
  /** IPv4 addresses only. */
  addresses: AddressFact[];
}

export interface ClientFacts {
  eth0: { mtu: number; up: boolean; addresses: string[] } | undefined;
  vxlan: VxlanFact | undefined;
  /** IPv4 routes of the main table. */
  routes4: IpRoute[];
  /** IPv6 default routes of the main table. */
  defaults6: IpRoute[];
  /** IPv6 routes of the main table that client-init added (our proto): the IPv6 CIDRs kept on eth0. */
  ours6: IpRoute[];
}

const FOREVER = 4294967295;

function lifetime(v: unknown): number {
  if (typeof v !== "number") return Infinity;
  return v >= FOREVER ? Infinity : v;
}

function isUp(flags: string[] | undefined): boolean {
  return (flags ?? []).includes("UP");
}

/** links: `ip -j -d addr show`; routes4: `ip -j -4 route show table main`; routes6: `ip -j -6 route show table main`. */
export function parseClientFacts(links: IpAddr[], routes4: IpRoute[], routes6: IpRoute[]): ClientFacts {
  const eth = links.find((l) => l.ifname === POD_IF);
  const vx = links.find((l) => l.ifname === VXLAN_IF);
  let vxlan: VxlanFact | undefined;
  if (vx) {
    const d = (vx.linkinfo?.info_data ?? {}) as Record<string, unknown>;
    vxlan = {
      kind: vx.linkinfo?.info_kind,
      mac: vx.address,
      mtu: vx.mtu,
      up: isUp(vx.flags),
      vni: typeof d.id === "number" ? d.id : undefined,
      port: typeof d.port === "number" ? d.port : undefined,
      dev: typeof d.link === "string" ? d.link : vx.link,
      remote: typeof d.remote === "string" ? d.remote : undefined,
      learning: typeof d.learning === "boolean" ? d.learning : undefined,
      addresses: (vx.addr_info ?? [])
        .filter((a) => a.family === "inet")
        .map((a) => {
          const r = a as unknown as Record<string, unknown>;
          return { local: a.local, prefixlen: a.prefixlen, validLft: lifetime(r.valid_life_time), preferredLft: lifetime(r.preferred_life_time) };
        }),
    };
  }
  return {
    eth0: eth ? { mtu: eth.mtu, up: isUp(eth.flags), addresses: (eth.addr_info ?? []).filter((a) => a.family === "inet").map((a) => a.local) } : undefined,
    vxlan,
    routes4: routes4.filter((r) => (r.table ?? "main") === "main"),
    defaults6: routes6.filter((r) => r.dst === "default" && (r.table ?? "main") === "main"),
    ours6: routes6.filter((r) => r.dst !== "default" && (r.table ?? "main") === "main" && isOurProto(r.protocol)),
  };
}

// ---------------------------------------------------------------- from rtnetlink dumps

/**
 * iproute2's names for the protocols (rtm_protocol) routes of a pod's main table carry
 * (/usr/share/iproute2/rt_protos); any other number is printed as the number, and so here: the
 * planner keeps seeing what it saw from `ip -j`, our own ROUTE_PROTO included ("201").
 */
export const PROTO_NAMES: Readonly<Record<number, string>> = { 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 9: "ra", 16: "dhcp" };
const PROTO_NUMBERS: Readonly<Record<string, number>> = Object.fromEntries(Object.entries(PROTO_NAMES).map(([n, name]) => [name, Number(n)]));

/** A protocol as read ("kernel", "201") → its number; undefined for a name we do not know. */
export function protoNumber(p: number | string | undefined): number | undefined {
  if (p === undefined) return undefined;
  if (typeof p === "number") return p;
  if (/^\d+$/.test(p)) return Number(p);
  return PROTO_NUMBERS[p];
}

const RT_TABLE_MAIN = 254;
const AF_INET = 2;
const AF_INET6 = 10;
const IFF_UP = 1;
const RTNH_F_ONLINK = 4;
const ROUTE_TYPES: Record<number, string> = { 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw" };
const SCOPES: Record<number, string> = { 0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere" };

/** The parts of the decoded rtnetlink messages the client reads (src/core/netlink/messages.ts). */
export interface NlLinkFact {
  index: number;
  name?: string;
  flags: number;
  mtu?: number;
  address?: string;
  link?: number;
  kind?: string;
  vxlan?: { id?: number; port?: number; link?: number; remote?: string; learning?: boolean };
}
export interface NlAddrFact {
  family: number;
  index: number;
  prefixlen: number;
  local?: string;
  address?: string;
  cacheinfo?: { valid: number; preferred: number };
}
export interface NlRouteFact {
  family: number;
  dstLen: number;
  table: number;
  tableId?: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
  dst?: string;
  gateway?: string;
  oif?: number;
  priority?: number;
  prefsrc?: string;
}

/**
 * A route message as the `ip -j route` object the planner reads. The destination is always
 * "a.b.c.d/n" (or "default"); the type is given only when not unicast, as ip prints it.
 */
export function ipRouteFromNetlink(r: NlRouteFact, names: ReadonlyMap<number, string>): IpRoute {
  const table = r.tableId ?? r.table;
  const zero = r.family === AF_INET6 ? "::" : "0.0.0.0";
  const dst = r.dstLen === 0 ? "default" : `${r.dst ?? zero}/${r.dstLen}`;
  return {
    dst,
    ...(r.type !== 1 ? { type: ROUTE_TYPES[r.type] ?? String(r.type) } : {}),
    ...(r.gateway !== undefined ? { gateway: r.gateway } : {}),
    ...(r.oif !== undefined ? { dev: names.get(r.oif) ?? `if${r.oif}` } : {}),
    protocol: PROTO_NAMES[r.protocol] ?? String(r.protocol),
    scope: SCOPES[r.scope] ?? String(r.scope),
    ...(r.prefsrc !== undefined ? { prefsrc: r.prefsrc } : {}),
    ...(r.priority !== undefined ? { metric: r.priority } : {}),
    flags: r.flags & RTNH_F_ONLINK ? ["onlink"] : [],
    table: table === RT_TABLE_MAIN ? "main" : String(table),
  };
}

/** The same facts as parseClientFacts, from rtnetlink dumps of links, IPv4 addresses and routes. */
export function parseNetlinkFacts(links: readonly NlLinkFact[], addrs: readonly NlAddrFact[], routes: readonly NlRouteFact[]): ClientFacts {
  const names = new Map<number, string>(links.filter((l) => l.name !== undefined).map((l) => [l.index, l.name!]));
  const v4 = (index: number) => addrs.filter((a) => a.family === AF_INET && a.index === index);
  const eth = links.find((l) => l.name === POD_IF);
  const vx = links.find((l) => l.name === VXLAN_IF);
  const life = (x: number | undefined) => (x === undefined || x >= FOREVER ? Infinity : x);
  const main = routes.filter((r) => (r.tableId ?? r.table) === RT_TABLE_MAIN);
  return {
    eth0: eth ? { mtu: eth.mtu ?? 0, up: (eth.flags & IFF_UP) !== 0, addresses: v4(eth.index).map((a) => a.local ?? a.address ?? "") } : undefined,
    vxlan: vx
      ? {
          kind: vx.kind,
          mac: vx.address,
          mtu: vx.mtu ?? 0,
          up: (vx.flags & IFF_UP) !== 0,
          vni: vx.vxlan?.id,
          port: vx.vxlan?.port,
          dev: vx.vxlan?.link !== undefined ? names.get(vx.vxlan.link) : vx.link !== undefined ? names.get(vx.link) : undefined,
          remote: vx.vxlan?.remote,
          learning: vx.vxlan?.learning,
          addresses: v4(vx.index).map((a) => ({ local: a.local ?? a.address ?? "", prefixlen: a.prefixlen, validLft: life(a.cacheinfo?.valid), preferredLft: life(a.cacheinfo?.preferred) })),
        }
      : undefined,
    routes4: main.filter((r) => r.family === AF_INET).map((r) => ipRouteFromNetlink(r, names)),
    defaults6: main.filter((r) => r.family === AF_INET6 && r.dstLen === 0).map((r) => ipRouteFromNetlink(r, names)),
    ours6: main
      .filter((r) => r.family === AF_INET6 && r.dstLen > 0)
      .map((r) => ipRouteFromNetlink(r, names))
      .filter((r) => isOurProto(r.protocol)),
  };
}
