// Decides from `ip route get <public address>` results whether the pod is isolated: no route
// to the internet except through the tunnel. No packet is sent; the kernel only looks up its FIB
// (policy rules and every table included, so a default route in another table is caught too).
import { VXLAN_IF } from "../net/vxlan.ts";

export type RouteGetResult =
  | { dst: string; ok: true; dev?: string; gateway?: string; type?: string }
  | { dst: string; ok: false; code: number; stderr: string };

export interface IsolationVerdict {
  isolated: boolean;
  /** Human-readable, one per probe address. */
  details: string[];
  leaks: string[];
}

/**
 * Isolated when every lookup fails with a routing error (unreachable, prohibited, blackhole) or
 * resolves into the tunnel (a re-run, where our default via <net>.1 dev vxlan0 already exists).
 * Any other answer is a path around the tunnel. A lookup that fails for another reason (exit code
 * other than 2, the RTNETLINK error code) proves nothing and counts as a failure of the check.
 */
export function decideIsolation(results: readonly RouteGetResult[]): IsolationVerdict {
  const details: string[] = [];
  const leaks: string[] = [];
  for (const r of results) {
    if (r.ok) {
      if (r.dev === VXLAN_IF) details.push(`${r.dst}: through the tunnel (${r.gateway ? `via ${r.gateway} ` : ""}dev ${r.dev})`);
      else if (r.type && ["blackhole", "unreachable", "prohibit", "throw"].includes(r.type)) details.push(`${r.dst}: ${r.type}`);
      else {
        const d = `${r.dst} is reachable ${r.gateway ? `via ${r.gateway} ` : ""}dev ${r.dev ?? "?"}`;
        leaks.push(d);
        details.push(d);
      }
    } else {
      const msg = r.stderr.trim().replace(/^RTNETLINK answers:\s*/, "");
      if (r.code === 2 && /RTNETLINK answers/.test(r.stderr)) details.push(`${r.dst}: ${msg || "no route"}`);
      else {
        const d = `${r.dst}: route lookup failed unexpectedly (exit ${r.code}: ${msg || "no message"})`;
        leaks.push(d);
        details.push(d);
      }
    }
  }
  return { isolated: leaks.length === 0, details, leaks };
}
