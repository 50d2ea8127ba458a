// Plans the gateway pod's links, addresses, policy rule and routes: compares the facts read
// (rtnetlink dumps in `ip -j`'s shapes, src/core/gateway/facts.ts) against what gateway-init
// wants and returns only the changes needed (src/core/net/change.ts), so a second run on a
// correct pod plans nothing (and vxlan0 is never re-created needlessly).
import type { IpAddr, IpRoute, IpRule } from "../net/ip-json.ts";
import { routeDst } from "../net/ip-json.ts";
import type { NetChange } from "../net/change.ts";
import type { Settings } from "../settings/types.ts";
import { effectiveVxlanPort, gatewayMac, gatewayOverlayIp, planVxlanMtu, POD_IF, VXLAN_IF } from "../net/vxlan.ts";
import { canonicalCidr } from "../firewall/model.ts";
import { CLUSTER_DNS_ROUTE_PROTO } from "../firewall/names.ts";
import { isIPv4 } from "../settings/values.ts";
import { isOurProto, ROUTE_PROTO } from "../client/constants.ts";

/**
 * Why preference 50: a VPN client such as wg-quick routes everything through its own table
 * with a rule at a preference above 50 (`not fwmark X lookup T`). Looking up `main` first,
 * but ignoring main's default route (`suppress_prefixlength 0`), keeps the overlay /24 and
 * the VPN_LOCAL_CIDRS routes in main winning over the VPN's catch-all, so replies to clients
 * go back into vxlan0 and local traffic stays on eth0.
 */
export const SUPPRESS_RULE_PREF = 50;

export interface GatewayFacts {
  /** Every link with its linkinfo and addresses (as `ip -j -d addr show`). */
  links: IpAddr[];
  /** IPv4 routes of table main. */
  routes: IpRoute[];
  /** IPv4 routes of every table (the kill switch's routing layer copies the VPN's from any). */
  allRoutes: IpRoute[];
  /** IPv4 policy rules. */
  rules: IpRule[];
}

export type GatewayNetSettings = Pick<
  Settings,
  "VXLAN_ID" | "VXLAN_PORT" | "VXLAN_IP_NETWORK" | "VPN_INTERFACE" | "VPN_INTERFACE_MTU" | "VPN_LOCAL_CIDRS"
>;

/** One planned change to the gateway's network (with why it is needed). */
export type NetAction = NetChange;

export interface GatewayNetPlan {
  actions: NetChange[];
  vxlan: { name: string; vni: number; port: number; mac: string; mtu: number; mtuWhy: string; address: string };
  /** The pod's original default gateway on eth0 (VPN_LOCAL_CIDRS go via it). */
  defaultGateway: string | undefined;
  localRoutes: { dst: string; via: string; dev: string }[];
  warnings: string[];
}

/** Facts that make the plan impossible (no eth0, no default gateway for the local routes). */
export class GatewayPlanError extends Error {
  override name = "GatewayPlanError";
}

function vxlanMismatch(link: IpAddr, want: { vni: number; port: number; mac: string }): string[] {
  const d = link.linkinfo?.info_data ?? {};
  const out: string[] = [];
  if (link.linkinfo?.info_kind !== "vxlan") out.push(`kind ${link.linkinfo?.info_kind ?? "unknown"}, not vxlan`);
  else {
    if (d.id !== want.vni) out.push(`VNI ${String(d.id)}, want ${want.vni}`);
    if (d.port !== want.port) out.push(`port ${String(d.port)}, want ${want.port}`);
    if (d.link !== POD_IF) out.push(`device ${String(d.link ?? "none")}, want ${POD_IF}`);
    // The gateway learns clients' addresses from their packets: it has no FDB entries of its own.
    if (d.learning === false) out.push("learning off");
  }
  if ((link.address ?? "").toLowerCase() !== want.mac) out.push(`MAC ${link.address ?? "none"}, want ${want.mac}`);
  return out;
}

function isSuppressRule(r: IpRule): boolean {
  const x = r as IpRule & Record<string, unknown>;
  // iproute2 prints the selector as "suppress_prefixlen" in JSON.
  const spl = x.suppress_prefixlen ?? x.suppress_prefixlength;
  const selectors = ["iif", "oif", "fwmark", "dst", "tos", "uidrange", "ipproto", "sport", "dport", "l3mdev", "not"];
  return (
    r.priority === SUPPRESS_RULE_PREF &&
    (r.table ?? "main") === "main" &&
    spl === 0 &&
    (r.src === undefined || r.src === "all") &&
    !selectors.some((k) => x[k] !== undefined)
  );
}

