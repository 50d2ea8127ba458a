// Typed validation of the layered settings: one rule per key of Settings (types.ts), then the
// checks that involve several keys. Every problem found is reported, each at the file and line
// where the value was set; unknown keys are warnings (a typo must not stop a pod, but it must
// be visible), with the nearest known key suggested.
import { parsePrefix4, prefixContains } from "../net/ipv4.ts";
import type { ConfigIssue } from "../errors.ts";
import type { ExpansionRef } from "./parse.ts";
import type { FirewallBackendSetting, SettingKey, SettingSource, Settings, TriState } from "./types.ts";
import {
  bad,
  checkDnsName,
  checkFilePath,
  checkInterfaceName,
  editDistance,
  isIP,
  joinErrors,
  leaseSeconds,
  ok,
  parseAddressList,
  parseBoolean,
  parseCidr4,
  parseCidrList,
  parseCidrList46,
  parseDecimal,
  parseInteger,
  parseIPv4,
  parsePortList,
  show,
  splitList,
  type Checked,
} from "./values.ts";

/** A value after layering: the text of the winning assignment and where it was made. */
export interface RawSetting {
  value: string;
  /** File for messages: a path, or the name of the built-in defaults. */
  file: string;
  line?: number;
  source: SettingSource;
  /** Expansions that produced the value (to say "from $K8S_DNS_ips" in a message). */
  refs?: readonly ExpansionRef[];
}

export interface SettingsValidation {
  /** Present when there are no issues. */
  settings: Settings | undefined;
  /** The keys that are valid on their own (so nat.conf can be checked while another key is bad). */
  values: Partial<Settings>;
  issues: ConfigIssue[];
  warnings: ConfigIssue[];
}

type Rule<T> = (text: string) => Checked<T>;

const integer = (min: number, max: number): Rule<number> => (t) => parseInteger(t, min, max);
const boolean: Rule<boolean> = (t) => parseBoolean(t);
const trimmed = (t: string): string => t.trim();

const optionalIPv4: Rule<string> = (t) => {
  const s = trimmed(t);
  if (s === "") return ok("");
  const a = parseIPv4(s);
  return a.ok ? ok(s) : bad(a.error);
};

const optionalInterface: Rule<string> = (t) => {
  const s = trimmed(t);
  return s === "" ? ok("") : checkInterfaceName(s);
};

/** dnsmasq keeps lease times in 32 bits; a year is far beyond any pod's life. */
const MAX_LEASE_SECONDS = 365 * 86400;

/**
 * The documented range of every interval and timeout (seconds). Every one is far below the
 * 2^31-1 ms a timer can hold: a longer delay makes setTimeout fire after 1 ms instead, which
 * turned a sidecar's probe loop into a busy loop.
 */
export const RANGES = {
  CLIENT_PROBE_INTERVAL: { min: 0.1, max: 3600 },
  /** gateway-sidecar --firewall-check-interval / $POD_GATEWAY_FIREWALL_CHECK_INTERVAL. */
  FIREWALL_CHECK_INTERVAL: { min: 1, max: 3600 },
  /** gateway-sidecar --route-check-interval / $POD_GATEWAY_ROUTE_CHECK_INTERVAL (kill switch's routing layer). */
  ROUTE_CHECK_INTERVAL: { min: 0.05, max: 60 },
  /** client-sidecar --isolation-check-interval / $POD_GATEWAY_ISOLATION_CHECK_INTERVAL. */
  ISOLATION_CHECK_INTERVAL: { min: 0.1, max: 3600 },
  /** gateway-sidecar --max-failed-checks / $POD_GATEWAY_MAX_FAILED_CHECKS. */
  MAX_FAILED_CHECKS: { min: 1, max: 1000 },
  /** gateway-sidecar --new-pod-hold / $POD_GATEWAY_NEW_POD_HOLD (seconds; 0 turns the first-offer guard off). */
  NEW_POD_HOLD: { min: 0, max: 30 },
} as const;

