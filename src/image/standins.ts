// Local stand-ins for the Dockerfile's three base images, for machines that cannot reach their
// registries (`npm run image -- --local-bases`). The Dockerfile is not changed: its FROM lines
// are build arguments, and the stand-ins are passed as those arguments.
//   DEBIAN_IMAGE  debian:bookworm-slim            → debootstrap --variant=minbase from the Debian mirror
//   NODE_IMAGE    node:22-bookworm-slim           → that plus Debian's nodejs and npm
//   BASE_IMAGE    gcr.io/distroless/base-debian12 → the manifest's emulation of it (config/image/rootfs.json:
//                 glibc's package files at their package paths, /etc/passwd, /etc/group, /tmp)
// The debootstrap tree is cached (it takes about a minute); images are built only when missing
// from podman's store.
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, posix } from "node:path";
import { which } from "../sys/exec.ts";
import { resolveInRoot, type ArchInfo, type RootfsManifest } from "./rootfs.ts";
import { imageExists, podman, podmanStreamed, type Podman } from "./podman.ts";

export interface StandIns {
  DEBIAN_IMAGE: string;
  NODE_IMAGE: string;
  BASE_IMAGE: string;
}

/** Names of the stand-ins in podman's store: clearly not the real images. Pure. */
export function standInNames(m: RootfsManifest, arch: ArchInfo, nodeRecipe = renderNodeStandIn("", extraCaFiles().length > 0)): StandIns {
  const rel = m.debian.release;
  // The node stand-in's tag carries a hash of its recipe: a changed recipe builds a new one
  // (reusing podman's cached apt layer), never silently the old image.
  const recipe = new Bun.CryptoHasher("sha256").update(nodeRecipe).update(extraCaFiles().map((f) => readFileSync(join(EXTRA_CA_DIR, f), "utf8")).join("")).digest("hex").slice(0, 10);
  return {
    DEBIAN_IMAGE: `localhost/pod-gateway-standin/debian:${rel}-slim-${arch.name}`,
    NODE_IMAGE: `localhost/pod-gateway-standin/node:debian-${rel}-${arch.name}-${recipe}`,
    BASE_IMAGE: `localhost/pod-gateway-standin/distroless-base:${rel}-${arch.name}`,
  };
}

/**
 * Local CA certificates of this machine (Debian's place for them). On a machine whose egress goes
 * through a TLS-inspecting proxy, `npm ci` and Bun inside the build reach the npm registry only
 * when the node stand-in trusts the same CAs the host does. Real bases never get them.
 */
const EXTRA_CA_DIR = "/usr/local/share/ca-certificates";

function extraCaFiles(): string[] {
  if (!existsSync(EXTRA_CA_DIR)) return [];
  return [...new Bun.Glob("*.crt").scanSync({ cwd: EXTRA_CA_DIR })].sort();
}

/** Containerfile of the node stand-in (FROM is filled in by the caller). Pure. */
export function renderNodeStandIn(debianImage: string, withExtraCa: boolean): string {
  const lines = [
    `FROM ${debianImage}`,
    "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm ca-certificates && rm -rf /var/lib/apt/lists/*",
  ];
  if (withExtraCa) {
    lines.push(
      "COPY extra-ca/ /usr/local/share/ca-certificates/",
      "RUN update-ca-certificates",
      // npm and Bun read these (Debian's node already uses the system store; this makes sure).
      "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm_config_cafile=/etc/ssl/certs/ca-certificates.crt",
    );
  }
  return lines.join("\n") + "\n";
}

/** Where the debootstrap tree is kept between runs. */
export function cacheDir(env: Record<string, string | undefined> = process.env): string {
  return env.POD_GATEWAY_IMAGE_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "pod-gateway", "image");
}

/**
 * The Debian mirror this machine's apt uses for `release`, from deb822 .sources files or
 * one-line .list files. Pure over their texts.
 */
export function parseAptMirror(files: { name: string; text: string }[], release: string): string | undefined {
  for (const f of files) {
    if (f.name.endsWith(".sources")) {
      for (const stanza of f.text.split(/\n\s*\n/)) {
        const field = (k: string) => new RegExp(`^${k}:\\s*(.+)$`, "mi").exec(stanza)?.[1]?.trim();
        const types = field("Types")?.split(/\s+/) ?? [];
        const suites = field("Suites")?.split(/\s+/) ?? [];
        const uris = field("URIs")?.split(/\s+/) ?? [];
        if (/^Enabled:\s*no/im.test(stanza)) continue;
        if (types.includes("deb") && suites.includes(release) && uris[0]) return uris[0];
      }
    } else {
      for (const line of f.text.split("\n")) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m && m[2] === release) return m[1];
      }
    }
  }
  return undefined;
}

