// Builds pod-gateway's runtime root filesystem from config/image/rootfs.json (see src/image/rootfs.ts).
// The Dockerfile runs it in its build stage; the rootfs tests call the same functions.
//
//   bun src/image/assemble.ts --sysroot /sysroot --arch arm64 --out /rootfs
//       [--binary dist/pod-gateway-linux-arm64] [--profile image|client-copy] [--with-base]
//   bun src/image/assemble.ts --print-packages     Debian packages the sysroot must have, one a line
import { parseArgs } from "node:util";
import { join } from "node:path";
import { ARCHES, assembleRootfs, hostArch, measureTree, parseArch, readRootfsManifest, renderRootfsListing, REPO_ROOT } from "./rootfs.ts";

function usage(msg: string): never {
  process.stderr.write(`assemble: ${msg}\nusage: bun src/image/assemble.ts --sysroot DIR --arch amd64|arm64 --out DIR [--binary FILE] [--profile image|client-copy] [--with-base] [--quiet]\n       bun src/image/assemble.ts --print-packages\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        sysroot: { type: "string", default: "/" },
        arch: { type: "string" },
        out: { type: "string" },
        binary: { type: "string" },
        profile: { type: "string", default: "image" },
        "with-base": { type: "boolean", default: false },
        "print-packages": { type: "boolean", default: false },
        quiet: { type: "boolean", default: false },
      },
      strict: true,
    }));
  } catch (e) {
    usage((e as Error).message);
  }
  const manifest = readRootfsManifest();
  if (values["print-packages"]) {
    process.stdout.write(manifest.debian.packages.join("\n") + "\n");
    return;
  }
  if (!values.out) usage("--out is required");
  const arch = values.arch ? parseArch(values.arch) : hostArch();
  const binary = values.binary ?? join(REPO_ROOT, "dist", `pod-gateway-${ARCHES[arch.name].buildTarget}`);
  const plan = assembleRootfs({ manifest, sysroot: values.sysroot, arch, profile: values.profile, binary, withBase: values["with-base"], out: values.out });
  if (!values.quiet) process.stdout.write(renderRootfsListing(plan) + "\n");
  const size = measureTree(values.out);
  process.stdout.write(`assembled ${plan.profile} root filesystem for ${arch.name} in ${values.out}: ${size.files} files, ${(size.bytes / 1048576).toFixed(1)} MiB\n`);
}

try {
  await main();
} catch (e) {
  process.stderr.write(`assemble: ${(e as Error).message}\n`);
  process.exit(1);
}
