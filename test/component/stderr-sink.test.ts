// A long-lived role never stops for its log (src/sys/stderr-sink.ts, src/core/log-queue.ts). The
// gateway-sidecar relays dnsmasq's output to its own stderr; when the reader of that stderr stalls
// (a slow log pipe), a blocking write stopped the sidecar, the sidecar stopped draining dnsmasq,
// and dnsmasq (which blocks on its own log writes) stopped answering DHCP and DNS. Here a script
// supervises a child that writes ~1 MB of lines while the script's stderr is a FIFO nobody reads:
// with the non-blocking sink the child is drained and exits, and once the FIFO is read, the lines
// kept and the notice of the dropped ones arrive; with the blocking sink (control) it never exits.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "../helpers/bin.ts";

setDefaultTimeout(30_000);

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "pgw-sink-"));
  writeFileSync(
    join(dir, "relay.ts"),
    [
      `import { spawnSupervised } from ${JSON.stringify(join(REPO, "src/sys/supervisor.ts"))};`,
      `import { log } from ${JSON.stringify(join(REPO, "src/sys/log.ts"))};`,
      `import { useNonBlockingStderr } from ${JSON.stringify(join(REPO, "src/sys/stderr-sink.ts"))};`,
      `if (process.env.NONBLOCKING === "1" && !useNonBlockingStderr()) { console.log("no sink"); process.exit(3); }`,
      `const child = spawnSupervised(["sh", "-c", "seq -f relayed-line-%06g-of-sixty-four-bytes-xxxxxxxxxxxxxxxxxxxxxxxxxxxxx 1 16000 >&2"], { logger: log().withTag("child") });`,
      `const code = await child.exited;`,
      `console.log("child exited " + code);`,
    ].join("\n"),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function relayIntoStalledFifo(nonBlocking: boolean): Promise<{ beforeRead: string; logged: string }> {
  const fifo = join(dir, nonBlocking ? "nb.fifo" : "b.fifo");
  rmSync(fifo, { force: true });
  expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
  // (Distinct lines: consola folds repeated identical messages.)
  // A reader that holds the FIFO open and never reads: the pipe fills after 64 KiB.
  const holder = Bun.spawn(["sh", "-c", 'exec 3<"$F"; exec sleep 60'], { env: { ...process.env, F: fifo } });
  const relay = Bun.spawn(["sh", "-c", 'exec "$BUN" "$SCRIPT" 2>"$F"'], {
    env: { ...process.env, F: fifo, BUN: process.execPath, SCRIPT: join(dir, "relay.ts"), NONBLOCKING: nonBlocking ? "1" : "0", LOG_LEVEL: "info" },
    stdout: "pipe",
  });
  let stdout = "";
  const reading = (async () => {
    for await (const c of relay.stdout) stdout += new TextDecoder().decode(c);
  })();
  // The child writes ~1 MB: drained, it is done in well under a second (0.3 s here; waited for up
  // to 10 s). Blocked (the control), it never is: 2 s show that without slowing the suite.
  const deadline = Date.now() + (nonBlocking ? 10_000 : 2000);
  while (!stdout.includes("child exited") && Date.now() < deadline) await Bun.sleep(50);
  const beforeRead = stdout.split("\n")[0] ?? "";
  // Now read the FIFO: a blocked relay gets going again, a waiting one flushes its queue and exits.
  const cat = Bun.spawn(["cat", fifo], { stdout: "pipe" });
  const logged = await new Response(cat.stdout).text();
  await relay.exited;
  await reading;
  holder.kill();
  return { beforeRead, logged };
}

test("non-blocking sink: the supervised child is drained while stderr is stalled; kept lines and the drop notice arrive later", async () => {
  const r = await relayIntoStalledFifo(true);
  // "child exited" was seen before anyone read the FIFO
  expect(r.beforeRead).toBe("child exited 0");
  const lines = r.logged.split("\n").filter(Boolean);
  const relayed = lines.filter((l) => l.includes("relayed-line"));
  // some lines kept (the pipe's 64 KiB and the 256 KiB queue), far from all 16000
  expect(relayed.length).toBeGreaterThan(1000);
  expect(relayed.length).toBeLessThan(16000);
  const notice = lines.find((l) => l.includes("log line(s) dropped"));
  expect(notice).toBeDefined();
  const n = Number(/(\d+) log line\(s\) dropped/.exec(notice!)![1]);
  expect(relayed.length + n).toBe(16000);
});

test("control: with the blocking sink the child is not drained while stderr is stalled", async () => {
  const r = await relayIntoStalledFifo(false);
  // only once the FIFO was read did it get going again
  expect(r.beforeRead).toBe("");
  expect(r.logged.split("\n").filter((l) => l.includes("relayed-line")).length).toBe(16000);
});
