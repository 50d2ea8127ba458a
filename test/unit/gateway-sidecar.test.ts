// The sidecar's effects in isolation (no root): the supervisor (output lines, exit codes,
// signals), the resolv.conf watcher (in-place writes and rename-over), and the resolv.conf
// copy and original.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConsola } from "consola/basic";
import { originalResolvPath, saveOriginalResolvConf, syncResolvCopy } from "../../src/roles/gateway-sidecar.ts";
import { defaultLevelOf, exitCodeOf, forwardSignals, spawnSupervised } from "../../src/sys/supervisor.ts";
import { watchFile, writeFileAtomic } from "../../src/sys/watch.ts";

const dir = mkdtempSync(join(tmpdir(), "pgw-sidecar-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function recorder() {
  const lines: string[] = [];
  const l = createConsola({ level: 5 });
  l.setReporters([{ log: (o) => void lines.push(`${o.type}${o.tag ? ` [${o.tag}]` : ""}: ${o.args.join(" ")}`) }]);
  return { log: l, lines };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(10);
  }
}

describe("spawnSupervised", () => {
  test("every output line goes through the logger (problems as warnings); the exit code is the child's", async () => {
    const r = recorder();
    const c = spawnSupervised(["sh", "-c", "echo started; echo 'failed to bind' >&2; printf 'no newline'; exit 3"], { logger: r.log });
    expect(await c.exited).toBe(3);
    expect(c.stopping).toBe(false);
    expect(r.lines.filter((l) => !l.startsWith("debug"))).toEqual(expect.arrayContaining(["info: started", "warn: failed to bind", "info: no newline"]));
  });

  test("stop() sends SIGTERM: a child that exits on it reports its own code; one killed by it reports 128+15", async () => {
    const r = recorder();
    const trapping = spawnSupervised(["sh", "-c", "trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done"], { logger: r.log });
    await waitFor("the child to start", () => r.lines.includes("info: ready"), 5000);
    trapping.stop();
    expect(await trapping.exited).toBe(0);
    expect(trapping.stopping).toBe(true);
    const plain = spawnSupervised(["sleep", "30"], { logger: r.log });
    plain.stop();
    expect(await plain.exited).toBe(143);
  });

  test("SIGTERM and SIGINT to us reach the child as SIGTERM (dnsmasq ignores SIGINT)", async () => {
    const listeners = process.listenerCount("SIGTERM");
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      const r = recorder();
      // The child reports which signal it got, then exits 0.
      const c = spawnSupervised(["sh", "-c", "trap 'echo got TERM; exit 0' TERM; trap 'echo got INT; exit 9' INT; echo ready; while :; do sleep 0.05; done"], { logger: r.log });
      await waitFor("the child to start", () => r.lines.includes("info: ready"), 5000);
      const off = forwardSignals(c, r.log);
      process.emit(sig);
      expect(await c.exited).toBe(0);
      off();
      expect(r.lines).toContain("info: got TERM");
      expect(r.lines).toContain(`info: ${sig} received: stopping`);
    }
    expect(process.listenerCount("SIGTERM")).toBe(listeners); // handlers removed again
  });

  test("`first` runs before the child is told to stop (gateway-sidecar ends its watch connections before dnsmasq), even when it throws", async () => {
    for (const fail of [false, true]) {
      const r = recorder();
      const order: string[] = [];
      const child = { pid: 0, exited: Promise.resolve(0), stopping: false, stop: (s?: string) => void order.push(`stop ${s}`) };
      const off = forwardSignals(child, r.log, {
        first: () => {
          order.push(`first (child stopping: ${child.stopping})`);
          if (fail) throw new Error("boom");
        },
      });
      try {
        process.emit("SIGTERM");
      } finally {
        off();
      }
      expect(order).toEqual(["first (child stopping: false)", "stop SIGTERM"]);
      if (fail) expect(r.lines).toContain("error: before stopping: boom");
    }
  });

  test("a missing program fails at spawn, naming it", () => {
    expect(() => spawnSupervised(["/nonexistent/dnsmasq"], { logger: recorder().log })).toThrow();
  });

  test("exit codes and levels", () => {
    expect(exitCodeOf(0, null)).toBe(0);
    expect(exitCodeOf(null, "SIGKILL")).toBe(137);
    expect(exitCodeOf(null, 15)).toBe(143);
    expect(defaultLevelOf("dnsmasq: failed to create listening socket for port 53: Address in use")).toBe("warn");
    expect(defaultLevelOf("dnsmasq-dhcp[1]: DHCPACK(vxlan0) 172.16.0.20 02:aa:bb:cc:dd:ee")).toBe("info");
  });
});

