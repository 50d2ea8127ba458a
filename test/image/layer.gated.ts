// The built image (dist/image.json, from `npm run image`), read from its OCI archive:
// - our layer (the last) holds exactly what config/image/rootfs.json lists, planned by the
//   script the Dockerfile runs (src/image/rootfs.ts), with the commit's time on every file;
// - no layer holds a shell, busybox, apt or dpkg;
// - the config: no ENTRYPOINT, CMD pod-gateway --help, user 0, the OCI labels, distroless' PATH;
// - the archive's digest is the one recorded, and podman's store has the same image.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { parseTar, readOciArchive, type OciImage, type TarEntry } from "../../src/image/oci.ts";
import { podman } from "../../src/image/podman.ts";
import { DISTROLESS_PATH } from "../../src/image/standins.ts";
import { hostArch, readRootfsManifest, readRootfsPlan, REPO_ROOT } from "../../src/image/rootfs.ts";
import { requireImage, type ImageFixture } from "./common.ts";

let fx: ImageFixture;
let oci: OciImage;
let ours: TarEntry[] = [];
let work = "";
const manifest = readRootfsManifest();

beforeAll(async () => {
  fx = await requireImage();
  oci = readOciArchive(fx.rec.archive);
  ours = parseTar(oci.layers[oci.layers.length - 1]!.tar);
  work = mkdtempSync(join(tmpdir(), "pgw-layer-"));
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Whiteouts (.wh.*) are deletions, not content. */
const content = (es: TarEntry[]) => es.filter((e) => !posix.basename(e.path).startsWith(".wh."));

describe("the built image", () => {
  test("the archive is the one recorded, and is the image in podman's store", async () => {
    const sha = new Bun.CryptoHasher("sha256");
    for await (const chunk of Bun.file(fx.rec.archive).stream()) sha.update(chunk);
    expect(sha.digest("hex")).toBe(fx.rec.archiveSha256);
    expect(oci.manifestDigest).toBe(fx.rec.manifestDigest);
    const inspect = JSON.parse((await podman(fx.p, ["image", "inspect", fx.rec.image])).stdout) as { Id: string; RootFS: { Layers: string[] } }[];
    expect(inspect[0]!.Id).toBe(fx.rec.id);
    expect(inspect[0]!.RootFS.Layers).toEqual(oci.config.rootfs.diff_ids);
    // What the archive holds is what its config says (diff_ids are the uncompressed layers' digests).
    expect(oci.layers.map((l) => l.diffId)).toEqual(oci.config.rootfs.diff_ids);
  });

  test("our layer holds exactly the manifest's tree: same paths, kinds, link targets and modes", () => {
    // Plan the tree the way the Dockerfile's rootfs stage does, with this machine's Debian 12
    // packages as the sysroot and the binary taken from the layer itself.
    const binEntry = ours.find((e) => "/" + e.path === manifest.binary)!;
    expect(binEntry).toBeDefined();
    const layerTar = oci.layers[oci.layers.length - 1]!.tar;
    const binary = join(work, "pod-gateway");
    writeFileSync(binary, layerTar.subarray(binEntry.offset, binEntry.offset + binEntry.size));
    const plan = readRootfsPlan({ manifest, sysroot: "/", arch: hostArch(), profile: "image", binary });

    const want = new Map<string, string>();
    const ancestors = new Set<string>();
    for (const e of plan.entries) {
      const desc = e.kind === "symlink" ? `symlink -> ${e.target}` : e.kind === "dir" ? `dir ${e.mode.toString(8)}` : `file ${e.mode.toString(8)}`;
      want.set(e.path, desc);
      for (let d = posix.dirname(e.path); d !== "/"; d = posix.dirname(d)) ancestors.add(d);
    }
    const got = new Map<string, string>();
    const extraDirs: string[] = [];
    for (const e of content(ours)) {
      if (e.path === "" || e.path === ".") continue;
      const p = "/" + e.path;
      if (e.type === "dir" && !want.has(p)) {
        if (!ancestors.has(p)) extraDirs.push(p);
        continue;
      }
      got.set(p, e.type === "symlink" ? `symlink -> ${e.linkname}` : e.type === "dir" ? `dir ${e.mode.toString(8)}` : `${e.type} ${e.mode.toString(8)}`);
    }
    expect(extraDirs).toEqual([]);
    expect(Object.fromEntries([...got].sort())).toEqual(Object.fromEntries([...want].sort()));
  });

  test("every entry of our layer is root's and carries the commit's time (reproducible)", () => {
    const odd = content(ours).filter((e) => e.uid !== 0 || e.gid !== 0 || e.mtime !== fx.rec.timestamp);
    expect(odd.map((e) => `${e.path} uid ${e.uid} gid ${e.gid} mtime ${e.mtime}`)).toEqual([]);
  });

  test("no layer holds a shell, busybox, apt or dpkg", () => {
    const banned = /^(sh|bash|dash|ash|zsh|busybox|apt|apt-get|apt-cache|aptitude|dpkg|dpkg-deb)$/;
    const found: string[] = [];
    oci.layers.forEach((l, i) => {
      for (const e of content(parseTar(l.tar))) if (banned.test(posix.basename(e.path))) found.push(`layer ${i}: /${e.path}`);
      // dpkg's database is not in the image either (the base emulation has none; distroless keeps status.d only).
      for (const e of content(parseTar(l.tar))) if (e.path.startsWith("var/lib/dpkg/info") || e.path === "var/lib/dpkg/status") found.push(`layer ${i}: /${e.path}`);
    });
    expect(found).toEqual([]);
  });

  test("config: no ENTRYPOINT, CMD pod-gateway --help, user 0, PATH, OCI labels of this version and commit", () => {
    const c = oci.config.config ?? {};
    expect(oci.config.architecture).toBe(hostArch().name);
    expect(oci.config.os).toBe("linux");
    expect(c.Entrypoint ?? null).toBeNull();
    expect(c.Cmd).toEqual([manifest.binary, "--help"]);
    expect(c.User).toBe("0:0");
    expect(c.Env).toContain(`PATH=${DISTROLESS_PATH}`);
    expect(c.Labels).toMatchObject({
      "org.opencontainers.image.title": "pod-gateway",
      "org.opencontainers.image.version": fx.rec.version,
      "org.opencontainers.image.revision": fx.rec.commit,
      "org.opencontainers.image.base.name": fx.rec.bases.BASE_IMAGE,
    });
    expect(oci.config.created).toBe(new Date(fx.rec.timestamp * 1000).toISOString().replace(".000Z", "Z"));
  });

  test("sizes, against the Bun floor", () => {
    const last = oci.layers[oci.layers.length - 1]!;
    const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
    // The Bun runtime floor (a compiled hello world), as `bun src/image/sizes.ts` measured it.
    const sizes = JSON.parse(readFileSync(join(REPO_ROOT, "test/bench/results/sizes.json"), "utf8")) as { floor: Record<string, { bytes: number; gzip: number }> };
    const floor = sizes.floor[hostArch().buildTarget]!;
    const lines = [
      `our layer: ${mib(last.tar.length)} (gzip ${mib(last.gzipSize)}), ${ours.length} entries; over the Bun floor (${mib(floor.bytes)}, gzip ${mib(floor.gzip)}): +${mib(last.tar.length - floor.bytes)} (gzip +${mib(last.gzipSize - floor.gzip)})`,
      `image: ${mib(fx.rec.total.bytes)} (gzip ${mib(fx.rec.total.gzipBytes)}), ${oci.layers.length} layers`,
      `podman build: ${fx.rec.buildSeconds} s`,
    ];
    process.stdout.write(lines.join("\n") + "\n");
    // The layer is mostly the compiled binary: it must at least hold it.
    expect(last.tar.length).toBeGreaterThan(ours.find((e) => "/" + e.path === manifest.binary)!.size);
  });
});
