// Typed validation of every setting after layering: accepted forms, rejected values with the
// file and line where they were set, unknown keys, checks across keys.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { formatIssue } from "../../src/core/errors.ts";
import { parseSettings } from "../../src/core/settings/parse.ts";
import { resolveConfig } from "../../src/core/settings/resolve.ts";
import { SETTING_KEYS, suggestKey, validateSettings } from "../../src/core/settings/schema.ts";
import type { Settings } from "../../src/core/settings/types.ts";
import { checkInterfaceName, isIPv6, leaseSeconds, parseCidr4 } from "../../src/core/settings/values.ts";

const REPO = join(import.meta.dir, "..", "..");
const DEFAULTS = readFileSync(join(REPO, "config/settings.sh"), "utf8");
const CONFIG = "/config/settings.sh";

/** Resolve the shipped defaults plus a /config/settings.sh holding `lines`. */
function resolve(lines: string[], env: Record<string, string> = {}) {
  return resolveConfig({
    settings: [
      { file: "builtin:settings.sh", text: DEFAULTS, builtin: true },
      { file: CONFIG, text: ["#!/bin/sh", ...lines].join("\n") + "\n" },
    ],
    nat: { file: "builtin:nat.conf", text: "" },
    env,
  });
}

function settingsOf(lines: string[], env: Record<string, string> = {}): Settings {
  const r = resolve(lines, env);
  expect(r.issues.map(formatIssue)).toEqual([]);
  return r.config!.settings;
}

/** The single error for KEY=value (set on line 2 of /config/settings.sh). */
function errorOf(key: string, value: string): string {
  // sh single quotes keep every character (quotes, backslashes, control characters) as written.
  const r = resolve([`${key}='${value.replaceAll("'", "'\\''")}'`]);
  expect(r.issues).toHaveLength(1);
  return formatIssue(r.issues[0]!);
}

describe("the shipped defaults", () => {
  test("set every key, in the order of types.ts, validate cleanly and warn about nothing", () => {
    const p = parseSettings(DEFAULTS, "builtin:settings.sh");
    expect(p.issues).toEqual([]);
    expect(p.assignments.map((a) => a.key)).toEqual(SETTING_KEYS);
    const r = resolveConfig({ settings: [{ file: "builtin:settings.sh", text: DEFAULTS, builtin: true }], nat: { file: "builtin:nat.conf", text: "" }, env: {} });
    expect(r.issues).toEqual([]);
    expect(r.warnings).toEqual([]);
    expect(r.config!.settings).toEqual({
      GATEWAY_NAME: "",
      K8S_DNS_IPS: [],
      NOT_ROUTED_TO_GATEWAY_CIDRS: [],
      VXLAN_ID: 42,
      VXLAN_PORT: 0,
      VXLAN_IP_NETWORK: "172.16.0",
      VXLAN_GATEWAY_FIRST_DYNAMIC_IP: 20,
      VPN_INTERFACE: "tun0",
      VPN_BLOCK_OTHER_TRAFFIC: true,
      VPN_TRAFFIC_PORT: [443],
      VPN_LOCAL_CIDRS: ["10.0.0.0/8", "192.168.0.0/16"],
      DNS_LOCAL_CIDRS: ["local"],
      DNS_LOCAL_SERVER: "",
      RESOLV_CONF_COPY: "/etc/resolv_copy.conf",
      CONNECTION_RETRY_COUNT: 1,
      GATEWAY_ENABLE_DNSSEC: true,
      IPTABLES_NFT: false,
      SNAT_IP: "",
      VPN_INTERFACE_MTU: undefined,
      DHCP_LEASE_TIME: "12h",
      GATEWAY_LOG_QUERIES: false,
      FIREWALL_BACKEND: "auto",
      CLIENT_PROBE_INTERVAL: 2,
      SIDECAR_EXIT_WHEN_POD_DONE: "auto",
      GATEWAY_WATCH_PORT: 4790,
      GATEWAY_METRICS_PORT: 0,
      CLIENT_METRICS_PORT: 0,
      METRICS_BIND_ADDRESS: "0.0.0.0",
    });
    expect(Object.values(r.config!.sources).every((s) => s.kind === "default")).toBe(true);
  });

  test("every key has a one-line comment above it", () => {
    const lines = DEFAULTS.split("\n");
    for (const key of SETTING_KEYS) {
      const i = lines.findIndex((l) => l.startsWith(`${key}=`));
      expect(lines[i - 1]!.startsWith("# ")).toBe(true);
    }
  });

  test("with the webhook's environment", () => {
    const s = settingsOf([], { gateway: "pod-gateway.vpn.svc.cluster.local", K8S_DNS_ips: "10.96.0.10 fd00:10:96::a" });
    expect(s.GATEWAY_NAME).toBe("pod-gateway.vpn.svc.cluster.local");
    expect(s.K8S_DNS_IPS).toEqual(["10.96.0.10", "fd00:10:96::a"]);
  });
});

