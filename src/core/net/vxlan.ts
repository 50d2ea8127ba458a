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

export function planVxlanMtu(eth0Mtu: number, vpnInterfaceMtu: number | undefined): { mtu: number; why: string } {
  const fromEth0 = eth0Mtu - VXLAN_OVERHEAD;
  if (vpnInterfaceMtu !== undefined && vpnInterfaceMtu < fromEth0)
    return { mtu: vpnInterfaceMtu, why: `VPN_INTERFACE_MTU ${vpnInterfaceMtu} < eth0 MTU ${eth0Mtu} - ${VXLAN_OVERHEAD}` };
  return { mtu: fromEth0, why: `eth0 MTU ${eth0Mtu} - ${VXLAN_OVERHEAD}${vpnInterfaceMtu !== undefined ? ` (VPN_INTERFACE_MTU ${vpnInterfaceMtu} is not lower)` : ""}` };
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