/**
 * VPN_LOCAL_CIDRS (IPv4) via the pod's original default gateway on eth0: main's default route
 * via eth0, or (a re-run after a VPN client replaced the default route) our earlier routes.
 */
export function planLocalRoutes(
  s: Pick<Settings, "VPN_INTERFACE" | "VPN_LOCAL_CIDRS">,
  mainRoutes: readonly IpRoute[],
): { localRoutes: GatewayNetPlan["localRoutes"]; defaultGateway: string | undefined; warnings: string[] } {
  const localRoutes: GatewayNetPlan["localRoutes"] = [];
  const warnings: string[] = [];
  let defaultGateway: string | undefined;
  if (s.VPN_INTERFACE === "") return { localRoutes, defaultGateway, warnings };
  const v4 = s.VPN_LOCAL_CIDRS.filter((c) => !c.includes(":")).map(canonicalCidr);
  // The IPv6 ones are planned by planLocalRoutes6 (core/gateway/local6.ts), on the netlink layer.
  defaultGateway = mainRoutes.find((r) => r.dst === "default" && r.dev === POD_IF && r.gateway)?.gateway;
  // A re-run after a VPN client replaced the default route: our earlier routes still know it
  // (marked with our protocol; an older version's unmarked ones for these CIDRs count too).
  defaultGateway ??= mainRoutes.find(
    (r) => r.dev === POD_IF && r.gateway && (isOurProto(r.protocol) || r.protocol === String(CLUSTER_DNS_ROUTE_PROTO) || v4.includes(routeDst(r))),
  )?.gateway;
  if (v4.length && !defaultGateway)
    throw new GatewayPlanError(`no default route via ${POD_IF}: cannot route VPN_LOCAL_CIDRS (${v4.join(" ")}) via the pod's own gateway`);
  for (const dst of v4) localRoutes.push({ dst, via: defaultGateway!, dev: POD_IF });
  return { localRoutes, defaultGateway, warnings };
}

/** The cluster DNS recorded in main (CLUSTER_DNS_ROUTE_PROTO), if any. */
export function readClusterDnsRecord(mainRoutes: readonly IpRoute[]): string | undefined {
  const r = mainRoutes.find((x) => x.protocol === String(CLUSTER_DNS_ROUTE_PROTO) && x.dev === POD_IF);
  return r ? routeDst(r).replace(/\/32$/, "") : undefined;
}

