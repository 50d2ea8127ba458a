// Pure readers for the value types settings use: numbers, booleans, IPv4/IPv6 addresses, CIDRs,
// interface names, DNS names, lists. Each returns a value or a message that says what is wrong
// with the text and what is accepted instead; the caller adds the key and the location.
import { checkIpv4, formatPrefix4, parsePrefix4 } from "../net/ipv4.ts";
import { formatIpv6, parseIpv6 } from "../net/ipv6.ts";

export type Checked<T> = { ok: true; value: T; warnings?: string[] } | { ok: false; error: string };

export const ok = <T>(value: T, warnings?: string[]): Checked<T> => (warnings?.length ? { ok: true, value, warnings } : { ok: true, value });
export const bad = <T = never>(error: string): Checked<T> => ({ ok: false, error });

/** Show a value in a message: quoted, control characters escaped, long values cut to `max` characters. */
export function show(s: string, max = 60): string {
  const cut = s.length > max ? s.slice(0, max - 3) + "..." : s;
  return JSON.stringify(cut);
}

/**
 * The one number syntax of every numeric setting and command-line flag: decimal digits, with a
 * fractional part only where `fraction` allows it ("0.5"). No sign, exponent, hex, "Infinity",
 * or leading zero: tools we hand numbers to (iproute2's get_u32, inet_aton) read "042" as octal
 * 34, so "042" would mean two things; Number() would take "0x10", "1e9" and " ".
 */
export function parseDecimal(text: string, min: number, max: number, opts: { fraction?: boolean; unit?: string } = {}): Checked<number> {
  const s = text.trim();
  const range = `${min}..${max}${opts.unit ? " " + opts.unit : ""}`;
  const what = opts.fraction ? "a decimal number" : "a whole number";
  if (s === "") return bad(`is empty; expected ${what} ${range}`);
  if (/^[+-]/.test(s) && /^[+-][0-9.]+$/.test(s)) return bad(`${show(s)} has a sign; write the number alone (${range})`);
  const re = opts.fraction ? /^[0-9]+(\.[0-9]+)?$/ : /^[0-9]+$/;
  if (!re.test(s)) {
    const hint = opts.fraction && /^[0-9]*\.[0-9]*$/.test(s) && s !== "." ? `; write digits on both sides of the point (for example ${s.startsWith(".") ? "0" + s : s + "0"})` : "";
    return bad(`${show(s)} is not ${what} (expected ${range})${hint}`);
  }
  const whole = s.split(".")[0]!;
  if (whole.length > 1 && whole.startsWith("0")) return bad(`${show(s)} has a leading zero (octal in some tools); write ${String(Number(s))}`);
  // Long digit strings are out of every range; say so without building a huge number.
  const n = whole.length > 16 ? Infinity : Number(s);
  if (n < min || n > max) return bad(`${s.length > 24 ? s.slice(0, 21) + "..." : s} is out of range ${range}`);
  return ok(n);
}

