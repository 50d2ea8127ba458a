// One number syntax for numeric flags and settings (issue 12, item 7): the firewall check
// interval flag and the lab's integer flags read numbers exactly like settings.sh does, within
// their documented ranges — never through Number(), which takes "0x10", "1e9" and " ".
import { describe, expect, test } from "bun:test";
import { parseNumberOption } from "../../src/cli/args.ts";
import { ExitStatus, parseIntArg } from "../../src/cli/lab/common.ts";
import { UsageError } from "../../src/core/errors.ts";
import { RANGES } from "../../src/core/settings/schema.ts";

const check = (t: string) => parseNumberOption("--firewall-check-interval", t, RANGES.FIREWALL_CHECK_INTERVAL, { fraction: true, unit: "seconds" });

describe("--firewall-check-interval", () => {
  test("accepts 1..3600 seconds, with a fraction", () => {
    expect([check("1"), check("5"), check("2.5"), check("3600")]).toEqual([1, 5, 2.5, 3600]);
  });

  for (const [text, why] of [
    ["0x10", "is not a decimal number"],
    ["1e9", "is not a decimal number"],
    ["1e3", "is not a decimal number"],
    [" ", "is empty"],
    ["", "is empty"],
    ["Infinity", "is not a decimal number"],
    ["-5", "has a sign"],
    ["+5", "has a sign"],
    ["0", "0 is out of range 1..3600 seconds"],
    ["0.5", "is out of range 1..3600 seconds"],
    ["3601", "is out of range 1..3600 seconds"],
    // above the 2^31-1 ms a timer can hold: setTimeout would fire after 1 ms, a busy loop
    ["2147484", "is out of range 1..3600 seconds"],
    ["99999999999999999999999", "is out of range 1..3600 seconds"],
    ["010", "has a leading zero"],
    [".5", "is not a decimal number"],
  ] as const)
    test(`refuses ${JSON.stringify(text)}: ${why}`, () => {
      expect(() => check(text)).toThrow(UsageError);
      expect(() => check(text)).toThrow(why);
    });

  test("the message names the flag or the variable it came from", () => {
    expect(() => parseNumberOption("$POD_GATEWAY_FIREWALL_CHECK_INTERVAL", "0x10", RANGES.FIREWALL_CHECK_INTERVAL)).toThrow(
      '$POD_GATEWAY_FIREWALL_CHECK_INTERVAL: "0x10" is not a whole number (expected 1..3600)',
    );
  });
});

describe("lab integer flags", () => {
  test("same syntax", () => {
    expect(parseIntArg("clients", "3", 0, 20)).toBe(3);
    expect(parseIntArg("clients", undefined, 0, 20)).toBeUndefined();
    for (const bad of ["0x3", "3e0", "03", " 3 x", "21", "-1"]) expect(() => parseIntArg("clients", bad, 0, 20)).toThrow(ExitStatus);
  });
});

describe("--isolation-check-interval (client-sidecar)", () => {
  const iso = (t: string) => parseNumberOption("--isolation-check-interval", t, RANGES.ISOLATION_CHECK_INTERVAL, { fraction: true, unit: "seconds" });
  test("accepts 0.1..3600 seconds, with a fraction; refuses the rest naming the flag", () => {
    expect([iso("0.1"), iso("1"), iso("30"), iso("3600")]).toEqual([0.1, 1, 30, 3600]);
    for (const bad of ["0", "0.05", "3601", "1e3", "-1", ""]) expect(() => iso(bad)).toThrow("--isolation-check-interval");
  });
});

describe("--new-pod-hold (gateway-sidecar)", () => {
  const hold = (t: string) => parseNumberOption("--new-pod-hold", t, RANGES.NEW_POD_HOLD, { fraction: true, unit: "seconds" });
  test("accepts 0 (no guard) to 30 seconds, with a fraction; refuses the rest naming the flag", () => {
    expect([hold("0"), hold("1.5"), hold("30")]).toEqual([0, 1.5, 30]);
    for (const bad of ["30.5", "-1", "1e1", ""]) expect(() => hold(bad)).toThrow("--new-pod-hold");
  });
});
