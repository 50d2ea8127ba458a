// src/sys/fs.ts: the start-up's file calls through libc must answer what node:fs answers.
import { afterAll, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeFd, errnoName, FsError, O_NONBLOCK, openRead, pathExists, readFd, readLink, S_IFDIR, S_IFMT, S_IFREG, statFd, statPath } from "../../src/sys/fs.ts";
import { readRegularFile } from "../../src/sys/files.ts";
import { libcNames } from "../../src/sys/libc.ts";

const dir = mkdtempSync(join(tmpdir(), "pgw-sysfs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("stat of a path and of a descriptor: type and size as node:fs sees them", () => {
  writeFileSync(join(dir, "f"), "hello\n");
  mkdirSync(join(dir, "d"));
  symlinkSync("f", join(dir, "l"));
  for (const p of [join(dir, "f"), join(dir, "d"), join(dir, "l"), "/dev/null", "/proc/self/status"]) {
    const st = statPath(p);
    const want = statSync(p);
    expect([p, st.mode, st.size]).toEqual([p, want.mode, want.size]);
  }
  expect(statPath(join(dir, "d")).mode & S_IFMT).toBe(S_IFDIR);
  const fd = openRead(join(dir, "l"), O_NONBLOCK);
  try {
    const st = statFd(fd, join(dir, "l"));
    expect(st.mode & S_IFMT).toBe(S_IFREG);
    expect(st.size).toBe(6);
    const buf = new Uint8Array(16);
    expect(readFd(fd, buf.subarray(2), "l")).toBe(6);
    expect(new TextDecoder().decode(buf.subarray(2, 8))).toBe("hello\n");
    expect(readFd(fd, buf, "l")).toBe(0);
  } finally {
    closeFd(fd);
  }
});

test("errors carry node:fs's codes", () => {
  const code = (f: () => unknown) => {
    try {
      f();
      return "no error";
    } catch (e) {
      expect(e).toBeInstanceOf(FsError);
      return (e as FsError).code;
    }
  };
  writeFileSync(join(dir, "plain"), "");
  symlinkSync("loop2", join(dir, "loop1"));
  symlinkSync("loop1", join(dir, "loop2"));
  expect(code(() => openRead(join(dir, "missing"), 0))).toBe("ENOENT");
  expect(code(() => openRead(join(dir, "plain", "below"), 0))).toBe("ENOTDIR");
  expect(code(() => openRead(join(dir, "loop1"), 0))).toBe("ELOOP");
  expect(code(() => statPath(join(dir, "missing")))).toBe("ENOENT");
  expect(code(() => openRead(`${dir}/a\0b`, 0))).toBe("ERR_INVALID_ARG_VALUE");
  expect(code(() => readLink(join(dir, "plain")))).toBe("EINVAL");
  expect(errnoName(2)).toBe("ENOENT");
  expect(errnoName(999)).toBe("E999");
  // the reader turns them into the same results as before
  expect(readRegularFile(join(dir, "loop1"), 10)).toMatchObject({ ok: false, reason: "unreadable", code: "ELOOP" });
  expect(readRegularFile(join(dir, "plain", "below"), 10)).toMatchObject({ ok: false, reason: "unreadable", code: "ENOTDIR" });
});

test("existence and symlink targets as existsSync and readlinkSync answer", () => {
  symlinkSync("nowhere", join(dir, "dangling"));
  for (const p of ["/proc/self/ns/net", join(dir, "dangling"), join(dir, "plain"), join(dir, "nope"), "/.dockerenv", "/run/.containerenv"]) {
    expect([p, pathExists(p)]).toEqual([p, existsSync(p)]);
  }
  expect(pathExists(`${dir}/x\0y`)).toBe(false);
  expect(readLink("/proc/self/ns/net")).toBe(readlinkSync("/proc/self/ns/net"));
  expect(readLink(join(dir, "dangling"))).toBe("nowhere");
  expect(lstatSync(join(dir, "dangling")).isSymbolicLink()).toBe(true);
});

test("libc is opened by soname (glibc) or by absolute path (musl): never a bare name the working directory could answer", () => {
  expect(libcNames("glibc")).toEqual(["libc.so.6"]);
  const musl = libcNames("musl");
  expect(musl.length).toBeGreaterThan(0);
  for (const n of musl) expect(n.startsWith("/")).toBe(true);
  const any = libcNames(undefined);
  expect(any[0]).toBe("libc.so.6");
  for (const n of any.slice(1)) expect(n.startsWith("/")).toBe(true);
});
