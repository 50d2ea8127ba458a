// The sidecar's status socket: an abstract unix socket "@pod-gateway/<role>" (src/core/health.ts
// names it), scoped to the pod's network namespace. Protocol: the caller writes one line, "live" or
// "ready", and reads one JSON object until the sidecar closes the connection. node:net is used
// because it listens on abstract names inside a compiled binary (measured: Bun.listen({unix:
// "\0…"}) reset the connection when the open handler answered at once).
import { createConnection, createServer, type Server } from "node:net";
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

/**
 * Serve `status(question)` on the role's socket. Fails (EADDRINUSE) when another process of this
 * role already serves in this network namespace. `answerTimeoutMs` bounds each answer.
 */
export function serveStatus(role: SidecarRole, status: (q: HealthQuestion) => Promise<object> | object, opts: { answerTimeoutMs?: number; name?: string } = {}): Promise<StatusServer> {
  const timeoutMs = opts.answerTimeoutMs ?? 800;
  const server: Server = createServer((conn) => {
    let buf = "";
    let asked = false;
    conn.setTimeout(timeoutMs, () => conn.destroy());
    conn.on("error", () => conn.destroy());
    conn.on("data", async (d) => {
      if (asked) return; // one question per connection
      buf += d.toString("latin1");
      if (buf.length > MAX_REQUEST) return conn.destroy();
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      const q = buf.slice(0, nl).trim();
      if (q !== "live" && q !== "ready") return conn.end(JSON.stringify({ error: `unknown question ${JSON.stringify(q.slice(0, 20))}` }));
      asked = true;
      try {
        conn.end(JSON.stringify(await status(q)));
      } catch (e) {
        conn.end(JSON.stringify({ error: (e as Error).message }));
      }
    });
  });
  server.unref();
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(abstractPath(role, opts.name), () => {
      server.off("error", reject);
      resolve({ close: () => server.close() });
    });
  });
}

export type StatusReply = { ok: true; text: string } | { ok: false; error: string; code?: string };

/** Ask the role's sidecar in this network namespace; never rejects. */
export function askStatus(role: SidecarRole, q: HealthQuestion, timeoutMs: number, name?: string): Promise<StatusReply> {
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
