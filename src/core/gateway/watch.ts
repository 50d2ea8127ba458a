// The gateway's watch port (GATEWAY_WATCH_PORT, issue 11 §6): where the listener binds, what it
// says, how many connections it holds. Each client sidecar holds one idle TCP connection to the
// gateway sidecar; when the sidecar stops (SIGTERM, or any death: the kernel closes its sockets
// and sends FIN) every client learns at once that this gateway is leaving, instead of at its next
// probe. Pure: the socket is src/sys/watch-server.ts.
import { gatewayOverlayIp } from "../net/vxlan.ts";
import type { Settings } from "../settings/types.ts";

/** The one line a client reads first (version 1 of the protocol); nothing else is ever sent. */
export const WATCH_GREETING = "pod-gateway watch 1\n";

/** More than this without a newline is not a greeting (the client reads no further). */
export const WATCH_GREETING_MAX = 64;

/**
 * Whether a line (without its newline) is a gateway's greeting, as the client checks it: any
 * version counts — the contract is only "closed when the gateway leaves".
 */
export function isWatchGreeting(line: string): boolean {
  return /^pod-gateway watch [1-9][0-9]{0,5}$/.test(line);
}

/** Connections held at most (a /24 overlay has 253 clients: this bounds a misbehaving peer, not a real herd). */
export const WATCH_MAX_CONNECTIONS = 4096;

/**
 * Idle time before TCP keepalive probes a connection (Bun then probes every second, 10 times): a
 * client pod that vanished without a FIN (its node lost) frees its slot within about 40 s. The
 * probes are one small packet per client every 30 s over vxlan0.
 */
export const WATCH_KEEPALIVE_MS = 30_000;

/** Where the listener binds: the overlay's .1 on vxlan0 only (never 0.0.0.0); undefined when the port is 0 (off). */
export function planWatchListen(s: Pick<Settings, "GATEWAY_WATCH_PORT" | "VXLAN_IP_NETWORK">): { hostname: string; port: number } | undefined {
  if (s.GATEWAY_WATCH_PORT === 0) return undefined;
  return { hostname: gatewayOverlayIp(s.VXLAN_IP_NETWORK), port: s.GATEWAY_WATCH_PORT };
}

export type WatchAdmit = { accept: true } | { accept: false; warning?: string };

/**
 * The connection cap: at most `max` held; beyond that a new connection is closed at once, and
 * only the first refusal is worth a warning (a peer reconnecting in a loop must not flood the log).
 */
export class WatchAdmission {
  private count = 0;
  private refusedCount = 0;

  constructor(readonly max: number = WATCH_MAX_CONNECTIONS) {}

  get held(): number {
    return this.count;
  }

  get refused(): number {
    return this.refusedCount;
  }

  /** A connection was accepted by the kernel: keep it (counted) or close it. */
  open(): WatchAdmit {
    if (this.count < this.max) {
      this.count++;
      return { accept: true };
    }
    this.refusedCount++;
    if (this.refusedCount > 1) return { accept: false };
    return { accept: false, warning: `${this.max} watch connections held: closing new ones at once until some end (logged once; clients fall back to probing)` };
  }

  /** A kept connection ended. */
  close(): void {
    this.count = Math.max(0, this.count - 1);
  }
}

/** The shutdown line: how many connections were ended, so that clients look for the next gateway now. */
export function renderWatchClosed(ended: number, refused: number): string {
  const r = refused ? `; ${refused} refused over the cap since start` : "";
  return `watch port: ended ${ended} client connection${ended === 1 ? "" : "s"} first (clients look for the next gateway now)${r}`;
}