export function planGatewayNetwork(s: GatewayNetSettings, f: GatewayFacts, opts: { clusterDns?: string } = {}): GatewayNetPlan {
  const actions: NetChange[] = [];
  const warnings: string[] = [];
  const eth0 = f.links.find((l) => l.ifname === POD_IF);
  if (!eth0) throw new GatewayPlanError(`${POD_IF} not found: the gateway needs the pod's ${POD_IF} as the VXLAN underlay`);
  const { mtu, why: mtuWhy } = planVxlanMtu(eth0.mtu, s.VPN_INTERFACE_MTU);
  const vni = s.VXLAN_ID;
  const port = effectiveVxlanPort(s.VXLAN_PORT);
  const mac = gatewayMac(vni);
  const address = `${gatewayOverlayIp(s.VXLAN_IP_NETWORK)}/24`;
  const v = VXLAN_IF;

  // ---- vxlan0
  let link = f.links.find((l) => l.ifname === v);
  if (link) {
    const bad = vxlanMismatch(link, { vni, port, mac });
    if (bad.length) {
      actions.push({ op: "link-del", dev: v, why: `existing ${v} does not match (${bad.join("; ")})` });
      link = undefined;
    }
  }
  const addAddress = (why: string): NetChange => ({ op: "addr-set", dev: v, local: address.split("/")[0]!, prefixlen: 24, lifetime: "forever", why });
  if (!link) {
    // VNI, port, device and MAC at creation: a stable MAC (derived from the VNI) keeps clients'
    // ARP caches valid across gateway restarts.
    actions.push({ op: "vxlan-learning-add", vxlan: { name: v, vni, port, dev: POD_IF, mac, mtu }, why: `create ${v} (VNI ${vni}, port ${port}, MTU ${mtu})` });
    actions.push(addAddress(`overlay address ${address}`));
    actions.push({ op: "link-set", dev: v, up: true, why: `${v} up` });
  } else {
    if (link.mtu !== mtu) actions.push({ op: "link-set", dev: v, mtu, why: `${v} MTU ${link.mtu} -> ${mtu}` });
    const inet = link.addr_info.filter((a) => a.family === "inet");
    for (const a of inet)
      if (`${a.local}/${a.prefixlen}` !== address) actions.push({ op: "addr-del", dev: v, local: a.local, prefixlen: a.prefixlen, why: `stale address on ${v}` });
    if (!inet.some((a) => `${a.local}/${a.prefixlen}` === address)) actions.push(addAddress(`overlay address ${address}`));
    if (!link.flags.includes("UP")) actions.push({ op: "link-set", dev: v, up: true, why: `${v} up` });
  }

  // ---- policy rule, exactly once
  const rule = { pref: SUPPRESS_RULE_PREF, table: "main", suppressPrefixlength: 0 };
  const n = f.rules.filter(isSuppressRule).length;
  if (n === 0) actions.push({ op: "rule-add", rule, why: "main table before the VPN's catch-all" });
  for (let i = 1; i < n; i++) actions.push({ op: "rule-del", rule, why: "duplicate policy rule" });

  // ---- VPN_LOCAL_CIDRS via the pod's original default gateway
  const { localRoutes, defaultGateway, warnings: localWarnings } = planLocalRoutes(s, f.routes);
  warnings.push(...localWarnings);
  for (const { dst, via } of localRoutes) {
    const have = f.routes.find((r) => routeDst(r) === dst && (r.type === undefined || r.type === "unicast"));
    if (have && have.gateway === via && have.dev === POD_IF && isOurProto(have.protocol)) continue;
    actions.push({ op: "route-replace", route: { family: 4, dst, via, dev: POD_IF, proto: ROUTE_PROTO }, why: `VPN_LOCAL_CIDRS ${dst} stays on ${POD_IF}` });
  }
  // The cluster DNS, recorded as a host route on eth0 (it is reached there in any case): known
  // only to gateway-init's first run, it must survive the sidecar's restarts. Unknown: kept as is.
  const records = f.routes.filter((r) => r.protocol === String(CLUSTER_DNS_ROUTE_PROTO));
  const dnsHost = opts.clusterDns && isIPv4(opts.clusterDns) && defaultGateway ? `${opts.clusterDns}/32` : undefined;
  if (dnsHost && !localRoutes.some((l) => l.dst === dnsHost)) {
    const same = records.find((r) => routeDst(r) === dnsHost && r.gateway === defaultGateway && r.dev === POD_IF);
    for (const r of records)
      if (r !== same) actions.push({ op: "route-del", route: { family: 4, dst: routeDst(r), proto: CLUSTER_DNS_ROUTE_PROTO }, why: `the cluster DNS is ${opts.clusterDns} now, not ${routeDst(r)}` });
    if (!same)
      actions.push({ op: "route-replace", route: { family: 4, dst: dnsHost, via: defaultGateway!, dev: POD_IF, proto: CLUSTER_DNS_ROUTE_PROTO }, why: `cluster DNS ${opts.clusterDns} on ${POD_IF} (recorded for restarts)` });
  }
  // Nothing stale: our routes (marked with our protocol) for CIDRs no longer planned go.
  const planned = new Set(localRoutes.map((l) => l.dst));
  for (const r of f.routes)
    if (isOurProto(r.protocol) && !planned.has(routeDst(r)))
      actions.push({
        op: "route-del",
        route: { family: 4, dst: routeDst(r), ...(r.gateway ? { via: r.gateway } : {}), ...(r.dev ? { dev: r.dev } : {}), proto: ROUTE_PROTO },
        why: `no longer in VPN_LOCAL_CIDRS: ${routeDst(r)}`,
      });

  return { actions, vxlan: { name: v, vni, port, mac, mtu, mtuWhy, address }, defaultGateway, localRoutes, warnings };
}

/** Human summary of the network part, for the init log. */
export function summarizeGatewayNetwork(p: GatewayNetPlan): string[] {
  const x = p.vxlan;
  const lines = [`${x.name}: VNI ${x.vni}, port ${x.port}, MAC ${x.mac}, MTU ${x.mtu} (${x.mtuWhy}), ${x.address}`];
  lines.push(`policy rule: from all lookup main suppress_prefixlength 0 pref ${SUPPRESS_RULE_PREF}`);
  if (p.localRoutes.length) lines.push(`routes: ${p.localRoutes.map((r) => `${r.dst} via ${r.via} dev ${r.dev}`).join(", ")}`);
  return lines;
}
