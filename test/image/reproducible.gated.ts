// Reproducible builds: the Dockerfile built again from the same commit, with no cache at all
// (every stage re-runs: npm ci, Bun's compile, apt-get, the assembly), gives our layer the same
// digest as the build `npm run image` recorded in dist/image.json. Costs a few minutes.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildImage } from "../../src/image/build-image.ts";
import { parseTar, readOciArchive } from "../../src/image/oci.ts";
import { podman } from "../../src/image/podman.ts";
import { ARCHES, hostArch, REPO_ROOT } from "../../src/image/rootfs.ts";
import { requireImage } from "./common.ts";

const REPO = "localhost/pod-gateway-repro-check";

/** Our layer's entries: path → type, mode, owner, mtime, link target and content hash. */
function entriesOf(archive: string): Map<string, string> {
  const oci = readOciArchive(archive);
  const tar = oci.layers[oci.layers.length - 1]!.tar;
  const out = new Map<string, string>();
  for (const e of parseTar(tar)) {
    const sha = e.type === "file" ? new Bun.CryptoHasher("sha256").update(tar.subarray(e.offset, e.offset + e.size)).digest("hex").slice(0, 16) : "";
    out.set(e.path, `${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid} mtime ${e.mtime} ${e.linkname} ${e.size} ${sha}`);
  }
  return out;
}
let out = "";
let made: string[] = [];

afterAll(async () => {
  if (made.length) {
    const { p } = await requireImage();
    await podman(p, ["rmi", "-f", ...made], { ok: [0, 1] });
  }
  if (out) rmSync(out, { recursive: true, force: true });
}, 60_000);

describe("reproducible image", () => {
  test("a second build without cache gives our layer the same digest", async () => {
    const { rec } = await requireImage();
    const head = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: REPO_ROOT, stdout: "pipe" }).stdout.toString().trim();
    if (rec.commit !== head || rec.dirty) throw new Error(`dist/image.json is from commit ${rec.commit}${rec.dirty ? " with uncommitted changes" : ""}, HEAD is ${head}: commit, then run \`npm run image\` before this test`);
    out = mkdtempSync(join(tmpdir(), "pgw-repro-"));
    const [again] = await buildImage({ localBases: rec.localBases, noCache: true, arches: [ARCHES[hostArch().name]], repository: REPO, outDir: out, log: (l) => process.stderr.write(`repro: ${l}\n`) });
    made = again!.tags;
    expect(again!.commit).toBe(rec.commit);
    expect(again!.timestamp).toBe(rec.timestamp);
    if (again!.layer.diffId !== rec.layer.diffId) {
      // Say which files differ, not just that the digests do.
      const a = entriesOf(rec.archive);
      const b = entriesOf(again!.archive);
      const differ = [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k)).sort();
      expect({ differ: differ.map((k) => `/${k}: ${a.get(k) ?? "missing"} vs ${b.get(k) ?? "missing"}`) }).toEqual({ differ: [] });
    }
    expect(again!.layer.diffId).toBe(rec.layer.diffId);
    // With the same base, the whole image config (and so the image id) is the same too.
    expect(again!.diffIds).toEqual(rec.diffIds);
  }, 900_000);
});
