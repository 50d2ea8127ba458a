// The routed pod's identity on the overlay: vxlan0's MAC and the DHCP client identifier
// (option 61). Two live pods must never share them, and a restarted container of the same pod must
// keep them (its lease, and so its address, survive).
//
// The name alone is not unique: the webhook never sets POD_NAME, so the name is the hostname, and
// a StatefulSet's `db-0` in two namespaces, pods with the same spec.hostname, and long Deployment
// names the kernel's 63-character hostname limit cuts to one prefix all share it. eth0's IPv4
// address is unique among live pods (the CNI hands each pod sandbox its own) and stays the same
// across container restarts (the sandbox, and its network namespace, outlive the containers), so
// the identity is seeded from both. The name stays in the seed so that a pod that later gets a
// dead pod's IP does not inherit that pod's lease unless it also has its name.
import { isIpv4 } from "../net/ipv4.ts";
import { clientMac, stableMac } from "../net/vxlan.ts";

/** Option 61 holds at most 255 bytes; the type byte (0, "not a hardware address") takes one. */
export const CLIENT_ID_TEXT_MAX = 254;

export interface PodIdentity {
  /** The pod's name as read (POD_NAME, else the hostname). */
  name: string;
  /** eth0's IPv4 address the identity is seeded from; undefined when eth0 has none. */
  podIp: string | undefined;
  /** vxlan0's MAC: locally administered unicast. */
  mac: string;
  /** Option 61's text: "<name>@<pod IP>", the name cut to fit (the IP alone keeps it unique). */
  clientId: string;
  /** Option 12: the name (dnsmasq registers it as a DNS name on the overlay). */
  hostname: string;
  /** Set when the identity cannot be unique (no IPv4 on eth0): the caller warns. */
  warning?: string;
}

/** `text` cut to at most `max` UTF-8 bytes, never inside a character. */
function cutUtf8(text: string, max: number): string {
  const enc = new TextEncoder();
  if (enc.encode(text).length <= max) return text;
  let out = "";
  let bytes = 0;
  for (const ch of text) {
    const n = enc.encode(ch).length;
    if (bytes + n > max) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/**
 * The identity of the pod named `name` whose eth0 holds `eth0Ipv4` (as the kernel lists them, the
 * primary address first) on VNI `vni`. Pure: the same inputs give the same identity, in client-init,
 * in a re-run of it and in the sidecar.
 */
export function planPodIdentity(name: string, eth0Ipv4: readonly string[], vni: number): PodIdentity {
  const podIp = eth0Ipv4.find((a) => isIpv4(a));
  if (podIp === undefined)
    return {
      name,
      podIp,
      // The derivation before pod IPs were part of it.
      mac: clientMac(name, vni),
      clientId: cutUtf8(name, CLIENT_ID_TEXT_MAX),
      hostname: name,
      warning:
        `eth0 has no IPv4 address: the overlay identity (vxlan0's MAC, the DHCP client id) comes from the name ${JSON.stringify(name)} alone, ` +
        `so another pod with the same name would share it`,
    };
  const suffix = `@${podIp}`;
  return {
    name,
    podIp,
    mac: stableMac(`pod-gateway/client/${name}/ip=${podIp}/vni=${vni}`),
    clientId: cutUtf8(name, CLIENT_ID_TEXT_MAX - suffix.length) + suffix,
    hostname: name,
  };
}

/**
 * A nat.conf entry matched by a workload's name gives every pod of that workload the same static
 * address: two replicas, or the old and the new pod of a rolling update, then hold it at once and
 * the gateway delivers its traffic to either. Returns the warning the client logs, or undefined for
 * a match by the pod's own name (the reference's first-dash rule has its own warning).
 */
export function planSharedStaticWarning(m: { how: "exact" | "workload" | "prefix"; matched: string; entry: { name: string; file: string; line: number } }, podName: string, address: string): string | undefined {
  if (m.how !== "workload") return undefined;
  return (
    `nat.conf entry ${JSON.stringify(m.entry.name)} (${m.entry.file}:${m.entry.line}) matches pod ${JSON.stringify(podName)} by its workload's name ${JSON.stringify(m.matched)}: ` +
    `every pod of it gets ${address}, so two replicas (or the old and the new pod during a rolling update) hold it at once ` +
    `and the gateway sends its traffic to either; give each pod its own entry (a StatefulSet's pod names are stable) or run one replica`
  );
}
