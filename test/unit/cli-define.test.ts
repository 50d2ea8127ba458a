// main.ts starts a role given no arguments without citty: the arguments it hands the role must be
// exactly what citty's parseArgs makes of no arguments, for every role command.
import { describe, expect, test } from "bun:test";
import { parseArgs, type ArgsDef } from "citty";
import { commands } from "../../src/cli/commands.ts";
import { defaultArgs } from "../../src/cli/define.ts";

describe("defaultArgs", () => {
  for (const name of ["client-init", "client-sidecar", "gateway-init", "gateway-sidecar"]) {
    test(`${name}: the same as citty's parseArgs([])`, async () => {
      const cmd = await commands[name]!();
      const defs = (typeof cmd.args === "function" ? await cmd.args() : await cmd.args) as ArgsDef;
      expect(defaultArgs(defs)).toEqual(parseArgs([], defs) as Record<string, unknown>);
    });
  }

  test("defaults under their kebab name, camelCase and aliases; a positional's under its name; flags without a default left out", () => {
    const defs: ArgsDef = {
      "run-dir": { type: "string", default: "/run/x", alias: ["r"] },
      "allow-host-network": { type: "boolean", default: false },
      verbose: { type: "boolean", alias: "v" },
      target: { type: "positional", required: false, default: "all" },
    };
    expect(defaultArgs(defs)).toEqual({ _: [], "run-dir": "/run/x", runDir: "/run/x", r: "/run/x", "allow-host-network": false, allowHostNetwork: false, target: "all" });
    expect(defaultArgs(defs)).toEqual(parseArgs([], defs) as Record<string, unknown>);
  });
});
