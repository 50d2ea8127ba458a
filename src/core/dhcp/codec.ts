// The DHCPv4 wire format (RFC 2131 message, RFC 2132 options): pure encode/decode of BOOTP
// messages, plus the hand-built IPv4 + UDP headers the AF_PACKET transport needs.
//
// Decoding is bounds-checked everywhere and throws nothing but DecodeError: the packet socket
// sees every IPv4 packet on the interface, so anything can arrive.
import { ipv4Bytes } from "../net/ipv4.ts";

/** The only exception the decoders throw: the bytes are not a packet we can use. */
export class DecodeError extends Error {
  override name = "DecodeError";
}

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const HTYPE_ETHERNET = 1;
export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
/** RFC 2131 §3: the options field starts with 99.130.83.99. */
export const MAGIC_COOKIE = 0x63825363;
/** op .. file (236 bytes) + the magic cookie. */
export const BOOTP_FIXED_LENGTH = 236;
export const DHCP_MIN_LENGTH = BOOTP_FIXED_LENGTH + 4;
/** RFC 2131 §2: the broadcast bit is the top bit of flags. */
export const FLAG_BROADCAST = 0x8000;
/** RFC 2131 §2: a client must accept messages of up to 576 bytes of IP datagram, 548 of DHCP. */
export const DHCP_MIN_MESSAGE_SIZE = 548;

export const MessageType = {
  discover: 1,
  offer: 2,
  request: 3,
  decline: 4,
  ack: 5,
  nak: 6,
  release: 7,
  inform: 8,
} as const;
export type MessageTypeName = keyof typeof MessageType;

const MESSAGE_TYPE_NAMES: Record<number, MessageTypeName> = Object.fromEntries(
  Object.entries(MessageType).map(([k, v]) => [v, k as MessageTypeName]),
);
export function messageTypeName(t: number | undefined): string {
  return t === undefined ? "BOOTP (no type)" : (MESSAGE_TYPE_NAMES[t]?.toUpperCase() ?? `type ${t}`);
}

/** Option codes (RFC 2132) this codec types. Every other option is kept raw. */
export const Opt = {
  pad: 0,
  subnetMask: 1,
  router: 3,
  dnsServer: 6,
  hostname: 12,
  interfaceMtu: 26,
  requestedAddress: 50,
  leaseTime: 51,
  overload: 52,
  messageType: 53,
  serverId: 54,
  parameterRequestList: 55,
  maxMessageSize: 57,
  renewalTime: 58,
  rebindingTime: 59,
  clientId: 61,
  rapidCommit: 80,
  end: 255,
} as const;

export interface RawOption {
  code: number;
  data: Uint8Array;
}

/**
 * Options by meaning. A typed option is absent when the message does not carry it; `raw`
 * holds every other option in the order it appeared (RFC 3396 long options already joined).
 */
export interface DhcpOptions {
  subnetMask?: string; // 1
  routers?: string[]; // 3
  dnsServers?: string[]; // 6
  hostname?: string; // 12
  mtu?: number; // 26
  requestedAddress?: string; // 50
  leaseSeconds?: number; // 51
  messageType?: number; // 53
  serverId?: string; // 54
  parameterRequestList?: number[]; // 55
  renewalSeconds?: number; // 58
  rebindingSeconds?: number; // 59
  /** Option 61 whole: the type byte first (0 = opaque, 1 = Ethernet MAC follows). */
  clientId?: Uint8Array;
  /** Option 80 (RFC 4039), empty: in a DISCOVER, "an ACK at once will do"; in an ACK, "this is one". */
  rapidCommit?: boolean;
  raw: RawOption[];
}

export interface DhcpMessage {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** All 16 bytes of chaddr; the first `hlen` are the hardware address. */
  chaddr: Uint8Array;
  /** Server host name and boot file: NUL-terminated text in 64 and 128 bytes. */
  sname: string;
  file: string;
  options: DhcpOptions;
}

// ---------------------------------------------------------------------------------------------
// Small helpers for addresses.

/** "172.16.0.5" → its 4 bytes; throws RangeError for anything else (an encode-side bug). */
export const ipv4ToBytes = ipv4Bytes;

export function bytesToIpv4(b: Uint8Array, offset = 0): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

