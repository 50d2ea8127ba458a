// Everything the binary writes reaches a pipe completely before it exits (issue 12 §8): container
// logs are pipes, and process.exit() used to drop what a full pipe had not taken yet — `config
// --json` was cut at 131,072 bytes here while exiting 0. The reader below sleeps before reading,
// so the pipe is full long before the binary is done writing.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { binPath, REPO } from "../helpers/bin.ts";

setDefaultTimeout(60_000);

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "pgw-flush-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Run the binary with stdout or stderr into a pipe whose reader starts a second late. With
 * `pipeBytes`, the reader first shrinks the pipe to that size (F_SETPIPE_SZ) and only then lets the
 * binary start, so a few KiB of output — all the bounded stderr reports of today produce — already
 * fill it.
 */
function throughSlowPipe(args: string[], stream: "stdout" | "stderr", pipeBytes?: number): { code: number; piped: Buffer; direct: Buffer } {
  const out = join(dir, `piped-${stream}`);
  const status = join(dir, "status");
  const direct = join(dir, `direct-${stream}`);
  const ready = join(dir, "ready");
  rmSync(ready, { force: true });
  // Reference: the same command writing to a regular file (never blocks).
  Bun.spawnSync(["sh", "-c", stream === "stdout" ? '"$@" > "$OUT" 2>/dev/null' : '"$@" 2> "$OUT" >/dev/null', "sh", binPath(), ...args], { env: { ...process.env, OUT: direct } });
  const redirect = stream === "stdout" ? "2>/dev/null" : "2>&1 >/dev/null";
  // F_SETPIPE_SZ is 1031 on Linux; the writer waits for READY so the pipe is small before it writes.
  const reader = pipeBytes
    ? `python3 -c 'import fcntl,sys,time; fcntl.fcntl(0, 1031, ${pipeBytes}); open(sys.argv[1], "w").close(); time.sleep(1); sys.stdout.buffer.write(sys.stdin.buffer.read())' "$READY" > "$OUT"`
    : `{ sleep 1; cat > "$OUT"; }`;
  const wait = pipeBytes ? `while [ ! -e "$READY" ]; do sleep 0.02; done; ` : "";
  const r = Bun.spawnSync(["sh", "-c", `{ ${wait}"$@" ${redirect}; echo $? > "$STATUS"; } | ${reader}`, "sh", binPath(), ...args], {
    env: { ...process.env, OUT: out, STATUS: status, READY: ready },
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`sh failed: ${r.stderr.toString()}`);
  return { code: Number(readFileSync(status, "utf8").trim()), piped: readFileSync(out), direct: readFileSync(direct) };
}

describe("output reaches a slow pipe completely before exit", () => {
  test("config --json with a large nat.conf: > 1 MB on stdout, all of it, exit 0", () => {
    const cfg = join(dir, "big-nat");
    Bun.spawnSync(["mkdir", "-p", cfg]);
    copyFileSync(join(REPO, "config", "settings.sh"), join(cfg, "settings.sh"));
    const ports = Array.from({ length: 20000 }, (_, i) => `tcp:${i + 1}`).join(",");
    writeFileSync(join(cfg, "nat.conf"), `big 12 ${ports}\n`);
    const r = throughSlowPipe(["config", "--json", "--config-dir", cfg], "stdout");
    expect(r.code).toBe(0);
    expect(r.direct.length).toBeGreaterThan(1024 * 1024);
    expect(r.piped.length).toBe(r.direct.length);
    expect(r.piped.equals(r.direct)).toBe(true);
    expect(JSON.parse(r.piped.toString()).nat[0].ports).toHaveLength(20000);
  });

  // Reports on stderr are bounded (at most 20 problems and 50 unknown keys listed per file), so
  // these two shrink the pipe to one page to make a full pipe certain.
  test("an error report on stderr arrives completely through a full pipe, exit 2", () => {
    const cfg = join(dir, "many-errors");
    Bun.spawnSync(["mkdir", "-p", cfg]);
    writeFileSync(join(cfg, "settings.sh"), Array.from({ length: 5000 }, (_, i) => `BAD_${i}=$(true)\n`).join(""));
    // nat.conf: a bad line per pod (each also warned about: '_' can never match a pod name).
    writeFileSync(join(cfg, "nat.conf"), Array.from({ length: 500 }, (_, i) => `pod_${i} 999 tcp:99999\n`).join(""));
    const r = throughSlowPipe(["config", "--config-dir", cfg], "stderr", 4096);
    expect(r.code).toBe(2);
    expect(r.direct.length).toBeGreaterThan(4 * 4096);
    expect(r.piped.length).toBe(r.direct.length);
    expect(r.piped.equals(r.direct)).toBe(true);
  });

  test("log lines (warnings) on stderr arrive completely through a full pipe too", () => {
    const cfg = join(dir, "many-warnings");
    Bun.spawnSync(["mkdir", "-p", cfg]);
    writeFileSync(join(cfg, "settings.sh"), Array.from({ length: 5000 }, (_, i) => `UNKNOWN_SETTING_${i}=x\n`).join(""));
    const r = throughSlowPipe(["config", "--config-dir", cfg], "stderr", 4096);
    expect(r.direct.length).toBeGreaterThan(4096);
    expect(r.piped.length).toBe(r.direct.length);
    expect(r.piped.toString().trimEnd().split("\n").at(-1)).toContain("more unknown settings");
  });

  test("a reader that goes away early (| head) ends the wait: the binary exits, no hang", () => {
    const cfg = join(dir, "big-nat");
    const r = Bun.spawnSync(["sh", "-c", '"$@" | head -c 10', "sh", binPath(), "config", "--json", "--config-dir", cfg], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
    expect(r.stdout.toString()).toBe('{\n  "setti');
    expect(r.exitCode).toBe(0);
  });
});