describe("accepted values", () => {
  const cases: [string, string, unknown][] = [
    ["VXLAN_ID", "1", 1],
    ["VXLAN_ID", "16777215", 16777215],
    ["VXLAN_ID", " 42 ", 42],
    ["VXLAN_PORT", "0", 0],
    ["VXLAN_PORT", "65535", 65535],
    ["VXLAN_IP_NETWORK", "10.242.0", "10.242.0"],
    ["VXLAN_GATEWAY_FIRST_DYNAMIC_IP", "2", 2],
    ["VXLAN_GATEWAY_FIRST_DYNAMIC_IP", "254", 254],
    ["NOT_ROUTED_TO_GATEWAY_CIDRS", "10.0.0.0/8,192.168.0.0/16", ["10.0.0.0/8", "192.168.0.0/16"]],
    ["NOT_ROUTED_TO_GATEWAY_CIDRS", " 10.0.0.0/8 ,  172.16.0.0/12\t192.168.0.0/16 ", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]],
    ["NOT_ROUTED_TO_GATEWAY_CIDRS", "10.0.0.1", ["10.0.0.1/32"]],
    ["NOT_ROUTED_TO_GATEWAY_CIDRS", "0.0.0.0/1", ["0.0.0.0/1"]],
    ["VPN_LOCAL_CIDRS", "", []],
    // Issue 13 §3: IPv6 CIDRs apply to IPv6 on the gateway (routes via eth0's IPv6 gateway, kill-switch accepts).
    ["VPN_LOCAL_CIDRS", "10.0.0.0/8 FD00:18::/48 fd00:99::5", ["10.0.0.0/8", "fd00:18::/48", "fd00:99::5/128"]],
    ["K8S_DNS_IPS", "10.96.0.10 fd00:10:96::a", ["10.96.0.10", "fd00:10:96::a"]],
    ["K8S_DNS_IPS", "10.96.0.10,10.96.0.11", ["10.96.0.10", "10.96.0.11"]],
    ["K8S_DNS_IPS", "::ffff:10.0.0.1", ["::ffff:10.0.0.1"]],
    ["K8S_DNS_IPS", "", []],
    ["VPN_INTERFACE", "wg0", "wg0"],
    ["VPN_INTERFACE", "", ""],
    ["VPN_INTERFACE", "a23456789012345", "a23456789012345"],
    ["VPN_INTERFACE", "tun-vpn.1", "tun-vpn.1"],
    ["VPN_BLOCK_OTHER_TRAFFIC", "true", true],
    ["VPN_BLOCK_OTHER_TRAFFIC", "FALSE", false],
    ["VPN_BLOCK_OTHER_TRAFFIC", "Yes", true],
    ["VPN_BLOCK_OTHER_TRAFFIC", "no", false],
    ["VPN_BLOCK_OTHER_TRAFFIC", "ON", true],
    ["VPN_BLOCK_OTHER_TRAFFIC", "off", false],
    ["VPN_BLOCK_OTHER_TRAFFIC", "1", true],
    ["VPN_BLOCK_OTHER_TRAFFIC", "0", false],
    ["IPTABLES_NFT", "yes", true],
    ["GATEWAY_ENABLE_DNSSEC", "false", false],
    ["GATEWAY_LOG_QUERIES", "on", true],
    ["VPN_TRAFFIC_PORT", "1194 443", [1194, 443]],
    ["VPN_TRAFFIC_PORT", "1194,443,1194", [1194, 443]],
    ["VPN_TRAFFIC_PORT", "", []],
    ["DNS_LOCAL_CIDRS", "local cluster.local", ["local", "cluster.local"]],
    ["DNS_LOCAL_CIDRS", "local,svc.cluster.local.", ["local", "svc.cluster.local"]],
    ["DNS_LOCAL_CIDRS", "10.in-addr.arpa", ["10.in-addr.arpa"]],
    ["DNS_LOCAL_SERVER", "10.96.0.10", "10.96.0.10"],
    ["DNS_LOCAL_SERVER", "fd00::a", "fd00::a"],
    ["RESOLV_CONF_COPY", "/tmp/resolv.conf", "/tmp/resolv.conf"],
    ["CONNECTION_RETRY_COUNT", "5", 5],
    ["SNAT_IP", "203.0.113.5", "203.0.113.5"],
    ["VPN_INTERFACE_MTU", "", undefined],
    ["VPN_INTERFACE_MTU", "576", 576],
    ["VPN_INTERFACE_MTU", "1420", 1420],
    ["DHCP_LEASE_TIME", "45m", "45m"],
    ["DHCP_LEASE_TIME", "3600", "3600"],
    ["DHCP_LEASE_TIME", "120", "120"],
    ["DHCP_LEASE_TIME", "2m", "2m"],
    ["DHCP_LEASE_TIME", "1d", "1d"],
    ["DHCP_LEASE_TIME", "2W", "2w"],
    ["DHCP_LEASE_TIME", "INFINITE", "infinite"],
    ["FIREWALL_BACKEND", "nft", "nft"],
    ["FIREWALL_BACKEND", "iptables-legacy", "iptables-legacy"],
    ["FIREWALL_BACKEND", "IPTABLES-NFT", "iptables-nft"],
    ["CLIENT_PROBE_INTERVAL", "0.5", 0.5],
    ["CLIENT_PROBE_INTERVAL", "0.25", 0.25],
    ["CLIENT_PROBE_INTERVAL", "0.1", 0.1],
    // what the reference accepted (issue 13 §3)
    ["VXLAN_PORT", "", 0],
    ["VPN_TRAFFIC_PORT", "1194:1197", [1194, 1195, 1196, 1197]],
    ["VPN_TRAFFIC_PORT", "443 1194-1195 443", [443, 1194, 1195]],
    ["DNS_LOCAL_CIDRS", "local 10.96.0.0/12 10.96.0.0/12", ["local", "10.96.0.0/12"]],
    ["CLIENT_PROBE_INTERVAL", "3600", 3600],
    ["CLIENT_PROBE_INTERVAL", "10", 10],
    ["SIDECAR_EXIT_WHEN_POD_DONE", "on", "on"],
    ["SIDECAR_EXIT_WHEN_POD_DONE", "OFF", "off"],
    ["SIDECAR_EXIT_WHEN_POD_DONE", "true", "on"],
    ["SIDECAR_EXIT_WHEN_POD_DONE", "no", "off"],
    ["GATEWAY_NAME", "pod-gateway.vpn.svc.cluster.local", "pod-gateway.vpn.svc.cluster.local"],
    ["GATEWAY_NAME", "10.244.1.7", "10.244.1.7"],
    ["GATEWAY_NAME", "fd00::7", "fd00::7"],
    ["GATEWAY_WATCH_PORT", "0", 0],
    ["GATEWAY_WATCH_PORT", " 4791 ", 4791],
    ["GATEWAY_WATCH_PORT", "65535", 65535],
  ];
  for (const [key, value, expected] of cases)
    test(`${key}="${value}"`, () => expect(settingsOf([`${key}="${value}"`])[key as keyof Settings]).toEqual(expected as never));
});

