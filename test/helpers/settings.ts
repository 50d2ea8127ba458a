// The Settings value unit tests start from: the shipped defaults with what the webhook and a
// typical chart add (the gateway's name, the cluster DNS, the cluster CIDR kept on eth0). Tests
// override what they are about, so the values a golden text depends on stay visible there.
import type { Settings } from "../../src/core/settings/types.ts";

export function testSettings(over: Partial<Settings> = {}): Settings {
  return {
    GATEWAY_NAME: "gateway.pod-gateway.svc.cluster.local",
    K8S_DNS_IPS: ["198.18.1.10"],
    NOT_ROUTED_TO_GATEWAY_CIDRS: ["10.0.0.0/8"],
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
    SIDECAR_EXIT_WHEN_POD_DONE: "off",
    GATEWAY_WATCH_PORT: 4790,
    GATEWAY_METRICS_PORT: 0,
    CLIENT_METRICS_PORT: 0,
    METRICS_BIND_ADDRESS: "0.0.0.0",
    ...over,
  };
}
