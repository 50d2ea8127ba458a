// The client sidecar's watch over the pod's isolation (issue 11 §7): after client-init proved
// that no route leads around the tunnel, something else in the pod (a VPN client of its own, an
// operator, a CNI plugin) can add one later. The sidecar re-runs client-init's check (route
// lookups of public addresses, src/core/client/isolation.ts) every `intervalMs` and whenever the
// main table's fingerprint changes, reports a path around the tunnel loudly — naming the route and
// what it sends where — once per distinct problem and again when it clears, and never removes it:
// it did not add it, and fighting another program over the routing table helps nobody.
//
// Pure: the driver reads the fingerprint and runs the check; this decides when and what to say.
import type { IpRoute } from "../net/ip-json.ts";
import { parsePrefix4, prefixContains } from "../net/ipv4.ts";
import type { IsolationVerdict, RouteGetResult } from "./isolation.ts";

export type IsolationNote = { level: "debug" | "info" | "warn" | "error"; text: string };

/** What readiness (and anyone else) reads: `holds` is undefined until a check succeeded, and after one failed to run. */
export interface IsolationState {
  holds: boolean | undefined;
  /** The current problem, as reported (undefined while isolation holds). */
  problem: string | undefined;
  checks: number;
}

/** What the check found: the verdict and the main table it was read with, or why it could not run. */
export type IsolationOutcome = { verdict: IsolationVerdict; routes4: readonly IpRoute[] } | { error: string };

/**
 * One path around the tunnel in words: the main-table route that sends the probe address there
 * (the longest prefix holding it with the same next hop and device), or, when main has none, that
 * a route elsewhere (another table chosen by a policy rule) does.
 */
export function explainLeak(r: RouteGetResult, routes4: readonly IpRoute[]): string {
  if (!r.ok) return `${r.dst}: route lookup failed unexpectedly (${r.message})`;
  const where = `${r.gateway ? `via ${r.gateway} ` : ""}dev ${r.dev ?? "?"}`;
  if (r.dst.includes(":")) return `an IPv6 route sends ${r.dst} around the tunnel (${where})`;
  const dst = parsePrefix4(r.dst);
  let best: { route: IpRoute; len: number } | undefined;
  if (dst)
    for (const route of routes4) {
      const p = parsePrefix4(route.dst);
      if (!p || !prefixContains(p, dst) || route.dev !== r.dev || (route.gateway ?? undefined) !== (r.gateway ?? undefined)) continue;
      if (!best || p.len > best.len) best = { route, len: p.len };
    }
  if (best) {
    const b = best.route;
    const text = [b.dst, b.gateway ? `via ${b.gateway}` : "", b.dev ? `dev ${b.dev}` : "", b.protocol ? `proto ${b.protocol}` : "", b.metric !== undefined ? `metric ${b.metric}` : ""].filter(Boolean).join(" ");
    return `route "${text}" sends ${r.dst} around the tunnel (${where})`;
  }
  return `${r.dst} is reachable ${where} by a route outside the main table (another table chosen by a policy rule?)`;
}

export class IsolationWatch {
  readonly state: IsolationState;
  private nextAt: number;
  private signature: string | undefined;
  /** The last check that could not run, reported once until it runs again. */
  private failure: string | undefined;

  /** The first tick checks at once; then every `intervalMs`, or sooner when the fingerprint changes. */
  constructor(
    readonly intervalMs: number,
    now: number,
    state: IsolationState = { holds: undefined, problem: undefined, checks: 0 },
  ) {
    this.state = state;
    this.nextAt = now;
  }

  /** Whether to check at this tick: the interval passed, or the routes' fingerprint (undefined: none read) changed since the last check. */
  due(now: number, signature: string | undefined): boolean {
    if (now >= this.nextAt) return true;
    return signature !== undefined && this.signature !== undefined && signature !== this.signature;
  }

  /** The check ran (with the fingerprint read just before it); what to log. */
  checked(now: number, signature: string | undefined, outcome: IsolationOutcome): IsolationNote[] {
    this.nextAt = now + this.intervalMs;
    this.signature = signature;
    this.state.checks++;
    if ("error" in outcome) {
      this.state.holds = undefined;
      if (this.failure === outcome.error) return [];
      this.failure = outcome.error;
      return [{ level: "warn", text: `cannot check the pod's isolation: ${outcome.error}` }];
    }
    this.failure = undefined;
    const v = outcome.verdict;
    if (v.isolated) {
      const was = this.state.problem;
      this.state.holds = true;
      this.state.problem = undefined;
      if (was !== undefined) return [{ level: "info", text: `isolation holds again: no route leads around the tunnel (${v.details.join("; ")}) (pod_gateway_client_isolated 1)` }];
      return [{ level: "debug", text: `isolation holds (${v.details.join("; ")})` }];
    }
    const problem = v.leaking.map((r) => explainLeak(r, outcome.routes4)).join("; ");
    this.state.holds = false;
    if (problem === this.state.problem) return [];
    this.state.problem = problem;
    return [
      {
        level: "error",
        text:
          `isolation broken: ${problem}. This pod's traffic to those addresses leaves outside the VPN. ` +
          `The sidecar did not add this route and leaves it in place (it never undoes a change it did not make): remove it, or find what added it ` +
          `(pod_gateway_client_isolated 0; not ready)`,
      },
    ];
  }
}
