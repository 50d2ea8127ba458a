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
  checkInterfaceName,
  editDistance,
  isIP,
  leaseSeconds,
  ok,
  parseAddressList,
  parseBoolean,
  parseCidrList,
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
  NOT_ROUTED_TO_GATEWAY_CIDRS: (t) => parseCidrList(t),
  VXLAN_ID: integer(1, 16777215),
  VXLAN_PORT: integer(0, 65535),
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
  VPN_LOCAL_CIDRS: (t) => parseCidrList(t),
  DNS_LOCAL_CIDRS: (t) => {
    // Despite its name (kept from the reference) this lists DNS domains, e.g. "local cluster.local".
    const out: string[] = [];
    const errors: string[] = [];
    for (const item of splitList(t)) {
      if (item.includes("/") || isIP(item)) {
        errors.push(`${show(item)} is an address; DNS_LOCAL_CIDRS lists DNS domains despite its name (for example "local cluster.local")`);
        continue;
      }
      const d = checkDnsName(item.replace(/^\./, ""));
      if (!d.ok) errors.push(d.error);
      else if (!out.includes(d.value)) out.push(d.value);
    }
    return errors.length ? bad(errors.join("; ")) : ok(out);
  },
  DNS_LOCAL_SERVER: (t) => {
    const s = trimmed(t);
    return s === "" || isIP(s) ? ok(s) : bad(`${show(s)} is not an IPv4 or IPv6 address`);
  },
  RESOLV_CONF_COPY: (t) => {
    const s = trimmed(t);
    if (!s.startsWith("/")) return bad(`${show(s)} is not an absolute path`);
    if (s.endsWith("/")) return bad(`${show(s)} names a directory; give a file path`);
    return ok(s);
  },
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
    return ok(s);
  },
  GATEWAY_LOG_QUERIES: boolean,
  FIREWALL_BACKEND: (t) => {
    const s = trimmed(t).toLowerCase();
    return (FIREWALL_BACKENDS as readonly string[]).includes(s)
      ? ok(s as FirewallBackendSetting)
      : bad(`${show(t)} is not one of ${FIREWALL_BACKENDS.join(", ")}`);
  },
  CLIENT_PROBE_INTERVAL: (t) => {
    const s = trimmed(t);
    if (!/^([0-9]+(\.[0-9]*)?|\.[0-9]+)$/.test(s)) return bad(`${show(t)} is not a number of seconds (for example 2 or 0.5)`);
    const n = Number(s);
    if (!(n > 0)) return bad(`${s} must be greater than 0 seconds`);
    return ok(n);
  },
  SIDECAR_EXIT_WHEN_POD_DONE: (t) => {
    const s = trimmed(t).toLowerCase();
    if (s === "auto" || s === "on" || s === "off") return ok(s as TriState);
    const b = parseBoolean(s);
    return b.ok ? ok<TriState>(b.value ? "on" : "off") : bad(`${show(t)} is not auto, on or off (or a boolean)`);
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
  for (const key of SETTING_KEYS) {
    const d = key === upper ? 0 : editDistance(upper, key);
    if (d < bestD) {
      bestD = d;
      best = key;
    }
  }
  return bestD <= Math.min(2, Math.floor(k.length / 4)) || bestD === 0 ? best : undefined;
}

export function validateSettings(raw: Readonly<Record<string, RawSetting>>): SettingsValidation {
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const values: Partial<Record<SettingKey, unknown>> = {};

  for (const key of SETTING_KEYS) {
    const r = raw[key];
    if (!r) {
      issues.push({ file: "settings", key, message: "is not set in any layer (the built-in defaults should set it)" });
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

  for (const [k, r] of Object.entries(raw)) {
    if (isSettingKey(k)) continue;
    const s = suggestKey(k);
    warnings.push(at(r, k, s ? `unknown setting, ignored; did you mean ${s}?` : `unknown setting, ignored (it can still be used as $${k} in later values)`));
  }

  if (issues.length) return { settings: undefined, values: values as Partial<Settings>, issues, warnings };
  const settings = values as Settings;
  warnings.push(...crossChecks(settings, raw));
  return { settings, values: settings, issues, warnings };
}

/** Checks between keys. They warn: each case is a setting that does nothing, not one that breaks. */
function crossChecks(s: Settings, raw: Readonly<Record<string, RawSetting>>): ConfigIssue[] {
  const w: ConfigIssue[] = [];
  const here = (key: SettingKey, message: string): void => void w.push(at(raw[key]!, key, message));
  if (s.VPN_INTERFACE === "") {
    if (s.SNAT_IP !== "") here("SNAT_IP", "has no effect without VPN_INTERFACE (SNAT applies to traffic leaving the VPN interface)");
    if (s.VPN_BLOCK_OTHER_TRAFFIC && raw.VPN_BLOCK_OTHER_TRAFFIC?.source.kind !== "default")
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
