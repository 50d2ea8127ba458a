// Decoding the watch stream and API bodies.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { LineSplitter, parsePod, parseStatus, parseWatchEvent, splitLines } from "../../src/core/kube/watch.ts";

describe("LineSplitter (bytes → lines, bounded)", () => {
  const enc = new TextEncoder();
  test("lines across chunks, multi-byte characters split anywhere, CR and blank lines dropped", () => {
    const text = enc.encode('{"a":"é€"}\r\n\n{"b":1}\n{"c"');
    for (let cut = 0; cut <= text.length; cut++) {
      const s = new LineSplitter(100);
      const a = s.push(text.subarray(0, cut));
      const b = s.push(text.subarray(cut));
      expect(a.ok && b.ok && [...a.lines, ...b.lines]).toEqual(['{"a":"é€"}', '{"b":1}']);
      expect(s.pending).toBe(4);
    }
  });
  test("a line over the limit is an error, however it arrives; memory stays at the limit", () => {
    const s = new LineSplitter(1024);
    for (let i = 0; i < 4; i++) expect(s.push(new Uint8Array(256).fill(0x61)).ok).toBe(true);
    expect(s.push(new Uint8Array([0x61]))).toEqual({ ok: false, error: "watch event line longer than the limit of 1024 bytes" });
    expect(new LineSplitter(4).push(enc.encode("abcd\nabcde"))).toMatchObject({ ok: false });
    expect(new LineSplitter(4).push(enc.encode("abcd\n"))).toEqual({ ok: true, lines: ["abcd"] });
  });
  test("invalid UTF-8 is an error", () => {
    expect(new LineSplitter(100).push(new Uint8Array([0x7b, 0xff, 0x7d, 0x0a]))).toEqual({ ok: false, error: "watch event line is not valid UTF-8" });
  });
});

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
    const pod = { kind: "Pod", metadata: { name: "p", resourceVersion: "7" }, spec: { containers: [{ name: "app" }] }, status: { phase: "Running" } };
    for (const type of ["ADDED", "MODIFIED", "DELETED"]) {
      const r = parseWatchEvent(JSON.stringify({ type, object: pod }));
      expect(r).toEqual({ ok: true, event: { type, object: pod } as never });
    }
    // A bookmark carries only a resourceVersion.
    const b = parseWatchEvent(JSON.stringify({ type: "BOOKMARK", object: { kind: "Pod", metadata: { resourceVersion: "9" } } }));
    expect(b).toEqual({ ok: true, event: { type: "BOOKMARK", object: { kind: "Pod", metadata: { resourceVersion: "9" } } } });
  });

  test("an event whose object is not a Pod is an error (issue 12 §6)", () => {
    for (const object of [{ kind: "Pod", metadata: {} }, { metadata: {}, spec: [], status: {} }, { metadata: {}, spec: { containers: "app" }, status: {} }, { metadata: {}, spec: { containers: [] } }]) {
      const r = parseWatchEvent(JSON.stringify({ type: "MODIFIED", object }));
      expect(r.ok).toBe(false);
    }
    expect(parseWatchEvent(JSON.stringify({ type: "ERROR", object: { kind: "Pod" } })).ok).toBe(false);
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
    expect(parsePod('{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"x"}]},"status":{}}')).toEqual({
      ok: true,
      pod: { kind: "Pod", metadata: { name: "p" }, spec: { containers: [{ name: "a" }] }, status: {} },
    });
  });
  test("a body that is not a Pod is an error naming the field (was: {\"metadata\":{}} answered done)", () => {
    const cases: [string, string][] = [
      ['{"metadata":{}}', "pod.spec is undefined, expected an object"],
      ['{"metadata":{},"spec":{"containers":[]}}', "pod.status is undefined, expected an object"],
      ['{"metadata":{},"spec":"x","status":{}}', "pod.spec is string, expected an object"],
      ['{"metadata":{},"spec":{"containers":{"0":{"name":"a"}}},"status":{}}', "spec.containers is an object, expected an array"],
      ['{"metadata":{},"spec":{},"status":{}}', "spec.containers is undefined, expected an array"],
      ['{"metadata":{},"spec":{"containers":[7]},"status":{}}', "spec.containers[0] is number, expected an object"],
      ['{"metadata":{},"spec":{"containers":[{}]},"status":{}}', "spec.containers[0].name is undefined, expected a non-empty string"],
      ['{"metadata":{},"spec":{"containers":[{"name":"a"}]},"status":{"containerStatuses":[{"name":"a","state":{"terminated":{"exitCode":"0"}}}]}}', "status.containerStatuses[0].state.terminated.exitCode is string, expected an integer"],
      ['{"metadata":{"name":7},"spec":{"containers":[{"name":"a"}]},"status":{}}', "metadata.name is number, expected a string"],
      ['{"metadata":{},"spec":{"containers":[{"name":"a"}],"restartPolicy":["Never"]},"status":{}}', "spec.restartPolicy is an array, expected a string"],
      ['{"metadata":{},"spec":{"containers":[{"name":"a"}]},"status":{"phase":null}}', "status.phase is null, expected a string"],
    ];
    for (const [body, error] of cases) expect([body, parsePod(body)]).toEqual([body, { ok: false, error: `not a Pod: ${error}` }]);
  });
  test("__proto__ and constructor are ordinary absent keys", () => {
    const r = parsePod('{"metadata":{"__proto__":{"name":"x"}},"spec":{"containers":[{"name":"a"}],"__proto__":{"restartPolicy":"Never"}},"status":{"constructor":{"phase":"Succeeded"}}}');
    expect(r).toEqual({ ok: true, pod: { metadata: {}, spec: { containers: [{ name: "a" }] }, status: {} } });
  });
  test("deep nesting is malformed JSON, not a stack overflow", () => {
    expect(parsePod("[".repeat(200_000) + "]".repeat(200_000))).toMatchObject({ ok: false });
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
    expect(parseStatus('{"kind":"Status","code":"403"}')).toBeUndefined();
  });
  test("a server's message reaches the log as one short printable line", () => {
    const s = parseStatus(JSON.stringify({ kind: "Status", code: 500, message: "boom\n2026-12-03 [info] pod done\u001b[2J" + "x".repeat(5000) }));
    expect(s?.message).toStartWith("boom\ufffd2026-12-03 [info] pod done\ufffd[2J");
    expect(s!.message!.length).toBeLessThanOrEqual(201);
  });
});
