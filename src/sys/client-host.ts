// The client roles' host: reads the pod's network and applies planned changes through rtnetlink
// in-process (src/sys/netlink.ts) — no `ip`, no other program. One netlink socket for the
// process's lifetime (the sidecar keeps it); every request is answered before the call returns.
import { ipRouteFromNetlink, parseNetlinkFacts, type ClientFacts } from "../core/client/facts.ts";
import type { RouteGetResult } from "../core/client/isolation.ts";
import type { Change } from "../core/client/plan.ts";
import type { ClientHost } from "../roles/client-init.ts";
import { PodGatewayError } from "../core/errors.ts";
import { LazyRtnl } from "./netlink.ts";
import { applyNetChange } from "./net-apply.ts";

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

export class NetlinkClientHost extends LazyRtnl implements ClientHost {
  async readFacts(): Promise<ClientFacts> {
    const nl = this.nl();
    return parseNetlinkFacts(nl.links(), nl.addresses(4), nl.routes());
  }

  /** Links, the route lookups the isolation check asks for, then addresses and routes: one socket, no program. */
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
        applyNetChange(nl, c);
      } catch (e) {
        throw new ApplyError(what, c, e);
      }
    }
  }
}
