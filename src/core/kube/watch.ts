// Decoding the watch stream: the API server sends one JSON event per line
// ({"type":"MODIFIED","object":{...}}\n), in chunks that split lines anywhere.
import type { Pod, Status, WatchEvent } from "./types.ts";

/** Split a chunk of stream text into complete lines; `carry` is the unfinished tail. */
export function splitLines(carry: string, chunk: string): { lines: string[]; carry: string } {
  const text = carry + chunk;
  const parts = text.split("\n");
  const rest = parts.pop() ?? "";
  return { lines: parts.map((l) => l.replace(/\r$/, "")).filter((l) => l.trim() !== ""), carry: rest };
}

export type ParsedEvent = { ok: true; event: WatchEvent } | { ok: false; error: string };

const POD_EVENTS = new Set(["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Decode one line of a watch stream; malformed input is an error value, never a throw. */
export function parseWatchEvent(line: string): ParsedEvent {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    return { ok: false, error: `malformed watch event (${(e as Error).message}): ${line.slice(0, 120)}` };
  }
  if (!isObject(v) || typeof v.type !== "string" || !isObject(v.object)) {
    return { ok: false, error: `watch event without type/object: ${line.slice(0, 120)}` };
  }
  if (v.type === "ERROR") return { ok: true, event: { type: "ERROR", object: v.object as unknown as Status } };
  if (POD_EVENTS.has(v.type)) {
    return { ok: true, event: { type: v.type as "ADDED", object: v.object as Pod } };
  }
  return { ok: false, error: `unknown watch event type ${JSON.stringify(v.type)}` };
}

/** Decode a GET response body that must be a Pod. */
export function parsePod(body: string): { ok: true; pod: Pod } | { ok: false; error: string } {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch (e) {
    return { ok: false, error: `malformed JSON (${(e as Error).message})` };
  }
  if (!isObject(v) || (v.kind !== undefined && v.kind !== "Pod") || !isObject(v.metadata)) {
    return { ok: false, error: `not a Pod object: ${body.slice(0, 120)}` };
  }
  return { ok: true, pod: v as Pod };
}

/** Decode an error body as a meta/v1 Status when it is one (the API's errors are). */
export function parseStatus(body: string): Status | undefined {
  try {
    const v: unknown = JSON.parse(body);
    if (isObject(v) && v.kind === "Status") return v as unknown as Status;
  } catch {
    // a proxy's HTML error page, for instance: no Status to report
  }
  return undefined;
}
