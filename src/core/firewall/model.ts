// The gateway's firewall as a value: every rule we own, in order, tagged with its purpose.
// Pure: planFirewall() derives it from the settings and nat.conf; render-iptables.ts and
// render-nft.ts turn the same value into an iptables-restore or nft script, so both backends
// enforce exactly the same policy.
import type { NatEntry, Settings } from "../settings/types.ts";
import { formatPrefix4, parsePrefix4 } from "../net/ipv4.ts";
import { KILLSWITCH_NFLOG_GROUP, KILLSWITCH_NFLOG_PER_SECOND } from "./names.ts";
import { effectiveVxlanPort, overlayAddress, POD_IF, VXLAN_IF } from "../net/vxlan.ts";

export type Family = 4 | 6;
export type Hook = "input" | "forward" | "output" | "prerouting" | "postrouting";
export type Table = "filter" | "nat" | "mangle";

/** Why a rule exists; the summary counts rules by purpose and the nft verifier checks them. */
export type Purpose =
  | "client-input" // VXLAN, DHCP, DNS and ping from clients: accepted whatever the pod's firewall does
  | "mss-clamp" // TCP MSS clamped to the path MTU on forwarded SYNs
  | "nat" // MASQUERADE / SNAT of the overlay
  | "port-forward" // DNAT from the VPN to a static client, and the FORWARD accept for it
  | "replies" // replies to clients, and to connections opened to the gateway pod itself
  | "vpn-ingress" // nothing else comes in from the VPN
  | "kill-switch" // traffic may leave only through the VPN (and to VPN_LOCAL_CIDRS)
  | "ipv6-block"; // the overlay is IPv4 only: never forward IPv6 from or to it

export interface Match {
  in?: string;
  out?: string;
  notOut?: string;
  src?: string; // CIDR
  dst?: string; // CIDR
  proto?: "tcp" | "udp" | "icmp" | "icmpv6";
  dport?: number;
  icmpEchoRequest?: true;
  /** ICMPv6 type (proto "icmpv6", IPv6 rules only): one of ND_ICMPV6_TYPES. */
  icmpv6Type?: number;
  /** IPv6 hop limit equal to this (ND is sent with 255, MLD with 1: neither crosses a router as valid). */
  hopLimit?: number;
  /** TCP SYN without RST (SYN and SYN/ACK): the packets that carry the MSS option. */
  tcpSyn?: true;
  ctState?: readonly ("established" | "related")[];
  /** Connection was DNATed (by our port forward): iptables `--ctstate DNAT`, nft `ct status dnat`. */
  ctDnat?: true;
  /** Packet flows in the reply direction of its connection (the connection was opened towards us). */
  ctReply?: true;
}

export type Target =
  | { kind: "accept" }
  | { kind: "drop" }
  | { kind: "reject" }
  | { kind: "masquerade" }
  | { kind: "snat"; to: string }
  | { kind: "dnat"; to: string; port: number }
  | { kind: "clamp-mss" }
  /** Copy the packet to an nfnetlink_log group, rate-limited; the packet goes on to the next rule. */
  | { kind: "nflog"; group: number; perSecond: number };

export interface FwRule {
  table: Table;
  hook: Hook;
  families: readonly Family[];
  match: Match;
  target: Target;
  purpose: Purpose;
  /** Short human text, shown by `iptables -L` / `nft list` next to the rule. */
  comment: string;
}

export interface PortForward {
  name: string;
  address: string;
  proto: "tcp" | "udp";
  port: number;
}

export interface FirewallPlan {
  rules: FwRule[];
  killSwitch: boolean;
  vpnInterface: string;
  nat: { kind: "masquerade" } | { kind: "snat"; to: string };
  portForwards: PortForward[];
  /** Settings that have no effect in this combination (logged, not fatal). */
  warnings: string[];
}

export type FirewallSettings = Pick<
  Settings,
  "VXLAN_IP_NETWORK" | "VXLAN_PORT" | "VPN_INTERFACE" | "VPN_BLOCK_OTHER_TRAFFIC" | "VPN_TRAFFIC_PORT" | "VPN_LOCAL_CIDRS" | "SNAT_IP" | "GATEWAY_WATCH_PORT"
