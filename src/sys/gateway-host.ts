// The gateway roles' host: reads the pod's network and applies planned changes through rtnetlink
// in-process (src/sys/netlink.ts) — no `ip`. iptables/nft and dnsmasq stay programs
// (src/sys/firewall.ts, src/sys/supervisor.ts). One netlink socket for the process's lifetime
// (the sidecar keeps it); every request is answered before the call returns, so checks on
// timers never interleave inside one.
import { bridgeFdbFromNetlink, ipNeighFromNetlink, parseGatewayNetlink } from "../core/gateway/facts.ts";
import type { Neighbour } from "../core/gateway/leases.ts";
import type { GatewayFacts } from "../core/gateway/plan.ts";
import type { NetChange } from "../core/net/change.ts";
import { LazyRtnl } from "./netlink.ts";
import { applyNetChanges } from "./net-apply.ts";

export interface GatewayNet {
  /** Links with addresses, IPv4 routes of every table, IPv4 rules. */
  readFacts(): Promise<GatewayFacts>;
  /** Apply in order; the first failure stops the list (a NetApplyError naming the change). */
  apply(changes: readonly NetChange[]): Promise<void>;
  /** The link's MTU, or undefined when there is no such link. */
  linkMtu(name: string): Promise<number | undefined>;
  /** IPv4 neighbours of `dev` (as `ip -j neigh show dev`). */
  neighbours(dev: string): Promise<Neighbour[]>;
  /** Forwarding entries of `dev` (as `bridge -j fdb show dev`). */
  fdb(dev: string): Promise<{ mac: string; dst?: string; state?: string }[]>;
}

export class NetlinkGatewayNet extends LazyRtnl implements GatewayNet {
  async readFacts(): Promise<GatewayFacts> {
    const nl = this.nl();
    return parseGatewayNetlink(nl.links(), nl.addresses(), nl.routes(4), nl.rules(4));
  }

  async apply(changes: readonly NetChange[]): Promise<void> {
    applyNetChanges(this.nl(), changes);
  }

  async linkMtu(name: string): Promise<number | undefined> {
    const l = this.nl().link(name);
    return l ? (l.mtu ?? 0) : undefined;
  }

  async neighbours(dev: string): Promise<Neighbour[]> {
    return ipNeighFromNetlink(this.nl().neighbours(4, dev));
  }

  async fdb(dev: string): Promise<{ mac: string; dst?: string; state?: string }[]> {
    return bridgeFdbFromNetlink(this.nl().fdb(dev));
  }
}
