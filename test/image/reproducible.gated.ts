// Reproducible builds: the Dockerfile built twice from the same commit gives our layer the same
// digest. The second build takes HEAD as committed (`git archive`, so the work tree cannot make
// them differ) and runs with no cache at all (every stage re-runs: npm ci, Bun's compile,
// apt-get, the assembly). What makes it hold: `podman build --timestamp <commit time>` (every
// file of our layer gets that mtime, the image that created time) and build.ts compiling under
// the final file name (Bun embeds it). Costs a few minutes.
//
// The reference is the image `npm run image` recorded when that is of HEAD with nothing
// uncommitted in the build's inputs, else a first build here: the test once failed in 0.1 s
// only because a commit had come after `npm run image`.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildImage, IMAGE_JSON, readImageRecord, type ImageRecord } from "../../src/image/build-image.ts";
import { parseTar, readOciArchive } from "../../src/image/oci.ts";
import { podman, setupPodman } from "../../src/image/podman.ts";
import { ARCHES, hostArch, REPO_ROOT } from "../../src/image/rootfs.ts";

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

/** The same layer digest, or a failure naming the files that differ. */
function expectSameLayer(a: ImageRecord, b: ImageRecord): void {
  if (a.layer.diffId !== b.layer.diffId) {
    const x = entriesOf(a.archive);
    const y = entriesOf(b.archive);
    const differ = [...new Set([...x.keys(), ...y.keys()])].filter((k) => x.get(k) !== y.get(k)).sort();
    expect({ differ: differ.map((k) => `/${k}: ${x.get(k) ?? "missing"} vs ${y.get(k) ?? "missing"}`) }).toEqual({ differ: [] });
  }
  expect(b.layer.diffId).toBe(a.layer.diffId);
}

const outs: string[] = [];
const made: string[] = [];

afterAll(async () => {
  if (made.length) await podman(setupPodman(join(REPO_ROOT, "dist", "podman")), ["rmi", "-f", ...made], { ok: [0, 1] });
  for (const d of outs) rmSync(d, { recursive: true, force: true });
}, 60_000);

describe("reproducible image", () => {
  test("two builds of HEAD, the second without any cache, give our layer the same digest", async () => {
    if (process.getuid?.() !== 0) throw new Error("the image tests need root (podman's store); run them as root, as CI does");
    // The bases `npm run image` used (stand-ins where registries are unreachable); without a
    // record, stand-ins (this kind of machine reaches no registry).
    const rec = existsSync(IMAGE_JSON) ? readImageRecord(hostArch()) : undefined;
    const localBases = rec?.localBases ?? true;
    const head = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: REPO_ROOT, stdout: "pipe" }).stdout.toString().trim();
    const build = async (which: string, noCache: boolean): Promise<ImageRecord> => {
      const outDir = mkdtempSync(join(tmpdir(), `pgw-repro-${which}-`));
      outs.push(outDir);
      const [r] = await buildImage({ localBases, noCache, fromCommit: true, arches: [ARCHES[hostArch().name]], repository: `${REPO}-${which}`, outDir, log: (l) => process.stderr.write(`repro ${which}: ${l}\n`) });
      made.push(...r!.tags);
      return r!;
    };
    // The reference: what `npm run image` built, when that was this commit with nothing
    // uncommitted in the build's inputs (the usual `npm run image && npm run test:image`);
    // otherwise a first build of HEAD here. buildah's cache does not carry over between the
    // work tree and a git archive (the files' times differ), so that first build is a full one.
    const recIsHead = rec !== undefined && rec.commit === head && !rec.dirty;
    if (!recIsHead) process.stdout.write(`reproducible: dist/image.json is ${rec ? `of ${rec.commit}${rec.dirty ? " with uncommitted changes" : ""}` : "missing"}, not of ${head} as committed: building the reference first\n`);
    const first = recIsHead ? rec : await build("first", false);
    // The second re-runs every step.
    const second = await build("second", true);
    expect([first.commit, second.commit]).toEqual([head, head]);
    expect(second.timestamp).toBe(first.timestamp);
    expectSameLayer(first, second);
    // With the same base, the image's layers (and so its config's rootfs) are the same too.
    expect(second.diffIds).toEqual(first.diffIds);
    process.stdout.write(`reproducible: our layer ${second.layer.diffId} from ${recIsHead ? "npm run image (work tree)" : "a first build"} and from a build without cache (git archive); podman build ${first.buildSeconds} s and ${second.buildSeconds} s\n`);
  }, 900_000);
});