>;

export type FirewallNatEntry = Pick<NatEntry, "name" | "octet" | "ports">;

/**
 * Comments end up quoted in iptables-restore input and in nft scripts: keep them to a safe
 * alphabet (nat.conf names are pod names, but nothing else guarantees that) and iptables'
 * 256-byte limit.
 */
export function safeComment(text: string): string {
  return text.replace(/[^A-Za-z0-9 ._:\/,=+-]/g, "_").slice(0, 200);
}

/** A host address in canonical form (no leading zeros, every octet ≤ 255) with /32. */
const CANONICAL_HOST = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\/32$/;

/** "10.1.2.3/8" → "10.0.0.0/8", "10.1.2.3" → "10.1.2.3/32": the form iptables-save prints. */
export function canonicalCidr(cidr: string): string {
  // Every port forward matches a /32: one test instead of parsing and printing (hundreds of
  // rules, and gateway-init renders them in a cold process).
  if (CANONICAL_HOST.test(cidr)) return cidr;
  if (cidr.includes(":")) return cidr.includes("/") ? cidr.toLowerCase() : `${cidr.toLowerCase()}/128`;
  const p = cidr === "default" ? undefined : parsePrefix4(cidr);
  if (!p) throw new Error(`invalid IPv4 CIDR ${JSON.stringify(cidr)}`);
  return formatPrefix4(p);
}

export function cidrFamily(cidr: string): Family {
  return cidr.includes(":") ? 6 : 4;
}

const V4: readonly Family[] = [4];
const V6: readonly Family[] = [6];
const BOTH: readonly Family[] = [4, 6];

/**
 * What the kill switch lets out of eth0 for IPv6 link-layer housekeeping (issue 13 §6): router
 * solicitation/advertisement, neighbour solicitation/advertisement (types 133–136, sent with hop
 * limit 255 as RFC 4861 §7.1 requires of valid ND) and MLDv2 reports (143, hop limit 1, RFC 3810
 * §5). Without them a dual-stack gateway pod cannot resolve its IPv6 router on eth0, and its own
 * IPv6 cluster networking (replies to probes, VPN_LOCAL_CIDRS) stops. ICMPv6 ND is not tracked by
 * conntrack, so the "replies" rule does not cover it.
 */
export const ND_ICMPV6_TYPES: readonly { type: number; hopLimit: number; comment: string }[] = [
  { type: 133, hopLimit: 255, comment: "ipv6 router solicitation on eth0" },
  { type: 134, hopLimit: 255, comment: "ipv6 router advertisement on eth0" },
  { type: 135, hopLimit: 255, comment: "ipv6 neighbour solicitation on eth0" },
  { type: 136, hopLimit: 255, comment: "ipv6 neighbour advertisement on eth0" },
  { type: 143, hopLimit: 1, comment: "ipv6 mldv2 report on eth0" },
];

/** The ND/MLD accepts on eth0, the same in the kill switch and in the blocking ruleset. */
function ndRules(): FwRule[] {
  return ND_ICMPV6_TYPES.map(({ type, hopLimit, comment }): FwRule => ({
    table: "filter", hook: "output", families: V6, purpose: "kill-switch", comment,
    match: { out: POD_IF, proto: "icmpv6", icmpv6Type: type, hopLimit }, target: { kind: "accept" },
  }));
}

