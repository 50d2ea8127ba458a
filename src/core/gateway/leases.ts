// dnsmasq's lease file, rebuilt for a sidecar whose filesystem is fresh (a container restart):
// dnsmasq runs authoritative and without ping checks, so with an empty lease file it could hand a
// new client an address a running client still uses. The kernel remembers who is there: vxlan0's
// neighbour entries map the clients' addresses to their MACs. Pure: neighbours in, file text out.
import { leaseSeconds } from "../settings/values.ts";

export interface Neighbour {
  dst: string;
  lladdr?: string;
  state?: string[];
}

/**
 * Lease lines (`<expiry> <mac> <ip> * *`, dnsmasq's format; expiry 0 for infinite leases) for
 * every neighbour with a MAC whose address is in the DHCP range, one per address, each running a
 * whole lease time from now: the client keeps its address when it renews, and no one else gets it.
 */
export function renderLeaseSeed(neighbours: readonly Neighbour[], o: { network: string; firstDynamic: number; leaseTime: string; nowSeconds: number }): string {
  const secs = leaseSeconds(o.leaseTime);
  const expiry = secs === "infinite" || secs === undefined ? 0 : o.nowSeconds + secs;
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const n of neighbours) {
    if (!n.lladdr || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(n.lladdr)) continue;
    if ((n.state ?? []).some((s) => s === "FAILED" || s === "INCOMPLETE")) continue;
    const parts = n.dst.split(".");
    if (parts.length !== 4 || parts.slice(0, 3).join(".") !== o.network) continue;
    const octet = Number(parts[3]);
    if (!(octet >= o.firstDynamic && octet <= 254) || seen.has(n.dst)) continue;
    seen.add(n.dst);
    lines.push(`${expiry} ${n.lladdr.toLowerCase()} ${n.dst} * *`);
  }
  return lines.map((l) => `${l}\n`).join("");
}
