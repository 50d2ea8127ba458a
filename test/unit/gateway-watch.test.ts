// The gateway's watch port (issue 11 §6): the pure decisions (address, greeting, cap, shutdown
// line) and the listener itself on loopback (no root: a real TCP socket on 127.0.0.1, an ephemeral
// port). The lab test (test/netns/gateway-roles.test.ts) runs it on vxlan0 through the firewall.
import { describe, expect, test } from "bun:test";
import { createConsola } from "consola/basic";
import { isWatchGreeting, planWatchListen, renderWatchClosed, WATCH_GREETING, WATCH_GREETING_MAX, WATCH_MAX_CONNECTIONS, WatchAdmission } from "../../src/core/gateway/watch.ts";
import { startWatchServer, type WatchServer } from "../../src/sys/watch-server.ts";

function recorder() {
  const lines: string[] = [];
  const l = createConsola({ level: 5 });
  l.setReporters([{ log: (o) => void lines.push(`${o.type}: ${o.args.join(" ")}`) }]);
  return { log: l, lines };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** A client: what it read, and whether the server ended the connection. */
async function client(port: number) {
  const c = { text: "", ended: false, closed: false, sock: undefined as Bun.Socket<undefined> | undefined };
  c.sock = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data: (_s, d) => void (c.text += d.toString("latin1")),
      end: () => void (c.ended = true),
      close: () => void (c.closed = true),
    },
  });
  return c;
}

describe("the watch decisions (pure)", () => {
  test("the greeting is exactly one versioned line", () => {
    expect(WATCH_GREETING).toBe("pod-gateway watch 1\n");
    expect(new TextEncoder().encode(WATCH_GREETING)).toHaveLength(20);
    // what the gateway sends is what the client takes for a greeting (one definition, both ends)
    expect(isWatchGreeting(WATCH_GREETING.slice(0, -1))).toBe(true);
    expect(WATCH_GREETING.length).toBeLessThanOrEqual(WATCH_GREETING_MAX);
    for (const not of ["pod-gateway watch 0", "pod-gateway watch", "pod-gateway watch 1 ", "SSH-2.0-OpenSSH", "HTTP/1.1 400 Bad Request"]) expect(isWatchGreeting(not)).toBe(false);
  });

  test("the listener binds the overlay's .1 and the setting's port; 0 is off", () => {
    expect(planWatchListen({ GATEWAY_WATCH_PORT: 4790, VXLAN_IP_NETWORK: "172.16.0" })).toEqual({ hostname: "172.16.0.1", port: 4790 });
    expect(planWatchListen({ GATEWAY_WATCH_PORT: 5000, VXLAN_IP_NETWORK: "10.242.7" })).toEqual({ hostname: "10.242.7.1", port: 5000 });
    expect(planWatchListen({ GATEWAY_WATCH_PORT: 0, VXLAN_IP_NETWORK: "172.16.0" })).toBeUndefined();
  });

  test("the cap: at most max held, a refusal beyond it warns once, a freed slot is taken again", () => {
    expect(WATCH_MAX_CONNECTIONS).toBe(4096);
    const a = new WatchAdmission(2);
    expect([a.open(), a.open()]).toEqual([{ accept: true }, { accept: true }]);
    const first = a.open();
    expect(first.accept).toBe(false);
    expect("warning" in first && first.warning).toContain("2 watch connections held: closing new ones at once");
    expect(a.open()).toEqual({ accept: false }); // logged once
    expect([a.held, a.refused]).toEqual([2, 2]);
    a.close();
    expect(a.open()).toEqual({ accept: true });
    for (let i = 0; i < 5; i++) a.close();
    expect(a.held).toBe(0); // never below zero
  });

  test("the shutdown line counts what was ended (and what was refused, if anything)", () => {
    expect(renderWatchClosed(1, 0)).toBe("watch port: ended 1 client connection first (clients look for the next gateway now)");
    expect(renderWatchClosed(0, 0)).toBe("watch port: ended 0 client connections first (clients look for the next gateway now)");
    expect(renderWatchClosed(200, 3)).toBe("watch port: ended 200 client connections first (clients look for the next gateway now); 3 refused over the cap since start");
  });
});

