// The rtnetlink requests our operations send, as pure functions of typed specs: message type,
// flags, body. Field defaults follow iproute2 (checked against captured requests in
// test/unit/netlink-iproute2.test.ts), so `ip` and this layer leave the same state behind.
// Interfaces are given by index; src/sys/netlink.ts resolves names.
import * as C from "./constants.ts";
import { AttrWriter, concat } from "./wire.ts";
import { encodeAddr, encodeLink, encodeNeigh, encodeRoute, encodeRule, type RouteMessage, type RuleMessage } from "./messages.ts";

export interface NlRequest {
  type: number;
  flags: number;
  body: Uint8Array;
}

const ACK = C.NLM_F_REQUEST | C.NLM_F_ACK;
const CREATE_EXCL = ACK | C.NLM_F_CREATE | C.NLM_F_EXCL;
const CREATE_REPLACE = ACK | C.NLM_F_CREATE | C.NLM_F_REPLACE;
const DUMP = C.NLM_F_REQUEST | C.NLM_F_DUMP;

export type Family = 4 | 6;
export const afOf = (f: Family): number => (f === 4 ? C.AF_INET : C.AF_INET6);

// ---------------------------------------------------------------- links

const LINK_EXT_MASK = C.RTEXT_FILTER_VF | C.RTEXT_FILTER_SKIP_STATS;

export function linkDumpRequest(): NlRequest {
  return { type: C.RTM_GETLINK, flags: DUMP, body: encodeLink({ family: C.AF_UNSPEC, type: 0, index: 0, flags: 0, change: 0, extMask: C.RTEXT_FILTER_SKIP_STATS }) };
}

/** One link by name (no dump): the kernel answers ENODEV when there is none. */
export function linkGetRequest(name: string): NlRequest {
  return { type: C.RTM_GETLINK, flags: C.NLM_F_REQUEST, body: encodeLink({ family: C.AF_UNSPEC, type: 0, index: 0, flags: 0, change: 0, extMask: LINK_EXT_MASK, name }) };
}

export interface VxlanCreate {
  name: string;
  vni: number;
  /** Destination UDP port; undefined leaves the kernel's default (8472). */
  port?: number;
  /** ifindex of the lower device. */
  dev?: number;
  learning: boolean;
  /** Unicast remote: the kernel adds it as the all-zero FDB entry. */
  remote?: string;
  local?: string;
  mac?: string;
  mtu?: number;
  up?: boolean;
}

export function vxlanCreateRequest(v: VxlanCreate): NlRequest {
  return {
    type: C.RTM_NEWLINK,
    flags: CREATE_EXCL,
    body: encodeLink({
      family: C.AF_UNSPEC,
      type: 0,
      index: 0,
      flags: v.up ? C.IFF_UP : 0,
      change: v.up ? C.IFF_UP : 0,
      name: v.name,
      ...(v.mac !== undefined ? { address: v.mac } : {}),
      ...(v.mtu !== undefined ? { mtu: v.mtu } : {}),
      kind: "vxlan",
      vxlan: {
        id: v.vni,
        ...(v.dev !== undefined ? { link: v.dev } : {}),
        ...(v.local !== undefined ? { local: v.local } : {}),
        ...(v.remote !== undefined ? { remote: v.remote } : {}),
        learning: v.learning,
        ...(v.port !== undefined ? { port: v.port } : {}),
      },
    }),
  };
}

export interface LinkSet {
  up?: boolean;
  mtu?: number;
  mac?: string;
}

export function linkSetRequest(index: number, s: LinkSet): NlRequest {
  const change = s.up === undefined ? 0 : C.IFF_UP;
  return {
    type: C.RTM_NEWLINK,
    flags: ACK,
    body: encodeLink({ family: C.AF_UNSPEC, type: 0, index, flags: s.up ? C.IFF_UP : 0, change, ...(s.mtu !== undefined ? { mtu: s.mtu } : {}), ...(s.mac !== undefined ? { address: s.mac } : {}) }),
  };
}

