// `pod-gateway install DIR`: copy this binary (and the drop-in links) into a directory, so an
// init container running our shell-less image can hand the binary to an application image
// through an emptyDir — the image has no `cp` to do it with.
import { defineCommand } from "citty";
import { chmodSync, copyFileSync, lstatSync, readlinkSync, renameSync, statSync, symlinkSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { PodGatewayError, UsageError } from "../core/errors.ts";
import { log } from "../sys/log.ts";
import { multiCallNames } from "./commands.ts";

/** True when running as a `bun build --compile` binary (its program lives in Bun's embedded fs). */
export function isCompiled(mainPath: string = Bun.main): boolean {
  return mainPath.startsWith("/$bunfs/");
}

function linkTo(path: string, target: string): boolean {
  try {
    const st = lstatSync(path);
    if (st.isSymbolicLink() && readlinkSync(path) === target) return false;
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  symlinkSync(target, path);
  return true;
}

export default defineCommand({
  meta: {
    name: "install",
    description: "Copy this binary to DIR/pod-gateway and link the drop-in names (client_init.sh, ...) to it there",
  },
  args: {
    dir: { type: "positional", description: "Target directory (must exist, e.g. an emptyDir mount)", required: true },
    links: { type: "boolean", description: "Also create DIR/client_init.sh, client_sidecar.sh, gateway_init.sh, gateway_sidecar.sh", default: true },
  },
  run({ args }) {
    const logger = log().withTag("install");
    if (!isCompiled()) throw new UsageError("install copies the compiled binary; run it from dist/pod-gateway (or the image), not from source");
    const dir = args.dir;
    try {
      if (!statSync(dir).isDirectory()) throw new UsageError(`install: ${dir} is not a directory`);
    } catch (e) {
      if (e instanceof PodGatewayError) throw e;
      throw new UsageError(`install: ${dir}: ${(e as Error).message}`);
    }
    const dest = join(dir, "pod-gateway");
    // Copy under a temporary name, then rename: a reader never sees half a binary.
    const tmp = `${dest}.tmp-${process.pid}`;
    try {
      copyFileSync(process.execPath, tmp);
      chmodSync(tmp, 0o755);
      renameSync(tmp, dest);
    } catch (e) {
      try {
        unlinkSync(tmp);
      } catch {}
      throw new PodGatewayError(`installing ${process.execPath} as ${dest}: ${(e as Error).message}`);
    }
    logger.info(`installed ${dest}`);
    if (args.links) {
      for (const name of Object.keys(multiCallNames)) {
        if (linkTo(join(dir, name), "pod-gateway")) logger.info(`linked ${join(dir, name)} → pod-gateway`);
      }
    }
    return 0;
  },
});
