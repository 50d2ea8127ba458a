// rtnetlink message bodies as typed values ↔ bytes: links (ifinfomsg + IFLA_*, with vxlan's
// IFLA_LINKINFO/IFLA_INFO_DATA), addresses (ifaddrmsg + IFA_*, lifetimes in IFA_CACHEINFO), routes
// (rtmsg + RTA_*), policy rules (fib_rule_hdr + FRA_*) and neighbours (ndmsg + NDA_*, the AF_BRIDGE
// forwarding entries of a vxlan device included). Pure. Only the attributes we read or write are
// typed; decoders skip the rest.
import * as C from "./constants.ts";
import {
  AttrWriter,
  attrIp,
  attrMac,
  attrString,
  attrU16be,
  attrU32,
  attrU8,
  concat,
  decodeAttrs,
  NetlinkDecodeError,
  type Attr,
} from "./wire.ts";

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
// Fixed parts are built on an explicit ArrayBuffer: `.buffer` of a plain new Uint8Array(n) makes
// JSC move the bytes into a separate ArrayBuffer first.

function fixed(payload: Uint8Array, len: number, what: string): DataView {
  if (payload.length < len) throw new NetlinkDecodeError(`${what}: ${payload.length} bytes, the header alone is ${len}`);
  return view(payload);
}

function each(attrs: Uint8Array, on: (a: Attr) => void): void {
  for (const a of decodeAttrs(attrs)) on(a);
}

// ---------------------------------------------------------------- links

export interface VxlanData {
  /** VNI. */
  id?: number;
  /** Unicast remote (the kernel keeps it as the all-zero FDB entry) or multicast group. */
  remote?: string;
  /** ifindex of the lower device. */
  link?: number;
  local?: string;
  ttl?: number;
  learning?: boolean;
  /** Destination UDP port (host order here; network order on the wire). */
  port?: number;
}

export interface LinkMessage {
  family: number;
  /** ARPHRD_* (1 = Ethernet). */
  type: number;
  index: number;
  /** IFF_* */
  flags: number;
  /** Which flags a request changes (0xffffffff: all). */
  change: number;
  name?: string;
  mtu?: number;
  /** MAC address. */
  address?: string;
  /** ifindex of the lower device (a vxlan's `dev`). */
  link?: number;
  master?: number;
  operstate?: number;
  txqlen?: number;
  group?: number;
  /** IFLA_EXT_MASK (requests only). */
  extMask?: number;
  kind?: string;
  vxlan?: VxlanData;
}

export function encodeLink(m: LinkMessage): Uint8Array {
  const f = new Uint8Array(new ArrayBuffer(C.IFINFOMSG_LEN));
  const v = view(f);
  v.setUint8(0, m.family);
  v.setUint16(2, m.type, true);
  v.setInt32(4, m.index, true);
  v.setUint32(8, m.flags >>> 0, true);
  v.setUint32(12, m.change >>> 0, true);
  const w = new AttrWriter();
  if (m.extMask !== undefined) w.u32(C.IFLA_EXT_MASK, m.extMask);
  if (m.address !== undefined) w.mac(C.IFLA_ADDRESS, m.address);
  if (m.mtu !== undefined) w.u32(C.IFLA_MTU, m.mtu);
  if (m.name !== undefined) w.string(C.IFLA_IFNAME, m.name);
  if (m.link !== undefined) w.u32(C.IFLA_LINK, m.link);
  if (m.master !== undefined) w.u32(C.IFLA_MASTER, m.master);
  if (m.txqlen !== undefined) w.u32(C.IFLA_TXQLEN, m.txqlen);
  if (m.group !== undefined) w.u32(C.IFLA_GROUP, m.group);
  if (m.kind !== undefined) {
    // IFLA_INFO_KIND is an NLA_STRING: iproute2 sends it without the NUL, and so do we.
    const li = new AttrWriter().bytes(C.IFLA_INFO_KIND, new TextEncoder().encode(m.kind));
    const vx = m.vxlan;
    if (vx) li.nest(C.IFLA_INFO_DATA, (d) => encodeVxlan(d, vx));
    w.bytes(C.IFLA_LINKINFO, li.finish());
  }
  return concat(f, w.finish());
}

