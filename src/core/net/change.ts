// The one model of changes to a pod's network: typed values planned by pure functions
// (src/core/client/plan.ts; the gateway's src/core/gateway/plan.ts and killswitch.ts), printed
// here for logs and tests, executed by the netlink layer (src/sys/net-apply.ts). The printed form is iproute2's command notation — what an operator
// would type to do the same by hand — though no `ip` runs.

export interface RouteSpec {
  family: 4 | 6;
  /** "default" or a canonical prefix "a.b.c.d/n". */
  dst: string;
  via?: string;
  dev?: string;
  onlink?: boolean;
  /** Our routes carry ROUTE_PROTO; deletes repeat the protocol that was read. */
  proto?: number | string;
  metric?: number;
  /** "main" (or undefined) or a table number ("4201"). */
  table?: string;
  /** Not unicast: an "unreachable" route has no next hop and no device. Deletes repeat the type read. */
  type?: RouteType;
  /** Preferred source address (a copied device route keeps its own). */
  src?: string;
}

/** Route types a change can name (rtm_type); "unicast" is the default and never printed. */
export type RouteType = "unicast" | "unreachable" | "blackhole" | "prohibit" | "throw";

export interface VxlanSpec {
  name: string;
  vni: number;
  port: number;
  dev: string;
  /** Unicast remote: the kernel keeps it as the all-zero FDB entry (flood to the gateway pod). */
  remote: string;
  mac: string;
  mtu: number;
  mtuWhy: string;
}

/**
 * The gateway's vxlan0: it learns the clients' MACs and pod IPs from their packets, so it has no
 * remote and learning stays on (the kernel's default). Created down; addressed, then set up.
 */
export interface LearningVxlanSpec {
  name: string;
  vni: number;
  port: number;
  dev: string;
  mac: string;
  mtu: number;
}

/** An IPv4 policy rule: preference, selectors, and the table it looks up ("main" or a number). */
export interface RuleSpec {
  pref: number;
  /** "a.b.c.d/n"; undefined: from all. */
  from?: string;
  to?: string;
  iif?: string;
  table: string;
  suppressPrefixlength?: number;
}

/** The changes the client roles plan (links, addresses, routes of a routed pod). */
export type PodChange =
  | { op: "route-add"; route: RouteSpec; why: string }
  | { op: "route-replace"; route: RouteSpec; why: string }
  | { op: "route-del"; route: RouteSpec; why: string }
  | { op: "link-del"; dev: string; why: string }
  | { op: "vxlan-add"; vxlan: VxlanSpec; why: string }
  | { op: "vxlan-set-remote"; dev: string; remote: string; why: string }
  | { op: "link-set"; dev: string; mtu?: number; up?: true; why: string }
  /** Add the address or set its lifetimes; `refresh` marks a lease's new lifetimes on an address already there. */
  | { op: "addr-set"; dev: string; local: string; prefixlen: number; lifetime: number | "forever"; refresh?: true; why: string }
  | { op: "addr-del"; dev: string; local: string; prefixlen: number; why: string }
  /** `to`: only the entry of that address (else every entry of the device); permanent entries stay. */
  | { op: "neigh-flush"; dev: string; to?: string; why: string }
  /** How soon the kernel asks again for a neighbour of `dev` that did not answer (`ip ntable change … retrans`). */
  | { op: "neigh-retrans"; dev: string; retransMs: number; why: string };

export type NetChange =
  | PodChange
  | { op: "vxlan-learning-add"; vxlan: LearningVxlanSpec; why: string }
  | { op: "rule-add"; rule: RuleSpec; why: string }
  /** Deletes the first rule matching the given selectors (at least preference and table). */
  | { op: "rule-del"; rule: RuleSpec; why: string };


/** Changes that alter state (refreshes of lease lifetimes do not count). */
export function stateChanges<C extends NetChange>(changes: readonly C[]): C[] {
  return changes.filter((c) => !(c.op === "addr-set" && c.refresh));
}

