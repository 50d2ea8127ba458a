// A fake Kubernetes API server for tests: Bun.serve with TLS (a CA and a serving certificate
// made with openssl at test time, IP SANs 127.0.0.1 and ::1), pods shaped like the real
// API's, GET and streamed WATCH of one pod with resourceVersions, RBAC denials, and scripted
// faults (401/403/404/500, hang, bad JSON, closed streams, 410 Gone). It checks the bearer
// token and records every request.
//
// Also runs on its own (for lab tests, inside a network namespace):
//   bun test/helpers/fake-kube.ts --certs DIR --host IP [--port N] --token T --pod FILE...
// prints {"port":N} on stdout, then reads JSON commands on stdin, one per line:
//   {"op":"setPod","pod":{...}}  {"op":"terminate","namespace":..,"name":..,"container":..,"exitCode":0}
//   {"op":"closeWatches"}  {"op":"rbac","get":true,"watch":false}
// and exits when stdin closes.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "bun";
import type { ContainerState, Pod, Status } from "../../src/core/kube/types.ts";
import type { Clock } from "../../src/sys/clock.ts";
import { REPO } from "./bin.ts";

// ---------------------------------------------------------------- certificates

export interface Certs {
  dir: string;
  /** The CA that signed the serving certificate: what ca.crt holds in a pod. */
  caPem: string;
  /** Another CA, for the "wrong CA is rejected" test. */
  wrongCaPem: string;
  certPem: string;
  keyPem: string;
}

