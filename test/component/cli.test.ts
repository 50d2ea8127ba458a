// The compiled binary as users run it: help, version, exit codes, drop-in names.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { binPath } from "../helpers/bin.ts";

function run(argv: string[], env: Record<string, string> = {}) {
  const r = Bun.spawnSync(argv, { env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

describe("compiled binary", () => {
  const bin = binPath();
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "pgw-cli-"));
    for (const n of ["client_init.sh", "client_sidecar.sh", "gateway_init.sh", "gateway_sidecar.sh", "something-else"]) symlinkSync(bin, join(dir, n));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("--help lists every command and exits 0", () => {
    const r = run([bin, "--help"]);
    expect(r.code).toBe(0);
    for (const c of ["client-init", "client-sidecar", "gateway-init", "gateway-sidecar", "config", "check-done", "lab", "version"]) expect(r.out).toContain(c);
  });

  test("version prints package version (and commit when built in git)", async () => {
    const pkg = await Bun.file(join(import.meta.dir, "../../package.json")).json();
    const r = run([bin, "version"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^pod-gateway ${pkg.version.replace(/\./g, "\\.")}(\\+[0-9a-f]{7,})?\\n$`));
    expect(run([bin, "--version"]).out).toBe(r.out);
  });

  test("no command shows usage and exits 2; unknown command exits 2", () => {
    expect(run([bin]).code).toBe(2);
    const r = run([bin, "no-such-command"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("Unknown command no-such-command");
  });

  test("subcommand --help exits 0 without running it", () => {
    const r = run([bin, "client-init", "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("client-init");
  });

  test.each([
    ["client_init.sh", "client-init"],
    ["client_sidecar.sh", "client-sidecar"],
    ["gateway_init.sh", "gateway-init"],
    ["gateway_sidecar.sh", "gateway-sidecar"],
  ])("invoked as %s it runs %s", (link, cmd) => {
    const r = run([join(dir, link), "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(cmd);
    expect(r.out).not.toContain("COMMANDS");
  });

  test("another link name behaves as pod-gateway", () => {
    const r = run([join(dir, "something-else"), "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("COMMANDS");
  });

  test("LOG_FORMAT=json writes errors as JSON lines on stderr", () => {
    const r = run([bin, "no-such-command"], { LOG_FORMAT: "json" });
    expect(r.code).toBe(2);
    const line = JSON.parse(r.err.trim().split("\n").at(-1)!);
    expect(line.level).toBe("error");
    expect(line.msg).toContain("Unknown command");
    expect(r.out).toBe("");
  });
});
