// The child side of test/helpers/fuzz.ts `runIsolated`: argv = module, export name, inputs file
// (structured-clone format). "ready" once the module and inputs are loaded, then one JSON line per
// case on stdout, written synchronously so the parent's per-case timer sees progress even when the
// next case hangs the event loop.
import { deserialize } from "bun:jsc";
import { readFileSync, writeSync } from "node:fs";

const [modulePath, fnName, inputsFile] = process.argv.slice(2);
if (!modulePath || !fnName || !inputsFile) {
  process.stderr.write("usage: fuzz-child.ts MODULE EXPORT INPUTS\n");
  process.exit(2);
}
const mod = (await import(modulePath)) as Record<string, unknown>;
const fn = mod[fnName];
if (typeof fn !== "function") {
  process.stderr.write(`${modulePath} has no exported function ${fnName}\n`);
  process.exit(2);
}
const inputs = deserialize(readFileSync(inputsFile)) as unknown[];
// Loaded: from here on the parent times each case on its own (start-up has its own allowance).
writeSync(1, "ready\n");

function shown(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const s = typeof v === "string" ? v : JSON.stringify(v) ?? String(v);
  return s.length > 4000 ? s.slice(0, 4000) + "…" : s;
}

for (let index = 0; index < inputs.length; index++) {
  let line: string;
  try {
    const value = await (fn as (x: unknown) => unknown)(inputs[index]);
    line = JSON.stringify({ index, ok: true, value: shown(value) });
  } catch (e) {
    const name = e instanceof Error ? e.name : typeof e;
    const message = (e instanceof Error ? e.message : String(e)).slice(0, 2000);
    line = JSON.stringify({ index, ok: false, kind: "threw", name, message });
  }
  writeSync(1, line + "\n");
}
