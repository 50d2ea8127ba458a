// Compiles src/main.ts into one executable per target and proves each one is what its name says.
//   bun build.ts                     dist/pod-gateway for this machine (checked: it runs `version`)
//   bun build.ts --all               plus dist/pod-gateway-linux-{x64,x64-musl,arm64} and dist/SHA256SUMS
//   bun build.ts --target arm64      only dist/pod-gateway-linux-arm64 (+ SHA256SUMS); the Dockerfile
//                                    passes its TARGETARCH (amd64, arm64) or a target name
//   --outdir DIR                     write somewhere else than dist/ (tests build into a temp dir)
// The version (package.json + git commit, or $POD_GATEWAY_COMMIT when there is no .git, as in a
// Docker build) is compiled in. The binary does not read .env or bunfig.toml from its working
// directory (not acceptable for a privileged network tool).
import { createHash } from "node:crypto";
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { machineName, readElf, type ElfInfo } from "./src/image/rootfs-elf.ts";

const root = import.meta.dir;
const pkg = (await Bun.file(join(root, "package.json")).json()) as { version: string };

export function gitCommit(env: Record<string, string | undefined> = process.env): string {
  if (env.POD_GATEWAY_COMMIT !== undefined) return env.POD_GATEWAY_COMMIT.trim();
  try {
    const r = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: root, stderr: "ignore" });
    return r.exitCode === 0 ? r.stdout.toString().trim() : "";
  } catch {
    return "";
  }
}

export const targets = {
  "linux-x64": "bun-linux-x64",
  "linux-x64-musl": "bun-linux-x64-musl",
  "linux-arm64": "bun-linux-arm64",
} as const;

export type TargetName = keyof typeof targets;

/** What each build must look like in its ELF header (e_machine, PT_INTERP). */
export const expectedElf: Record<TargetName, { machine: number; interp: string; needs: string[] }> = {
  "linux-x64": { machine: 62, interp: "/lib64/ld-linux-x86-64.so.2", needs: ["libc.so.6"] },
  // Alpine-style: musl's loader, and Bun's runtime is C++ linked against the system libstdc++.
  "linux-x64-musl": { machine: 62, interp: "/lib/ld-musl-x86_64.so.1", needs: ["libstdc++.so.6"] },
  "linux-arm64": { machine: 183, interp: "/lib/ld-linux-aarch64.so.1", needs: ["libc.so.6"] },
};

/** Accepts target names and the architecture names Docker's TARGETARCH uses. */
export function parseTarget(s: string): TargetName {
  const k = s.trim().toLowerCase();
  if (k in targets) return k as TargetName;
  if (k === "amd64" || k === "x64" || k === "x86_64") return "linux-x64";
  if (k === "arm64" || k === "aarch64") return "linux-arm64";
  if (k === "x64-musl" || k === "musl") return "linux-x64-musl";
  throw new Error(`unknown build target ${JSON.stringify(s)}: expected one of ${Object.keys(targets).join(", ")}, amd64 or arm64`);
}

/** The glibc target of the machine running this script (the host build must run here). */
export function hostTarget(): TargetName {
  return parseTarget(process.arch);
}

/**
 * Checks a compiled binary's ELF header against its target and that the program is embedded
 * (Bun keeps it in the `.bun` section; `strip` would remove it). Returns the header.
 */
export function verifyBinary(file: string, target: TargetName): ElfInfo {
  const elf = readElf(file);
  const want = expectedElf[target];
  const problems: string[] = [];
  if (elf.bits !== 64 || elf.endian !== "little") problems.push(`is ${elf.bits}-bit ${elf.endian}-endian, not 64-bit little-endian`);
  if (elf.machine !== want.machine) problems.push(`is built for ${machineName(elf.machine)} (e_machine ${elf.machine}), not ${machineName(want.machine)} (${want.machine})`);
  if (elf.interp !== want.interp) problems.push(`asks for loader ${elf.interp ?? "(none)"}, not ${want.interp}`);
  for (const n of want.needs) if (!elf.needed.includes(n)) problems.push(`does not link ${n} (DT_NEEDED: ${elf.needed.join(", ") || "none"})`);
  const bun = elf.sections.find((s) => s.name === ".bun");
  if (!bun || bun.size === 0) problems.push("has no embedded program (.bun section missing or empty: was it stripped?)");
  if (problems.length) throw new Error(`${file} (${target}) ${problems.join("; ")}`);
  return elf;
}

/** `sha256sum -c` format: "<hex>  <name>" lines, sorted by name. Pure. */
export function renderSha256Sums(sums: Record<string, string>): string {
  return Object.keys(sums)
    .sort()
    .map((name) => `${sums[name]}  ${name}\n`)
    .join("");
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of Bun.file(file).stream()) h.update(chunk);
  return h.digest("hex");
}

