// Measures what users download: each build's size and gzip size against the Bun runtime floor
// (a compiled hello world with the same flags), and the runtime root filesystem the Dockerfile
// adds on top of distroless (assembled from this machine's Debian packages, as the rootfs test
// does). Prints a markdown table and writes test/bench/results/sizes.json.
//
//   bun src/image/sizes.ts                 build everything into a temporary directory first
//   bun src/image/sizes.ts --dist dist     measure binaries already built with `bun build.ts --all`
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { build, COMPILE_FLAGS, targets, type TargetName } from "../../build.ts";
import { assembleRootfs, hostArch, measureTree, readRootfsManifest, REPO_ROOT } from "./rootfs.ts";

// Registries store layers gzip-compressed at the default level; measure the same way.
const GZIP_LEVEL = 6;

interface Sized {
  bytes: number;
  gzip: number;
}

export interface Sizes {
  bun: string;
  measuredAt: string;
  gzipLevel: number;
  /** A compiled `console.log("hello")`, per target: what any Bun program costs. */
  floor: Record<string, Sized>;
  /** pod-gateway per target. */
  binaries: Record<string, Sized>;
  /** The tree the Dockerfile copies onto distroless (host architecture), with and without the binary. */
  imageLayer: { arch: string; files: number; bytes: number; tarGzip: number; toolsAndLibrariesBytes: number };
  /** The binary and its libraries (glibc included): the copy-into-your-image case. */
  clientCopy: { files: number; bytes: number; tarGzip: number };
}

function sized(file: string): Sized {
  const bytes = statSync(file).size;
  return { bytes, gzip: Bun.gzipSync(new Uint8Array(readFileSync(file)), { level: GZIP_LEVEL }).length };
}

function tarGzip(dir: string): number {
  // --sort/--numeric-owner keep the archive independent of this machine's users and readdir order.
  const r = Bun.spawnSync(["tar", "--sort=name", "--numeric-owner", "-C", dir, "-cf", "-", "."], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`tar of ${dir} failed: ${r.stderr.toString().trim()}`);
  return Bun.gzipSync(new Uint8Array(r.stdout), { level: GZIP_LEVEL }).length;
}

async function compileHello(dir: string, target: string): Promise<string> {
  const src = join(dir, "hello.ts");
  writeFileSync(src, 'console.log("hello");\n');
  const out = join(dir, `hello-${target}`);
  const p = Bun.spawn(
    [process.execPath, "build", src, ...COMPILE_FLAGS, "--target", target, "--outfile", out],
    { stdout: "ignore", stderr: "inherit" },
  );
  if ((await p.exited) !== 0) throw new Error(`compiling hello world for ${target} failed`);
  return out;
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
const plus = (n: number, floor: number) => `${n >= floor ? "+" : "−"}${mib(Math.abs(n - floor))}`;

export function renderSizesTable(s: Sizes): string {
  const rows: string[] = [
    `| What | Size | gzip -${s.gzipLevel} | Over the Bun floor |`,
    "|---|---:|---:|---:|",
  ];
  for (const t of Object.keys(s.binaries)) {
    const b = s.binaries[t]!;
    const f = s.floor[t]!;
    rows.push(`| \`pod-gateway-${t}\` | ${mib(b.bytes)} | ${mib(b.gzip)} | ${plus(b.bytes, f.bytes)} (gzip ${plus(b.gzip, f.gzip)}) |`);
  }
  for (const t of Object.keys(s.floor)) rows.push(`| hello world, ${t} (Bun runtime floor) | ${mib(s.floor[t]!.bytes)} | ${mib(s.floor[t]!.gzip)} | — |`);
  const l = s.imageLayer;
  rows.push(`| image layer on distroless (${l.arch}): binary, tools, libraries, config (${l.files} files) | ${mib(l.bytes)} | ${mib(l.tarGzip)} (tar) | — |`);
  rows.push(`| of which iptables, nft, dnsmasq and their libraries | ${mib(l.toolsAndLibrariesBytes)} | — | — |`);
  rows.push(`| copy-into-your-image tree: binary, libraries incl. glibc (${s.clientCopy.files} files) | ${mib(s.clientCopy.bytes)} | ${mib(s.clientCopy.tarGzip)} (tar) | — |`);
  return rows.join("\n");
}

export async function measureSizes(opts: { dist?: string }): Promise<Sizes> {
  const tmp = mkdtempSync(join(tmpdir(), "pgw-sizes-"));
  try {
    let dist = opts.dist;
    if (!dist) {
      dist = join(tmp, "dist");
      await build({ outdir: dist, host: false, targets: Object.keys(targets) as TargetName[], log: () => {} });
    }
    const binaries: Record<string, Sized> = {};
    const floor: Record<string, Sized> = {};
    for (const [name, target] of Object.entries(targets)) {
      binaries[name] = sized(join(dist, `pod-gateway-${name}`));
      floor[name] = sized(await compileHello(tmp, target));
    }
    const arch = hostArch();
    const manifest = readRootfsManifest();
    const binary = join(dist, `pod-gateway-${arch.buildTarget}`);
    const layerDir = join(tmp, "layer");
    assembleRootfs({ manifest, sysroot: "/", arch, profile: "image", binary, out: layerDir });
    const layer = measureTree(layerDir);
    const copyDir = join(tmp, "copy");
    assembleRootfs({ manifest, sysroot: "/", arch, profile: "client-copy", binary, out: copyDir });
    const copy = measureTree(copyDir);
    const binBytes = statSync(binary).size;
    const configBytes = Object.keys(manifest.files).reduce((n, p) => n + statSync(join(layerDir, p)).size, 0);
    return {
      bun: Bun.version,
      measuredAt: new Date().toISOString(),
      gzipLevel: GZIP_LEVEL,
      floor,
      binaries,
      imageLayer: { arch: arch.name, files: layer.files, bytes: layer.bytes, tarGzip: tarGzip(layerDir), toolsAndLibrariesBytes: layer.bytes - binBytes - configBytes },
      clientCopy: { files: copy.files, bytes: copy.bytes, tarGzip: tarGzip(copyDir) },
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { dist: { type: "string" } }, strict: true });
  try {
    const s = await measureSizes({ dist: values.dist });
    writeFileSync(join(REPO_ROOT, "test", "bench", "results", "sizes.json"), JSON.stringify(s, null, 2) + "\n");
    process.stdout.write(renderSizesTable(s) + "\n");
  } catch (e) {
    process.stderr.write(`sizes: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
