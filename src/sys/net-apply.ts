// Executes the typed change model (src/core/net/change.ts) with the netlink layer: one change,
// one or a few rtnetlink requests. Errors are the layer's NetlinkError (operation, object, errno).
import { protoNumber } from "../core/client/facts.ts";
import { formatChange, type NetChange, type RouteSpec, type RuleSpec } from "../core/net/change.ts";
import { PodGatewayError } from "../core/errors.ts";
import type { Rtnl } from "./netlink.ts";

function tableId(t: string | undefined): number {
  if (t === undefined || t === "main") return 254;
  if (t === "local") return 255;
  if (t === "default") return 253;
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
    ...(r.type !== undefined && r.type !== "unicast" ? { type: r.type } : {}),
    ...(r.src !== undefined && !forDelete ? { prefsrc: r.src } : {}),
  };
}

/** A planned IPv4 rule as the netlink rule operation takes it. */
export function netlinkRule(r: RuleSpec) {
  return {
    family: 4 as const,
    priority: r.pref,
    table: tableId(r.table),
    ...(r.from !== undefined ? { from: r.from } : {}),
    ...(r.to !== undefined ? { to: r.to } : {}),
    ...(r.iif !== undefined ? { iif: r.iif } : {}),
    ...(r.suppressPrefixlength !== undefined ? { suppressPrefixlen: r.suppressPrefixlength } : {}),
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
    case "vxlan-learning-add": {
      // The gateway's side: learning on (clients are found by their packets), no remote, created
      // down so that it is addressed before it carries anything.
      const v = c.vxlan;
      return nl.createVxlan({ name: v.name, vni: v.vni, port: v.port, dev: v.dev, mac: v.mac, mtu: v.mtu, learning: true });
    }
    case "rule-add":
      return nl.rule("add", netlinkRule(c.rule));
    case "rule-del":
      return nl.rule("delete", netlinkRule(c.rule));
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
    case "neigh-retrans":
      return nl.setNeighRetrans(c.dev, c.retransMs);
  }
}

/** A change of a list failed: which one (its index), the change with why it was planned, and the netlink error. */
export class NetApplyError extends PodGatewayError {
  override name = "NetApplyError";
  constructor(
    readonly index: number,
    readonly change: NetChange,
    cause: unknown,
  ) {
    super(`${formatChange(change)} (${change.why}): ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Apply changes in order; stops at the first that fails (NetApplyError naming it), as `ip -batch` did. */
export function applyNetChanges(nl: Rtnl, changes: readonly NetChange[]): void {
  changes.forEach((c, i) => {
    try {
      applyNetChange(nl, c);
    } catch (e) {
      throw new NetApplyError(i, c, e);
    }
  });
}
