// Targets for test/unit/fuzz-harness.test.ts: one per way a case can go wrong.
export function echo(x: unknown): unknown {
  return x;
}
export function throwsOn7(x: number): number {
  if (x === 7) throw new TypeError("seven");
  return x;
}
export function hangsOn3(x: number): number {
  if (x === 3) for (;;);
  return x;
}
export function blowsUp(x: number): number {
  const keep: number[][] = [];
  if (x === 2) for (;;) keep.push(new Array(1 << 20).fill(x));
  return keep.length;
}
export async function asyncLength(x: Uint8Array): Promise<number> {
  await Bun.sleep(0);
  return x.length;
}
export function throwsOnBytes(x: Uint8Array): number {
  if (x.length > 0) throw new RangeError(`${x.length} bytes`);
  return 0;
}
