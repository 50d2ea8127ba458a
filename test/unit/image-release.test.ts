// .github/workflows/release.yml cannot run here: its YAML is parsed and held to what it must do
// (a tag builds the Dockerfile for amd64 and arm64 with buildx, pushes to GHCR with the version
// and commit labels, and attaches what `bun build.ts --all` writes to the release).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { targets } from "../../build.ts";
import { REPO_ROOT } from "../../src/image/rootfs.ts";

type Obj = Record<string, any>;
const wf = Bun.YAML.parse(readFileSync(join(REPO_ROOT, ".github/workflows/release.yml"), "utf8")) as Obj;
const steps = wf.jobs.release.steps as Obj[];
const uses = (action: string) => steps.find((s) => typeof s.uses === "string" && s.uses.startsWith(`${action}@`));
const lines = (s: string) => s.split("\n").map((l) => l.trim()).filter(Boolean);

describe("release workflow", () => {
  test("runs on version tags with permission to push packages and create releases", () => {
    expect(wf.on).toEqual({ push: { tags: ["v*"] } });
    expect(wf.permissions).toEqual({ contents: "write", packages: "write" });
  });

  test("installs from the lockfile and builds every binary with SHA256SUMS", () => {
    const runs = steps.map((s) => s.run).filter(Boolean) as string[];
    expect(runs).toContain("npm ci --no-audit --no-fund");
    expect(runs).toContain("node_modules/.bin/bun build.ts --all");
  });

  test("buildx builds the Dockerfile for amd64 and arm64 and pushes to GHCR with version and commit", () => {
    for (const a of ["actions/checkout", "docker/setup-qemu-action", "docker/setup-buildx-action", "docker/login-action"]) expect(uses(a)).toBeDefined();
    expect(uses("docker/login-action")!.with.registry).toBe("ghcr.io");
    const b = uses("docker/build-push-action")!;
    expect(b.with.file).toBe("Dockerfile");
    expect(b.with.context).toBe(".");
    expect(b.with.platforms.split(",").sort()).toEqual(["linux/amd64", "linux/arm64"]);
    expect(b.with.push).toBe(true);
    expect(lines(b.with["build-args"])).toEqual(["VERSION=${{ steps.v.outputs.version }}", "VCS_REF=${{ steps.v.outputs.commit }}"]);
    expect(lines(b.with.tags)).toContain("${{ env.IMAGE }}:${{ steps.v.outputs.version }}");
    expect(lines(b.with.labels)).toEqual(expect.arrayContaining(["org.opencontainers.image.version=${{ steps.v.outputs.version }}", "org.opencontainers.image.revision=${{ steps.v.outputs.commit }}"]));
    expect(wf.env.IMAGE).toMatch(/^ghcr\.io\/.+\/pod-gateway$/);
    // The image's timestamps are the commit's, as `npm run image` does with podman.
    expect(b.env.SOURCE_DATE_EPOCH).toBe("${{ steps.v.outputs.epoch }}");
  });

  test("the release gets every cross-built binary and SHA256SUMS", () => {
    const rel = steps.find((s) => typeof s.run === "string" && s.run.includes("gh release create"))!;
    const attached = (rel.run as string).split(/\s+/).filter((w) => w.startsWith("dist/")).sort();
    expect(attached).toEqual([...Object.keys(targets).map((t) => `dist/pod-gateway-${t}`), "dist/SHA256SUMS"].sort());
  });

  test("the Dockerfile's build arguments are the ones passed", () => {
    const dockerfile = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8");
    for (const a of ["VERSION", "VCS_REF"]) expect(dockerfile).toMatch(new RegExp(`^ARG ${a}\\b`, "m"));
  });
});