function encodeVxlan(d: AttrWriter, vx: VxlanData): void {
  // Order as iproute2 writes it, so captured requests compare attribute for attribute.
  if (vx.link !== undefined) d.u32(C.IFLA_VXLAN_LINK, vx.link);
  if (vx.id !== undefined) d.u32(C.IFLA_VXLAN_ID, vx.id);
  if (vx.local !== undefined) d.ip(C.IFLA_VXLAN_LOCAL, vx.local);
  if (vx.remote !== undefined) d.ip(C.IFLA_VXLAN_GROUP, vx.remote);
  if (vx.ttl !== undefined) d.u8(C.IFLA_VXLAN_TTL, vx.ttl);
  if (vx.learning !== undefined) d.u8(C.IFLA_VXLAN_LEARNING, vx.learning ? 1 : 0);
  if (vx.port !== undefined) d.u16be(C.IFLA_VXLAN_PORT, vx.port);
}

export function decodeLink(payload: Uint8Array): LinkMessage {
  const v = fixed(payload, C.IFINFOMSG_LEN, "ifinfomsg");
  const m: LinkMessage = { family: v.getUint8(0), type: v.getUint16(2, true), index: v.getInt32(4, true), flags: v.getUint32(8, true), change: v.getUint32(12, true) };
  each(payload.subarray(C.IFINFOMSG_LEN), (a) => {
    switch (a.type) {
      case C.IFLA_IFNAME: m.name = attrString(a); break;
      case C.IFLA_MTU: m.mtu = attrU32(a); break;
      case C.IFLA_ADDRESS: m.address = attrMac(a); break;
      case C.IFLA_LINK: m.link = attrU32(a); break;
      case C.IFLA_MASTER: m.master = attrU32(a); break;
      case C.IFLA_OPERSTATE: m.operstate = attrU8(a); break;
      case C.IFLA_TXQLEN: m.txqlen = attrU32(a); break;
      case C.IFLA_GROUP: m.group = attrU32(a); break;
      case C.IFLA_EXT_MASK: m.extMask = attrU32(a); break;
      case C.IFLA_LINKINFO:
        each(a.data, (li) => {
          if (li.type === C.IFLA_INFO_KIND) m.kind = attrString(li);
          else if (li.type === C.IFLA_INFO_DATA && m.kind === "vxlan") m.vxlan = decodeVxlan(li.data);
        });
        break;
    }
  });
  return m;
}

function decodeVxlan(data: Uint8Array): VxlanData {
  const vx: VxlanData = {};
  each(data, (a) => {
    switch (a.type) {
      case C.IFLA_VXLAN_ID: vx.id = attrU32(a); break;
      case C.IFLA_VXLAN_GROUP: vx.remote = attrIp(a); break;
      case C.IFLA_VXLAN_LINK: vx.link = attrU32(a); break;
      case C.IFLA_VXLAN_LOCAL: vx.local = attrIp(a); break;
      case C.IFLA_VXLAN_TTL: vx.ttl = attrU8(a); break;
      case C.IFLA_VXLAN_LEARNING: vx.learning = attrU8(a) !== 0; break;
      case C.IFLA_VXLAN_PORT: vx.port = attrU16be(a); break;
    }
  });
  return vx;
}

// ---------------------------------------------------------------- addresses

export interface AddrCacheInfo {
  /** Seconds; C.INFINITY_LIFE_TIME is "forever". */
  preferred: number;
  valid: number;
  /** Hundredths of a second since boot (dumps only). */
  created: number;
  updated: number;
}

export interface AddrMessage {
  family: number;
  prefixlen: number;
  /** IFA_F_* (low 8 bits; IFA_FLAGS carries all 32). */
  flags: number;
  scope: number;
  index: number;
  address?: string;
  local?: string;
  label?: string;
  broadcast?: string;
  cacheinfo?: AddrCacheInfo;
  extFlags?: number;
}

