// Argument definitions shared by several commands, and the one way their numbers are read.
import { UsageError } from "../core/errors.ts";
import { parseDecimal } from "../core/settings/values.ts";

export const configDirArg = {
  "config-dir": {
    type: "string",
    description: "Directory holding settings.sh and nat.conf (default: $POD_GATEWAY_CONFIG_DIR or /config)",
    valueHint: "DIR",
  },
} as const;

export const allowHostNetworkArg = {
  "allow-host-network": {
    type: "boolean",
    description: "Change network state even when this does not look like a pod, container or separate network namespace",
    default: false,
  },
} as const;

export const roleArgs = { ...configDirArg, ...allowHostNetworkArg } as const;

/**
 * A numeric flag (or the environment variable standing for it), read with the same syntax as
 * every numeric setting (parseDecimal: digits, a fraction where allowed; no "0x10", "1e9", sign
 * or blank, which Number() would take) and checked against its documented range.
 */
export function parseNumberOption(
  what: string,
  text: string,
  range: { readonly min: number; readonly max: number },
  opts: { fraction?: boolean; unit?: string } = {},
): number {
  const r = parseDecimal(text, range.min, range.max, opts);
  if (!r.ok) throw new UsageError(`${what}: ${r.error}`);
  return r.value;
}

// ---- strict argument checking ------------------------------------------------------------------
// citty ignores flags it does not know and lets a string flag swallow the next flag as its value,
// so `--config-dri x` ran with the default directory and succeeded. Every command's raw arguments
// are checked against its definition first (issue 12 §10): an unknown flag, a flag without its
// value, or an argument too many is a usage error (exit 2).

/** The slice of citty's argument definitions the check needs. */
export interface ArgSpec {
  type?: string;
  alias?: string | string[];
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** Edit distance, for "did you mean" (names are short). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

function closest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3; // at most two edits away
  for (const k of known) {
    const d = distance(name, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}

/**
 * Problems with `rawArgs` for a command whose arguments are `defs` (empty when they fit).
 * Everything after `--` is the command's own business (lab exec passes it on) and is not looked at.
 */
export function checkArgs(defs: Record<string, ArgSpec> | undefined, rawArgs: readonly string[]): string[] {
  const flags = new Map<string, ArgSpec>();
  const shorts = new Map<string, ArgSpec>();
  let positionals = 0;
  for (const [name, def] of Object.entries(defs ?? {})) {
    if (def.type === "positional") {
      positionals++;
      continue;
    }
    flags.set(kebab(name), def);
    for (const a of typeof def.alias === "string" ? [def.alias] : (def.alias ?? [])) (a.length === 1 ? shorts : flags).set(a.length === 1 ? a : kebab(a), def);
  }
  const problems: string[] = [];
  let seenPositionals = 0;
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === "--") break;
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = kebab(eq < 0 ? a.slice(2) : a.slice(2, eq));
      const value = eq < 0 ? undefined : a.slice(eq + 1);
      let def = flags.get(name);
      let negated = false;
      if (!def && name.startsWith("no-") && flags.get(name.slice(3))?.type === "boolean") {
        def = flags.get(name.slice(3));
        negated = true;
      }
      if (!def || name === "") {
        const near = closest(name, [...flags.keys()]);
        problems.push(`unknown option --${name}${near ? ` (did you mean --${near}?)` : ""}`);
        // Its value, if it had one, is not a stray argument of its own.
        if (value === undefined && rawArgs[i + 1] !== undefined && !rawArgs[i + 1]!.startsWith("-")) i++;
        continue;
      }
      if (def.type === "boolean") {
        if (value !== undefined && (negated || (value !== "true" && value !== "false"))) problems.push(`--${name} takes no value (got ${JSON.stringify(value)})`);
        continue;
      }
      // A string (or enum) option: the value is after "=" or the next argument, never another option.
      if (value !== undefined) {
        if (value === "") problems.push(`--${name} needs a value`);
        continue;
      }
      const next = rawArgs[i + 1];
      if (next === undefined || next === "--" || (next.startsWith("-") && next !== "-")) problems.push(`--${name} needs a value`);
      else i++;
      continue;
    }
    if (a.startsWith("-") && a !== "-") {
      const def = shorts.get(a.slice(1, 2));
      if (!def || a.length > 2) {
        problems.push(`unknown option ${a}`);
        continue;
      }
      if (def.type !== "boolean") {
        const next = rawArgs[i + 1];
        if (next === undefined || (next.startsWith("-") && next !== "-")) problems.push(`${a} needs a value`);
        else i++;
      }
      continue;
    }
    seenPositionals++;
    if (seenPositionals > positionals) problems.push(`unexpected argument ${JSON.stringify(a)}`);
  }
  return problems;
}
