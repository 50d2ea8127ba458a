// The gateway's dnsmasq configuration: DHCP and DNS for the overlay, on vxlan0 only.
// Pure: the sidecar writes the result to its runtime directory and runs `dnsmasq -k -C <file>`.
import type { NatEntry, Settings } from "../settings/types.ts";
import { gatewayOverlayIp, overlayAddress, VXLAN_IF } from "../net/vxlan.ts";
import { ROOT_TRUST_ANCHORS, renderTrustAnchor, type TrustAnchor } from "./trust-anchors.ts";

export interface DnsmasqInputs {
  settings: Pick<
    Settings,
    "VXLAN_IP_NETWORK" | "VXLAN_GATEWAY_FIRST_DYNAMIC_IP" | "DHCP_LEASE_TIME" | "DNS_LOCAL_CIDRS" | "GATEWAY_ENABLE_DNSSEC" | "GATEWAY_LOG_QUERIES" | "RESOLV_CONF_COPY"
  >;
  nat: readonly Pick<NatEntry, "name" | "octet">[];
  /** vxlan0's MTU as configured by gateway-init (advertised with DHCP option 26). */
  mtu: number;
  /** The cluster DNS server for DNS_LOCAL_CIDRS (DNS_LOCAL_SERVER or the original resolv.conf's first IPv4 nameserver). */
  localServer: string | undefined;
  /** Where dnsmasq keeps its leases (must be writable: the runtime directory, not the image). */
  leaseFile: string;
  /** dnsmasq's dhcp-hostsfile (re-read on SIGHUP): the sidecar's guard of a new pod's first offers. */
  hostsFile?: string;
  trustAnchors?: readonly TrustAnchor[];
  /** A directory of user drop-ins (/etc/dnsmasq.d) whose *.conf files are read after ours. */
  dropInDir?: string;
}

/** The first and last address DHCP hands out: .FIRST_DYNAMIC_IP to .254 (never .255, the broadcast). */
export function dhcpRange(network: string, firstDynamic: number): { first: string; last: string } {
  return { first: overlayAddress(network, firstDynamic), last: overlayAddress(network, 254) };
}

/**
 * The one way a value reaches dnsmasq's configuration. dnsmasq reads a line, removes blanks and
 * a '#' comment outside double quotes, and inside them undoes \\ and \" (option.c); so a
 * value is written bare when it holds nothing dnsmasq treats specially, and in double quotes
 * with those two escaped otherwise. A control character cannot be written (a newline would
 * start a second directive, as RESOLV_CONF_COPY="x\ndhcp-script=..." once did): refused.
 */
export function dnsmasqValue(value: string): string {
  if (/[\x00-\x1f\x7f]/.test(value)) throw new Error(`cannot write ${JSON.stringify(value)} into dnsmasq's configuration: it holds a control character`);
  if (/^[A-Za-z0-9._\/:@%+=,*-]+$/.test(value)) return value;
  return `"${value.replace(/["\\]/g, "\\$&")}"`;
}

/** A comment line holding values: control characters become '?' so it stays one line. */
export function dnsmasqComment(text: string): string {
  return `# ${text.replace(/[\x00-\x1f\x7f]/g, "?")}`;
}

/** One `name=value` directive line (the value through dnsmasqValue). */
export function dnsmasqOption(name: string, value: string): string {
  return `${name}=${dnsmasqValue(value)}`;
}

/** A DNS_LOCAL_CIDRS entry: a domain ("local", ".cluster.local") or a reverse zone given as a CIDR. */
export function renderLocalServer(entry: string, server: string): string {
  if (entry.includes("/")) return dnsmasqOption("rev-server", `${entry},${server}`);
  const domain = entry.replace(/^\.+|\.+$/g, "");
  return dnsmasqOption("server", `/${domain}/${server}`);
}

