// Host safety against the real kernel: client-init must refuse to run where it would rewrite the
// routes of the machine it runs on. The "host" here is a throwaway one: a fresh network and PID
// namespace (`unshare --net --pid --fork`) whose PID 1 is the binary itself, chrooted into a root
// holding only the binary, `ip` and their libraries — so no /.dockerenv or /run/.containerenv of
// the machine running the tests leaks in. A mistake could only harm that empty namespace.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assembleRootfs, hostArch, readRootfsManifest } from "../../src/image/rootfs.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";

const ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", gateway: "198.51.100.7", K8S_DNS_ips: "198.51.100.53", POD_NAME: "safety-test" };

function run(argv: string[]) {
  const r = Bun.spawnSync(argv, { env: ENV, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

describe("host safety (throwaway namespaces)", () => {
  let dir = "";
  let root = "";
  beforeAll(() => {
    requireRoot();
    dir = mkdtempSync(join(tmpdir(), "pgw-safety-"));
    root = join(dir, "root");
    assembleRootfs({ manifest: readRootfsManifest(), sysroot: "/", arch: hostArch(), profile: "client-copy", binary: binPath(), out: root });
    mkdirSync(join(root, "proc"), { recursive: true });
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // PID 1 of the new PID namespace is pod-gateway itself, so its network namespace is PID 1's:
  // exactly what a process on a host's own network sees.
  const unshared = (...args: string[]) => ["unshare", "--net", "--pid", "--fork", "--mount", `--root=${root}`, "--mount-proc", "/usr/local/bin/pod-gateway", ...args];

  test("client-init refuses (exit 3) and says why and what to do", () => {
    const r = run(unshared("client-init"));
    expect(r.code).toBe(3);
    expect(r.err).toContain("refusing to change network state");
    expect(r.err).toContain("--allow-host-network");
  });

  test("gateway-init refuses too", () => {
    const r = run(unshared("gateway-init"));
    expect(r.code).toBe(3);
    expect(r.err).toContain("refusing to change network state");
  });

  test("configuration is validated first: a bad setting exits 2 even there", () => {
    const r = Bun.spawnSync(unshared("client-init"), { env: { ...ENV, gateway: "" }, stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toContain("GATEWAY_NAME");
  });

  test("control: with --allow-host-network it goes past the check (and fails later, in the empty namespace)", () => {
    const r = run(unshared("client-init", "--allow-host-network"));
    expect(r.code).toBe(1);
    expect(r.err).not.toContain("refusing to change network state");
  });
});