/** Point a vxlan at another remote (the all-zero FDB entry moves with it). */
export function vxlanSetRemoteRequest(index: number, remote: string): NlRequest {
  return { type: C.RTM_NEWLINK, flags: ACK, body: encodeLink({ family: C.AF_UNSPEC, type: 0, index, flags: 0, change: 0, kind: "vxlan", vxlan: { remote } }) };
}

export function linkDeleteRequest(index: number): NlRequest {
  return { type: C.RTM_DELLINK, flags: ACK, body: encodeLink({ family: C.AF_UNSPEC, type: 0, index, flags: 0, change: 0 }) };
}

// ---------------------------------------------------------------- addresses

export interface AddrSpec {
  family: Family;
  index: number;
  local: string;
  prefixlen: number;
  /** Seconds, or "forever"; both absent: the kernel's default (forever). */
  valid?: number | "forever";
  preferred?: number | "forever";
}

const lifetime = (l: number | "forever" | undefined): number => (l === undefined || l === "forever" ? C.INFINITY_LIFE_TIME : Math.max(0, Math.min(C.INFINITY_LIFE_TIME, Math.floor(l))));

export function addrRequest(op: "add" | "replace" | "delete", a: AddrSpec): NlRequest {
  const withLifetimes = op !== "delete" && (a.valid !== undefined || a.preferred !== undefined);
  return {
    type: op === "delete" ? C.RTM_DELADDR : C.RTM_NEWADDR,
    flags: op === "add" ? CREATE_EXCL : op === "replace" ? CREATE_REPLACE : ACK,
    body: encodeAddr({
      family: afOf(a.family),
      prefixlen: a.prefixlen,
      flags: 0,
      scope: 0,
      index: a.index,
      local: a.local,
      // IFA_ADDRESS = IFA_LOCAL on a broadcast link (iproute2 sends both; the kernel keys on LOCAL).
      address: a.local,
      ...(withLifetimes ? { cacheinfo: { valid: lifetime(a.valid), preferred: lifetime(a.preferred ?? a.valid), created: 0, updated: 0 } } : {}),
    }),
  };
}

export function addrDumpRequest(family: Family | undefined): NlRequest {
  return { type: C.RTM_GETADDR, flags: DUMP, body: encodeAddr({ family: family ? afOf(family) : C.AF_UNSPEC, prefixlen: 0, flags: 0, scope: 0, index: 0 }) };
}

// ---------------------------------------------------------------- routes

export type RouteType = "unicast" | "blackhole" | "unreachable" | "prohibit" | "throw";
const RTN: Record<RouteType, number> = { unicast: C.RTN_UNICAST, blackhole: C.RTN_BLACKHOLE, unreachable: C.RTN_UNREACHABLE, prohibit: C.RTN_PROHIBIT, throw: C.RTN_THROW };

export interface RouteSpec {
  family: Family;
  /** "default" or "a.b.c.d/n" (IPv6 likewise). */
  dst: string;
  via?: string;
  /** ifindex of the output device. */
  oif?: number;
  onlink?: boolean;
  /** Table id (254 = main); undefined = main. */
  table?: number;
  protocol?: number;
  /** RT_SCOPE_*; undefined: iproute2's choice (link for a device route, else universe). */
  scope?: number;
  metric?: number;
  type?: RouteType;
  prefsrc?: string;
}

function splitPrefix(dst: string, family: Family): { addr: string | undefined; len: number } {
  if (dst === "default") return { addr: undefined, len: 0 };
  const [addr, len] = dst.split("/");
  const max = family === 4 ? 32 : 128;
  const n = len === undefined ? max : Number(len);
  if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`route destination ${JSON.stringify(dst)}: bad prefix length`);
  return { addr: n === 0 && (addr === "0.0.0.0" || addr === "::") ? undefined : addr, len: n };
}

