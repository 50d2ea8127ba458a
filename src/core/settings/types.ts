// The typed shape of the configuration after parsing, layering and validation.
// Names are those of the reference settings.sh (a compatibility contract: never rename).

export type FirewallBackendSetting = "auto" | "iptables-nft" | "iptables-legacy" | "nft";
export type TriState = "auto" | "on" | "off";

export interface Settings {
  /** DNS name (or IP literal) of the gateway pod. Default "$gateway". */
  GATEWAY_NAME: string;
  /** Cluster DNS servers (IPv4 and IPv6 as given; roles pick the IPv4 ones). Default "$K8S_DNS_ips". */
  K8S_DNS_IPS: string[];
  /** CIDRs that stay on eth0 via the pod's original default gateway (client side). */
  NOT_ROUTED_TO_GATEWAY_CIDRS: string[];
  /** VXLAN network identifier, 1..16777215. */
  VXLAN_ID: number;
  /** VXLAN UDP port; 0 means the kernel default (8472). */
  VXLAN_PORT: number;
  /** First three octets of the overlay /24, e.g. "172.16.0"; the gateway is .1. */
  VXLAN_IP_NETWORK: string;
  /** First octet handed out by DHCP; lower octets are for nat.conf static entries. */
  VXLAN_GATEWAY_FIRST_DYNAMIC_IP: number;
  /** VPN interface in the gateway pod; "" means no VPN (plain NAT gateway). */
  VPN_INTERFACE: string;
  /** Kill switch: forwarded and own traffic may leave only through the VPN. */
  VPN_BLOCK_OTHER_TRAFFIC: boolean;
  /** VPN transport port(s) the gateway itself may reach on eth0 (udp and tcp). */
  VPN_TRAFFIC_PORT: number[];
  /** CIDRs the gateway reaches via eth0 instead of the VPN. */
  VPN_LOCAL_CIDRS: string[];
  /** DNS domains resolved by the cluster DNS instead of the VPN's DNS. */
  DNS_LOCAL_CIDRS: string[];
  /** Cluster DNS server for DNS_LOCAL_CIDRS; "" means the first nameserver of the original resolv.conf. */
  DNS_LOCAL_SERVER: string;
  /** Where the gateway keeps the copy of /etc/resolv.conf that dnsmasq reads. */
  RESOLV_CONF_COPY: string;
  /** Consecutive failed probes before the client sidecar acts. */
  CONNECTION_RETRY_COUNT: number;
  /** Validate DNSSEC in the gateway's dnsmasq. */
  GATEWAY_ENABLE_DNSSEC: boolean;
  /** Legacy switch: true means "use the nf_tables backend". */
  IPTABLES_NFT: boolean;
  /** Source address for SNAT out of the VPN interface; "" means MASQUERADE. */
  SNAT_IP: string;
  /** Upper bound for vxlan0's MTU; undefined means eth0 MTU - 50 only. */
  VPN_INTERFACE_MTU: number | undefined;

  // ---- settings new in pod-gateway (not in the reference) ----
  /** DHCP lease time handed out by the gateway (dnsmasq syntax: 12h, 30m, 3600, infinite). */
  DHCP_LEASE_TIME: string;
  /** Log every DNS query in the gateway's dnsmasq. */
  GATEWAY_LOG_QUERIES: boolean;
  /** Firewall backend for gateway-init; auto picks from the kernel and existing rules. */
  FIREWALL_BACKEND: FirewallBackendSetting;
  /** Client probe interval in seconds. */
  CLIENT_PROBE_INTERVAL: number;
  /** Client sidecar exits when all other containers of its pod terminated (Jobs). */
  SIDECAR_EXIT_WHEN_POD_DONE: TriState;
  /**
   * TCP port of the gateway sidecar's watch listener on the overlay's .1 (each client sidecar
   * holds one idle connection; closed when the gateway stops, so clients look for the next at
   * once); 0 = off.
   */
  GATEWAY_WATCH_PORT: number;
  /** Port of the gateway sidecar's /metrics, /healthz and /readyz; 0 = off. */
  GATEWAY_METRICS_PORT: number;
  /** Port of the client sidecar's /metrics, /healthz and /readyz (in the application's network namespace); 0 = off. */
  CLIENT_METRICS_PORT: number;
  /** Address the metrics server listens on. */
  METRICS_BIND_ADDRESS: string;
}

export type SettingKey = keyof Settings;

/** Where a resolved value came from. */
export type SettingSource =
  | { kind: "default" }
  | { kind: "file"; file: string; line: number }
  | { kind: "env"; name: string };

/** One nat.conf line: a pod (by name) with a static overlay octet and forwarded ports. */
export interface NatEntry {
  name: string;
  octet: number;
  ports: { proto: "tcp" | "udp"; port: number }[];
  file: string;
  line: number;
}

export interface ResolvedConfig {
  settings: Settings;
  sources: Record<SettingKey, SettingSource>;
  nat: NatEntry[];
  /** Files that were read (in layer order), for the summary and `config`. */
  files: string[];
  /** Non-fatal findings (unknown keys, fallbacks) to be logged. */
  warnings: string[];
}
