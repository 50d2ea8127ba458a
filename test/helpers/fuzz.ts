// The shared fuzz harness (issue 12 §11): fast-check properties with one run count and one seed
// policy for every parser and decoder, and a subprocess runner for heavy cases, so a hang or a
// memory blow-up is a test failure with the input that caused it, never a stuck CI.
//
//   FUZZ_RUNS=20000 bun test test/unit/fuzz-kube.test.ts   more cases (default 2,000 per property)
//   FUZZ_SEED=1234567 bun test …                            replay the seed a failure printed
//
// In-process (`fuzz`, `fuzzAsync`): fast-check shrinks a failure to a small counterexample. Use it
// for inputs that cannot hang (bounded size, linear parsers). Isolated (`fuzzIsolated`): the cases
// run in a child `bun` whose wall time per case and memory are limited; use it for big inputs or
// code whose bounds are what is being tested. The child calls a named export of a module with each
// input; that function must return for an acceptable outcome (a typed result or a typed error) and
// throw for anything else.
import fc from "fast-check";
import { serialize } from "bun:jsc";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const FUZZ_DEFAULT_RUNS = 2000;

function envInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  if (!/^-?[0-9]+$/.test(raw)) throw new Error(`${name}=${JSON.stringify(raw)}: expected a decimal integer`);
  return Number(raw);
}

/** Runs for a property: FUZZ_RUNS when set (it overrides every default), else `defaultRuns`. */
export function fuzzRuns(defaultRuns: number = FUZZ_DEFAULT_RUNS): number {
  const n = envInt("FUZZ_RUNS");
  if (n !== undefined && n < 1) throw new Error(`FUZZ_RUNS=${n}: expected at least 1`);
  return n ?? defaultRuns;
}

/** The seed: FUZZ_SEED to replay, else a fresh 32-bit one. */
export function fuzzSeed(): number {
  const s = envInt("FUZZ_SEED");
  if (s !== undefined) return s | 0;
  return (Date.now() ^ Math.floor(Math.random() * 0x100000000)) | 0;
}

export interface FuzzOptions {
  /** Cases when FUZZ_RUNS is not set (default 2,000). */
  runs?: number;
  /**
   * For heavy properties (megabyte inputs): run FUZZ_RUNS × scale cases when FUZZ_RUNS is set
   * (at least 1), so raising FUZZ_RUNS raises them in proportion instead of to the same count.
   */
  scale?: number;
}

/** fast-check parameters for one named property; prints the seed so a failure can be replayed. */
export function fuzzParameters(name: string, opts: FuzzOptions = {}): { numRuns: number; seed: number } {
  const env = envInt("FUZZ_RUNS") !== undefined;
  const numRuns = env && opts.scale !== undefined ? Math.max(1, Math.ceil(fuzzRuns() * opts.scale)) : fuzzRuns(opts.runs);
  const seed = fuzzSeed();
  process.stderr.write(`fuzz ${name}: ${numRuns} cases, seed ${seed} (replay: FUZZ_SEED=${seed})\n`);
  return { numRuns, seed };
}

function withReplay(name: string, seed: number, e: unknown): Error {
  const msg = e instanceof Error ? e.message : String(e);
  const err = new Error(`fuzz ${name} failed (replay: FUZZ_SEED=${seed}):\n${msg}`);
  if (e instanceof Error) err.cause = e;
  return err;
}

/** Run `check` on `runs` generated values in this process; a throw or `false` fails the property. */
export function fuzz<T>(name: string, arb: fc.Arbitrary<T>, check: (value: T) => boolean | void, opts: FuzzOptions = {}): void {
  const params = fuzzParameters(name, opts);
  try {
    fc.assert(fc.property(arb, check), params);
  } catch (e) {
    throw withReplay(name, params.seed, e);
  }
}

/** `fuzz` for an async check. */
export async function fuzzAsync<T>(name: string, arb: fc.Arbitrary<T>, check: (value: T) => Promise<boolean | void>, opts: FuzzOptions = {}): Promise<void> {
  const params = fuzzParameters(name, opts);
  try {
    await fc.assert(fc.asyncProperty(arb, check), params);
  } catch (e) {
    throw withReplay(name, params.seed, e);
  }
}