/** `bun build` flags of every build (src/image/sizes.ts compiles its hello world with the same). */
export const COMPILE_FLAGS: readonly string[] = [
  "--compile", "--minify", "--sourcemap=none",
  // bytecode cuts start-up; it needs ESM (plain --bytecode is CJS and breaks on top-level await)
  "--bytecode", "--format=esm",
  // each lazily imported command (and the DHCP client, the lab, ...) becomes its own chunk inside
  // the binary, parsed only when imported: `version` no longer loads the whole program
  "--splitting",
  // JavaScriptCore's tier-up thresholds ×32: code run a few times at start-up (configuration, the
  // role's set-up) stays in the interpreter instead of keeping JIT threads busy compiling it for
  // nothing. client-init: ~15 ms less CPU per run; `config` on a 1000-line nat.conf: less CPU, the
  // same time. Long loops still reach the JIT, later.
  "--compile-jit-policy", "32",
  "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
];

async function compile(outfile: string, commit: string, target?: string): Promise<void> {
  // Compile next to the final name and rename: other processes (tests) may be running the
  // previous binary, and a half-written file must never carry the final name. The temporary
  // file has the final file's name (in a private directory): Bun embeds the output's name in
  // the program (/$bunfs/root/<name>), so a pid in it would make every build differ.
  const tmpDir = join(dirname(outfile), `.build-${process.pid}`);
  mkdirSync(tmpDir, { recursive: true });
  const tmp = join(tmpDir, basename(outfile));
  const argv = [
    process.execPath, "build", join(root, "src/main.ts"),
    ...COMPILE_FLAGS,
    "--define", `POD_GATEWAY_VERSION=${JSON.stringify(pkg.version)}`,
    "--define", `POD_GATEWAY_COMMIT=${JSON.stringify(commit)}`,
    // a target build knows its C library: src/sys/libc.ts then tries only that one's names
    ...(target ? ["--define", `POD_GATEWAY_LIBC=${JSON.stringify(target.endsWith("-musl") ? "musl" : "glibc")}`] : []),
    "--outfile", tmp,
    ...(target ? ["--target", target] : []),
  ];
  const p = Bun.spawn(argv, { stdout: "inherit", stderr: "inherit" });
  try {
    if ((await p.exited) !== 0) throw new Error(`bun build failed for ${outfile}${target ? ` (--target ${target})` : ""}`);
    renameSync(tmp, outfile);
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

/** Runs the host build's `version` and checks it prints exactly what was compiled in. */
export function checkRuns(file: string, commit: string): string {
  const want = `pod-gateway ${commit ? `${pkg.version}+${commit}` : pkg.version}\n`;
  const r = Bun.spawnSync([file, "version"], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
  const out = r.stdout.toString();
  if (r.exitCode !== 0 || out !== want) {
    throw new Error(`${file} version: exit ${r.exitCode}, printed ${JSON.stringify(out)}, expected ${JSON.stringify(want)}${r.stderr.length ? `; stderr: ${r.stderr.toString().trim()}` : ""}`);
  }
  return out.trim();
}

export interface BuildOptions {
  outdir?: string;
  /** Build the host binary (dist/pod-gateway). */
  host?: boolean;
  /** Cross/target builds (dist/pod-gateway-<target>). */
  targets?: TargetName[];
  log?: (line: string) => void;
}

/** Builds, verifies and (for target builds) writes SHA256SUMS. Returns the files made. */
export async function build(opts: BuildOptions = {}): Promise<{ files: Record<string, string>; sums?: string }> {
  const outdir = opts.outdir ?? join(root, "dist");
  const log = opts.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const commit = gitCommit();
  mkdirSync(outdir, { recursive: true });
  const files: Record<string, string> = {};

  if (opts.host ?? true) {
    const out = join(outdir, "pod-gateway");
    await compile(out, commit);
    verifyBinary(out, hostTarget());
    log(`verified ${basename(out)}: ${hostTarget()} ELF, runs: ${checkRuns(out, commit)}`);
    files["pod-gateway"] = out;
  }
  for (const t of opts.targets ?? []) {
    const name = `pod-gateway-${t}`;
    const out = join(outdir, name);
    await compile(out, commit, targets[t]);
    const elf = verifyBinary(out, t);
    log(`verified ${name}: ${machineName(elf.machine)}, loader ${elf.interp}, needs ${elf.needed.join(" ")}`);
    // The host can run its own glibc build: prove that one starts too, not just the host build.
    if (t === hostTarget()) checkRuns(out, commit);
    files[name] = out;
  }
  if (!opts.targets?.length) return { files };
  const sums: Record<string, string> = {};
  for (const [name, file] of Object.entries(files)) sums[name] = await sha256File(file);
  const text = renderSha256Sums(sums);
  writeFileSync(join(outdir, "SHA256SUMS"), text);
  log(`wrote ${join(outdir, "SHA256SUMS")} (${Object.keys(sums).length} files)`);
  return { files, sums: text };
}

if (import.meta.main) {
  try {
    const { values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        all: { type: "boolean", default: false },
        target: { type: "string", multiple: true },
        outdir: { type: "string" },
      },
      strict: true,
    });
    const picked = (values.target ?? []).map(parseTarget);
    const chosen = values.all ? (Object.keys(targets) as TargetName[]) : [...new Set(picked)];
    // --target alone builds just what was asked (a Docker stage wants one architecture).
    await build({ outdir: values.outdir, host: values.all || picked.length === 0, targets: chosen });
  } catch (e) {
    process.stderr.write(`build.ts: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
