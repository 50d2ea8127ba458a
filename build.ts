// Compiles src/main.ts into one executable.
//   bun build.ts          dist/pod-gateway for this machine
//   bun build.ts --all    plus dist/pod-gateway-linux-{x64,x64-musl,arm64} and dist/SHA256SUMS
// The version (package.json + git commit) is compiled in. The binary does not read .env or
// bunfig.toml from its working directory (not acceptable for a privileged network tool).
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = import.meta.dir;
const dist = join(root, "dist");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };

function gitCommit(): string {
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

async function compile(outfile: string, target?: string): Promise<void> {
  const commit = gitCommit();
  const argv = [
    process.execPath, "build", join(root, "src/main.ts"),
    "--compile", "--minify", "--sourcemap=none",
    // bytecode cuts start-up; it needs ESM (plain --bytecode is CJS and breaks on top-level await)
    "--bytecode", "--format=esm",
    "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
    "--define", `POD_GATEWAY_VERSION=${JSON.stringify(pkg.version)}`,
    "--define", `POD_GATEWAY_COMMIT=${JSON.stringify(commit)}`,
    "--outfile", outfile,
    ...(target ? ["--target", target] : []),
  ];
  const p = Bun.spawn(argv, { stdout: "inherit", stderr: "inherit" });
  if ((await p.exited) !== 0) throw new Error(`bun build failed for ${outfile}`);
}

async function sha256(file: string): Promise<string> {
  return createHash("sha256").update(new Uint8Array(await Bun.file(file).arrayBuffer())).digest("hex");
}

if (import.meta.main) {
  mkdirSync(dist, { recursive: true });
  await compile(join(dist, "pod-gateway"));
  if (process.argv.includes("--all")) {
    const sums: string[] = [];
    for (const [name, target] of Object.entries(targets)) {
      const out = join(dist, `pod-gateway-${name}`);
      await compile(out, target);
      sums.push(`${await sha256(out)}  pod-gateway-${name}`);
    }
    writeFileSync(join(dist, "SHA256SUMS"), sums.join("\n") + "\n");
  }
}
