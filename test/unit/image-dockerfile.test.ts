// The Dockerfile cannot be built here (no Docker engine), so its promises are checked as text
// against the things they depend on: the manifest (config/image/rootfs.json), the repository's files,
// build.ts and src/image/assemble.ts. The rootfs netns test runs the same assembly script.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BUILD_INPUTS } from "../../src/image/build-image.ts";
import { readRootfsManifest, REPO_ROOT } from "../../src/image/rootfs.ts";

interface Instr {
  op: string;
  args: string;
  line: number;
}
interface Stage {
  name?: string;
  from: string;
  platform?: string;
  instrs: Instr[];
}

/** Dockerfile → global ARGs and stages (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): { globals: Record<string, string>; stages: Stage[] } {
  const globals: Record<string, string> = {};
  const stages: Stage[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let l = lines[i]!;
    if (/^\s*(#|$)/.test(l)) continue;
    while (l.endsWith("\\") && i + 1 < lines.length) {
      i++;
      if (/^\s*#/.test(lines[i]!)) continue;
      l = l.slice(0, -1) + " " + lines[i]!.trim();
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(l);
    if (!m) throw new Error(`Dockerfile:${start}: cannot parse ${JSON.stringify(l)}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === "FROM") {
      const f = /^(?:--platform=(\S+)\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`Dockerfile:${start}: cannot parse FROM ${args}`);
      stages.push({ platform: f[1], from: f[2]!, name: f[3], instrs: [] });
    } else if (stages.length === 0) {
      if (op !== "ARG") throw new Error(`Dockerfile:${start}: ${op} before the first FROM`);
      const [k, v = ""] = args.split("=", 2);
      globals[k!] = v;
    } else stages[stages.length - 1]!.instrs.push({ op, args, line: start });
  }
  return { globals, stages };
}

const text = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8");
const { globals, stages } = parseDockerfile(text);
const manifest = readRootfsManifest();
const stage = (name: string): Stage => {
  const s = stages.find((x) => x.name === name);
  if (!s) throw new Error(`no stage named ${name}`);
  return s;
};
const runs = (s: Stage) => s.instrs.filter((i) => i.op === "RUN").map((i) => i.args);
const final = stages[stages.length - 1]!;

describe("Dockerfile", () => {
  test("stages: tools and build on the builder's platform; debian, rootfs, then the distroless image", () => {
    expect(stages.map((s) => s.name ?? "(final)")).toEqual(["tools", "build", "debian", "rootfs", "(final)"]);
    expect(stage("tools").platform).toBe("$BUILDPLATFORM");
    expect(stage("build").from).toBe("tools");
    expect(stage("rootfs").from).toBe("build");
    expect(stage("debian").platform).toBeUndefined(); // the target's packages
    expect(final.from).toBe("${BASE_IMAGE}");
    expect(globals.BASE_IMAGE).toBe(manifest.base.image);
  });

  test("the Debian stage is the base image's release", () => {
    const release: Record<string, string> = { "11": "bullseye", "12": "bookworm", "13": "trixie" };
    const baseVersion = /debian(\d+)$/.exec(globals.BASE_IMAGE ?? "")?.[1];
    expect(release[baseVersion ?? ""]).toBe(manifest.debian.release);
    expect(globals.DEBIAN_IMAGE).toBe(`debian:${manifest.debian.release}-slim`);
    expect(globals.NODE_IMAGE).toContain(manifest.debian.release); // build.ts's version check runs there (glibc)
  });

  test("every --from names an earlier stage", () => {
    const seen: string[] = [];
    for (const s of stages) {
      for (const i of s.instrs) {
        const m = /--from=(\S+)/.exec(i.args);
        if (m) expect({ line: i.line, from: m[1], known: seen.includes(m[1]!) }).toEqual({ line: i.line, from: m[1], known: true });
      }
      if (s.name) seen.push(s.name);
    }
  });

  test("the tools stage copies what build.ts and src/image/assemble.ts read, and installs from the lockfile", () => {
    const copies = stage("tools").instrs.filter((i) => i.op === "COPY").flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const c of copies) expect({ c, exists: existsSync(join(REPO_ROOT, c)) }).toEqual({ c, exists: true });
    for (const f of ["package.json", "package-lock.json", "tsconfig.json", "build.ts", "src/", "config/"]) expect(copies).toContain(f);
    for (const src of Object.values(manifest.files)) expect(copies.some((c) => c.endsWith("/") && src.startsWith(c))).toBe(true);
    expect(runs(stage("tools"))).toContain("npm ci --no-audit --no-fund");
  });

  test("npm run image's notion of the build's inputs (for 'uncommitted changes') is every file the Dockerfile copies from the context", () => {
    const fromContext = stages.flatMap((s) => s.instrs.filter((i) => i.op === "COPY" && !i.args.startsWith("--from=")).flatMap((i) => i.args.split(/\s+/).slice(0, -1)));
    const inputs = ["Dockerfile", ...fromContext.map((c) => c.replace(/\/$/, ""))].sort();
    expect(inputs).toEqual([...BUILD_INPUTS].sort());
  });

  test("Debian packages come from the manifest, never typed into the Dockerfile", () => {
    expect(runs(stage("tools"))).toContain("node_modules/.bin/bun src/image/assemble.ts --print-packages > /packages.txt");
    const apt = runs(stage("debian")).join(" ");
    expect(apt).toContain("xargs -a /tmp/packages.txt apt-get install -y --no-install-recommends");
    for (const p of manifest.debian.packages) expect(apt.split(/\s+/)).not.toContain(p);
    const r = Bun.spawnSync([process.execPath, join(REPO_ROOT, "src/image/assemble.ts"), "--print-packages"], { stdout: "pipe" });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toBe(manifest.debian.packages.join("\n") + "\n");
  });

  test("build compiles for TARGETARCH; rootfs assembles for TARGETARCH from the Debian stage, without the base's glibc", () => {
    const b = stage("build").instrs;
    expect(b.some((i) => i.op === "ARG" && i.args === "TARGETARCH")).toBe(true);
    expect(runs(stage("build"))).toEqual(['POD_GATEWAY_COMMIT="${VCS_REF}" node_modules/.bin/bun build.ts --target "${TARGETARCH}"']);
    const r = stage("rootfs").instrs;
    expect(r.some((i) => i.op === "COPY" && i.args === "--from=debian / /sysroot/")).toBe(true);
    expect(r.some((i) => i.op === "ARG" && i.args === "TARGETARCH")).toBe(true);
    expect(runs(stage("rootfs"))).toEqual(['node_modules/.bin/bun src/image/assemble.ts --sysroot /sysroot --arch "${TARGETARCH}" --out /rootfs']);
  });

  test("the image: no RUN (there is no shell), one COPY of the tree, exec-form CMD of the binary, no ENTRYPOINT, root", () => {
    const ops = final.instrs.map((i) => i.op);
    expect(ops).not.toContain("RUN");
    expect(ops).not.toContain("ENTRYPOINT");
    expect(final.instrs.filter((i) => i.op === "COPY").map((i) => i.args)).toEqual(["--from=rootfs /rootfs/ /"]);
    const cmd = final.instrs.find((i) => i.op === "CMD")!;
    const argv = JSON.parse(cmd.args) as string[];
    expect(argv[0]).toBe(manifest.binary);
    expect(argv).toEqual(["/usr/local/bin/pod-gateway", "--help"]);
    expect(final.instrs.find((i) => i.op === "USER")?.args).toBe("0:0");
  });

  test("OCI labels", () => {
    const labels = final.instrs.filter((i) => i.op === "LABEL").map((i) => i.args).join(" ");
    for (const k of ["title", "description", "licenses", "version", "revision", "base.name"]) expect(labels).toContain(`org.opencontainers.image.${k}=`);
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { license: string };
    expect(labels).toContain(`org.opencontainers.image.licenses="${pkg.license}"`);
    expect(labels).toContain('org.opencontainers.image.revision="${VCS_REF}"');
    // ARGs used in the final stage are declared in it (a global ARG is not visible inside a stage otherwise).
    for (const a of ["BASE_IMAGE", "VERSION", "VCS_REF"]) expect(final.instrs.some((i) => i.op === "ARG" && i.args.split("=")[0] === a)).toBe(true);
  });
});
