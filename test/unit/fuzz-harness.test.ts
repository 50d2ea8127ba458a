// The fuzz harness itself: a hang, a memory blow-up and a wrong exception are each a failure that
// names the case; a seed replays the same cases.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fuzz, fuzzIsolated, fuzzParameters, fuzzRuns, runIsolated } from "../helpers/fuzz.ts";

const targets = join(import.meta.dir, "..", "helpers", "fuzz-selftest-targets.ts");
const t = (fn: string) => ({ module: targets, fn });

function withEnv<T>(env: Record<string, string | undefined>, f: () => T): T {
  const old: Record<string, string | undefined> = {};
  for (const k of Object.keys(env)) {
    old[k] = process.env[k];
    if (env[k] === undefined) delete process.env[k];
    else process.env[k] = env[k];
  }
  try {
    return f();
  } finally {
    for (const k of Object.keys(old)) {
      if (old[k] === undefined) delete process.env[k];
      else process.env[k] = old[k];
    }
  }
}

describe("run count and seed", () => {
  test("2,000 cases by default, FUZZ_RUNS raises it, junk is refused", () => {
    withEnv({ FUZZ_RUNS: undefined }, () => expect(fuzzRuns()).toBe(2000));
    withEnv({ FUZZ_RUNS: "50000" }, () => expect(fuzzRuns()).toBe(50000));
    withEnv({ FUZZ_RUNS: "1e3" }, () => expect(() => fuzzRuns()).toThrow("FUZZ_RUNS"));
  });

  test("FUZZ_SEED replays exactly the same cases", () => {
    const a = withEnv({ FUZZ_SEED: "424242" }, () => fc.sample(fc.string(), fuzzParameters("replay", { runs: 30 })));
    const b = withEnv({ FUZZ_SEED: "424242" }, () => fc.sample(fc.string(), fuzzParameters("replay", { runs: 30 })));
    expect(a).toEqual(b);
    expect(a).toHaveLength(30);
  });

  test("a failing property names the seed to replay it", () => {
    expect(() => withEnv({ FUZZ_SEED: "99" }, () => fuzz("fails", fc.nat(), (n) => n < 5, { runs: 200 }))).toThrow("FUZZ_SEED=99");
  });
});

describe("isolated runs", () => {
  test("every case comes back in order, values included; async targets and bytes work", async () => {
    const r = await runIsolated(t("asyncLength"), [new Uint8Array(3), new Uint8Array(0)]);
    expect(r.outcomes).toEqual([
      { index: 0, ok: true, value: "3" },
      { index: 1, ok: true, value: "0" },
    ]);
  });

  test("a throw is reported with its class and the run goes on", async () => {
    const r = await runIsolated(t("throwsOn7"), [1, 7, 8]);
    expect(r.outcomes.map((o) => o.ok)).toEqual([true, false, true]);
    expect(r.outcomes[1]).toEqual({ index: 1, ok: false, kind: "threw", name: "TypeError", message: "seven" });
  });

  test("a hang is a timeout of that case, and the child is killed", async () => {
    const r = await runIsolated(t("hangsOn3"), [1, 2, 3, 4], { caseTimeoutMs: 1500 });
    expect(r.outcomes).toHaveLength(3);
    expect(r.outcomes[2]).toMatchObject({ index: 2, ok: false, kind: "timeout" });
  });

  test("the child's start-up is not counted against the first case", async () => {
    const slow = { module: join(import.meta.dir, "..", "helpers", "fuzz-selftest-slow-start.ts"), fn: "echo" };
    const r = await runIsolated(slow, [1, 2], { caseTimeoutMs: 1000 });
    expect(r.outcomes).toEqual([
      { index: 0, ok: true, value: "1" },
      { index: 1, ok: true, value: "2" },
    ]);
  });

  test("a memory blow-up is a memory failure of that case", async () => {
    const r = await runIsolated(t("blowsUp"), [1, 2, 3], { memoryMb: 400 });
    expect(r.outcomes[0]).toMatchObject({ ok: true });
    expect(r.outcomes[1]).toMatchObject({ index: 1, ok: false });
    // Whichever limit strikes first: the RSS watch kills it, or RLIMIT_DATA makes the allocation fail.
    const o = r.outcomes[1]!;
    expect(o.ok === false && (o.kind === "memory" || (o.kind === "threw" && /memory/i.test(o.message)))).toBe(true);
  });

  test("fuzzIsolated fails with the input and the replay seed", async () => {
    const err = await withEnv({ FUZZ_SEED: "5" }, () => fuzzIsolated("sevens", fc.constantFrom(1, 7), t("throwsOn7"), { runs: 20 })).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain("FUZZ_SEED=5");
    expect((err as Error).message).toContain("threw TypeError: seven");
    expect((err as Error).message).toContain("input: 7");
    const saved = /whole input: (\S+)/.exec((err as Error).message)?.[1];
    expect(saved && readFileSync(saved, "utf8")).toBe("7");
    rmSync(dirname(saved!), { recursive: true });
  });

  test("a failing input is saved whole: bytes as they are", async () => {
    const big = new Uint8Array(5000).fill(7);
    const err = await fuzzIsolated("big", fc.constant(big), t("throwsOnBytes"), { runs: 1 }).catch((e: Error) => e);
    const saved = /whole input: (\S+)/.exec((err as Error).message)?.[1];
    expect(saved).toEndWith(".bin");
    expect(new Uint8Array(readFileSync(saved!))).toEqual(big);
    rmSync(dirname(saved!), { recursive: true });
  });
});
