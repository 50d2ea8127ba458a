// Assembles pod-gateway's runtime root filesystem from config/image/rootfs.json and a Debian sysroot.
// The Dockerfile runs this (through src/image/assemble.ts) to build the image layer; the rootfs tests
// run the very same code against this machine's packages and then run the roles inside the tree,
// which proves the roles need nothing the image does not hold.
//
// The sysroot is a directory holding a Debian installation ("/" on a Debian build machine, or the
// target architecture's Debian stage copied into the Docker build stage). Nothing in it is ever
// executed: libraries are found by reading ELF DT_NEEDED entries and searching the loader's
// default directories, and symlinks are resolved inside the sysroot (an absolute link target
// means the sysroot's root), so an arm64 tree can be assembled on an amd64 machine.
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, join, posix } from "node:path";
import { readElf, machineName, type ElfInfo } from "./rootfs-elf.ts";

// ---------------------------------------------------------------------------------------------
// Architectures

export type ArchName = "amd64" | "arm64";

export interface ArchInfo {
  /** Docker's TARGETARCH / Debian's architecture name. */
  name: ArchName;
  /** Debian multiarch triplet: the library directory name. */
  triplet: string;
  /** ELF e_machine. */
  machine: number;
  /** PT_INTERP of glibc programs on this architecture. */
  loader: string;
  /** build.ts target name of the glibc build for this architecture. */
  buildTarget: string;
}

export const ARCHES: Record<ArchName, ArchInfo> = {
  amd64: { name: "amd64", triplet: "x86_64-linux-gnu", machine: 62, loader: "/lib64/ld-linux-x86-64.so.2", buildTarget: "linux-x64" },
  arm64: { name: "arm64", triplet: "aarch64-linux-gnu", machine: 183, loader: "/lib/ld-linux-aarch64.so.1", buildTarget: "linux-arm64" },
};

/** Accepts Docker/Debian (amd64, arm64), Node (x64, arm64) and uname (x86_64, aarch64) spellings. */
export function parseArch(s: string): ArchInfo {
  const k = s.trim().toLowerCase();
  if (k === "amd64" || k === "x64" || k === "x86_64") return ARCHES.amd64;
  if (k === "arm64" || k === "aarch64") return ARCHES.arm64;
  throw new Error(`unknown architecture ${JSON.stringify(s)}: expected amd64 or arm64`);
}

/** The architecture this process runs on. */
export function hostArch(): ArchInfo {
  return parseArch(process.arch);
}

// ---------------------------------------------------------------------------------------------
// The manifest (config/image/rootfs.json)

export type Role = "client" | "gateway";

export interface ManifestProgram {
  /** Path in the sysroot (a Debian package path; symlinks are followed). */
  source: string;
  /** Path in the root filesystem. */
  path: string;
  roles: Role[];
  /** Multi-call names: symlinks next to `path`. */
  aliases: string[];
}

export interface ManifestPluginDir {
  source: string;
  path: string;
  roles: Role[];
}

export interface ManifestProfile {
  roles: Role[];
  /** Include the drop-in links (/bin/client_init.sh ...). */
  links: boolean;
  /** Include the shipped configuration files. */
  files: boolean;
  /** Include glibc too (no base image underneath). */
  selfContained: boolean;
}

export interface RootfsManifest {
  debian: { release: string; packages: string[] };
  base: {
    image: string;
    /** Packages whose files the base image already has (left out of the image layer). */
    packages: string[];
    /** What a test tree adds to stand in for the base image. */
    emulate: { dirs: Record<string, number>; files: Record<string, string> };
  };
  binary: string;
  libraryDir: string;
  programs: ManifestProgram[];
  plugins: ManifestPluginDir[];
  links: Record<string, string>;
  /** Root filesystem path → file in the repository (relative to the repository root). */
  files: Record<string, string>;
  dirs: Record<string, number>;
  profiles: Record<string, ManifestProfile>;
}

export const MANIFEST_PATH = join(import.meta.dir, "..", "..", "config", "image", "rootfs.json");
export const REPO_ROOT = join(import.meta.dir, "..", "..");