// ---- isolated runs ----------------------------------------------------------------------------

/** What the child calls: `module` (absolute path) and its export `fn(input)`. */
export interface FuzzTarget {
  module: string;
  fn: string;
}

export interface IsolationLimits {
  /**
   * Wall time one case may take before the child is killed (default 10 s: a hang detector, not a
   * benchmark). The child's start-up (Bun, the target module, the inputs) is not counted against
   * the first case; it has STARTUP_ALLOWANCE_MS more.
   */
  caseTimeoutMs?: number;
  /** Memory the child may use, in MiB: its RLIMIT_DATA, and its RSS is watched (default 512; Bun itself needs about 300). */
  memoryMb?: number;
}

export type CaseOutcome =
  | { index: number; ok: true; value?: string }
  | { index: number; ok: false; kind: "threw"; name: string; message: string }
  | { index: number; ok: false; kind: "timeout"; ms: number }
  | { index: number; ok: false; kind: "memory"; rssMb: number }
  | { index: number; ok: false; kind: "crash"; detail: string };

export interface IsolatedReport {
  outcomes: CaseOutcome[];
  /** The child's peak resident size (VmHWM) as last seen, MiB. */
  peakRssMb: number;
}

const CHILD = join(import.meta.dir, "fuzz-child.ts");
const MIN_MEMORY_MB = 320;
/** Extra time the child may take to start and load its inputs, on top of one case's (a loaded CI machine). */
const STARTUP_ALLOWANCE_MS = 60_000;

function readRssMb(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? 0);
    return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * Run `target` on every input in one child process, one outcome per case in order. A case that
 * throws is reported and the next one runs; a case that hangs or blows the memory limit kills the
 * child (reported as such; later cases are not run). Inputs travel in the structured-clone format,
 * so strings, numbers, plain objects and Uint8Arrays all work. A returned string (or JSON of any
 * other value, cut at 4,000 characters) comes back as `value`.
 */
export async function runIsolated(target: FuzzTarget, inputs: readonly unknown[], limits: IsolationLimits = {}): Promise<IsolatedReport> {
  const caseTimeoutMs = limits.caseTimeoutMs ?? 10_000;
  const memoryMb = limits.memoryMb ?? 512;
  if (memoryMb < MIN_MEMORY_MB) throw new Error(`memoryMb ${memoryMb}: Bun needs about 300 MiB of data segment to start; use at least ${MIN_MEMORY_MB}`);
  const dir = mkdtempSync(join(tmpdir(), "fuzz-"));
  const file = join(dir, "inputs.bin");
  writeFileSync(file, new Uint8Array(serialize(inputs)));
  const limitBytes = memoryMb * 1024 * 1024;
  const child = Bun.spawn(["prlimit", `--data=${limitBytes}`, "--core=0", "--", process.execPath, CHILD, target.module, target.fn, file], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, FORCE_COLOR: "0" },
  });
  const outcomes: CaseOutcome[] = [];
  let peakRssMb = 0;
  let killedFor: CaseOutcome | undefined;
  let ready = false;
  let lastProgress = performance.now();
  const kill = (why: CaseOutcome) => {
    if (killedFor) return;
    killedFor = why;
    child.kill("SIGKILL");
  };
  // prlimit execs bun, so the pid we watch is the child's own.
  const watchdog = setInterval(() => {
    const m = readRssMb(child.pid);
    if (m) peakRssMb = Math.max(peakRssMb, m.hwm, m.rss);
    const index = outcomes.length;
    if (m && m.rss > memoryMb) kill({ index, ok: false, kind: "memory", rssMb: Math.round(m.rss) });
    const ms = performance.now() - lastProgress;
    if (ms > caseTimeoutMs + (ready ? 0 : STARTUP_ALLOWANCE_MS)) kill(ready ? { index, ok: false, kind: "timeout", ms: Math.round(ms) } : { index, ok: false, kind: "crash", detail: `the child did not start within ${Math.round(ms)} ms` });
  }, 20);
  const stderrText = new Response(child.stderr).text();
  try {
    const decoder = new TextDecoder();
    let carry = "";
    for await (const chunk of child.stdout) {
      carry += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = carry.indexOf("\n")) >= 0) {
        const line = carry.slice(0, nl);
        carry = carry.slice(nl + 1);
        if (line === "") continue;
        if (line === "ready") {
          ready = true;
          lastProgress = performance.now();
          continue;
        }
        const o = JSON.parse(line) as CaseOutcome;
        outcomes.push(o);
        lastProgress = performance.now();
      }
    }
    const code = await child.exited;
    const err = await stderrText;
    if (killedFor) outcomes.push(killedFor);
    else if (outcomes.length < inputs.length) {
      // The child died on its own: RLIMIT_DATA aborts, a crash of the runtime, an uncaught error.
      const oom = /out of memory|RangeError: Out of memory|Allocation failed/i.test(err);
      outcomes.push(
        oom
          ? { index: outcomes.length, ok: false, kind: "memory", rssMb: Math.round(peakRssMb) }
          : { index: outcomes.length, ok: false, kind: "crash", detail: `exit ${code}: ${err.slice(-2000)}` },
      );
    }
  } finally {
    clearInterval(watchdog);
    rmSync(dir, { recursive: true, force: true });
  }
  return { outcomes, peakRssMb: Math.round(peakRssMb) };
}

