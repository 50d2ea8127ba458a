// Plans the client pod's network as data. client-init applies it in two phases:
//   1. planClientNetwork: keep cluster traffic on eth0 (routes with our proto), delete the
//      default routes, make vxlan0 what it should be. Computed BEFORE any change, after the
//      gateway name was resolved.
//   2. planClientAddress: vxlan0's overlay address and the default route via <net>.1.
// Each returns only the changes needed to get from the facts to the desired state, adds before
// deletes, so applying a plan twice makes the second plan empty, and a re-run after a container
// restart converges instead of duplicating or losing anything.
import { routeDst, type IpRoute } from "../net/ip-json.ts";
import { effectiveVxlanPort, gatewayOverlayIp, planVxlanMtu, POD_IF, VXLAN_IF } from "../net/vxlan.ts";
import { isOurProto, ROUTE_PROTO } from "./constants.ts";
import { planPodIdentity } from "./identity.ts";
import type { AddressFact, ClientFacts } from "./facts.ts";
import { formatPrefix4, parsePrefix4, prefixContains, type Prefix4 } from "../net/ipv4.ts";
import type { PodChange, RouteSpec, VxlanSpec } from "../net/change.ts";

// The change model (routes, vxlan, addresses, neighbours) is shared: src/core/net/change.ts.
export type { RouteSpec, VxlanSpec } from "../net/change.ts";
export { stateChanges } from "../net/change.ts";
/** A planned change to the pod's network (the client's name for NetChange). */
export type Change = PodChange;

export class PlanError extends Error {
  override name = "PlanError";
}

export interface OriginalGateway {
  /** Next hop; undefined when the default route was a device route ("default dev eth0"). */
  via: string | undefined;
  onlink: boolean;
  /** Where it was found: the default route itself, or our routes from an earlier run. */
  source: "default route" | "routes of an earlier run";
}

export interface ClientNetworkInput {
  podName: string;
  vni: number;
  /** VXLAN_PORT as configured (0 = kernel default). */
  port: number;
  /** VXLAN_IP_NETWORK, e.g. "172.16.0". */
  network: string;
  vpnInterfaceMtu: number | undefined;
  /** DHCP option 26 from the gateway (DHCP mode), honoured from MIN_DHCP_MTU up (planVxlanMtu). */
  dhcpMtu?: number | undefined;
  notRoutedCidrs: readonly string[];
  dnsServers: readonly string[];
  gatewayPodIp: string;
  kubernetesServiceHost: string | undefined;
}

export interface PinTarget {
  prefix: string;
  reason: string;
}

export interface ClientNetworkPlan {
  original: OriginalGateway | undefined;
  vxlan: VxlanSpec;
  /** Routes that keep cluster traffic on eth0 (desired). */
  pins: RouteSpec[];
  /** Targets not pinned because a route of the CNI already carries them (or not IPv4). */
  skipped: { target: string; reason: string; why: string }[];
  defaultRoute: RouteSpec;
  changes: Change[];
}

const sameRoute = (a: RouteSpec, b: RouteSpec): boolean =>
  a.dst === b.dst && (a.via ?? "") === (b.via ?? "") && (a.dev ?? "") === (b.dev ?? "") && !!a.onlink === !!b.onlink;

/** An IpRoute as read, as a RouteSpec precise enough to delete exactly that route. */
export function routeFromIp(r: IpRoute, family: 4 | 6): RouteSpec {
  return {
    family,
    dst: r.dst === "default" ? "default" : routeDst(r),
    via: r.gateway,
    dev: r.dev,
    onlink: (r.flags ?? []).includes("onlink"),
    proto: r.protocol,
    metric: r.metric,
  };
}

export function describeRoute(r: RouteSpec): string {
  return [
    r.dst,
    r.via ? `via ${r.via}` : "",
    r.dev ? `dev ${r.dev}` : "",
    r.onlink ? "onlink" : "",
    r.proto !== undefined ? `proto ${r.proto}` : "",
    r.metric !== undefined ? `metric ${r.metric}` : "",
  ]
    .filter(Boolean)
    .join(" ");
}

/** The default route client-init installs: via the gateway's overlay address through the tunnel. */
export function desiredDefaultRoute(network: string): RouteSpec {
  return { family: 4, dst: "default", via: gatewayOverlayIp(network), dev: VXLAN_IF, proto: ROUTE_PROTO };
}

function isDesiredDefault(r: IpRoute, network: string): boolean {
  return r.dst === "default" && r.gateway === gatewayOverlayIp(network) && r.dev === VXLAN_IF && isOurProto(r.protocol);
}

/**
 * The pod's original default gateway: the lowest-metric default route on eth0 if one exists
 * (fresh pod, or the CNI put one back), else the next hop of the routes an earlier run of
 * client-init left with our proto (the kernel remembers it for us across container restarts).
 */
