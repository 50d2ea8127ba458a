// The kill switch's drop report (issue 13 §5): gateway-sidecar binds the NFLOG group of the rule
// just before the kill switch's drop on eth0 and says, at most once a minute, what was dropped
// and where it was going (decisions in src/core/netlink/nflog.ts). A netlink socket cannot join
// Bun's event loop, so it is drained with non-blocking receives every second; the rule itself is
// rate-limited (10 packets a second), so a drain never finds much. A failure to bind the group is
// a warning: the report is a diagnosis aid, never a reason to stop the sidecar.
import { KILLSWITCH_NFLOG_GROUP } from "../core/firewall/names.ts";
import { POD_IF } from "../core/net/vxlan.ts";
import {
  decodeNflogPacket,
  newDropReportState,
  NETLINK_NETFILTER,
  nflogBindRequest,
  nflogModeRequest,
  nflogPfRequest,
  NFULNL_CFG_CMD_PF_BIND,
  NFULNL_CFG_CMD_PF_UNBIND,
  planDropReport,
  recordDrops,
  type LoggedPacket,
} from "../core/netlink/nflog.ts";
import { realClock, type Clock } from "./clock.ts";
import type { Logger } from "./log.ts";
import { NetlinkError, NetlinkSocket } from "./netlink.ts";

export const DROP_POLL_MS = 1_000;
const ENOBUFS = 105;

/**
 * Running counts a metrics endpoint can read (the object stays the same; its fields grow):
 * `packets` logged by the rule since the sidecar started (the rule logs at most 10 a second, so
 * this is a lower bound of what the kill switch dropped on eth0), `lost` times the kernel dropped
 * log messages because we did not read fast enough, `reports` lines logged.
 */
export interface DropCounter {
  packets: number;
  lost: number;
  reports: number;
  /** The last line logged and when (clock ms): what `pod-gateway doctor` shows as recent drops. */
  last?: { text: string; atMs: number };
}

export interface DropReport {
  readonly counter: DropCounter;
  /** False when the log group could not be bound (the reason was logged). */
  readonly listening: boolean;
  stop(): void;
}

/** Open a NETLINK_NETFILTER socket bound to `group` in packet-copy mode. */
export function openNflogSocket(group: number): NetlinkSocket {
  const sock = NetlinkSocket.open({ protocol: NETLINK_NETFILTER, timeoutMs: 2000 });
  try {
    for (const family of [4, 6] as const) {
      // Kernels before 3.17 need the family bound to nfnetlink_log; later ones ignore both.
      try {
        sock.request(nflogPfRequest(NFULNL_CFG_CMD_PF_UNBIND, family), `unbinding IPv${family} from nfnetlink_log`);
      } catch {}
      sock.request(nflogPfRequest(NFULNL_CFG_CMD_PF_BIND, family), `binding IPv${family} to nfnetlink_log`);
    }
    sock.request(nflogBindRequest(group), `binding NFLOG group ${group}`);
    sock.request(nflogModeRequest(group), `asking NFLOG group ${group} for packet headers`);
    return sock;
  } catch (e) {
    sock.close();
    throw e;
  }
}

/** Every logged packet of `group` queued on the socket now (non-blocking). */
export function drainNflog(sock: NetlinkSocket, group: number, counter: DropCounter): LoggedPacket[] {
  const out: LoggedPacket[] = [];
  for (;;) {
    let msgs;
    try {
      msgs = sock.receive(false, "reading the kill switch's drop log");
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === ENOBUFS) {
        counter.lost++;
        continue;
      }
      throw e;
    }
    if (msgs === undefined) return out;
    for (const m of msgs) {
      try {
        const p = decodeNflogPacket(m);
        if (p && p.group === group) out.push(p);
      } catch {
        // A malformed message is skipped; the next ones are read on.
      }
    }
  }
}

export function startDropReport(opts: {
  log: Logger;
  clock?: Clock;
  pollMs?: number;
  reportIntervalMs?: number;
  group?: number;
  /** Told of the packets each drain read (the metrics count them by protocol). */
  onPackets?: (packets: readonly LoggedPacket[]) => void;
}): DropReport {
  const clock = opts.clock ?? realClock;
  const group = opts.group ?? KILLSWITCH_NFLOG_GROUP;
  const counter: DropCounter = { packets: 0, lost: 0, reports: 0 };
  let sock: NetlinkSocket;
  try {
    sock = openNflogSocket(group);
  } catch (e) {
    opts.log.warn(`the kill switch's drop report is off: ${(e as Error).message}`);
    return { counter, listening: false, stop: () => {} };
  }
  const state = newDropReportState();
  const stop = new AbortController();
  void (async () => {
    let failing = false;
    while (!stop.signal.aborted) {
      try {
        const packets = drainNflog(sock, group, counter);
        counter.packets += packets.length;
        if (packets.length) opts.onPackets?.(packets);
        recordDrops(state, packets);
        const text = planDropReport(state, clock.now(), POD_IF, opts.reportIntervalMs);
        if (text) {
          counter.reports++;
          counter.last = { text, atMs: clock.now() };
          opts.log.warn(text);
        }
        failing = false;
      } catch (e) {
        if (!failing) opts.log.warn(`reading the kill switch's drop log: ${(e as Error).message}`);
        failing = true;
      }
      await clock.sleep(opts.pollMs ?? DROP_POLL_MS, stop.signal);
    }
    sock.close();
  })();
  return { counter, listening: true, stop: () => stop.abort() };
}