function routeWords(r: RouteSpec, forDelete: boolean): string[] {
  // Family is carried by the addresses themselves (an IPv6 default route is written "::/0").
  const dst = r.dst === "default" && r.family === 6 ? "::/0" : r.dst === "default" ? "0.0.0.0/0" : r.dst;
  const a = r.type && r.type !== "unicast" ? [r.type, dst] : [dst];
  if (r.via) a.push("via", r.via);
  if (r.dev) a.push("dev", r.dev);
  if (r.onlink && !forDelete) a.push("onlink");
  // Only numeric protocols are printed (and repeated on delete): names come from rt_protos.
  if (r.proto !== undefined && /^\d+$/.test(String(r.proto))) a.push("proto", String(r.proto));
  if (r.src && !forDelete) a.push("src", r.src);
  if (r.metric) a.push("metric", String(r.metric));
  if (r.table && r.table !== "main") a.push("table", r.table);
  return a;
}

function ruleWords(r: RuleSpec): string[] {
  const a = ["pref", String(r.pref)];
  if (r.from) a.push("from", r.from);
  if (r.to) a.push("to", r.to);
  if (r.iif) a.push("iif", r.iif);
  a.push("lookup", r.table);
  if (r.suppressPrefixlength !== undefined) a.push("suppress_prefixlength", String(r.suppressPrefixlength));
  return a;
}

function lifetimeWord(l: number | "forever"): string {
  return l === "forever" ? "forever" : String(Math.max(1, Math.ceil(l)));
}

/** One change as words of iproute2's notation ("route add 10.0.0.0/8 via 10.0.0.1 dev eth0 proto 201"). */
export function formatChangeWords(c: NetChange): string[] {
  switch (c.op) {
    case "route-add":
      return ["route", "add", ...routeWords(c.route, false)];
    case "route-replace":
      return ["route", "replace", ...routeWords(c.route, false)];
    case "route-del":
      return ["route", "del", ...routeWords(c.route, true)];
    case "link-del":
      return ["link", "del", c.dev];
    case "vxlan-add": {
      const v = c.vxlan;
      return ["link", "add", v.name, "address", v.mac, "mtu", String(v.mtu), "up", "type", "vxlan", "id", String(v.vni), "dev", v.dev, "dstport", String(v.port), "remote", v.remote, "nolearning"];
    }
    case "vxlan-learning-add": {
      const v = c.vxlan;
      return ["link", "add", v.name, "address", v.mac, "mtu", String(v.mtu), "type", "vxlan", "id", String(v.vni), "dev", v.dev, "dstport", String(v.port)];
    }
    case "rule-add":
      return ["rule", "add", ...ruleWords(c.rule)];
    case "rule-del":
      return ["rule", "del", ...ruleWords(c.rule)];
    case "vxlan-set-remote":
      return ["link", "set", c.dev, "type", "vxlan", "remote", c.remote];
    case "link-set":
      return ["link", "set", c.dev, ...(c.mtu !== undefined ? ["mtu", String(c.mtu)] : []), ...(c.up ? ["up"] : [])];
    case "addr-set":
      return ["addr", "replace", `${c.local}/${c.prefixlen}`, "dev", c.dev, "valid_lft", lifetimeWord(c.lifetime), "preferred_lft", lifetimeWord(c.lifetime)];
    case "addr-del":
      return ["addr", "del", `${c.local}/${c.prefixlen}`, "dev", c.dev];
    case "neigh-flush":
      return ["neigh", "flush", "dev", c.dev, ...(c.to !== undefined ? ["to", c.to] : [])];
    case "neigh-retrans":
      return ["ntable", "change", "name", "arp_cache", "dev", c.dev, "retrans", String(c.retransMs)];
  }
}

export function formatChange(c: NetChange): string {
  return formatChangeWords(c).join(" ");
}

/** One line per change for the debug log: the change and why. */
export function describeChanges(changes: readonly NetChange[]): string[] {
  return changes.map((c) => `${formatChange(c)}   # ${c.why}`);
}
