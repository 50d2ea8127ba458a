// The compiled binary refuses what it does not understand (issue 12 §10): an unknown flag or a
// flag missing its value exits 2 with the command's usage on stderr, and changes nothing.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { binPath, REPO } from "../helpers/bin.ts";

function run(args: string[]) {
  const r = Bun.spawnSync([binPath(), ...args], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "", POD_GATEWAY_CONFIG_DIR: join(REPO, "config") } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

describe("strict command line", () => {
  test("--config-dri x: exit 2, usage and the near miss on stderr, nothing on stdout (was: ignored, exit 0)", () => {
    const r = run(["config", "--config-dri", "x"]);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err).toContain("unknown option --config-dri (did you mean --config-dir?)");
    expect(r.err).toContain("USAGE config [OPTIONS]");
    expect(r.err).not.toContain("\x1b[");
    expect(r.err).toContain("--config-dir");
  });

  test("a flag missing its value: exit 2 (was: the next flag became the value, or the flag was dropped)", () => {
    for (const args of [["config", "--config-dir"], ["config", "--config-dir", "--json"], ["check-done", "--serviceaccount-dir"]]) {
      const r = run(args);
      expect([args, r.code]).toEqual([args, 2]);
      expect(r.err).toMatch(/--(config|serviceaccount)-dir needs a value/);
      expect(r.out).toBe("");
    }
  });

  test("the drop-in names take no flags they do not know either", () => {
    const dir = mkdtempSync(join(tmpdir(), "pgw-strict-"));
    try {
      symlinkSync(binPath(), join(dir, "client_init.sh"));
      const r = Bun.spawnSync([join(dir, "client_init.sh"), "--bogus"], { stdout: "pipe", stderr: "pipe" });
      expect(r.exitCode).toBe(2);
      expect(r.stderr.toString()).toContain("unknown option --bogus");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("what is defined still works", () => {
    const r = run(["config", "--json", `--config-dir=${join(REPO, "config")}`]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).settings.VXLAN_ID).toBeDefined();
  });
});
