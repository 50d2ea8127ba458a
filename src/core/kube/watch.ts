// Decoding what the API server sends: a Pod (GET), the watch stream (one JSON event per line,
// {"type":"MODIFIED","object":{...}}\n, in chunks that split lines anywhere) and meta/v1 Status
// error bodies. The server is trusted to be the API server (TLS verified), not to be well-formed:
// every field a decision reads is checked for its type here, so a malformed body is an error
// value ("bad-response"), never a TypeError later and never a wrong "done". The decoded objects
// are fresh, holding only the typed fields, so nothing else the body carried (a `__proto__` key,
// megabytes of annotations) lives on.
import type { Container, ContainerState, ContainerStatus, ObjectMeta, Pod, Status, WatchEvent } from "./types.ts";

/** Largest Pod body (GET) and largest watch line accepted, in decoded bytes (issue 12 §6). */
export const MAX_POD_BYTES = 1024 * 1024;
export const MAX_WATCH_LINE_BYTES = 1024 * 1024;
/** Largest error body read for its Status; beyond it the Status is just not reported. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;
/** Longest excerpt of a server's text (a message, a bad body) that reaches an error or the log. */
const EXCERPT = 200;

/**
 * A short, single-line, printable excerpt of text from the server: control characters (a newline
 * that would forge a log line, an ANSI escape) become U+FFFD, and at most EXCERPT characters.
 */
export function excerpt(text: string, max = EXCERPT): string {
  const cut = text.length > max ? text.slice(0, max) + "…" : text;
  return cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, "\ufffd");
}

/**
 * Splits a byte stream into lines of at most `maxLineBytes` bytes (without the newline), each
 * decoded as UTF-8 (invalid UTF-8 is an error). Blank lines and a CR before the LF are dropped.
 * Memory stays bounded by the limit whatever the stream sends.
 */
export class LineSplitter {
  private parts: Uint8Array[] = [];
  private size = 0;
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });
  constructor(readonly maxLineBytes: number) {}

  push(chunk: Uint8Array): { ok: true; lines: string[] } | { ok: false; error: string } {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (this.size + piece.length > this.maxLineBytes) {
        return { ok: false, error: `watch event line longer than the limit of ${this.maxLineBytes} bytes` };
      }
      if (piece.length) {
        this.parts.push(piece.slice());
        this.size += piece.length;
      }
      if (nl < 0) return { ok: true, lines };
      const line = this.take();
      if (!line.ok) return line;
      if (line.text.trim() !== "") lines.push(line.text);
      start = nl + 1;
    }
  }

  /** Bytes of an unfinished line held. */
  get pending(): number {
    return this.size;
  }

  private take(): { ok: true; text: string } | { ok: false; error: string } {
    const bytes = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = [];
    this.size = 0;
    let text: string;
    try {
      text = this.decoder.decode(bytes);
    } catch {
      return { ok: false, error: "watch event line is not valid UTF-8" };
    }
    return { ok: true, text: text.endsWith("\r") ? text.slice(0, -1) : text };
  }
}

/** Split a chunk of stream text into complete lines; `carry` is the unfinished tail (tests, tools). */
export function splitLines(carry: string, chunk: string): { lines: string[]; carry: string } {
  const text = carry + chunk;
  const parts = text.split("\n");
  const rest = parts.pop() ?? "";
  return { lines: parts.map((l) => l.replace(/\r$/, "")).filter((l) => l.trim() !== ""), carry: rest };
}

// ---- typed field access -----------------------------------------------------------------------

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Own property only: `__proto__`, `constructor` and friends are just absent keys. */
function field(o: Obj, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

class ShapeError extends Error {}

function fail(path: string, want: string, got: unknown): never {
  const kind = got === null ? "null" : Array.isArray(got) ? "an array" : typeof got === "object" ? "an object" : typeof got;
  throw new ShapeError(`${path} is ${kind}, expected ${want}`);
}

function optString(o: Obj, key: string, path: string): string | undefined {
  const v = field(o, key);
  if (v === undefined) return undefined;
  if (typeof v !== "string") fail(`${path}.${key}`, "a string", v);
  return v;
}

function optInt(o: Obj, key: string, path: string): number | undefined {
  const v = field(o, key);
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v)) fail(`${path}.${key}`, "an integer", v);
  return v;
}