export function routeMessage(op: "add" | "replace" | "delete", r: RouteSpec): RouteMessage {
  const { addr, len } = splitPrefix(r.dst, r.family);
  const table = r.table ?? C.RT_TABLE_MAIN;
  const type = r.type ? RTN[r.type] : op === "delete" ? C.RTN_UNSPEC : C.RTN_UNICAST;
  // iproute2: a delete matches any scope (NOWHERE) and protocol unless told; an add is
  // proto boot, scope link for a unicast route without a next hop, else universe. IPv6 routes
  // have no scope (the kernel ignores it): iproute2 always sends universe.
  const scope =
    r.scope ??
    (r.family === 6 ? C.RT_SCOPE_UNIVERSE : op === "delete" ? C.RT_SCOPE_NOWHERE : type === C.RTN_UNICAST && !r.via ? C.RT_SCOPE_LINK : C.RT_SCOPE_UNIVERSE);
  const protocol = r.protocol ?? (op === "delete" ? C.RTPROT_UNSPEC : C.RTPROT_BOOT);
  return {
    family: afOf(r.family),
    dstLen: len,
    srcLen: 0,
    tos: 0,
    table: table < 256 ? table : C.RT_TABLE_UNSPEC,
    protocol,
    scope,
    type,
    flags: r.onlink ? C.RTNH_F_ONLINK : 0,
    ...(table >= 256 ? { tableId: table } : {}),
    ...(addr !== undefined ? { dst: addr } : {}),
    ...(r.via !== undefined ? { gateway: r.via } : {}),
    ...(r.metric !== undefined ? { priority: r.metric } : {}),
    ...(r.prefsrc !== undefined ? { prefsrc: r.prefsrc } : {}),
    ...(r.oif !== undefined ? { oif: r.oif } : {}),
  };
}

export function routeRequest(op: "add" | "replace" | "delete", r: RouteSpec): NlRequest {
  return { type: op === "delete" ? C.RTM_DELROUTE : C.RTM_NEWROUTE, flags: op === "add" ? CREATE_EXCL : op === "replace" ? CREATE_REPLACE : ACK, body: encodeRoute(routeMessage(op, r)) };
}

/** Every route of every table (family undefined: IPv4 and IPv6). */
export function routeDumpRequest(family: Family | undefined): NlRequest {
  return {
    type: C.RTM_GETROUTE,
    flags: DUMP,
    body: encodeRoute({ family: family ? afOf(family) : C.AF_UNSPEC, dstLen: 0, srcLen: 0, tos: 0, table: 0, protocol: 0, scope: 0, type: 0, flags: 0 }),
  };
}

/** `ip route get <dst>`: the kernel's FIB lookup (rules and every table), nothing sent. */
export function routeGetRequest(dst: string, family: Family): NlRequest {
  return {
    type: C.RTM_GETROUTE,
    flags: C.NLM_F_REQUEST,
    body: encodeRoute({
      family: afOf(family),
      dstLen: family === 4 ? 32 : 128,
      srcLen: 0,
      tos: 0,
      table: 0,
      protocol: 0,
      scope: 0,
      type: 0,
      // Report the table the lookup matched in rtm_table/RTA_TABLE.
      flags: C.RTM_F_LOOKUP_TABLE,
      dst,
    }),
  };
}

// ---------------------------------------------------------------- rules

export interface RuleSpec {
  family: Family;
  priority: number;
  /** Table id; undefined only for a delete matching any table. */
  table?: number;
  iif?: string;
  oif?: string;
  /** "a.b.c.d/n" */
  from?: string;
  to?: string;
  fwmark?: number;
  suppressPrefixlen?: number;
  protocol?: number;
}