export function findOriginalGateway(facts: ClientFacts): OriginalGateway | undefined {
  const defaults = facts.routes4
    .filter((r) => r.dst === "default" && r.dev === POD_IF && !isOurProto(r.protocol))
    .sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0));
  const d = defaults[0];
  if (d) return { via: d.gateway, onlink: (d.flags ?? []).includes("onlink"), source: "default route" };
  const ours = facts.routes4.find((r) => r.dst !== "default" && r.dev === POD_IF && isOurProto(r.protocol));
  if (ours) return { via: ours.gateway, onlink: (ours.flags ?? []).includes("onlink"), source: "routes of an earlier run" };
  return undefined;
}

/** Destinations that must stay on eth0, deduplicated, IPv4 only (IPv6 ones are reported as skipped). */
export function pinTargets(input: ClientNetworkInput): { targets: { prefix: Prefix4; text: string; reason: string }[]; notIpv4: { target: string; reason: string }[] } {
  const raw: { text: string; reason: string }[] = [
    ...input.notRoutedCidrs.map((c) => ({ text: c, reason: "NOT_ROUTED_TO_GATEWAY_CIDRS" })),
    ...input.dnsServers.map((d) => ({ text: d, reason: "K8S_DNS_IPS" })),
    { text: input.gatewayPodIp, reason: "gateway pod" },
    ...(input.kubernetesServiceHost ? [{ text: input.kubernetesServiceHost, reason: "KUBERNETES_SERVICE_HOST" }] : []),
  ];
  const seen = new Set<string>();
  const targets: { prefix: Prefix4; text: string; reason: string }[] = [];
  const notIpv4: { target: string; reason: string }[] = [];
  for (const r of raw) {
    const p = parsePrefix4(r.text.trim());
    if (!p) {
      notIpv4.push({ target: r.text, reason: r.reason });
      continue;
    }
    const text = formatPrefix4(p);
    if (seen.has(text)) continue;
    seen.add(text);
    targets.push({ prefix: p, text, reason: r.reason });
  }
  return { targets, notIpv4 };
}

export function planVxlan(facts: ClientFacts, input: ClientNetworkInput): VxlanSpec {
  if (!facts.eth0) throw new PlanError(`${POD_IF} does not exist: the VXLAN tunnel needs it as its lower device`);
  const { mtu, why } = planVxlanMtu(facts.eth0.mtu, input.vpnInterfaceMtu, input.dhcpMtu);
  return {
    name: VXLAN_IF,
    vni: input.vni,
    port: effectiveVxlanPort(input.port),
    dev: POD_IF,
    remote: input.gatewayPodIp,
    // Unique per live pod, stable across container restarts (identity.ts).
    mac: planPodIdentity(input.podName, facts.eth0.addresses, input.vni).mac,
    mtu,
    mtuWhy: why,
  };
}

/**
 * The pod's original IPv6 gateway: the lowest-metric IPv6 default route on eth0 (usually the
 * link-local router, fe80::…), else the next hop of IPv6 routes an earlier run left with our proto.
 */
export function findOriginalGateway6(facts: ClientFacts): OriginalGateway | undefined {
  const d = facts.defaults6.filter((r) => r.dev === POD_IF && !isOurProto(r.protocol)).sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0))[0];
  if (d) return { via: d.gateway, onlink: (d.flags ?? []).includes("onlink"), source: "default route" };
  const ours = facts.ours6.find((r) => r.dev === POD_IF);
  if (ours) return { via: ours.gateway, onlink: (ours.flags ?? []).includes("onlink"), source: "routes of an earlier run" };
  return undefined;
}

/** IPv6 CIDRs of NOT_ROUTED_TO_GATEWAY_CIDRS as routes via eth0's IPv6 gateway; the rest of `notIpv4` passed back. */
function planPins6(facts: ClientFacts, notIpv4: readonly { target: string; reason: string }[]) {
  const rest: { target: string; reason: string }[] = [];
  const skipped: ClientNetworkPlan["skipped"] = [];
  const pins: RouteSpec[] = [];
  const original = findOriginalGateway6(facts);
  for (const t of notIpv4) {
    if (t.reason !== "NOT_ROUTED_TO_GATEWAY_CIDRS" || !t.target.includes(":")) {
      rest.push(t);
      continue;
    }
    if (!original) {
      skipped.push({ ...t, why: `no IPv6 default route on ${POD_IF} (and none kept from an earlier run): the pod has no IPv6 path to keep` });
      continue;
    }
    pins.push({ family: 6, dst: t.target, via: original.via, dev: POD_IF, onlink: original.onlink || undefined, proto: ROUTE_PROTO });
  }
  return { pins, skipped, rest };
}