export function encodeAddr(m: AddrMessage): Uint8Array {
  const f = new Uint8Array(new ArrayBuffer(C.IFADDRMSG_LEN));
  const v = view(f);
  v.setUint8(0, m.family);
  v.setUint8(1, m.prefixlen);
  v.setUint8(2, m.flags);
  v.setUint8(3, m.scope);
  v.setUint32(4, m.index, true);
  const w = new AttrWriter();
  if (m.local !== undefined) w.ip(C.IFA_LOCAL, m.local);
  if (m.address !== undefined) w.ip(C.IFA_ADDRESS, m.address);
  if (m.broadcast !== undefined) w.ip(C.IFA_BROADCAST, m.broadcast);
  if (m.label !== undefined) w.string(C.IFA_LABEL, m.label);
  if (m.cacheinfo) {
    const ci = new Uint8Array(new ArrayBuffer(16));
    const cv = view(ci);
    cv.setUint32(0, m.cacheinfo.preferred >>> 0, true);
    cv.setUint32(4, m.cacheinfo.valid >>> 0, true);
    cv.setUint32(8, m.cacheinfo.created >>> 0, true);
    cv.setUint32(12, m.cacheinfo.updated >>> 0, true);
    w.bytes(C.IFA_CACHEINFO, ci);
  }
  if (m.extFlags !== undefined) w.u32(C.IFA_FLAGS, m.extFlags);
  return concat(f, w.finish());
}

export function decodeAddr(payload: Uint8Array): AddrMessage {
  const v = fixed(payload, C.IFADDRMSG_LEN, "ifaddrmsg");
  const m: AddrMessage = { family: v.getUint8(0), prefixlen: v.getUint8(1), flags: v.getUint8(2), scope: v.getUint8(3), index: v.getUint32(4, true) };
  each(payload.subarray(C.IFADDRMSG_LEN), (a) => {
    switch (a.type) {
      case C.IFA_ADDRESS: m.address = attrIp(a); break;
      case C.IFA_LOCAL: m.local = attrIp(a); break;
      case C.IFA_LABEL: m.label = attrString(a); break;
      case C.IFA_BROADCAST: m.broadcast = attrIp(a); break;
      case C.IFA_FLAGS: m.extFlags = attrU32(a); break;
      case C.IFA_CACHEINFO: {
        if (a.data.length < 16) throw new NetlinkDecodeError(`IFA_CACHEINFO of ${a.data.length} bytes`);
        const c = view(a.data);
        m.cacheinfo = { preferred: c.getUint32(0, true), valid: c.getUint32(4, true), created: c.getUint32(8, true), updated: c.getUint32(12, true) };
        break;
      }
    }
  });
  return m;
}

// ---------------------------------------------------------------- routes

export interface RouteMessage {
  family: number;
  dstLen: number;
  srcLen: number;
  tos: number;
  /** rtm_table: the table when < 256 (RTA_TABLE carries all 32 bits). */
  table: number;
  protocol: number;
  scope: number;
  /** RTN_* */
  type: number;
  /** RTM_F_* and RTNH_F_* (onlink). */
  flags: number;
  dst?: string;
  src?: string;
  gateway?: string;
  oif?: number;
  iif?: number;
  priority?: number;
  prefsrc?: string;
  tableId?: number;
  pref?: number;
}

export function encodeRoute(m: RouteMessage): Uint8Array {
  const f = new Uint8Array(new ArrayBuffer(C.RTMSG_LEN));
  const v = view(f);
  [m.family, m.dstLen, m.srcLen, m.tos, m.table, m.protocol, m.scope, m.type].forEach((x, i) => v.setUint8(i, x));
  v.setUint32(8, m.flags >>> 0, true);
  const w = new AttrWriter();
  // iproute2's order: table, dst, src, iif, gateway, priority, prefsrc, oif
  if (m.tableId !== undefined) w.u32(C.RTA_TABLE, m.tableId);
  if (m.dst !== undefined) w.ip(C.RTA_DST, m.dst);
  if (m.src !== undefined) w.ip(C.RTA_SRC, m.src);
  if (m.iif !== undefined) w.u32(C.RTA_IIF, m.iif);
  if (m.gateway !== undefined) w.ip(C.RTA_GATEWAY, m.gateway);
  if (m.priority !== undefined) w.u32(C.RTA_PRIORITY, m.priority);
  if (m.prefsrc !== undefined) w.ip(C.RTA_PREFSRC, m.prefsrc);
  if (m.oif !== undefined) w.u32(C.RTA_OIF, m.oif);
  if (m.pref !== undefined) w.u8(C.RTA_PREF, m.pref);
  return concat(f, w.finish());
}

