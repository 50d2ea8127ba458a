// build.ts: target names, checksums, the ELF checks it applies to every output, and a real
// `--all` build into a temporary directory (cross-compiling fetches Bun's runtime for each
// target from the npm registry once; Bun caches it under ~/.bun).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectedElf, gitCommit, parseTarget, renderSha256Sums, sha256File, verifyBinary } from "../../build.ts";
import { REPO_ROOT } from "../../src/image/rootfs.ts";

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };

describe("build.ts helpers", () => {
  test("targets by name and by Docker's TARGETARCH", () => {
    expect(parseTarget("linux-x64")).toBe("linux-x64");
    expect(parseTarget("amd64")).toBe("linux-x64");
    expect(parseTarget("arm64")).toBe("linux-arm64");
    expect(parseTarget("linux-x64-musl")).toBe("linux-x64-musl");
    expect(() => parseTarget("arm")).toThrow('unknown build target "arm"');
  });

  test("SHA256SUMS is sha256sum -c format, sorted by name", () => {
    expect(renderSha256Sums({ "pod-gateway-linux-x64": "bb", "pod-gateway": "aa" })).toBe("aa  pod-gateway\nbb  pod-gateway-linux-x64\n");
  });

  test("the commit comes from $POD_GATEWAY_COMMIT when set (Docker builds have no .git)", () => {
    expect(gitCommit({ POD_GATEWAY_COMMIT: "0123456789ab" })).toBe("0123456789ab");
    expect(gitCommit({ POD_GATEWAY_COMMIT: "" })).toBe("");
  });

  test("expected loaders: glibc x64 and arm64, musl (which also links libstdc++)", () => {
    expect(expectedElf["linux-x64"]).toEqual({ machine: 62, interp: "/lib64/ld-linux-x86-64.so.2", needs: ["libc.so.6"] });
    expect(expectedElf["linux-arm64"]).toEqual({ machine: 183, interp: "/lib/ld-linux-aarch64.so.1", needs: ["libc.so.6"] });
    expect(expectedElf["linux-x64-musl"]).toEqual({ machine: 62, interp: "/lib/ld-musl-x86_64.so.1", needs: ["libstdc++.so.6"] });
  });

  test("verifyBinary rejects a program without an embedded Bun program, and the wrong architecture", () => {
    const ip = "/usr/bin/ip";
    const x64 = process.arch === "x64";
    expect(() => verifyBinary(ip, x64 ? "linux-x64" : "linux-arm64")).toThrow("has no embedded program (.bun section missing or empty: was it stripped?)");
    expect(() => verifyBinary(ip, x64 ? "linux-arm64" : "linux-x64")).toThrow(x64 ? "is built for x86-64 (e_machine 62), not aarch64 (183)" : "is built for aarch64 (e_machine 183), not x86-64 (62)");
    expect(() => verifyBinary(ip, "linux-x64-musl")).toThrow(`asks for loader ${x64 ? "/lib64/ld-linux-x86-64.so.2" : "/lib/ld-linux-aarch64.so.1"}, not /lib/ld-musl-x86_64.so.1`);
  });
});

describe("bun build.ts --all (into a temporary directory)", () => {
  let out = "";
  let log = "";
  let code: number | null = null;
  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), "pgw-build-"));
    const r = Bun.spawnSync([process.execPath, join(REPO_ROOT, "build.ts"), "--all", "--outdir", out], {
      env: { ...process.env, POD_GATEWAY_COMMIT: "feedc0ffee12" },
      stdout: "pipe",
      stderr: "pipe",
    });
    code = r.exitCode;
    log = r.stdout.toString() + r.stderr.toString();
  }, 120_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  test("exits 0 having verified each output, and ran the host build's version", () => {
    if (code !== 0) throw new Error(`build.ts --all exited ${code}:\n${log}`);
    expect(log).toContain(`verified pod-gateway: linux-${process.arch} ELF, runs: pod-gateway ${pkg.version}+feedc0ffee12`);
    for (const t of ["linux-x64", "linux-x64-musl", "linux-arm64"]) expect(log).toContain(`verified pod-gateway-${t}:`);
  });

  test("writes the four binaries and SHA256SUMS, and nothing else", () => {
    expect(readdirSync(out).sort()).toEqual(["SHA256SUMS", "pod-gateway", "pod-gateway-linux-arm64", "pod-gateway-linux-x64", "pod-gateway-linux-x64-musl"]);
  });

  test("each binary is what its name says (ELF header read again here)", () => {
    verifyBinary(join(out, "pod-gateway-linux-x64"), "linux-x64");
    verifyBinary(join(out, "pod-gateway-linux-arm64"), "linux-arm64");
    const musl = verifyBinary(join(out, "pod-gateway-linux-x64-musl"), "linux-x64-musl");
    expect(musl.needed).toContain("libstdc++.so.6");
  });

  test("SHA256SUMS matches the files", async () => {
    const lines = readFileSync(join(out, "SHA256SUMS"), "utf8").trimEnd().split("\n");
    expect(lines.length).toBe(4);
    for (const line of lines) {
      const m = /^([0-9a-f]{64}) {2}(\S+)$/.exec(line);
      expect(m).not.toBeNull();
      expect(await sha256File(join(out, m![2]!))).toBe(m![1]!);
    }
  });
});

describe("bun build.ts --target amd64|arm64 (what the Dockerfile runs)", () => {
  test("builds only that target, with its own SHA256SUMS", () => {
    const out = mkdtempSync(join(tmpdir(), "pgw-build-one-"));
    try {
      const arch = process.arch === "x64" ? "amd64" : "arm64";
      const r = Bun.spawnSync([process.execPath, join(REPO_ROOT, "build.ts"), "--target", arch, "--outdir", out], { stdout: "pipe", stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(`build.ts --target ${arch} exited ${r.exitCode}:\n${r.stderr}`);
      const name = `pod-gateway-linux-${process.arch}`;
      expect(readdirSync(out).sort()).toEqual(["SHA256SUMS", name]);
      expect(readFileSync(join(out, "SHA256SUMS"), "utf8")).toMatch(new RegExp(`^[0-9a-f]{64}  ${name}\\n$`));
      expect(existsSync(join(out, "pod-gateway"))).toBe(false);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});
