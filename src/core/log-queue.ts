// What a long-lived role does with a log line when its stderr is not being read. A blocking write
// would stop the whole process: measured in the 200-client bench, the gateway-sidecar blocked in
// its stderr write, stopped draining dnsmasq's output, dnsmasq blocked in its own log write
// (`log-facility=-` writes synchronously; `log-async` does not change that for stderr) and DHCP and
// DNS stopped for every client for 10–13 s. So lines are written without blocking; what the reader
// has no room for waits in a bounded queue, in order; beyond the bound whole lines are dropped and
// counted, and once the queue has drained a notice says how many. Pure: the write is injected.

/** One non-blocking write: how many bytes the reader took (0..length), or "again" (no room now). */
export type WriteResult = number | "again";

export const LOG_QUEUE_MAX_BYTES = 256 * 1024;

export class LogQueue {
  private readonly chunks: Uint8Array[] = [];
  private queued = 0;
  private droppedLines = 0;

  constructor(
    private readonly write: (bytes: Uint8Array) => WriteResult,
    /** The notice line (with its newline) once the queue drained after `n` lines were dropped. */
    private readonly notice: (n: number) => Uint8Array,
    readonly maxBytes = LOG_QUEUE_MAX_BYTES,
  ) {}

  /** Bytes waiting for the reader. */
  get pending(): number {
    return this.queued;
  }

  /** Lines dropped since the last notice. */
  get dropped(): number {
    return this.droppedLines;
  }

  /**
   * Write `line` (its bytes, newline included) now if nothing is waiting, else queue it, or drop
   * it when the queue would pass its bound. True when something waits: call flush() later.
   */
  push(line: Uint8Array): boolean {
    if (this.chunks.length === 0 && this.droppedLines === 0) {
      const rest = this.attempt(line);
      if (rest === undefined) return false;
      line = rest;
    }
    if (this.queued + line.length > this.maxBytes) {
      this.droppedLines++;
      return true;
    }
    this.chunks.push(line);
    this.queued += line.length;
    return true;
  }

  /** Write what waits, as far as the reader takes it. True while something still waits. */
  flush(): boolean {
    while (this.chunks.length > 0) {
      const head = this.chunks[0]!;
      const rest = this.attempt(head);
      if (rest !== undefined) {
        this.queued -= head.length - rest.length;
        this.chunks[0] = rest;
        return true;
      }
      this.chunks.shift();
      this.queued -= head.length;
    }
    if (this.droppedLines > 0) {
      const n = this.droppedLines;
      this.droppedLines = 0;
      const line = this.notice(n);
      const rest = this.attempt(line);
      if (rest === undefined) return false;
      this.chunks.push(rest);
      this.queued += rest.length;
      return true;
    }
    return false;
  }

  /**
   * At exit: hand everything that waits (and the notice of dropped lines) to `writeAll`, which may
   * block — what a role logged before it exits must reach the reader (issue 12 §8).
   */
  drain(writeAll: (bytes: Uint8Array) => void): void {
    for (const c of this.chunks.splice(0)) writeAll(c);
    this.queued = 0;
    if (this.droppedLines > 0) {
      writeAll(this.notice(this.droppedLines));
      this.droppedLines = 0;
    }
  }

  /** undefined: all written; else the part the reader had no room for. */
  private attempt(bytes: Uint8Array): Uint8Array | undefined {
    const r = this.write(bytes);
    if (r === "again") return bytes;
    return r >= bytes.length ? undefined : bytes.subarray(r);
  }
}
