// `pod-gateway install DIR` from the compiled binary: the copy runs, links resolve, re-running is harmless.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { binPath } from "../helpers/bin.ts";

function run(argv: string[]) {
  const r = Bun.spawnSync(argv, { env: { PATH: process.env.PATH ?? "" }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

describe("pod-gateway install", () => {
  const bin = binPath();
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "pgw-install-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("copies the binary byte for byte, executable, and it runs", () => {
    const r = run([bin, "install", dir]);
    expect(r.code).toBe(0);
    const copy = join(dir, "pod-gateway");
    expect(Bun.hash(readFileSync(copy))).toBe(Bun.hash(readFileSync(bin)));
    expect(statSync(copy).mode & 0o777).toBe(0o755);
    expect(run([copy, "version"]).out).toBe(run([bin, "version"]).out);
  });

  test("links the drop-in names to the copy, and they dispatch", () => {
    for (const n of ["client_init.sh", "client_sidecar.sh", "gateway_init.sh", "gateway_sidecar.sh"]) {
      expect(readlinkSync(join(dir, n))).toBe("pod-gateway");
    }
    const r = run([join(dir, "gateway_init.sh"), "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("gateway-init");
  });

  test("running it again replaces the copy and keeps the links; a stale file is replaced", () => {
    writeFileSync(join(dir, "client_init.sh"), "not a link");
    expect(run([bin, "install", dir]).code).toBe(0);
    expect(readlinkSync(join(dir, "client_init.sh"))).toBe("pod-gateway");
    expect(Bun.hash(readFileSync(join(dir, "pod-gateway")))).toBe(Bun.hash(readFileSync(bin)));
  });

  test("a missing directory is a usage error (exit 2) naming it", () => {
    const r = run([bin, "install", join(dir, "missing")]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(join(dir, "missing"));
  });

  test("a directory where a link goes: exit 2 naming it, no stack trace, nothing written (was: a stack trace after half the install)", () => {
    const d = mkdtempSync(join(tmpdir(), "pgw-install-dir-"));
    try {
      mkdirSync(join(d, "client_sidecar.sh"));
      const r = run([bin, "install", d]);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`${join(d, "client_sidecar.sh")} is a directory`);
      expect(r.err).not.toContain("    at ");
      expect(readdirSync(d)).toEqual(["client_sidecar.sh"]);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  test("symlinks planted at the final names are replaced, never written through", () => {
    const d = mkdtempSync(join(tmpdir(), "pgw-install-link-"));
    try {
      const victim = join(d, "..", `${d.split("/").pop()}-victim`);
      writeFileSync(victim, "precious");
      for (const n of ["pod-gateway", "client_init.sh"]) symlinkSync(victim, join(d, n));
      expect(run([bin, "install", d]).code).toBe(0);
      expect(readFileSync(victim, "utf8")).toBe("precious");
      expect(lstatSync(join(d, "pod-gateway")).isFile()).toBe(true);
      expect(readlinkSync(join(d, "client_init.sh"))).toBe("pod-gateway");
      rmSync(victim);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