export function decodeRoute(payload: Uint8Array): RouteMessage {
  const v = fixed(payload, C.RTMSG_LEN, "rtmsg");
  const b = (i: number) => v.getUint8(i);
  const m: RouteMessage = { family: b(0), dstLen: b(1), srcLen: b(2), tos: b(3), table: b(4), protocol: b(5), scope: b(6), type: b(7), flags: v.getUint32(8, true) };
  each(payload.subarray(C.RTMSG_LEN), (a) => {
    switch (a.type) {
      case C.RTA_DST: m.dst = attrIp(a); break;
      case C.RTA_SRC: m.src = attrIp(a); break;
      case C.RTA_GATEWAY: m.gateway = attrIp(a); break;
      case C.RTA_OIF: m.oif = attrU32(a); break;
      case C.RTA_IIF: m.iif = attrU32(a); break;
      case C.RTA_PRIORITY: m.priority = attrU32(a); break;
      case C.RTA_PREFSRC: m.prefsrc = attrIp(a); break;
      case C.RTA_TABLE: m.tableId = attrU32(a); break;
      case C.RTA_PREF: m.pref = attrU8(a); break;
    }
  });
  return m;
}

/** The route's table: RTA_TABLE when present (tables above 255), else rtm_table. */
export function routeTable(m: RouteMessage): number {
  return m.tableId ?? m.table;
}

// ---------------------------------------------------------------- policy rules

export interface RuleMessage {
  family: number;
  dstLen: number;
  srcLen: number;
  tos: number;
  table: number;
  /** FR_ACT_* */
  action: number;
  flags: number;
  dst?: string;
  src?: string;
  priority?: number;
  tableId?: number;
  iifname?: string;
  oifname?: string;
  fwmark?: number;
  suppressPrefixlen?: number;
  protocol?: number;
  /**
   * Decoded only: selectors present that the codec does not decode further, by iproute2's JSON
   * names (a reader must not take such a rule for one that matches everything).
   */
  otherSelectors?: string[];
}

/** FRA_* selectors kept only by name (src/core/netlink/constants.ts lists the decoded ones). */
const OTHER_RULE_SELECTORS: Readonly<Record<number, string>> = { 11: "realms", 12: "tun_id", 13: "suppress_ifgroup", 16: "fwmask", 19: "l3mdev", 20: "uidrange", 22: "ipproto", 23: "sport", 24: "dport" };

export function encodeRule(m: RuleMessage): Uint8Array {
  const f = new Uint8Array(new ArrayBuffer(C.FIB_RULE_HDR_LEN));
  const v = view(f);
  [m.family, m.dstLen, m.srcLen, m.tos, m.table, 0, 0, m.action].forEach((x, i) => v.setUint8(i, x));
  v.setUint32(8, m.flags >>> 0, true);
  const w = new AttrWriter();
  if (m.protocol !== undefined) w.u8(C.FRA_PROTOCOL, m.protocol);
  if (m.priority !== undefined) w.u32(C.FRA_PRIORITY, m.priority);
  if (m.src !== undefined) w.ip(C.FRA_SRC, m.src);
  if (m.dst !== undefined) w.ip(C.FRA_DST, m.dst);
  if (m.fwmark !== undefined) w.u32(C.FRA_FWMARK, m.fwmark);
  if (m.tableId !== undefined) w.u32(C.FRA_TABLE, m.tableId);
  if (m.suppressPrefixlen !== undefined) w.u32(C.FRA_SUPPRESS_PREFIXLEN, m.suppressPrefixlen);
  if (m.iifname !== undefined) w.string(C.FRA_IIFNAME, m.iifname);
  if (m.oifname !== undefined) w.string(C.FRA_OIFNAME, m.oifname);
  return concat(f, w.finish());
}

