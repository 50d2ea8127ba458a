// The pure parts of `npm run image` and the gated image tests: podman's settings, the Debian
// mirror from apt's sources, arm64 detection from binfmt_misc, the tar reader, the stand-ins'
// recipes; and that the gated tests stay out of `npm test`.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostTarget, sha256File } from "../../build.ts";
import { binfmtRuns, parseBaseArgs, planArches, qualifyImageRef } from "../../src/image/build-image.ts";
import { parseTar } from "../../src/image/oci.ts";
import { renderContainersConf } from "../../src/image/podman.ts";
import { parseAptMirror, renderNodeStandIn, standInNames } from "../../src/image/standins.ts";
import { ARCHES, readRootfsManifest, REPO_ROOT } from "../../src/image/rootfs.ts";

describe("podman settings", () => {
  test("containers.conf: no default ulimits, no network unless asked, runc, cgroupfs", () => {
    const c = renderContainersConf();
    expect(c).toContain("[containers]\ndefault_ulimits = []\nnetns = \"none\"\n");
    expect(c).toContain('[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n');
  });
});

describe("real bases for podman", () => {
  test("short names are qualified (podman has no implicit docker.io); qualified ones kept", () => {
    expect(qualifyImageRef("debian:bookworm-slim")).toBe("docker.io/library/debian:bookworm-slim");
    expect(qualifyImageRef("someone/tool:1")).toBe("docker.io/someone/tool:1");
    expect(qualifyImageRef("gcr.io/distroless/base-debian12")).toBe("gcr.io/distroless/base-debian12");
    expect(qualifyImageRef("localhost/x:1")).toBe("localhost/x:1");
    expect(qualifyImageRef("registry:5000/x")).toBe("registry:5000/x");
  });
  test("the Dockerfile's three base arguments, as podman gets them", () => {
    const args = parseBaseArgs(readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8"));
    expect(Object.fromEntries(Object.entries(args).map(([k, v]) => [k, qualifyImageRef(v)]))).toEqual({
      BASE_IMAGE: "gcr.io/distroless/base-debian12",
      DEBIAN_IMAGE: "docker.io/library/debian:bookworm-slim",
      NODE_IMAGE: "docker.io/library/node:22-bookworm-slim",
    });
  });
});

describe("Debian mirror for debootstrap", () => {
  const deb822 = `Types: deb\n# a snapshot\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n`;
  test("deb822 .sources: the URI whose Suites has the release", () => {
    expect(parseAptMirror([{ name: "debian.sources", text: deb822 }], "bookworm")).toBe("http://deb.debian.org/debian");
    expect(parseAptMirror([{ name: "debian.sources", text: deb822 }], "trixie")).toBeUndefined();
  });
  test("disabled stanzas and deb-src are skipped; one-line .list files work", () => {
    const off = `Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\nTypes: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n`;
    expect(parseAptMirror([{ name: "a.sources", text: off }], "bookworm")).toBeUndefined();
    const list = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n";
    expect(parseAptMirror([{ name: "a.sources", text: off }, { name: "sources.list", text: list }], "bookworm")).toBe("http://mirror.example/debian");
  });
});

describe("arm64 builds only where arm64 binaries run", () => {
  const qemu = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n";
  const qemuX86 = qemu.replaceAll("aarch64", "x86_64").replace("0200b700", "02003e00");
  test("an enabled entry with the architecture's ELF machine", () => {
    expect(binfmtRuns(ARCHES.arm64, [qemu])).toBe(true);
    expect(binfmtRuns(ARCHES.arm64, [qemu.replace("enabled", "disabled")])).toBe(false);
    expect(binfmtRuns(ARCHES.arm64, [qemu.replace("b700", "2800")])).toBe(false); // arm (32-bit)
    expect(binfmtRuns(ARCHES.arm64, [qemuX86])).toBe(false);
    expect(binfmtRuns(ARCHES.amd64, [qemuX86])).toBe(true);
    expect(binfmtRuns(ARCHES.arm64, [])).toBe(false);
  });
  test("amd64 always; arm64 too only when binfmt_misc runs it, otherwise the build says amd64 only", () => {
    expect(planArches(ARCHES.amd64, [qemu])).toEqual({ arches: [ARCHES.amd64, ARCHES.arm64] });
    const alone = planArches(ARCHES.amd64, [qemu.replace("enabled", "disabled")]);
    expect(alone.arches).toEqual([ARCHES.amd64]);
    expect(alone.note).toBe("building linux/amd64 only: this machine cannot run arm64 binaries (no enabled binfmt_misc entry for them; qemu-user-static registers one)");
    // On an arm64 builder the other architecture is amd64.
    expect(planArches(ARCHES.arm64, [qemuX86]).arches).toEqual([ARCHES.arm64, ARCHES.amd64]);
    expect(planArches(ARCHES.arm64, []).note).toContain("building linux/arm64 only");
  });
});

describe("tar reader", () => {
  test("lists what GNU tar wrote: files, dirs, symlinks, long names (pax), modes, owners, mtimes", () => {
    const d = mkdtempSync(join(tmpdir(), "pgw-tar-"));
    try {
      const root = join(d, "root");
      mkdirSync(join(root, "usr/local/bin"), { recursive: true });
      writeFileSync(join(root, "usr/local/bin/tool"), "#!tool\n");
      chmodSync(join(root, "usr/local/bin/tool"), 0o755);
      symlinkSync("/usr/local/bin/tool", join(root, "link"));
      const long = "x".repeat(150);
      writeFileSync(join(root, long), "long");
      const tar = join(d, "t.tar");
      const r = Bun.spawnSync(["tar", "--format=pax", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@1700000000", "-C", root, "-cf", tar, "."]);
      expect(r.exitCode).toBe(0);
      const bytes = new Uint8Array(readFileSync(tar));
      const es = parseTar(bytes);
      const byPath = Object.fromEntries(es.map((e) => [e.path, e]));
      expect(Object.keys(byPath).sort()).toEqual(["", "link", "usr", "usr/local", "usr/local/bin", "usr/local/bin/tool", long].sort());
      expect(byPath["usr/local/bin/tool"]).toMatchObject({ type: "file", mode: 0o755, uid: 0, gid: 0, size: 7, mtime: 1700000000 });
      expect(byPath.link).toMatchObject({ type: "symlink", linkname: "/usr/local/bin/tool" });
      expect(byPath["usr/local"]!.type).toBe("dir");
      const t = byPath["usr/local/bin/tool"]!;
      expect(new TextDecoder().decode(bytes.subarray(t.offset, t.offset + t.size))).toBe("#!tool\n");
      const corrupt = bytes.slice();
      corrupt[0] = corrupt[0]! ^ 1;
      expect(() => parseTar(corrupt)).toThrow("bad checksum");
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe("stand-in bases", () => {
  test("names say stand-in, carry release and arch; the node recipe's hash is in its tag", () => {
    const m = readRootfsManifest();
    const a = standInNames(m, ARCHES.amd64, "recipe A");
    const b = standInNames(m, ARCHES.amd64, "recipe B");
    expect(a.DEBIAN_IMAGE).toBe("localhost/pod-gateway-standin/debian:bookworm-slim-amd64");
    expect(a.BASE_IMAGE).toBe("localhost/pod-gateway-standin/distroless-base:bookworm-amd64");
    expect(a.NODE_IMAGE).toStartWith("localhost/pod-gateway-standin/node:debian-bookworm-amd64-");
    expect(a.NODE_IMAGE).not.toBe(b.NODE_IMAGE);
  });
  test("node stand-in: Debian's nodejs and npm; local CAs only when the machine has some", () => {
    expect(renderNodeStandIn("localhost/x", false)).toBe("FROM localhost/x\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm ca-certificates && rm -rf /var/lib/apt/lists/*\n");
    const ca = renderNodeStandIn("localhost/x", true);
    expect(ca).toContain("COPY extra-ca/ /usr/local/share/ca-certificates/\nRUN update-ca-certificates\n");
    expect(ca).toContain("NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt");
  });
});

describe("reproducible compile (what the image's layer digest rests on)", () => {
  test("two builds of the same sources are byte-identical (no temporary name or pid embedded)", async () => {
    const d = mkdtempSync(join(tmpdir(), "pgw-repro-bin-"));
    try {
      const sums: string[] = [];
      // Two processes (two pids), as two image builds are.
      for (const n of ["a", "b"]) {
        const r = Bun.spawnSync([process.execPath, join(REPO_ROOT, "build.ts"), "--target", hostTarget(), "--outdir", join(d, n)], { stdout: "pipe", stderr: "pipe", env: { ...process.env, POD_GATEWAY_COMMIT: "0123456789ab" } });
        expect({ code: r.exitCode, err: r.exitCode ? r.stderr.toString() : "" }).toEqual({ code: 0, err: "" });
        sums.push(await sha256File(join(d, n, `pod-gateway-${hostTarget()}`)));
      }
      expect(sums[0]).toBe(sums[1]!);
      expect(readdirSync(join(d, "a")).sort()).toEqual(["SHA256SUMS", `pod-gateway-${hostTarget()}`]);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("the gated image tests", () => {
  test("are all listed by npm run test:image and none is collected by `bun test` (no .test./_test_/.spec./_spec_ in the name)", () => {
    const gated = readdirSync(join(REPO_ROOT, "test/image")).filter((f) => f.endsWith(".gated.ts")).sort();
    expect(gated).toEqual(["lab.gated.ts", "layer.gated.ts", "reproducible.gated.ts"]);
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
    for (const f of gated) expect(pkg.scripts["test:image"]).toContain(`./test/image/${f}`);
    for (const f of readdirSync(join(REPO_ROOT, "test/image"))) expect(f).not.toMatch(/(\.test|_test_|\.spec|_spec_)/);
    expect(pkg.scripts.image).toBe("bun src/image/build-image.ts");
  });
  test("CI's image job (.ci/run-image) sets up, builds the image, then runs npm run test:image; .ci/run (npm test) does not", () => {
    const job = readFileSync(join(REPO_ROOT, ".ci/run-image"), "utf8");
    const steps = job.split("\n").filter((l) => l && !l.startsWith("#") && !l.startsWith("set ") && !l.startsWith("cd "));
    expect(steps).toEqual([".ci/setup", 'npm run image -- "$@"', "npm run test:image"]);
    expect(readFileSync(join(REPO_ROOT, ".ci/run"), "utf8")).not.toContain("test:image");
  });
});
