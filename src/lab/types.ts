// The lab's public shape: a Kubernetes-like network made of network namespaces.
// Implemented in src/lab/lab.ts; used by `pod-gateway lab`, by the role tests and by the
// benchmarks. Every lab uses the same address plan: its namespaces are private, so two labs
// side by side cannot collide; only namespace names carry the per-run id.
//
//   internet (203.0.113.10, echo service,            leak host (192.0.2.10, echo service;
//             the VPN's DNS for *.internet.test)                the node's uplink: anything
//        | 203.0.113.0/24                                       leaving the node ends here)
//   vpn exit (198.19.0.1 / 203.0.113.1,                   | 192.0.2.0/24 (node 192.0.2.1)
//             forwards, no NAT)                        node (bridge br0 198.18.0.1/24,
//        | 198.19.0.0/30 (veth named VPN_INTERFACE)          cluster DNS 198.18.1.10,
//   gateway pod: <VPN_INTERFACE> 198.19.0.2,                  API server name 198.18.1.1,
//                0.0.0.0/1 + 128.0.0.0/1 via 198.19.0.1       default route via the leak host)
//                eth0 198.18.0.2 (changes on recreate) --+
//   client pods: eth0 198.18.0.10, .11, ...  ------------+
//
// With the real VPN (LabOptions.vpn "openvpn") there is no veth between the gateway and the VPN
// exit: the exit also holds the provider's OpenVPN server on 198.51.100.1 (linked to the node,
// reached from the gateway's eth0 like any internet address), and the gateway pod's OpenVPN
// client makes the tun device VPN_INTERFACE with the same addresses and def1 routes.
import type { Subprocess } from "bun";
import type { OpenVpnControl } from "./openvpn.ts";
import type { OpenVpnSettings, VpnKind } from "./openvpn-plan.ts";
import type { RunOptions, RunResult } from "../sys/exec.ts";
import type { ContainerName } from "./plan.ts";

export type { ContainerName };

export const LAB = {
  podCidr: "198.18.0.0/24",
  nodeIp: "198.18.0.1",
  /** First gateway pod IP; recreateGateway() moves it to .3, .4, ... .9, then .210 and up (unless asked to keep it). */
  gatewayPodIp: "198.18.0.2",
  /** client-N has 198.18.0.(10+N); at most 200 clients. */
  firstClientIp: "198.18.0.10",
  serviceCidr: "198.18.1.0/24",
  clusterDnsIp: "198.18.1.10",
  apiServerIp: "198.18.1.1",
  /** The cluster DNS answers this name with apiServerIp. */
  apiServerName: "kubernetes.default.svc.cluster.local",
  clusterDomain: "cluster.local",
  gatewayName: "gateway.pod-gateway.svc.cluster.local",
  vpnGatewayIp: "198.19.0.2",
  vpnExitIp: "198.19.0.1",
  vpnCidr: "198.19.0.0/30",
  /** The VPN exit's address on the internet side (the internet host routes vpnCidr via it). */
  vpnExitInternetIp: "203.0.113.1",
  /** The OpenVPN server's public address (VPN exit namespace, on its link to the node). */
  vpnServerIp: "198.51.100.1",
  vpnServerCidr: "198.51.100.0/24",
  /** The node's address on its link to the VPN server. */
  nodeVpnServerSideIp: "198.51.100.254",
  /**
   * A second address of the VPN's DNS, inside the lab's VPN_LOCAL_CIDRS (198.18.0.0/16), as
   * providers hand out 10.x resolvers inside a default 10.0.0.0/8: reachable only through the
   * tunnel (the internet host holds it; the node sends it to the leak host like any other
   * unknown address).
   */
  vpnPrivateDnsIp: "198.18.3.53",
  internetIp: "203.0.113.10",
  internetCidr: "203.0.113.0/24",
  /** The "VPN provider's DNS" on the internet host: answers *.internet.test with internetIp. */
  vpnDnsIp: "203.0.113.10",
  /** A name only the VPN's DNS knows (so an answer proves DNS went through the VPN). */
  internetName: "echo.internet.test",
  leakHostIp: "192.0.2.10",
  leakCidr: "192.0.2.0/24",
  /** The node's address on the leak network. */
  nodeLeakIp: "192.0.2.1",
  /** Ports of the echo service on the internet and leak hosts. */
  echoTcpPort: 8080, // HTTP: GET / answers with the source "ip:port" it saw; GET /hits the counters
  echoUdpPort: 8081, // UDP: answers each datagram with the source "ip:port"
} as const;

/**
 * The lab's IPv6 plan (LabOptions.ipv6, issue 13 §6): pods' eth0 dual-stack on fd00:18::/64 with
 * the node's bridge as their IPv6 router, the cluster's IPv6 services on the node's lo, and the
 * node's IPv6 uplink to the leak host (whatever the node forwards elsewhere is counted there).
 * Pod addresses mirror the IPv4 ones: 198.18.0.N is fd00:18::N (N in decimal digits).
 */
