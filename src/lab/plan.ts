// The lab as data: namespace and interface names, addresses, the `ip` commands that build each
// namespace, and the text of every file the lab writes (settings.sh, dnsmasq configs, hosts,
// resolv.conf, the nft counters). Pure: src/lab/lab.ts applies what this plans.
import { checkOpenVpnSettings, type OpenVpnSettings, type VpnKind } from "./openvpn-plan.ts";
import { LAB, LAB6, type PodName, type VpnLinkState } from "./types.ts";

/** Every lab namespace is `pgw-<id>-<pod>`; `lab down` finds leftovers by this prefix. */
export const NS_PREFIX = "pgw-";
/** Per-lab state and scratch files live in RUN_ROOT/<id> (tmpfs: gone after a reboot, like the namespaces). */
export const RUN_ROOT = "/run/pod-gateway-lab";
// .10 to .209: the gateway's later addresses start at .210. 200 clients is the scale bench's
// largest lab (issue 11 §6); a lab that size needs the kernel's neighbour table raised (PLATFORM.md).
export const MAX_CLIENTS = 200;
export const STATE_VERSION = 1;

export interface LabShape {
  id: string;
  clients: number;
  vpnInterface: string;
  /** How many times the gateway pod was re-created with a new IP (0 for the first one): names its IP. */
  gatewayGeneration: number;
  vpnLink: VpnLinkState;
  /** The VPN kind (absent in state files of older labs: the veth stand-in). */
  vpn?: VpnKind;
  /** The real VPN's settings (vpn "openvpn"). */
  openvpn?: OpenVpnSettings;
  /** Dual-stack pods (LabOptions.ipv6); absent in older state files: IPv4 only. */
  ipv6?: boolean;
}

export function vpnKindOf(shape: Pick<LabShape, "vpn">): VpnKind {
  return shape.vpn ?? "veth";
}

/** What `lab up` records in RUN_ROOT/<id>/state.json so later commands can find the lab. */
export interface LabState extends LabShape {
  version: number;
  configDir: string;
  runDir: string;
  createdAt: string;
  /** "lab up", "lab demo", "library" (tests): commands without --id only pick "lab up" labs. */
  createdBy?: string;
}

export const CLI_OWNER = "lab up";

/**
 * Which labs a command without --id may mean: those `lab up` built. Labs of tests, demos, or
 * half-built ones (no state) are only ever named explicitly, so a bare `lab down` cannot pull
 * a running test's lab away.
 */
export function pickCliLabs(labs: readonly { id: string; state?: { createdBy?: string } }[]): { mine: string[]; others: string[] } {
  const mine = labs.filter((l) => l.state?.createdBy === CLI_OWNER).map((l) => l.id);
  return { mine, others: labs.map((l) => l.id).filter((id) => !mine.includes(id)) };
}

export type Cmd = string[];

// ---- names ----

export function nsName(id: string, pod: PodName): string {
  return `${NS_PREFIX}${id}-${pod}`;
}

const POD_RE = "node|gateway|vpn|internet|leak|client-\\d+";
const NS_RE = new RegExp(`^${NS_PREFIX}([a-z0-9]+)-(${POD_RE})$`);

/** The lab id and pod of a namespace name, or undefined when it is not a lab namespace. */
export function parseNsName(name: string): { id: string; pod: PodName } | undefined {
  const m = NS_RE.exec(name);
  return m ? { id: m[1]!, pod: m[2] as PodName } : undefined;
}

export function isValidLabId(id: string): boolean {
  return /^[a-z0-9]{1,16}$/.test(id);
}

/** Six lowercase alphanumerics from an injected random source (values in [0, 1)). */
export function makeLabId(random: () => number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  let s = "";
  for (let i = 0; i < 6; i++) s += alphabet[Math.floor(random() * alphabet.length) % alphabet.length];
  return s;
}

/** Interface names are at most 15 bytes (IFNAMSIZ - 1); eth0 and lo are taken in the gateway pod. */
export function checkVpnInterface(name: string): string | undefined {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) return `VPN interface name ${JSON.stringify(name)} must be 1-15 letters, digits, '_', '.' or '-'`;
  if (name === "eth0" || name === "lo") return `VPN interface name ${name} is taken by the gateway pod's own interfaces`;
  return undefined;
}