const ROLES: readonly Role[] = ["client", "gateway"];
/** Stands in for a path already reported as invalid (kept out of the duplicate check). */
const INVALID = "\0invalid";

/** Validates the manifest's shape and reports every problem at once. Pure. */
export function parseRootfsManifest(text: string, file = "config/image/rootfs.json"): RootfsManifest {
  let raw: any;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  const problems: string[] = [];
  const at = (where: string, msg: string) => problems.push(`${where}: ${msg}`);
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  // "comment" keys document the JSON (which has no comments) and are never paths.
  const entriesOf = (o: Record<string, unknown>) => Object.entries(o).filter(([k]) => k !== "comment");
  const strList = (v: unknown, where: string): string[] => {
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string" || x === "")) {
      at(where, "must be a list of non-empty strings");
      return [];
    }
    return v as string[];
  };
  const absPath = (v: unknown, where: string): string => {
    if (typeof v !== "string" || !v.startsWith("/") || v.split("/").includes("..") || v.endsWith("/") || v.includes("//")) {
      at(where, `must be a normalized absolute path (got ${JSON.stringify(v)})`);
      return INVALID;
    }
    return v;
  };
  const roles = (v: unknown, where: string): Role[] => {
    const l = strList(v, where);
    for (const r of l) if (!ROLES.includes(r as Role)) at(where, `unknown role ${JSON.stringify(r)} (client, gateway)`);
    return l as Role[];
  };
  const mode = (v: unknown, where: string): number => {
    if (typeof v !== "string" || !/^[0-7]{3,4}$/.test(v)) {
      at(where, `must be an octal mode string like "0755" (got ${JSON.stringify(v)})`);
      return 0o755;
    }
    return parseInt(v, 8);
  };
  const dirModes = (v: unknown, where: string): Record<string, number> => {
    const out: Record<string, number> = {};
    if (!isObj(v)) {
      at(where, "must be an object of path → mode");
      return out;
    }
    for (const [p, m] of entriesOf(v)) out[absPath(p, `${where}.${p}`)] = mode(m, `${where}.${p}`);
    return out;
  };

  if (!isObj(raw)) throw new Error(`${file}: must be a JSON object`);
  const debian = isObj(raw.debian) ? raw.debian : (at("debian", "missing"), {});
  const base = isObj(raw.base) ? raw.base : (at("base", "missing"), {});
  const emulate = isObj(base.emulate) ? base.emulate : (at("base.emulate", "missing"), {});
  const emulateFiles: Record<string, string> = {};
  if (isObj(emulate.files)) {
    for (const [p, c] of entriesOf(emulate.files)) {
      if (typeof c !== "string") at(`base.emulate.files.${p}`, "must be the file's text");
      else emulateFiles[absPath(p, `base.emulate.files.${p}`)] = c;
    }
  } else at("base.emulate.files", "must be an object of path → text");

  const programs: ManifestProgram[] = [];
  if (!Array.isArray(raw.programs)) at("programs", "must be a list");
  else
    raw.programs.forEach((p: any, i: number) => {
      const w = `programs[${i}]`;
      if (!isObj(p)) return at(w, "must be an object");
      const aliases = p.aliases === undefined ? [] : strList(p.aliases, `${w}.aliases`);
      for (const a of aliases) if (a.includes("/")) at(`${w}.aliases`, `${JSON.stringify(a)} must be a plain name`);
      programs.push({ source: absPath(p.source, `${w}.source`), path: absPath(p.path, `${w}.path`), roles: roles(p.roles, `${w}.roles`), aliases });
    });

  const plugins: ManifestPluginDir[] = [];
  if (raw.plugins !== undefined && !Array.isArray(raw.plugins)) at("plugins", "must be a list");
  else
    (raw.plugins ?? []).forEach((p: any, i: number) => {
      const w = `plugins[${i}]`;
      if (!isObj(p)) return at(w, "must be an object");
      plugins.push({ source: absPath(p.source, `${w}.source`), path: absPath(p.path, `${w}.path`), roles: roles(p.roles, `${w}.roles`) });
    });

  const links: Record<string, string> = {};
  if (!isObj(raw.links)) at("links", "must be an object of path → target");
  else for (const [p, t] of entriesOf(raw.links)) links[absPath(p, `links.${p}`)] = absPath(t, `links.${p} target`);

  const files: Record<string, string> = {};
  if (!isObj(raw.files)) at("files", "must be an object of path → repository file");
  else
    for (const [p, s] of entriesOf(raw.files)) {
      if (typeof s !== "string" || s.startsWith("/") || s.split("/").includes("..")) at(`files.${p}`, "must name a file inside the repository");
      else files[absPath(p, `files.${p}`)] = s;
    }

  const profiles: Record<string, ManifestProfile> = {};
  if (!isObj(raw.profiles)) at("profiles", "must be an object");
  else
    for (const [name, p] of entriesOf(raw.profiles)) {
      const w = `profiles.${name}`;
      if (!isObj(p)) {
        at(w, "must be an object");
        continue;
      }
      for (const k of ["links", "files", "selfContained"] as const) if (typeof p[k] !== "boolean") at(`${w}.${k}`, "must be true or false");
      profiles[name] = { roles: roles(p.roles, `${w}.roles`), links: p.links === true, files: p.files === true, selfContained: p.selfContained === true };
    }

  const m: RootfsManifest = {
    debian: { release: typeof debian.release === "string" ? debian.release : (at("debian.release", "must be a string"), ""), packages: strList(debian.packages, "debian.packages") },
    base: {
      image: typeof base.image === "string" ? base.image : (at("base.image", "must be a string"), ""),
      packages: strList(base.packages, "base.packages"),
      emulate: { dirs: dirModes(emulate.dirs ?? {}, "base.emulate.dirs"), files: emulateFiles },
    },
    binary: absPath(raw.binary, "binary"),
    libraryDir: absPath(raw.libraryDir, "libraryDir"),
    programs,
    plugins,
    links,
    files,
    dirs: dirModes(raw.dirs ?? {}, "dirs"),
    profiles,
  };

  // One path, one owner: two entries writing the same path would make the tree depend on order.
  const seen = new Map<string, string>();
  const claim = (p: string, who: string) => {
    if (p.includes(INVALID)) return;
    const prev = seen.get(p);
    if (prev) at(who, `path ${p} is also written by ${prev}`);
    else seen.set(p, who);
  };
  claim(m.binary, "binary");
  m.programs.forEach((p, i) => {
    claim(p.path, `programs[${i}]`);
    for (const a of p.aliases) claim(posix.join(posix.dirname(p.path), a), `programs[${i}].aliases`);
  });
  for (const p of Object.keys(m.links)) claim(p, `links.${p}`);
  for (const p of Object.keys(m.files)) claim(p, `files.${p}`);
  for (const p of Object.keys(m.base.emulate.files)) claim(p, `base.emulate.files.${p}`);

  if (problems.length) throw new Error(`${file}: ${problems.length === 1 ? problems[0] : `${problems.length} problems:\n  ${problems.join("\n  ")}`}`);
  return m;
}

