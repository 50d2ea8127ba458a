// nfnetlink_log (NETLINK_NETFILTER, subsystem ULOG): the configuration requests that bind a log
// group and ask for packet copies, the decoder of the packets the kernel sends for it, and the
// drop report built from them (issue 13 §5). Pure: requests and values out, bytes in.
//
// Layout (linux/netfilter/nfnetlink.h, nfnetlink_log.h): every message's payload starts with
// struct nfgenmsg { u8 family; u8 version; be16 res_id } (res_id: the group), then attributes.
import { AF_INET, AF_INET6, NLM_F_ACK, NLM_F_REQUEST } from "./constants.ts";
import type { NlRequest } from "./requests.ts";
import { AttrWriter, concat, decodeAttrs, formatIp, NetlinkDecodeError, type NlMessage } from "./wire.ts";

export const NETLINK_NETFILTER = 12;
export const NFNL_SUBSYS_ULOG = 4;
export const NFULNL_MSG_PACKET = 0;
export const NFULNL_MSG_CONFIG = 1;
export const NFNETLINK_V0 = 0;

/** Configuration attributes. */
export const NFULA_CFG_CMD = 1;
export const NFULA_CFG_MODE = 2;
/** NFULA_CFG_CMD commands. */
export const NFULNL_CFG_CMD_BIND = 1;
export const NFULNL_CFG_CMD_UNBIND = 2;
export const NFULNL_CFG_CMD_PF_BIND = 3;
export const NFULNL_CFG_CMD_PF_UNBIND = 4;
export const NFULNL_COPY_PACKET = 2;

/** Packet attributes. */
export const NFULA_PACKET_HDR = 1;
export const NFULA_IFINDEX_OUTDEV = 5;
export const NFULA_PAYLOAD = 9;

/** The message type of an nfnetlink_log message. */
export const nflogType = (msg: number): number => (NFNL_SUBSYS_ULOG << 8) | msg;

/**
 * Bytes of each packet we ask for: an IPv4 header with the longest options (60) or the IPv6
 * fixed header (40) with a few extension headers, plus the ports. Little of the payload proper
 * reaches us.
 */
export const NFLOG_COPY_RANGE = 96;

function nfgen(family: number, group: number): Uint8Array {
  const b = new Uint8Array(4);
  const v = new DataView(b.buffer);
  v.setUint8(0, family);
  v.setUint8(1, NFNETLINK_V0);
  v.setUint16(2, group, false);
  return b;
}

function config(family: number, group: number, attrs: AttrWriter): NlRequest {
  return { type: nflogType(NFULNL_MSG_CONFIG), flags: NLM_F_REQUEST | NLM_F_ACK, body: concat(nfgen(family, group), attrs.finish()) };
}

/** PF_UNBIND / PF_BIND of an address family (a no-op on kernels since 3.17, required before). */
export function nflogPfRequest(cmd: typeof NFULNL_CFG_CMD_PF_BIND | typeof NFULNL_CFG_CMD_PF_UNBIND, family: 4 | 6): NlRequest {
  return config(family === 4 ? AF_INET : AF_INET6, 0, new AttrWriter().u8(NFULA_CFG_CMD, cmd));
}

/** Bind this socket to a log group (EBUSY when another socket has it). */
export function nflogBindRequest(group: number): NlRequest {
  return config(0, group, new AttrWriter().u8(NFULA_CFG_CMD, NFULNL_CFG_CMD_BIND));
}

/** Copy mode "packet", the first `range` bytes: struct nfulnl_msg_config_mode { be32 copy_range; u8 copy_mode; u8 pad }. */
export function nflogModeRequest(group: number, range = NFLOG_COPY_RANGE): NlRequest {
  const mode = new Uint8Array(6);
  const v = new DataView(mode.buffer);
  v.setUint32(0, range, false);
  v.setUint8(4, NFULNL_COPY_PACKET);
  return config(0, group, new AttrWriter().bytes(NFULA_CFG_MODE, mode));
}

