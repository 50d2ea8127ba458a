// Time behind an interface so retries, backoff and timers are tested without waiting.
export interface Clock {
  now(): number; // milliseconds
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      // The abort listener is removed when the timer fires: a long-lived signal passed to many
      // sleeps (a poll loop) must not collect one listener per sleep.
      const onAbort = () => (clearTimeout(t), resolve());
      const t = setTimeout(() => (signal?.removeEventListener("abort", onAbort), resolve()), ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};
