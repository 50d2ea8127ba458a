// The lab's echo service and the probes that talk to it, run inside lab namespaces as hidden
// subcommands of this binary (`lab echo`, `lab probe`, `lab resolve`). The echo service
// reports the source address it sees, so a test can tell a NATed VPN exit from a leak.
import { renameSync, writeFileSync } from "node:fs";
import { lookup } from "node:dns/promises";
import { lookupA } from "../sys/dns.ts";
import type { EchoHits, EchoReply, ResolveResult } from "./types.ts";

export interface EchoOptions {
  tcpPort?: number;
  udpPort?: number;
  /** Counters are rewritten here (atomically) before each answer, and once when listening. */
  stateFile?: string;
  /** Address to listen on; default all IPv4 addresses. */
  host?: string;
}

/** Runs until `signal` aborts; resolves once both listeners are closed. */
export async function runEcho(opts: EchoOptions, signal: AbortSignal): Promise<void> {
  const host = opts.host ?? "0.0.0.0";
  const hits: EchoHits = { tcp: 0, udp: 0, sources: [] };
  const seen = new Set<string>();
  const record = (kind: "tcp" | "udp", address: string) => {
    hits[kind]++;
    if (!seen.has(address)) {
      seen.add(address);
      hits.sources.push(address);
    }
    saveState();
  };
  // Written before the reply leaves, so a probe that got its answer finds itself counted.
  const saveState = () => {
    if (!opts.stateFile) return;
    const tmp = `${opts.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(hits));
    renameSync(tmp, opts.stateFile);
  };

  const server =
    opts.tcpPort === undefined
      ? undefined
      : Bun.serve({
          hostname: host,
          port: opts.tcpPort,
          fetch(req, srv) {
            const url = new URL(req.url);
            if (url.pathname === "/hits") return Response.json(hits);
            const ip = srv.requestIP(req);
            if (!ip) return new Response("no peer address\n", { status: 500 });
            record("tcp", ip.address);
            return new Response(`${ip.address}:${ip.port}`);
          },
        });
  const udp =
    opts.udpPort === undefined
      ? undefined
      : await Bun.udpSocket({
          hostname: host,
          port: opts.udpPort,
          socket: {
            data(sock, _data, port, address) {
              record("udp", address);
              sock.send(`${address}:${port}`, port, address);
            },
          },
        });
  saveState();
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
  udp?.close();
  await server?.stop(true);
}

export interface ProbeTarget {
  proto: "tcp" | "udp";
  host: string;
  port: number;
}

/** HTTP GET / over a plain TCP connection (no fetch: it would honour a proxy from the environment). */
async function probeTcp(t: ProbeTarget, timeoutMs: number): Promise<EchoReply> {
  return new Promise<EchoReply>((resolve) => {
    let buf = "";
    let done = false;
    const finish = (r: EchoReply, sock?: { end(): void }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock?.end();
      resolve(r);
    };
    const tryParse = (closed: boolean, sock?: { end(): void }) => {
      const head = buf.indexOf("\r\n\r\n");
      if (head < 0) {
        if (closed) finish({ ok: false, error: `connection to ${t.host}:${t.port} closed before an answer` });
        return;
      }
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(buf);
      const len = /\r\ncontent-length:\s*(\d+)/i.exec(buf.slice(0, head));
      const body = buf.slice(head + 4);
      if (len && body.length < Number(len[1]) && !closed) return;
      if (!status || status[1] !== "200") return finish({ ok: false, error: `echo service answered ${status?.[1] ?? "garbage"}` }, sock);
      finish({ ok: true, source: body.trim() }, sock);
    };
    const timer = setTimeout(() => finish({ ok: false, error: `no answer from ${t.host}:${t.port}/tcp within ${timeoutMs} ms` }), timeoutMs);
    Bun.connect({
      hostname: t.host,
      port: t.port,
      socket: {
        open(sock) {
          sock.write(`GET / HTTP/1.1\r\nHost: ${t.host}\r\nConnection: close\r\n\r\n`);
        },
        data(sock, data) {
          buf += data.toString();
          tryParse(false, sock);
        },
        close() {
          tryParse(true);
        },
        error(_sock, e) {
          finish({ ok: false, error: `${t.host}:${t.port}/tcp: ${e.message}` });
        },
        connectError(_sock, e) {
          finish({ ok: false, error: `connecting to ${t.host}:${t.port}/tcp: ${e.message}` });
        },
      },
    }).catch((e: Error) => finish({ ok: false, error: `connecting to ${t.host}:${t.port}/tcp: ${e.message}` }));
  });
}

/** One datagram every 200 ms until an answer or the timeout. */
async function probeUdp(t: ProbeTarget, timeoutMs: number): Promise<EchoReply> {
  let answer: ((s: string) => void) | undefined;
  const got = new Promise<string>((r) => (answer = r));
  const sock = await Bun.udpSocket({
    socket: {
      data(_s, data) {
        answer?.(data.toString());
      },
    },
  });
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  try {
    while (Date.now() < deadline) {
      try {
        sock.send("echo?", t.port, t.host);
      } catch (e) {
        // ENETUNREACH and friends: the path is gone (what a kill switch test expects to see).
        lastError = (e as Error).message;
      }
      const wait = Math.min(200, Math.max(0, deadline - Date.now()));
      const r = await Promise.race([got, Bun.sleep(wait).then(() => undefined)]);
      if (r !== undefined) return { ok: true, source: r.trim() };
    }
  } finally {
    sock.close();
  }
  return { ok: false, error: `no answer from ${t.host}:${t.port}/udp within ${timeoutMs} ms${lastError ? ` (${lastError})` : ""}` };
}

export function runProbe(t: ProbeTarget, timeoutMs: number): Promise<EchoReply> {
  return t.proto === "tcp" ? probeTcp(t, timeoutMs) : probeUdp(t, timeoutMs);
}

/** Through the pod's resolv.conf with its search list, as an application would (getaddrinfo). */
async function askSystem(name: string): Promise<string[]> {
  return (await lookup(name, { family: 4, all: true })).map((a) => a.address);
}

/**
 * A records for `name` through `server` (or the system's resolv.conf). With `expect`, keeps
 * asking until that address is among the answers or the time is up.
 */
export async function runResolve(name: string, opts: { server?: string; timeoutMs: number; expect?: string }): Promise<ResolveResult> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: ResolveResult = { ok: false, addresses: [], error: "no attempt made" };
  do {
    const left = Math.max(50, deadline - Date.now());
    try {
      const addresses = opts.server ? await lookupA(name, opts.server, Math.min(left, 1000)) : await askSystem(name);
      last = { ok: true, addresses };
      if (!opts.expect || addresses.includes(opts.expect)) return last;
      last = { ok: false, addresses, error: `${name} resolves to ${addresses.join(", ")}, not ${opts.expect}` };
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      last = { ok: false, addresses: [], error: `resolving ${name}${opts.server ? ` via ${opts.server}` : ""}: ${err.code ?? err.message}` };
      if (!opts.expect) return last;
    }
    await Bun.sleep(20);
  } while (Date.now() < deadline);
  return last;
}
