// Names of the firewall objects pod-gateway owns. NEVER rename any of these: an upgraded
// gateway-init (or the sidecar's re-assert loop) finds what an older version made by these
// names, flushes and refills it; a renamed chain would be left behind with stale rules, and
// a stale kill switch or port forward is a security bug, not clutter.

/** iptables chains (one per built-in chain we hook; the same name may exist in several tables). */
export const IPT_CHAIN = {
  input: "POD-GATEWAY-INPUT",
  forward: "POD-GATEWAY-FORWARD",
  output: "POD-GATEWAY-OUTPUT",
  prerouting: "POD-GATEWAY-PREROUTING",
  postrouting: "POD-GATEWAY-POSTROUTING",
} as const;

/** Our native nftables table: family inet (IPv4 and IPv6 in one table). */
export const NFT_FAMILY = "inet";
export const NFT_TABLE = "pod_gateway";

/** Base chains of our nft table, named after their hooks. */
export const NFT_CHAIN = {
  input: "input",
  forward: "forward",
  output: "output",
  prerouting: "prerouting",
  postrouting: "postrouting",
} as const;

/**
 * nft sets and maps of the port forwards, per protocol (`pf_dnat_tcp`, `pf_fwd_udp`, ...): the
 * DNAT map (destination port → client address) and the FORWARD set (client address . port).
 */
export const NFT_SET = {
  dnat: (proto: "tcp" | "udp") => `pf_dnat_${proto}`,
  forward: (proto: "tcp" | "udp") => `pf_fwd_${proto}`,
} as const;

/**
 * nft base chain priorities: 10 before the standard ones, so the kill switch drops before
 * another table's filter chains spend time on a packet and our DNAT runs before anyone else's.
 * (In nftables an accept only ends the packet's trip through *this* base chain; a drop in any
 * other table's base chain on the same hook still drops it. See render-nft.ts.)
 */
export const NFT_PRIORITY = {
  filter: "filter - 10",
  dstnat: "dstnat - 10",
  srcnat: "srcnat - 10",
} as const;

/**
 * The kill switch's routing layer (core/gateway/killswitch.ts): our routing table and the
 * preferences of our policy rules. NEVER change these either: a newer gateway finds the rules an
 * older one added by preference and table, and empties a table it no longer plans.
 *
 * Table 4201: any number the pod's other containers do not use; VPN clients pick 51820 (wg-quick),
 * 1000-ish or small numbers (OpenVPN scripts); 4201 is in none of the common scripts.
 * Preference 45 for the clients' rule (`iif vxlan0 lookup 4201`): before the gateway's pref-50
 * rule (main without its default route), whose main lookup would hand clients every non-default
 * route of main via eth0 (an OpenVPN host route to its server, say).
 * Preference 46 for the DNS upstreams' rules (`to <upstream> lookup 4201`): the gateway's own
 * queries to the VPN's resolvers take our table's host routes (through the VPN or unreachable)
 * before main's VPN_LOCAL_CIDRS routes could send them out of eth0.
 */
export const KILLSWITCH_TABLE = 4201;
export const KILLSWITCH_CLIENT_RULE_PREF = 45;
export const KILLSWITCH_DNS_RULE_PREF = 46;
/** The lowest priority a route can have (the largest u32 metric): `unreachable` under every copy. */
export const LOWEST_ROUTE_PRIORITY = 4294967295;

/**
 * Route protocol of the one host route that records the cluster DNS in the kernel:
 * `<cluster DNS>/32 via <eth0's gateway> dev eth0 proto 202`. gateway-init writes it from the
 * pod's resolv.conf before any VPN container has rewritten that file; a restarted sidecar (whose
 * own filesystem is fresh) reads it back instead of taking the VPN's resolver for the cluster's.
 * 201 (client-init's and our VPN_LOCAL_CIDRS routes) and 202 are unassigned in rtnetlink.h.
 */
export const CLUSTER_DNS_ROUTE_PROTO = 202;

/**
 * The kill switch's drop report (issue 13 §5): just before the drop on eth0 output, a rule copies
 * what is about to be dropped to this nfnetlink_log group, at most KILLSWITCH_NFLOG_PER_SECOND
 * packets a second (burst 5), and gateway-sidecar reads the group (src/sys/drop-report.ts). Group
 * numbers are per network namespace; 4201 like our table, in none of the common VPN scripts.
 */
export const KILLSWITCH_NFLOG_GROUP = 4201;
export const KILLSWITCH_NFLOG_PER_SECOND = 10;
