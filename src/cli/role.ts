// What every role command does before its first change: load and validate the whole
// configuration (exit 2, nothing changed), log the one-screen summary, run role-specific
// checks (also exit 2), then the host-safety check (exit 3).
import { ConfigError, type ConfigIssue } from "../core/errors.ts";
import { summarizeConfig } from "../core/settings/summary.ts";
import type { Role } from "../core/settings/roles.ts";
import type { ResolvedConfig } from "../core/settings/types.ts";
import { loadConfig } from "../sys/config.ts";
import { assertSafeToChangeNetwork } from "../sys/host-safety.ts";
import type { Logger } from "../sys/log.ts";

export interface RoleArgs {
  "config-dir"?: string;
  "allow-host-network"?: boolean;
}

/**
 * `role` decides how strict loading is (core/settings/roles.ts): a client role refuses only bad
 * values it reads and its own nat.conf line (`podName`), and warns about the rest.
 */
export function prepareRole(
  args: RoleArgs,
  logger: Logger,
  role: Role,
  extraChecks?: (cfg: ResolvedConfig) => ConfigIssue[],
  podName?: string,
): ResolvedConfig {
  const cfg = loadConfig({ configDir: args["config-dir"], role, podName });
  for (const line of summarizeConfig(cfg)) logger.info(line);
  const issues = extraChecks?.(cfg) ?? [];
  if (issues.length > 0) throw new ConfigError(issues);
  assertSafeToChangeNetwork(args["allow-host-network"] ?? false);
  return cfg;
}