export function planFirewall(s: FirewallSettings, nat: readonly FirewallNatEntry[]): FirewallPlan {
  const rules: FwRule[] = [];
  const warnings: string[] = [];
  const add = (table: Table, hook: Hook, families: readonly Family[], purpose: Purpose, comment: string, match: Match, target: Target) =>
    rules.push({ table, hook, families, match, target, purpose, comment: safeComment(comment) });
  const accept: Target = { kind: "accept" };
  const drop: Target = { kind: "drop" };
  const vpn = s.VPN_INTERFACE;
  const killSwitch = s.VPN_BLOCK_OTHER_TRAFFIC && vpn !== "";
  if (s.VPN_BLOCK_OTHER_TRAFFIC && vpn === "")
    warnings.push("VPN_BLOCK_OTHER_TRAFFIC has no effect without VPN_INTERFACE (plain NAT gateway: no kill switch)");
  if (s.SNAT_IP !== "" && vpn === "") warnings.push("SNAT_IP has no effect without VPN_INTERFACE (MASQUERADE is used)");
  if (nat.some((e) => e.ports.length > 0) && vpn === "") warnings.push("nat.conf port forwards have no effect without VPN_INTERFACE");
  const overlay = `${s.VXLAN_IP_NETWORK}.0/24`;
  const vxlanPort = effectiveVxlanPort(s.VXLAN_PORT);
  const localCidrs = s.VPN_LOCAL_CIDRS;

  // ---- INPUT: what clients need from the gateway. Our jump sits at position 1 of the built-in
  // INPUT chain, so these accepts win over a VPN container's INPUT policy DROP (iptables backends).
  add("filter", "input", BOTH, "client-input", "vxlan from client pods", { in: POD_IF, proto: "udp", dport: vxlanPort }, accept);
  add("filter", "input", V4, "client-input", "dhcp from clients", { in: VXLAN_IF, proto: "udp", dport: 67 }, accept);
  add("filter", "input", V4, "client-input", "dns from clients", { in: VXLAN_IF, proto: "udp", dport: 53 }, accept);
  add("filter", "input", V4, "client-input", "dns from clients", { in: VXLAN_IF, proto: "tcp", dport: 53 }, accept);
  add("filter", "input", V4, "client-input", "ping from clients", { in: VXLAN_IF, proto: "icmp", icmpEchoRequest: true }, accept);
  // The gateway sidecar's watch port (GATEWAY_WATCH_PORT, src/sys/watch-server.ts): each client
  // sidecar holds one connection, and its close tells the client the gateway is leaving.
  if (s.GATEWAY_WATCH_PORT !== 0)
    add("filter", "input", V4, "client-input", "watch from clients", { in: VXLAN_IF, proto: "tcp", dport: s.GATEWAY_WATCH_PORT }, accept);
  // Replies to what the gateway itself sent: without them a VPN container's INPUT DROP would
  // also drop the upstream answers dnsmasq forwards to clients.
  add("filter", "input", BOTH, "replies", "replies to the gateway", { ctState: ["related", "established"] }, accept);

  // ---- MSS clamp: a VPN tunnel's MTU is below the overlay's; without clamping, TCP peers
  // send full-size segments that the tunnel drops when PMTU discovery is blocked somewhere
  // (the classic "TLS handshake hangs over WireGuard").
  add("mangle", "forward", V4, "mss-clamp", "clamp mss to path mtu", { proto: "tcp", tcpSyn: true }, { kind: "clamp-mss" });

  // ---- FORWARD.
  // IPv6: the overlay is IPv4 only; forwarding IPv6 from it would bypass the IPv4 kill switch.
  add("filter", "forward", V6, "ipv6-block", "no ipv6 from the overlay", { in: VXLAN_IF }, drop);
  add("filter", "forward", V6, "ipv6-block", "no ipv6 to the overlay", { out: VXLAN_IF }, drop);
  // Replies to clients (from the VPN or from VPN_LOCAL_CIDRS). Only towards vxlan0: a general
  // ESTABLISHED accept would let a client's connection continue out of eth0 once the VPN route
  // disappears (the connection is already established), which is exactly a leak.
  add("filter", "forward", V4, "replies", "replies to clients", { out: VXLAN_IF, ctState: ["related", "established"] }, accept);
  const portForwards: PortForward[] = [];
  if (vpn !== "") {
    for (const e of nat)
      for (const p of e.ports) portForwards.push({ name: e.name, address: overlayAddress(s.VXLAN_IP_NETWORK, e.octet), proto: p.proto, port: p.port });
    for (const f of portForwards)
      add("filter", "forward", V4, "port-forward", `port forward ${f.name} ${f.proto}/${f.port}`,
        { dst: `${f.address}/32`, in: vpn, out: VXLAN_IF, proto: f.proto, dport: f.port, ctDnat: true }, accept);
    add("filter", "forward", BOTH, "vpn-ingress", "nothing else in from the vpn", { in: vpn }, { kind: "reject" });
  }
  if (killSwitch) {
    add("filter", "forward", BOTH, "kill-switch", "out through the vpn", { out: vpn }, accept);
    for (const c of localCidrs) add("filter", "forward", [cidrFamily(c)], "kill-switch", "to VPN_LOCAL_CIDRS", { dst: c }, accept);
    add("filter", "forward", BOTH, "kill-switch", "kill switch", {}, drop);
  }

  // ---- OUTPUT (the gateway's own traffic): only with the kill switch. Interfaces are matched
  // by name, so the rules hold while the VPN interface does not exist yet, is down or deleted.
  if (killSwitch) {
    add("filter", "output", BOTH, "kill-switch", "loopback", { out: "lo" }, accept);
    add("filter", "output", BOTH, "kill-switch", "out through the vpn", { out: vpn }, accept);
    add("filter", "output", BOTH, "kill-switch", "to clients", { out: VXLAN_IF }, accept);
    add("filter", "output", BOTH, "kill-switch", "vxlan to client pods", { out: POD_IF, proto: "udp", dport: vxlanPort }, accept);
    // Replies only (never new connections): kubelet probes and connections opened to the pod.
    add("filter", "output", BOTH, "replies", "replies to connections opened to the gateway", { out: POD_IF, ctState: ["established"], ctReply: true }, accept);
    // IPv6 neighbour discovery and MLD on eth0 (issue 13 §6): a dual-stack pod keeps its router.
    rules.push(...ndRules());
    for (const c of localCidrs) add("filter", "output", [cidrFamily(c)], "kill-switch", "to VPN_LOCAL_CIDRS", { dst: c }, accept);
    for (const port of s.VPN_TRAFFIC_PORT) {
      add("filter", "output", BOTH, "kill-switch", "vpn transport", { proto: "udp", dport: port }, accept);
      add("filter", "output", BOTH, "kill-switch", "vpn transport", { proto: "tcp", dport: port }, accept);
    }
    // The drop report (issue 13 §5): what is about to be dropped on eth0 goes to gateway-sidecar
    // too, a few packets a second, so a VPN_TRAFFIC_PORT that misses the VPN server's port is
    // named in the log instead of silently blocking the VPN's own connection.
    add("filter", "output", BOTH, "kill-switch", "drop report", { out: POD_IF },
      { kind: "nflog", group: KILLSWITCH_NFLOG_GROUP, perSecond: KILLSWITCH_NFLOG_PER_SECOND });
    add("filter", "output", BOTH, "kill-switch", "kill switch", {}, drop);
  }

  // ---- NAT: port forwards in, the overlay out. Only the overlay is translated (never the
  // gateway's own traffic), and never towards the overlay itself.
  for (const f of portForwards)
    add("nat", "prerouting", V4, "port-forward", `port forward ${f.name} ${f.proto}/${f.port}`,
      { in: vpn, proto: f.proto, dport: f.port }, { kind: "dnat", to: f.address, port: f.port });
  const snat = s.SNAT_IP !== "" && vpn !== "";
  if (snat) add("nat", "postrouting", V4, "nat", "snat out of the vpn", { src: overlay, out: vpn }, { kind: "snat", to: s.SNAT_IP });
  add("nat", "postrouting", V4, "nat", "masquerade the overlay", { src: overlay, notOut: VXLAN_IF }, { kind: "masquerade" });

  return {
    rules,
    killSwitch,
    vpnInterface: vpn,
    nat: snat ? { kind: "snat", to: s.SNAT_IP } : { kind: "masquerade" },
    portForwards,
    warnings,
  };
}