/** Phase 1: routes that keep cluster traffic on eth0, default routes removed, vxlan0 in shape. */
export function planClientNetwork(facts: ClientFacts, input: ClientNetworkInput): ClientNetworkPlan {
  const vxlan = planVxlan(facts, input);
  const original = findOriginalGateway(facts);
  const defaultRoute = desiredDefaultRoute(input.network);

  // Routes somebody else (the CNI, the kernel) made, other than default routes and the tunnel's:
  // a destination inside one of them is not reached through the default route, so deleting the
  // default routes does not affect it, and pinning it would only override the CNI's choice
  // (for example route the on-link gateway pod through the node).
  const foreign = facts.routes4
    .filter((r) => r.dst !== "default" && !isOurProto(r.protocol) && r.dev !== VXLAN_IF)
    .map((r) => ({ r, p: parsePrefix4(routeDst(r)) }))
    .filter((x): x is { r: IpRoute; p: Prefix4 } => x.p !== undefined);

  const { targets, notIpv4 } = pinTargets(input);
  // IPv6 CIDRs of NOT_ROUTED_TO_GATEWAY_CIDRS stay on eth0 via its IPv6 gateway (issue 13 §3);
  // other IPv6 targets (a cluster DNS address) are reported, as before.
  const v6 = planPins6(facts, notIpv4);
  const skipped: ClientNetworkPlan["skipped"] = [
    ...v6.rest.map((t) => ({ ...t, why: "not an IPv4 address or CIDR (only IPv4 traffic is kept on eth0)" })),
    ...v6.skipped,
  ];
  const pins: RouteSpec[] = [];
  for (const t of targets) {
    const cover = foreign.filter((f) => prefixContains(f.p, t.prefix)).sort((a, b) => b.p.len - a.p.len)[0];
    if (cover) {
      skipped.push({ target: t.text, reason: t.reason, why: `already routed by "${describeRoute(routeFromIp(cover.r, 4))}"` });
      continue;
    }
    if (!original)
      throw new PlanError(
        `cannot keep ${t.text} (${t.reason}) on ${POD_IF}: no default route on ${POD_IF} and no routes with proto ${ROUTE_PROTO} from an earlier run tell the pod's original gateway`,
      );
    pins.push({ family: 4, dst: t.text, via: original.via, dev: POD_IF, onlink: original.onlink || undefined, proto: ROUTE_PROTO });
  }

  const adds: Change[] = [];
  const dels: Change[] = [];
  const ours = facts.routes4.filter((r) => r.dst !== "default" && isOurProto(r.protocol)).map((r) => routeFromIp(r, 4));
  for (const want of pins) {
    const group = ours.filter((o) => o.dst === want.dst);
    const reason = targets.find((t) => t.text === want.dst)?.reason ?? "";
    const keep = group.find((h) => sameRoute(h, want) && !h.metric);
    if (keep) {
      for (const g of group) if (g !== keep) dels.push({ op: "route-del", route: g, why: "duplicate of a pinned route" });
      continue;
    }
    // replace rewrites our metric-0 route in place (next hop changed); others of ours with a metric go
    adds.push({ op: group.length > 0 ? "route-replace" : "route-add", route: want, why: `keep ${reason} on ${POD_IF}${group.length > 0 ? " (next hop changed)" : ""}` });
    for (const g of group) if (g.metric) dels.push({ op: "route-del", route: g, why: "duplicate of a pinned route" });
  }
  for (const o of ours)
    if (!pins.some((p) => p.dst === o.dst)) dels.push({ op: "route-del", route: o, why: "no longer needed (settings or gateway pod changed)" });
  for (const r of facts.routes4) {
    if (r.dst !== "default" || isDesiredDefault(r, input.network)) continue;
    dels.push({ op: "route-del", route: routeFromIp(r, 4), why: "pod traffic must leave through the tunnel only" });
  }
  // IPv6 pins: added before the IPv6 default goes (adds come first), ours no longer wanted deleted.
  for (const want of v6.pins) {
    const have = facts.ours6.filter((o) => routeDst(o) === want.dst).map((o) => routeFromIp(o, 6));
    if (have.some((h) => sameRoute(h, want))) continue;
    adds.push({ op: have.length > 0 ? "route-replace" : "route-add", route: want, why: `keep NOT_ROUTED_TO_GATEWAY_CIDRS on ${POD_IF}${have.length > 0 ? " (next hop changed)" : ""}` });
  }
  for (const o of facts.ours6)
    if (!v6.pins.some((p) => p.dst === routeDst(o))) dels.push({ op: "route-del", route: routeFromIp(o, 6), why: "no longer needed (settings changed)" });
  for (const r of facts.defaults6) dels.push({ op: "route-del", route: routeFromIp(r, 6), why: "no IPv6 path may bypass the tunnel" });

  const link: Change[] = [];
  const vx = facts.vxlan;
  if (vx) {
    const mismatch = [
      vx.kind !== "vxlan" ? `kind ${vx.kind ?? "unknown"}` : "",
      vx.vni !== vxlan.vni ? `VNI ${vx.vni}` : "",
      vx.port !== vxlan.port ? `port ${vx.port}` : "",
      vx.dev !== vxlan.dev ? `device ${vx.dev ?? "none"}` : "",
      vx.learning !== false ? "learning on" : "",
      (vx.mac ?? "").toLowerCase() !== vxlan.mac ? `MAC ${vx.mac}` : "",
    ].filter(Boolean);
    if (mismatch.length > 0) {
      // VNI, port and lower device cannot be changed on a live VXLAN device; recreate it
      link.push({ op: "link-del", dev: vxlan.name, why: `existing ${vxlan.name} differs (${mismatch.join(", ")})` });
      link.push({ op: "vxlan-add", vxlan, why: "tunnel to the gateway pod" });
    } else {
      if (vx.remote !== vxlan.remote) link.push({ op: "vxlan-set-remote", dev: vxlan.name, remote: vxlan.remote, why: `gateway pod moved from ${vx.remote ?? "nowhere"}` });
      if (vx.mtu !== vxlan.mtu || !vx.up)
        link.push({ op: "link-set", dev: vxlan.name, ...(vx.mtu !== vxlan.mtu ? { mtu: vxlan.mtu } : {}), ...(!vx.up ? { up: true as const } : {}), why: vx.mtu !== vxlan.mtu ? vxlan.mtuWhy : "bring the tunnel up" });
    }
  } else {
    link.push({ op: "vxlan-add", vxlan, why: "tunnel to the gateway pod" });
  }
  return { original, vxlan, pins: [...pins, ...v6.pins], skipped, defaultRoute, changes: [...adds, ...dels, ...link] };
}

