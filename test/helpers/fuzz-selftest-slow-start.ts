// A target module for test/unit/fuzz-harness.test.ts that takes 2 s to load: the harness must not
// count its start-up against the first case's time.
await Bun.sleep(2000);

export function echo(x: unknown): unknown {
  return x;
}