export function ruleMessage(op: "add" | "delete", r: RuleSpec): RuleMessage {
  const pfx = (s: string | undefined) => (s === undefined ? undefined : splitPrefix(s, r.family));
  const from = pfx(r.from);
  const to = pfx(r.to);
  const table = r.table;
  return {
    family: afOf(r.family),
    dstLen: to?.len ?? 0,
    srcLen: from?.len ?? 0,
    tos: 0,
    table: table === undefined ? 0 : table < 256 ? table : C.RT_TABLE_UNSPEC,
    // iproute2 leaves the action unspecified on delete (matches any)
    action: op === "delete" ? 0 : C.FR_ACT_TO_TBL,
    flags: 0,
    priority: r.priority,
    ...(table !== undefined && table >= 256 ? { tableId: table } : {}),
    ...(from?.addr !== undefined ? { src: from.addr } : {}),
    ...(to?.addr !== undefined ? { dst: to.addr } : {}),
    ...(r.iif !== undefined ? { iifname: r.iif } : {}),
    ...(r.oif !== undefined ? { oifname: r.oif } : {}),
    ...(r.fwmark !== undefined ? { fwmark: r.fwmark } : {}),
    ...(r.suppressPrefixlen !== undefined ? { suppressPrefixlen: r.suppressPrefixlen } : {}),
    ...(r.protocol !== undefined ? { protocol: r.protocol } : {}),
  };
}

export function ruleRequest(op: "add" | "delete", r: RuleSpec): NlRequest {
  return { type: op === "delete" ? C.RTM_DELRULE : C.RTM_NEWRULE, flags: op === "add" ? CREATE_EXCL : ACK, body: encodeRule(ruleMessage(op, r)) };
}

export function ruleDumpRequest(family: Family): NlRequest {
  return { type: C.RTM_GETRULE, flags: DUMP, body: encodeRule({ family: afOf(family), dstLen: 0, srcLen: 0, tos: 0, table: 0, action: 0, flags: 0 }) };
}

// ---------------------------------------------------------------- neighbours and FDB

/** The forwarding entries of one bridge port or vxlan device (AF_BRIDGE), as `bridge fdb show dev`. */
export function fdbDumpRequest(index: number): NlRequest {
  return { type: C.RTM_GETNEIGH, flags: DUMP, body: encodeNeigh({ family: C.AF_BRIDGE, index, state: 0, flags: 0, type: 0 }) };
}

/** IPv4/IPv6 neighbours (ARP/ND entries), optionally of one device (NDA_IFINDEX filter). */
export function neighDumpRequest(family: Family, index?: number): NlRequest {
  return { type: C.RTM_GETNEIGH, flags: DUMP, body: encodeNeigh({ family: afOf(family), index: 0, state: 0, flags: 0, type: 0, ...(index !== undefined ? { ifindex: index } : {}) }) };
}

export function neighDeleteRequest(family: Family, index: number, dst: string): NlRequest {
  return { type: C.RTM_DELNEIGH, flags: ACK, body: encodeNeigh({ family: afOf(family), index, state: 0, flags: 0, type: 0, dst }) };
}

/**
 * `ip ntable change name arp_cache dev <index> retrans <ms>`: how long the kernel waits before it
 * asks again for a neighbour that did not answer (NDTPA_RETRANS_TIME, a u64 of milliseconds).
 */
export function neighRetransRequest(index: number, retransMs: number): NlRequest {
  const f = new Uint8Array(C.NDTMSG_LEN);
  f[0] = C.AF_INET;
  const w = new AttrWriter();
  w.string(C.NDTA_NAME, "arp_cache");
  w.nest(C.NDTA_PARMS, (p) => {
    p.u32(C.NDTPA_IFINDEX, index);
    const ms = new Uint8Array(8);
    new DataView(ms.buffer).setBigUint64(0, BigInt(Math.round(retransMs)), true);
    p.bytes(C.NDTPA_RETRANS_TIME, ms);
  });
  return { type: C.RTM_SETNEIGHTBL, flags: ACK, body: concat(f, w.finish()) };
}