/** A list of CIDRs that together cover all of IPv4 disables what the setting exists for: an error. */
function notAllOfIPv4(c: Checked<string[]>, why: string): Checked<string[]> {
  if (!c.ok || !coversAllIPv4(c.value)) return c;
  const which = c.value.includes("0.0.0.0/0") ? "0.0.0.0/0 is" : `${excerptList(c.value)} together cover`;
  return bad(`${which} all of IPv4: ${why}`);
}

/**
 * A list for a message: whole when short, else its first items and "… N more" (a value may
 * hold thousands of CIDRs; the message names the setting and its line, not every item). Pure.
 */
export function excerptList(items: readonly string[], max = 4): string {
  if (items.length <= max + 1) return items.join(" ");
  return `${items.slice(0, max).join(" ")} … ${items.length - max} more`;
}

/** Whether the union of the prefixes is 0.0.0.0/0. */
export function coversAllIPv4(cidrs: readonly string[]): boolean {
  const spans = cidrs
    .map((c) => parsePrefix4(c))
    .filter((p) => p !== undefined)
    .map((p) => [p.net, p.net + 2 ** (32 - p.len)] as const)
    .sort((a, b) => a[0] - b[0]);
  let reached = 0; // everything below `reached` is covered
  for (const [start, end] of spans) {
    if (start > reached) return false;
    reached = Math.max(reached, end);
  }
  return reached >= 2 ** 32;
}

const FIREWALL_BACKENDS: readonly FirewallBackendSetting[] = ["auto", "iptables-nft", "iptables-legacy", "nft"];

