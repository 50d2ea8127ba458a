// A log sink for the long-lived roles that never blocks on stderr (src/core/log-queue.ts says
// why). fd 2 itself stays as it is: /proc/self/fd/2 is opened again with O_NONBLOCK, which for a
// pipe or FIFO (what container runtimes give a container) is a new open file description of the
// same pipe, so nothing else sharing fd 2 sees a changed flag. Where that cannot be opened (a
// socket, no /proc), the caller keeps its blocking sink.
import { closeSync, constants, openSync, writeSync } from "node:fs";
import type { LogObject } from "consola/core";
import { LOG_QUEUE_MAX_BYTES, LogQueue, type WriteResult } from "../core/log-queue.ts";
import { renderJsonLine, renderTextLine, setRootSink, type LineSink } from "./log.ts";

/** How often lines that wait for the reader are tried again. */
export const LOG_RETRY_MS = 50;

export interface NonBlockingSink {
  sink: LineSink;
  /** Bytes waiting for the reader and lines dropped since the last notice. */
  readonly state: { pending: number; dropped: number };
  /** At exit: what waits is written to `blockingFd` (default fd 2), blocking until the reader took it; then the descriptor is closed. */
  close(): void;
}

/**
 * A sink writing to `path` (default: this process's stderr) without blocking. `notice` renders
 * the line that says how many lines were dropped (in the logger's format, without newline).
 */
export function openNonBlockingSink(notice: (dropped: number) => string, path = "/proc/self/fd/2", maxBytes?: number, blockingFd = 2): NonBlockingSink | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_APPEND);
  } catch {
    return undefined;
  }
  const enc = new TextEncoder();
  const write = (b: Uint8Array): WriteResult => {
    try {
      return writeSync(fd, b);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") return "again";
      return b.length; // the reader is gone (EPIPE) or the descriptor broke: the line is lost either way
    }
  };
  const q = new LogQueue(write, (n) => enc.encode(notice(n) + "\n"), maxBytes);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const retry = () => {
    timer = undefined;
    if (q.flush()) schedule();
  };
  const schedule = () => {
    timer ??= setTimeout(retry, LOG_RETRY_MS);
  };
  let closed = false;
  return {
    sink(line) {
      if (closed) return;
      if (q.push(enc.encode(line + "\n"))) schedule();
    },
    get state() {
      return { pending: q.pending, dropped: q.dropped };
    },
    close() {
      if (closed) return;
      closed = true;
      if (timer) clearTimeout(timer);
      try {
        q.drain((b) => {
          for (let off = 0; off < b.length; ) off += writeSync(blockingFd, b.subarray(off));
        });
      } catch {
        // the reader is gone: nothing more can reach it
      }
      try {
        closeSync(fd);
      } catch {}
    },
  };
}

/**
 * The root logger of a long-lived role writes through a non-blocking sink from now on (when
 * stderr can be opened so); the dropped-lines notice is a warning in LOG_FORMAT.
 */
export function useNonBlockingStderr(env: Record<string, string | undefined> = process.env): NonBlockingSink | undefined {
  const json = (env.LOG_FORMAT ?? "").toLowerCase() === "json";
  const text = (n: number) => `${n} log line(s) dropped: stderr was not read fast enough (lines wait in up to ${LOG_QUEUE_MAX_BYTES / 1024} KiB, so that the sidecar never stops for its log)`;
  const notice = (n: number) =>
    json ? renderJsonLine({ type: "warn", tag: "log", args: [text(n)], date: new Date(), level: 1 } as LogObject) : renderTextLine({ type: "warn", tag: "log", args: [text(n)] });
  const s = openNonBlockingSink(notice);
  if (!s) return undefined;
  setRootSink(s.sink);
  process.on("exit", () => s.close());
  return s;
}