/** A whole decimal number in [min, max] (see parseDecimal). */
export function parseInteger(text: string, min: number, max: number): Checked<number> {
  return parseDecimal(text, min, max);
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

/**
 * The problems of a list's items, for one message: the first three and a count of the rest (a
 * list of thousands of bad items must not become a message of thousands of lines).
 */
export function joinErrors(errors: readonly string[]): string {
  const shown = errors.slice(0, 3).join("; ");
  return errors.length > 3 ? `${shown}; and ${errors.length - 3} more` : shown;
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

/**
 * An IPv6 CIDR "addr/len" in RFC 5952 form (what `ip -6 route` prints); a bare address means /128.
 * Host bits below the prefix are cleared with a warning, as for IPv4.
 */
export function parseCidr6(text: string): Checked<string> {
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const lenText = slash < 0 ? "128" : text.slice(slash + 1);
  const b = parseIpv6(addrText);
  if (!b) return bad(`${show(text)} is not an IPv6 CIDR (addr/len)`);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > 128) return bad(`${show(text)} has an invalid prefix length (0..128)`);
  const len = Number(lenText);
  const masked = b.map((x, i) => (i * 8 >= len ? 0 : i * 8 + 8 <= len ? x : x & (0xff << (8 - (len - i * 8))) & 0xff));
  const canonical = `${formatIpv6(masked)}/${len}`;
  if (masked.some((x, i) => x !== b[i])) return ok(canonical, [`${text} has host bits set; using ${canonical}`]);
  return ok(canonical);
}

/** A list of CIDRs read by `parseItem`, canonical; duplicates are dropped with a warning (a Set: linear in the list). */
function parseCidrListWith(text: string, parseItem: (item: string) => Checked<string>): Checked<string[]> {
  const seen = new Set<string>();
  const warnings: string[] = [];
  const errors: string[] = [];
  for (const item of splitList(text)) {
    const c = parseItem(item);
    if (!c.ok) {
      errors.push(c.error);
      continue;
    }
    warnings.push(...(c.warnings ?? []));
    if (seen.has(c.value)) warnings.push(`${c.value} is listed twice; using it once`);
    else seen.add(c.value);
  }
  if (errors.length) return bad(joinErrors(errors));
  return ok([...seen], warnings);
}

/** A list of IPv4 and IPv6 CIDRs, canonical; duplicates are dropped with a warning. */
export function parseCidrList46(text: string): Checked<string[]> {
  return parseCidrListWith(text, (item) => (item.includes(":") ? parseCidr6(item) : parseCidr4(item)));
}

/** A list of IPv4 CIDRs, canonical; duplicates are dropped with a warning. */
export function parseCidrList(text: string): Checked<string[]> {
  return parseCidrListWith(text, parseCidr4);
}

/** A list of IPv4/IPv6 addresses (as the webhook passes K8S_DNS_ips: space-separated). */
export function parseAddressList(text: string): Checked<string[]> {
  const out = new Set<string>(); // insertion order; linear in the list
  const errors: string[] = [];
  for (const item of splitList(text)) {
    if (!isIP(item)) errors.push(`${show(item)} is not an IPv4 or IPv6 address`);
    else out.add(item);
  }
  if (errors.length) return bad(joinErrors(errors));
  return ok([...out]);
}

/** Ports 1..65535, space/comma separated. */
/** The widest port range a list may hold: each port becomes rules of its own. */
export const MAX_PORT_RANGE = 64;

/**
 * Ports 1..65535, space/comma separated; a range "1194:1197" (as iptables writes it, which the
 * reference passed through) or "1194-1197" stands for each of its ports, at most MAX_PORT_RANGE.
 */
export function parsePortList(text: string): Checked<number[]> {
  const out = new Set<number>();
  const errors: string[] = [];
  for (const item of splitList(text)) {
    const range = /^([0-9]+)[-:]([0-9]+)$/.exec(item);
    if (range) {
      const a = parseInteger(range[1]!, 1, 65535);
      const b = parseInteger(range[2]!, 1, 65535);
      if (!a.ok || !b.ok) errors.push(`port range ${show(item)}: ${!a.ok ? a.error : (b as { error: string }).error}`);
      else if (a.value > b.value) errors.push(`port range ${show(item)} runs backwards; write ${b.value}:${a.value}`);
      else if (b.value - a.value + 1 > MAX_PORT_RANGE)
        errors.push(`port range ${show(item)} holds ${b.value - a.value + 1} ports; at most ${MAX_PORT_RANGE} (each port is a rule of its own)`);
      else for (let p = a.value; p <= b.value; p++) out.add(p);
      continue;
    }
    const p = parseInteger(item, 1, 65535);
    if (!p.ok) errors.push(`port ${p.error}`);
    else out.add(p.value);
  }
  if (errors.length) return bad(joinErrors(errors));
  return ok([...out]);
}

/**
 * Interface names as the kernel's dev_valid_name accepts them — 1..15 bytes (IFNAMSIZ 16 with the
 * NUL), not "." or "..", no '/', ':' or whitespace — and narrower where our outputs need it: no
 * control characters, quotes or backslashes (they would end or escape a quoted string in an nft
 * script), no '#' (ip -batch cuts a line there), no '%' (a kernel name template), and no wildcard: iptables reads `+` as "any interface with this prefix" (`-o +` is
 * every interface) and nft reads a trailing `*` the same way, so a kill switch written for `tun+`
 * accepts more than the VPN. Printable ASCII only, so every tool shows the same name.
 */
export function checkInterfaceName(text: string): Checked<string> {
  const s = text;
  if (s === "") return bad("is empty; expected an interface name");
  if (/[+*]/.test(s))
    return bad(`${show(s)} is a wildcard ('+' and '*' match many interfaces); name the exact interface, for example tun0 or wg0 (the kill switch and its routes need one link)`);
  if (/[\x00-\x1f\x7f]/.test(s)) return bad(`${show(s)} contains a control character, which interface names cannot`);
  if (/[^\x20-\x7e]/.test(s)) return bad(`${show(s)} contains a character outside printable ASCII; interface names here are ASCII`);
  const bytes = s.length;
  if (bytes > 15) return bad(`${show(s)} is ${bytes} bytes long; interface names have at most 15`);
  if (s === "." || s === "..") return bad(`${show(s)} is not a valid interface name`);
  if (/[/:\s]/.test(s)) return bad(`${show(s)} contains '/', ':' or whitespace, which interface names cannot`);
  if (/["'\\`]/.test(s)) return bad(`${show(s)} contains a quote or backslash, which interface names here cannot`);
  // The kernel reads '%' as a name template (tun%d: the next free number), never as a name.
  if (s.includes("%")) return bad(`${show(s)} contains '%', which the kernel reads as a name template (tun%d); name the exact interface`);
  // `ip -batch` cuts a line at '#' wherever it stands (iproute2's getcmdline): no way to quote it.
  if (s.includes("#")) return bad(`${show(s)} contains '#', which interface names here cannot (ip reads it as a comment)`);
  return ok(s);
}

/**
 * An absolute, normalised path of a file we write: no empty, "." or ".." components, no trailing
 * '/', and only the portable filename characters (letters, digits, '.', '_', '-') between the
 * slashes, so it reaches dnsmasq's configuration and log lines as exactly one word.
 */
export function checkFilePath(text: string): Checked<string> {
  const s = text;
  if (!s.startsWith("/")) return bad(`${show(s)} is not an absolute path (it must start with '/')`);
  if (s.endsWith("/")) return bad(`${show(s)} names a directory; give a file path`);
  if (/[^A-Za-z0-9._\/-]/.test(s)) return bad(`${show(s)} contains characters other than letters, digits, '.', '_', '-' and '/'`);
  const parts = s.slice(1).split("/");
  if (parts.some((p) => p === "" || p === "." || p === ".."))
    return bad(`${show(s)} is not a normalised path (no '//', '/./' or '/../'); write it as ${show(normalisePath(s))}`);
  if (s.length > 4095) return bad(`${show(s)} is longer than PATH_MAX (4095)`);
  return ok(s);
}

/** "/a//b/./c/../d" → "/a/b/d" (lexically, as a hint in a message). */
function normalisePath(s: string): string {
  const out: string[] = [];
  for (const p of s.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") out.pop();
    else out.push(p);
  }
  return "/" + out.join("/");
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
  const m = /^(0|[1-9][0-9]{0,9})([smhdw]?)$/.exec(s);
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
