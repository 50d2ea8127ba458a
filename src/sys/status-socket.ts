// The sidecar's status socket: an abstract unix socket "@pod-gateway/<role>" (src/core/health.ts
// names it), scoped to the pod's network namespace. Protocol: the caller writes one line, "live" or
// "ready", and reads one JSON object until the sidecar closes the connection. Both Bun.listen and
// node:net take abstract names ("\0…") inside a compiled binary (measured). node:net is imported
// only by the asking side (`health`, `doctor`): the sidecars never load it.
import { statusSocketName, type HealthQuestion, type SidecarRole } from "../core/health.ts";

/** A request longer than this is not ours. */
const MAX_REQUEST = 64;
/** A status longer than this is not ours either. */
const MAX_STATUS = 64 * 1024;

/** Tests serve under another name: the test process shares the host's namespace with other test runs. */
const abstractPath = (role: SidecarRole, name?: string) => `\0${name ?? statusSocketName(role)}`;

export interface StatusServer {
  close(): void;
}

interface Conn {
  buf: string;
  asked: boolean;
  timer: Timer | undefined;
  /** What is left to write once the socket drains. */
  pending: Uint8Array | undefined;
}

/**
 * Serve `status(question)` on the role's socket. Fails (EADDRINUSE) when another process of this
 * role already serves in this network namespace. `answerTimeoutMs` bounds each connection.
 *
 * The sidecar side uses Bun.listen, not node:net: measured in a compiled binary, a node:net server
 * costs ~1.3 MB of anonymous memory (the streams machinery it loads), Bun.listen nothing measurable.
 */
export async function serveStatus(role: SidecarRole, status: (q: HealthQuestion) => Promise<object> | object, opts: { answerTimeoutMs?: number; name?: string } = {}): Promise<StatusServer> {
  const timeoutMs = opts.answerTimeoutMs ?? 800;
  const enc = new TextEncoder();
  const send = (sock: Bun.Socket<Conn>, text: string) => {
    const bytes = enc.encode(text);
    const n = sock.write(bytes);
    if (n < bytes.length) sock.data.pending = bytes.subarray(Math.max(0, n));
    else sock.end();
  };
  const server = Bun.listen<Conn>({
    unix: abstractPath(role, opts.name),
    socket: {
      open(sock) {
        sock.data = { buf: "", asked: false, timer: setTimeout(() => sock.end(), timeoutMs), pending: undefined };
      },
      async data(sock, d) {
        if (sock.data.asked) return; // one question per connection
        sock.data.buf += d.toString("latin1");
        if (sock.data.buf.length > MAX_REQUEST) return void sock.end();
        const nl = sock.data.buf.indexOf("\n");
        if (nl < 0) return;
        sock.data.asked = true;
        const q = sock.data.buf.slice(0, nl).trim();
        if (q !== "live" && q !== "ready") return send(sock, JSON.stringify({ error: `unknown question ${JSON.stringify(q.slice(0, 20))}` }));
        let text: string;
        try {
          text = JSON.stringify(await status(q));
        } catch (e) {
          text = JSON.stringify({ error: (e as Error).message });
        }
        send(sock, text);
      },
      drain(sock) {
        const p = sock.data.pending;
        if (!p) return;
        sock.data.pending = undefined;
        const n = sock.write(p);
        if (n < p.length) sock.data.pending = p.subarray(Math.max(0, n));
        else sock.end();
      },
      close(sock) {
        clearTimeout(sock.data?.timer);
      },
      error(sock) {
        sock.end();
      },
    },
  });
  server.unref();
  return { close: () => server.stop(true) };
}

export type StatusReply = { ok: true; text: string } | { ok: false; error: string; code?: string };

/** Ask the role's sidecar in this network namespace; never rejects. */
export async function askStatus(role: SidecarRole, q: HealthQuestion, timeoutMs: number, name?: string): Promise<StatusReply> {
  const { createConnection } = await import("node:net");
  return new Promise((resolve) => {
    let buf = "";
    let done = false;
    const finish = (r: StatusReply) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, error: `no answer from @${statusSocketName(role)} within ${timeoutMs} ms`, code: "ETIMEDOUT" }), timeoutMs);
    const sock = createConnection(abstractPath(role, name), () => sock.write(`${q}\n`));
    sock.on("data", (d) => {
      buf += d.toString("utf8");
      if (buf.length > MAX_STATUS) finish({ ok: false, error: `the status from @${statusSocketName(role)} is longer than ${MAX_STATUS} bytes` });
    });
    sock.on("end", () => finish({ ok: true, text: buf }));
    sock.on("error", (e: NodeJS.ErrnoException) =>
      finish({ ok: false, error: e.code === "ECONNREFUSED" ? `no ${role} serves @${statusSocketName(role)} in this network namespace` : `@${statusSocketName(role)}: ${e.message}`, code: e.code }),
    );
  });
}