function openssl(args: string[], cwd: string): void {
  let r;
  try {
    r = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  } catch (e) {
    throw new Error(`the fake Kubernetes API needs openssl to make its certificates (apt-get install openssl): ${(e as Error).message}`);
  }
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr.toString()}`);
}

/** A CA, a serving certificate for 127.0.0.1 / ::1 / kubernetes.default.svc, and an unrelated CA. */
export function makeCerts(dir = mkdtempSync(join(tmpdir(), "pgw-kube-certs-"))): Certs {
  mkdirSync(dir, { recursive: true });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]; // EC: fast to generate
  for (const ca of ["ca", "wrong-ca"]) {
    openssl(["req", "-x509", ...ec, "-keyout", `${ca}.key`, "-out", `${ca}.crt`, "-days", "2", "-subj", `/CN=fake-kube-${ca}`], dir);
  }
  openssl(["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=kube-apiserver"], dir);
  writeFileSync(
    join(dir, "server.ext"),
    "subjectAltName=IP:127.0.0.1,IP:::1,DNS:kubernetes.default.svc\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext"], dir);
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  return { dir, caPem: read("ca.crt"), wrongCaPem: read("wrong-ca.crt"), certPem: read("server.crt"), keyPem: read("server.key") };
}

/** A service-account directory as the kubelet mounts it: token, ca.crt, namespace. */
export function writeServiceAccount(dir: string, sa: { token?: string; ca?: string; namespace?: string }): string {
  mkdirSync(dir, { recursive: true });
  if (sa.token !== undefined) writeFileSync(join(dir, "token"), sa.token);
  if (sa.ca !== undefined) writeFileSync(join(dir, "ca.crt"), sa.ca);
  if (sa.namespace !== undefined) writeFileSync(join(dir, "namespace"), sa.namespace);
  return dir;
}

// ---------------------------------------------------------------- pods

export type FixtureName = "job-one-app" | "job-two-apps" | "job-native-sidecar";

export function loadFixture(name: FixtureName): Pod {
  return JSON.parse(readFileSync(join(REPO, "test", "fixtures", "kube", `${name}.json`), "utf8")) as Pod;
}

export function terminated(exitCode: number, reason = exitCode === 0 ? "Completed" : "Error"): ContainerState {
  return { terminated: { exitCode, reason, startedAt: "2026-11-26T03:00:05Z", finishedAt: "2026-11-26T03:07:41Z" } };
}

/** Set one container's state (app or init), adding its status entry when it has none yet. */
export function setContainerState(pod: Pod, container: string, state: ContainerState | undefined): Pod {
  pod.status ??= {};
  const init = (pod.spec?.initContainers ?? []).some((c) => c.name === container) && !(pod.spec?.containers ?? []).some((c) => c.name === container);
  const list = init ? (pod.status.initContainerStatuses ??= []) : (pod.status.containerStatuses ??= []);
  let s = list.find((x) => x.name === container);
  if (!s) list.push((s = { name: container, ready: false, restartCount: 0 }));
  if (state) s.state = state;
  else delete s.state;
  return pod;
}

// ---------------------------------------------------------------- the server

export type Verb = "get" | "watch" | "other";

export interface RecordedRequest {
  verb: Verb;
  path: string;
  params: Record<string, string>;
  /** Bearer token sent, "" when none. */
  token: string;
}

/** A scripted answer that replaces the normal one for the next matching request(s). */
export type Fault =
  | { status: number; reason?: string; message?: string }
  /** Never answer (until the server stops). */
  | "hang"
  /** 200 with a body that is not JSON (GET) or a stream whose first line is not JSON (watch). */
  | "bad-json"
  /** Watch only: send this ERROR event (410 Gone etc.) and close. */
  | { watchError: number }
  /** Watch only: accept, then close at once without an event. */
  | "close"
  /** Hostile answers (issue 12 §6): exactly this status, headers and body (gzip-compressed when asked). */
  | { raw: RawAnswer }
  /** 200 with a body that never ends: GET a Pod whose name never closes; watch one line that never ends, or blank lines forever. */
  | { endless: "line" | "blank-lines"; gzip?: boolean };

export interface RawAnswer {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Compress the body with gzip and say so (Content-Encoding: gzip). */
  gzip?: boolean;
}

interface Watcher {
  key: string;
  ctl: ReadableStreamDefaultController<Uint8Array>;
}

interface HistoryEntry {
  rv: number;
  key: string;
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: Pod;
}

const enc = new TextEncoder();

function status(code: number, reason: string, message: string, details?: Record<string, unknown>): Status & Record<string, unknown> {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, ...(details ? { details } : {}), code };
}

const REASONS: Record<number, string> = { 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed", 410: "Expired", 500: "InternalError", 503: "ServiceUnavailable" };

export interface FakeKubeOptions {
  certs: Certs;
  /** 127.0.0.1 (default) or ::1 (the URL then needs brackets), or a lab address. */
  hostname?: string;
  port?: number;
  /** The bearer token accepted; change `fake.token` to simulate rotation. */
  token: string;
}

export class FakeKube {
  token: string;
  /** What the pod's service account may do; a denial answers 403 like the RBAC authorizer. */
  rbac = { get: true, watch: true };
  readonly requests: RecordedRequest[] = [];
  private readonly server: Server<undefined>;
  private readonly pods = new Map<string, Pod>();
  private readonly history: HistoryEntry[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly faults: { verb: Verb | "any"; fault: Fault }[] = [];
  private readonly hanging = new Set<() => void>();
  private rv = 1000;
  /** Bytes the endless answers have put on the wire (after compression), and how many are still open. */
  endlessSent = 0;
  endlessOpen = 0;
  /** Watches from a resourceVersion below this get 410 Gone (etcd compaction). */
  private compactedBelow = 0;
  private waiters: { pred: () => boolean; resolve: () => void }[] = [];

  constructor(opts: FakeKubeOptions) {
    this.token = opts.token;
    this.server = Bun.serve({
      hostname: opts.hostname ?? "127.0.0.1",
      port: opts.port ?? 0,
      tls: { cert: opts.certs.certPem, key: opts.certs.keyPem },
      // Watch streams stay open for as long as a test needs them.
      idleTimeout: 0,
      fetch: (req) => this.handle(req),
    });
  }

  get port(): number {
    return this.server.port!;
  }
  get hostname(): string {
    return this.server.hostname!;
  }
  /** The environment a pod gets for this API server. */
  serviceEnv(): { KUBERNETES_SERVICE_HOST: string; KUBERNETES_SERVICE_PORT: string } {
    return { KUBERNETES_SERVICE_HOST: this.hostname, KUBERNETES_SERVICE_PORT: String(this.port) };
  }
  get resourceVersion(): string {
    return String(this.rv);
  }
  get openWatches(): number {
    return this.watchers.size;
  }

  /** Store (or replace) a pod: a new resourceVersion, an ADDED/MODIFIED event to open watches. */
  setPod(pod: Pod): Pod {
    const p = structuredClone(pod);
    const key = `${p.metadata?.namespace}/${p.metadata?.name}`;
    const type = this.pods.has(key) ? "MODIFIED" : "ADDED";
    p.metadata = { ...p.metadata, resourceVersion: String(++this.rv) };
    this.pods.set(key, p);
    this.history.push({ rv: this.rv, key, type, object: p });
    this.broadcast(key, { type, object: p });
    return p;
  }

  /** Change a stored pod with `fn` and publish it. */
  updatePod(namespace: string, name: string, fn: (pod: Pod) => void): Pod {
    const cur = this.pods.get(`${namespace}/${name}`);
    if (!cur) throw new Error(`fake kube: no pod ${namespace}/${name}`);
    const next = structuredClone(cur);
    fn(next);
    return this.setPod(next);
  }

  deletePod(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const cur = this.pods.get(key);
    if (!cur) return;
    this.pods.delete(key);
    const obj = { ...cur, metadata: { ...cur.metadata, resourceVersion: String(++this.rv) } };
    this.history.push({ rv: this.rv, key, type: "DELETED", object: obj });
    this.broadcast(key, { type: "DELETED", object: obj });
  }

  /** Forget history: a watch resumed from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.compactedBelow = this.rv;
  }

  /** Answer the next `times` requests of this verb with `fault` instead. */
  fail(verb: Verb | "any", fault: Fault, times = 1): void {
    for (let i = 0; i < times; i++) this.faults.push({ verb, fault });
  }

  /** End every open watch stream cleanly (as the server does at timeoutSeconds). */
  closeWatches(): void {
    for (const w of this.watchers) {
      try {
        w.ctl.close();
      } catch {
        // already closed by the client
      }
    }
    this.watchers.clear();
  }

  /** Send a raw line (bad JSON, a bookmark, an ERROR event) to every open watch. */
  sendRaw(line: string): void {
    for (const w of this.watchers) w.ctl.enqueue(enc.encode(line + "\n"));
  }

  sendBookmark(): void {
    this.sendRaw(JSON.stringify({ type: "BOOKMARK", object: { kind: "Pod", apiVersion: "v1", metadata: { resourceVersion: String(++this.rv) } } }));
  }

  /** Resolve once `pred` holds (checked after every request and watch change). */
  until(pred: () => boolean, what = "condition", timeoutMs = 10_000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`fake kube: timed out waiting for ${what}; requests: ${JSON.stringify(this.requests.map((r) => [r.verb, r.params.resourceVersion ?? ""]))}`)), timeoutMs);
      this.waiters.push({ pred, resolve: () => (clearTimeout(t), resolve()) });
    });
  }

  requestsOf(verb: Verb): RecordedRequest[] {
    return this.requests.filter((r) => r.verb === verb);
  }

  async stop(): Promise<void> {
    for (const h of this.hanging) h();
    this.hanging.clear();
    this.closeWatches();
    await this.server.stop(true);
  }

  private poke(): void {
    const ready = this.waiters.filter((w) => w.pred());
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }

  private broadcast(key: string, ev: { type: string; object: unknown }): void {
    const line = enc.encode(JSON.stringify(ev) + "\n");
    for (const w of this.watchers) if (w.key === key) w.ctl.enqueue(line);
    this.poke();
  }

  private rawAnswer(raw: RawAnswer): Response {
    const headers: Record<string, string> = { "content-type": "application/json", ...raw.headers };
    let body: string | Uint8Array | null = raw.body ?? null;
    if (raw.gzip && body !== null) {
      body = Bun.gzipSync(enc.encode(body));
      headers["content-encoding"] = "gzip";
    }
    return new Response(body, { status: raw.status ?? 200, headers });
  }

  /** A body produced on demand (pull), so the server sends only as fast as the client reads. */
  private endlessAnswer(verb: Verb, kind: "line" | "blank-lines", gzip: boolean): Response {
    const filler = enc.encode(kind === "blank-lines" ? "\n".repeat(16 * 1024) : "a".repeat(64 * 1024));
    const head = enc.encode(verb === "get" ? '{"kind":"Pod","metadata":{"name":"' : '\n{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"');
    let first = true;
    this.endlessOpen++;
    let open = true;
    const done = () => {
      if (open) this.endlessOpen--;
      open = false;
      this.poke();
    };
    let body: ReadableStream<Uint8Array> = new ReadableStream<Uint8Array>({
      pull: (ctl) => {
        const chunk = first && kind === "line" ? head : filler;
        first = false;
        ctl.enqueue(chunk);
      },
      cancel: done,
    });
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (gzip) {
      body = body.pipeThrough(new CompressionStream("gzip") as unknown as ReadableWritablePair<Uint8Array, Uint8Array>);
      headers["content-encoding"] = "gzip";
    }
    // Also count the stream as closed when the client goes away without cancelling our source.
    return new Response(
      body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform: (chunk, ctl) => {
            this.endlessSent += chunk.length;
            ctl.enqueue(chunk);
          },
          flush: done,
        }),
      ),
      { headers },
    );
  }

  private takeFault(verb: Verb): Fault | undefined {
    const i = this.faults.findIndex((f) => f.verb === verb || f.verb === "any");
    if (i < 0) return undefined;
    return this.faults.splice(i, 1)[0]!.fault;
  }

  private handle(req: Request): Response | Promise<Response> {
    const url = new URL(req.url);
    const params = Object.fromEntries(url.searchParams);
    const single = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(url.pathname);
    const list = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(url.pathname);
    const isWatch = params.watch === "1" || params.watch === "true";
    const verb: Verb = req.method === "GET" && single ? "get" : req.method === "GET" && list && isWatch ? "watch" : "other";
    const auth = req.headers.get("authorization") ?? "";
    const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    this.requests.push({ verb, path: url.pathname, params, token });
    try {
      return this.answer(verb, token, single ?? list, params);
    } finally {
      queueMicrotask(() => this.poke());
    }
  }

  private answer(verb: Verb, token: string, m: RegExpExecArray | null, params: Record<string, string>): Response | Promise<Response> {
    if (token !== this.token) return Response.json(status(401, "Unauthorized", "Unauthorized"), { status: 401 });
    if (verb === "other" || !m) return Response.json(status(404, "NotFound", "the server could not find the requested resource"), { status: 404 });
    const namespace = decodeURIComponent(m[1]!);
    const fault = this.takeFault(verb);
    if (typeof fault === "object" && "raw" in fault) return this.rawAnswer(fault.raw);
    if (typeof fault === "object" && "endless" in fault) return this.endlessAnswer(verb, fault.endless, fault.gzip ?? false);
    if (fault === "hang") return new Promise((resolve) => this.hanging.add(() => resolve(new Response("server stopped", { status: 503 }))));
    if (typeof fault === "object" && "status" in fault) {
      const reason = fault.reason ?? REASONS[fault.status] ?? "Unknown";
      return Response.json(status(fault.status, reason, fault.message ?? `fake fault ${fault.status}`), { status: fault.status });
    }
    const sa = `system:serviceaccount:${namespace}:default`;
    if (verb === "get") {
      const name = decodeURIComponent(m[2]!);
      if (!this.rbac.get) {
        return Response.json(
          status(403, "Forbidden", `pods "${name}" is forbidden: User "${sa}" cannot get resource "pods" in API group "" in the namespace "${namespace}"`, { name, kind: "pods" }),
          { status: 403 },
        );
      }
      if (fault === "bad-json") return new Response('{"kind":"Pod","apiVersion":"v1","metadata":{"name":', { headers: { "content-type": "application/json" } });
      const pod = this.pods.get(`${namespace}/${name}`);
      if (!pod) return Response.json(status(404, "NotFound", `pods "${name}" not found`, { name, kind: "pods" }), { status: 404 });
      return Response.json(pod);
    }
    // watch
    if (!this.rbac.watch) {
      return Response.json(status(403, "Forbidden", `pods is forbidden: User "${sa}" cannot watch resource "pods" in API group "" in the namespace "${namespace}"`, { kind: "pods" }), { status: 403 });
    }
    const sel = /^metadata\.name=(.+)$/.exec(params.fieldSelector ?? "");
    if (!sel) return Response.json(status(400, "BadRequest", "this fake serves watches of one pod only (fieldSelector=metadata.name=...)"), { status: 400 });
    const key = `${namespace}/${sel[1]}`;
    // Without a resourceVersion (or with "0") the API starts at the current state: a synthetic
    // ADDED event for the object, then changes. With one, it replays what came after it.
    const rvParam = params.resourceVersion ?? "";
    const fromNow = rvParam === "" || rvParam === "0";
    const from = fromNow ? this.rv : Number(rvParam);
    const gone = typeof fault === "object" && "watchError" in fault ? fault.watchError : !fromNow && from < this.compactedBelow ? 410 : 0;
    const current = this.pods.get(key);
    const backlog: { type: string; object: Pod }[] = fromNow
      ? current ? [{ type: "ADDED", object: current }] : []
      : this.history.filter((h) => h.key === key && h.rv > from);
    let watcher: Watcher | undefined;
    const body = new ReadableStream<Uint8Array>({
      start: (ctl) => {
        if (gone) {
          const msg = gone === 410 ? `too old resource version: ${from} (${this.compactedBelow})` : `fake watch error ${gone}`;
          ctl.enqueue(enc.encode(JSON.stringify({ type: "ERROR", object: status(gone, REASONS[gone] ?? "Unknown", msg) }) + "\n"));
          ctl.close();
          return;
        }
        // Bun.serve sends the response headers with the first non-empty chunk; the real API
        // server flushes them at once. A blank line (ignored by JSON stream readers) does that.
        ctl.enqueue(enc.encode("\n"));
        if (fault === "bad-json") ctl.enqueue(enc.encode('{"type":"MODIFIED","object":{"kind":"Pod"\n'));
        if (fault === "close") {
          ctl.close();
          return;
        }
        for (const h of backlog) ctl.enqueue(enc.encode(JSON.stringify({ type: h.type, object: h.object }) + "\n"));
        watcher = { key, ctl };
        this.watchers.add(watcher);
      },
      cancel: () => {
        if (watcher) this.watchers.delete(watcher);
        this.poke();
      },
    });
    return new Response(body, { headers: { "content-type": "application/json", "transfer-encoding": "chunked" } });
  }
}

// ---------------------------------------------------------------- a clock for tests

/** A clock whose sleeps return at once (next macrotask) and are recorded, so backoff is asserted, not waited for. */
export function recordingClock(): Clock & { sleeps: number[] } {
  const sleeps: number[] = [];
  let now = 0;
  return {
    sleeps,
    now: () => now,
    sleep: (ms) => {
      sleeps.push(ms);
      now += ms;
      return new Promise((r) => setTimeout(r, 1));
    },
  };
}

// ---------------------------------------------------------------- standalone

function argValues(argv: string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) if (argv[i] === flag && argv[i + 1] !== undefined) out.push(argv[++i]!);
  return out;
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const certsDir = argValues(argv, "--certs")[0];
  const read = (f: string) => readFileSync(join(certsDir!, f), "utf8");
  const certs: Certs = certsDir
    ? { dir: certsDir, caPem: read("ca.crt"), wrongCaPem: read("wrong-ca.crt"), certPem: read("server.crt"), keyPem: read("server.key") }
    : makeCerts();
  const fake = new FakeKube({
    certs,
    hostname: argValues(argv, "--host")[0] ?? "127.0.0.1",
    port: Number(argValues(argv, "--port")[0] ?? "0"),
    token: argValues(argv, "--token")[0] ?? "test-token",
  });
  for (const f of argValues(argv, "--pod")) fake.setPod(JSON.parse(readFileSync(f, "utf8")) as Pod);
  process.stdout.write(JSON.stringify({ port: fake.port, certs: certs.dir }) + "\n");
  let carry = "";
  for await (const chunk of Bun.stdin.stream()) {
    const lines = (carry + new TextDecoder().decode(chunk)).split("\n");
    carry = lines.pop() ?? "";
    for (const line of lines) {
      if (!line.trim()) continue;
      const c = JSON.parse(line) as { op: string; pod?: Pod; namespace?: string; name?: string; container?: string; exitCode?: number; get?: boolean; watch?: boolean };
      if (c.op === "setPod") fake.setPod(c.pod!);
      else if (c.op === "terminate") fake.updatePod(c.namespace!, c.name!, (p) => setContainerState(p, c.container!, terminated(c.exitCode ?? 0)));
      else if (c.op === "closeWatches") fake.closeWatches();
      else if (c.op === "rbac") fake.rbac = { get: c.get ?? true, watch: c.watch ?? true };
      process.stdout.write(JSON.stringify({ ok: c.op }) + "\n");
    }
  }
  await fake.stop();
  process.exit(0);
}
