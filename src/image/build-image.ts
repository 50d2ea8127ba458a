// `npm run image`: builds the Dockerfile with podman, leaves localhost/pod-gateway:<version> in
// podman's store, writes dist/pod-gateway-<version>-<arch>.oci.tar with its sha256, and
// dist/image.json (digests, layer sizes, build time) that the image tests start from.
//
//   bun src/image/build-image.ts [--local-bases] [--no-cache] [--from-commit] [--arch amd64|arm64 ...] [--tag NAME]
//
// Without --arch it builds the host's architecture, and the other one (arm64 on amd64) only when
// binfmt_misc can run its binaries (qemu-user-static); otherwise it says it built one only.
// --from-commit builds HEAD as committed (git archive) rather than the work tree.
// --local-bases builds stand-ins for the three base images first (src/image/standins.ts), for
// machines that cannot reach Docker Hub or gcr.io; the Dockerfile is the same either way (its
// bases are build arguments). The build is reproducible: --timestamp is the commit's time, so
// two builds of one commit give our layer the same digest (test/image/reproducible.gated.ts).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ARCHES, hostArch, parseArch, readRootfsManifest, REPO_ROOT, type ArchInfo } from "./rootfs.ts";
import { sha256File } from "../../build.ts";
import { parseTar, readOciArchive } from "./oci.ts";
import { podman, podmanStreamed, setupPodman, type Podman } from "./podman.ts";
import { ensureStandIns, type StandIns } from "./standins.ts";

export const IMAGE_REPOSITORY = "localhost/pod-gateway";
export const IMAGE_JSON = join(REPO_ROOT, "dist", "image.json");
/** What the Dockerfile copies from the build context (test/unit/image-dockerfile.test.ts reads the COPY lines). */
export const BUILD_INPUTS = ["Dockerfile", "package.json", "package-lock.json", "tsconfig.json", "build.ts", "src", "config"] as const;

/**
 * The first 20 bytes of an ELF header as binfmt_misc entries match them (qemu-user-static's):
 * 64-bit little-endian, version 1, e_type EXEC, then e_machine (little-endian).
 */
function binfmtMagic(arch: ArchInfo): string {
  const m = arch.machine;
  return `7f454c460201010000000000000000000200${(m & 0xff).toString(16).padStart(2, "0")}${(m >> 8).toString(16).padStart(2, "0")}`;
}

/** True when one of the binfmt_misc entries' texts is enabled and runs `arch`'s ELF binaries. Pure. */
export function binfmtRuns(arch: ArchInfo, entries: string[]): boolean {
  return entries.some((t) => /^enabled$/m.test(t) && new RegExp(`^magic ${binfmtMagic(arch)}`, "m").test(t));
}

/**
 * The architectures `npm run image` builds when none is named: the host's always; the other one
 * only when this machine can run its binaries (the Dockerfile's debian stage runs apt-get for the
 * target). `note` says what was left out and why. Pure.
 */
export function planArches(host: ArchInfo, binfmtEntries: string[]): { arches: ArchInfo[]; note?: string } {
  const other = host.name === "amd64" ? ARCHES.arm64 : ARCHES.amd64;
  if (binfmtRuns(other, binfmtEntries)) return { arches: [host, other] };
  return {
    arches: [host],
    note: `building linux/${host.name} only: this machine cannot run ${other.name} binaries (no enabled binfmt_misc entry for them; qemu-user-static registers one)`,
  };
}

function readBinfmtEntries(): string[] {
  const dir = "/proc/sys/fs/binfmt_misc";
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => n !== "register" && n !== "status")
    .map((n) => {
      try {
        return readFileSync(join(dir, n), "utf8");
      } catch {
        return "";
      }
    });
}

/**
 * A fully qualified image reference: podman (unlike Docker) refuses short names unless
 * registries.conf lists search registries, so `debian:bookworm-slim` becomes
 * `docker.io/library/debian:bookworm-slim`. Pure.
 */
export function qualifyImageRef(ref: string): string {
  const first = ref.split("/")[0]!;
  if (ref.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")) return ref;
  return ref.includes("/") ? `docker.io/${ref}` : `docker.io/library/${ref}`;
}

/** The Dockerfile's base-image build arguments with their defaults (global `ARG *_IMAGE=...`). Pure. */
export function parseBaseArgs(dockerfile: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of dockerfile.matchAll(/^ARG\s+([A-Z_]+_IMAGE)=(\S+)\s*$/gm)) out[m[1]!] = m[2]!;
  return out;
}

