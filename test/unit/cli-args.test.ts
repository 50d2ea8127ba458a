// Strict command-line checking (issue 12 §10): unknown flags, flags missing their value and
// arguments too many are usage errors, not silently ignored.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { checkArgs, roleArgs, type ArgSpec } from "../../src/cli/args.ts";
import { fuzz } from "../helpers/fuzz.ts";

const config: Record<string, ArgSpec> = { "config-dir": { type: "string" }, json: { type: "boolean" } };
const install: Record<string, ArgSpec> = { dir: { type: "positional" }, links: { type: "boolean" } };

describe("checkArgs", () => {
  test("what a command defines is accepted, in every spelling citty understands", () => {
    for (const args of [[], ["--json"], ["--config-dir", "/x"], ["--config-dir=/x", "--json"], ["--configDir", "/x"], ["--no-json"], ["--json=false"], ["--config-dir", "-"]]) {
      expect([args, checkArgs(config, args)]).toEqual([args, []]);
    }
    expect(checkArgs(install, ["/opt/bin", "--no-links"])).toEqual([]);
    expect(checkArgs(roleArgs, ["--allow-host-network", "--config-dir", "/config"])).toEqual([]);
  });

  test("an unknown flag is an error, with the near miss suggested (was: ignored, command succeeded)", () => {
    expect(checkArgs(config, ["--config-dri", "x"])).toEqual(["unknown option --config-dri (did you mean --config-dir?)"]);
    expect(checkArgs(config, ["--verbose"])).toEqual(["unknown option --verbose"]);
    expect(checkArgs(config, ["-j"])).toEqual(["unknown option -j"]);
    expect(checkArgs(config, ["--no-config-dir"])).toEqual(["unknown option --no-config-dir"]);
    expect(checkArgs(config, ["--"])).toEqual([]);
    expect(checkArgs(config, ["--="])).toEqual(["unknown option --"]);
  });

  test("a flag without its value is an error; the next flag is never taken as the value", () => {
    expect(checkArgs(config, ["--config-dir"])).toEqual(["--config-dir needs a value"]);
    expect(checkArgs(config, ["--config-dir", "--json"])).toEqual(["--config-dir needs a value"]);
    expect(checkArgs(config, ["--config-dir="])).toEqual(["--config-dir needs a value"]);
    expect(checkArgs(config, ["--json=yes"])).toEqual(['--json takes no value (got "yes")']);
  });

  test("arguments too many are errors; after -- nothing is looked at", () => {
    expect(checkArgs(config, ["extra"])).toEqual(['unexpected argument "extra"']);
    expect(checkArgs(install, ["/a", "/b"])).toEqual(['unexpected argument "/b"']);
    expect(checkArgs({ pod: { type: "positional" } }, ["client-1", "--", "ip", "-x", "--whatever"])).toEqual([]);
  });

  test("property: never throws, and a problem-free list has only known flags", () => {
    const token = fc.oneof(fc.constantFrom("--json", "--config-dir", "--no-json", "--", "-", "-x", "--config-dri", "x", "", "--=", "--json=", "---"), fc.string({ maxLength: 12 }));
    fuzz("checkArgs", fc.array(token, { maxLength: 8 }), (args) => {
      const problems = checkArgs(config, args);
      if (problems.length === 0) {
        const head = args.indexOf("--") < 0 ? args : args.slice(0, args.indexOf("--"));
        for (const a of head) if (a.startsWith("--")) expect(["--json", "--config-dir", "--no-json", "--json=true", "--json=false"].some((k) => a === k || a.startsWith("--config-dir="))).toBe(true);
      }
    });
  });
});
