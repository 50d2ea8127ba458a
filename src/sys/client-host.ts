// The client roles' host: reads the pod's network and applies planned changes through rtnetlink
// in-process (src/sys/netlink.ts) — no `ip`, no other program. One netlink socket for the
// process's lifetime (the sidecar keeps it); every request is answered before the call returns.
import { ipRouteFromNetlink, parseNetlinkFacts, protoNumber, type ClientFacts } from "../core/client/facts.ts";
import type { RouteGetResult } from "../core/client/isolation.ts";
import type { Change, RouteSpec } from "../core/client/plan.ts";
import type { ClientHost } from "../roles/client-init.ts";
import { PodGatewayError } from "../core/errors.ts";
import { Rtnl } from "./netlink.ts";

/** A change failed: what the role was doing, then the netlink error (operation, object, errno). */
export class ApplyError extends PodGatewayError {
  override name = "ApplyError";
  constructor(
    readonly what: string,
    readonly change: Change,
    cause: unknown,
  ) {
    super(`${what}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

function tableId(t: string | undefined): number {
  if (t === undefined || t === "main") return 254;
  if (/^\d+$/.test(t)) return Number(t);
  throw new Error(`route table ${JSON.stringify(t)}: only "main" or a number`);
}

/** A planned route as the netlink route operation takes it. */
export function netlinkRoute(r: RouteSpec, forDelete: boolean) {
  const proto = protoNumber(r.proto);
  return {
    family: r.family,
    dst: r.dst,
    ...(r.via !== undefined ? { via: r.via } : {}),
    ...(r.dev !== undefined ? { dev: r.dev } : {}),
    // The kernel ignores the flag on delete; the next hop and device select the route.
    ...(r.onlink && !forDelete ? { onlink: true } : {}),
    // An unknown protocol name (from somebody's rt_protos) is not repeated: it matches any.
    ...(proto !== undefined ? { protocol: proto } : {}),
    ...(r.metric ? { metric: r.metric } : {}),
    table: tableId(r.table),
  };
}

/** Lease lifetimes as whole seconds, at least one (zero would remove the address at once). */
const seconds = (l: number | "forever"): number | "forever" => (l === "forever" ? "forever" : Math.max(1, Math.ceil(l)));

export class NetlinkClientHost implements ClientHost {
  private rtnl: Rtnl | undefined;

  private nl(): Rtnl {
    this.rtnl ??= Rtnl.open();
    return this.rtnl;
  }

  close(): void {
    this.rtnl?.close();
    this.rtnl = undefined;
  }

  async readFacts(): Promise<ClientFacts> {
    const nl = this.nl();
    return parseNetlinkFacts(nl.links(), nl.addresses(4), nl.routes());
  }

  /** Route lookups first (what the isolation check asks), then the facts, on one socket. */
  async readFactsAndRoutes(dsts: readonly string[]): Promise<{ facts: ClientFacts; routes: RouteGetResult[] }> {
    const nl = this.nl();
    const links = nl.links();
    const names = new Map(links.map((l) => [l.index, l.name]));
    const routes = dsts.map((dst): RouteGetResult => {
      const g = nl.routeGet(dst);
      if (!g.ok) return g;
      const r = ipRouteFromNetlink(g.route, names);
      return { dst, ok: true, ...(r.dev !== undefined ? { dev: r.dev } : {}), ...(r.gateway !== undefined ? { gateway: r.gateway } : {}), ...(r.type !== undefined ? { type: r.type } : {}) };
    });
    return { facts: parseNetlinkFacts(links, nl.addresses(4), nl.routes()), routes };
  }

  async apply(changes: readonly Change[], what: string): Promise<void> {
    const nl = this.nl();
    for (const c of changes) {
      try {
        applyChange(nl, c);
      } catch (e) {
        throw new ApplyError(what, c, e);
      }
    }
  }
}

/** One planned change, as rtnetlink requests. */
export function applyChange(nl: Rtnl, c: Change): void {
  switch (c.op) {
    case "route-add":
      return nl.route("add", netlinkRoute(c.route, false));
    case "route-replace":
      return nl.route("replace", netlinkRoute(c.route, false));
    case "route-del":
      return nl.route("delete", netlinkRoute(c.route, true));
    case "link-del":
      return nl.deleteLink(c.dev);
    case "vxlan-add": {
      const v = c.vxlan;
      // learning off: the client only ever talks to the gateway, so every frame goes to the
      // all-zero FDB entry (the remote). A learned entry for the gateway's stable MAC would keep
      // pointing at the old pod IP after the gateway moves, and nothing would ever correct it.
      return nl.createVxlan({ name: v.name, vni: v.vni, port: v.port, dev: v.dev, remote: v.remote, mac: v.mac, mtu: v.mtu, learning: false, up: true });
    }
    case "vxlan-set-remote":
      return nl.setVxlanRemote(c.dev, c.remote);
    case "link-set":
      return nl.setLink(c.dev, { ...(c.mtu !== undefined ? { mtu: c.mtu } : {}), ...(c.up ? { up: true } : {}) });
    case "addr-set":
      return nl.address("replace", { family: 4, dev: c.dev, local: c.local, prefixlen: c.prefixlen, valid: seconds(c.lifetime), preferred: seconds(c.lifetime) });
    case "addr-del":
      return nl.address("delete", { family: 4, dev: c.dev, local: c.local, prefixlen: c.prefixlen });
    case "neigh-flush":
      nl.flushNeighbours(c.dev);
      return;
  }
}