/** One logged packet as the report needs it. */
export interface LoggedPacket {
  group: number;
  family: 4 | 6;
  dst: string;
  /** "tcp", "udp", "icmp", "icmpv6" or "proto N". */
  proto: string;
  /** Destination port (tcp and udp, first fragment only). */
  port?: number;
  /** ifindex of the output device, when the kernel gave one. */
  outIndex?: number;
}

const PROTO_NAMES: Record<number, string> = { 1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp" };
const protoName = (p: number): string => PROTO_NAMES[p] ?? `proto ${p}`;

/** Destination, protocol and port from the first bytes of an IP packet; undefined when too short or not IP. */
export function decodeIpHeader(p: Uint8Array): Pick<LoggedPacket, "family" | "dst" | "proto" | "port"> | undefined {
  if (p.length < 1) return undefined;
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const version = p[0]! >> 4;
  if (version === 4) {
    const ihl = (p[0]! & 0x0f) * 4;
    if (ihl < 20 || p.length < 20) return undefined;
    const proto = p[9]!;
    const fragOffset = v.getUint16(6, false) & 0x1fff;
    const out = { family: 4 as const, dst: formatIp(p.subarray(16, 20)), proto: protoName(proto) };
    if ((proto === 6 || proto === 17 || proto === 132) && fragOffset === 0 && p.length >= ihl + 4) return { ...out, port: v.getUint16(ihl + 2, false) };
    return out;
  }
  if (version === 6) {
    if (p.length < 40) return undefined;
    let next = p[6]!;
    let off = 40;
    // Hop-by-hop, routing and destination options (MLD reports carry hop-by-hop), and a
    // fragment header: walked while the copy holds them, at most 8.
    for (let i = 0; i < 8 && (next === 0 || next === 43 || next === 60 || next === 44) && off + 8 <= p.length; i++) {
      const len = next === 44 ? 8 : (p[off + 1]! + 1) * 8;
      if (next === 44 && (v.getUint16(off + 2, false) & 0xfff8) !== 0) return { family: 6, dst: formatIp(p.subarray(24, 40)), proto: "fragment" };
      next = p[off]!;
      off += len;
    }
    const out = { family: 6 as const, dst: formatIp(p.subarray(24, 40)), proto: protoName(next) };
    if ((next === 6 || next === 17 || next === 132) && p.length >= off + 4) return { ...out, port: v.getUint16(off + 2, false) };
    return out;
  }
  return undefined;
}

/**
 * A packet message of nfnetlink_log; undefined for any other message (an ACK, another
 * subsystem) and for a payload that is not an IP packet. Malformed attributes throw
 * NetlinkDecodeError.
 */
export function decodeNflogPacket(m: NlMessage): LoggedPacket | undefined {
  if (m.header.type !== nflogType(NFULNL_MSG_PACKET)) return undefined;
  if (m.payload.length < 4) throw new NetlinkDecodeError(`nflog packet: ${m.payload.length} bytes, shorter than struct nfgenmsg`);
  const group = new DataView(m.payload.buffer, m.payload.byteOffset, 4).getUint16(2, false);
  let payload: Uint8Array | undefined;
  let outIndex: number | undefined;
  for (const a of decodeAttrs(m.payload.subarray(4))) {
    if (a.type === NFULA_PAYLOAD) payload = a.data;
    // NFULA_IFINDEX_* are big-endian u32.
    else if (a.type === NFULA_IFINDEX_OUTDEV && a.data.length >= 4) outIndex = new DataView(a.data.buffer, a.data.byteOffset, 4).getUint32(0, false);
  }
  if (!payload) return undefined;
  const ip = decodeIpHeader(payload);
  if (!ip) return undefined;
  return { group, ...ip, ...(outIndex !== undefined ? { outIndex } : {}) };
}

// ---------------------------------------------------------------- the report

/** At most one report a minute. */
export const DROP_REPORT_INTERVAL_MS = 60_000;

export interface DropReportState {
  /** Packets per destination ("203.0.113.5 udp/51820") since the last report. */
  pending: Map<string, { packet: LoggedPacket; count: number }>;
  /** When the last report was made (undefined: never). */
  lastReport?: number;
}

export const newDropReportState = (): DropReportState => ({ pending: new Map() });

/** "203.0.113.5 udp/51820", "2001:db8::1 tcp/443", "203.0.113.5 icmp". */
export function describeDestination(p: LoggedPacket): string {
  return p.port !== undefined ? `${p.dst} ${p.proto}/${p.port}` : `${p.dst} ${p.proto}`;
}

/**
 * Multicast, broadcast and link-local destinations (IPv6 router solicitations and MLD reports,
 * which the kill switch drops on eth0 too) can never be a VPN server: they are counted by the
 * reader but never take the report's one line a minute.
 */
export function isReportable(p: LoggedPacket): boolean {
  if (p.family === 6) return !/^(ff|fe[89ab])/i.test(p.dst);
  const first = Number(p.dst.slice(0, p.dst.indexOf(".")));
  return !(first >= 224 || p.dst.startsWith("169.254."));
}

/** Count packets; bounded: past 1000 distinct destinations a minute the rest count as "others". */
export function recordDrops(state: DropReportState, packets: readonly LoggedPacket[]): void {
  for (const p of packets) {
    if (!isReportable(p)) continue;
    const key = describeDestination(p);
    const e = state.pending.get(key) ?? (state.pending.size < 1000 ? { packet: p, count: 0 } : undefined);
    if (!e) {
      const other = state.pending.get("others") ?? { packet: p, count: 0 };
      other.count++;
      state.pending.set("others", other);
      continue;
    }
    e.count++;
    state.pending.set(key, e);
  }
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** A tcp or udp destination: the only kind that can be a VPN server's port (the report's hint). */
const hasPort = (p: LoggedPacket): boolean => p.port !== undefined && (p.proto === "udp" || p.proto === "tcp");

/**
 * The report due at `now`, if any: the first drops are reported at once, later ones at most once
 * per interval. It names the tcp or udp destination dropped most, with the hint, and counts the
 * rest; other protocols are named only when nothing else was dropped. Why tcp and udp first: a
 * VPN client whose server port is missing from VPN_TRAFFIC_PORT often has an old session's server
 * still sending to it; the gateway answers each with an ICMP port unreachable the kill switch
 * drops too (seen with OpenVPN), and a tie with that ICMP must not spend the minute's one line
 * on it. Resets the counts it reported.
 */
export function planDropReport(state: DropReportState, now: number, iface: string, intervalMs = DROP_REPORT_INTERVAL_MS): string | undefined {
  if (state.pending.size === 0) return undefined;
  if (state.lastReport !== undefined && now - state.lastReport < intervalMs) return undefined;
  const rank = ([k, e]: [string, { packet: LoggedPacket }]) => (k !== "others" && hasPort(e.packet) ? 0 : 1);
  const entries = [...state.pending.entries()].sort((a, b) => rank(a) - rank(b) || b[1].count - a[1].count || (a[0] < b[0] ? -1 : 1));
  const [key, top] = entries.find(([k]) => k !== "others") ?? entries[0]!;
  const rest = entries.filter(([k]) => k !== key);
  const restCount = rest.reduce((n, [, e]) => n + e.count, 0);
  const p = top.packet;
  let text = `the kill switch dropped ${plural(top.count, "packet", "packets")} to ${key === "others" ? "other destinations" : describeDestination(p)} on ${iface}`;
  const restNamed = rest.filter(([k]) => k !== "others").length;
  const more = rest.length > restNamed ? "more than " : "";
  if (restCount > 0) text += ` (and ${plural(restCount, "packet", "packets")} to ${more}${plural(restNamed, "other destination", "other destinations")})`;
  if (key !== "others" && hasPort(p))
    text += ` — if that is your VPN server, add ${p.port} to VPN_TRAFFIC_PORT`;
  state.pending.clear();
  state.lastReport = now;
  return text;
}
