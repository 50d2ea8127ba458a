// Command output on stdout/stderr, and the wait at exit until all of it has reached the kernel.
//
// Bun's process.stdout/stderr queue what a full pipe (a container log, `| head`, a slow reader)
// does not take at once, and process.exit() drops that queue: `config --json` was cut at the
// pipe's 64–128 KiB while exiting 0. But merely creating those two streams costs a Bun process
// ~28 ms of CPU, which every role would pay for nothing (the logger and `version` write with
// console.*, which Bun delivers completely before exit). So command output goes through
// writeStdout/writeStderr, which remember the stream was used, and flushOutput ends only those.
const used = new Set<NodeJS.WriteStream>();

export function writeStdout(text: string): void {
  used.add(process.stdout);
  process.stdout.write(text);
}

export function writeStderr(text: string): void {
  used.add(process.stderr);
  process.stderr.write(text);
}

/**
 * Wait until everything written through writeStdout/writeStderr (or `streams`) has been handed to
 * the kernel. Ending a stream calls back once its queue is written; an error (the reader has gone:
 * EPIPE) ends the wait too, as nothing more can be delivered.
 */
export function flushOutput(streams: Iterable<NodeJS.WriteStream> = used): Promise<void> {
  return Promise.all(
    [...streams].map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.writableFinished || s.destroyed) return resolve();
          // A late write after end() (a child's output still being forwarded) must not crash the exit.
          s.on("error", () => resolve());
          s.end(() => resolve());
        }),
    ),
  ).then(() => undefined);
}
