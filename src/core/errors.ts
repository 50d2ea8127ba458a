// Error types and the exit codes they map to. main.ts is the only place that turns an
// error into a process exit code; everything else throws one of these.

export const ExitCode = {
  ok: 0,
  /** A runtime step failed (a command, the network, the gateway not answering). */
  failure: 1,
  /** Bad configuration or bad command-line usage; nothing was changed. */
  config: 2,
  /** Refused to change the network of what looks like the host (see host-safety). */
  unsafeHost: 3,
} as const;

export class PodGatewayError extends Error {
  readonly exitCode: number = ExitCode.failure;
}

/** One problem in a configuration file, located precisely. */
export interface ConfigIssue {
  file: string;
  line?: number;
  column?: number;
  key?: string;
  message: string;
}

export function formatIssue(i: ConfigIssue): string {
  const loc = i.line === undefined ? i.file : i.column === undefined ? `${i.file}:${i.line}` : `${i.file}:${i.line}:${i.column}`;
  return `${loc}: ${i.key ? `${i.key}: ` : ""}${i.message}`;
}

/** The configuration is invalid. Carries every problem found, not just the first. */
export class ConfigError extends PodGatewayError {
  override readonly exitCode: number = ExitCode.config;
  constructor(readonly issues: ConfigIssue[]) {
    super(
      issues.length === 1
        ? `invalid configuration: ${formatIssue(issues[0]!)}`
        : `invalid configuration (${issues.length} problems):\n${issues.map((i) => "  " + formatIssue(i)).join("\n")}`,
    );
    this.name = "ConfigError";
  }
}

export class UsageError extends PodGatewayError {
  override readonly exitCode: number = ExitCode.config;
  override name = "UsageError";
}

export class UnsafeHostError extends PodGatewayError {
  override readonly exitCode: number = ExitCode.unsafeHost;
  override name = "UnsafeHostError";
}

/** A named step of a role failed; the message says which step and why. */
export class StepError extends PodGatewayError {
  override name = "StepError";
  constructor(readonly step: string, message: string, options?: { cause?: unknown }) {
    super(`${step}: ${message}`, options);
  }
}

/** A command we ran exited non-zero (or could not start). */
export class CommandError extends PodGatewayError {
  override name = "CommandError";
  constructor(
    readonly argv: readonly string[],
    readonly code: number | null,
    readonly stderr: string,
    what?: string,
  ) {
    super(`${what ? what + ": " : ""}${argv.join(" ")} failed${code === null ? "" : ` (exit ${code})`}${stderr.trim() ? `: ${stderr.trim()}` : ""}`);
  }
}

export class NotImplementedError extends PodGatewayError {
  override name = "NotImplementedError";
}
