// Reading the pod's network in ONE `ip -j -d -force -batch -` process instead of one process per
// question (process start-up dominates client-init's time). Pure: the command lines to send, and
// the parsing of what comes back.
//
// How ip answers a batch with -force: each command that succeeds prints one JSON array on its own
// line of stdout; each that fails prints its error on stderr followed by "Command failed -:<line>",
// and the batch goes on (exit status 1 if anything failed). Lines cannot carry -4/-6, so routes are
// listed with "route show table all" (both families, every table) and split here.
import type { IpAddr, IpRoute } from "../net/ip-json.ts";

/** What `ip route get` said: the route, or its exit code and stderr. */
export type IpRouteGet = { dst: string; ok: true; dev?: string; gateway?: string; type?: string } | { dst: string; ok: false; code: number; stderr: string };

export type ReadCommand = { kind: "addrs" } | { kind: "routes" } | { kind: "route-get"; dst: string };

export function renderReadBatch(cmds: readonly ReadCommand[]): string[][] {
  return cmds.map((c) => (c.kind === "addrs" ? ["addr", "show"] : c.kind === "routes" ? ["route", "show", "table", "all"] : ["route", "get", c.dst]));
}

export interface ReadBatchResult {
  links: IpAddr[];
  /** Main table, IPv4. */
  routes4: IpRoute[];
  /** Main table, IPv6. */
  routes6: IpRoute[];
  routeGets: IpRouteGet[];
}

export class ReadBatchError extends Error {
  override name = "ReadBatchError";
}

/**
 * IPv6 or not: the kernel sends RTA_PREF with every IPv6 route (rt6_fill_node) and never with an
 * IPv4 one, and ip prints it as "pref"; an IPv6 destination or next hop settles it too.
 */
export function isIpv6Route(r: IpRoute & { pref?: string; nexthops?: { gateway?: string }[] }): boolean {
  return r.pref !== undefined || r.dst.includes(":") || (r.gateway ?? "").includes(":") || (r.nexthops ?? []).some((n) => (n.gateway ?? "").includes(":"));
}

/** Map a batch's output back to its commands. Throws ReadBatchError when they do not line up. */
export function parseReadBatch(cmds: readonly ReadCommand[], stdout: string, stderr: string): ReadBatchResult {
  // stderr: "<messages>\nCommand failed -:<n>\n" per failed command (n counts from 1)
  const failed = new Map<number, string>();
  let pending: string[] = [];
  for (const line of stderr.split("\n")) {
    const m = /^Command failed -:(\d+)\s*$/.exec(line);
    if (m) {
      failed.set(Number(m[1]), pending.join("\n"));
      pending = [];
    } else if (line.trim() !== "") pending.push(line);
  }
  const outputs = stdout.split("\n").filter((l) => l.trim() !== "");
  const expected = cmds.length - failed.size;
  if (outputs.length !== expected)
    throw new ReadBatchError(`ip -batch printed ${outputs.length} answers for ${expected} successful commands: ${stderr.trim() || "no error output"}`);
  const res: ReadBatchResult = { links: [], routes4: [], routes6: [], routeGets: [] };
  let k = 0;
  cmds.forEach((c, i) => {
    const err = failed.get(i + 1);
    if (err !== undefined) {
      if (c.kind === "route-get") res.routeGets.push({ dst: c.dst, ok: false, code: 2, stderr: err });
      else throw new ReadBatchError(`ip ${renderReadBatch([c])[0]!.join(" ")} failed: ${err.trim()}`);
      return;
    }
    let v: unknown;
    try {
      v = JSON.parse(outputs[k++]!);
    } catch {
      throw new ReadBatchError(`ip ${renderReadBatch([c])[0]!.join(" ")} printed something that is not JSON`);
    }
    const arr = Array.isArray(v) ? v : [];
    if (c.kind === "addrs") res.links = arr as IpAddr[];
    else if (c.kind === "routes") {
      for (const r of arr as IpRoute[]) {
        if ((r.table ?? "main") !== "main") continue;
        (isIpv6Route(r) ? res.routes6 : res.routes4).push(r);
      }
    } else {
      const r = (arr as IpRoute[])[0];
      res.routeGets.push({ dst: c.dst, ok: true, dev: r?.dev, gateway: r?.gateway, type: r?.type });
    }
  });
  return res;
}
