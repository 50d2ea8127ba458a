// Pure facts about the overlay shared by the gateway and client roles: the MTU rule,
// stable MAC addresses and overlay addresses.

export const VXLAN_IF = "vxlan0";
/** The pod's interface towards the node: vxlan0's lower device (underlay), and where cluster traffic stays. */
export const POD_IF = "eth0";
/** Linux's default VXLAN port when none is given (IANA's is 4789; the kernel keeps 8472). */
export const KERNEL_DEFAULT_VXLAN_PORT = 8472;
/**
 * VXLAN over IPv4 adds 50 bytes: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14).
 * An MTU above eth0 - 50 makes the kernel fragment every full-size packet (RFC 7348 §4.3 says
 * VTEPs must not fragment), so vxlan0 gets eth0 - 50, and never more than the VPN interface can
 * carry when VPN_INTERFACE_MTU bounds it.
 */
export const VXLAN_OVERHEAD = 50;

/**
 * DHCP option 26 (interface MTU) is taken only from 576 up: RFC 2132 §5.1 allows 68, but 576 is
 * the smallest datagram every IPv4 host must accept (RFC 791), and a smaller value from a
 * misconfigured server would cripple the pod rather than protect it.
 */
export const MIN_DHCP_MTU = 576;

/**
 * vxlan0's MTU: the smallest of eth0 - 50, VPN_INTERFACE_MTU when set, and the MTU the gateway
 * advertises with DHCP option 26 (client side, `dhcpMtu`) when it is at least MIN_DHCP_MTU.
 */
export function planVxlanMtu(eth0Mtu: number, vpnInterfaceMtu: number | undefined, dhcpMtu?: number): { mtu: number; why: string } {
  const fromEth0 = eth0Mtu - VXLAN_OVERHEAD;
  const bounds: { mtu: number; why: string }[] = [{ mtu: fromEth0, why: `eth0 MTU ${eth0Mtu} - ${VXLAN_OVERHEAD}` }];
  if (vpnInterfaceMtu !== undefined) bounds.push({ mtu: vpnInterfaceMtu, why: `VPN_INTERFACE_MTU ${vpnInterfaceMtu}` });
  const ignored = dhcpMtu !== undefined && dhcpMtu < MIN_DHCP_MTU;
  if (dhcpMtu !== undefined && !ignored) bounds.push({ mtu: dhcpMtu, why: `the gateway's DHCP option 26 MTU ${dhcpMtu}` });
  // The first of the smallest wins: eth0's rule, then the setting, then the gateway's word.
  const best = bounds.reduce((a, b) => (b.mtu < a.mtu ? b : a));
  const others = bounds.slice(1).filter((b) => b !== best).map((b) => b.why);
  const notes = [others.length > 0 ? `${others.join(", ")} ${others.length > 1 ? "are" : "is"} not lower` : "", ignored ? `DHCP option 26 MTU ${dhcpMtu} ignored (below ${MIN_DHCP_MTU})` : ""].filter(Boolean);
  return { mtu: best.mtu, why: `${best.why}${best !== bounds[0] ? ` < eth0 MTU ${eth0Mtu} - ${VXLAN_OVERHEAD}` : ""}${notes.length > 0 ? ` (${notes.join("; ")})` : ""}` };
}

/**
 * A MAC that stays the same across re-creations of the interface: a restarted gateway keeps the
 * MAC clients have cached, a re-created client keeps its DHCP lease (dnsmasq keys leases by
 * client-id/MAC). First octet 0x02|...: locally administered (bit 1) unicast (bit 0 clear).
 */
export function stableMac(seed: string): string {
  // Bun.CryptoHasher, not node:crypto: importing node:crypto alone costs ~10 ms of start-up.
  const h = new Bun.CryptoHasher("sha256").update(seed).digest();
  const b = [...h.subarray(0, 6)];
  b[0] = (b[0]! & 0xfc) | 0x02;
  return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
}

export function gatewayMac(vni: number): string {
  return stableMac(`pod-gateway/gateway/vni=${vni}`);
}

export function clientMac(podName: string, vni: number): string {
  return stableMac(`pod-gateway/client/${podName}/vni=${vni}`);
}

/** "172.16.0" + 5 → "172.16.0.5" */
export function overlayAddress(network: string, octet: number): string {
  return `${network}.${octet}`;
}

export function gatewayOverlayIp(network: string): string {
  return overlayAddress(network, 1);
}

export function effectiveVxlanPort(port: number): number {
  return port === 0 ? KERNEL_DEFAULT_VXLAN_PORT : port;
}
