// The few bytes of the DNS wire format (RFC 1035 §4.1) the gateway probe needs: one query out,
// the header of the answer back. Pure, so the probe's encoding is tested without a socket.

export const DNS_CLASS_IN = 1;
/** CHAOS class (RFC 1035 §3.2.4): dnsmasq answers `version.bind` in it locally, never upstream. */
export const DNS_CLASS_CH = 3;
export const DNS_TYPE_A = 1;
export const DNS_TYPE_TXT = 16;

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

/** Encode a standard query (opcode 0, RD set) with one question. Throws on a malformed name. */
export function encodeDnsQuery(id: number, q: DnsQuestion): Uint8Array {
  const labels = q.name.replace(/\.$/, "").split(".").filter((l) => l !== "");
  const enc = new TextEncoder();
  const parts = labels.map((l) => enc.encode(l));
  for (const p of parts) if (p.length > 63) throw new Error(`DNS label too long in ${JSON.stringify(q.name)}`);
  const nameLen = parts.reduce((n, p) => n + 1 + p.length, 0) + 1;
  if (nameLen > 255) throw new Error(`DNS name too long: ${JSON.stringify(q.name)}`);
  const out = new Uint8Array(12 + nameLen + 4);
  const v = new DataView(out.buffer);
  v.setUint16(0, id & 0xffff); // ID
  v.setUint16(2, 0x0100); // QR=0 opcode=0 AA=0 TC=0 RD=1
  v.setUint16(4, 1); // QDCOUNT
  let o = 12;
  for (const p of parts) {
    out[o++] = p.length;
    out.set(p, o);
    o += p.length;
  }
  out[o++] = 0; // root label
  v.setUint16(o, q.type);
  v.setUint16(o + 2, q.class);
  return out;
}

export interface DnsReplyHeader {
  id: number;
  rcode: number;
  answers: number;
}

/**
 * Decode the header of a reply; undefined when the bytes are not a reply to a query (too short,
 * QR bit clear). Never throws: the probe feeds it whatever arrives on the socket.
 */
export function decodeDnsReplyHeader(b: Uint8Array): DnsReplyHeader | undefined {
  if (b.length < 12) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const flags = v.getUint16(2);
  if ((flags & 0x8000) === 0) return undefined;
  return { id: v.getUint16(0), rcode: flags & 0x0f, answers: v.getUint16(6) };
}

const RCODES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];
export function rcodeName(rcode: number): string {
  return RCODES[rcode] ?? `RCODE${rcode}`;
}

export interface DnsAReply extends DnsReplyHeader {
  /** TC: the server cut the answer short (a name with very many addresses). */
  truncated: boolean;
  /** The A records (class IN) of the answer section, in order; CNAME records on the way are skipped. */
  addresses: string[];
}

/** Offset after the (possibly compressed, RFC 1035 §4.1.4) name at `o`, or -1 when it runs off the end or is malformed. */
function skipName(b: Uint8Array, o: number): number {
  for (let labels = 0; labels < 128; labels++) {
    if (o >= b.length) return -1;
    const len = b[o]!;
    if (len === 0) return o + 1;
    if ((len & 0xc0) === 0xc0) return o + 2 <= b.length ? o + 2 : -1; // a pointer ends the name
    if ((len & 0xc0) !== 0) return -1; // 0x40/0x80: extended label types, not in answers we ask for
    o += 1 + len;
  }
  return -1;
}

/**
 * Decode a reply to an A query: its header and the IPv4 addresses of its answer section.
 * Undefined when the bytes are not a reply or a section runs past the end. Never throws: the
 * lookup feeds it whatever arrives on the socket.
 */
export function decodeDnsAReply(b: Uint8Array): DnsAReply | undefined {
  const h = decodeDnsReplyHeader(b);
  if (!h) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 12;
  for (let i = v.getUint16(4); i > 0; i--) {
    o = skipName(b, o);
    if (o < 0 || o + 4 > b.length) return undefined;
    o += 4; // QTYPE, QCLASS
  }
  const addresses: string[] = [];
  for (let i = h.answers; i > 0; i--) {
    o = skipName(b, o);
    if (o < 0 || o + 10 > b.length) return undefined;
    const type = v.getUint16(o);
    const cls = v.getUint16(o + 2);
    const rdlen = v.getUint16(o + 8);
    o += 10;
    if (o + rdlen > b.length) return undefined;
    if (type === DNS_TYPE_A && cls === DNS_CLASS_IN && rdlen === 4) addresses.push(`${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`);
    o += rdlen;
  }
  return { ...h, truncated: (v.getUint16(2) & 0x0200) !== 0, addresses };
}

/** Whether a reply's question section is the query's (names compared without regard to ASCII case, RFC 4343). Pure. */
export function sameDnsQuestion(query: Uint8Array, reply: Uint8Array): boolean {
  if (reply.length < query.length || reply[4] !== query[4] || reply[5] !== query[5]) return false;
  const lower = (c: number) => (c >= 0x41 && c <= 0x5a ? c + 0x20 : c);
  for (let i = 12; i < query.length; i++) if (lower(reply[i]!) !== lower(query[i]!)) return false;
  return true;
}
