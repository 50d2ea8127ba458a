// The one root logger. consola/basic starts much faster than the fancy reporter; everything
// goes to stderr so stdout stays for command output (`config --json`, `check-done`).
import { createConsola, type ConsolaInstance, type LogObject } from "consola/basic";

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

export function createLogger(env: Record<string, string | undefined> = process.env): Logger {
  const level = parseLogLevel(env.LOG_LEVEL) ?? 3;
  const json = (env.LOG_FORMAT ?? "").toLowerCase() === "json";
  const logger = createConsola({
    level,
    stdout: process.stderr,
    stderr: process.stderr,
    formatOptions: { date: true, colors: false, compact: true },
  });
  if (json) {
    logger.setReporters([{ log: (o) => void process.stderr.write(renderJsonLine(o) + "\n") }]);
  }
  return logger;
}

let root: Logger | undefined;
/** The process-wide root logger; modules take `log().withTag("module")`. */
export function log(): Logger {
  root ??= createLogger();
  return root;
}