function preview(v: unknown): string {
  let s: string;
  if (v instanceof Uint8Array) s = `Uint8Array(${v.length}) ${Buffer.from(v.subarray(0, 64)).toString("hex")}${v.length > 64 ? "…" : ""}`;
  else if (typeof v === "string") s = `string(${v.length}) ${JSON.stringify(v.slice(0, 200))}${v.length > 200 ? "…" : ""}`;
  else s = JSON.stringify(v) ?? String(v);
  return s.length > 400 ? s.slice(0, 400) + "…" : s;
}

/** Describe a failed outcome for an assertion message. */
export function describeOutcome(o: CaseOutcome, input: unknown): string {
  const what =
    o.ok ? "passed"
    : o.kind === "threw" ? `threw ${o.name}: ${o.message}`
    : o.kind === "timeout" ? `did not finish within ${o.ms} ms (killed)`
    : o.kind === "memory" ? `exceeded the memory limit (${o.rssMb} MiB resident; killed)`
    : `the child died: ${o.detail}`;
  return `case ${o.index} ${what}\n  input: ${preview(input)}`;
}

/** Keep a failing input whole (the message shows only its start): bytes and strings as they are, anything else as JSON. */
function saveInput(v: unknown): string {
  const file = join(mkdtempSync(join(tmpdir(), "fuzz-failure-")), v instanceof Uint8Array ? "input.bin" : typeof v === "string" ? "input.txt" : "input.json");
  writeFileSync(file, v instanceof Uint8Array || typeof v === "string" ? v : (JSON.stringify(v) ?? String(v)));
  return file;
}

/**
 * Generate `runs` inputs from `arb` with the printed seed and run them through `target` in a
 * limited child process. Fails with the first bad case (its input, what happened, how to replay;
 * the whole input is saved to a file the message names).
 */
export async function fuzzIsolated<T>(name: string, arb: fc.Arbitrary<T>, target: FuzzTarget, opts: FuzzOptions & IsolationLimits = {}): Promise<IsolatedReport> {
  const params = fuzzParameters(name, opts);
  const inputs = fc.sample(arb, params);
  const report = await runIsolated(target, inputs, opts);
  const bad = report.outcomes.find((o) => !o.ok);
  if (bad) {
    const input = inputs[bad.index];
    throw new Error(`fuzz ${name} failed (replay: FUZZ_SEED=${params.seed}):\n${describeOutcome(bad, input)}\n  whole input: ${saveInput(input)}`);
  }
  if (report.outcomes.length !== inputs.length) throw new Error(`fuzz ${name}: the child reported ${report.outcomes.length} of ${inputs.length} cases (replay: FUZZ_SEED=${params.seed})`);
  return report;
}