export const LAB6 = {
  podCidr: "fd00:18::/64",
  nodeIp: "fd00:18::1",
  /** The cluster's IPv6 network: pods and services (VPN_LOCAL_CIDRS in IPv6 tests). */
  clusterCidr: "fd00:18::/48",
  /** An IPv6 service address on the node's lo, inside clusterCidr. */
  serviceIp: "fd00:18:0:1::10",
  nodeLeakIp: "fd00:17::1",
  leakHostIp: "fd00:17::2",
  /** An IPv6 destination outside the cluster: routed by the node to the leak host and counted there. */
  outsideIp: "2001:db8:77::10",
} as const;

export type PodName = "node" | "gateway" | "vpn" | "internet" | "leak" | `client-${number}`;

/** The two hosts that run the echo service and count the packets that reach them. */
export type EchoHost = "internet" | "leak";

export type VpnLinkState = "up" | "down" | "deleted";

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
  /** Per-run id; random when omitted. A lab with the same id is torn down and built again. */
  id?: string;
  /**
   * Who builds it, recorded in its state: `lab up`/`lab down`/`lab exec` without --id only pick
   * labs built by "lab up", never a test's lab. Default "library".
   */
  createdBy?: string;
  /**
   * The VPN: "veth" (default, fastest) is a veth named like the VPN interface whose routes
   * and resolv.conf the lab sets; "openvpn" is a real OpenVPN server in the VPN exit and client
   * in the gateway pod (TLS, throwaway certificates), which pushes the def1 routes and a DNS
   * server its up script writes into the gateway pod's resolv.conf.
   */
  vpn?: VpnKind;
  /**
   * The VPN link's state when the lab is built (default "up"). "deleted" with OpenVPN: the
   * server runs, the client is not started yet (start it with setVpnLink("up")), as when the
   * gateway's own containers start before the VPN container connects.
   */
  vpnLink?: VpnLinkState;
  /** OpenVPN's transport and pushes (vpn "openvpn" only): UDP 1194 by default, TCP 443 as an option. */
  openvpn?: Partial<OpenVpnSettings>;
  /**
   * Dual-stack pods (default off): pods' eth0 get an IPv6 address in LAB6.podCidr and an IPv6
   * default route via the node (LAB6.nodeIp), the node routes IPv6 and holds LAB6.serviceIp, and
   * IPv6 it forwards elsewhere is counted at the leak host.
   */
  ipv6?: boolean;
}

/** What an echo service has counted since it started (GET / and UDP datagrams; not /hits). */
export interface EchoHits {
  tcp: number;
  udp: number;
  /** Source IPs seen, in first-seen order, without ports. */
  sources: string[];
}

/** Packets that arrived on a host's eth0 (IPv4, plus IPv6 with a non-link-local source). */
export interface PacketCount {
  packets: number;
  bytes: number;
  /** IPv4 source addresses seen. */
  sources: string[];
}

/** The answer of an echo probe: the source address the echo service saw, or why none came. */
export type EchoReply = { ok: true; source: string } | { ok: false; error: string };

export interface ResolveResult {
  ok: boolean;
  addresses: string[];
  error?: string;
}