/**
 * The fail-closed fallback: applied when applying the real plan failed with the kill switch
 * on, or the sidecar could not prove it. Forwarding stops completely and the gateway's own
 * traffic only reaches loopback, the overlay (dnsmasq keeps serving DHCP and DNS), the VXLAN
 * underlay, VPN_LOCAL_CIDRS (the cluster DNS), replies on eth0 (kubelet probes) and IPv6
 * neighbour discovery and MLD reports on eth0 (ND_ICMPV6_TYPES); the client
 * input rules stay so a later re-run (or the sidecar) can repair things.
 */
export function planBlockingFirewall(s: FirewallSettings): FirewallPlan {
  const full = planFirewall({ ...s, VPN_BLOCK_OTHER_TRAFFIC: false }, []);
  const rules: FwRule[] = full.rules.filter((r) => r.purpose === "client-input");
  rules.push(
    { table: "filter", hook: "forward", families: BOTH, match: {}, target: { kind: "drop" }, purpose: "kill-switch", comment: "fail closed" },
    { table: "filter", hook: "output", families: BOTH, match: { out: "lo" }, target: { kind: "accept" }, purpose: "kill-switch", comment: "loopback" },
    // dnsmasq keeps serving the overlay (DHCP leases, DNS answers from its cache), client pods'
    // VXLAN packets still get out, and the pod answers its probes. Nothing new leaves eth0.
    { table: "filter", hook: "output", families: BOTH, match: { out: VXLAN_IF }, target: { kind: "accept" }, purpose: "kill-switch", comment: "to clients" },
    { table: "filter", hook: "output", families: BOTH, match: { out: POD_IF, proto: "udp", dport: effectiveVxlanPort(s.VXLAN_PORT) }, target: { kind: "accept" }, purpose: "kill-switch", comment: "vxlan to client pods" },
    { table: "filter", hook: "output", families: BOTH, match: { out: POD_IF, ctState: ["established"], ctReply: true }, target: { kind: "accept" }, purpose: "replies", comment: "replies to connections opened to the gateway" },
    // The same ND/MLD allowance as the kill switch: without it an IPv6 reply to a probe could
    // not even resolve the router's link-layer address (ND is not tracked by conntrack).
    ...ndRules(),
    // The cluster (its DNS answers cluster names for the overlay), as the kill switch allows it:
    // never the VPN's way out. DNS upstreams inside these ranges stay unreachable by our table.
    ...s.VPN_LOCAL_CIDRS.map((c): FwRule => ({ table: "filter", hook: "output", families: [cidrFamily(c)], match: { dst: c }, target: { kind: "accept" }, purpose: "kill-switch", comment: "to VPN_LOCAL_CIDRS" })),
    { table: "filter", hook: "output", families: BOTH, match: {}, target: { kind: "drop" }, purpose: "kill-switch", comment: "fail closed" },
  );
  return { rules, killSwitch: true, vpnInterface: s.VPN_INTERFACE, nat: { kind: "masquerade" }, portForwards: [], warnings: [] };
}