describe("watchFile", () => {
  test("an in-place rewrite (a bind-mounted resolv.conf) is seen", async () => {
    const f = join(dir, "inplace.conf");
    writeFileSync(f, "nameserver 10.0.0.1\n");
    let n = 0;
    const w = watchFile(f, () => n++, { pollMs: 5000 }); // polling too slow to be the one that fires
    try {
      writeFileSync(f, "nameserver 10.0.0.2\n");
      await waitFor("the change", () => n > 0, 2000);
    } finally {
      w.close();
    }
  });

  test("a rename over the file (ordinary files, ConfigMap swaps) is seen, and later in-place writes too", async () => {
    const f = join(dir, "renamed.conf");
    writeFileSync(f, "nameserver 10.0.0.1\n");
    let n = 0;
    const w = watchFile(f, () => n++, { pollMs: 50 });
    try {
      writeFileSync(`${f}.new`, "nameserver 10.0.0.3\n");
      renameSync(`${f}.new`, f);
      await waitFor("the rename", () => n > 0, 2000);
      const after = n;
      await Bun.sleep(100); // let the poller re-arm the inotify watch on the new inode
      writeFileSync(f, "nameserver 10.0.0.4\n");
      await waitFor("the in-place write after the rename", () => n > after, 2000);
    } finally {
      w.close();
    }
  });

  test("a burst of writes (truncate, then write) is coalesced; nothing fires after close()", async () => {
    const f = join(dir, "burst.conf");
    writeFileSync(f, "a\n");
    let n = 0;
    const w = watchFile(f, () => n++, { pollMs: 5000, debounceMs: 100 });
    writeFileSync(f, "");
    writeFileSync(f, "nameserver 10.0.0.5\n");
    await waitFor("the change", () => n > 0, 2000);
    expect(n).toBe(1);
    w.close();
    writeFileSync(f, "nameserver 10.0.0.6\n");
    await Bun.sleep(200);
    expect(n).toBe(1);
  });
});

describe("resolv.conf copy and original", () => {
  test("the original is saved once and never overwritten (a restarted sidecar must not save the VPN's file)", () => {
    const r = recorder();
    const src = join(dir, "resolv.conf");
    const copy = join(dir, "state", "resolv_copy.conf");
    writeFileSync(src, "nameserver 10.96.0.10\nsearch svc.cluster.local\n");
    expect(saveOriginalResolvConf(src, copy, r.log)).toContain("10.96.0.10");
    expect(originalResolvPath(copy)).toBe(`${copy}.original`);
    writeFileSync(src, "nameserver 10.64.0.1\n");
    expect(saveOriginalResolvConf(src, copy, r.log)).toContain("10.96.0.10");
    expect(readFileSync(`${copy}.original`, "utf8")).toBe("nameserver 10.96.0.10\nsearch svc.cluster.local\n");
  });

  test("the copy holds the IPv4 nameservers; it is rewritten only when they change", () => {
    const r = recorder();
    const src = join(dir, "resolv2.conf");
    const copy = join(dir, "copy2.conf");
    writeFileSync(src, "nameserver 2001:db8::1\nnameserver 10.64.0.1\n");
    expect(syncResolvCopy(src, copy, r.log)).toEqual(["10.64.0.1"]);
    expect(readFileSync(copy, "utf8")).toEndWith("nameserver 10.64.0.1\n");
    expect(syncResolvCopy(src, copy, r.log)).toBeUndefined();
    writeFileSync(src, "nameserver fd00::1\n");
    expect(syncResolvCopy(src, copy, r.log)).toEqual([]);
    expect(r.lines.some((l) => l.startsWith("warn:") && l.includes("has no IPv4 nameserver"))).toBe(true);
    rmSync(src);
    expect(syncResolvCopy(src, copy, r.log)).toBeUndefined(); // keeps the last good upstreams
    expect(readFileSync(copy, "utf8")).not.toContain("nameserver 10.64.0.1");
  });

  test("writeFileAtomic replaces the file whole and leaves no temporary file", () => {
    const f = join(dir, "atomic.conf");
    writeFileAtomic(f, "one\n");
    writeFileAtomic(f, "two\n");
    expect(readFileSync(f, "utf8")).toBe("two\n");
    expect(existsSync(join(dir, `.atomic.conf.${process.pid}.tmp`))).toBe(false);
  });
});
