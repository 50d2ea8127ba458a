// The client's end of the gateway's watch connection (issue 11 §6): one TCP connection to
// <overlay>.1:GATEWAY_WATCH_PORT through the tunnel. The gateway-sidecar greets with one line and
// closes the connection as it terminates; the decisions about it are SidecarMachine's
// (watchStep/watchEstablished/watchFailed/watchClosed), here is only the socket.
// What a greeting is: src/core/gateway/watch.ts, beside what the gateway sends.
import { isWatchGreeting, WATCH_GREETING_MAX } from "../core/gateway/watch.ts";

export interface WatchHandlers {
  /** The greeting was read: the connection is established. */
  established(): void;
  /** It ended before that (refused, unreachable, timeout, not a greeting). Not a goodbye. */
  failed(why: string): void;
  /** It ended after that (EOF, reset, error): the gateway is leaving. */
  closed(why: string): void;
}

export interface WatchConnection {
  /** Close it from our side: no handler is called after this. */
  close(): void;
}

/**
 * Open a watch connection to ip:port; exactly one of failed/closed ends it (or our close()).
 * Established only once the greeting line arrived within `greetingTimeoutMs` of the start. What
 * the gateway sends after the greeting is read and dropped, never kept.
 */
export function openGatewayWatch(ip: string, port: number, greetingTimeoutMs: number, h: WatchHandlers): WatchConnection {
  let state: "connecting" | "open" | "done" = "connecting";
  let sock: { end(): void; terminate(): void } | undefined;
  let buf = "";
  const finish = (why: string) => {
    if (state === "done") return;
    const was = state;
    state = "done";
    clearTimeout(timer);
    try {
      sock?.terminate();
    } catch {}
    if (was === "open") h.closed(why);
    else h.failed(why);
  };
  const timer = setTimeout(() => finish(`no greeting within ${greetingTimeoutMs} ms`), greetingTimeoutMs);
  Bun.connect({
    hostname: ip,
    port,
    socket: {
      open(s) {
        sock = s;
        if (state === "done") s.terminate();
      },
      data(_s, chunk) {
        if (state !== "connecting") return; // after the greeting: dropped
        buf += chunk.toString("latin1");
        const nl = buf.indexOf("\n");
        if (nl < 0) {
          if (buf.length > WATCH_GREETING_MAX) finish("not a pod-gateway watch greeting");
          return;
        }
        const line = buf.slice(0, nl).replace(/\r$/, "");
        buf = "";
        if (!isWatchGreeting(line)) return finish("not a pod-gateway watch greeting");
        state = "open";
        clearTimeout(timer);
        h.established();
      },
      end() {
        finish("closed by the gateway");
      },
      close(_s, err) {
        finish(err ? `connection lost: ${err.message}` : "closed by the gateway");
      },
      error(_s, err) {
        finish(`connection lost: ${err.message}`);
      },
      connectError(_s, err) {
        finish(`connecting: ${err.message}`);
      },
    },
  }).then(
    (s) => {
      sock = s;
      if (state === "done") s.terminate();
    },
    (e: unknown) => finish(`connecting: ${e instanceof Error ? e.message : String(e)}`),
  );
  return {
    close() {
      if (state === "done") return;
      state = "done";
      clearTimeout(timer);
      try {
        sock?.terminate();
      } catch {}
    },
  };
}