export function renderDnsmasqConfig(i: DnsmasqInputs): string {
  const s = i.settings;
  const net = s.VXLAN_IP_NETWORK;
  const gw = gatewayOverlayIp(net);
  const range = dhcpRange(net, s.VXLAN_GATEWAY_FIRST_DYNAMIC_IP);
  // nat.conf octets are configured statically by the clients themselves; they must never be
  // leased to someone else. Settings validation keeps them below the range; check it here too,
  // because handing out a static address twice breaks two pods at once.
  const clash = i.nat.filter((e) => e.octet >= s.VXLAN_GATEWAY_FIRST_DYNAMIC_IP);
  if (clash.length)
    throw new Error(`nat.conf octets ${clash.map((e) => `${e.octet} (${e.name})`).join(", ")} lie in the DHCP range ${range.first}-${range.last}`);

  const lines = [
    "# Written by pod-gateway gateway-sidecar at start-up; do not edit (settings.sh is the source).",
    "",
    "# Serve the overlay only. Never lo: a VPN client's own resolver (gluetun's on 127.0.0.1:53)",
    "# may be the upstream in resolv.conf, and listening there would make dnsmasq its own upstream.",
    dnsmasqOption("interface", VXLAN_IF),
    "except-interface=lo",
    "bind-dynamic",
    "# Run as root: works with capabilities dropped to NET_ADMIN/NET_RAW/NET_BIND_SERVICE",
    "# (no SETUID/SETGID to change user) and reads files under private runtime directories.",
    "user=root",
    "pid-file=",
    "log-facility=-",
    "no-hosts",
    "",
    "# DNS: upstreams from the copy of /etc/resolv.conf the sidecar keeps in sync.",
    dnsmasqOption("resolv-file", s.RESOLV_CONF_COPY),
  ];
  if (s.DNS_LOCAL_CIDRS.length) {
    if (i.localServer) {
      lines.push("# Cluster-local names go to the cluster DNS, not through the VPN.");
      for (const d of s.DNS_LOCAL_CIDRS) lines.push(renderLocalServer(d, i.localServer));
    } else {
      lines.push(dnsmasqComment(`DNS_LOCAL_CIDRS (${s.DNS_LOCAL_CIDRS.join(" ")}) ignored: no cluster DNS server known.`));
    }
  }
  if (s.GATEWAY_ENABLE_DNSSEC) {
    // Domains with their own server= line (the cluster-local ones) are not validated by dnsmasq:
    // the cluster DNS does not sign them.
    lines.push("", "# DNSSEC validation with the root trust anchors shipped in the binary.", "dnssec");
    for (const a of i.trustAnchors ?? ROOT_TRUST_ANCHORS) lines.push(renderTrustAnchor(a));
  }
  if (s.GATEWAY_LOG_QUERIES) lines.push("log-queries");
  lines.push(
    "",
    `# DHCP on ${VXLAN_IF}: .${s.VXLAN_GATEWAY_FIRST_DYNAMIC_IP}-.254 (lower octets are nat.conf's static addresses).`,
    dnsmasqOption("dhcp-range", `${range.first},${range.last},255.255.255.0,${s.DHCP_LEASE_TIME}`),
    dnsmasqOption("dhcp-option", `option:router,${gw}`),
    dnsmasqOption("dhcp-option", `option:dns-server,${gw}`),
    dnsmasqOption("dhcp-option", `option:mtu,${i.mtu}`),
    "# The only DHCP server on the overlay: answer clients whose lease it forgot (after a restart) at once.",
    "dhcp-authoritative",
    "# Offer without first pinging the address (that costs 3 s per new client); the range is ours alone.",
    "no-ping",
    "# A DISCOVER asking for Rapid Commit (RFC 4039; pod-gateway's client does) gets the ACK at once: one round trip.",
    "dhcp-rapid-commit",
    dnsmasqOption("dhcp-leasefile", i.leaseFile),
  );
  if (i.hostsFile !== undefined)
    lines.push(
      "# Reservations and a hold the sidecar writes while a new pod learns who holds which address (re-read on SIGHUP).",
      dnsmasqOption("dhcp-hostsfile", i.hostsFile),
    );
  if (i.dropInDir !== undefined)
    lines.push(
      "",
      "# User drop-ins, read after ours (the reference's dnsmasq read this directory): local",
      "# records, upstream overrides. gateway-sidecar checks the result with dnsmasq --test first.",
      dnsmasqOption("conf-dir", `${i.dropInDir},*.conf`),
    );
  return lines.join("\n") + "\n";
}