function optBool(o: Obj, key: string, path: string): boolean | undefined {
  const v = field(o, key);
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") fail(`${path}.${key}`, "a boolean", v);
  return v;
}

function optObject(o: Obj, key: string, path: string): Obj | undefined {
  const v = field(o, key);
  if (v === undefined) return undefined;
  if (!isObject(v)) fail(`${path}.${key}`, "an object", v);
  return v;
}

function reqObject(o: Obj, key: string, path: string): Obj {
  const v = field(o, key);
  if (!isObject(v)) fail(`${path}.${key}`, "an object", v);
  return v;
}

function optArray<T>(o: Obj, key: string, path: string, item: (v: Obj, path: string) => T): T[] | undefined {
  const v = field(o, key);
  if (v === undefined || v === null) return undefined; // the API omits empty lists; some clients send null
  if (!Array.isArray(v)) fail(`${path}.${key}`, "an array", v);
  return v.map((x, i) => {
    const p = `${path}.${key}[${i}]`;
    if (!isObject(x)) fail(p, "an object", x);
    return item(x, p);
  });
}

function decodeMeta(o: Obj, path: string): ObjectMeta {
  const m: ObjectMeta = {};
  for (const k of ["name", "namespace", "uid", "resourceVersion", "deletionTimestamp"] as const) {
    const v = optString(o, k, path);
    if (v !== undefined) m[k] = v;
  }
  return m;
}

function decodeContainer(o: Obj, path: string): Container {
  const name = field(o, "name");
  if (typeof name !== "string" || name === "") fail(`${path}.name`, "a non-empty string", name);
  const c: Container = { name };
  const rp = optString(o, "restartPolicy", path);
  if (rp !== undefined) c.restartPolicy = rp;
  return c;
}

function decodeState(o: Obj, path: string): ContainerState {
  const s: ContainerState = {};
  const w = optObject(o, "waiting", path);
  if (w) s.waiting = { reason: optString(w, "reason", `${path}.waiting`), message: optString(w, "message", `${path}.waiting`) };
  const r = optObject(o, "running", path);
  if (r) s.running = { startedAt: optString(r, "startedAt", `${path}.running`) };
  const t = optObject(o, "terminated", path);
  if (t) {
    const p = `${path}.terminated`;
    s.terminated = { exitCode: optInt(t, "exitCode", p), reason: optString(t, "reason", p), startedAt: optString(t, "startedAt", p), finishedAt: optString(t, "finishedAt", p) };
  }
  return s;
}

function decodeContainerStatus(o: Obj, path: string): ContainerStatus {
  const name = field(o, "name");
  if (typeof name !== "string" || name === "") fail(`${path}.name`, "a non-empty string", name);
  const s: ContainerStatus = { name };
  const st = optObject(o, "state", path);
  if (st) s.state = decodeState(st, `${path}.state`);
  const last = optObject(o, "lastState", path);
  if (last) s.lastState = decodeState(last, `${path}.lastState`);
  const ready = optBool(o, "ready", path);
  if (ready !== undefined) s.ready = ready;
  const rc = optInt(o, "restartCount", path);
  if (rc !== undefined) s.restartCount = rc;
  return s;
}

/**
 * A Pod as the API serves it: kind Pod (or absent, as in watch events of old servers),
 * metadata, spec with a containers array, status. Every field the decisions read has its type.
 */
function decodePodObject(v: unknown): Pod {
  if (!isObject(v)) fail("the body", "a Pod object", v);
  const kind = field(v, "kind");
  if (kind !== undefined && kind !== "Pod") throw new ShapeError(`kind is ${JSON.stringify(excerpt(String(kind), 40))}, expected "Pod"`);
  const apiVersion = optString(v, "apiVersion", "pod");
  const metadata = decodeMeta(reqObject(v, "metadata", "pod"), "metadata");
  const specIn = reqObject(v, "spec", "pod");
  const containers = optArray(specIn, "containers", "spec", decodeContainer);
  if (!containers) fail("spec.containers", "an array", field(specIn, "containers"));
  const spec: NonNullable<Pod["spec"]> = { containers };
  const init = optArray(specIn, "initContainers", "spec", decodeContainer);
  if (init) spec.initContainers = init;
  const rp = optString(specIn, "restartPolicy", "spec");
  if (rp !== undefined) spec.restartPolicy = rp;
  const statusIn = reqObject(v, "status", "pod");
  const status: NonNullable<Pod["status"]> = {};
  const phase = optString(statusIn, "phase", "status");
  if (phase !== undefined) status.phase = phase;
  const cs = optArray(statusIn, "containerStatuses", "status", decodeContainerStatus);
  if (cs) status.containerStatuses = cs;
  const ics = optArray(statusIn, "initContainerStatuses", "status", decodeContainerStatus);
  if (ics) status.initContainerStatuses = ics;
  const pod: Pod = { metadata, spec, status };
  if (kind !== undefined) pod.kind = "Pod";
  if (apiVersion !== undefined) pod.apiVersion = apiVersion;
  return pod;
}