/** The rule of every key. A Record over SettingKey, so adding a setting without a rule fails to compile. */
const RULES: { [K in SettingKey]: Rule<Settings[K]> } = {
  GATEWAY_NAME: (t) => {
    // May be empty here: only the client roles need it, and they say so when it is.
    const s = trimmed(t);
    if (s === "" || isIP(s)) return ok(s);
    const d = checkDnsName(s);
    return d.ok ? ok(s) : bad(`${show(s)} is neither a DNS name nor an IP address`);
  },
  // May be empty here: the client roles that resolve the gateway check it.
  K8S_DNS_IPS: (t) => parseAddressList(t),
  // IPv6 CIDRs too (issue 13 §3): the client keeps them on eth0 via its IPv6 gateway.
  NOT_ROUTED_TO_GATEWAY_CIDRS: (t) => {
    const why = "every destination would stay on eth0 and nothing would be routed to the gateway; list the cluster's own CIDRs (pod and service networks)";
    const c = notAllOfIPv4(parseCidrList46(t), why);
    if (c.ok && c.value.some((x) => x.endsWith("/0"))) return bad(`${c.value.find((x) => x.endsWith("/0"))} is all of IPv6: ${why}`);
    return c;
  },
  VXLAN_ID: integer(1, 16777215),
  // Empty meant the kernel's default in the reference (`ip link add ... dstport ""`), like 0.
  VXLAN_PORT: (t) => (t.trim() === "" ? ok(0) : parseInteger(t, 0, 65535)),
  VXLAN_IP_NETWORK: (t) => {
    const s = trimmed(t);
    const parts = s.split(".");
    if (parts.length === 4 || s.includes("/"))
      return bad(`${show(s)}: write only the first three octets of the /24 (for example 172.16.0); the gateway is .1`);
    const a = parseIPv4(`${s}.0`);
    if (parts.length !== 3 || !a.ok) return bad(`${show(s)} is not three octets of an IPv4 /24 (for example 172.16.0)`);
    return ok(s, isPrivate24(a.value) ? [] : [`${s}.0/24 is not a private range (10/8, 172.16/12, 192.168/16, 100.64/10): clients could not reach those internet addresses`]);
  },
  VXLAN_GATEWAY_FIRST_DYNAMIC_IP: integer(2, 254),
  VPN_INTERFACE: optionalInterface,
  VPN_BLOCK_OTHER_TRAFFIC: boolean,
  VPN_TRAFFIC_PORT: (t) => parsePortList(t),
  // IPv6 CIDRs too (issue 13 §3): the gateway routes them via eth0's IPv6 gateway and its kill
  // switch accepts them for IPv6.
  VPN_LOCAL_CIDRS: (t) => {
    const why = "the kill switch would let traffic to every destination leave through eth0 instead of the VPN; list only the networks reached outside the VPN";
    const c = notAllOfIPv4(parseCidrList46(t), why);
    if (c.ok && c.value.some((x) => x.endsWith("/0"))) return bad(`${c.value.find((x) => x.endsWith("/0"))} is all of IPv6: ${why}`);
    return c;
  },
  DNS_LOCAL_CIDRS: (t) => {
    // Despite its name (kept from the reference) this lists DNS domains, e.g. "local cluster.local".
    const out = new Set<string>(); // insertion order; linear in the list
    const errors: string[] = [];
    for (const item of splitList(t)) {
      if (item.includes("/")) {
        // An IPv4 CIDR is a reverse zone (its PTR names) for the cluster DNS, as in the reference.
        const c = parseCidr4(item);
        if (!c.ok) errors.push(`${c.error} (DNS_LOCAL_CIDRS lists DNS domains, or IPv4 CIDRs whose reverse zone the cluster DNS answers)`);
        else out.add(c.value);
        continue;
      }
      if (isIP(item)) {
        errors.push(`${show(item)} is an address; DNS_LOCAL_CIDRS lists DNS domains (for example "local cluster.local") or CIDRs for reverse zones (10.96.0.0/12)`);
        continue;
      }
      const d = checkDnsName(item.replace(/^\./, ""));
      if (!d.ok) errors.push(d.error);
      else out.add(d.value);
    }
    return errors.length ? bad(joinErrors(errors)) : ok([...out]);
  },
  DNS_LOCAL_SERVER: (t) => {
    const s = trimmed(t);
    return s === "" || isIP(s) ? ok(s) : bad(`${show(s)} is not an IPv4 or IPv6 address`);
  },
  RESOLV_CONF_COPY: (t) => checkFilePath(trimmed(t)),
  CONNECTION_RETRY_COUNT: integer(1, 1000000),
  GATEWAY_ENABLE_DNSSEC: boolean,
  IPTABLES_NFT: boolean,
  SNAT_IP: optionalIPv4,
  VPN_INTERFACE_MTU: (t) => {
    const s = trimmed(t);
    if (s === "") return ok(undefined);
    // 576: the smallest datagram every IPv4 host must accept (RFC 791); below it TCP stalls.
    return parseInteger(s, 576, 65535);
  },
  DHCP_LEASE_TIME: (t) => {
    const s = trimmed(t).toLowerCase();
    const secs = leaseSeconds(s);
    if (secs === undefined) return bad(`${show(t)} is not a lease time (seconds, or a number with m, h, d or w, or "infinite")`);
    // dnsmasq raises anything shorter to two minutes without saying so; say it here instead.
    if (secs !== "infinite" && secs < 120) return bad(`${show(t)} is shorter than dnsmasq's minimum of 2m`);
    if (secs !== "infinite" && secs > MAX_LEASE_SECONDS) return bad(`${show(t)} is longer than 365d; write "infinite" for a lease that never expires`);
    return ok(s);
  },
  GATEWAY_LOG_QUERIES: boolean,
  FIREWALL_BACKEND: (t) => {
    const s = trimmed(t).toLowerCase();
    return (FIREWALL_BACKENDS as readonly string[]).includes(s)
      ? ok(s as FirewallBackendSetting)
      : bad(`${show(t)} is not one of ${FIREWALL_BACKENDS.join(", ")}`);
  },
  CLIENT_PROBE_INTERVAL: (t) => parseDecimal(t, RANGES.CLIENT_PROBE_INTERVAL.min, RANGES.CLIENT_PROBE_INTERVAL.max, { fraction: true, unit: "seconds" }),
  SIDECAR_EXIT_WHEN_POD_DONE: (t) => {
    const s = trimmed(t).toLowerCase();
    if (s === "auto" || s === "on" || s === "off") return ok(s as TriState);
    const b = parseBoolean(s);
    return b.ok ? ok<TriState>(b.value ? "on" : "off") : bad(`${show(t)} is not auto, on or off (or a boolean)`);
  },
  GATEWAY_WATCH_PORT: (t) => {
    const r = parseInteger(t, 0, 65535);
    // dnsmasq answers DNS over TCP on the same address: the listener could never bind.
    return r.ok && r.value === 53 ? bad(`${r.value} is dnsmasq's DNS port on the overlay's .1; choose another port, or 0 for off`) : r;
  },
  GATEWAY_METRICS_PORT: integer(0, 65535),
  CLIENT_METRICS_PORT: integer(0, 65535),
  METRICS_BIND_ADDRESS: (t) => {
    const s = trimmed(t);
    return isIP(s) ? ok(s) : bad(`${show(t)} is not an IP address (0.0.0.0 listens on every IPv4 address, :: on every address)`);
  },
};