/**
 * vxlan0's MTU once a lease is known (phase 2, and each renewal in the sidecar): the link-set
 * that brings it to planVxlanMtu's answer with the lease's option 26, or nothing.
 */
export function planVxlanMtuChange(facts: ClientFacts, input: Pick<ClientNetworkInput, "vpnInterfaceMtu" | "dhcpMtu">): Change[] {
  const vx = facts.vxlan;
  if (!vx || !facts.eth0) return [];
  const { mtu, why } = planVxlanMtu(facts.eth0.mtu, input.vpnInterfaceMtu, input.dhcpMtu);
  return vx.mtu === mtu ? [] : [{ op: "link-set", dev: VXLAN_IF, mtu, why }];
}

export interface AddressWanted {
  local: string;
  prefixlen: number;
  /** Seconds (a DHCP lease, so the kernel drops the address when the lease runs out) or "forever" (static). */
  lifetime: number | "forever";
}

/** Phase 2: exactly one IPv4 address on vxlan0, and the default route via <net>.1 through it. */
export function planClientAddress(facts: ClientFacts, network: string, want: AddressWanted): Change[] {
  const vx = facts.vxlan;
  if (!vx) throw new PlanError(`${VXLAN_IF} does not exist`);
  const changes: Change[] = [];
  const isWanted = (a: AddressFact) => a.local === want.local && a.prefixlen === want.prefixlen;
  const others = vx.addresses.filter((a) => !isWanted(a));
  // Delete first: removing a primary address also removes the secondaries behind it
  // (net.ipv4.conf.*.promote_secondaries is off by default), which would take the new one too.
  for (const a of others) changes.push({ op: "addr-del", dev: VXLAN_IF, local: a.local, prefixlen: a.prefixlen, why: "not this pod's overlay address (any more)" });
  const have = vx.addresses.find(isWanted);
  if (!have) changes.push({ op: "addr-set", dev: VXLAN_IF, ...want, why: want.lifetime === "forever" ? "static address" : "DHCP lease" });
  else if (want.lifetime !== "forever") changes.push({ op: "addr-set", dev: VXLAN_IF, ...want, refresh: true, why: "lease lifetime" });
  else if (have.validLft !== Infinity) changes.push({ op: "addr-set", dev: VXLAN_IF, ...want, why: "static address must not expire" });
  const def = desiredDefaultRoute(network);
  const present = facts.routes4.some((r) => isDesiredDefault(r, network));
  // Removing an address of the overlay subnet can take the route via .1 with it: re-assert it then.
  if (!present || others.length > 0) changes.push({ op: "route-replace", route: def, why: "all pod traffic through the gateway" });
  return changes;
}
