// Runs one long-lived child (dnsmasq) in the foreground: its output lines go through our
// logger, SIGTERM/SIGINT reach it as SIGTERM, and its exit becomes ours.
import { constants } from "node:os";
import type { Logger } from "./log.ts";

export interface SupervisedChild {
  readonly pid: number;
  /** Exit code, or 128 + signal number when the child was killed by a signal (shell convention). */
  readonly exited: Promise<number>;
  /** True once stop() was called: an exit after that is expected. */
  readonly stopping: boolean;
  /** Ask the child to terminate (default SIGTERM). */
  stop(signal?: NodeJS.Signals): void;
}

export interface SuperviseOptions {
  logger: Logger;
  env?: Record<string, string>;
  /** Level for a line of output; default: warn for lines that look like problems, info otherwise. */
  levelOf?: (line: string) => "info" | "warn" | "debug";
}

export function defaultLevelOf(line: string): "info" | "warn" {
  return /\b(fail(ed|ure)?|error|cannot|illegal|bad|refused|warning|no address range)\b/i.test(line) ? "warn" : "info";
}

async function pumpLines(stream: ReadableStream<Uint8Array>, onLine: (l: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of stream) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
      if (line.trim() !== "") onLine(line);
    }
  }
  buf += decoder.decode();
  if (buf.trim() !== "") onLine(buf);
}

export function exitCodeOf(code: number | null, signal: string | number | null | undefined): number {
  if (typeof signal === "number" && code === null) return 128 + signal;
  if (code !== null) return code;
  const n = signal ? (constants.signals as Record<string, number>)[signal] : undefined;
  return 128 + (n ?? 0);
}

export function spawnSupervised(argv: readonly string[], opts: SuperviseOptions): SupervisedChild {
  const log = opts.logger;
  const levelOf = opts.levelOf ?? defaultLevelOf;
  log.debug(`starting ${argv.join(" ")}`);
  const proc = Bun.spawn(argv as string[], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: opts.env ? { ...process.env, ...opts.env } : undefined,
  });
  const emit = (l: string) => log[levelOf(l)](l);
  const pumps = Promise.all([pumpLines(proc.stdout, emit), pumpLines(proc.stderr, emit)]).catch(() => {});
  let stopping = false;
  const exited = (async () => {
    const code = await proc.exited;
    await pumps; // the last lines (often the reason it died) before the exit is reported
    return exitCodeOf(code, proc.signalCode);
  })();
  return {
    pid: proc.pid,
    exited,
    get stopping() {
      return stopping;
    },
    stop(signal: NodeJS.Signals = "SIGTERM") {
      stopping = true;
      try {
        proc.kill(signal);
      } catch {
        // already gone
      }
    },
  };
}

/**
 * Pass SIGTERM and SIGINT on to the child as SIGTERM (dnsmasq ignores SIGINT in the
 * foreground), after `first` (what must happen before the child stops: gateway-sidecar ends its
 * watch connections). Returns a function that removes the handlers.
 */
export function forwardSignals(child: SupervisedChild, log: Logger, opts: { signals?: readonly NodeJS.Signals[]; first?: () => void } = {}): () => void {
  const handlers = (opts.signals ?? ["SIGTERM", "SIGINT"]).map((sig) => {
    const h = () => {
      log.info(`${sig} received: stopping`);
      try {
        opts.first?.();
      } catch (e) {
        log.error(`before stopping: ${(e as Error).message}`);
      }
      child.stop("SIGTERM");
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };
}
