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
