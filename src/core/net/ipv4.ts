// Minimal IPv4 prefix arithmetic: the client's route planner (which destinations a route the CNI
// installed already covers), and the canonical "network/length" form every CIDR is written in.

export interface Prefix4 {
  net: number; // unsigned 32-bit network address
  len: number;
}

export function parseIpv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return undefined;
    n = n * 256 + o;
  }
  return n;
}

export function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

function mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** "10.0.0.0/8", "10.1.2.3" (as /32) or "default" (as /0); undefined when not IPv4. */
export function parsePrefix4(s: string): Prefix4 | undefined {
  if (s === "default") return { net: 0, len: 0 };
  const [addr, lenText] = s.split("/");
  const a = parseIpv4(addr ?? "");
  if (a === undefined) return undefined;
  const len = lenText === undefined ? 32 : /^\d{1,2}$/.test(lenText) ? Number(lenText) : NaN;
  if (!(len >= 0 && len <= 32)) return undefined;
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
