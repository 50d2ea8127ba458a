// Decoding the watch stream and API bodies.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { parsePod, parseStatus, parseWatchEvent, splitLines } from "../../src/core/kube/watch.ts";

describe("splitLines", () => {
  test("keeps the unfinished tail, drops blank lines and CR", () => {
    expect(splitLines("", '{"a":1}\n{"b"')).toEqual({ lines: ['{"a":1}'], carry: '{"b"' });
    expect(splitLines('{"b"', ":2}\r\n\n")).toEqual({ lines: ['{"b":2}'], carry: "" });
    expect(splitLines("", "")).toEqual({ lines: [], carry: "" });
  });

  test("property: any chunking of the stream yields the same lines", () => {
    const line = fc.string({ unit: fc.constantFrom("a", "{", "}", '"', ":", " ", "é", "1"), minLength: 1, maxLength: 20 }).filter((s) => s.trim() !== "");
    fc.assert(
      fc.property(fc.array(line, { maxLength: 8 }), fc.array(fc.nat(200), { maxLength: 10 }), (lines, cuts) => {
        const text = lines.map((l) => l + "\n").join("");
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        let carry = "";
        const got: string[] = [];
        let prev = 0;
        for (const p of [...points, text.length]) {
          const r = splitLines(carry, text.slice(prev, p));
          got.push(...r.lines);
          carry = r.carry;
          prev = p;
        }
        expect(got).toEqual(lines);
        expect(carry).toBe("");
      }),
    );
  });
});

describe("parseWatchEvent", () => {
  test("pod events", () => {
    for (const type of ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]) {
      const r = parseWatchEvent(JSON.stringify({ type, object: { kind: "Pod", metadata: { name: "p", resourceVersion: "7" } } }));
      expect(r).toEqual({ ok: true, event: { type, object: { kind: "Pod", metadata: { name: "p", resourceVersion: "7" } } } as never });
    }
  });

  test("ERROR carries a Status (410 Gone: relist)", () => {
    const line = '{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 100 (200)","reason":"Expired","code":410}}';
    const r = parseWatchEvent(line);
    expect(r.ok && r.event.type === "ERROR" && r.event.object.code).toBe(410);
  });

  test("malformed lines are errors, never throws", () => {
    for (const bad of ['{"type":"MODIFIED","object":{"kind"', "[]", '{"type":"MODIFIED"}', '{"type":7,"object":{}}', "null"]) {
      const r = parseWatchEvent(bad);
      expect(r.ok).toBe(false);
    }
    const r = parseWatchEvent('{"type":"SYNC","object":{}}');
    expect(r).toEqual({ ok: false, error: 'unknown watch event type "SYNC"' });
  });

  test("property: arbitrary text never throws", () => {
    fc.assert(fc.property(fc.string(), (s) => void parseWatchEvent(s)));
  });
});

describe("parsePod / parseStatus", () => {
  test("a pod body", () => {
    expect(parsePod('{"kind":"Pod","metadata":{"name":"p"}}')).toEqual({ ok: true, pod: { kind: "Pod", metadata: { name: "p" } } });
  });
  test("truncated JSON or another kind is an error", () => {
    expect(parsePod('{"kind":"Pod","metadata":{"name":').ok).toBe(false);
    expect(parsePod('{"kind":"Status","metadata":{}}')).toMatchObject({ ok: false });
    expect(parsePod('"Pod"')).toMatchObject({ ok: false });
  });
  test("Status bodies are decoded; anything else is undefined", () => {
    expect(parseStatus('{"kind":"Status","code":403,"reason":"Forbidden"}')).toEqual({ kind: "Status", code: 403, reason: "Forbidden" });
    expect(parseStatus("<html>502 Bad Gateway</html>")).toBeUndefined();
    expect(parseStatus('{"kind":"Pod"}')).toBeUndefined();
  });
});
