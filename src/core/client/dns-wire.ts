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