export interface Lab {
  readonly id: string;
  /** Namespace name of each pod/host, e.g. ns("gateway") === "pgw-<id>-gateway". */
  ns(pod: PodName): string;
  readonly clients: string[]; // ["client-0", ...]
  /** Directory holding the lab's settings.sh and nat.conf (mounted as the roles' config dir). */
  readonly configDir: string;
  /**
   * Per-lab scratch directory (resolv.conf copies, leases, logs): /run/pod-gateway-lab/<id>.
   * Each pod has <runDir>/<pod>/ (roleEnv gives it as POD_GATEWAY_RUN_DIR; the gateway's is
   * emptied by recreateGateway, like a new pod's /run); daemon logs are in <runDir>/logs/.
   */
  readonly runDir: string;
  /** Name of the gateway's VPN-like interface (LabOptions.vpnInterface). */
  readonly vpnInterface: string;
  /** Which VPN the lab runs (LabOptions.vpn). */
  readonly vpnKind: VpnKind;
  /** The real VPN's server and client (vpn "openvpn"); throws for the veth stand-in. */
  openvpn(): OpenVpnControl;
  /** Current gateway pod IP on the node network. */
  gatewayPodIp(): string;
  /** eth0 address of a pod or host (the gateway's current one for "gateway"). */
  podIp(pod: PodName): string;
  /**
   * Environment a role in this pod gets from the chart/webhook: gateway, K8S_DNS_ips, POD_NAME, ...
   * exec() and spawn() do NOT add it: pass `{ env: lab.roleEnv(pod) }` when running a role.
   */
  roleEnv(pod: PodName): Record<string, string>;
  /** Run a command in a pod's namespace and wait for it (env: this process's plus opts.env). */
  exec(pod: PodName, argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /**
   * Start a long-running command in a pod's namespace, in its own process group (killed by
   * destroy(), and by recreateGateway() when in the gateway). Read or cancel its pipes: a full
   * pipe blocks the child.
   */
  spawn(pod: PodName, argv: readonly string[], opts?: { env?: Record<string, string> }): Subprocess<"ignore", "pipe", "pipe">;
  /**
   * A container's own files (its run dir: what /run and the files it writes under /etc are in a
   * pod), deleted when restartContainer() restarts it: <runDir>/<pod>/containers/<container>.
   */
  containerDir(pod: PodName, container: ContainerName): string;
  /** roleEnv(pod) with the container's own run dir (RESOLV_CONF_COPY follows it). */
  containerEnv(pod: PodName, container: ContainerName): Record<string, string>;
  /**
   * Run a role as a container of a pod: `argv` (the binary and its arguments) in the pod's
   * namespace with containerEnv() plus opts.env, its dir created empty. Init containers are
   * waited for (returns when they exit); sidecars keep running. Throws when it is already running.
   */
  startContainer(pod: PodName, container: ContainerName, argv: readonly string[], opts?: { env?: Record<string, string> }): Promise<LabContainer>;
  /**
   * Restart a container as the kubelet does: SIGTERM (or opts.signal), SIGKILL after graceMs
   * (default 5000), its own files deleted, the same argv started again (an init container is run
   * to its end again). The pod's namespace, /etc/netns files and config dir are kept.
   */
  restartContainer(pod: PodName, container: ContainerName, opts?: { signal?: "SIGTERM" | "SIGKILL"; graceMs?: number }): Promise<LabContainer>;
  /** The container started last under this name in this pod (undefined when never started). */
  container(pod: PodName, container: ContainerName): LabContainer | undefined;
  /**
   * Delete the gateway pod's namespace (killing every process in it) and create it again with
   * the next pod IP — or with the same one (`sameIp`: a pod re-created on the same node by a
   * bridge CNI, or with a pinned IP; its eth0 gets a new MAC all the same); the VPN link comes
   * back in the state it had; the cluster DNS follows (verified before returning). Returns the IP.
   */
  recreateGateway(opts?: { sameIp?: boolean; unpublished?: boolean }): Promise<string>;
  /**
   * Point the cluster DNS's gateway name at the current gateway IP (verified). recreateGateway
   * does it unless `unpublished`: a headless Service lists a new pod only once it is ready.
   */
  publishGateway(): Promise<void>;
  /**
   * Take the VPN link down / up / delete it / add it back. "down" and "deleted" remove the
   * def1 routes (the kernel drops routes of a downed link), so the gateway's traffic falls back
   * to eth0 → node → leak host unless a kill switch stops it; "up" restores link, address and routes.
   * With OpenVPN: "deleted" stops the client (SIGTERM: down script, tun deleted), "down" sets
   * its tun device down under it, "up" (re)starts the client and waits until it is connected
   * and its routes are in place.
   */
  setVpnLink(state: VpnLinkState): Promise<void>;
  vpnLinkState(): VpnLinkState;
  /** Counters of what the echo services on the internet and leak hosts have seen. */
  echoHits(host: EchoHost): Promise<EchoHits>;
  /** Packets that reached the host at all (counted by nft in its namespace; needs `nft`). */
  packetsSeen(host: EchoHost): Promise<PacketCount>;
  /**
   * From a pod, ask an echo service (the internet or leak host, or any IP) which source address
   * it sees. tcp: HTTP GET; udp: a datagram, re-sent every 200 ms until the timeout (default 2000 ms).
   */
  echoFrom(pod: PodName, target: EchoHost | string, proto: "tcp" | "udp", opts?: { port?: number; timeoutMs?: number }): Promise<EchoReply>;
  /** Resolve a name from inside a pod (A records), through `server` or the pod's resolv.conf. */
  resolve(pod: PodName, name: string, opts?: { server?: string; timeoutMs?: number }): Promise<ResolveResult>;
  /** The pod's resolv.conf as seen through `ip netns exec` (/etc/netns/<ns>/resolv.conf). */
  resolvConfPath(pod: PodName): string;
  /** Rewrite a pod's resolv.conf in place, as a VPN client does (running processes see it). */
  writeResolvConf(pod: PodName, text: string): Promise<void>;
  /** Remove every namespace, process, /etc/netns entry and file this lab made. Safe to call twice. */
  destroy(): Promise<void>;
}

/** One container the lab runs (Lab.startContainer). */
export interface LabContainer {
  readonly pod: PodName;
  readonly name: ContainerName;
  /** The current run's process (an init container's has exited when startContainer returns). */
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Exit code of the current run (null while running or when killed by a signal). */
  readonly exitCode: number | null;
  /** Times it was restarted (0 for the first run). */
  readonly restarts: number;
  /** Output (stdout and stderr) of the current run. */
  output(): string;
  /** Output of every run so far, each previous one ended by a "--- restarted ---" line (kubectl logs --previous). */
  allOutput(): string;
}
