// realClock.sleep: a long-lived signal passed to many sleeps must not collect listeners.
import { expect, test } from "bun:test";
import { realClock } from "../../src/sys/clock.ts";

test("a finished sleep leaves no abort listener on the signal; an abort still ends a sleep", async () => {
  const ac = new AbortController();
  let added = 0;
  let removed = 0;
  const add = ac.signal.addEventListener.bind(ac.signal);
  const remove = ac.signal.removeEventListener.bind(ac.signal);
  ac.signal.addEventListener = ((...a: Parameters<typeof add>) => (added++, add(...a))) as typeof add;
  ac.signal.removeEventListener = ((...a: Parameters<typeof remove>) => (removed++, remove(...a))) as typeof remove;
  for (let i = 0; i < 20; i++) await realClock.sleep(1, ac.signal);
  expect(added).toBe(20);
  expect(removed).toBe(20);
  const pending = realClock.sleep(60_000, ac.signal);
  ac.abort();
  await pending; // resolves at once (the test would time out otherwise)
});