export function clientName(i: number): PodName {
  return `client-${i}`;
}

export function clientIndex(pod: PodName): number | undefined {
  const m = /^client-(\d+)$/.exec(pod);
  return m ? Number(m[1]) : undefined;
}

/** Namespaces in the order they are built: infrastructure first, then the pods. */
export function labPods(shape: Pick<LabShape, "clients">): PodName[] {
  const pods: PodName[] = ["node", "vpn", "internet", "leak", "gateway"];
  for (let i = 0; i < shape.clients; i++) pods.push(clientName(i));
  return pods;
}

// ---- addresses ----

const POD_NET = "198.18.0";

/** Gateway pod IP of a generation: .2 to .9, then .210 up to .254 (clients own .10 to .209). */
export function gatewayIpFor(generation: number): string {
  const octet = generation < 8 ? 2 + generation : 202 + generation;
  if (octet > 254) throw new Error(`gateway re-created ${generation} times: the lab's pod network has no address left for it`);
  return `${POD_NET}.${octet}`;
}

export function clientIp(i: number): string {
  if (i < 0 || i >= MAX_CLIENTS) throw new Error(`client index ${i} is outside 0..${MAX_CLIENTS - 1}`);
  return `${POD_NET}.${10 + i}`;
}

export function podIpOf(shape: LabShape, pod: PodName): string {
  switch (pod) {
    case "node":
      return LAB.nodeIp;
    case "gateway":
      return gatewayIpFor(shape.gatewayGeneration);
    case "vpn":
      return LAB.vpnExitIp;
    case "internet":
      return LAB.internetIp;
    case "leak":
      return LAB.leakHostIp;
  }
  const i = clientIndex(pod);
  if (i === undefined) throw new Error(`unknown lab pod ${pod}`);
  return clientIp(i);
}

// ---- interfaces: the node's bridge ports and the VPN exit's links ----

export const NODE_BRIDGE = "br0";
export const NODE_BRIDGE_MAC = "02:00:c6:12:00:01"; // locally administered; c6:12 = 198.18
/** Node-side end of a pod's eth0. */
export function nodePort(pod: PodName): string {
  if (pod === "gateway") return "veth-gw";
  if (pod === "leak") return "veth-leak";
  const i = clientIndex(pod);
  if (i === undefined) throw new Error(`${pod} has no port on the node`);
  return `veth-c${i}`;
}
/** VPN-exit-side end of the gateway's VPN interface, and its link to the internet host. */
export const VPN_GATEWAY_PORT = "veth-gw";
export const VPN_INTERNET_PORT = "veth-inet";
/** With OpenVPN: the node's link to the VPN server (node side, VPN exit side). */
export const NODE_VPN_PORT = "veth-vpn";
export const VPN_UPLINK = "uplink0";

// ---- sysctls, one `sysctl -w` per namespace ----

