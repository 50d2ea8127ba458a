// Pure readers for the value types settings use: numbers, booleans, IPv4/IPv6 addresses, CIDRs,
// interface names, DNS names, lists. Each returns a value or a message that says what is wrong
// with the text and what is accepted instead; the caller adds the key and the location.
import { checkIpv4, formatPrefix4, parsePrefix4 } from "../net/ipv4.ts";

export type Checked<T> = { ok: true; value: T; warnings?: string[] } | { ok: false; error: string };

export const ok = <T>(value: T, warnings?: string[]): Checked<T> => (warnings?.length ? { ok: true, value, warnings } : { ok: true, value });
export const bad = <T = never>(error: string): Checked<T> => ({ ok: false, error });

/** Show a value in a message: quoted, control characters escaped, long values cut. */
export function show(s: string): string {
  const cut = s.length > 60 ? s.slice(0, 57) + "..." : s;
  return JSON.stringify(cut);
}

/**
 * A whole decimal number in [min, max]. Leading zeros are refused: tools we hand numbers to
 * (iproute2's get_u32, inet_aton) read "042" as octal 34, so "042" would mean two things.
 */
export function parseInteger(text: string, min: number, max: number): Checked<number> {
  const s = text.trim();
  if (s === "") return bad(`is empty; expected a whole number ${min}..${max}`);
  if (!/^[+-]?[0-9]+$/.test(s)) return bad(`${show(s)} is not a whole number (expected ${min}..${max})`);
  if (/^[+-]/.test(s)) return bad(`${show(s)} has a sign; write the number alone (${min}..${max})`);
  if (s.length > 1 && s.startsWith("0")) return bad(`${show(s)} has a leading zero (octal in some tools); write ${String(Number(s))}`);
  const n = Number(s);
  if (n < min || n > max) return bad(`${s} is out of range ${min}..${max}`);
  return ok(n);
}

const TRUE = new Set(["true", "yes", "on", "1"]);
const FALSE = new Set(["false", "no", "off", "0"]);

/** true/false/yes/no/on/off/1/0 in any case (YAML turns a chart's `yes` into "true"). */
export function parseBoolean(text: string): Checked<boolean> {
  const s = text.trim().toLowerCase();
  if (TRUE.has(s)) return ok(true);
  if (FALSE.has(s)) return ok(false);
  return bad(`${show(text)} is not a boolean (use true/false, yes/no, on/off or 1/0)`);
}

/** Items of a list written space- and/or comma-separated ("a b", "a,b", "a, b"). */
export function splitList(text: string): string[] {
  return text.split(/[\s,]+/).filter((x) => x !== "");
}

