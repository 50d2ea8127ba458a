// The client's watch connection socket (src/sys/gateway-watch.ts) against real TCP servers on
// loopback: established only by the greeting; a close after it is a goodbye, before it a failure;
// what follows the greeting is dropped; our own close() calls no handler.
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { openGatewayWatch, type WatchHandlers } from "../../src/sys/gateway-watch.ts";

type Ev = { kind: "established" } | { kind: "failed" | "closed"; why: string };

function recorder() {
  const events: Ev[] = [];
  let wake: (() => void) | undefined;
  const push = (e: Ev) => {
    events.push(e);
    wake?.();
  };
  const h: WatchHandlers = {
    established: () => push({ kind: "established" }),
    failed: (why) => push({ kind: "failed", why }),
    closed: (why) => push({ kind: "closed", why }),
  };
  /** Resolves once `n` events were seen (or after 3 s: the test's expectations then say what is missing). */
  const seen = (n: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 3000);
      const check = () => {
        if (events.length >= n) {
          clearTimeout(t);
          resolve();
        }
      };
      wake = check;
      check();
    });
  return { events, h, seen };
}

let servers: TCPSocketListener<undefined>[] = [];
afterEach(() => {
  for (const s of servers) s.stop(true);
  servers = [];
});

/** A server that does `onOpen` with every connection; returns its port and the connections. */
function serve(onOpen: (s: Socket<undefined>) => void) {
  const conns: Socket<undefined>[] = [];
  const srv = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        conns.push(s);
        onOpen(s);
      },
      data() {},
    },
  });
  servers.push(srv);
  return { port: srv.port, conns };
}

describe("the watch connection", () => {
  test("the greeting establishes it; the gateway's close after it is a goodbye; later bytes are dropped", async () => {
    const srv = serve((s) => s.write("pod-gateway watch 1\n"));
    const r = recorder();
    openGatewayWatch("127.0.0.1", srv.port, 2000, r.h);
    await r.seen(1);
    expect(r.events).toEqual([{ kind: "established" }]);
    srv.conns[0]!.write("x".repeat(100_000)); // never kept, never a reason to end
    await Bun.sleep(50);
    expect(r.events).toHaveLength(1);
    srv.conns[0]!.end();
    await r.seen(2);
    expect(r.events[1]).toEqual({ kind: "closed", why: "closed by the gateway" });
  });

  test("a greeting that arrives in pieces, with a later version, counts", async () => {
    const srv = serve((s) => {
      s.write("pod-gateway wa");
      setTimeout(() => s.write("tch 2\r\n"), 30);
    });
    const r = recorder();
    openGatewayWatch("127.0.0.1", srv.port, 2000, r.h);
    await r.seen(1);
    expect(r.events).toEqual([{ kind: "established" }]);
  });

  test("refused, closed before the greeting, no greeting, a wrong greeting: failures, never goodbyes", async () => {
    // refused: a port nobody listens on (a listener stopped at once)
    const gone = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const freePort = gone.port;
    gone.stop(true);
    const refused = recorder();
    openGatewayWatch("127.0.0.1", freePort, 2000, refused.h);
    const early = recorder();
    openGatewayWatch("127.0.0.1", serve((s) => s.end()).port, 2000, early.h);
    const silent = recorder();
    openGatewayWatch("127.0.0.1", serve(() => {}).port, 200, silent.h);
    const wrong = recorder();
    openGatewayWatch("127.0.0.1", serve((s) => s.write("SSH-2.0-OpenSSH_9.2\r\n")).port, 2000, wrong.h);
    const endless = recorder();
    openGatewayWatch("127.0.0.1", serve((s) => s.write("p".repeat(1000))).port, 2000, endless.h);
    await Promise.all([refused.seen(1), early.seen(1), silent.seen(1), wrong.seen(1), endless.seen(1)]);
    expect(refused.events).toHaveLength(1);
    expect(refused.events[0]).toMatchObject({ kind: "failed" });
    expect(early.events).toEqual([{ kind: "failed", why: "closed by the gateway" }]);
    expect(silent.events).toEqual([{ kind: "failed", why: "no greeting within 200 ms" }]);
    expect(wrong.events).toEqual([{ kind: "failed", why: "not a pod-gateway watch greeting" }]);
    expect(endless.events).toEqual([{ kind: "failed", why: "not a pod-gateway watch greeting" }]);
  });

  test("our own close calls no handler, established or not, and closes the connection", async () => {
    let closedAtServer = 0;
    const srv = Bun.listen<undefined>({
      hostname: "127.0.0.1",
      port: 0,
      socket: { open: (s) => void s.write("pod-gateway watch 1\n"), data() {}, close: () => void closedAtServer++ },
    });
    servers.push(srv);
    const r = recorder();
    const c = openGatewayWatch("127.0.0.1", srv.port, 2000, r.h);
    await r.seen(1);
    c.close();
    const pending = recorder();
    openGatewayWatch("127.0.0.1", srv.port, 2000, pending.h).close();
    await Bun.sleep(200);
    expect(r.events).toEqual([{ kind: "established" }]);
    expect(pending.events).toEqual([]);
    expect(closedAtServer).toBe(2);
  });
});