describe("rejected values: file:line, key and why", () => {
  const cases: [string, string, string][] = [
    ["VXLAN_ID", "0", "0 is out of range 1..16777215"],
    ["VXLAN_ID", "16777216", "out of range 1..16777215"],
    ["VXLAN_ID", "-1", "has a sign"],
    ["VXLAN_ID", "4.2", "is not a whole number"],
    ["VXLAN_ID", "042", "leading zero (octal in some tools); write 42"],
    ["VXLAN_ID", "", "is empty"],
    ["VXLAN_PORT", "65536", "out of range 0..65535"],
    ["VXLAN_PORT", "vxlan", "is not a whole number"],
    ["VXLAN_IP_NETWORK", "172.16.0.0", "write only the first three octets"],
    ["VXLAN_IP_NETWORK", "172.16.0.0/24", "write only the first three octets"],
    ["VXLAN_IP_NETWORK", "172.16", "is not three octets"],
    ["VXLAN_IP_NETWORK", "256.1.1", "is not three octets"],
    ["VXLAN_IP_NETWORK", "172.016.0", "is not three octets"],
    ["VXLAN_GATEWAY_FIRST_DYNAMIC_IP", "1", "out of range 2..254"],
    ["VXLAN_GATEWAY_FIRST_DYNAMIC_IP", "255", "out of range 2..254"],
    ["NOT_ROUTED_TO_GATEWAY_CIDRS", "10.0.0.0/33", "invalid prefix length"],
    ["NOT_ROUTED_TO_GATEWAY_CIDRS", "10.0.0/8", "is not an IPv4 CIDR"],
    ["NOT_ROUTED_TO_GATEWAY_CIDRS", "10.0.0.0/08", "invalid prefix length"],
    ["VPN_LOCAL_CIDRS", "fd00::/129", "invalid prefix length"],
    ["VPN_LOCAL_CIDRS", "10.0.0.0/8 cluster", '"cluster" is not an IPv4 CIDR'],
    ["K8S_DNS_IPS", "10.96.0.300", "is not an IPv4 or IPv6 address"],
    ["K8S_DNS_IPS", "kube-dns.kube-system", "is not an IPv4 or IPv6 address"],
    ["K8S_DNS_IPS", "fd00:::1", "is not an IPv4 or IPv6 address"],
    ["VPN_INTERFACE", "a234567890123456", "is 16 bytes long; interface names have at most 15"],
    ["VPN_INTERFACE", "wg/0", "contains '/', ':' or whitespace"],
    ["VPN_INTERFACE", "wg:0", "contains '/', ':' or whitespace"],
    ["VPN_INTERFACE", "wg 0", "contains '/', ':' or whitespace"],
    ["VPN_INTERFACE", "..", "is not a valid interface name"],
    ["VPN_BLOCK_OTHER_TRAFFIC", "maybe", "is not a boolean (use true/false, yes/no, on/off or 1/0)"],
    ["VPN_BLOCK_OTHER_TRAFFIC", "2", "is not a boolean"],
    ["VPN_BLOCK_OTHER_TRAFFIC", "", "is not a boolean"],
    ["VPN_TRAFFIC_PORT", "0", "port 0 is out of range 1..65535"],
    ["VPN_TRAFFIC_PORT", "443 65536", "port 65536 is out of range"],
    ["VPN_TRAFFIC_PORT", "1000-2000", 'port range "1000-2000" holds 1001 ports; at most 64'],
    ["VPN_TRAFFIC_PORT", "1197:1194", 'port range "1197:1194" runs backwards; write 1194:1197'],
    ["VPN_TRAFFIC_PORT", "0:4", 'port range "0:4": 0 is out of range 1..65535'],
    ["DNS_LOCAL_CIDRS", "10.0.0.1", "is an address; DNS_LOCAL_CIDRS lists DNS domains"],
    ["DNS_LOCAL_CIDRS", "fd00::/8", "is IPv6; only IPv4 CIDRs are supported here"],
    ["DNS_LOCAL_CIDRS", "10.0.0.0/33", "invalid prefix length"],
    ["VPN_TRAFFIC_PORT", "https", "is not a whole number"],
    ["DNS_LOCAL_CIDRS", "a..b", "empty label"],
    ["DNS_LOCAL_CIDRS", "-bad.local", "is not a DNS name"],
    ["DNS_LOCAL_SERVER", "kube-dns", "is not an IPv4 or IPv6 address"],
    ["RESOLV_CONF_COPY", "etc/resolv.conf", "is not an absolute path"],
    ["RESOLV_CONF_COPY", "/etc/", "names a directory"],
    ["CONNECTION_RETRY_COUNT", "0", "out of range 1.."],
    ["CONNECTION_RETRY_COUNT", "1.5", "is not a whole number"],
    ["SNAT_IP", "203.0.113", "is not an IPv4 address"],
    ["SNAT_IP", "fd00::1", "is not an IPv4 address"],
    ["VPN_INTERFACE_MTU", "575", "575 is out of range 576..65535"],
    ["VPN_INTERFACE_MTU", "65536", "out of range 576..65535"],
    ["VPN_INTERFACE_MTU", "1500b", "is not a whole number"],
    ["DHCP_LEASE_TIME", "119", "shorter than dnsmasq's minimum of 2m"],
    ["DHCP_LEASE_TIME", "1m", "shorter than dnsmasq's minimum"],
    ["DHCP_LEASE_TIME", "12x", "is not a lease time"],
    ["DHCP_LEASE_TIME", "forever", "is not a lease time"],
    ["FIREWALL_BACKEND", "iptables", "is not one of auto, iptables-nft, iptables-legacy, nft"],
    ["CLIENT_PROBE_INTERVAL", "0", "0 is out of range 0.1..3600 seconds"],
    ["CLIENT_PROBE_INTERVAL", "0.0", "is out of range 0.1..3600 seconds"],
    ["CLIENT_PROBE_INTERVAL", "0.09", "is out of range 0.1..3600 seconds"],
    ["CLIENT_PROBE_INTERVAL", "3600.5", "is out of range 0.1..3600 seconds"],
    ["CLIENT_PROBE_INTERVAL", "2147484", "is out of range 0.1..3600 seconds"],
    ["CLIENT_PROBE_INTERVAL", "-1", "has a sign"],
    ["CLIENT_PROBE_INTERVAL", "1e3", "is not a decimal number"],
    ["CLIENT_PROBE_INTERVAL", "0x10", "is not a decimal number"],
    ["CLIENT_PROBE_INTERVAL", ".25", "write digits on both sides of the point (for example 0.25)"],
    ["CLIENT_PROBE_INTERVAL", "Infinity", "is not a decimal number"],
    ["NOT_ROUTED_TO_GATEWAY_CIDRS", "0.0.0.0/0", "0.0.0.0/0 is all of IPv4: every destination would stay on eth0"],
    ["NOT_ROUTED_TO_GATEWAY_CIDRS", "10.0.0.0/8 0.0.0.0/1 128.0.0.0/1", "together cover all of IPv4"],
    ["VPN_LOCAL_CIDRS", "0.0.0.0/0", "0.0.0.0/0 is all of IPv4: the kill switch would let traffic to every destination leave through eth0"],
    ["VPN_LOCAL_CIDRS", "1.2.3.4/0", "all of IPv4"],
    ["VPN_LOCAL_CIDRS", "10.0.0.0/8 ::/0", "::/0 is all of IPv6: the kill switch would let traffic to every destination leave through eth0"],
    ["VPN_LOCAL_CIDRS", "0.0.0.0/2 64.0.0.0/2 128.0.0.0/1", "together cover all of IPv4"],
    ["VPN_INTERFACE", "+", "is a wildcard ('+' and '*' match many interfaces); name the exact interface"],
    ["VPN_INTERFACE", "tun+", "is a wildcard"],
    ["VPN_INTERFACE", "tun*", "is a wildcard"],
    ["VPN_INTERFACE", "e*", "is a wildcard"],
    ["VPN_INTERFACE", 'tun"0', "contains a quote or backslash"],
    ["VPN_INTERFACE", "tun'0", "contains a quote or backslash"],
    ["VPN_INTERFACE", "tun\\0", "contains a quote or backslash"],
    ["VPN_INTERFACE", "tun\u00e90", "outside printable ASCII"],
    ["VPN_INTERFACE", "tun%d", "which the kernel reads as a name template"],
    ["VPN_INTERFACE", "tun#0", "contains '#'"],
    ["RESOLV_CONF_COPY", "/etc/resolv_copy.conf\ndhcp-script=/tmp/x.sh", "contains the control character U+000A at position 22; values are plain text on one line"],
    ["RESOLV_CONF_COPY", "/etc//resolv.conf", 'is not a normalised path (no \'//\', \'/./\' or \'/../\'); write it as "/etc/resolv.conf"'],
    ["RESOLV_CONF_COPY", "/etc/../tmp/r.conf", 'write it as "/tmp/r.conf"'],
    ["RESOLV_CONF_COPY", "/etc/./r.conf", 'write it as "/etc/r.conf"'],
    ["RESOLV_CONF_COPY", "/etc/r conf", "contains characters other than letters, digits"],
    ["RESOLV_CONF_COPY", "/etc/r#conf", "contains characters other than letters, digits"],
    ["GATEWAY_NAME", "gw\u0000x", "contains the control character U+0000"],
    ["SNAT_IP", "1.2.3.4\u007f", "contains the control character U+007F"],
    ["DHCP_LEASE_TIME", "366d", "is longer than 365d"],
    ["VPN_LOCAL_CIDRS", "10.0.0.0/8\u000b192.168.0.0/16", "contains the control character U+000B"],
    ["SIDECAR_EXIT_WHEN_POD_DONE", "sometimes", "is not auto, on or off"],
    ["GATEWAY_NAME", "bad name", "is neither a DNS name nor an IP address"],
    ["GATEWAY_NAME", "-x.example", "is neither a DNS name nor an IP address"],
    ["GATEWAY_WATCH_PORT", "65536", "65536 is out of range 0..65535"],
    ["GATEWAY_WATCH_PORT", "-1", "has a sign"],
    ["GATEWAY_WATCH_PORT", "watch", "is not a whole number"],
    ["GATEWAY_WATCH_PORT", "", "is empty"],
    ["GATEWAY_WATCH_PORT", "53", "53 is dnsmasq's DNS port on the overlay's .1; choose another port, or 0 for off"],
  ];
  for (const [key, value, fragment] of cases)
    test(`${key}="${value}"`, () => {
      const msg = errorOf(key, value);
      expect(msg.startsWith(`${CONFIG}:2: ${key}: `)).toBe(true);
      expect(msg).toContain(fragment);
    });

  test("a long list that covers all of IPv4 is named by an excerpt, not item by item", () => {
    const all8 = Array.from({ length: 256 }, (_, i) => `${i}.0.0.0/8`);
    const msg = errorOf("NOT_ROUTED_TO_GATEWAY_CIDRS", all8.join(" "));
    expect(msg).toBe(`${CONFIG}:2: NOT_ROUTED_TO_GATEWAY_CIDRS: 0.0.0.0/8 1.0.0.0/8 2.0.0.0/8 3.0.0.0/8 … 252 more together cover all of IPv4: every destination would stay on eth0 and nothing would be routed to the gateway; list the cluster's own CIDRs (pod and service networks)`);
    // Five items are shown whole ("… 1 more" would save nothing).
    const five = ["0.0.0.0/3", "32.0.0.0/3", "64.0.0.0/3", "96.0.0.0/3", "128.0.0.0/1"];
    expect(errorOf("VPN_LOCAL_CIDRS", five.join(" "))).toContain(`VPN_LOCAL_CIDRS: ${five.join(" ")} together cover all of IPv4`);
    expect(errorOf("VPN_LOCAL_CIDRS", [...five.slice(0, 4), "128.0.0.0/2", "192.0.0.0/2"].join(" "))).toContain("VPN_LOCAL_CIDRS: 0.0.0.0/3 32.0.0.0/3 64.0.0.0/3 96.0.0.0/3 … 2 more together cover all of IPv4");
  });

  test("all errors are reported together, in file order, each where its value was set", () => {
    const r = resolve(["VPN_BLOCK_OTHER_TRAFFIC=perhaps", "VXLAN_ID=0", "# comment", "VXLAN_PORT=70000", "VPN_INTERFACE=wg/0"]);
    expect(r.config).toBeUndefined();
    expect(r.issues.map((i) => `${i.file}:${i.line}:${i.key}`)).toEqual([
      `${CONFIG}:2:VPN_BLOCK_OTHER_TRAFFIC`,
      `${CONFIG}:3:VXLAN_ID`,
      `${CONFIG}:5:VXLAN_PORT`,
      `${CONFIG}:6:VPN_INTERFACE`,
    ]);
  });

  test("a bad value that came from the environment names the built-in line and the variable", () => {
    const line = DEFAULTS.split("\n").findIndex((l) => l.startsWith("K8S_DNS_IPS=")) + 1;
    const r = resolve([], { K8S_DNS_ips: "kube-dns" });
    expect(r.issues.map(formatIssue)).toEqual([
      `builtin:settings.sh:${line}: K8S_DNS_IPS: "kube-dns" is not an IPv4 or IPv6 address (expanded from $K8S_DNS_ips)`,
    ]);
  });

  test("parse errors and validation errors come together", () => {
    const r = resolve(["VXLAN_ID=$(echo 7)", "VXLAN_PORT=x"]);
    expect(r.issues.map(formatIssue)).toEqual([
      `${CONFIG}:2:10: VXLAN_ID: command substitution $(...) is not supported: settings.sh is read as data, never run`,
      `${CONFIG}:3: VXLAN_PORT: "x" is not a whole number (expected 0..65535)`,
    ]);
  });
});

