// The one root logger: consola's core with a reporter printing what consola/basic prints
// ("[info] [tag] message"), everything to stderr so stdout stays for command output
// (`config --json`, `check-done`).
// Start-up: consola/basic creates a default instance at import, which touches process.stdout and
// process.stderr; creating those two streams costs a Bun process ~28 ms of CPU (as much as the
// whole runtime's start-up), and its reporter loads node:util (~10 ms). consola/core touches
// neither; lines go out through console.error (a synchronous write to fd 2, no stream object),
// and only a line with something other than strings loads node:util to format it.
import { createConsola, type ConsolaInstance, type ConsolaReporter, type LogObject } from "consola/core";

export type Logger = ConsolaInstance;

const LEVELS: Record<string, number> = { silent: -999, fatal: 0, error: 0, warn: 1, log: 2, info: 3, success: 3, debug: 4, trace: 5, verbose: 999 };

/** Parse LOG_LEVEL (a name or a number); undefined when unset or unknown. */
export function parseLogLevel(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const v = value.trim().toLowerCase();
  if (v in LEVELS) return LEVELS[v];
  if (/^-?\d+$/.test(v)) return Number(v);
  return undefined;
}

function serialise(arg: unknown): unknown {
  if (arg instanceof Error) return { name: arg.name, message: arg.message };
  return arg;
}

/** Render one log object as a JSON line (pure: used by the reporter and by tests). */
export function renderJsonLine(o: LogObject): string {
  const [first, ...rest] = o.args;
  const rec: Record<string, unknown> = {
    time: o.date.toISOString(),
    level: o.type,
    ...(o.tag ? { tag: o.tag } : {}),
    msg: first instanceof Error ? first.message : typeof first === "string" ? first : JSON.stringify(serialise(first)),
  };
  if (rest.length) rec.args = rest.map(serialise);
  return JSON.stringify(rec);
}

/** Where log lines go: stderr, one synchronous write per line (console.error adds the newline). */
export type LineSink = (line: string) => void;
const stderrLine: LineSink = (line) => console.error(line);

type Util = typeof import("node:util");
let util: Util | undefined;
/** node:util, loaded the first time a line holds more than strings (an object, a format string). */
function nodeUtil(): Util {
  util ??= process.getBuiltinModule("node:util") as Util;
  return util;
}

function formatStack(stack: string, message: string, level: number): string {
  const indent = "  ".repeat(level + 1);
  const cwd = process.cwd() + "/";
  const lines = stack.split("\n").splice(message.split("\n").length).map((l) => l.trim().replace("file://", "").replace(cwd, ""));
  return indent + lines.join(`\n${indent}`);
}

function formatError(err: Error & { cause?: unknown }, level: number): string {
  const message = err.message ?? nodeUtil().format(err);
  const stack = err.stack ? formatStack(err.stack, message, level) : "";
  const caused = level > 0 ? `${"  ".repeat(level)}[cause]: ` : "";
  const cause = err.cause ? "\n\n" + formatError(err.cause as Error, level + 1) : "";
  return caused + message + "\n" + stack + cause;
}

/**
 * A log call's arguments as one message, as consola/basic formats them: errors as message and
 * stack, then node's util.format (strings joined by spaces; %-directives in a first string that
 * has more arguments after it; objects inspected). Plain strings never load node:util.
 */
export function formatLogArgs(args: readonly unknown[]): string {
  const parts = args.map((a) => (a && typeof (a as Error).stack === "string" ? formatError(a as Error, 0) : a));
  const plain = parts.every((p) => typeof p === "string") && !(parts.length > 1 && (parts[0] as string).includes("%"));
  return plain ? parts.join(" ") : nodeUtil().formatWithOptions({ colors: false, compact: true }, ...parts);
}

/** consola/basic's line: "[type] [tag] message" (empty parts left out). Pure. */
export function renderTextLine(o: Pick<LogObject, "type" | "tag" | "args">): string {
  return [o.type ? `[${o.type}]` : "", o.tag ? `[${o.tag}]` : "", formatLogArgs(o.args)].filter(Boolean).join(" ");
}

export function createLogger(env: Record<string, string | undefined> = process.env, sink: LineSink = stderrLine): Logger {
  const level = parseLogLevel(env.LOG_LEVEL) ?? 3;
  const json = (env.LOG_FORMAT ?? "").toLowerCase() === "json";
  const reporter: ConsolaReporter = json ? { log: (o) => sink(renderJsonLine(o)) } : { log: (o) => sink(renderTextLine(o)) };
  return createConsola({ level, reporters: [reporter], formatOptions: { date: false, colors: false, compact: true } });
}

let root: Logger | undefined;
let rootSink: LineSink = stderrLine;
/** The process-wide root logger; modules take `log().withTag("module")`. */
export function log(): Logger {
  root ??= createLogger(process.env, (line) => rootSink(line));
  return root;
}

/**
 * Where the root logger's lines go from now on (the long-lived roles: a sink that never blocks on
 * stderr, src/sys/stderr-sink.ts). Returns the previous sink.
 */
export function setRootSink(sink: LineSink): LineSink {
  const before = rootSink;
  rootSink = sink;
  return before;
}