export function readRootfsManifest(path = MANIFEST_PATH): RootfsManifest {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`reading root filesystem manifest ${path}: ${(e as Error).message}`);
  }
  return parseRootfsManifest(text, path);
}

// ---------------------------------------------------------------------------------------------
// The plan: every path of the tree and where its bytes come from

export type RootfsEntry =
  | { kind: "dir"; path: string; mode: number }
  | { kind: "file"; path: string; source: string; mode: number; why: string }
  | { kind: "text"; path: string; content: string; mode: number; why: string }
  | { kind: "symlink"; path: string; target: string; why: string };

export interface RootfsLibrary {
  /** The name programs ask for (DT_NEEDED), which is also its file name in the tree. */
  name: string;
  /** Real file on the build machine. */
  source: string;
  /** Where it lands in the tree; undefined when the base image provides it. */
  path?: string;
  /** Provided by the base image (glibc) rather than the image layer. */
  fromBase: boolean;
  neededBy: string[];
}

export interface RootfsPlan {
  arch: ArchInfo;
  profile: string;
  withBase: boolean;
  entries: RootfsEntry[];
  libraries: RootfsLibrary[];
}

export interface RootfsOptions {
  manifest: RootfsManifest;
  /** Directory holding the Debian installation the tools and libraries come from. */
  sysroot: string;
  arch: ArchInfo;
  /** Profile name in the manifest: "image" or "client-copy". */
  profile: string;
  /** The compiled pod-gateway for this architecture (dist/pod-gateway-linux-x64 ...). */
  binary: string;
  /**
   * Add what the base image provides (glibc at its package paths, the loader, /etc/passwd ...),
   * for a tree that is run on its own (the tests). The Docker build leaves it off.
   */
  withBase?: boolean;
  /** Where the manifest's `files` sources are (default: the repository root). */
  repoRoot?: string;
}

