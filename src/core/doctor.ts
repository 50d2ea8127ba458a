// `pod-gateway doctor`: the checks' verdicts and their rendering. Pure: src/cli/doctor.ts reads the
// world (netlink, DNS, the sidecar's status, files) and hands the facts to the functions here, which
// decide each check and, for a failed one, name the likely cause and what to change.
import type { IsolationVerdict, RouteGetResult } from "./client/isolation.ts";
import { ROUTING_ERRNOS } from "./client/isolation.ts";
import type { VxlanFact } from "./client/facts.ts";

export type DoctorRole = "client" | "gateway";

export interface Check {
  /** Short, stable name (the --json key). */
  name: string;
  ok: boolean;
  detail: string;
  /** For a failed check: the likely cause and what to change. */
  cause?: string;
  fix?: string;
}

export const pass = (name: string, detail: string): Check => ({ name, ok: true, detail });
export const fail = (name: string, detail: string, cause: string, fix: string): Check => ({ name, ok: false, detail, cause, fix });

export interface RoleClues {
  clientSidecar: boolean;
  gatewaySidecar: boolean;
  /** vxlan0 exists with a unicast remote (a client's) or without one (the gateway's, learning). */
  vxlan: "client" | "gateway" | undefined;
  /** The VPN interface exists in this namespace. */
  vpnInterface: boolean;
}

/** A running sidecar says it best; else the tunnel's shape; else the VPN interface; else unknown. */
export function detectRole(c: RoleClues): { role: DoctorRole | undefined; why: string } {
  if (c.gatewaySidecar) return { role: "gateway", why: "a gateway-sidecar answers on its status socket" };
  if (c.clientSidecar) return { role: "client", why: "a client-sidecar answers on its status socket" };
  if (c.vxlan === "client") return { role: "client", why: "vxlan0 has a unicast remote (a client's tunnel)" };
  if (c.vxlan === "gateway") return { role: "gateway", why: "vxlan0 has no remote (the gateway's learning tunnel)" };
  if (c.vpnInterface) return { role: "gateway", why: "the VPN interface exists here" };
  return { role: undefined, why: "no sidecar answers, no vxlan0 and no VPN interface" };
}

/** The client's tunnel: exists, up, has an overlay address, points at the gateway pod. */
export function checkClientVxlan(vx: VxlanFact | undefined, network: string, gatewayPodIp: string | undefined): Check {
  const name = "vxlan0";
  if (!vx) return fail(name, "vxlan0 does not exist", "client-init did not run or failed in this pod, or something deleted the tunnel", "read client-init's log (kubectl logs <pod> -c <init container>); the client-sidecar re-creates a lost tunnel within a few probe intervals");
  if (!vx.up) return fail(name, "vxlan0 is down", "something set the link down", "the client-sidecar repairs it; else restart the pod");
  const addr = vx.addresses.find((a) => a.local.startsWith(`${network}.`));
  if (!addr) return fail(name, `vxlan0 has no address in ${network}.0/24`, "DHCP failed or the lease expired, or VXLAN_IP_NETWORK changed since client-init ran", "check the gateway's dnsmasq (pod-gateway doctor in the gateway) and that both pods use the same settings");
  if (!vx.remote) return fail(name, "vxlan0 has no remote", "the tunnel was not made by client-init (or its FDB entry was removed)", "restart the pod");
  if (gatewayPodIp && vx.remote !== gatewayPodIp)
    return fail(name, `vxlan0's remote is ${vx.remote} but the gateway pod is ${gatewayPodIp}`, "the gateway pod moved and the sidecar has not followed yet (or is not running)", "wait one probe interval; if it stays, check the client-sidecar's log");
  return pass(name, `up, ${addr.local}/${addr.prefixlen}, remote ${vx.remote}, VNI ${vx.vni ?? "?"}, MTU ${vx.mtu}`);
}

