// Running other programs: argument arrays only (never a shell), stdout/stderr captured,
// non-zero exits turned into CommandError unless the caller lists them as accepted.
import { CommandError } from "../core/errors.ts";
import { statSync } from "node:fs";
import { log } from "./log.ts";

export interface RunOptions {
  /** Written to the child's stdin (e.g. an iptables-restore or nft script). */
  input?: string;
  /** Exit codes that are not failures (0 is always accepted). */
  okCodes?: readonly number[];
  /** What we were doing, for the error message: "adding route 10.0.0.0/8". */
  what?: string;
  env?: Record<string, string>;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Runner {
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
}

/** Counts every process spawned through it (benchmarks report this). */
export class ProcessRunner implements Runner {
  spawned = 0;
  /** argv prefix, e.g. ["ip", "netns", "exec", "lab-x-gw"] to run inside a namespace. */
  constructor(private readonly prefix: readonly string[] = []) {}

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const full = [...this.prefix, ...argv];
    log().withTag("exec").debug(full.join(" "));
    this.spawned++;
    let proc;
    try {
      proc = Bun.spawn(full as string[], {
        stdin: opts.input === undefined ? "ignore" : new TextEncoder().encode(opts.input),
        stdout: "pipe",
        stderr: "pipe",
        env: opts.env ? { ...process.env, ...opts.env } : undefined,
      });
    } catch (e) {
      throw new CommandError(full, null, (e as Error).message, opts.what);
    }
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    if (code !== 0 && !(opts.okCodes ?? []).includes(code)) throw new CommandError(full, code, stderr, opts.what);
    return { code, stdout, stderr };
  }
}

/** Look a program up on PATH (plus the sbin directories, which a non-root PATH may lack). */
export function which(name: string, path = process.env.PATH ?? ""): string | undefined {
  const dirs = [...path.split(":"), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"];
  for (const d of dirs) {
    if (!d) continue;
    const p = `${d}/${name}`;
    try {
      const st = statSync(p);
      if (st.isFile() && st.mode & 0o111) return p;
    } catch {}
  }
  return undefined;
}
