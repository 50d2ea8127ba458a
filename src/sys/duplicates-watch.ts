// The gateway sidecar's poll of vxlan0's neighbours and forwarding database for duplicate overlay
// identities (decisions in src/core/gateway/duplicates.ts). Two rtnetlink dumps every few seconds; a
// failed read is logged once until reads work again, and never stops the sidecar.
import { countDuplicates, newDuplicateState, parseSightings, planDuplicateReports, DUPLICATE_WINDOW_MS } from "../core/gateway/duplicates.ts";
import { VXLAN_IF } from "../core/net/vxlan.ts";
import type { Clock } from "./clock.ts";
import { realClock } from "./clock.ts";
import type { GatewayNet } from "./gateway-host.ts";
import type { Logger } from "./log.ts";

/**
 * A neighbour entry flips to the other pod's MAC each time that pod speaks ARP (at start, and every
 * reachable-time of ~30 s while its sidecar probes): polling well inside that sees both.
 */
export const DUPLICATE_POLL_MS = 5_000;

export interface DuplicateWatch {
  stop(): void;
}

export function startDuplicateWatch(opts: {
  net: Pick<GatewayNet, "neighbours" | "fdb">;
  log: Logger;
  clock?: Clock;
  intervalMs?: number;
  windowMs?: number;
  /** After each poll: overlay addresses and MACs behind two or more pod IPs now (the metrics). */
  onCounts?: (counts: { address: number; mac: number }) => void;
}): DuplicateWatch {
  const clock = opts.clock ?? realClock;
  const interval = opts.intervalMs ?? DUPLICATE_POLL_MS;
  const state = newDuplicateState();
  const stop = new AbortController();
  let failing = false;

  const poll = async (): Promise<void> => {
    const [neigh, fdb] = await Promise.all([opts.net.neighbours(VXLAN_IF), opts.net.fdb(VXLAN_IF)]);
    const reports = planDuplicateReports(state, parseSightings(neigh, fdb), clock.now(), opts.windowMs ?? DUPLICATE_WINDOW_MS);
    for (const r of reports) opts.log[r.over ? "info" : "warn"](r.text);
    opts.onCounts?.(countDuplicates(state));
  };

  void (async () => {
    while (!stop.signal.aborted) {
      try {
        await poll();
        if (failing) opts.log.info(`reading ${VXLAN_IF}'s neighbours and forwarding database works again`);
        failing = false;
      } catch (e) {
        if (!failing) opts.log.warn(`looking for duplicate overlay addresses: ${(e as Error).message} (tried again every ${interval / 1000} s)`);
        failing = true;
      }
      await clock.sleep(interval, stop.signal);
    }
  })();

  return { stop: () => stop.abort() };
}
