// Where tests find the compiled binary. `npm test` builds dist/pod-gateway first; set
// POD_GATEWAY_BIN to test another build (e.g. your own copy while others rebuild dist/).
import { existsSync } from "node:fs";
import { join } from "node:path";

export const REPO = join(import.meta.dir, "..", "..");

export function binPath(): string {
  const p = process.env.POD_GATEWAY_BIN ?? join(REPO, "dist", "pod-gateway");
  if (!existsSync(p)) throw new Error(`compiled binary ${p} is missing: run \`node_modules/.bin/bun build.ts\` (npm test does) or set POD_GATEWAY_BIN`);
  return p;
}

/** Fail (never skip) when a test that needs root runs without it. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error("this test needs root (network namespaces); run the suite as root, as CI does");
}
