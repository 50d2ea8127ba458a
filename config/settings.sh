#!/bin/sh
# pod-gateway default settings. Read as data (never executed): KEY="value" lines, `export`,
# quotes, $VAR / ${VAR} / ${VAR:-default} expanded from the environment and earlier keys
# (also from lower layers: VPN_LOCAL_CIDRS="$VPN_LOCAL_CIDRS 172.20.0.0/16" appends).
# Layers: these defaults (built into the binary), /default_config/settings.sh, then
# /config/settings.sh (or --config-dir / POD_GATEWAY_CONFIG_DIR). Later keys win.
# Lists take spaces and/or commas; booleans take true/false, yes/no, on/off, 1/0.
# `pod-gateway config` prints the result and where each value came from.

# DNS name of the gateway pod (its headless Service); the webhook passes it as $gateway
GATEWAY_NAME="$gateway"
# Cluster DNS servers (space-separated); the webhook passes them as $K8S_DNS_ips
K8S_DNS_IPS="$K8S_DNS_ips"
# CIDRs (space-separated) that stay on eth0 via the pod's own default gateway, not the tunnel
NOT_ROUTED_TO_GATEWAY_CIDRS=""

# VXLAN network identifier shared by gateway and clients (1-16777215)
VXLAN_ID="42"
# VXLAN UDP port; 0 means the kernel default (8472)
VXLAN_PORT="0"
# First three octets of the overlay /24 (must not clash with pod, service or node ranges); gateway is .1
VXLAN_IP_NETWORK="172.16.0"
# First octet DHCP hands out; octets below it are reserved for static nat.conf entries
VXLAN_GATEWAY_FIRST_DYNAMIC_IP=20

# Interface the VPN client creates in the gateway pod; empty for a plain NAT gateway
VPN_INTERFACE=tun0
# Kill switch: traffic may leave the gateway only through VPN_INTERFACE (and to VPN_LOCAL_CIDRS)
VPN_BLOCK_OTHER_TRAFFIC=true
# Port(s) of the VPN server the gateway itself may reach over eth0 when the kill switch is on (udp and tcp)
VPN_TRAFFIC_PORT=443
# CIDRs (space-separated) the gateway reaches over eth0 instead of the VPN
VPN_LOCAL_CIDRS="10.0.0.0/8 192.168.0.0/16"

# DNS domains (space-separated) answered by the cluster DNS instead of the VPN's DNS
DNS_LOCAL_CIDRS="local"
# Cluster DNS server for those domains; empty means the first nameserver of the original resolv.conf
DNS_LOCAL_SERVER=""

# Copy of /etc/resolv.conf that the gateway's dnsmasq reads (kept in sync as the VPN rewrites it)
RESOLV_CONF_COPY=/etc/resolv_copy.conf

# Consecutive failed gateway probes before the client sidecar acts
CONNECTION_RETRY_COUNT=1

# Validate DNSSEC in the gateway's DNS server
GATEWAY_ENABLE_DNSSEC=true

# Legacy switch: yes means "use the nf_tables backend" (see FIREWALL_BACKEND)
IPTABLES_NFT=no

# Source address for SNAT out of VPN_INTERFACE; empty means MASQUERADE
SNAT_IP=""

# Upper bound for vxlan0's MTU (it is eth0's MTU minus 50 otherwise); empty means no bound
VPN_INTERFACE_MTU=""

# ---- new in pod-gateway ----
# DHCP lease time the gateway hands out (dnsmasq syntax: 12h, 45m, 3600, infinite)
DHCP_LEASE_TIME=12h
# Log every DNS query in the gateway's dnsmasq
GATEWAY_LOG_QUERIES=false
# Firewall backend for gateway-init: auto, iptables-nft, iptables-legacy or nft
FIREWALL_BACKEND=auto
# Seconds between the client sidecar's probes of the gateway
CLIENT_PROBE_INTERVAL=2
# Client sidecar exits once every other container of its pod has terminated: auto, on or off
SIDECAR_EXIT_WHEN_POD_DONE=auto
# TCP port on the overlay's .1 where client sidecars hold a connection the gateway closes when it stops; 0 = off
GATEWAY_WATCH_PORT=4790
# Gateway sidecar's Prometheus /metrics (and /healthz, /readyz) port; 0 = off
GATEWAY_METRICS_PORT=0
# Client sidecar's /metrics port, opened in the application's network namespace; 0 = off
CLIENT_METRICS_PORT=0
# Address the metrics server listens on (0.0.0.0: every IPv4 address of the pod)
METRICS_BIND_ADDRESS=0.0.0.0