/** "02:aa:bb:cc:dd:ee" (or with dashes) → 6 bytes; throws RangeError otherwise. */
export function macToBytes(mac: string): Uint8Array {
  const parts = mac.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new RangeError(`not a MAC address: ${JSON.stringify(mac)}`);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

export function bytesToMac(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** 255.255.255.0 → 24; undefined when the mask is not contiguous ones then zeros. */
export function maskToPrefixLength(mask: string): number | undefined {
  const b = ipv4ToBytes(mask);
  const n = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  let len = 0;
  while (len < 32 && (n & (0x80000000 >>> len)) !== 0) len++;
  const expect = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return n === expect ? len : undefined;
}

export function prefixLengthToMask(len: number): string {
  if (!Number.isInteger(len) || len < 0 || len > 32) throw new RangeError(`prefix length out of range: ${len}`);
  const n = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder("utf-8", { fatal: false });

// ---------------------------------------------------------------------------------------------
// Encoding.

function putOption(out: number[], code: number, data: Uint8Array): void {
  // RFC 3396: an option longer than 255 bytes is split into several with the same code, which
  // the receiver concatenates. A zero-length option is legal (e.g. rapid commit).
  if (data.length === 0) {
    out.push(code, 0);
    return;
  }
  for (let i = 0; i < data.length; i += 255) {
    const chunk = data.subarray(i, Math.min(i + 255, data.length));
    out.push(code, chunk.length, ...chunk);
  }
}

function u32(n: number, what: string): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${what} out of range: ${n}`);
  return Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}
function u16(n: number, what: string): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`${what} out of range: ${n}`);
  return Uint8Array.of(n >>> 8, n & 255);
}
function u8(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new RangeError(`${what} out of range: ${n}`);
  return n;
}
function ipList(ips: string[], what: string): Uint8Array {
  // An empty list has no valid encoding (RFC 2132: minimum length 4).
  if (ips.length === 0) throw new RangeError(`${what}: empty address list`);
  const out = new Uint8Array(ips.length * 4);
  ips.forEach((ip, i) => out.set(ipv4ToBytes(ip), i * 4));
  return out;
}

/** The option bytes (without the cookie), in a fixed order: type first as RFC 2131 §4.1 advises. */
export function encodeOptions(o: DhcpOptions): Uint8Array {
  const out: number[] = [];
  if (o.messageType !== undefined) putOption(out, Opt.messageType, Uint8Array.of(u8(o.messageType, "message type")));
  if (o.clientId !== undefined) putOption(out, Opt.clientId, o.clientId);
  if (o.serverId !== undefined) putOption(out, Opt.serverId, ipv4ToBytes(o.serverId));
  if (o.requestedAddress !== undefined) putOption(out, Opt.requestedAddress, ipv4ToBytes(o.requestedAddress));
  if (o.hostname !== undefined) putOption(out, Opt.hostname, utf8.encode(o.hostname));
  if (o.parameterRequestList !== undefined)
    putOption(out, Opt.parameterRequestList, Uint8Array.from(o.parameterRequestList.map((c) => u8(c, "requested option code"))));
  if (o.leaseSeconds !== undefined) putOption(out, Opt.leaseTime, u32(o.leaseSeconds, "lease time"));
  if (o.renewalSeconds !== undefined) putOption(out, Opt.renewalTime, u32(o.renewalSeconds, "renewal time"));
  if (o.rebindingSeconds !== undefined) putOption(out, Opt.rebindingTime, u32(o.rebindingSeconds, "rebinding time"));
  if (o.subnetMask !== undefined) putOption(out, Opt.subnetMask, ipv4ToBytes(o.subnetMask));
  if (o.routers !== undefined) putOption(out, Opt.router, ipList(o.routers, "routers"));
  if (o.dnsServers !== undefined) putOption(out, Opt.dnsServer, ipList(o.dnsServers, "DNS servers"));
  if (o.mtu !== undefined) putOption(out, Opt.interfaceMtu, u16(o.mtu, "MTU"));
  if (o.rapidCommit) putOption(out, Opt.rapidCommit, new Uint8Array(0));
  for (const r of o.raw) {
    // Pad/end are framing, not options; 52 would claim sname/file carry options, which this
    // encoder never does, so emitting it would make the message lie about itself.
    if (r.code === Opt.pad || r.code === Opt.end || r.code === Opt.overload || TYPED_CODES.has(r.code)) continue;
    putOption(out, u8(r.code, "option code"), r.data);
  }
  out.push(Opt.end);
  return Uint8Array.from(out);
}

function putText(buf: Uint8Array, offset: number, size: number, text: string, what: string): void {
  const b = utf8.encode(text);
  // Keep room for the terminating NUL so the field decodes back to the same text.
  if (b.length > size - 1) throw new RangeError(`${what} longer than ${size - 1} bytes`);
  buf.set(b, offset);
}

/**
 * Encode a message. Short messages are zero-padded to the 300 bytes of a classic BOOTP packet:
 * some relays and servers drop anything smaller.
 */
export function encodeMessage(m: DhcpMessage): Uint8Array {
  const opts = encodeOptions(m.options);
  const len = Math.max(DHCP_MIN_LENGTH + opts.length, 300);
  const buf = new Uint8Array(len);
  const dv = new DataView(buf.buffer);
  buf[0] = u8(m.op, "op");
  buf[1] = u8(m.htype, "htype");
  buf[2] = u8(m.hlen, "hlen");
  buf[3] = u8(m.hops, "hops");
  buf.set(u32(m.xid, "xid"), 4);
  buf.set(u16(m.secs, "secs"), 8);
  buf.set(u16(m.flags, "flags"), 10);
  buf.set(ipv4ToBytes(m.ciaddr), 12);
  buf.set(ipv4ToBytes(m.yiaddr), 16);
  buf.set(ipv4ToBytes(m.siaddr), 20);
  buf.set(ipv4ToBytes(m.giaddr), 24);
  if (m.chaddr.length > 16) throw new RangeError("chaddr longer than 16 bytes");
  buf.set(m.chaddr, 28);
  putText(buf, 44, 64, m.sname, "sname");
  putText(buf, 108, 128, m.file, "file");
  dv.setUint32(236, MAGIC_COOKIE);
  buf.set(opts, 240);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Decoding.

const TYPED_CODES = new Set<number>([
  Opt.subnetMask, Opt.router, Opt.dnsServer, Opt.hostname, Opt.interfaceMtu, Opt.requestedAddress, Opt.leaseTime,
  Opt.messageType, Opt.serverId, Opt.parameterRequestList, Opt.renewalTime, Opt.rebindingTime, Opt.clientId, Opt.rapidCommit,
]);

const OPTION_NAMES: Record<number, string> = {
  1: "subnet mask", 3: "router", 6: "DNS server", 12: "host name", 26: "interface MTU", 50: "requested address",
  51: "lease time", 52: "option overload", 53: "message type", 54: "server identifier", 55: "parameter request list",
  58: "renewal time", 59: "rebinding time", 61: "client identifier", 80: "rapid commit",
};

/**
 * Walk one options area (the options field, or file/sname when overloaded), appending each TLV.
 * Stops on END; a missing END at the end of
 * the buffer is tolerated (some servers omit it), a length running past the end is not.
 */
function walkOptions(b: Uint8Array, start: number, end: number, where: string, into: RawOption[]): void {
  let i = start;
  while (i < end) {
    const code = b[i]!;
    if (code === Opt.pad) {
      i++;
      continue;
    }
    if (code === Opt.end) return;
    if (i + 1 >= end) throw new DecodeError(`${where}: option ${code} at offset ${i} has no length byte`);
    const len = b[i + 1]!;
    if (i + 2 + len > end) throw new DecodeError(`${where}: option ${code} at offset ${i} claims ${len} bytes, only ${end - i - 2} left`);
    into.push({ code, data: b.slice(i + 2, i + 2 + len) });
    i += 2 + len;
  }
}

function need(code: number, data: Uint8Array, ok: boolean, want: string): void {
  if (!ok) throw new DecodeError(`option ${code} (${OPTION_NAMES[code] ?? "?"}) has length ${data.length}, want ${want}`);
}

function readU32(d: Uint8Array): number {
  return ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0;
}

function ips(code: number, d: Uint8Array): string[] {
  need(code, d, d.length > 0 && d.length % 4 === 0, "a non-zero multiple of 4");
  const out: string[] = [];
  for (let i = 0; i < d.length; i += 4) out.push(bytesToIpv4(d, i));
  return out;
}

/** Turn joined TLVs into typed options. A typed option with an impossible length is a DecodeError. */
export function decodeOptionList(list: RawOption[]): DhcpOptions {
  // RFC 3396: several instances of one code are one option, concatenated in order.
  const joined = new Map<number, Uint8Array>();
  const order: number[] = [];
  for (const { code, data } of list) {
    const prev = joined.get(code);
    if (prev === undefined) {
      joined.set(code, data);
      order.push(code);
    } else {
      const cat = new Uint8Array(prev.length + data.length);
      cat.set(prev);
      cat.set(data, prev.length);
      joined.set(code, cat);
    }
  }
  const o: DhcpOptions = { raw: [] };
  for (const code of order) {
    const d = joined.get(code)!;
    switch (code) {
      case Opt.subnetMask:
        need(code, d, d.length === 4, "4");
        o.subnetMask = bytesToIpv4(d);
        break;
      case Opt.router:
        o.routers = ips(code, d);
        break;
      case Opt.dnsServer:
        o.dnsServers = ips(code, d);
        break;
      case Opt.hostname:
        o.hostname = utf8d.decode(d);
        break;
      case Opt.interfaceMtu:
        need(code, d, d.length === 2, "2");
        o.mtu = (d[0]! << 8) | d[1]!;
        break;
      case Opt.requestedAddress:
        need(code, d, d.length === 4, "4");
        o.requestedAddress = bytesToIpv4(d);
        break;
      case Opt.leaseTime:
        need(code, d, d.length === 4, "4");
        o.leaseSeconds = readU32(d);
        break;
      case Opt.messageType:
        need(code, d, d.length === 1, "1");
        o.messageType = d[0]!;
        break;
      case Opt.serverId:
        need(code, d, d.length === 4, "4");
        o.serverId = bytesToIpv4(d);
        break;
      case Opt.parameterRequestList:
        o.parameterRequestList = [...d];
        break;
      case Opt.renewalTime:
        need(code, d, d.length === 4, "4");
        o.renewalSeconds = readU32(d);
        break;
      case Opt.rebindingTime:
        need(code, d, d.length === 4, "4");
        o.rebindingSeconds = readU32(d);
        break;
      case Opt.clientId:
        o.clientId = d;
        break;
      case Opt.rapidCommit:
        need(code, d, d.length === 0, "0");
        o.rapidCommit = true;
        break;
      case Opt.overload:
        break; // consumed by decodeMessage
      default:
        o.raw.push({ code, data: d });
    }
  }
  return o;
}

function readText(b: Uint8Array, offset: number, size: number): string {
  let end = offset;
  while (end < offset + size && b[end] !== 0) end++;
  return utf8d.decode(b.subarray(offset, end));
}

/**
 * Decode a BOOTP/DHCP message (the UDP payload). Throws DecodeError, and only DecodeError, when
 * the bytes are too short, lack the magic cookie, or carry a malformed option.
 * Option overload (52) is honoured: the file and/or sname fields are read as more options and
 * reported as empty strings.
 */
export function decodeMessage(bytes: Uint8Array): DhcpMessage {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError("not a byte array");
  if (bytes.length < DHCP_MIN_LENGTH) throw new DecodeError(`message of ${bytes.length} bytes is shorter than the ${DHCP_MIN_LENGTH} of a DHCP header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(236) !== MAGIC_COOKIE) throw new DecodeError(`no DHCP magic cookie (found 0x${dv.getUint32(236).toString(16).padStart(8, "0")})`);
  const list: RawOption[] = [];
  walkOptions(bytes, 240, bytes.length, "options", list);
  let overload = 0;
  for (const r of list) if (r.code === Opt.overload) {
    need(Opt.overload, r.data, r.data.length === 1, "1");
    overload = r.data[0]!;
  }
  // RFC 2131 §4.1: options, then file (bit 0), then sname (bit 1).
  if (overload & 1) walkOptions(bytes, 108, 236, "file (overloaded)", list);
  if (overload & 2) walkOptions(bytes, 44, 108, "sname (overloaded)", list);
  return {
    op: bytes[0]!,
    htype: bytes[1]!,
    hlen: bytes[2]!,
    hops: bytes[3]!,
    xid: dv.getUint32(4),
    secs: dv.getUint16(8),
    flags: dv.getUint16(10),
    ciaddr: bytesToIpv4(bytes, 12),
    yiaddr: bytesToIpv4(bytes, 16),
    siaddr: bytesToIpv4(bytes, 20),
    giaddr: bytesToIpv4(bytes, 24),
    chaddr: bytes.slice(28, 44),
    sname: overload & 2 ? "" : readText(bytes, 44, 64),
    file: overload & 1 ? "" : readText(bytes, 108, 128),
    options: decodeOptionList(list),
  };
}

/** The hardware address in chaddr as "aa:bb:..", using hlen (capped at 16). */
export function chaddrMac(m: DhcpMessage): string {
  return bytesToMac(m.chaddr.subarray(0, Math.min(m.hlen, 16)));
}

// ---------------------------------------------------------------------------------------------
// Client identifier (option 61).

/**
 * Option 61 from a pod name: type 0 ("not a hardware address", RFC 2132 §9.14) followed by the
 * name's bytes. dnsmasq keys leases by client id, so a pod that re-creates its interface keeps
 * its address, and the lease file shows which pod holds which address.
 */
export function clientIdFromName(name: string): Uint8Array {
  const b = utf8.encode(name);
  const out = new Uint8Array(b.length + 1);
  out.set(b, 1);
  return out;
}

/** Option 61 as type 1 (Ethernet) + the MAC, the form most DHCP clients send. */
export function clientIdFromMac(mac: string): Uint8Array {
  const out = new Uint8Array(7);
  out[0] = HTYPE_ETHERNET;
  out.set(macToBytes(mac), 1);
  return out;
}

// ---------------------------------------------------------------------------------------------
// IPv4 + UDP headers, for the AF_PACKET SOCK_DGRAM socket (the kernel adds/strips the Ethernet
// header; we see and write from the IPv4 header on).

export interface UdpDatagram {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

/** RFC 1071: the ones' complement of the ones' complement sum of 16-bit words. */
export function internetChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * IPv4 header (20 bytes, no options, DF clear, TTL 64 by default) + UDP header + payload, both
 * checksums computed. `id` is the IPv4 identification (any value; the datagram is never fragmented).
 */
export function encodeIpUdp(d: UdpDatagram, opts: { ttl?: number; id?: number } = {}): Uint8Array {
  const udpLen = 8 + d.payload.length;
  const total = 20 + udpLen;
  if (total > 0xffff) throw new RangeError(`datagram of ${total} bytes is too large for IPv4`);
  const b = new Uint8Array(total);
  const dv = new DataView(b.buffer);
  b[0] = 0x45; // version 4, IHL 5 words
  b[1] = 0x10; // DSCP/ECN: "minimize delay", what other DHCP clients send; irrelevant to servers
  dv.setUint16(2, total);
  dv.setUint16(4, (opts.id ?? 0) & 0xffff);
  dv.setUint16(6, 0); // flags + fragment offset
  b[8] = opts.ttl ?? 64;
  b[9] = 17; // UDP
  b.set(ipv4ToBytes(d.src), 12);
  b.set(ipv4ToBytes(d.dst), 16);
  dv.setUint16(10, internetChecksum(b.subarray(0, 20)));
  b.set(u16(d.srcPort, "source port"), 20);
  b.set(u16(d.dstPort, "destination port"), 22);
  dv.setUint16(24, udpLen);
  b.set(d.payload, 28);
  // UDP checksum over the pseudo-header (src, dst, zero, proto, UDP length) and the datagram.
  const sum = new Uint8Array(12 + udpLen);
  sum.set(b.subarray(12, 20));
  sum[9] = 17;
  new DataView(sum.buffer).setUint16(10, udpLen);
  sum.set(b.subarray(20), 12);
  let c = internetChecksum(sum);
  if (c === 0) c = 0xffff; // RFC 768: a computed zero is sent as all ones (zero means "none")
  dv.setUint16(26, c);
  return b;
}

/**
 * Parse an IPv4 packet carrying UDP. Checksums are NOT verified: on veth/VXLAN with checksum
 * offload the kernel hands packet sockets datagrams whose UDP checksum is still partial.
 * Fragments are refused (a DHCP reply is never fragmented on an overlay with a sane MTU).
 */
export function decodeIpUdp(b: Uint8Array): UdpDatagram {
  if (!(b instanceof Uint8Array)) throw new DecodeError("not a byte array");
  if (b.length < 20) throw new DecodeError(`IPv4 packet of ${b.length} bytes is shorter than its header`);
  const version = b[0]! >> 4;
  if (version !== 4) throw new DecodeError(`not IPv4 (version ${version})`);
  const ihl = (b[0]! & 0x0f) * 4;
  if (ihl < 20) throw new DecodeError(`IPv4 header length ${ihl} is below 20`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const total = dv.getUint16(2);
  if (total < ihl || total > b.length) throw new DecodeError(`IPv4 total length ${total} does not fit the ${b.length} bytes received (header ${ihl})`);
  if (b[9] !== 17) throw new DecodeError(`IPv4 protocol ${b[9]} is not UDP`);
  const frag = dv.getUint16(6);
  if (frag & 0x2000 || frag & 0x1fff) throw new DecodeError("IPv4 fragment");
  if (total - ihl < 8) throw new DecodeError("UDP header truncated");
  const udpLen = dv.getUint16(ihl + 4);
  if (udpLen < 8 || udpLen > total - ihl) throw new DecodeError(`UDP length ${udpLen} does not fit the IPv4 payload of ${total - ihl} bytes`);
  return {
    src: bytesToIpv4(b, 12),
    dst: bytesToIpv4(b, 16),
    srcPort: dv.getUint16(ihl),
    dstPort: dv.getUint16(ihl + 2),
    payload: b.slice(ihl + 8, ihl + udpLen),
  };
}