/** The rules of one family (iptables renders each family separately). */
export function rulesOf(plan: FirewallPlan, family: Family): FwRule[] {
  return plan.rules.filter((r) => r.families.includes(family));
}

/** Rules counted by purpose, for the summary: "client-input 5, kill-switch 12, ...". */
export function countByPurpose(plan: FirewallPlan): Record<Purpose, number> {
  const out: Record<Purpose, number> = {
    "client-input": 0, "mss-clamp": 0, nat: 0, "port-forward": 0, replies: 0, "vpn-ingress": 0, "kill-switch": 0, "ipv6-block": 0,
  };
  for (const r of plan.rules) out[r.purpose]++;
  return out;
}

/** A few lines a person reads in the init log. */
export function summarizeFirewall(plan: FirewallPlan): string[] {
  const counts = countByPurpose(plan);
  const lines = [
    `rules by purpose: ${Object.entries(counts).filter(([, n]) => n > 0).map(([p, n]) => `${p} ${n}`).join(", ")}`,
    `nat: ${plan.nat.kind === "snat" ? `SNAT to ${plan.nat.to} out of ${plan.vpnInterface}, MASQUERADE elsewhere` : "MASQUERADE"}`,
    `kill switch: ${plan.killSwitch ? `on (traffic leaves only through ${plan.vpnInterface})` : "off"}`,
  ];
  if (plan.portForwards.length)
    lines.push(`port forwards: ${plan.portForwards.map((f) => `${plan.vpnInterface}:${f.proto}/${f.port} -> ${f.address} (${f.name})`).join(", ")}`);
  return lines;
}