const describeRoute = (r: RouteGetResult): string =>
  r.ok ? `${r.gateway ? `via ${r.gateway} ` : ""}dev ${r.dev ?? "?"}${r.type && r.type !== "unicast" ? ` (${r.type})` : ""}` : ROUTING_ERRNOS[r.errno] ?? r.message;

/** A route lookup expected to leave through `dev` ("eth0" for the cluster, "vxlan0" for the internet). */
export function checkRoute(name: string, what: string, r: RouteGetResult, dev: "eth0" | "vxlan0"): Check {
  if (r.ok && r.dev === dev) return pass(name, `${what} ${r.dst}: ${describeRoute(r)}`);
  if (dev === "eth0")
    return fail(name, `${what} ${r.dst}: ${describeRoute(r)}, expected dev eth0`, "the cluster's address range is not kept on eth0", "add the cluster's pod and service CIDRs to NOT_ROUTED_TO_GATEWAY_CIDRS, then restart the pod");
  if (!r.ok && ROUTING_ERRNOS[r.errno])
    return fail(name, `${what} ${r.dst}: ${describeRoute(r)}`, "there is no default route through the tunnel (client-init did not finish, or it was removed)", "restart the pod; read client-init's log");
  return fail(name, `${what} ${r.dst}: ${describeRoute(r)}, expected dev vxlan0`, "a route leads around the tunnel (traffic would leak outside the VPN)", "find it with `ip route get` (another table, a split default); remove it, or restart the pod");
}

/**
 * Isolation as the client sidecar's readiness and its isolation watch judge it (decideIsolation
 * over the same lookups): no route to the internet around the tunnel.
 */
export function checkIsolation(v: IsolationVerdict): Check {
  if (v.isolated) return pass("isolation", `no route around the tunnel (${v.details.length} lookups: ${v.details.join("; ")})`);
  return fail("isolation", v.leaks.join("; "), "a route leads around the tunnel (traffic would leak outside the VPN); the client-sidecar reports the pod not ready", "find it with `ip route get` (another table, a split default, a policy rule); remove it, or restart the pod");
}

/** The client-sidecar's own readiness verdict (`pod-gateway health --ready`), when a sidecar answers. */
export function checkReadiness(verdict: { ok: boolean; line: string } | { error: string }): Check {
  if ("error" in verdict) return fail("readiness", verdict.error, "the client-sidecar did not answer its status socket in time", "read the client-sidecar's log; restart the pod if it is stuck");
  if (verdict.ok) return pass("readiness", verdict.line);
  return fail("readiness", verdict.line, "the sidecar's own checks fail (the lines above name the likely cause)", "fix what the failed checks above name; readiness follows within a probe interval");
}

export function checkLease(vx: VxlanFact | undefined, network: string, nowS: number): Check {
  const addr = vx?.addresses.find((a) => a.local.startsWith(`${network}.`));
  if (!addr) return fail("lease", "no overlay address", "see vxlan0", "see vxlan0");
  if (addr.validLft === Infinity) return pass("lease", `${addr.local}: static or infinite (no expiry)`);
  if (addr.validLft <= 0) return fail("lease", `${addr.local}: expired`, "renewals failed: the gateway's DHCP did not answer", "check the gateway; the sidecar acquires a new lease when it can");
  return pass("lease", `${addr.local}: expires in ${Math.round(addr.validLft)} s (at ${new Date((nowS + addr.validLft) * 1000).toISOString()})`);
}

/**
 * The kill switch's routing layer (rule iif vxlan0 → our table), re-planned from the kernel's
 * routes and rules: `open` are the changes a proven open layer would still need, `closed` those a
 * failed-closed one would (the sidecar closes it while the firewall cannot be proven).
 */
