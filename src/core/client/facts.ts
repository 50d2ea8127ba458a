// The client pod's network as the planner sees it, decoded from `ip -j` output. Pure: the
// role reads the JSON (src/roles/client-init.ts) and hands it here.
import type { IpAddr, IpRoute } from "../net/ip-json.ts";
import { POD_IF, VXLAN_IF } from "../net/vxlan.ts";

export interface AddressFact {
  local: string;
  prefixlen: number;
  /** Seconds left; Infinity for "forever" (the kernel prints 4294967295). */
  validLft: number;
  preferredLft: number;
}

export interface VxlanFact {
  kind: string | undefined; // "vxlan" unless something else took the name
  mac: string | undefined;
  mtu: number;
  up: boolean;
  vni: number | undefined;
  port: number | undefined;
  /** Lower device (info_data.link). */
  dev: string | undefined;
  /** Unicast remote: the all-zero FDB entry the kernel keeps for it. */
  remote: string | undefined;
  learning: boolean | undefined;
  /** IPv4 addresses only. */
  addresses: AddressFact[];
}

export interface ClientFacts {
  eth0: { mtu: number; up: boolean; addresses: string[] } | undefined;
  vxlan: VxlanFact | undefined;
  /** IPv4 routes of the main table. */
  routes4: IpRoute[];
  /** IPv6 default routes of the main table. */
  defaults6: IpRoute[];
}

const FOREVER = 4294967295;

function lifetime(v: unknown): number {
  if (typeof v !== "number") return Infinity;
  return v >= FOREVER ? Infinity : v;
}

function isUp(flags: string[] | undefined): boolean {
  return (flags ?? []).includes("UP");
}

/** links: `ip -j -d addr show`; routes4: `ip -j -4 route show table main`; routes6: `ip -j -6 route show table main`. */
export function parseClientFacts(links: IpAddr[], routes4: IpRoute[], routes6: IpRoute[]): ClientFacts {
  const eth = links.find((l) => l.ifname === POD_IF);
  const vx = links.find((l) => l.ifname === VXLAN_IF);
  let vxlan: VxlanFact | undefined;
  if (vx) {
    const d = (vx.linkinfo?.info_data ?? {}) as Record<string, unknown>;
    vxlan = {
      kind: vx.linkinfo?.info_kind,
      mac: vx.address,
      mtu: vx.mtu,
      up: isUp(vx.flags),
      vni: typeof d.id === "number" ? d.id : undefined,
      port: typeof d.port === "number" ? d.port : undefined,
      dev: typeof d.link === "string" ? d.link : vx.link,
      remote: typeof d.remote === "string" ? d.remote : undefined,
      learning: typeof d.learning === "boolean" ? d.learning : undefined,
      addresses: (vx.addr_info ?? [])
        .filter((a) => a.family === "inet")
        .map((a) => {
          const r = a as unknown as Record<string, unknown>;
          return { local: a.local, prefixlen: a.prefixlen, validLft: lifetime(r.valid_life_time), preferredLft: lifetime(r.preferred_life_time) };
        }),
    };
  }
  return {
    eth0: eth ? { mtu: eth.mtu, up: isUp(eth.flags), addresses: (eth.addr_info ?? []).filter((a) => a.family === "inet").map((a) => a.local) } : undefined,
    vxlan,
    routes4: routes4.filter((r) => (r.table ?? "main") === "main"),
    defaults6: routes6.filter((r) => r.dst === "default" && (r.table ?? "main") === "main"),
  };
}
