// Entry point: multi-call dispatch (the binary called as /bin/client_init.sh runs client-init),
// the citty root command, and the single place where errors become exit codes.
import type { CommandDef } from "citty";
import { checkArgs, type ArgSpec } from "./cli/args.ts";
import { commands, multiCallNames } from "./cli/commands.ts";
import { defaultArgs } from "./cli/define.ts";
import { ExitCode, PodGatewayError, UsageError } from "./core/errors.ts";
import { basenamePath } from "./core/path.ts";
import { log } from "./sys/log.ts";
import { flushOutput, writeStderr } from "./sys/output.ts";
import { versionString } from "./version.ts";

// citty (and the node:util it loads) is imported when a command runs, not at start-up.
const citty = () => import("citty");

function rootCommand(): CommandDef<any> {
  return {
    meta: {
      name: "pod-gateway",
      version: versionString,
      description: "Route Kubernetes pods' traffic through a gateway pod over VXLAN",
    },
    subCommands: commands,
  };
}

/** The command a multi-call name stands for, or undefined when called as pod-gateway. */
export function commandForInvocation(argv0: string): string | undefined {
  return multiCallNames[basenamePath(argv0)];
}

/** Find the command the help flag refers to: walks sub-commands up to the first flag or `--`. */
async function resolveForHelp(root: CommandDef<any>, args: string[]): Promise<[CommandDef<any>, CommandDef<any> | undefined]> {
  let cmd = root;
  let parent: CommandDef<any> | undefined;
  for (const a of args) {
    if (a.startsWith("-")) break;
    const next = (await subCommandsOf(cmd))?.[a];
    if (!next) break;
    parent = cmd;
    cmd = await loadCommand(next);
  }
  return [cmd, parent];
}

async function subCommandsOf(cmd: CommandDef<any>): Promise<Record<string, unknown> | undefined> {
  return (typeof cmd.subCommands === "function" ? await cmd.subCommands() : await cmd.subCommands) as Record<string, unknown> | undefined;
}

/** citty lets a sub-command be a definition, a promise of one or a function returning one (our lazy loaders). */
async function loadCommand(sub: unknown): Promise<CommandDef<any>> {
  return typeof sub === "function" ? await (sub as () => Promise<CommandDef<any>>)() : await (sub as CommandDef<any>);
}

/** Descend through sub-command names at the head of args; returns the leaf and its arguments. */
async function resolveLeaf(root: CommandDef<any>, args: string[]): Promise<[CommandDef<any>, string[]]> {
  let cmd = root;
  let rest = args;
  let path = "pod-gateway";
  for (;;) {
    const subs = await subCommandsOf(cmd);
    if (!subs || Object.keys(subs).length === 0) return [cmd, rest];
    const name = rest[0];
    if (name === undefined || name.startsWith("-")) {
      if (cmd.run) return [cmd, rest];
      throw new UsageError(`${path}: a command is required (one of ${Object.keys(subs).join(", ")})`);
    }
    const next = subs[name];
    if (!next) throw new UsageError(`Unknown command ${name} for ${path} (see ${path} --help)`);
    cmd = await loadCommand(next);
    path += ` ${name}`;
    rest = rest.slice(1);
  }
}

/**
 * The roles the Helm chart and the webhook run with no arguments. Their files define themselves
 * without citty (cli/define.ts), so such a run starts them directly: no citty, no node:util.
 */
const ROLES = new Set(["client-init", "client-sidecar", "gateway-init", "gateway-sidecar"]);

function beforeDoubleDash(args: string[]): string[] {
  const i = args.indexOf("--");
  return i < 0 ? args : args.slice(0, i);
}

export async function main(argv0: string, args: string[]): Promise<number> {
  const root = rootCommand();
  const multi = commandForInvocation(argv0);
  // Called through a drop-in name: run that role with the arguments given (the chart gives none).
  if (multi) args = [multi, ...args];
  const head = beforeDoubleDash(args);
  try {
    if (head.includes("--help") || head.includes("-h")) {
      const [cmd, parent] = await resolveForHelp(root, head);
      await (await citty()).showUsage(cmd, parent);
      return ExitCode.ok;
    }
    // `version` alone too: the same line without loading citty and the command's chunk.
    if (args.length === 1 && (args[0] === "--version" || args[0] === "-v" || args[0] === "version")) {
      console.log(`pod-gateway ${versionString}`); // not process.stdout: see src/cli/version.ts
      return ExitCode.ok;
    }
    if (args.length === 0) {
      await (await citty()).showUsage(root);
      return ExitCode.config;
    }
    // A role with no arguments (every pod's case): what citty's runCommand would do, without it.
    if (args.length === 1 && ROLES.has(args[0]!)) {
      const leaf = await commands[args[0]!]!();
      const defs = typeof leaf.args === "function" ? await leaf.args() : await leaf.args;
      const result = await leaf.run!({ rawArgs: [], args: defaultArgs(defs) as never, cmd: leaf });
      return typeof result === "number" ? result : ExitCode.ok;
    }
    // citty's runCommand drops a sub-command's result, so walk to the leaf command ourselves
    // and run it directly: a numeric result of run() is the exit code (check-done, lab exec).
    const [leaf, rest] = await resolveLeaf(root, args);
    const defs = (typeof leaf.args === "function" ? await leaf.args() : await leaf.args) as Record<string, ArgSpec> | undefined;
    const problems = checkArgs(defs, rest);
    if (problems.length) {
      // The usage of the command goes to stderr with the error: stdout stays for command output.
      const usage = await (await citty()).renderUsage(leaf);
      writeStderr((process.stderr.isTTY ? usage : usage.replace(/\x1b\[[0-9;]*m/g, "")) + "\n\n");
      throw new UsageError(`${problems.join("; ")} (see pod-gateway ${args.slice(0, args.length - rest.length).join(" ")} --help)`);
    }
    const res = await (await citty()).runCommand(leaf, { rawArgs: rest });
    return typeof res.result === "number" ? res.result : ExitCode.ok;
  } catch (e) {
    return reportError(e);
  }
}

export function reportError(e: unknown): number {
  const logger = log();
  if (e instanceof PodGatewayError) {
    logger.error(e.message);
    return e.exitCode;
  }
  if (e instanceof Error && e.name === "CLIError") {
    logger.error(`${e.message.replace(/\x1b\[[0-9;]*m/g, "")} (see pod-gateway --help)`);
    return ExitCode.config;
  }
  logger.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  return ExitCode.failure;
}

if (import.meta.main) {
  const code = await main(process.argv0, process.argv.slice(2));
  await flushOutput();
  process.exit(code);
}
