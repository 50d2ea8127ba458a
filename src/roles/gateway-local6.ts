// gateway-init's IPv6 step (issue 13 §3): the IPv6 CIDRs of VPN_LOCAL_CIDRS routed via eth0's
// IPv6 gateway. Reads the IPv6 routes of table main over rtnetlink, plans with the pure
// planLocalRoutes6, applies the typed changes with the netlink layer and reads back: nothing may
// be left to do. A re-run over a correct pod reads once and changes nothing.
import { StepError } from "../core/errors.ts";
import { ipRouteFromNetlink } from "../core/client/facts.ts";
import { planLocalRoutes6, type LocalRoutes6Plan } from "../core/gateway/local6.ts";
import { describeChanges, formatChange, type NetChange } from "../core/net/change.ts";
import type { IpRoute } from "../core/net/ip-json.ts";
import type { Settings } from "../core/settings/types.ts";
import type { Logger } from "../sys/log.ts";
import { applyNetChange } from "../sys/net-apply.ts";
import { Rtnl } from "../sys/netlink.ts";

/** What the step needs of the pod's network: its IPv6 main routes, and a way to apply one change. */
export interface Routes6Host {
  readRoutes6(): IpRoute[];
  apply(c: NetChange): void;
  close(): void;
}

const RT_TABLE_MAIN = 254;

/** The pod's own network namespace, over one rtnetlink socket. */
export function netlinkRoutes6Host(): Routes6Host {
  const nl = Rtnl.open();
  return {
    readRoutes6() {
      const names = new Map(nl.links().map((l) => [l.index, l.name]));
      return nl.routes(6).filter((r) => (r.tableId ?? r.table) === RT_TABLE_MAIN).map((r) => ipRouteFromNetlink(r, names));
    },
    apply: (c) => applyNetChange(nl, c),
    close: () => nl.close(),
  };
}

/** Read, plan, apply, read back. Returns the plan and the number of changes made. */
export async function reconcileLocalRoutes6(
  s: Pick<Settings, "VPN_INTERFACE" | "VPN_LOCAL_CIDRS">,
  open: () => Routes6Host,
  log: Logger,
): Promise<{ plan: LocalRoutes6Plan; changes: number }> {
  let host: Routes6Host | undefined;
  try {
    host = open();
    const plan = planLocalRoutes6(s, host.readRoutes6());
    for (const w of plan.warnings) log.warn(w);
    if (plan.changes.length === 0) return { plan, changes: 0 };
    for (const line of describeChanges(plan.changes)) log.debug(`ip -6 ${line}`);
    for (const c of plan.changes) {
      try {
        host.apply(c);
      } catch (e) {
        throw new StepError("routing the IPv6 VPN_LOCAL_CIDRS", `ip -6 ${formatChange(c)} (${c.why}): ${(e as Error).message}`, { cause: e });
      }
    }
    const after = planLocalRoutes6(s, host.readRoutes6()).changes;
    if (after.length)
      throw new StepError("verifying the IPv6 VPN_LOCAL_CIDRS routes", `still differs after applying: ${after.map((c) => `${c.why} (ip -6 ${formatChange(c)})`).join("; ")}`);
    return { plan, changes: plan.changes.length };
  } catch (e) {
    if (e instanceof StepError) throw e;
    throw new StepError("routing the IPv6 VPN_LOCAL_CIDRS", (e as Error).message, { cause: e });
  } finally {
    host?.close();
  }
}