const MAX_SYMLINKS = 40; // as the kernel's limit for path resolution

/**
 * Resolves `path` inside `root` the way a chroot would: absolute symlink targets start again at
 * `root`. Returns the canonical path inside the root, or undefined when something is missing.
 */
export function resolveInRoot(root: string, path: string): string | undefined {
  let pending = path.split("/").filter((c) => c !== "" && c !== ".");
  let done: string[] = [];
  let links = 0;
  while (pending.length) {
    const c = pending.shift()!;
    if (c === "..") {
      done.pop();
      continue;
    }
    const here = "/" + [...done, c].join("/");
    let st;
    try {
      st = lstatSync(join(root, here));
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw new Error(`resolving ${path} in ${root}: too many levels of symbolic links`);
      const t = readlinkSync(join(root, here));
      if (t.startsWith("/")) done = [];
      pending = [...t.split("/").filter((x) => x !== "" && x !== "."), ...pending];
    } else {
      done.push(c);
    }
  }
  return "/" + done.join("/");
}

function hostPath(sysroot: string, p: string): string {
  return sysroot === "/" ? p : join(sysroot, p);
}

function subst(p: string, arch: ArchInfo): string {
  return p.replaceAll("{triplet}", arch.triplet);
}

/** Installed packages from dpkg's status file (Status "install ok installed"). */
export function parseDpkgStatus(text: string): Map<string, { arch: string; version: string }> {
  const out = new Map<string, { arch: string; version: string }>();
  for (const stanza of text.split(/\n\s*\n/)) {
    const f: Record<string, string> = {};
    for (const line of stanza.split("\n")) {
      const m = /^([A-Za-z][A-Za-z0-9-]*):\s*(.*)$/.exec(line);
      if (m) f[m[1]!] = m[2]!;
    }
    if (f.Package && f.Status === "install ok installed") {
      const key = f.Architecture && f.Architecture !== "all" ? `${f.Package}:${f.Architecture}` : f.Package;
      const v = { arch: f.Architecture ?? "", version: f.Version ?? "" };
      out.set(key, v);
      if (!out.has(f.Package)) out.set(f.Package, v);
    }
  }
  return out;
}

function readBasePackageFiles(sysroot: string, packages: string[], arch: ArchInfo): Map<string, string> {
  // basename → package path, for every file the base image's packages install.
  const out = new Map<string, string>();
  for (const pkg of packages) {
    const candidates = [`/var/lib/dpkg/info/${pkg}:${arch.name}.list`, `/var/lib/dpkg/info/${pkg}.list`];
    const list = candidates.map((c) => hostPath(sysroot, c)).find((c) => existsSync(c));
    if (!list) throw new Error(`reading the file list of base package ${pkg} in sysroot ${sysroot}: none of ${candidates.join(", ")} exists`);
    for (const line of readFileSync(list, "utf8").split("\n")) {
      const p = line.trim();
      if (p && !out.has(basename(p))) out.set(basename(p), p);
    }
  }
  return out;
}

function checkPackages(sysroot: string, m: RootfsManifest, arch: ArchInfo): void {
  const statusFile = hostPath(sysroot, "/var/lib/dpkg/status");
  let status: Map<string, unknown>;
  try {
    status = parseDpkgStatus(readFileSync(statusFile, "utf8"));
  } catch (e) {
    throw new Error(`reading installed Debian packages (${statusFile}): ${(e as Error).message}`);
  }
  const missing = [...m.debian.packages, ...m.base.packages].filter((p) => !status.has(p) && !status.has(`${p}:${arch.name}`));
  if (missing.length) {
    throw new Error(`Debian packages missing in sysroot ${sysroot}: ${missing.join(", ")} (apt-get install --no-install-recommends ${missing.join(" ")})`);
  }
}