export interface ImageRecord {
  image: string;
  tags: string[];
  version: string;
  commit: string;
  /** Commit time (seconds since the epoch): the image's created time and every file's mtime. */
  timestamp: number;
  dirty: boolean;
  arch: string;
  bases: Record<string, string>;
  localBases: boolean;
  id: string;
  manifestDigest: string;
  diffIds: string[];
  /** Our layer: the last one. */
  layer: { diffId: string; bytes: number; gzipBytes: number; entries: number };
  total: { bytes: number; gzipBytes: number };
  archive: string;
  archiveSha256: string;
  buildSeconds: number;
  builtAt: string;
}

function git(args: string[]): string {
  const r = Bun.spawnSync(["git", ...args], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")} exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString().trim();
}

export interface BuildImageOptions {
  localBases: boolean;
  noCache: boolean;
  /**
   * Build HEAD as committed (`git archive HEAD` as the build context) instead of the work tree:
   * uncommitted and untracked files cannot reach the image, so two builds of one commit have
   * the same inputs whatever the work tree holds.
   */
  fromCommit?: boolean;
  arches: ArchInfo[];
  /** Repository to tag (default localhost/pod-gateway). */
  repository?: string;
  /** Where the archive and image.json go (default dist/). */
  outDir?: string;
  log?: (l: string) => void;
}

export async function buildImage(opts: BuildImageOptions): Promise<ImageRecord[]> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`image: ${l}\n`));
  const outDir = opts.outDir ?? join(REPO_ROOT, "dist");
  const repository = opts.repository ?? IMAGE_REPOSITORY;
  const p: Podman = setupPodman(join(outDir, "podman"));
  const manifest = readRootfsManifest();
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
  const commit = git(["rev-parse", "--short=12", "HEAD"]);
  const timestamp = Number(git(["log", "-1", "--format=%ct", "HEAD"]));
  const work = mkdtempSync(join(tmpdir(), "pgw-image-"));
  let context = REPO_ROOT;
  let dirty = false;
  const records: ImageRecord[] = [];
  try {
    if (opts.fromCommit) {
      context = join(work, "context");
      mkdirSync(context);
      const tar = join(work, "context.tar");
      git(["archive", "--format=tar", "-o", tar, commit]);
      const x = Bun.spawnSync(["tar", "-x", "-f", tar, "-C", context], { stdout: "pipe", stderr: "pipe" });
      if (x.exitCode !== 0) throw new Error(`unpacking git archive ${commit} into ${context}: tar exited ${x.exitCode}: ${x.stderr.toString().trim()}`);
      rmSync(tar);
      log(`building commit ${commit} as committed (git archive), not the work tree`);
    } else {
      // Uncommitted or untracked files among what the Dockerfile copies end up in the image.
      dirty = git(["status", "--porcelain", "--untracked-files=all", "--", ...BUILD_INPUTS]) !== "";
      if (dirty) log(`warning: the work tree has uncommitted or untracked files in the build's inputs; the image holds them, but is labelled ${commit}`);
    }
    for (const arch of opts.arches) {
      const t0 = performance.now();
      // Real bases: the Dockerfile's own defaults, fully qualified for podman.
      let bases: Partial<StandIns> = Object.fromEntries(Object.entries(parseBaseArgs(readFileSync(join(context, "Dockerfile"), "utf8"))).map(([k, v]) => [k, qualifyImageRef(v)]));
      if (opts.localBases) {
        bases = await ensureStandIns(p, manifest, arch, log, work);
        // The tools stage runs on the builder's platform (FROM --platform=$BUILDPLATFORM): its
        // stand-in is the host architecture's, whatever the target.
        if (arch.name !== hostArch().name) bases.NODE_IMAGE = (await ensureStandIns(p, manifest, hostArch(), log, work)).NODE_IMAGE;
      }
      const ref = `${repository}:${pkg.version}-${arch.name}`;
      const args = [
        "build",
        // RUN steps (npm ci, apt-get, Bun fetching its target runtime) use the host's network as
        // it is; without this podman would make a bridge network (see podman.ts).
        "--network", "host",
        "--platform", `linux/${arch.name}`,
        "--timestamp", String(timestamp),
        "--build-arg", `VERSION=${pkg.version}`,
        "--build-arg", `VCS_REF=${commit}`,
        ...Object.entries(bases).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]),
        ...(opts.localBases ? ["--pull=never"] : []),
        ...(opts.noCache ? ["--no-cache"] : []),
        "-t", ref,
        "-f", join(context, "Dockerfile"),
        context,
      ];
      log(`podman build for linux/${arch.name}${opts.localBases ? " with local stand-in bases" : ""} (commit ${commit}, timestamp ${timestamp})`);
      const tb = performance.now();
      try {
        await podmanStreamed(p, args, `building ${ref}`);
      } catch (e) {
        if (opts.localBases) throw e;
        throw new Error(`${(e as Error).message}\nIf the base images' registries are unreachable from here, build with local stand-ins: npm run image -- --local-bases`);
      }
      const buildSeconds = (performance.now() - tb) / 1000;
      const tags = [ref];
      if (arch.name === hostArch().name) {
        await podman(p, ["tag", ref, `${repository}:${pkg.version}`], { what: "tagging" });
        tags.push(`${repository}:${pkg.version}`);
      }
      mkdirSync(outDir, { recursive: true });
      const archive = join(outDir, `pod-gateway-${pkg.version}-${arch.name}.oci.tar`);
      rmSync(archive, { force: true });
      await podman(p, ["save", "--format", "oci-archive", "-o", archive, ref], { what: "writing the OCI archive" });
      const archiveSha256 = await sha256File(archive);
      writeFileSync(`${archive}.sha256`, `${archiveSha256}  ${archive.split("/").pop()}\n`);
      const oci = readOciArchive(archive);
      const id = (await podman(p, ["image", "inspect", "--format", "{{.Id}}", ref])).stdout.trim();
      const last = oci.layers[oci.layers.length - 1]!;
      const rec: ImageRecord = {
        image: ref,
        tags,
        version: pkg.version,
        commit,
        timestamp,
        dirty,
        arch: arch.name,
        bases: { ...bases },
        localBases: opts.localBases,
        id,
        manifestDigest: oci.manifestDigest,
        diffIds: oci.config.rootfs.diff_ids,
        layer: { diffId: last.diffId, bytes: last.tar.length, gzipBytes: last.gzipSize, entries: parseTar(last.tar).length },
        total: { bytes: oci.layers.reduce((n, l) => n + l.tar.length, 0), gzipBytes: oci.layers.reduce((n, l) => n + l.gzipSize, 0) },
        archive,
        archiveSha256,
        buildSeconds: Math.round(buildSeconds * 10) / 10,
        builtAt: new Date().toISOString(),
      };
      records.push(rec);
      log(`${tags.join(", ")}: ${id.slice(0, 12)}, manifest ${oci.manifestDigest}`);
      log(`our layer ${last.diffId}: ${mib(rec.layer.bytes)} (gzip ${mib(rec.layer.gzipBytes)}); image ${mib(rec.total.bytes)} (gzip ${mib(rec.total.gzipBytes)})`);
      log(`${archive} sha256:${archiveSha256} (${mib(statSync(archive).size)}); podman build ${rec.buildSeconds} s, all ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  writeFileSync(join(outDir, "image.json"), JSON.stringify(records, null, 2) + "\n");
  return records;
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/** The record `npm run image` left for this architecture (dist/image.json), or a clear error. */
export function readImageRecord(arch: ArchInfo = hostArch(), file = IMAGE_JSON): ImageRecord {
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run image\` (or \`npm run image -- --local-bases\` where registries are unreachable) first`);
  const recs = JSON.parse(readFileSync(file, "utf8")) as ImageRecord[];
  const r = recs.find((x) => x.arch === arch.name);
  if (!r) throw new Error(`${file} has no ${arch.name} image: run \`npm run image\` again`);
  return r;
}

if (import.meta.main) {
  try {
    const { values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        "local-bases": { type: "boolean", default: false },
        "no-cache": { type: "boolean", default: false },
        "from-commit": { type: "boolean", default: false },
        arch: { type: "string", multiple: true },
        tag: { type: "string" },
      },
      strict: true,
    });
    let arches: ArchInfo[];
    let note: string | undefined;
    if (values.arch?.length) arches = [...new Set(values.arch.map((a) => parseArch(a).name))].map((n) => ARCHES[n]);
    else ({ arches, note } = planArches(hostArch(), readBinfmtEntries()));
    if (note) process.stderr.write(`image: ${note}\n`);
    const t0 = performance.now();
    const recs = await buildImage({ localBases: values["local-bases"], noCache: values["no-cache"], fromCommit: values["from-commit"], arches, repository: values.tag });
    const built = recs.map((r) => `linux/${r.arch}`).join(" and ");
    process.stderr.write(`image: built ${built}${note ? " only" : ""} in ${((performance.now() - t0) / 1000).toFixed(0)} s; details in ${IMAGE_JSON}\n`);
  } catch (e) {
    process.stderr.write(`image: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