export function decodeRule(payload: Uint8Array): RuleMessage {
  const v = fixed(payload, C.FIB_RULE_HDR_LEN, "fib_rule_hdr");
  const b = (i: number) => v.getUint8(i);
  const m: RuleMessage = { family: b(0), dstLen: b(1), srcLen: b(2), tos: b(3), table: b(4), action: b(7), flags: v.getUint32(8, true) };
  each(payload.subarray(C.FIB_RULE_HDR_LEN), (a) => {
    switch (a.type) {
      case C.FRA_DST: m.dst = attrIp(a); break;
      case C.FRA_SRC: m.src = attrIp(a); break;
      case C.FRA_PRIORITY: m.priority = attrU32(a); break;
      case C.FRA_TABLE: m.tableId = attrU32(a); break;
      case C.FRA_IIFNAME: m.iifname = attrString(a); break;
      case C.FRA_OIFNAME: m.oifname = attrString(a); break;
      case C.FRA_FWMARK: m.fwmark = attrU32(a); break;
      case C.FRA_SUPPRESS_PREFIXLEN: m.suppressPrefixlen = attrU32(a); break;
      case C.FRA_PROTOCOL: m.protocol = attrU8(a); break;
      default: {
        const name = OTHER_RULE_SELECTORS[a.type];
        if (name) (m.otherSelectors ??= []).push(name);
      }
    }
  });
  return m;
}

// ---------------------------------------------------------------- neighbours / FDB

export interface NeighMessage {
  family: number;
  index: number;
  /** NUD_* */
  state: number;
  /** NTF_* */
  flags: number;
  type: number;
  dst?: string;
  lladdr?: string;
  vni?: number;
  port?: number;
  /** NDA_IFINDEX: for a vxlan FDB entry, the device to send from. */
  ifindex?: number;
  master?: number;
}

export function encodeNeigh(m: NeighMessage): Uint8Array {
  const f = new Uint8Array(new ArrayBuffer(C.NDMSG_LEN));
  const v = view(f);
  v.setUint8(0, m.family);
  v.setInt32(4, m.index, true);
  v.setUint16(8, m.state, true);
  v.setUint8(10, m.flags);
  v.setUint8(11, m.type);
  const w = new AttrWriter();
  if (m.master !== undefined) w.u32(C.NDA_MASTER, m.master);
  if (m.dst !== undefined) w.ip(C.NDA_DST, m.dst);
  if (m.lladdr !== undefined) w.mac(C.NDA_LLADDR, m.lladdr);
  if (m.ifindex !== undefined) w.u32(C.NDA_IFINDEX, m.ifindex);
  if (m.vni !== undefined) w.u32(C.NDA_VNI, m.vni);
  if (m.port !== undefined) w.u16be(C.NDA_PORT, m.port);
  return concat(f, w.finish());
}

export function decodeNeigh(payload: Uint8Array): NeighMessage {
  const v = fixed(payload, C.NDMSG_LEN, "ndmsg");
  const m: NeighMessage = { family: v.getUint8(0), index: v.getInt32(4, true), state: v.getUint16(8, true), flags: v.getUint8(10), type: v.getUint8(11) };
  each(payload.subarray(C.NDMSG_LEN), (a) => {
    switch (a.type) {
      case C.NDA_DST: m.dst = attrIp(a); break;
      case C.NDA_LLADDR: m.lladdr = attrMac(a); break;
      case C.NDA_VNI: m.vni = attrU32(a); break;
      case C.NDA_PORT: m.port = attrU16be(a); break;
      case C.NDA_IFINDEX: m.ifindex = attrU32(a); break;
      case C.NDA_MASTER: m.master = attrU32(a); break;
    }
  });
  return m;
}