/**
 * Works out every entry of the tree. Reads the sysroot (ELF headers, symlinks, dpkg lists) but
 * writes nothing. Throws naming the program or library that cannot be found.
 */
export function readRootfsPlan(opts: RootfsOptions): RootfsPlan {
  const { manifest: m, sysroot, arch } = opts;
  const withBase = opts.withBase ?? false;
  const repoRoot = opts.repoRoot ?? REPO_ROOT;
  const profile = m.profiles[opts.profile];
  if (!profile) throw new Error(`unknown root filesystem profile ${JSON.stringify(opts.profile)} (have: ${Object.keys(m.profiles).join(", ")})`);
  if (!existsSync(sysroot)) throw new Error(`sysroot ${sysroot} does not exist`);

  const checkArch = (who: string, file: string): ElfInfo => {
    const elf = readElf(file);
    if (elf.machine !== arch.machine || elf.bits !== 64) {
      throw new Error(`${who} (${file}) is ${machineName(elf.machine)} ${elf.bits}-bit, not ${machineName(arch.machine)}: wrong build or sysroot for ${arch.name}`);
    }
    return elf;
  };

  // The binary itself, first: the wrong build is the likeliest mistake.
  if (!existsSync(opts.binary)) throw new Error(`compiled binary ${opts.binary} does not exist: run build.ts first`);
  const binElf = checkArch("pod-gateway binary", opts.binary);
  if (binElf.interp !== arch.loader) throw new Error(`pod-gateway binary ${opts.binary} asks for loader ${binElf.interp ?? "(none)"}, not ${arch.loader}: is it the musl build?`);
  checkPackages(sysroot, m, arch);

  const wanted = (roles: Role[]) => roles.some((r) => profile.roles.includes(r));
  const entries: RootfsEntry[] = [];
  const libDir = subst(m.libraryDir, arch);
  const baseFiles = readBasePackageFiles(sysroot, m.base.packages, arch);
  const loaderName = basename(arch.loader);

  // ELF objects whose DT_NEEDED we follow: [name in the tree, host file, info].
  const queue: { who: string; file: string; dirInSysroot?: string; elf: ElfInfo }[] = [];

  entries.push({ kind: "file", path: m.binary, source: opts.binary, mode: 0o755, why: "pod-gateway" });
  queue.push({ who: m.binary, file: opts.binary, elf: binElf });

  // Programs and their multi-call names.
  for (const p of m.programs) {
    if (!wanted(p.roles)) continue;
    const src = subst(p.source, arch);
    const real = resolveInRoot(sysroot, src);
    if (!real) throw new Error(`program ${src} not found in sysroot ${sysroot} (for ${p.path})`);
    const file = hostPath(sysroot, real);
    const elf = checkArch(`program ${src}`, file);
    entries.push({ kind: "file", path: p.path, source: file, mode: 0o755, why: `from ${src}` });
    queue.push({ who: p.path, file, dirInSysroot: posix.dirname(real), elf });
    for (const a of p.aliases) entries.push({ kind: "symlink", path: posix.join(posix.dirname(p.path), a), target: posix.basename(p.path), why: `multi-call name of ${posix.basename(p.path)}` });
  }

  // Plugin directories (dlopen'ed at run time).
  for (const d of m.plugins) {
    if (!wanted(d.roles)) continue;
    const src = subst(d.source, arch);
    const dest = subst(d.path, arch);
    const real = resolveInRoot(sysroot, src);
    if (!real || !statSync(hostPath(sysroot, real)).isDirectory()) throw new Error(`plugin directory ${src} not found in sysroot ${sysroot}`);
    const dirHost = hostPath(sysroot, real);
    for (const name of readdirSync(dirHost).sort()) {
      if (!name.endsWith(".so")) continue;
      const st = lstatSync(join(dirHost, name));
      if (st.isSymbolicLink()) {
        // Keep a link to a sibling a link (libxt_NOTRACK.so → libxt_CT.so); copy anything else.
        const t = readlinkSync(join(dirHost, name));
        if (!t.includes("/") && existsSync(join(dirHost, t))) {
          entries.push({ kind: "symlink", path: posix.join(dest, name), target: t, why: `plugin alias in ${src}` });
          continue;
        }
      }
      const fileReal = resolveInRoot(sysroot, posix.join(real, name));
      if (!fileReal) throw new Error(`plugin ${src}/${name} is a dangling link in sysroot ${sysroot}`);
      const file = hostPath(sysroot, fileReal);
      if (!statSync(file).isFile()) continue;
      const elf = checkArch(`plugin ${src}/${name}`, file);
      entries.push({ kind: "file", path: posix.join(dest, name), source: file, mode: 0o644, why: `plugin from ${src}` });
      queue.push({ who: posix.join(dest, name), file, dirInSysroot: real, elf });
    }
  }

  // Libraries: breadth-first over DT_NEEDED, searched like the loader does without a cache:
  // RPATH/RUNPATH of the requester, then the default directories.
  const systemDirs = [`/lib/${arch.triplet}`, `/usr/lib/${arch.triplet}`, "/lib", "/usr/lib"];
  const libs = new Map<string, RootfsLibrary>();
  for (let i = 0; i < queue.length; i++) {
    const obj = queue[i]!;
    for (const need of obj.elf.needed) {
      // The loader satisfies requests for itself (glibc's libc.so.6 names it; so does Bun's arm64 build).
      if (need === loaderName) continue;
      const known = libs.get(need);
      if (known) {
        if (!known.neededBy.includes(obj.who)) known.neededBy.push(obj.who);
        continue;
      }
      const origin = obj.dirInSysroot ?? "/";
      const dirs = [...obj.elf.rpath, ...obj.elf.runpath].map((d) => d.replaceAll("$ORIGIN", origin).replaceAll("${ORIGIN}", origin)).concat(systemDirs);
      let found: { real: string; elf: ElfInfo } | undefined;
      for (const d of dirs) {
        const real = resolveInRoot(sysroot, posix.join(d, need));
        if (!real) continue;
        const file = hostPath(sysroot, real);
        if (!statSync(file).isFile()) continue;
        let elf: ElfInfo;
        try {
          elf = readElf(file);
        } catch {
          continue; // a linker script or junk with the same name: the loader skips it too
        }
        if (elf.machine !== arch.machine || elf.bits !== 64) continue; // another architecture's copy
        found = { real, elf };
        break;
      }
      if (!found) throw new Error(`library ${need} (needed by ${obj.who}) not found in sysroot ${sysroot} under ${dirs.join(", ")}`);
      const fromBase = baseFiles.has(need);
      const file = hostPath(sysroot, found.real);
      let path: string | undefined;
      if (!fromBase || profile.selfContained) path = posix.join(libDir, need);
      else if (withBase) path = baseFiles.get(need)!; // where the base image has it (glibc's package path)
      const lib: RootfsLibrary = { name: need, source: file, path, fromBase, neededBy: [obj.who] };
      libs.set(need, lib);
      if (path) entries.push({ kind: "file", path, source: file, mode: 0o755, why: `library ${fromBase ? "(base) " : ""}needed by ${obj.who}` });
      queue.push({ who: need, file, dirInSysroot: posix.dirname(found.real), elf: found.elf });
    }
  }

  // The loader itself, at the path the kernel opens (PT_INTERP), when nothing underneath has it.
  if (profile.selfContained || withBase) {
    const real = resolveInRoot(sysroot, arch.loader);
    if (!real) throw new Error(`dynamic loader ${arch.loader} not found in sysroot ${sysroot}`);
    entries.push({ kind: "file", path: arch.loader, source: hostPath(sysroot, real), mode: 0o755, why: "dynamic loader (PT_INTERP)" });
  }

  if (profile.links) for (const [p, t] of Object.entries(m.links)) entries.push({ kind: "symlink", path: p, target: t, why: "drop-in name" });
  if (profile.files) {
    for (const [p, s] of Object.entries(m.files)) {
      const src = join(repoRoot, s);
      if (!existsSync(src)) throw new Error(`configuration file ${s} (for ${p}) not found under ${repoRoot}`);
      entries.push({ kind: "file", path: p, source: src, mode: 0o644, why: `shipped ${s}` });
    }
  }
  for (const [p, mode] of Object.entries(m.dirs)) entries.push({ kind: "dir", path: p, mode });
  if (withBase && !profile.selfContained) {
    for (const [p, mode] of Object.entries(m.base.emulate.dirs)) entries.push({ kind: "dir", path: p, mode });
    for (const [p, content] of Object.entries(m.base.emulate.files)) entries.push({ kind: "text", path: p, content, mode: 0o644, why: `as ${m.base.image} has it` });
  }

  // A path twice (a library named like a program, two plugin dirs overlapping) is a manifest bug.
  const byPath = new Map<string, RootfsEntry>();
  for (const e of entries) {
    const prev = byPath.get(e.path);
    if (prev && !(prev.kind === "file" && e.kind === "file" && prev.source === e.source)) {
      throw new Error(`root filesystem path ${e.path} planned twice (${describeEntry(prev)}; ${describeEntry(e)})`);
    }
    byPath.set(e.path, e);
  }
  const sorted = [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { arch, profile: opts.profile, withBase, entries: sorted, libraries: [...libs.values()].sort((a, b) => (a.name < b.name ? -1 : 1)) };
}

function describeEntry(e: RootfsEntry): string {
  if (e.kind === "file") return `file from ${e.source}`;
  if (e.kind === "symlink") return `link to ${e.target}`;
  if (e.kind === "text") return "text";
  return "directory";
}

/** One line per entry: the listing printed by src/image/assemble.ts and compared by tests. Pure. */
export function renderRootfsListing(plan: RootfsPlan): string {
  return plan.entries
    .map((e) => {
      if (e.kind === "symlink") return `${e.path} -> ${e.target}`;
      if (e.kind === "dir") return `${e.path}/ (${e.mode.toString(8).padStart(4, "0")})`;
      return `${e.path} (${e.mode.toString(8).padStart(4, "0")}) ${e.why}`;
    })
    .join("\n");
}

// ---------------------------------------------------------------------------------------------
// Writing the tree

function ensureDir(out: string, p: string): void {
  // Real directories only: a directory that is a symlink in our tree would clash with the base
  // image's directory of the same name when the Dockerfile copies the tree over it.
  const parts = p.split("/").filter(Boolean);
  let cur = out;
  for (const c of parts) {
    cur = join(cur, c);
    let st;
    try {
      st = lstatSync(cur);
    } catch {
      mkdirSync(cur, { mode: 0o755 });
      chmodSync(cur, 0o755);
      continue;
    }
    if (!st.isDirectory()) throw new Error(`writing the root filesystem: ${cur} exists and is not a directory`);
  }
}

/** Writes the planned tree into `out` (which must be missing or empty). */
export function applyRootfsPlan(plan: RootfsPlan, out: string): void {
  if (existsSync(out) && readdirSync(out).length > 0) throw new Error(`writing the root filesystem: ${out} is not empty`);
  mkdirSync(out, { recursive: true, mode: 0o755 });
  chmodSync(out, 0o755);
  for (const e of plan.entries) {
    const dest = join(out, e.path);
    try {
      if (e.kind === "dir") {
        ensureDir(out, e.path);
        chmodSync(dest, e.mode);
        continue;
      }
      ensureDir(out, posix.dirname(e.path));
      if (e.kind === "symlink") symlinkSync(e.target, dest);
      else if (e.kind === "text") writeFileSync(dest, e.content, { mode: e.mode });
      else copyFileSync(e.source, dest);
      if (e.kind !== "symlink") chmodSync(dest, e.mode);
    } catch (err) {
      throw new Error(`writing ${e.path} into ${out}: ${(err as Error).message}`);
    }
  }
}

/** Plans and writes in one go. */
export function assembleRootfs(opts: RootfsOptions & { out: string }): RootfsPlan {
  const plan = readRootfsPlan(opts);
  applyRootfsPlan(plan, opts.out);
  return plan;
}

/** Apparent size of a tree: regular files' bytes (links and directories not counted). */
export function measureTree(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        files++;
        bytes += st.size;
      }
    }
  };
  walk(dir);
  return { files, bytes };
}

