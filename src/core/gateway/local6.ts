// The IPv6 half of VPN_LOCAL_CIDRS on the gateway (issue 13 §3): each IPv6 CIDR is routed via
// eth0's own IPv6 gateway, marked with our protocol, as the IPv4 ones are (core/gateway/plan.ts);
// the kill switch accepts them for IPv6 (core/firewall/model.ts). Planned as values of the typed
// change model (core/net/change.ts), executed by the netlink layer (sys/net-apply.ts).
//
// A pod without IPv6 (no IPv6 default route on eth0, no route of ours from an earlier run) gets a
// warning, not an error: one ConfigMap often serves single-stack and dual-stack clusters, and the
// IPv6 CIDRs cannot matter where the pod has no IPv6.
import type { IpRoute } from "../net/ip-json.ts";
import { routeDst } from "../net/ip-json.ts";
import type { NetChange, RouteSpec } from "../net/change.ts";
import type { Settings } from "../settings/types.ts";
import { isOurProto, ROUTE_PROTO } from "../client/constants.ts";
import { POD_IF } from "../net/vxlan.ts";

export interface Gateway6 {
  via: string;
  onlink: boolean;
  source: "default route" | "routes of an earlier run";
}

export interface LocalRoutes6Plan {
  /** The routes wanted, one per IPv6 CIDR of VPN_LOCAL_CIDRS (none without a gateway). */
  routes: RouteSpec[];
  /** Only what differs from the routes read: nothing on a re-run over a correct pod. */
  changes: NetChange[];
  gateway: Gateway6 | undefined;
  warnings: string[];
}

const isUnicast = (r: IpRoute) => r.type === undefined || r.type === "unicast";

/**
 * eth0's IPv6 gateway: the lowest-metric IPv6 default route on eth0 that is not ours (usually the
 * link-local router, fe80::…), else the next hop of IPv6 routes an earlier run left with our
 * protocol (a VPN client that replaced the IPv6 default route since).
 */
export function findGateway6(routes6: readonly IpRoute[]): Gateway6 | undefined {
  const d = routes6
    .filter((r) => r.dst === "default" && r.dev === POD_IF && r.gateway && isUnicast(r) && !isOurProto(r.protocol))
    .sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0))[0];
  if (d) return { via: d.gateway!, onlink: (d.flags ?? []).includes("onlink"), source: "default route" };
  const ours = routes6.find((r) => r.dst !== "default" && r.dev === POD_IF && r.gateway && isOurProto(r.protocol));
  if (ours) return { via: ours.gateway!, onlink: (ours.flags ?? []).includes("onlink"), source: "routes of an earlier run" };
  return undefined;
}

/**
 * The IPv6 routes of VPN_LOCAL_CIDRS from the IPv6 routes of table main. Without VPN_INTERFACE
 * (a plain NAT gateway) none are planned, as for IPv4. Our routes (our protocol, on eth0) for
 * CIDRs no longer planned are deleted.
 */
export function planLocalRoutes6(s: Pick<Settings, "VPN_INTERFACE" | "VPN_LOCAL_CIDRS">, routes6: readonly IpRoute[]): LocalRoutes6Plan {
  const warnings: string[] = [];
  const routes: RouteSpec[] = [];
  const changes: NetChange[] = [];
  const cidrs = s.VPN_INTERFACE === "" ? [] : s.VPN_LOCAL_CIDRS.filter((c) => c.includes(":"));
  const gateway = findGateway6(routes6);
  if (cidrs.length && !gateway)
    warnings.push(`VPN_LOCAL_CIDRS ${cidrs.join(" ")}: not routed, ${POD_IF} has no IPv6 default route (the pod has no IPv6); the kill switch still accepts them`);
  if (gateway)
    for (const dst of cidrs)
      routes.push({ family: 6, dst, via: gateway.via, dev: POD_IF, ...(gateway.onlink ? { onlink: true } : {}), proto: ROUTE_PROTO });
  const wanted = (r: IpRoute) => routes.some((w) => w.dst === routeDst(r) && w.via === r.gateway);
  // Deletes first: a route of ours via an older gateway goes before the new one is added.
  for (const r of routes6) {
    if (r.dst === "default" || !isOurProto(r.protocol) || r.dev !== POD_IF || (isUnicast(r) && wanted(r))) continue;
    const dst = routeDst(r);
    changes.push({
      op: "route-del",
      route: { family: 6, dst, ...(r.gateway ? { via: r.gateway } : {}), dev: POD_IF, proto: r.protocol ?? ROUTE_PROTO, ...(r.metric ? { metric: r.metric } : {}) },
      why: routes.some((w) => w.dst === dst) ? `${dst} via ${r.gateway ?? "none"}: ${POD_IF}'s IPv6 gateway is ${gateway?.via} now` : `no longer in VPN_LOCAL_CIDRS: ${dst}`,
    });
  }
  for (const want of routes) {
    const have = routes6.some((r) => routeDst(r) === want.dst && isUnicast(r) && r.dev === POD_IF && r.gateway === want.via && isOurProto(r.protocol));
    if (!have) changes.push({ op: "route-replace", route: want, why: `VPN_LOCAL_CIDRS ${want.dst} stays on ${POD_IF} (via its IPv6 gateway ${want.via})` });
  }
  return { routes, changes, gateway, warnings };
}
