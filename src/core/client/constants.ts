// Names and numbers the client roles leave in the kernel. An upgraded binary must recognise what
// an older one made, so these are never changed once released.

/**
 * Route protocol number (rtm_protocol) on every route client-init installs. The kernel stores it
 * with the route and `ip -j route` prints it back, so a re-run (a restarted container, the sidecar
 * re-initialising) finds "<dst> via <original gateway> dev eth0 proto 201" and knows the pod's
 * original default gateway even after the default route is gone — no state file needed.
 * 201 is unassigned: the kernel's RTPROT_* list (include/uapi/linux/rtnetlink.h) and iproute2's
 * rt_protos use 0-18, 42, 99, 186-192; routing daemons and CNIs in a pod's namespace do not use it.
 * To see a name instead of the number: echo "201 pod-gateway" > /etc/iproute2/rt_protos.d/pod-gateway.conf
 */
export const ROUTE_PROTO = 201;
/** What `ip -j route` prints for ROUTE_PROTO: the number, or the name when rt_protos names it. */
export const ROUTE_PROTO_NAMES: readonly string[] = [String(ROUTE_PROTO), "pod-gateway"];

export function isOurProto(protocol: string | undefined): boolean {
  return protocol !== undefined && ROUTE_PROTO_NAMES.includes(protocol);
}

/**
 * Public addresses whose route lookup proves isolation once the default routes are gone. One in
 * each half of the IPv4 space, so a split default (0.0.0.0/1 + 128.0.0.0/1, as VPN clients add)
 * is caught too; no packet is sent to them (`ip route get` only asks the kernel's FIB).
 */
export const ISOLATION_PROBES_V4: readonly string[] = ["1.1.1.1", "208.67.222.222"];
export const ISOLATION_PROBES_V6: readonly string[] = ["2606:4700:4700::1111"];
