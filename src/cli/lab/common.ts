// Pieces shared by the lab subcommands.
import { PodGatewayError } from "../../core/errors.ts";
import { parseDecimal } from "../../core/settings/values.ts";

export const idArg = {
  id: { type: "string", description: "Lab id (default: the only lab running)", valueHint: "ID" },
} as const;

/**
 * A lab subcommand that ends with a given exit code and a reason throws this; main.ts logs the
 * message and exits with the code (a plain numeric return, as check-done uses, would say nothing).
 */
export class ExitStatus extends PodGatewayError {
  override name = "ExitStatus";
  constructor(override readonly exitCode: number, message: string) {
    super(message);
  }
}

/** A whole-number flag, in the one number syntax of every numeric setting and flag (parseDecimal). */
export function parseIntArg(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const r = parseDecimal(value, min, max);
  if (!r.ok) throw new ExitStatus(2, `--${name} must be an integer from ${min} to ${max}: ${r.error}`);
  return r.value;
}

/** "host:port" → parts; exits 2 on anything else. */
export function parseHostPort(name: string, value: string): { host: string; port: number } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new ExitStatus(2, `--${name} must be IPv4:port, not ${JSON.stringify(value)}`);
  return { host: m[1]!, port: Number(m[2]) };
}
