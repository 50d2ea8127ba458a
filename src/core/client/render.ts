// Renders planned changes as `ip` argument lists (without the leading "ip"), one per change, for
// one `ip -batch -` process. Pure. Family is carried by the addresses themselves (an IPv6 default
// route is written "::/0"), since batch lines cannot take -4/-6.
import type { Change, RouteSpec } from "./plan.ts";

function routeArgs(r: RouteSpec, forDelete: boolean): string[] {
  const dst = r.dst === "default" && r.family === 6 ? "::/0" : r.dst === "default" ? "0.0.0.0/0" : r.dst;
  const a = [dst];
  if (r.via) a.push("via", r.via);
  if (r.dev) a.push("dev", r.dev);
  if (r.onlink && !forDelete) a.push("onlink");
  // Only numeric protocols are repeated: names come from rt_protos, which may differ from ours.
  if (r.proto !== undefined && /^\d+$/.test(String(r.proto))) a.push("proto", String(r.proto));
  if (r.metric) a.push("metric", String(r.metric));
  if (r.table && r.table !== "main") a.push("table", r.table);
  return a;
}

function lifetime(l: number | "forever"): string {
  return l === "forever" ? "forever" : String(Math.max(1, Math.ceil(l)));
}

export function renderIpCommand(c: Change): string[] {
  switch (c.op) {
    case "route-add":
      return ["route", "add", ...routeArgs(c.route, false)];
    case "route-replace":
      return ["route", "replace", ...routeArgs(c.route, false)];
    case "route-del":
      return ["route", "del", ...routeArgs(c.route, true)];
    case "link-del":
      return ["link", "del", c.dev];
    case "vxlan-add": {
      const v = c.vxlan;
      // nolearning: the client only ever talks to the gateway, so every frame goes to the all-zero
      // FDB entry (the remote). A learned entry for the gateway's stable MAC would keep pointing at
      // the old pod IP after the gateway moves, and nothing would ever correct it.
      return ["link", "add", v.name, "address", v.mac, "mtu", String(v.mtu), "up", "type", "vxlan", "id", String(v.vni), "dev", v.dev, "dstport", String(v.port), "remote", v.remote, "nolearning"];
    }
    case "vxlan-set-remote":
      return ["link", "set", c.dev, "type", "vxlan", "remote", c.remote];
    case "link-set":
      return ["link", "set", c.dev, ...(c.mtu !== undefined ? ["mtu", String(c.mtu)] : []), ...(c.up ? ["up"] : [])];
    case "addr-set":
      return ["addr", "replace", `${c.local}/${c.prefixlen}`, "dev", c.dev, "valid_lft", lifetime(c.lifetime), "preferred_lft", lifetime(c.lifetime)];
    case "addr-del":
      return ["addr", "del", `${c.local}/${c.prefixlen}`, "dev", c.dev];
    case "neigh-flush":
      return ["neigh", "flush", "dev", c.dev];
  }
}

export function renderIpBatch(changes: readonly Change[]): string[][] {
  return changes.map(renderIpCommand);
}

/** One line per change for the debug log: the command and why. */
export function describeChanges(changes: readonly Change[]): string[] {
  return changes.map((c) => `ip ${renderIpCommand(c).join(" ")}   # ${c.why}`);
}
