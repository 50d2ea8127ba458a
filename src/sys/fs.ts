// The few file system calls the roles make before their first change (reading settings.sh and
// nat.conf, the config directory's type, the host-safety facts, the host name), through the
// process's libc handle (src/sys/libc.ts) instead of node:fs: node:fs is a large built-in module
// whose loading alone costs a client-init ~2.3 ms of CPU, while libc is opened anyway for netlink.
// Failures throw FsError with the errno name in `code`, as node:fs's errors carry it, so callers
// handle both alike.
import { errno, libc, strerror } from "./libc.ts";

export class FsError extends Error {
  constructor(
    readonly code: string,
    readonly errno: number,
    syscall: string,
    path: string,
  ) {
    super(`${code}: ${strerror(errno) ?? "error"}, ${syscall} '${path}'`);
    this.name = "FsError";
  }
}

/** errno names; Linux uses the same numbers on x86-64 and arm64 (the asm-generic table). */
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 4: "EINTR", 5: "EIO", 6: "ENXIO", 9: "EBADF", 11: "EAGAIN", 12: "ENOMEM",
  13: "EACCES", 14: "EFAULT", 16: "EBUSY", 19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
  23: "ENFILE", 24: "EMFILE", 26: "ETXTBSY", 27: "EFBIG", 30: "EROFS", 36: "ENAMETOOLONG", 38: "ENOSYS",
  40: "ELOOP", 75: "EOVERFLOW", 95: "EOPNOTSUPP", 116: "ESTALE",
};
const EINTR = 4;

export function errnoName(e: number): string {
  return ERRNO_NAMES[e] ?? `E${e}`;
}

function fail(syscall: string, path: string, e = errno()): never {
  throw new FsError(errnoName(e), e, syscall, path);
}

const encoder = new TextEncoder();

/** A path as C wants it; a NUL inside would silently cut it, so it is refused (as node:fs does). */
function cPath(path: string, syscall: string): Uint8Array {
  if (path.includes("\0")) throw new FsError("ERR_INVALID_ARG_VALUE", 22, syscall, path.replaceAll("\0", "\\0"));
  return encoder.encode(path + "\0");
}

// open(2) flags: the same values on x86-64 and arm64 (O_DIRECTORY, which differs, is not used).
export const O_RDONLY = 0;
export const O_NOCTTY = 0o400;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

/** open(2) for reading; flags beyond O_RDONLY as given, always O_CLOEXEC. Returns the descriptor. */
export function openRead(path: string, flags: number): number {
  const p = cPath(path, "open");
  for (;;) {
    const fd = libc().open(p, O_RDONLY | O_CLOEXEC | flags);
    if (fd >= 0) return fd;
    const e = errno();
    if (e !== EINTR) fail("open", path, e);
  }
}

/** read(2) into buf (a view: it fills from its start); 0 at end of file. */
export function readFd(fd: number, buf: Uint8Array, path: string): number {
  for (;;) {
    const n = Number(libc().read(fd, buf, buf.length));
    if (n >= 0) return n;
    const e = errno();
    if (e !== EINTR) fail("read", path, e);
  }
}

export function closeFd(fd: number): void {
  libc().close(fd);
}

// ---------------------------------------------------------------- statx

/** statx(2)'s number: the only per-architecture fact here. */
function statxNumber(): number {
  if (process.arch === "x64") return 332;
  if (process.arch === "arm64") return 291;
  throw new Error(`statx: no system call number known for ${process.arch}`);
}
const AT_FDCWD = -100;
const AT_EMPTY_PATH = 0x1000;
const STATX_TYPE = 0x1;
const STATX_MODE = 0x2;
const STATX_SIZE = 0x200;
const STATX_BUF_SIZE = 256;

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

export interface FileStat {
  /** st_mode: type and permission bits. */
  mode: number;
  size: number;
}

function statx(dirfd: number, path: Uint8Array, flags: number, what: string): FileStat {
  const buf = new Uint8Array(STATX_BUF_SIZE);
  for (;;) {
    const r = Number(libc().syscall(statxNumber(), dirfd, path, flags, STATX_TYPE | STATX_MODE | STATX_SIZE, buf));
    if (r === 0) break;
    const e = errno();
    if (e !== EINTR) fail("statx", what, e);
  }
  // struct statx: stx_mode (u16) at 28, stx_size (u64) at 40; little-endian on both targets.
  const v = new DataView(buf.buffer);
  return { mode: v.getUint16(28, true), size: Number(v.getBigUint64(40, true)) };
}

const EMPTY_PATH = new Uint8Array(1);

/** fstat of an open descriptor (the file itself, whatever path led to it). */
export function statFd(fd: number, path: string): FileStat {
  return statx(fd, EMPTY_PATH, AT_EMPTY_PATH, path);
}

/** stat(2) of a path, symlinks followed. */
export function statPath(path: string): FileStat {
  return statx(AT_FDCWD, cPath(path, "statx"), 0, path);
}

// ---------------------------------------------------------------- paths, host

/** access(path, F_OK): whether the path exists (symlinks followed), as existsSync answers. */
export function pathExists(path: string): boolean {
  if (path.includes("\0")) return false;
  return libc().access(cPath(path, "access"), 0) === 0;
}

/** readlink(2): the target of a symbolic link, as text. */
export function readLink(path: string): string {
  const p = cPath(path, "readlink");
  const buf = new Uint8Array(4096);
  const n = Number(libc().readlink(p, buf, buf.length));
  if (n < 0) fail("readlink", path);
  return new TextDecoder().decode(buf.subarray(0, n));
}

/** gethostname(2): this UTS namespace's node name (what os.hostname() answers). */
export function hostName(): string {
  const buf = new Uint8Array(256);
  if (libc().gethostname(buf, buf.length) !== 0) fail("gethostname", "");
  const z = buf.indexOf(0);
  return new TextDecoder().decode(buf.subarray(0, z < 0 ? buf.length : z));
}
