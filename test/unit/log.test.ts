// The logger's pure parts: LOG_LEVEL parsing and the JSON line format (LOG_FORMAT=json).
import { describe, expect, test } from "bun:test";
import { parseLogLevel, renderJsonLine } from "../../src/sys/log.ts";

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