function readAptMirror(release: string): string {
  const files: { name: string; text: string }[] = [];
  const dir = "/etc/apt/sources.list.d";
  if (existsSync(dir)) {
    for (const name of new Bun.Glob("*.{sources,list}").scanSync({ cwd: dir })) files.push({ name, text: readFileSync(join(dir, name), "utf8") });
  }
  if (existsSync("/etc/apt/sources.list")) files.push({ name: "sources.list", text: readFileSync("/etc/apt/sources.list", "utf8") });
  const mirror = parseAptMirror(files.sort((a, b) => (a.name < b.name ? -1 : 1)), release);
  if (!mirror) throw new Error(`no Debian mirror for ${release} in /etc/apt/sources.list.d or /etc/apt/sources.list: debootstrap needs one`);
  return mirror;
}

function run(argv: string[], what: string, opts: { stdout?: "inherit" | "pipe" } = {}): string {
  const r = Bun.spawnSync(argv, { stdout: opts.stdout ?? "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${what}: ${argv.join(" ")} exited ${r.exitCode}: ${r.stderr.toString().trim().split("\n").slice(-5).join("\n")}`);
  return opts.stdout === "inherit" ? "" : (r.stdout?.toString() ?? "");
}

/** The cached debootstrap tree for the release and architecture; made when missing. */
export function debootstrapTree(m: RootfsManifest, arch: ArchInfo, log: (l: string) => void): string {
  const dir = join(cacheDir(), `debootstrap-${m.debian.release}-${arch.name}`);
  const done = `${dir}.complete`;
  if (existsSync(done) && existsSync(dir)) {
    log(`debootstrap tree: cached in ${dir}`);
    return dir;
  }
  const debootstrap = which("debootstrap");
  if (!debootstrap) throw new Error("debootstrap is not installed (apt-get install -y debootstrap): --local-bases builds debian:bookworm-slim with it");
  const mirror = readAptMirror(m.debian.release);
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(cacheDir(), { recursive: true });
  const t0 = performance.now();
  log(`debootstrap --variant=minbase --arch ${arch.name} ${m.debian.release} from ${mirror} (about a minute, cached afterwards)`);
  try {
    run([debootstrap, "--variant=minbase", `--arch=${arch.name}`, m.debian.release, tmp, mirror], "debootstrap");
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  // apt inside the stand-in uses what this machine's apt uses (suites, updates, security).
  for (const f of ["/etc/apt/sources.list.d/debian.sources"]) if (existsSync(f)) copyFileSync(f, join(tmp, f));
  if (existsSync(join(tmp, "etc/apt/sources.list.d/debian.sources"))) rmSync(join(tmp, "etc/apt/sources.list"), { force: true });
  renameSync(tmp, dir);
  writeFileSync(done, `${new Date().toISOString()} ${mirror}\n`);
  log(`debootstrap tree: ${dir} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  return dir;
}

async function importTree(p: Podman, dir: string, ref: string, changes: string[]): Promise<void> {
  // tar of the tree, numeric owners (the tree's uids are the image's uids), into podman import.
  const tar = Bun.spawn(["tar", "--numeric-owner", "--sort=name", "-C", dir, "-cf", "-", "."], { stdout: "pipe", stderr: "pipe" });
  const bytes = new Uint8Array(await new Response(tar.stdout).arrayBuffer());
  const code = await tar.exited;
  if (code !== 0) throw new Error(`tar of ${dir} exited ${code}: ${(await new Response(tar.stderr).text()).trim()}`);
  await podman(p, ["import", ...changes.flatMap((c) => ["--change", c]), "-", ref], { stdin: bytes, what: `importing ${ref}` });
}

/** The distroless base's emulation as a list of entries, read from the sysroot (glibc's package list). */
export interface BaseEntry {
  path: string;
  kind: "dir" | "file" | "symlink" | "text";
  /** file: host source; symlink: target; text: content. */
  value: string;
  mode: number;
}

/**
 * The emulated distroless base: every path the base's packages (libc6) install, taken from the
 * sysroot at its package path (directories real, not the sysroot's merged-/usr links, as
 * distroless lays them out), plus the manifest's emulated dirs and files.
 */
export function readBaseEmulation(m: RootfsManifest, sysroot: string, arch: ArchInfo): BaseEntry[] {
  const out = new Map<string, BaseEntry>();
  for (const pkg of m.base.packages) {
    const list = [`${pkg}:${arch.name}.list`, `${pkg}.list`].map((n) => join(sysroot, "var/lib/dpkg/info", n)).find((f) => existsSync(f));
    if (!list) throw new Error(`base package ${pkg} is not installed in ${sysroot} (no dpkg file list)`);
    for (const raw of readFileSync(list, "utf8").split("\n")) {
      const p = raw.trim();
      if (!p || p === "/." || out.has(p)) continue;
      const parent = resolveInRoot(sysroot, posix.dirname(p));
      if (!parent) throw new Error(`${p} (of ${pkg}): its directory is missing in ${sysroot}`);
      const host = join(sysroot, parent, posix.basename(p));
      let st;
      try {
        st = lstatSync(host);
      } catch {
        continue; // a path the package lists but dpkg path-exclusion left out (docs in minbase)
      }
      if (st.isSymbolicLink()) {
        // merged-/usr aliases (/lib → usr/lib) become real directories, as in distroless.
        const real = resolveInRoot(sysroot, p);
        if (real && statSync(join(sysroot, real)).isDirectory()) out.set(p, { path: p, kind: "dir", value: "", mode: 0o755 });
        else out.set(p, { path: p, kind: "symlink", value: readlinkSync(host), mode: 0o777 });
      }
      else if (st.isDirectory()) out.set(p, { path: p, kind: "dir", value: "", mode: st.mode & 0o7777 });
      else if (st.isFile()) out.set(p, { path: p, kind: "file", value: host, mode: st.mode & 0o7777 });
    }
  }
  for (const [p, mode] of Object.entries(m.base.emulate.dirs)) out.set(p, { path: p, kind: "dir", value: "", mode });
  for (const [p, text] of Object.entries(m.base.emulate.files)) out.set(p, { path: p, kind: "text", value: text, mode: 0o644 });
  return [...out.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
}

function writeBaseEmulation(entries: BaseEntry[], out: string): void {
  mkdirSync(out, { recursive: true });
  for (const e of entries) {
    const dest = join(out, e.path);
    mkdirSync(posix.dirname(dest), { recursive: true });
    if (e.kind === "dir") {
      mkdirSync(dest, { recursive: true });
      chmodSync(dest, e.mode);
    } else if (e.kind === "symlink") symlinkSync(e.value, dest);
    else {
      if (e.kind === "file") copyFileSync(e.value, dest);
      else writeFileSync(dest, e.value);
      chmodSync(dest, e.mode);
    }
  }
}

/** The PATH distroless images set in their config. */
export const DISTROLESS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Makes the three stand-ins that are missing from podman's store; returns their names. */
export async function ensureStandIns(p: Podman, m: RootfsManifest, arch: ArchInfo, log: (l: string) => void, work: string): Promise<StandIns> {
  const names = standInNames(m, arch);
  const need = { debian: !(await imageExists(p, names.DEBIAN_IMAGE)), node: !(await imageExists(p, names.NODE_IMAGE)), base: !(await imageExists(p, names.BASE_IMAGE)) };
  const tree = need.debian || need.base ? debootstrapTree(m, arch, log) : "";
  if (need.debian) {
    const t0 = performance.now();
    await importTree(p, tree, names.DEBIAN_IMAGE, [`ENV PATH=${DISTROLESS_PATH}`, 'CMD ["bash"]']);
    log(`stand-in ${names.DEBIAN_IMAGE}: imported (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  } else log(`stand-in ${names.DEBIAN_IMAGE}: in podman's store`);
  if (need.node) {
    const t0 = performance.now();
    const dir = join(work, "node-standin");
    mkdirSync(join(dir, "extra-ca"), { recursive: true });
    for (const f of extraCaFiles()) copyFileSync(join(EXTRA_CA_DIR, f), join(dir, "extra-ca", f));
    writeFileSync(join(dir, "Containerfile"), renderNodeStandIn(names.DEBIAN_IMAGE, extraCaFiles().length > 0));
    await podmanStreamed(p, ["build", "--network", "host", "--pull=never", "--platform", `linux/${arch.name}`, "-t", names.NODE_IMAGE, "-f", join(dir, "Containerfile"), dir], `building ${names.NODE_IMAGE}`);
    log(`stand-in ${names.NODE_IMAGE}: built (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  } else log(`stand-in ${names.NODE_IMAGE}: in podman's store`);
  if (need.base) {
    const dir = join(work, "base-standin");
    rmSync(dir, { recursive: true, force: true });
    writeBaseEmulation(readBaseEmulation(m, tree, arch), dir);
    await importTree(p, dir, names.BASE_IMAGE, [`ENV PATH=${DISTROLESS_PATH}`]);
    rmSync(dir, { recursive: true, force: true });
    log(`stand-in ${names.BASE_IMAGE}: imported (${m.base.packages.join(", ")} at their package paths, plus ${Object.keys(m.base.emulate.files).join(", ")})`);
  } else log(`stand-in ${names.BASE_IMAGE}: in podman's store`);
  return names;
}