describe("warnings", () => {
  const warnings = (lines: string[]): string[] => {
    const r = resolve(lines);
    expect(r.issues).toEqual([]);
    return r.warnings;
  };

  test("unknown keys warn with the nearest known key", () => {
    expect(warnings(["VXLAN_IDD=5", "vxlan_port=1", "gateway=x", "FOO=1"])).toEqual([
      `${CONFIG}:2: VXLAN_IDD: unknown setting, ignored; did you mean VXLAN_ID?`,
      `${CONFIG}:3: vxlan_port: unknown setting, ignored; did you mean VXLAN_PORT?`,
      `${CONFIG}:4: gateway: unknown setting, ignored (it can still be used as $gateway in later values)`,
      `${CONFIG}:5: FOO: unknown setting, ignored (it can still be used as $FOO in later values)`,
    ]);
  });

  test("suggestKey", () => {
    expect(suggestKey("VPN_INTERFCE")).toBe("VPN_INTERFACE");
    expect(suggestKey("VXLAN_IP_NETWRK")).toBe("VXLAN_IP_NETWORK");
    expect(suggestKey("snat_ip")).toBe("SNAT_IP");
    expect(suggestKey("HOME")).toBeUndefined();
  });

  test("host bits and duplicates in CIDR lists are fixed with a warning", () => {
    const r = resolve(['VPN_LOCAL_CIDRS="10.1.2.3/8 192.168.0.0/16 192.168.0.0/16"']);
    expect(r.config!.settings.VPN_LOCAL_CIDRS).toEqual(["10.0.0.0/8", "192.168.0.0/16"]);
    expect(r.warnings).toEqual([
      `${CONFIG}:2: VPN_LOCAL_CIDRS: 10.1.2.3/8 has host bits set; using 10.0.0.0/8`,
      `${CONFIG}:2: VPN_LOCAL_CIDRS: 192.168.0.0/16 is listed twice; using it once`,
    ]);
  });

  test("a public overlay network", () => {
    expect(warnings(["VXLAN_IP_NETWORK=8.8.8"])).toEqual([
      `${CONFIG}:2: VXLAN_IP_NETWORK: 8.8.8.0/24 is not a private range (10/8, 172.16/12, 192.168/16, 100.64/10): clients could not reach those internet addresses`,
    ]);
  });

  test("settings that do nothing together", () => {
    expect(warnings(["VPN_INTERFACE=", "SNAT_IP=203.0.113.5", "VPN_BLOCK_OTHER_TRAFFIC=yes"])).toEqual([
      `${CONFIG}:3: SNAT_IP: has no effect without VPN_INTERFACE (SNAT applies to traffic leaving the VPN interface)`,
      `${CONFIG}:4: VPN_BLOCK_OTHER_TRAFFIC: has no effect without VPN_INTERFACE (there is no VPN to confine traffic to)`,
    ]);
    expect(warnings(["VPN_INTERFACE="])).toEqual([]); // the default kill switch is not the user's doing
    expect(warnings(["IPTABLES_NFT=yes", "FIREWALL_BACKEND=iptables-legacy"])).toEqual([
      `${CONFIG}:2: IPTABLES_NFT: asks for the nf_tables backend but FIREWALL_BACKEND=iptables-legacy; FIREWALL_BACKEND wins`,
    ]);
    expect(warnings(["DNS_LOCAL_CIDRS=", "DNS_LOCAL_SERVER=10.96.0.10"])).toEqual([`${CONFIG}:3: DNS_LOCAL_SERVER: has no effect while DNS_LOCAL_CIDRS is empty`]);
  });

  test("a CIDR inside the overlay warns, one containing it does not", () => {
    expect(warnings(["VXLAN_IP_NETWORK=10.242.0", 'NOT_ROUTED_TO_GATEWAY_CIDRS="10.0.0.0/8 10.242.0.128/25"'])).toEqual([
      `${CONFIG}:3: NOT_ROUTED_TO_GATEWAY_CIDRS: 10.242.0.128/25 lies inside the overlay network 10.242.0.0/24 (VXLAN_IP_NETWORK): those overlay addresses would be routed out of eth0`,
    ]);
  });
});

