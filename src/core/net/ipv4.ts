// The one IPv4/CIDR module: dotted-quad text ↔ numbers and bytes, prefixes in their canonical
// "network/length" form, containment. Every reader of IPv4 text (settings, nat.conf, the planners,
// the DHCP and netlink codecs, the client roles) goes through checkIpv4, so they all agree:
// decimal only, four octets 0..255, no leading zeros — inet_aton and iproute2's get_addr read
// "010" as octal 8, so "10.0.0.010" would mean one address here and another there.

export interface Prefix4 {
  net: number; // unsigned 32-bit network address
  len: number;
}

export type Ipv4Check = { ok: true; value: number } | { ok: false; why: "form" | "leading-zero" | "range" };

/** Why `s` is or is not an IPv4 address; the caller words the message. */
export function checkIpv4(s: string): Ipv4Check {
  const parts = s.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^[0-9]{1,3}$/.test(p))) return { ok: false, why: "form" };
  if (parts.some((p) => p.length > 1 && p.startsWith("0"))) return { ok: false, why: "leading-zero" };
  let n = 0;
  for (const p of parts) {
    const o = Number(p);
    if (o > 255) return { ok: false, why: "range" };
    n = n * 256 + o;
  }
  return { ok: true, value: n };
}

/** The address as an unsigned 32-bit number; undefined unless `s` is a valid dotted quad. */
export function parseIpv4(s: string): number | undefined {
  const c = checkIpv4(s);
  return c.ok ? c.value : undefined;
}

export function isIpv4(s: string): boolean {
  return checkIpv4(s).ok;
}

export function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

/** "172.16.0.5" → its 4 bytes (network order); throws RangeError otherwise (an encode-side bug). */
export function ipv4Bytes(s: string): Uint8Array {
  const n = parseIpv4(s);
  if (n === undefined) throw new RangeError(`not an IPv4 address: ${JSON.stringify(s)}`);
  return Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

export function formatIpv4Bytes(b: Uint8Array, offset = 0): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

function mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** "10.0.0.0/8", "10.1.2.3" (as /32) or "default" (as /0); undefined when not IPv4. Host bits are cleared. */
export function parsePrefix4(s: string): Prefix4 | undefined {
  if (s === "default") return { net: 0, len: 0 };
  const slash = s.indexOf("/");
  const a = parseIpv4(slash < 0 ? s : s.slice(0, slash));
  if (a === undefined) return undefined;
  const lenText = slash < 0 ? "32" : s.slice(slash + 1);
  // same rule for the length: "/08" is refused
  if (!/^(0|[1-9][0-9]?)$/.test(lenText) || Number(lenText) > 32) return undefined;
  const len = Number(lenText);
  return { net: (a & mask(len)) >>> 0, len };
}

/** The canonical text form: network address / length (host bits cleared). */
export function formatPrefix4(p: Prefix4): string {
  return `${formatIpv4(p.net)}/${p.len}`;
}

/** Whether `outer` contains all of `inner`. */
export function prefixContains(outer: Prefix4, inner: Prefix4): boolean {
  return outer.len <= inner.len && ((inner.net & mask(outer.len)) >>> 0) === outer.net;
}
