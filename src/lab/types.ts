// The lab's public shape: a Kubernetes-like network made of network namespaces.
// Implemented in src/lab/lab.ts; used by `pod-gateway lab`, by the role tests and by the
// benchmarks. Every lab uses the same address plan: its namespaces are private, so two labs
// side by side cannot collide; only namespace names carry the per-run id.
//
//   internet (203.0.113.10, echo service)            leak host (192.0.2.10, echo service)
//        | 203.0.113.0/24                                 | 192.0.2.0/24
//   vpn exit (198.19.0.1 / 203.0.113.1)                node (bridge br0 198.18.0.1/24,
//        | 198.19.0.0/30 (veth named VPN_INTERFACE)          cluster DNS 198.18.1.10,
//   gateway pod: <VPN_INTERFACE> 198.19.0.2,                  API server name 198.18.1.1)
//                eth0 198.18.0.2 (changes on recreate) --+
//   client pods: eth0 198.18.0.10, .11, ...  ------------+
import type { Subprocess } from "bun";
import type { RunOptions, RunResult } from "../sys/exec.ts";

export const LAB = {
  podCidr: "198.18.0.0/24",
  nodeIp: "198.18.0.1",
  /** First gateway pod IP; recreateGateway() moves it to .3, .4, ... */
  gatewayPodIp: "198.18.0.2",
  firstClientIp: "198.18.0.10",
  serviceCidr: "198.18.1.0/24",
  clusterDnsIp: "198.18.1.10",
  apiServerIp: "198.18.1.1",
  clusterDomain: "cluster.local",
  gatewayName: "gateway.pod-gateway.svc.cluster.local",
  vpnGatewayIp: "198.19.0.2",
  vpnExitIp: "198.19.0.1",
  vpnCidr: "198.19.0.0/30",
  internetIp: "203.0.113.10",
  internetCidr: "203.0.113.0/24",
  leakHostIp: "192.0.2.10",
  leakCidr: "192.0.2.0/24",
  /** Ports of the echo service on the internet and leak hosts. */
  echoTcpPort: 8080, // HTTP: GET / answers with the source "ip:port" it saw
  echoUdpPort: 8081, // UDP: answers each datagram with the source "ip:port"
} as const;

export type PodName = "node" | "gateway" | "vpn" | "internet" | "leak" | `client-${number}`;

export interface LabOptions {
  /** Number of client pods (client-0 ...). Default 1. */
  clients?: number;
  /** Name of the gateway's VPN-like interface. Default "tun0". */
  vpnInterface?: string;
  /** Extra settings.sh text appended to the lab's generated settings (for tests). */
  extraSettings?: string;
  /** nat.conf content for the lab's config dir. */
  natConf?: string;
  /** Use this config dir instead of the generated one (lab up --config-dir). */
  configDir?: string;
  /** Per-run id; random when omitted. */
  id?: string;
}

export interface Lab {
  readonly id: string;
  /** Namespace name of each pod/host, e.g. ns("gateway") === "pgw-<id>-gateway". */
  ns(pod: PodName): string;
  readonly clients: string[]; // ["client-0", ...]
  /** Directory holding the lab's settings.sh and nat.conf (mounted as the roles' config dir). */
  readonly configDir: string;
  /** Per-lab scratch directory (resolv.conf copies, leases, logs). */
  readonly runDir: string;
  /** Current gateway pod IP on the node network. */
  gatewayPodIp(): string;
  /** Environment a role in this pod gets from the chart/webhook: gateway, K8S_DNS_ips, POD_NAME, ... */
  roleEnv(pod: PodName): Record<string, string>;
  /** Run a command in a pod's namespace and wait for it. */
  exec(pod: PodName, argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Start a long-running command in a pod's namespace (killed by destroy()). */
  spawn(pod: PodName, argv: readonly string[], opts?: { env?: Record<string, string> }): Subprocess<"ignore", "pipe", "pipe">;
  /** Delete the gateway pod's namespace and create it again with the next pod IP; the cluster DNS follows. */
  recreateGateway(): Promise<string>;
  /** Take the VPN link down / up / delete it / add it back. */
  setVpnLink(state: "up" | "down" | "deleted"): Promise<void>;
  /** Counters of what the echo services on the internet and leak hosts have seen. */
  echoHits(host: "internet" | "leak"): Promise<{ tcp: number; udp: number; sources: string[] }>;
  /** Remove every namespace, process, /etc/netns entry and file this lab made. Safe to call twice. */
  destroy(): Promise<void>;
}
