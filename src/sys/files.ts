// Reads a file that must be a regular file of bounded size: configuration (settings.sh,
// nat.conf), the service-account token and CA. Anything else — a FIFO (reading would block
// forever), a device (/dev/zero never ends), a directory, a socket — is refused, and at most
// maxBytes are ever read, so a hostile mount cannot hang a role or exhaust its memory.
//
// Symlinks are followed on purpose: a ConfigMap or projected volume mounts each key as a symlink
// into `..data/`. The check is made on the opened descriptor (fstat), not on the path, so nothing
// can be swapped in between the check and the read. The calls go through libc (src/sys/fs.ts),
// not node:fs, which a role's start-up would otherwise load for these few reads.
import { closeFd, O_NOCTTY, O_NONBLOCK, openRead, readFd, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK, statFd } from "./fs.ts";

export type RegularFileRead =
  | { ok: true; bytes: Uint8Array }
  | { ok: false; reason: "missing"; message: string }
  | { ok: false; reason: "not-regular"; message: string; kind: string }
  | { ok: false; reason: "too-large"; message: string; limit: number }
  | { ok: false; reason: "unreadable"; message: string; code?: string };

/** What kind of file a st_mode describes, in words for an error message. */
function kindOf(mode: number): string {
  const t = mode & S_IFMT;
  if (t === S_IFDIR) return "a directory";
  if (t === S_IFIFO) return "a FIFO";
  if (t === S_IFSOCK) return "a socket";
  if (t === S_IFCHR) return "a character device";
  if (t === S_IFBLK) return "a block device";
  return "not a regular file";
}

function unreadable(e: unknown): RegularFileRead {
  const err = e as NodeJS.ErrnoException;
  if (err.code === "ENOENT") return { ok: false, reason: "missing", message: "does not exist" };
  if (err.code === "ENOTDIR") return { ok: false, reason: "unreadable", code: err.code, message: "cannot read: its parent is not a directory" };
  if (err.code === "EISDIR") return { ok: false, reason: "not-regular", kind: "a directory", message: "is a directory, not a regular file" };
  if (err.code === "ELOOP") return { ok: false, reason: "unreadable", code: err.code, message: "cannot read: too many levels of symbolic links" };
  if (err.code === "EACCES" || err.code === "EPERM") return { ok: false, reason: "unreadable", code: err.code, message: `cannot read: permission denied (${err.code})` };
  return { ok: false, reason: "unreadable", code: err.code, message: `cannot read: ${err.code ?? err.message}` };
}

/**
 * Read `path` (symlinks followed) if it is a regular file of at most `maxBytes` bytes.
 * Never blocks on a FIFO (opened O_NONBLOCK, then refused), never reads more than maxBytes + 1
 * bytes (a file that grows past the limit while being read is refused too).
 */
export function readRegularFile(path: string, maxBytes: number): RegularFileRead {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    // O_NOCTTY: a terminal device must never become our controlling terminal.
    fd = openRead(path, O_NONBLOCK | O_NOCTTY);
  } catch (e) {
    return unreadable(e);
  }
  try {
    const st = statFd(fd, path);
    if ((st.mode & S_IFMT) !== S_IFREG) {
      const kind = kindOf(st.mode);
      return { ok: false, reason: "not-regular", kind, message: `is ${kind}, not a regular file` };
    }
    const tooLarge = (): RegularFileRead => ({ ok: false, reason: "too-large", limit: maxBytes, message: `is larger than the limit of ${maxBytes} bytes` });
    if (st.size > maxBytes) return tooLarge();
    // One byte more than allowed tells a file that grew past the limit from one that fits exactly.
    // The buffer starts at the size fstat gave (+1: end of file is seen without a second grow)
    // and doubles only while the file keeps growing, up to the limit: reading a 300-byte
    // settings.sh allocates ~300 bytes, not the 1 MiB limit (two of those per start-up were a
    // third of client-init's JS heap, and pushed DHCP mode into a garbage collection).
    const cap = maxBytes + 1;
    let buf = new Uint8Array(Math.min(cap, st.size + 1));
    let got = 0;
    for (;;) {
      if (got === buf.length) {
        if (buf.length === cap) break;
        const bigger = new Uint8Array(Math.min(cap, buf.length * 2));
        bigger.set(buf);
        buf = bigger;
      }
      const n = readFd(fd, buf.subarray(got), path);
      if (n === 0) break;
      got += n;
    }
    if (got > maxBytes) return tooLarge();
    return { ok: true, bytes: got === buf.length ? buf : buf.slice(0, got) };
  } catch (e) {
    return unreadable(e);
  } finally {
    closeFd(fd);
  }
}
