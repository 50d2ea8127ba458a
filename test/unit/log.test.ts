// The logger's pure parts: LOG_LEVEL parsing and the JSON line format (LOG_FORMAT=json).
import { describe, expect, test } from "bun:test";
import { createLogger, formatLogArgs, parseLogLevel, renderJsonLine, renderTextLine } from "../../src/sys/log.ts";

describe("parseLogLevel", () => {
  test.each([
    ["debug", 4],
    ["DEBUG", 4],
    ["info", 3],
    ["warn", 1],
    ["error", 0],
    ["silent", -999],
    ["trace", 5],
    ["2", 2],
  ])("%s → %d", (v, n) => expect(parseLogLevel(v)).toBe(n));
  test("unset or unknown → undefined (default applies)", () => {
    expect(parseLogLevel(undefined)).toBeUndefined();
    expect(parseLogLevel("")).toBeUndefined();
    expect(parseLogLevel("loud")).toBeUndefined();
  });
});

describe("renderJsonLine", () => {
  test("one JSON object with time, level, tag, msg and extra args", () => {
    const line = renderJsonLine({
      date: new Date("2026-01-02T03:04:05.000Z"),
      type: "warn",
      level: 1,
      tag: "dhcp",
      args: ["lease lost", { address: "172.16.0.23" }],
    } as any);
    expect(JSON.parse(line)).toEqual({
      time: "2026-01-02T03:04:05.000Z",
      level: "warn",
      tag: "dhcp",
      msg: "lease lost",
      args: [{ address: "172.16.0.23" }],
    });
    expect(line).not.toContain("\n");
  });
  test("an Error becomes its message", () => {
    const o = JSON.parse(renderJsonLine({ date: new Date(0), type: "error", level: 0, tag: "", args: [new Error("boom")] } as any));
    expect(o.msg).toBe("boom");
    expect(o.tag).toBeUndefined();
  });
});

describe("text lines (consola/basic's format without consola/basic)", () => {
  // What consola/basic prints for the same calls, taken from it in this test.
  const { createConsola: createBasic } = require("consola/basic") as typeof import("consola/basic");
  const capture = (into: string[]) => ({ write: (s: string) => void into.push(s.replace(/\n$/, "")) }) as unknown as NodeJS.WriteStream;
  const err = new Error("boom", { cause: new Error("inner") });
  const calls: unknown[][] = [["hello"], ["a %s b", "x"], ["100%"], ["100%", "x"], ["x", { a: 1 }], [err], ["failed:", err], [{ k: [1, 2] }], [42], [""]];
  test.each(calls.map((c, i) => [i, c] as const))("call %d prints what consola/basic prints", (_i, args) => {
    const ours: string[] = [];
    const basic: string[] = [];
    const a = createLogger({}, (l) => void ours.push(l)).withTag("dhcp");
    const b = createBasic({ stdout: capture(basic), stderr: capture(basic), formatOptions: { date: true, colors: false, compact: true } }).withTag("dhcp");
    a.warn(...(args as [unknown, ...unknown[]]));
    b.warn(...(args as [unknown, ...unknown[]]));
    expect(ours).toEqual(basic);
  });
  test("no tag, info level; plain strings format without node:util", () => {
    expect(renderTextLine({ type: "info", tag: "", args: ["Gateway ready and reachable"] })).toBe("[info] Gateway ready and reachable");
    expect(formatLogArgs(["a", "b"])).toBe("a b");
  });
  test("LOG_LEVEL filters and LOG_FORMAT=json renders JSON lines to the same sink", () => {
    const lines: string[] = [];
    const l = createLogger({ LOG_LEVEL: "warn", LOG_FORMAT: "json" }, (s) => void lines.push(s));
    l.info("hidden");
    l.withTag("x").warn("shown");
    expect(lines.map((s) => JSON.parse(s))).toEqual([expect.objectContaining({ level: "warn", tag: "x", msg: "shown" })]);
  });
});