/** A bookmark's object: only metadata.resourceVersion means anything. */
function decodeBookmarkObject(v: Obj): Pod {
  const meta = optObject(v, "metadata", "object");
  return { kind: "Pod", metadata: meta ? decodeMeta(meta, "object.metadata") : {} };
}

function decodeStatusObject(v: Obj): Status {
  const s: Status = { kind: "Status" };
  const apiVersion = optString(v, "apiVersion", "status");
  if (apiVersion !== undefined) s.apiVersion = apiVersion;
  for (const k of ["status", "message", "reason"] as const) {
    const x = optString(v, k, "status");
    if (x !== undefined) s[k] = excerpt(x);
  }
  const code = optInt(v, "code", "status");
  if (code !== undefined) s.code = code;
  return s;
}

/** JSON.parse that reports instead of throwing (deep nesting overflows the stack: a RangeError). */
function parseJson(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    const why = e instanceof RangeError ? "nested too deeply" : excerpt((e as Error).message, 80);
    return { ok: false, error: `malformed JSON (${why})` };
  }
}

export type ParsedEvent = { ok: true; event: WatchEvent } | { ok: false; error: string };

/** Decode one line of a watch stream; malformed input is an error value, never a throw. */
export function parseWatchEvent(line: string): ParsedEvent {
  const j = parseJson(line);
  if (!j.ok) return { ok: false, error: `${j.error} in watch event: ${excerpt(line, 120)}` };
  const v = j.value;
  if (!isObject(v)) return { ok: false, error: `watch event is not an object: ${excerpt(line, 120)}` };
  const type = field(v, "type");
  const object = field(v, "object");
  if (typeof type !== "string" || !isObject(object)) return { ok: false, error: `watch event without type/object: ${excerpt(line, 120)}` };
  try {
    switch (type) {
      case "ERROR": {
        const kind = field(object, "kind");
        if (kind !== "Status") return { ok: false, error: `watch ERROR event whose object is not a Status: ${excerpt(line, 120)}` };
        return { ok: true, event: { type: "ERROR", object: decodeStatusObject(object) } };
      }
      case "BOOKMARK":
        return { ok: true, event: { type, object: decodeBookmarkObject(object) } };
      case "ADDED":
      case "MODIFIED":
      case "DELETED":
        return { ok: true, event: { type, object: decodePodObject(object) } };
      default:
        return { ok: false, error: `unknown watch event type ${JSON.stringify(excerpt(type, 40))}` };
    }
  } catch (e) {
    if (e instanceof ShapeError) return { ok: false, error: `${type} event: not a Pod: ${e.message}` };
    throw e;
  }
}

/** Decode a GET response body that must be a Pod. */
export function parsePod(body: string): { ok: true; pod: Pod } | { ok: false; error: string } {
  const j = parseJson(body);
  if (!j.ok) return j;
  try {
    return { ok: true, pod: decodePodObject(j.value) };
  } catch (e) {
    if (e instanceof ShapeError) return { ok: false, error: `not a Pod: ${e.message}` };
    throw e;
  }
}

/** Decode an error body as a meta/v1 Status when it is one (the API's errors are). */
export function parseStatus(body: string): Status | undefined {
  const j = parseJson(body);
  if (!j.ok || !isObject(j.value) || field(j.value, "kind") !== "Status") return undefined; // e.g. a proxy's HTML error page
  try {
    return decodeStatusObject(j.value);
  } catch (e) {
    if (e instanceof ShapeError) return undefined;
    throw e;
  }
}
