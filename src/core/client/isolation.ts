// Decides from route lookups of public addresses (RTM_GETROUTE, what `ip route get` asks) whether
// the pod is isolated: no route to the internet except through the tunnel. No packet is sent; the
// kernel only looks up its FIB (policy rules and every table included, so a default route in
// another table is caught too).
import { VXLAN_IF } from "../net/vxlan.ts";

export type RouteGetResult =
  | { dst: string; ok: true; dev?: string; gateway?: string; type?: string }
  /** The kernel's errno and the message naming the lookup. */
  | { dst: string; ok: false; errno: number; message: string };

/**
 * The errors a FIB lookup answers when the rules and tables lead nowhere: no route (ENETUNREACH,
 * also what a "throw" route ends in), an unreachable route (EHOSTUNREACH), a prohibit route
 * (EACCES), a blackhole route (EINVAL). Values from include/uapi/asm-generic/errno*.h; the mapping
 * is fib_props[] in net/ipv4/fib_semantics.c.
 */
export const ROUTING_ERRNOS: Readonly<Record<number, string>> = { 101: "no route (ENETUNREACH)", 113: "unreachable route (EHOSTUNREACH)", 13: "prohibit route (EACCES)", 22: "blackhole route (EINVAL)" };

/**
 * An IPv6 lookup on a kernel booted with ipv6.disable=1: rtnetlink has no AF_INET6 handler and
 * answers EOPNOTSUPP (or EAFNOSUPPORT). No IPv6 packet can leave such a pod at all.
 */
export const NO_IPV6_ERRNOS: Readonly<Record<number, string>> = { 95: "no IPv6 in this kernel (EOPNOTSUPP)", 97: "no IPv6 in this kernel (EAFNOSUPPORT)" };

export interface IsolationVerdict {
  isolated: boolean;
  /** Human-readable, one per probe address. */
  details: string[];
  leaks: string[];
  /** The lookups behind `leaks`, in the same order. */
  leaking: RouteGetResult[];
}

/**
 * Isolated when every lookup fails with a routing error (ROUTING_ERRNOS) or resolves into the
 * tunnel (a re-run, where our default via <net>.1 dev vxlan0 already exists). Any other answer is a
 * path around the tunnel. A lookup that fails for another reason (a timeout, EPERM) proves nothing
 * and counts as a failure of the check.
 */
export function decideIsolation(results: readonly RouteGetResult[]): IsolationVerdict {
  const details: string[] = [];
  const leaks: string[] = [];
  const leaking: RouteGetResult[] = [];
  for (const r of results) {
    if (r.ok) {
      if (r.dev === VXLAN_IF) details.push(`${r.dst}: through the tunnel (${r.gateway ? `via ${r.gateway} ` : ""}dev ${r.dev})`);
      else if (r.type && ["blackhole", "unreachable", "prohibit", "throw"].includes(r.type)) details.push(`${r.dst}: ${r.type}`);
      else {
        const d = `${r.dst} is reachable ${r.gateway ? `via ${r.gateway} ` : ""}dev ${r.dev ?? "?"}`;
        leaks.push(d);
        leaking.push(r);
        details.push(d);
      }
    } else {
      const routing = ROUTING_ERRNOS[r.errno] ?? (r.dst.includes(":") ? NO_IPV6_ERRNOS[r.errno] : undefined);
      if (routing) details.push(`${r.dst}: ${routing}`);
      else {
        const d = `${r.dst}: route lookup failed unexpectedly (${r.message})`;
        leaks.push(d);
        leaking.push(r);
        details.push(d);
      }
    }
  }
  return { isolated: leaks.length === 0, details, leaks, leaking };
}
