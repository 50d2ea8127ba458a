// `pod-gateway install DIR`: copy this binary (and the drop-in links) into a directory, so an
// init container running our shell-less image can hand the binary to an application image
// through an emptyDir — the image has no `cp` to do it with.
//
// The directory may be shared with other containers (issue 12 §9), so nothing here follows a
// symlink planted at a name we write: the copy is created under a fresh random name with
// O_CREAT|O_EXCL|O_NOFOLLOW (which fails on anything already there, a dangling link included),
// links are made under fresh names too, and each is renamed over its final name (rename replaces
// the name itself, never what a link there points to). Every final name is checked before
// anything is written, so a directory in the way is an error that leaves DIR as it was.
import { defineCommand } from "citty";
import { closeSync, constants, fchmodSync, fsyncSync, lstatSync, openSync, readlinkSync, readSync, renameSync, statSync, symlinkSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { PodGatewayError, UsageError } from "../core/errors.ts";
import { log } from "../sys/log.ts";
import { multiCallNames } from "./commands.ts";

/** True when running as a `bun build --compile` binary (its program lives in Bun's embedded fs). */
export function isCompiled(mainPath: string = Bun.main): boolean {
  return mainPath.startsWith("/$bunfs/");
}

export interface InstallOptions {
  /** The file to copy (the running binary). */
  source: string;
  /** Also link the drop-in names to the copy. */
  links: boolean;
  /** A fresh name component for temporary files (tests make it collide on purpose). */
  randomName?: () => string;
}

export interface InstallResult {
  installed: string;
  linked: string[];
}

const BINARY = "pod-gateway";
const TEMP_ATTEMPTS = 8;

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

function defaultRandomName(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Why `path` cannot be replaced by a rename, or undefined when it can (absent, a file, a link). */
function obstacle(path: string): string | undefined {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if (errno(e) === "ENOENT") return undefined;
    return `${path}: ${(e as Error).message}`;
  }
  if (st.isDirectory()) return `${path} is a directory; remove it or choose another DIR`;
  return undefined;
}

/** Run `make(tempPath)` under fresh temporary names until one is free (EEXIST: someone is there). */
function withFreshName(dir: string, base: string, randomName: () => string, make: (tmp: string) => void): string {
  for (let i = 0; i < TEMP_ATTEMPTS; i++) {
    const tmp = join(dir, `.${base}.tmp-${randomName()}`);
    try {
      make(tmp);
      return tmp;
    } catch (e) {
      if (errno(e) === "EEXIST") continue;
      throw e;
    }
  }
  throw new PodGatewayError(`installing into ${dir}: ${TEMP_ATTEMPTS} temporary names in a row were taken; is something racing this install?`);
}

/** Copy `source` to a new file at `tmp` (never through anything already there), mode 0755. */
function copyExclusive(source: string, tmp: string): void {
  const out = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o700);
  try {
    const inp = openSync(source, constants.O_RDONLY);
    try {
      const buf = new Uint8Array(1024 * 1024);
      for (;;) {
        const n = readSync(inp, buf, 0, buf.length, null);
        if (n === 0) break;
        let off = 0;
        while (off < n) off += writeSync(out, buf, off, n - off);
      }
    } finally {
      closeSync(inp);
    }
    fchmodSync(out, 0o755);
    fsyncSync(out);
  } finally {
    closeSync(out);
  }
}

function removeQuietly(path: string | undefined): void {
  if (!path) return;
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/**
 * Install `opts.source` as DIR/pod-gateway and (optionally) the drop-in links. Checks every
 * name first; throws UsageError (nothing written) for a directory in the way, PodGatewayError
 * for a failure while writing (temporary files removed).
 */
export function installInto(dir: string, opts: InstallOptions): InstallResult {
  const randomName = opts.randomName ?? defaultRandomName;
  try {
    if (!statSync(dir).isDirectory()) throw new UsageError(`install: ${dir} is not a directory`);
  } catch (e) {
    if (e instanceof PodGatewayError) throw e;
    throw new UsageError(`install: ${dir}: ${(e as Error).message}`);
  }
  const dest = join(dir, BINARY);
  const linkNames = opts.links ? Object.keys(multiCallNames) : [];
  const problems = [dest, ...linkNames.map((n) => join(dir, n))].map(obstacle).filter((p): p is string => p !== undefined);
  if (problems.length) throw new UsageError(`install: nothing was written: ${problems.join("; ")}`);

  let tmp: string | undefined;
  try {
    tmp = withFreshName(dir, BINARY, randomName, (t) => copyExclusive(opts.source, t));
    renameSync(tmp, dest);
    tmp = undefined;
  } catch (e) {
    removeQuietly(tmp);
    if (e instanceof PodGatewayError) throw e;
    throw new PodGatewayError(`installing ${opts.source} as ${dest}: ${(e as Error).message}`);
  }
  const linked: string[] = [];
  for (const name of linkNames) {
    const path = join(dir, name);
    try {
      const st = lstatSync(path);
      if (st.isSymbolicLink() && readlinkSync(path) === BINARY) continue;
    } catch (e) {
      if (errno(e) !== "ENOENT") throw new PodGatewayError(`linking ${path}: ${(e as Error).message}`);
    }
    let tmpLink: string | undefined;
    try {
      // symlink() never follows or replaces anything at its path: EEXIST means try another name.
      tmpLink = withFreshName(dir, name, randomName, (t) => symlinkSync(BINARY, t));
      renameSync(tmpLink, path);
      tmpLink = undefined;
    } catch (e) {
      removeQuietly(tmpLink);
      if (e instanceof PodGatewayError) throw e;
      throw new PodGatewayError(`linking ${path} → ${BINARY}: ${(e as Error).message}`);
    }
    linked.push(path);
  }
  return { installed: dest, linked };
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
    const r = installInto(args.dir, { source: process.execPath, links: args.links });
    logger.info(`installed ${r.installed}`);
    for (const l of r.linked) logger.info(`linked ${l} → ${BINARY}`);
    return 0;
  },
});
