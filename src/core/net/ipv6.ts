// IPv6 text ↔ 16 bytes, for the routes the client deletes (IPv6 defaults) and netlink dumps.
// Text out is RFC 5952's canonical form (lower case, the longest run of two or more zero groups
// shortened to "::", the first such run on a tie), which is what iproute2 prints.
import { isIpv4 } from "./ipv4.ts";

/** "fe80::1", "2001:db8::", "::" (no zone, no embedded IPv4) → 16 bytes; undefined otherwise. */
export function parseIpv6(s: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F:]+$/.test(s) || s.length > 39) return undefined;
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (t: string) => (t === "" ? [] : t.split(":"));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const all = [...head, ...tail];
  if (!all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  if (halves.length === 1 ? all.length !== 8 : all.length > 7) return undefined;
  const words = [...head, ...Array(8 - all.length).fill("0"), ...tail].map((g) => parseInt(g, 16));
  const b = new Uint8Array(16);
  words.forEach((w, i) => {
    b[2 * i] = w >> 8;
    b[2 * i + 1] = w & 0xff;
  });
  return b;
}

export function formatIpv6(b: Uint8Array): string {
  const w = Array.from({ length: 8 }, (_, i) => (b[2 * i]! << 8) | b[2 * i + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(w);
  return `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
}

/**
 * Whether text is an IPv6 address as node:net's isIP(text) === 6 says (a zone "%eth0" and an
 * embedded IPv4 "::ffff:1.2.3.4" allowed) — without loading node:net, which costs a client-init
 * more start-up than anything else it imports.
 */
export function isIpv6Literal(text: string): boolean {
  const s = text.replace(/%[^%]+$/, "");
  const v4 = /^(.*:)([0-9.]+)$/.exec(s);
  return parseIpv6(v4 && isIpv4(v4[2]!) ? `${v4[1]}0:0` : s) !== undefined;
}
