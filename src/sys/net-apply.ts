// Executes the typed change model (src/core/net/change.ts) with the netlink layer: one change,
// one or a few rtnetlink requests. Errors are the layer's NetlinkError (operation, object, errno).
import { protoNumber } from "../core/client/facts.ts";
import type { NetChange, RouteSpec } from "../core/net/change.ts";
import type { Rtnl } from "./netlink.ts";

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

/** One planned change, as rtnetlink requests. */
export function applyNetChange(nl: Rtnl, c: NetChange): void {
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
      nl.flushNeighbours(c.dev, c.to);
      return;
  }
}
