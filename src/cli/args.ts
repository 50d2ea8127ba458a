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