describe("startWatchServer (real sockets on loopback)", () => {
  test("greets each client at once, drops what clients send, counts them, and close() ends every one with EOF and stops listening", async () => {
    const r = recorder();
    const counts: number[] = [];
    const w = startWatchServer({ hostname: "127.0.0.1", port: 0, log: r.log, onCount: (n) => counts.push(n) })!;
    expect(w).toBeDefined();
    try {
      expect(w.port).toBeGreaterThan(0);
      expect(r.lines).toContain(`info: watch port: listening on 127.0.0.1:${w.port} (each client holds a connection; they are ended first when the sidecar stops)`);
      const a = await client(w.port);
      const b = await client(w.port);
      await waitFor("both greetings", () => a.text === WATCH_GREETING && b.text === WATCH_GREETING);
      // A client that talks (a megabyte) is read and ignored: nothing comes back, it stays held.
      a.sock!.write(new Uint8Array(1 << 20).fill(65));
      await Bun.sleep(100);
      expect(a.text).toBe(WATCH_GREETING);
      expect([a.ended, b.ended, w.connections]).toEqual([false, false, 2]);
      // A client that leaves frees its slot.
      const c = await client(w.port);
      await waitFor("the third greeting", () => c.text === WATCH_GREETING);
      c.sock!.end();
      await waitFor("the server to see the third leave", () => w.connections === 2);

      expect(w.close()).toBe(2);
      await waitFor("EOF at both clients", () => a.ended && b.ended);
      expect(r.lines).toContain("info: watch port: ended 2 client connections first (clients look for the next gateway now)");
      expect(w.close()).toBe(0); // once
      expect(r.lines.filter((l) => l.includes("watch port: ended"))).toHaveLength(1);
      // Not listening any more: a client reconnecting now must not find this gateway.
      await expect(client(w.port)).rejects.toThrow();
      await waitFor("the count back to 0", () => w.connections === 0);
      expect(counts[0]).toBe(0);
      expect(counts.slice(0, 4)).toEqual([0, 1, 2, 3]);
      expect(counts.at(-1)).toBe(0);
    } finally {
      w.close();
    }
  });

  test("beyond the cap a new connection is closed at once without a greeting (logged once); the held ones stay", async () => {
    const r = recorder();
    const w = startWatchServer({ hostname: "127.0.0.1", port: 0, log: r.log, max: 2 })!;
    try {
      const held = [await client(w.port), await client(w.port)];
      await waitFor("two greetings", () => held.every((c) => c.text === WATCH_GREETING));
      const over = [await client(w.port), await client(w.port)];
      await waitFor("the refused to see EOF", () => over.every((c) => c.ended || c.closed));
      expect(over.map((c) => c.text)).toEqual(["", ""]);
      expect(r.lines.filter((l) => l.startsWith("warn:"))).toEqual(["warn: 2 watch connections held: closing new ones at once until some end (logged once; clients fall back to probing)"]);
      expect(held.some((c) => c.ended)).toBe(false);
      expect(w.connections).toBe(2);
      expect(w.close()).toBe(2);
      expect(r.lines).toContain("info: watch port: ended 2 client connections first (clients look for the next gateway now); 2 refused over the cap since start");
    } finally {
      w.close();
    }
  });

  test("a bind that fails (an address not on this host, a port in use) is a warning naming address and error, and no server", () => {
    const r = recorder();
    // 192.0.2.1 (TEST-NET-1) is on no interface here: EADDRNOTAVAIL, as before gateway-init put .1 on vxlan0.
    expect(startWatchServer({ hostname: "192.0.2.1", port: 4790, log: r.log })).toBeUndefined();
    expect(r.lines.at(-1)).toStartWith("warn: cannot listen for watch connections on 192.0.2.1:4790: ");
    expect(r.lines.at(-1)).toEndWith("clients notice this gateway leaving only by their probes");
    let first: WatchServer | undefined;
    try {
      first = startWatchServer({ hostname: "127.0.0.1", port: 0, log: r.log })!;
      expect(startWatchServer({ hostname: "127.0.0.1", port: first.port, log: r.log })).toBeUndefined();
      expect(r.lines.at(-1)).toStartWith(`warn: cannot listen for watch connections on 127.0.0.1:${first.port}: `);
    } finally {
      first?.close();
    }
  });
});
