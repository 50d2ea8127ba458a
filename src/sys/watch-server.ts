// The gateway sidecar's watch listener (GATEWAY_WATCH_PORT, issue 11 §6): TCP on the overlay's
// .1, one idle connection per client sidecar, ended with a FIN when the sidecar stops so that every
// client looks for the next gateway at once. What it binds, says and holds is decided in
// src/core/gateway/watch.ts. Bun.listen, not node:net (the status socket's measurement: node:net
// costs ~1.3 MB of anonymous memory in a compiled binary).
import { renderWatchClosed, WATCH_GREETING, WATCH_KEEPALIVE_MS, WatchAdmission } from "../core/gateway/watch.ts";
import type { Logger } from "./log.ts";

export interface WatchServer {
  readonly hostname: string;
  readonly port: number;
  /** Connections held now. */
  readonly connections: number;
  /**
   * Stop listening, then end every connection (FIN after the greeting, nothing else pending).
   * The first call logs how many it ended; later calls do nothing. Returns how many it ended.
   */
  close(): number;
}

interface Conn {
  /** Counted by the admission (false: refused over the cap, closing). */
  kept: boolean;
}

const GREETING = new TextEncoder().encode(WATCH_GREETING);

/**
 * Listen on hostname:port. A bind that fails (no such address yet, the port in use) is a warning
 * naming address and error, and undefined: the sidecar goes on without it (clients fall back to
 * probing). `onCount` hears the number held once listening (0) and after every change.
 */
export function startWatchServer(o: { hostname: string; port: number; log: Logger; max?: number; keepAliveMs?: number; onCount?: (held: number) => void }): WatchServer | undefined {
  const { log } = o;
  const admission = new WatchAdmission(o.max);
  const held = new Set<Bun.Socket<Conn>>();
  const keepAliveMs = o.keepAliveMs ?? WATCH_KEEPALIVE_MS;
  let closed = false;
  let listener: Bun.TCPSocketListener<Conn>;
  try {
    listener = Bun.listen<Conn>({
      hostname: o.hostname,
      port: o.port,
      exclusive: true,
      socket: {
        open(sock) {
          const admit = closed ? ({ accept: false } as const) : admission.open();
          if (!admit.accept) {
            sock.data = { kept: false };
            if ("warning" in admit && admit.warning) log.warn(admit.warning);
            sock.end();
            return;
          }
          sock.data = { kept: true };
          held.add(sock);
          o.onCount?.(admission.held);
          // 20 bytes into an empty send buffer: written whole (a short write means the peer is
          // already gone; the close handler follows).
          if (sock.write(GREETING) < GREETING.length) return void sock.end();
          // A client pod gone without a FIN (its node lost) must not hold a slot for ever.
          sock.setKeepAlive(true, keepAliveMs);
        },
        // Whatever a client sends is read and dropped at once: nothing is buffered.
        data() {},
        close(sock) {
          if (!sock.data?.kept) return;
          sock.data.kept = false;
          held.delete(sock);
          admission.close();
          o.onCount?.(admission.held);
        },
        error(sock, e) {
          log.debug(`watch connection from ${sock.remoteAddress}: ${e.message}`);
        },
      },
    });
  } catch (e) {
    log.warn(`cannot listen for watch connections on ${o.hostname}:${o.port}: ${(e as Error).message}; clients notice this gateway leaving only by their probes`);
    return undefined;
  }
  log.info(`watch port: listening on ${o.hostname}:${listener.port} (each client holds a connection; they are ended first when the sidecar stops)`);
  o.onCount?.(0);
  return {
    hostname: o.hostname,
    port: listener.port,
    get connections() {
      return admission.held;
    },
    close() {
      if (closed) return 0;
      closed = true;
      listener.stop(false); // no new connections: a client reconnecting now must not find us
      const ending = [...held];
      for (const sock of ending) sock.end();
      log.info(renderWatchClosed(ending.length, admission.refused));
      return ending.length;
    },
  };
}
