// The netlink wire format: message headers (struct nlmsghdr), attributes (struct nlattr/rtattr,
// 4-byte aligned TLVs, nestable) and error/ACK messages (struct nlmsgerr with the extended-ACK
// attributes). Pure: bytes in, values out. All integers are host byte order (little-endian on
// every platform we ship) unless an attribute is defined in network order.
import {
  NLA_F_NESTED,
  NLA_TYPE_MASK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
} from "./constants.ts";
import { formatIpv4, ipv4Bytes, parseIpv4 } from "../net/ipv4.ts";
import { formatIpv6, parseIpv6 } from "../net/ipv6.ts";

export class NetlinkDecodeError extends Error {
  override name = "NetlinkDecodeError";
}

export interface NlHeader {
  type: number;
  flags: number;
  seq: number;
  /** Port id of the sender (0 for the kernel). */
  pid: number;
}

export interface NlMessage {
  header: NlHeader;
  /** The bytes after the 16-byte header, up to nlmsg_len. */
  payload: Uint8Array;
}

export const align4 = (n: number): number => (n + 3) & ~3;

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
// Little-endian reads and writes by hand on the hot paths (every message and attribute of every
// dump and request): a DataView per attribute, and `.buffer` on a small new Uint8Array (which
// makes JSC give it a separate ArrayBuffer), cost more than the arithmetic.
const le16 = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8);
const le32 = (b: Uint8Array, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
function put16(b: Uint8Array, o: number, x: number): void {
  b[o] = x & 0xff;
  b[o + 1] = (x >>> 8) & 0xff;
}
function put32(b: Uint8Array, o: number, x: number): void {
  b[o] = x & 0xff;
  b[o + 1] = (x >>> 8) & 0xff;
  b[o + 2] = (x >>> 16) & 0xff;
  b[o + 3] = (x >>> 24) & 0xff;
}
const utf8 = new TextDecoder();

/** One netlink message: header, fixed part, attributes (each already aligned by AttrWriter). */
export function encodeMessage(h: NlHeader, body: Uint8Array): Uint8Array {
  const len = NLMSG_HDRLEN + body.length;
  const out = new Uint8Array(align4(len));
  put32(out, 0, len);
  put16(out, 4, h.type);
  put16(out, 6, h.flags);
  put32(out, 8, h.seq >>> 0);
  put32(out, 12, h.pid >>> 0);
  out.set(body, NLMSG_HDRLEN);
  return out;
}

/** Every message in one datagram (a dump part can hold many). */
export function decodeMessages(buf: Uint8Array): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = le32(buf, off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) throw new NetlinkDecodeError(`netlink message at offset ${off}: length ${len} does not fit in ${buf.length - off} bytes`);
    out.push({
      header: { type: le16(buf, off + 4), flags: le16(buf, off + 6), seq: le32(buf, off + 8), pid: le32(buf, off + 12) },
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

// ---------------------------------------------------------------- attributes

export interface Attr {
  /** Type without the NESTED/NET_BYTEORDER flag bits. */
  type: number;
  nested: boolean;
  data: Uint8Array;
}

export function decodeAttrs(buf: Uint8Array): Attr[] {
  const out: Attr[] = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = le16(buf, off);
    const rawType = le16(buf, off + 2);
    if (len < 4 || off + len > buf.length) throw new NetlinkDecodeError(`attribute ${rawType & NLA_TYPE_MASK} at offset ${off}: length ${len} does not fit in ${buf.length - off} bytes`);
    out.push({ type: rawType & NLA_TYPE_MASK, nested: (rawType & NLA_F_NESTED) !== 0, data: buf.subarray(off + 4, off + len) });
    off += align4(len);
  }
  return out;
}

export function attrU8(a: Attr): number {
  need(a, 1);
  return a.data[0]!;
}
export function attrU16(a: Attr): number {
  need(a, 2);
  return le16(a.data, 0);
}
export function attrU16be(a: Attr): number {
  need(a, 2);
  return dv(a.data).getUint16(0, false);
}
export function attrU32(a: Attr): number {
  need(a, 4);
  return le32(a.data, 0);
}
export function attrString(a: Attr): string {
  const z = a.data.indexOf(0);
  return utf8.decode(z < 0 ? a.data : a.data.subarray(0, z));
}
const HEX = Array.from({ length: 256 }, (_, i) => (i < 16 ? "0" : "") + i.toString(16));
export function attrMac(a: Attr): string {
  let s = "";
  for (let i = 0; i < a.data.length; i++) s += (i ? ":" : "") + HEX[a.data[i]!]!;
  return s;
}
export function attrIp(a: Attr): string {
  return formatIp(a.data);
}
function need(a: Attr, n: number): void {
  if (a.data.length < n) throw new NetlinkDecodeError(`attribute ${a.type}: ${a.data.length} bytes, expected at least ${n}`);
}

export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return formatIpv4(dv(b).getUint32(0, false));
  if (b.length === 16) return formatIpv6(b);
  throw new NetlinkDecodeError(`an address of ${b.length} bytes is neither IPv4 nor IPv6`);
}

/** IPv4 or IPv6 text → its bytes; throws on anything else. */
export function ipBytes(s: string): Uint8Array {
  if (parseIpv4(s) !== undefined) return ipv4Bytes(s);
  const v6 = parseIpv6(s);
  if (v6) return v6;
  throw new NetlinkDecodeError(`${JSON.stringify(s)} is not an IPv4 or IPv6 address`);
}

export function macBytes(s: string): Uint8Array {
  const parts = s.split(":");
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) throw new NetlinkDecodeError(`${JSON.stringify(s)} is not a MAC address`);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/** Builds a run of attributes, each padded to 4 bytes. */
export class AttrWriter {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  bytes(type: number, data: Uint8Array): this {
    const len = 4 + data.length;
    const b = new Uint8Array(align4(len));
    put16(b, 0, len);
    put16(b, 2, type);
    b.set(data, 4);
    this.parts.push(b);
    this.size += b.length;
    return this;
  }
  u8(type: number, x: number): this {
    return this.bytes(type, Uint8Array.of(x));
  }
  u16(type: number, x: number): this {
    const b = new Uint8Array(2);
    put16(b, 0, x);
    return this.bytes(type, b);
  }
  u16be(type: number, x: number): this {
    const b = new Uint8Array(2);
    dv(b).setUint16(0, x, false);
    return this.bytes(type, b);
  }
  u32(type: number, x: number): this {
    const b = new Uint8Array(4);
    put32(b, 0, x >>> 0);
    return this.bytes(type, b);
  }
  /** NUL-terminated, as the kernel's NLA_STRING/NLA_NUL_STRING policies accept. */
  string(type: number, s: string): this {
    const t = new TextEncoder().encode(s);
    const b = new Uint8Array(t.length + 1);
    b.set(t);
    return this.bytes(type, b);
  }
  ip(type: number, s: string): this {
    return this.bytes(type, ipBytes(s));
  }
  mac(type: number, s: string): this {
    return this.bytes(type, macBytes(s));
  }
  nest(type: number, fill: (w: AttrWriter) => void): this {
    const w = new AttrWriter();
    fill(w);
    // iproute2 (addattr_nest) does not set NLA_F_NESTED for IFLA_LINKINFO/IFLA_INFO_DATA, and
    // the kernel accepts both; we match it so captured requests compare byte for byte.
    return this.bytes(type, w.finish());
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

/** A fixed-size struct followed by attributes. */
export function concat(fixed: Uint8Array, attrs: Uint8Array): Uint8Array {
  const out = new Uint8Array(fixed.length + attrs.length);
  out.set(fixed);
  out.set(attrs, fixed.length);
  return out;
}

// ---------------------------------------------------------------- errors and ACKs

export interface NlError {
  /** 0 for an ACK, else the positive errno. */
  errno: number;
  /** The header of the request it answers. */
  request: NlHeader;
  /** NLMSGERR_ATTR_MSG: the kernel's extended-ACK text, when it gave one. */
  message?: string;
  /** NLMSGERR_ATTR_OFFS: offset of the offending attribute in the request. */
  offset?: number;
}

/** struct nlmsgerr { int error; struct nlmsghdr msg; [payload unless capped]; [ext-ack TLVs] }. */
export function decodeError(m: NlMessage): NlError {
  const p = m.payload;
  if (p.length < 4 + NLMSG_HDRLEN) throw new NetlinkDecodeError(`NLMSG_ERROR of ${p.length} bytes is too short`);
  const v = dv(p);
  const error = v.getInt32(0, true);
  const req = { type: v.getUint16(8, true), flags: v.getUint16(10, true), seq: v.getUint32(12, true), pid: v.getUint32(16, true) };
  const out: NlError = { errno: error === 0 ? 0 : -error, request: req };
  if (m.header.flags & NLM_F_ACK_TLVS) {
    // Without NLM_F_CAPPED the whole request is echoed before the TLVs.
    const reqLen = v.getUint32(4, true);
    const tlvStart = 4 + (m.header.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(reqLen));
    for (const a of decodeAttrs(p.subarray(Math.min(tlvStart, p.length)))) {
      if (a.type === NLMSGERR_ATTR_MSG) out.message = attrString(a);
      else if (a.type === NLMSGERR_ATTR_OFFS) out.offset = attrU32(a);
    }
  }
  return out;
}

/** The top-level attribute types of a message after its fixed part (for comparing requests). */
export function attrTypes(m: NlMessage, fixedLen: number): number[] {
  return decodeAttrs(m.payload.subarray(fixedLen)).map((a) => a.type);
}
