// Small effects the groups share: timing a process from spawn to exit, keeping a long-running
// child's output, waiting for a condition, reading memory from /proc, and the wall clock all
// processes (the bench and its in-namespace agents) agree on.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { Subprocess } from "bun";

/** Milliseconds since the epoch with sub-millisecond resolution; comparable across processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface Timed {
  ms: number;
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run argv and measure from spawn to exit (what a caller such as the kubelet waits for). The
 * child's output is read concurrently, so a chatty child never blocks on a full pipe.
 */
export async function timed(argv: readonly string[], opts: { env?: Record<string, string | undefined>; input?: string } = {}): Promise<Timed> {
  const t0 = performance.now();
  const p = Bun.spawn([...argv], {
    stdin: opts.input === undefined ? "ignore" : new TextEncoder().encode(opts.input),
    stdout: "pipe",
    stderr: "pipe",
    env: opts.env as Record<string, string> | undefined,
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { ms: performance.now() - t0, code, stdout, stderr };
}

/** Like timed(), but a non-zero exit is an error naming what ran and its stderr. */
export async function mustRun(what: string, argv: readonly string[], opts: { env?: Record<string, string | undefined>; input?: string; okCodes?: number[] } = {}): Promise<Timed> {
  const r = await timed(argv, opts);
  if (r.code !== 0 && !(opts.okCodes ?? []).includes(r.code)) throw new Error(`${what}: exit ${r.code}\n${tail(r.stderr || r.stdout, 20)}`);
  return r;
}

export function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

export interface Collected {
  text(): string;
  /** Lines seen so far (the buffer keeps the last ~1 MB). */
  lines(): string[];
  /** Called for each complete line as it arrives. */
  onLine(fn: (line: string) => void): void;
}

/** Keep reading a child's stdout and stderr (a full pipe would block it). */
export function collect(p: Subprocess<"ignore", "pipe", "pipe">): Collected {
  let buf = "";
  const listeners: ((l: string) => void)[] = [];
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    let partial = "";
    try {
      for await (const chunk of s) {
        const text = dec.decode(chunk, { stream: true });
        buf += text;
        if (buf.length > 2_000_000) buf = buf.slice(-1_000_000);
        partial += text;
        const parts = partial.split("\n");
        partial = parts.pop() ?? "";
        for (const l of parts) for (const fn of listeners) fn(l);
      }
    } catch {
      // the child was killed: its pipe ends
    }
  };
  void pump(p.stdout);
  void pump(p.stderr);
  return {
    text: () => buf,
    lines: () => buf.split("\n"),
    onLine: (fn) => void listeners.push(fn),
  };
}

/** Poll cond() until it holds; throws naming what was awaited after timeoutMs. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}

export interface MemSample {
  /** Resident set, MB (1 MB = 1024 kB as /proc counts). */
  rss: number;
  /** Proportional share: shared pages divided among the processes mapping them. */
  pss: number;
  /** Pages only this process maps: Private_Clean + Private_Dirty. */
  private: number;
  /** Anonymous pages (heap, stacks, JIT): the rest of RSS is the mapped binary and libraries. */
  anon: number;
}

/** Parse /proc/<pid>/smaps_rollup. Pure. */
export function parseSmapsRollup(text: string): MemSample {
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text);
    if (!m) throw new Error(`smaps_rollup has no ${key} line`);
    return Number(m[1]);
  };
  const mb = (k: number) => k / 1024;
  return { rss: mb(kb("Rss")), pss: mb(kb("Pss")), private: mb(kb("Private_Clean") + kb("Private_Dirty")), anon: mb(kb("Anonymous")) };
}

/**
 * Resident pages (MB) of the mappings of one file in /proc/<pid>/smaps: how much of the binary
 * the process has touched. Pure. A mapping of a file replaced since shows as "path (deleted)".
 */
export function parseSmapsFileRss(text: string, file: string): number {
  let kb = 0;
  let ours = false;
  for (const line of text.split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      const path = head[1]!.trim();
      ours = path === file || path === `${file} (deleted)`;
      continue;
    }
    const rss = ours ? /^Rss:\s+(\d+) kB/.exec(line) : null;
    if (rss) kb += Number(rss[1]);
  }
  return kb / 1024;
}

export function readFileRss(pid: number, file: string): number {
  return parseSmapsFileRss(readFileSync(`/proc/${pid}/smaps`, "utf8"), file);
}

export function readMem(pid: number): MemSample {
  return parseSmapsRollup(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
}

/** readMem, or undefined when the process is gone (a short-lived child that exited meanwhile). */
export function readMemIfAlive(pid: number): MemSample | undefined {
  try {
    return readMem(pid);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ESRCH") return undefined;
    throw e;
  }
}

/** Direct children of a process (all its threads' children). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  for (const t of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim().split(/\s+/)) if (c) out.push(Number(c));
    } catch {}
  }
  return [...new Set(out)];
}

export function exeOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}