/** Dotted-quad IPv4 as four numbers; decimal only, no leading zeros (inet_aton reads them as octal). */
export function parseIPv4(text: string): Checked<[number, number, number, number]> {
  // the rules live in core/net/ipv4.ts (one reader of IPv4 for the whole program); the words here
  const c = checkIpv4(text);
  if (!c.ok && c.why === "form") return bad(`${show(text)} is not an IPv4 address (a.b.c.d)`);
  if (!c.ok && c.why === "leading-zero") return bad(`${show(text)} has an octet with a leading zero (read as octal by some tools)`);
  if (!c.ok) return bad(`${show(text)} has an octet above 255`);
  const n = c.value;
  return ok([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

export function isIPv4(text: string): boolean {
  return parseIPv4(text).ok;
}

/** RFC 4291 text forms: eight groups, one `::`, an embedded IPv4 tail. No zone ids. */
export function isIPv6(text: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return false;
  const halves = text.split("::");
  if (halves.length > 2) return false;
  const groups = (h: string): string[] | undefined => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return false;
  const all = [...head, ...tail];
  let count = all.length;
  const last = all[all.length - 1];
  if (last !== undefined && last.includes(".")) {
    if (!isIPv4(last)) return false;
    all.pop();
    count += 1; // an IPv4 tail fills two groups
  }
  if (!all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  return halves.length === 2 ? count <= 7 : count === 8;
}

export function isIP(text: string): boolean {
  return isIPv4(text) || isIPv6(text);
}

/**
 * An IPv4 CIDR "a.b.c.d/len"; a bare address means /32 (as `ip route` reads it). Host bits set
 * below the prefix ("10.1.2.3/8") are cleared with a warning: the writer's intent (that network)
 * is clear, and `ip route add` would refuse the uncleared form at run time.
 */
export function parseCidr4(text: string): Checked<string> {
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const lenText = slash < 0 ? "32" : text.slice(slash + 1);
  const addr = parseIPv4(addrText);
  if (!addr.ok) {
    if (isIPv6(addrText)) return bad(`${show(text)} is IPv6; only IPv4 CIDRs are supported here`);
    return bad(`${show(text)} is not an IPv4 CIDR (a.b.c.d/len)`);
  }
  if (!/^(0|[1-9][0-9]?)$/.test(lenText) || Number(lenText) > 32) return bad(`${show(text)} has an invalid prefix length (0..32)`);
  // Validated above (no leading zeros), so the text differs from the canonical form exactly when host bits are set.
  const written = `${addrText}/${lenText}`;
  const canonical = formatPrefix4(parsePrefix4(written)!);
  if (canonical !== written) return ok(canonical, [`${text} has host bits set; using ${canonical}`]);
  return ok(canonical);
}

/** A list of IPv4 CIDRs, canonical; duplicates are dropped with a warning. */
export function parseCidrList(text: string): Checked<string[]> {
  const out: string[] = [];
  const warnings: string[] = [];
  const errors: string[] = [];
  for (const item of splitList(text)) {
    const c = parseCidr4(item);
    if (!c.ok) {
      errors.push(c.error);
      continue;
    }
    warnings.push(...(c.warnings ?? []));
    if (out.includes(c.value)) warnings.push(`${c.value} is listed twice; using it once`);
    else out.push(c.value);
  }
  if (errors.length) return bad(errors.join("; "));
  return ok(out, warnings);
}

/** A list of IPv4/IPv6 addresses (as the webhook passes K8S_DNS_ips: space-separated). */
export function parseAddressList(text: string): Checked<string[]> {
  const out: string[] = [];
  const errors: string[] = [];
  for (const item of splitList(text)) {
    if (!isIP(item)) errors.push(`${show(item)} is not an IPv4 or IPv6 address`);
    else if (!out.includes(item)) out.push(item);
  }
  if (errors.length) return bad(errors.join("; "));
  return ok(out);
}

/** Ports 1..65535, space/comma separated. */
export function parsePortList(text: string): Checked<number[]> {
  const out: number[] = [];
  const errors: string[] = [];
  for (const item of splitList(text)) {
    if (/^[0-9]+[-:][0-9]+$/.test(item)) {
      errors.push(`${show(item)}: port ranges are not supported; list the ports`);
      continue;
    }
    const p = parseInteger(item, 1, 65535);
    if (!p.ok) errors.push(`port ${p.error}`);
    else if (!out.includes(p.value)) out.push(p.value);
  }
  if (errors.length) return bad(errors.join("; "));
  return ok(out);
}

/**
 * Interface names as the kernel's dev_valid_name accepts them: 1..15 bytes (IFNAMSIZ 16 with the
 * NUL), not "." or "..", no '/', ':' or whitespace.
 */
export function checkInterfaceName(text: string): Checked<string> {
  const s = text;
  if (s === "") return bad("is empty; expected an interface name");
  const bytes = new TextEncoder().encode(s).length;
  if (bytes > 15) return bad(`${show(s)} is ${bytes} bytes long; interface names have at most 15`);
  if (s === "." || s === "..") return bad(`${show(s)} is not a valid interface name`);
  if (/[/:\s]/.test(s)) return bad(`${show(s)} contains '/', ':' or whitespace, which interface names cannot`);
  return ok(s);
}

/**
 * A DNS name: dot-separated labels of letters, digits, '-' and '_' (service records use '_'),
 * 1..63 characters each, at most 253 in all; one trailing dot allowed and removed.
 */
export function checkDnsName(text: string): Checked<string> {
  const s = text.endsWith(".") && text.length > 1 ? text.slice(0, -1) : text;
  if (s === "" || s.length > 253) return bad(`${show(text)} is not a DNS name`);
  for (const label of s.split(".")) {
    if (label.length === 0) return bad(`${show(text)} has an empty label (two dots in a row?)`);
    if (label.length > 63) return bad(`${show(text)} has a label longer than 63 characters`);
    if (!/^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$/.test(label))
      return bad(`${show(text)} is not a DNS name (labels are letters, digits and '-', not starting or ending with '-')`);
  }
  return ok(s);
}

/** A dnsmasq lease time: N (seconds), Nm, Nh, Nd, Nw or "infinite"; seconds, or "infinite". */
export function leaseSeconds(text: string): number | "infinite" | undefined {
  const s = text.trim().toLowerCase();
  if (s === "infinite") return "infinite";
  const m = /^(0|[1-9][0-9]*)([smhdw]?)$/.exec(s);
  if (!m) return undefined;
  const mult: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  return Number(m[1]) * mult[m[2]!]!;
}

/** Levenshtein distance, for "did you mean" on misspelt keys. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}