/** Every setting key, in the order of types.ts (and of the shipped settings.sh). */
export const SETTING_KEYS = Object.keys(RULES) as SettingKey[];

export function isSettingKey(k: string): k is SettingKey {
  return Object.hasOwn(RULES, k);
}

function isPrivate24(o: readonly number[]): boolean {
  const [a, b] = o as [number, number];
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
}

function envNote(raw: RawSetting): string {
  const names = (raw.refs ?? []).filter((r) => r.from === "env").map((r) => "$" + r.name);
  return names.length ? ` (expanded from ${[...new Set(names)].join(", ")})` : "";
}

function at(raw: RawSetting, key: string, message: string): ConfigIssue {
  return { file: raw.file, ...(raw.line !== undefined ? { line: raw.line } : {}), key, message };
}

/** Suggest a known key for a misspelt one: same letters in another case, or at most 2 edits away. */
export function suggestKey(k: string): SettingKey | undefined {
  const upper = k.toUpperCase();
  let best: SettingKey | undefined;
  let bestD = Infinity;
  // Only keys within 2 characters of the length can be within 2 edits: skip the rest unmeasured.
  for (const key of SETTING_KEYS) {
    if (Math.abs(key.length - upper.length) > 2) continue;
    const d = key === upper ? 0 : editDistance(upper, key);
    if (d < bestD) {
      bestD = d;
      best = key;
    }
  }
  return bestD <= Math.min(2, Math.floor(k.length / 4)) || bestD === 0 ? best : undefined;
}

/** Settings whose value is a list: blanks, tabs and newlines separate items there. */
const LIST_KEYS: ReadonlySet<SettingKey> = new Set(["K8S_DNS_IPS", "NOT_ROUTED_TO_GATEWAY_CIDRS", "VPN_TRAFFIC_PORT", "VPN_LOCAL_CIDRS", "DNS_LOCAL_CIDRS"]);

/**
 * No value may carry a control character (below 0x20, DEL): in a file we render it would start a
 * second directive or rule. Lists may be written over several lines (newline, tab, CR of a CRLF
 * file separate items); other values are one line once surrounding blanks are trimmed.
 */
function controlCharacter(key: SettingKey, value: string): string | undefined {
  const text = LIST_KEYS.has(key) ? value.replace(/[\t\n\r]/g, " ") : value.trim();
  const m = /[\x00-\x1f\x7f]/.exec(text);
  if (!m) return undefined;
  const code = m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
  return `contains the control character U+${code} at position ${m.index + 1}; values are plain text${LIST_KEYS.has(key) ? "" : " on one line"}`;
}

/** Unknown keys reported one by one; more are counted in one line (a file of 100,000 of them must not flood the log). */
const MAX_UNKNOWN_WARNINGS = 50;

