// citty's defineCommand without citty: the four role commands' files use it, so that the chart's
// argument-less run of a role (main.ts's fast path) never loads citty, nor the node:util that
// citty imports at its top level (a few ms of every pod's start-up).
import type { ArgsDef, CommandDef } from "citty";

/** The same identity citty exports: it only gives the definition its argument types. */
export function defineCommand<const T extends ArgsDef = ArgsDef>(def: CommandDef<T>): CommandDef<T> {
  return def;
}

/** What citty's parseArgs makes of no arguments at all: `_`, and each default under its name (a flag's also under its camelCase and aliases). Pure. */
export function defaultArgs(defs: Record<string, { type?: string; default?: unknown; alias?: string | string[] }> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { _: [] };
  for (const [name, spec] of Object.entries(defs ?? {})) {
    if (spec.default === undefined) continue;
    if (spec.type === "positional") {
      out[name] = spec.default;
      continue;
    }
    const aliases = spec.alias === undefined ? [] : Array.isArray(spec.alias) ? spec.alias : [spec.alias];
    for (const key of [name, name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase()), ...aliases]) out[key] = spec.default;
  }
  return out;
}
