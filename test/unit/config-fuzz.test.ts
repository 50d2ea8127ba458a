// Fuzzing settings.sh, nat.conf and resolv.conf (issue 12, item 11): random bytes, random text
// and structure-aware mutations of real files. Every input gives a typed result or typed
// issues (never another exception), validation's output is always renderable, and the whole run
// stays within a time and memory budget: it runs in a child with a timeout and an address-space
// limit. About 2,000 cases per reader; FUZZ_RUNS raises it, FUZZ_SEED replays a run (printed).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { fuzzRuns, fuzzSeed, runLimited } from "../helpers/config-fuzz.ts";

const CHILD = join(import.meta.dir, "..", "helpers", "config-fuzz-child.ts");

describe("config readers under fuzzing", () => {
  for (const kind of ["settings", "nat", "resolv"] as const)
    test(
      kind,
      () => {
        const runs = fuzzRuns();
        const seed = fuzzSeed();
        // Budget: generous for 2,000 cases on a loaded 2-core machine; scales with FUZZ_RUNS.
        const r = runLimited(CHILD, [kind, String(seed), String(runs)], { timeoutMs: 60_000 + runs * 60, memoryMiB: 3072 });
        console.log(r.stdout.trim());
        if (r.stderr.trim()) console.log(r.stderr.trim().slice(0, 4000));
        expect(r.timedOut, `fuzz ${kind} (seed ${seed}) ran out of time`).toBe(false);
        expect(r.code, `fuzz ${kind} (seed ${seed}) failed:\n${r.stdout.slice(-3000)}`).toBe(0);
        expect(r.stdout).toContain(`fuzz ${kind}: ${runs} cases passed`);
      },
      600_000,
    );
});