export function checkRoutingLayer(r: { enabled: boolean; summary: string; open: readonly string[]; closed: readonly string[] } | { error: string }): Check {
  const name = "kill switch routing";
  if ("error" in r) return fail(name, `reading routes and rules over netlink: ${r.error}`, "the container lacks NET_ADMIN", "run doctor in the gateway-sidecar container");
  if (!r.enabled) return pass(name, "off (VPN_BLOCK_OTHER_TRAFFIC=false or no VPN_INTERFACE): the firewall layer is off too");
  if (r.open.length === 0) return pass(name, r.summary);
  if (r.closed.length === 0)
    return fail(name, "closed: our table holds no VPN routes, so clients' traffic is unreachable", "the gateway-sidecar failed closed because the firewall could not be proven (see the firewall line and the sidecar's log)", "fix what keeps the firewall from being written (another container's rules, the xtables lock); the sidecar opens the layer once it is proven");
  return fail(name, r.open.join("; "), "another process changed our rule or table, or the gateway-sidecar is not running to keep the VPN's routes copied", "check the gateway-sidecar's log (it re-checks within a second); restart the gateway pod if it persists");
}

/** How long a drop report stays "recent" in the doctor's eyes. */
export const RECENT_DROPS_MS = 10 * 60_000;

/**
 * What the kill switch dropped on eth0 lately (the sidecar's drop report). Drops while the VPN is
 * down are the kill switch working; a report that names a tcp/udp destination while the VPN link
 * is not up is the VPN client's own connection being dropped: the likely VPN_TRAFFIC_PORT mistake.
 */
export function checkRecentDrops(drops: { packets: number; last?: { text: string; ageMs: number } } | undefined, killSwitch: boolean, vpnUp: boolean | undefined): Check {
  const name = "kill switch drops";
  if (!killSwitch) return pass(name, "the kill switch is off");
  if (!drops) return pass(name, "not known (no gateway-sidecar answers, or its drop log is off: see its log)");
  const recent = drops.last && drops.last.ageMs <= RECENT_DROPS_MS ? drops.last : undefined;
  if (!recent) return pass(name, `${drops.packets} packet(s) logged since the sidecar started; none reported in the last ${RECENT_DROPS_MS / 60_000} min`);
  const ago = `${Math.round(recent.ageMs / 1000)} s ago`;
  if (vpnUp !== true && recent.text.includes("add ") && recent.text.includes("VPN_TRAFFIC_PORT"))
    return fail(name, `${ago}: ${recent.text}`, "the VPN link is not up and the kill switch drops the VPN client's own connection to its server", "add the VPN server's port to VPN_TRAFFIC_PORT (and check VPN_INTERFACE), then restart the gateway pod");
  return pass(name, `${ago}: ${recent.text} (${drops.packets} logged since start; with the VPN down this is the kill switch working)`);
}

/** Forwarding on the gateway. */
export function checkForwarding(value: string | undefined): Check {
  if (value === "1") return pass("forwarding", "net.ipv4.ip_forward = 1");
  return fail("forwarding", `net.ipv4.ip_forward = ${value ?? "unreadable"}`, "gateway-init did not run, or something turned forwarding off", "restart the gateway pod (gateway-init turns it on)");
}

/** "✓ name: detail" per check; a failed one gets its cause and fix below it. */
export function renderDoctor(role: string, checks: readonly Check[]): string[] {
  const out = [`pod-gateway doctor: ${role}`];
  for (const c of checks) {
    out.push(`${c.ok ? "✓" : "✗"} ${c.name}: ${c.detail}`);
    if (!c.ok) {
      out.push(`    cause: ${c.cause}`);
      out.push(`    fix:   ${c.fix}`);
    }
  }
  const failed = checks.filter((c) => !c.ok).length;
  out.push(failed ? `${failed} of ${checks.length} checks failed` : `all ${checks.length} checks passed`);
  return out;
}

export function renderDoctorJson(role: string | undefined, why: string, checks: readonly Check[]): string {
  return JSON.stringify({ role: role ?? null, detectedBy: why, ok: checks.every((c) => c.ok), checks }, null, 2);
}