export function validateSettings(input: ReadonlyMap<string, RawSetting> | Readonly<Record<string, RawSetting>>): SettingsValidation {
  const raw: ReadonlyMap<string, RawSetting> = input instanceof Map ? input : new Map(Object.entries(input));
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const values: Partial<Record<SettingKey, unknown>> = {};

  for (const key of SETTING_KEYS) {
    const r = raw.get(key);
    if (!r) {
      issues.push({ file: "settings", key, message: "is not set in any layer (the built-in defaults should set it)" });
      continue;
    }
    const ctl = controlCharacter(key, r.value);
    if (ctl) {
      issues.push(at(r, key, ctl + envNote(r)));
      continue;
    }
    const res = (RULES[key] as Rule<unknown>)(r.value);
    if (!res.ok) {
      issues.push(at(r, key, res.error + envNote(r)));
      continue;
    }
    for (const w of res.warnings ?? []) warnings.push(at(r, key, w));
    values[key] = res.value;
  }

  let unknown = 0;
  let firstHidden: RawSetting | undefined;
  for (const [k, r] of raw) {
    if (isSettingKey(k)) continue;
    if (++unknown > MAX_UNKNOWN_WARNINGS) {
      firstHidden ??= r;
      continue;
    }
    const s = suggestKey(k);
    const name = k.length > 40 ? k.slice(0, 37) + "..." : k;
    warnings.push(at(r, name, s ? `unknown setting, ignored; did you mean ${s}?` : `unknown setting, ignored (it can still be used as $${name} in later values)`));
  }
  if (firstHidden) warnings.push(at(firstHidden, "settings", `${unknown - MAX_UNKNOWN_WARNINGS} more unknown settings from here on, ignored (not listed one by one)`));

  if (issues.length) return { settings: undefined, values: values as Partial<Settings>, issues, warnings };
  const settings = values as Settings;
  warnings.push(...crossChecks(settings, raw));
  return { settings, values: settings, issues, warnings };
}

/** Checks between keys. They warn: each case is a setting that does nothing, not one that breaks. */
function crossChecks(s: Settings, raw: ReadonlyMap<string, RawSetting>): ConfigIssue[] {
  const w: ConfigIssue[] = [];
  const here = (key: SettingKey, message: string): void => void w.push(at(raw.get(key)!, key, message));
  if (s.VPN_INTERFACE === "") {
    if (s.SNAT_IP !== "") here("SNAT_IP", "has no effect without VPN_INTERFACE (SNAT applies to traffic leaving the VPN interface)");
    if (s.VPN_BLOCK_OTHER_TRAFFIC && raw.get("VPN_BLOCK_OTHER_TRAFFIC")?.source.kind !== "default")
      here("VPN_BLOCK_OTHER_TRAFFIC", "has no effect without VPN_INTERFACE (there is no VPN to confine traffic to)");
  }
  if (s.IPTABLES_NFT && s.FIREWALL_BACKEND === "iptables-legacy")
    here("IPTABLES_NFT", "asks for the nf_tables backend but FIREWALL_BACKEND=iptables-legacy; FIREWALL_BACKEND wins");
  if (s.DNS_LOCAL_SERVER !== "" && s.DNS_LOCAL_CIDRS.length === 0)
    here("DNS_LOCAL_SERVER", "has no effect while DNS_LOCAL_CIDRS is empty");
  // A CIDR that contains the overlay /24 is harmless (the connected /24 on vxlan0 is more
  // specific); one inside it would send part of the overlay out of eth0.
  const overlay = `${s.VXLAN_IP_NETWORK}.0/24`;
  for (const key of ["NOT_ROUTED_TO_GATEWAY_CIDRS", "VPN_LOCAL_CIDRS"] as const)
    for (const c of s[key])
      if (Number(c.split("/")[1]) >= 24 && cidrsOverlap(c, overlay))
        here(key, `${c} lies inside the overlay network ${overlay} (VXLAN_IP_NETWORK): those overlay addresses would be routed out of eth0`);
  return w;
}

/** Two prefixes overlap exactly when one contains the other. */
function cidrsOverlap(a: string, b: string): boolean {
  const p = parsePrefix4(a);
  const q = parsePrefix4(b);
  return p !== undefined && q !== undefined && (prefixContains(p, q) || prefixContains(q, p));
}