describe("validateSettings directly", () => {
  test("a key missing from every layer is an error", () => {
    const v = validateSettings({ VXLAN_ID: { value: "42", file: "f", line: 1, source: { kind: "file", file: "f", line: 1 } } });
    expect(v.settings).toBeUndefined();
    expect(v.issues.map((i) => i.key)).toEqual(SETTING_KEYS.filter((k) => k !== "VXLAN_ID"));
    expect(v.issues[0]!.message).toContain("is not set in any layer");
  });
});

describe("value readers", () => {
  test("isIPv6", () => {
    for (const a of ["::", "::1", "fd00::a", "2001:db8:0:0:0:0:0:1", "fe80::1:2:3:4", "::ffff:192.0.2.1", "64:ff9b::192.0.2.33", "1:2:3:4:5:6:7::"]) expect([a, isIPv6(a)]).toEqual([a, true]);
    for (const a of ["", ":", ":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "g::1", "::1.2.3", "fe80::1%eth0", "1.2.3.4"]) expect([a, isIPv6(a)]).toEqual([a, false]);
  });

  test("parseCidr4 canonicalises", () => {
    expect(parseCidr4("192.168.1.10/24")).toEqual({ ok: true, value: "192.168.1.0/24", warnings: ["192.168.1.10/24 has host bits set; using 192.168.1.0/24"] });
    expect(parseCidr4("0.0.0.0/0")).toEqual({ ok: true, value: "0.0.0.0/0" });
    expect(parseCidr4("255.255.255.255/1")).toMatchObject({ value: "128.0.0.0/1" });
  });

  test("interface names follow the kernel (bytes, not characters)", () => {
    expect(checkInterfaceName("a".repeat(15)).ok).toBe(true);
    expect(checkInterfaceName("a".repeat(16)).ok).toBe(false);
    expect(checkInterfaceName("é".repeat(7)).ok).toBe(false); // kernel-valid, but not ASCII
    expect(checkInterfaceName(".").ok).toBe(false);
    expect(checkInterfaceName("...").ok).toBe(true);
  });

  test("lease times", () => {
    expect([leaseSeconds("12h"), leaseSeconds("45m"), leaseSeconds("1w"), leaseSeconds("90"), leaseSeconds("90s"), leaseSeconds("infinite"), leaseSeconds("h")]).toEqual([
      43200, 2700, 604800, 90, 90, "infinite", undefined,
    ]);
  });
});
