// The gateway sidecar's guard of a new pod's first DHCP offers (decisions in
// src/core/gateway/leases.ts, LeaseGuard): looks at vxlan0's neighbours, its learned forwarding
// entries and dnsmasq's lease file every POLL_MS, writes dnsmasq's dhcp-hostsfile when the
// decision changes and SIGHUPs dnsmasq to re-read it. A failed look is logged once and retried.
import { readFileSync } from "node:fs";
import { LeaseGuard, parseLeaseFile, type LeaseGuardLook } from "../core/gateway/leases.ts";
import { VXLAN_IF } from "../core/net/vxlan.ts";
import { realClock, type Clock } from "./clock.ts";
import type { GatewayNet } from "./gateway-host.ts";
import type { Logger } from "./log.ts";
import { writeFileAtomic } from "./watch.ts";

/** Looks while offers are held: a client seen is reserved within this; cheap (two small dumps and a file read). */
export const GUARD_HOLD_POLL_MS = 100;
/** Looks during the learning window after the hold. */
export const GUARD_LEARN_POLL_MS = 500;

export interface LeaseGuardRun {
  stop(): void;
  /** Resolves when the guard is over (window closed or stopped). */
  readonly done: Promise<void>;
}

/**
 * True once the process handles SIGHUP (SigCgt in /proc/<pid>/status): a SIGHUP sent to a
 * dnsmasq that has not yet installed its handlers would kill it (the default action).
 */
export function catchesSighup(pid: number): boolean {
  try {
    const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m !== null && (BigInt(`0x${m[1]}`) & 1n) === 1n;
  } catch {
    return false;
  }
}

/** One look for the guard: vxlan0's neighbours and learned forwarding entries, dnsmasq's lease file (missing: none). */
export async function readGuardLook(net: Pick<GatewayNet, "neighbours" | "fdb">, leaseFile: string, nowMs: number): Promise<LeaseGuardLook> {
  const [neighbours, fdb] = await Promise.all([net.neighbours(VXLAN_IF), net.fdb(VXLAN_IF)]);
  let leases = new Map<string, string>();
  try {
    leases = parseLeaseFile(readFileSync(leaseFile, "utf8"));
  } catch {}
  return { nowMs, neighbours, fdbMacs: fdb.filter((f) => f.state !== "permanent").map((f) => f.mac), leases };
}

export function startLeaseGuard(o: {
  guard: LeaseGuard;
  net: Pick<GatewayNet, "neighbours" | "fdb">;
  hostsFile: string;
  leaseFile: string;
  /** dnsmasq's pid (SIGHUP re-reads the hosts file). */
  pid: number;
  log: Logger;
  clock?: Clock;
}): LeaseGuardRun {
  const clock = o.clock ?? realClock;
  const stop = new AbortController();
  let failing = false;
  let pendingHup = false;
  const done = (async () => {
    while (!stop.signal.aborted) {
      let over = false;
      try {
        const step = o.guard.look(await readGuardLook(o.net, o.leaseFile, clock.now()));
        if (step.hosts !== undefined) {
          writeFileAtomic(o.hostsFile, step.hosts);
          pendingHup = true;
          o.log.debug(`${o.hostsFile}: ${step.hosts.trim().split("\n").filter(Boolean).join("; ") || "(empty)"}`);
        }
        if (pendingHup && catchesSighup(o.pid)) {
          process.kill(o.pid, "SIGHUP");
          pendingHup = false;
        }
        if (step.note) o.log.info(step.note);
        over = step.done && !pendingHup;
        if (failing) o.log.info(`reading ${VXLAN_IF}'s neighbours works again`);
        failing = false;
      } catch (e) {
        if (!failing) o.log.warn(`guarding the first DHCP offers: ${(e as Error).message} (tried again)`);
        failing = true;
      }
      if (over) return;
      await clock.sleep(o.guard.holdingOffers ? GUARD_HOLD_POLL_MS : GUARD_LEARN_POLL_MS, stop.signal);
    }
  })();
  return { stop: () => stop.abort(), done };
}
