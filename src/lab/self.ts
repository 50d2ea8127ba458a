// How to run this same program again (the lab's echo service, the demo's roles): the compiled
// binary is process.execPath itself; from source it is the Bun runtime plus src/main.ts.
import { join } from "node:path";

/** True inside a `bun build --compile` binary, whose modules live in Bun's embedded /$bunfs. */
export function isCompiled(modulePath: string = import.meta.path): boolean {
  return modulePath.startsWith("/$bunfs/") || modulePath.startsWith("B:/~BUN/");
}

/**
 * The argv prefix that re-runs this program: `[binary]` when compiled, `[bun, <repo>/src/main.ts]`
 * from source (also under `bun test`, where Bun.main is the test file, not our entry point).
 * Append the command: `[...selfCommand(), "lab", "echo", ...]`.
 */
export function selfCommand(): string[] {
  if (isCompiled()) return [process.execPath];
  return [process.execPath, join(import.meta.dir, "..", "main.ts")];
}
