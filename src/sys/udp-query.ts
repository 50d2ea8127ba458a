// One UDP question and the first acceptable answer, over a connected socket: the gateway probe
// (sys/probe.ts) and the gateway's name lookup (sys/dns.ts). Bun's native UDP socket, not
// node:dgram or node:dns: those load their JavaScript modules (and c-ares) into every client
// process, a few ms of CPU at each start and pages the sidecar keeps touching.

export type UdpQueryResult<T> =
  | { kind: "answer"; value: T }
  | { kind: "timeout" }
  | { kind: "error"; message: string }
  | { kind: "aborted" };

export interface UdpQueryOptions<T> {
  timeoutMs: number;
  signal?: AbortSignal;
  /** The value an arriving datagram stands for, or undefined to keep waiting (not our answer). */
  accept(datagram: Uint8Array): T | undefined;
}

/**
 * Send `query` to ip:port and wait for an accepted answer. Never rejects. The socket is connected,
 * so the kernel drops datagrams from other sources and reports ICMP errors (port unreachable: the
 * gateway is up but nothing listens there) as an error, which ends the wait at once.
 */
export function udpQuery<T>(ip: string, port: number, query: Uint8Array, opts: UdpQueryOptions<T>): Promise<UdpQueryResult<T>> {
  return new Promise((resolve) => {
    let done = false;
    let sock: { close(): void } | undefined;
    const finish = (r: UdpQueryResult<T>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      try {
        sock?.close();
      } catch {}
      resolve(r);
    };
    const onAbort = () => finish({ kind: "aborted" });
    const timer = setTimeout(() => finish({ kind: "timeout" }), opts.timeoutMs);
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    let opening;
    try {
      opening = Bun.udpSocket({
        binaryType: "uint8array",
        connect: { hostname: ip, port },
        socket: {
          data(_s, datagram) {
            if (done) return;
            const value = opts.accept(datagram);
            if (value !== undefined) finish({ kind: "answer", value });
          },
          // Bun passes the error as the first argument (its typings say second): take whichever is one.
          error(...args: unknown[]) {
            const e = args.find((a) => a instanceof Error) as Error | undefined;
            finish({ kind: "error", message: e?.message ?? "socket error" });
          },
        },
      });
    } catch (e) {
      // connect() refused at once — Bun throws here rather than rejecting: no route (vxlan0
      // just deleted), network unreachable, a broadcast address.
      return finish({ kind: "error", message: (e as Error).message });
    }
    opening.then(
      (s) => {
        if (done) return s.close();
        sock = s;
        try {
          if (!s.send(query)) finish({ kind: "error", message: "the datagram was not sent" });
        } catch (e) {
          finish({ kind: "error", message: (e as Error).message });
        }
      },
      (e: Error) => finish({ kind: "error", message: e.message }),
    );
  });
}