export function planSysctls(pod: PodName, ipv6 = false): string[] {
  // IPv6 DAD would keep link-local addresses tentative for a second after every link comes up.
  const common = ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"];
  switch (pod) {
    case "node":
    case "vpn":
      // Routers. rp_filter off: IPv4 settings of a new namespace are copied from the host's,
      // and a strict host would make the lab's asymmetric test paths depend on the machine.
      return [
        ...common, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
        ...(ipv6 && pod === "node" ? ["net.ipv6.conf.all.forwarding=1"] : []),
      ];
    case "internet":
    case "leak":
      // The leak host is the node's uplink but forwards nothing: whatever reaches it is counted and dropped.
      return [...common, "net.ipv4.ip_forward=0", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"];
    default:
      // Pods start with forwarding off (copied from the host otherwise), so a test proves that
      // gateway-init turns it on. rp_filter is inherited, as in a Kubernetes pod.
      return [...common, "net.ipv4.ip_forward=0"];
  }
}

// ---- links (created from the host namespace, each end straight into its namespace) ----

function veth(name: string, ns: string, peer: string, peerNs: string): Cmd {
  // Created directly in the target namespaces: the host's own namespace never holds them,
  // so a name clash with the host's interfaces is impossible.
  return ["link", "add", name, "netns", ns, "type", "veth", "peer", "name", peer, "netns", peerNs];
}

/** The gateway's eth0 pair (to the node's bridge). */
export function planGatewayEthVeth(shape: LabShape): Cmd {
  return veth("eth0", nsName(shape.id, "gateway"), nodePort("gateway"), nsName(shape.id, "node"));
}

/** The VPN link: a veth named like the VPN interface, the WireGuard/OpenVPN stand-in. */
export function planVpnVeth(shape: LabShape): Cmd {
  return veth(shape.vpnInterface, nsName(shape.id, "gateway"), VPN_GATEWAY_PORT, nsName(shape.id, "vpn"));
}

export function planVeths(shape: LabShape): Cmd[] {
  const node = nsName(shape.id, "node");
  const cmds: Cmd[] = [
    veth("eth0", nsName(shape.id, "leak"), nodePort("leak"), node),
    veth("eth0", nsName(shape.id, "internet"), VPN_INTERNET_PORT, nsName(shape.id, "vpn")),
    planGatewayEthVeth(shape),
  ];
  if (vpnKindOf(shape) === "openvpn") cmds.push(veth(NODE_VPN_PORT, node, VPN_UPLINK, nsName(shape.id, "vpn")));
  else if (shape.vpnLink !== "deleted") cmds.push(planVpnVeth(shape));
  for (let i = 0; i < shape.clients; i++) cmds.push(veth("eth0", nsName(shape.id, clientName(i)), nodePort(clientName(i)), node));
  return cmds;
}

// ---- per-namespace configuration (one `ip -n <ns> -batch -` each) ----

/** The gateway's side of the VPN link when it is up: address plus OpenVPN-style def1 routes. */
export function planVpnLinkUpGateway(shape: LabShape): Cmd[] {
  const dev = shape.vpnInterface;
  return [
    ["addr", "replace", `${LAB.vpnGatewayIp}/30`, "dev", dev],
    ["link", "set", dev, "up"],
    // def1: two /1 routes beat the default route without replacing it, so when the VPN link
    // goes away traffic falls back to eth0 — the leak a kill switch must stop.
    ["route", "replace", "0.0.0.0/1", "via", LAB.vpnExitIp, "dev", dev],
    ["route", "replace", "128.0.0.0/1", "via", LAB.vpnExitIp, "dev", dev],
  ];
}

export function planVpnLinkUpExit(): Cmd[] {
  return [
    ["addr", "replace", `${LAB.vpnExitIp}/30`, "dev", VPN_GATEWAY_PORT],
    ["link", "set", VPN_GATEWAY_PORT, "up"],
  ];
}

export function planPodConfig(shape: LabShape, pod: PodName): Cmd[] {
  const lo: Cmd = ["link", "set", "lo", "up"];
  switch (pod) {
    case "node": {
      const cmds: Cmd[] = [
        lo,
        // A fixed MAC: a bridge otherwise takes the lowest MAC of its ports, so re-creating the
        // gateway pod would change the pods' default-gateway MAC under their ARP caches.
        ["link", "add", NODE_BRIDGE, "address", NODE_BRIDGE_MAC, "type", "bridge"],
        ["addr", "add", `${LAB.nodeIp}/24`, "dev", NODE_BRIDGE],
        ["link", "set", NODE_BRIDGE, "up"],
        // Service IPs live on lo: a dummy interface needs a module that may be missing.
        ["addr", "add", `${LAB.clusterDnsIp}/32`, "dev", "lo"],
        ["addr", "add", `${LAB.apiServerIp}/32`, "dev", "lo"],
        ["addr", "add", `${LAB.nodeLeakIp}/24`, "dev", nodePort("leak")],
        ["link", "set", nodePort("leak"), "up"],
        // The node's uplink: anything the node forwards that is not for a pod or a service ends
        // at the leak host, where it is counted.
        ["route", "add", "default", "via", LAB.leakHostIp],
      ];
      const ports = ["gateway" as PodName, ...Array.from({ length: shape.clients }, (_, i) => clientName(i))];
      for (const p of ports) cmds.push(["link", "set", nodePort(p), "master", NODE_BRIDGE, "up"]);
      if (shape.ipv6)
        cmds.push(
          ["addr", "add", `${LAB6.nodeIp}/64`, "dev", NODE_BRIDGE, "nodad"],
          ["addr", "add", `${LAB6.serviceIp}/128`, "dev", "lo"],
          ["addr", "add", `${LAB6.nodeLeakIp}/64`, "dev", nodePort("leak"), "nodad"],
          ["route", "add", "::/0", "via", LAB6.leakHostIp],
        );
      if (vpnKindOf(shape) === "openvpn") cmds.push(["addr", "add", `${LAB.nodeVpnServerSideIp}/24`, "dev", NODE_VPN_PORT], ["link", "set", NODE_VPN_PORT, "up"]);
      return cmds;
    }
    case "vpn": {
      const cmds: Cmd[] = [
        lo,
        ["addr", "add", `${LAB.vpnExitInternetIp}/24`, "dev", VPN_INTERNET_PORT],
        ["link", "set", VPN_INTERNET_PORT, "up"],
        // The VPN's resolver inside VPN_LOCAL_CIDRS lives on the internet host.
        ["route", "add", `${LAB.vpnPrivateDnsIp}/32`, "via", LAB.internetIp],
      ];
      if (vpnKindOf(shape) === "openvpn")
        cmds.push(
          ["addr", "add", `${LAB.vpnServerIp}/24`, "dev", VPN_UPLINK],
          ["link", "set", VPN_UPLINK, "up"],
          // Replies to the gateway pod's eth0 address (the OpenVPN transport), un-NATed.
          ["route", "add", "198.18.0.0/16", "via", LAB.nodeVpnServerSideIp],
        );
      else if (shape.vpnLink !== "deleted") cmds.push(...planVpnLinkUpExit());
      return cmds;
    }
    case "internet":
      return [
        lo,
        ["addr", "add", `${LAB.internetIp}/24`, "dev", "eth0"],
        ["addr", "add", `${LAB.vpnPrivateDnsIp}/32`, "dev", "lo"],
        ["link", "set", "eth0", "up"],
        // Only the VPN side is routed back: un-NATed client addresses get no answer.
        ["route", "add", LAB.vpnCidr, "via", LAB.vpnExitInternetIp],
      ];
    case "leak":
      return [
        lo,
        ["addr", "add", `${LAB.leakHostIp}/24`, "dev", "eth0"],
        ["link", "set", "eth0", "up"],
        ["route", "add", "default", "via", LAB.nodeLeakIp],
        ...(shape.ipv6 ? [["addr", "add", `${LAB6.leakHostIp}/64`, "dev", "eth0", "nodad"], ["route", "add", "::/0", "via", LAB6.nodeLeakIp]] : []),
      ];
    case "gateway": {
      const cmds: Cmd[] = [
        lo,
        ["addr", "add", `${gatewayIpFor(shape.gatewayGeneration)}/24`, "dev", "eth0"],
        ["link", "set", "eth0", "up"],
        ["route", "add", "default", "via", LAB.nodeIp],
        ...podIpv6(shape, gatewayIpFor(shape.gatewayGeneration)),
      ];
      // With OpenVPN the client makes the VPN link (started once the namespaces are built).
      if (vpnKindOf(shape) === "openvpn") return cmds;
      if (shape.vpnLink === "up") cmds.push(...planVpnLinkUpGateway(shape));
      if (shape.vpnLink === "down") cmds.push(["addr", "replace", `${LAB.vpnGatewayIp}/30`, "dev", shape.vpnInterface]);
      return cmds;
    }
  }
  const i = clientIndex(pod);
  if (i === undefined) throw new Error(`unknown lab pod ${pod}`);
  return [lo, ["addr", "add", `${clientIp(i)}/24`, "dev", "eth0"], ["link", "set", "eth0", "up"], ["route", "add", "default", "via", LAB.nodeIp], ...podIpv6(shape, clientIp(i))];
}

/** The IPv6 address of a pod whose IPv4 address is given (198.18.0.N is fd00:18::N). */
export function podIp6(ip4: string): string {
  return `${LAB6.podCidr.slice(0, LAB6.podCidr.indexOf("::") + 2)}${ip4.split(".")[3]}`;
}

/** A dual-stack pod's eth0 (LabOptions.ipv6): its IPv6 address and default route via the node. */
function podIpv6(shape: LabShape, ip4: string): Cmd[] {
  if (!shape.ipv6) return [];
  return [["addr", "add", `${podIp6(ip4)}/64`, "dev", "eth0", "nodad"], ["route", "add", "::/0", "via", LAB6.nodeIp, "dev", "eth0"]];
}

// ---- files ----

export function runDirOf(id: string): string {
  return `${RUN_ROOT}/${id}`;
}

/** Pods that get their own /etc/netns/<ns>/resolv.conf (the others use the host's). */
export function hasResolvConf(pod: PodName): boolean {
  return pod === "gateway" || clientIndex(pod) !== undefined;
}

/** A pod's resolv.conf as the kubelet writes it (ClusterFirst, ndots 5). */
export function renderResolvConf(pod: PodName): string {
  const ns = pod === "gateway" ? "pod-gateway" : "default";
  const d = LAB.clusterDomain;
  return `search ${ns}.svc.${d} svc.${d} ${d}\nnameserver ${LAB.clusterDnsIp}\noptions ndots:5\n`;
}

/** settings.sh suited to the lab, in the chart's style (KEY="value"), then the test's extras. */
export function renderSettings(p: { id: string; vpnInterface: string; runDir: string; extra?: string; vpnTrafficPort?: number }): string {
  const lines = [
    "#!/bin/sh",
    `# Generated by pod-gateway lab ${p.id}`,
    // The whole lab range stays on eth0 (client) / goes around the VPN (gateway): the cluster
    // DNS and API server live in 198.18.1.0/24, pods in 198.18.0.0/24.
    `NOT_ROUTED_TO_GATEWAY_CIDRS="198.18.0.0/16"`,
    `VPN_LOCAL_CIDRS="198.18.0.0/16"`,
    `VPN_INTERFACE="${p.vpnInterface}"`,
    // The port the gateway's own VPN client may use out of eth0: the OpenVPN server's.
    `VPN_TRAFFIC_PORT="${p.vpnTrafficPort ?? 443}"`,
    // Never the shipped /etc/resolv_copy.conf: `ip netns exec` does not isolate /etc, so the
    // sidecar would write the host's /etc.
    // A container the lab runs as such (Lab.startContainer) has its own run dir, so the copy is
    // in the gateway-sidecar's own files, gone when it restarts, as /etc/resolv_copy.conf is in a pod.
    `RESOLV_CONF_COPY="\${POD_GATEWAY_RUN_DIR:-${p.runDir}/gateway}/resolv_copy.conf"`,
    // No DNSSEC: the lab has no signed root to validate against, every answer would be bogus.
    `GATEWAY_ENABLE_DNSSEC="false"`,
  ];
  const extra = p.extra?.trim() ? `\n# extra settings\n${p.extra.trimEnd()}\n` : "";
  return lines.join("\n") + "\n" + extra;
}

/** addn-hosts of the cluster DNS: the gateway Service name follows the gateway pod. */
export function renderClusterHosts(gatewayIp: string): string {
  return [
    `${gatewayIp} ${LAB.gatewayName}`,
    `${LAB.apiServerIp} ${LAB.apiServerName}`,
    `${LAB.clusterDnsIp} kube-dns.kube-system.svc.${LAB.clusterDomain}`,
    "",
  ].join("\n");
}

function dnsmasqCommon(dir: string, listen: string): string[] {
  return [
    // Nothing from the host: no /etc/resolv.conf upstreams, no /etc/hosts.
    "no-resolv",
    "no-hosts",
    `listen-address=${listen}`,
    "bind-interfaces",
    // Several labs (and the gateway sidecar's dnsmasq) run at once: never the default /run/dnsmasq.pid.
    `pid-file=${dir}/dnsmasq.pid`,
    // Root keeps the files under the lab's run dir readable on SIGHUP whatever the umask.
    "user=root",
    "log-facility=-",
    "log-queries",
  ];
}

/** The node's cluster DNS: cluster.local from the hosts file, everything else refused. */
export function renderClusterDnsConf(dir: string): string {
  return [
    "# pod-gateway lab: cluster DNS (node namespace)",
    ...dnsmasqCommon(dir, LAB.clusterDnsIp),
    `addn-hosts=${dir}/hosts`,
    // Unknown cluster names get NXDOMAIN (as CoreDNS answers), not REFUSED.
    `local=/${LAB.clusterDomain}/`,
    "",
  ].join("\n");
}

/** The VPN provider's DNS on the internet host: only *.internet.test. */
export function renderVpnDnsConf(dir: string): string {
  const domain = LAB.internetName.split(".").slice(1).join(".");
  return ["# pod-gateway lab: the VPN's DNS (internet namespace)", ...dnsmasqCommon(dir, `${LAB.vpnDnsIp},${LAB.vpnPrivateDnsIp}`), `address=/${domain}/${LAB.internetIp}`, ""].join("\n");
}

/**
 * nft counters on an echo host's eth0: IPv4 packets (and their sources), and IPv6 packets
 * other than link-local chatter. Prerouting at raw priority sees a packet before routing
 * decides to drop it (the leak host forwards nothing).
 */
export const COUNTER_TABLE = "pgw_lab";
export function renderCounters(): string {
  return `table inet ${COUNTER_TABLE} {
  set sources4 { type ipv4_addr; size 65535; flags dynamic; }
  counter ipv4 { }
  counter ipv6 { }
  chain prerouting {
    type filter hook prerouting priority -300; policy accept;
    iifname "eth0" meta nfproto ipv4 counter name "ipv4" add @sources4 { ip saddr }
    iifname "eth0" meta nfproto ipv6 ip6 saddr != { ::, fe80::/10 } counter name "ipv6"
  }
}
`;
}

/** Reads `nft -j list table inet pgw_lab` into packet totals and IPv4 sources. */
export function parseCounters(json: string): { packets: number; bytes: number; sources: string[] } {
  const doc = JSON.parse(json) as { nftables?: Record<string, any>[] };
  let packets = 0;
  let bytes = 0;
  const sources: string[] = [];
  let found = false;
  for (const item of doc.nftables ?? []) {
    if (item.counter && item.counter.table === COUNTER_TABLE) {
      found = true;
      packets += Number(item.counter.packets ?? 0);
      bytes += Number(item.counter.bytes ?? 0);
    }
    if (item.set && item.set.table === COUNTER_TABLE && item.set.name === "sources4") {
      for (const e of item.set.elem ?? []) {
        // Plain elements are strings; elements with expiry/counters are {elem: {val: ...}}.
        const v = typeof e === "string" ? e : e?.elem?.val;
        if (typeof v === "string") sources.push(v);
      }
    }
  }
  if (!found) throw new Error(`nft table inet ${COUNTER_TABLE} has no counters`);
  return { packets, bytes, sources: sources.sort(compareIp) };
}

function compareIp(a: string, b: string): number {
  const n = (s: string) => s.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  return n(a) - n(b);
}

// ---- the environment the chart and the webhook give each role ----

/** A pod's own writable directory in the lab (what /run is in its containers). */
export function podRunDir(runDir: string, pod: PodName): string {
  return `${runDir}/${pod}`;
}

/** The containers of the lab's pods, in the order a pod starts them (init first). */
export const GATEWAY_CONTAINERS = ["gateway-init", "gateway-sidecar"] as const;
export const CLIENT_CONTAINERS = ["client-init", "client-sidecar"] as const;
export type ContainerName = (typeof GATEWAY_CONTAINERS)[number] | (typeof CLIENT_CONTAINERS)[number];

/** Why `container` cannot run in `pod`, or undefined when it can. */
export function checkContainer(pod: PodName, container: string): string | undefined {
  const allowed: readonly string[] = pod === "gateway" ? GATEWAY_CONTAINERS : clientIndex(pod) !== undefined ? CLIENT_CONTAINERS : [];
  if (allowed.includes(container)) return undefined;
  return allowed.length ? `${pod} has no container ${JSON.stringify(container)} (it has ${allowed.join(", ")})` : `${pod} is not a pod with containers (only the gateway and client pods are)`;
}

/**
 * A container's own writable files (its image's /run and /etc as far as our roles write them):
 * deleted when the lab restarts the container. What persists across a restart is the pod's:
 * /etc/netns/<ns>/ (resolv.conf, as the kubelet's mounts) and the config dir.
 */
export function containerDir(runDir: string, pod: PodName, container: ContainerName): string {
  return `${podRunDir(runDir, pod)}/containers/${container}`;
}

/** renderRoleEnv for one container: its run dir (and with it RESOLV_CONF_COPY) is its own. */
export function renderContainerEnv(pod: PodName, container: ContainerName, configDir: string, runDir: string): Record<string, string> {
  return { ...renderRoleEnv(pod, configDir, runDir), POD_GATEWAY_RUN_DIR: containerDir(runDir, pod, container) };
}

export function renderRoleEnv(pod: PodName, configDir: string, runDir: string): Record<string, string> {
  const common = {
    POD_GATEWAY_CONFIG_DIR: configDir,
    // The roles' state (dnsmasq config, leases) stays in the lab, never the host's /run/pod-gateway
    // that every lab (and the host) would share. This is the pod's dir (one shared by its
    // containers, like an emptyDir); renderContainerEnv gives each container its own.
    POD_GATEWAY_RUN_DIR: podRunDir(runDir, pod),
    // Every pod sees the API server Service; it also satisfies the host-safety check, which is
    // right here: the role does run in its own network namespace.
    KUBERNETES_SERVICE_HOST: LAB.apiServerIp,
    KUBERNETES_SERVICE_PORT: "443",
    K8S_DNS_ips: LAB.clusterDnsIp,
    LOG_LEVEL: "debug",
  };
  if (pod === "gateway") return { ...common, POD_NAME: "gateway", POD_NAMESPACE: "pod-gateway" };
  if (clientIndex(pod) !== undefined)
    return {
      ...common,
      // What the admission webhook injects into a routed pod's containers.
      gateway: LAB.gatewayName,
      DNS_ips: LAB.clusterDnsIp,
      DNS: "172.16.0.1",
      POD_NAME: pod,
      POD_NAMESPACE: "default",
      // The name the webhook gives the sidecar container; set explicitly so a CONTAINER_NAME in
      // the caller's own environment (some CI sandboxes set one) never reaches the roles.
      CONTAINER_NAME: "gateway-sidecar",
    };
  return {};
}

// ---- state file ----

export function renderState(s: LabState): string {
  return JSON.stringify(s, null, 2) + "\n";
}

export function parseState(text: string, file: string): LabState {
  let v: any;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`reading lab state ${file}: ${(e as Error).message}`);
  }
  const bad = (what: string) => new Error(`reading lab state ${file}: ${what}`);
  if (v?.version !== STATE_VERSION) throw bad(`version ${v?.version} is not ${STATE_VERSION}`);
  if (typeof v.id !== "string" || !isValidLabId(v.id)) throw bad("bad id");
  if (!Number.isInteger(v.clients) || v.clients < 0 || v.clients > MAX_CLIENTS) throw bad("bad clients");
  if (typeof v.vpnInterface !== "string" || checkVpnInterface(v.vpnInterface)) throw bad("bad vpnInterface");
  if (!Number.isInteger(v.gatewayGeneration) || v.gatewayGeneration < 0) throw bad("bad gatewayGeneration");
  if (!["up", "down", "deleted"].includes(v.vpnLink)) throw bad("bad vpnLink");
  if (typeof v.configDir !== "string" || typeof v.runDir !== "string") throw bad("bad directories");
  if (v.vpn !== undefined && v.vpn !== "veth" && v.vpn !== "openvpn") throw bad("bad vpn");
  if (v.ipv6 !== undefined && typeof v.ipv6 !== "boolean") throw bad("bad ipv6");
  if (v.vpn === "openvpn" && (typeof v.openvpn !== "object" || v.openvpn === null || checkOpenVpnSettings(v.openvpn).length)) throw bad("bad openvpn settings");
  return v as LabState;
}
