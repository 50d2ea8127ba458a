// libc through bun:ffi, loaded once per process for every in-process socket (the DHCP packet
// socket, src/sys/dhcp-socket.ts; netlink, src/sys/netlink.ts) and the start-up's file reads
// (src/sys/fs.ts). Each dlopen() compiles its TinyCC trampolines and maps its own code: one
// loader means that work, and those pages, once.
import { dlopen, FFIType, read, type Pointer } from "bun:ffi";
import { PodGatewayError } from "../core/errors.ts";

const SYMBOLS = {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64_fast },
  recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64_fast },
  sendto: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i64_fast },
  recvfrom: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i64_fast },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  if_nametoindex: { args: [FFIType.ptr], returns: FFIType.u32 },
  // files (src/sys/fs.ts): the roles' start-up reads without loading node:fs
  open: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  read: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64_fast },
  readlink: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64_fast },
  access: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  gethostname: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  // statx(2) through syscall(2): its struct has one layout on every architecture, and the
  // glibc/musl statx() wrappers are younger than some of the C libraries this binary meets.
  syscall: { args: [FFIType.i64, FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.u32, FFIType.ptr], returns: FFIType.i64_fast },
  __errno_location: { args: [], returns: FFIType.ptr },
  strerror: { args: [FFIType.i32], returns: FFIType.cstring },
} as const;

// Which C library the binary was built for (build.ts: --define); undefined when run from source.
declare const POD_GATEWAY_LIBC: string | undefined;
const builtFor = typeof POD_GATEWAY_LIBC === "string" ? POD_GATEWAY_LIBC : undefined;
const muslArch = process.arch === "arm64" ? "aarch64" : "x86_64";
// musl's libc by absolute path: bun:ffi retries a bare name the loader does not find relative to
// the working directory ("./libc.so"), and a privileged tool must not load a library from there.
const MUSL = [`/lib/libc.musl-${muslArch}.so.1`, `/lib/ld-musl-${muslArch}.so.1`];

/**
 * The names to try, in order. The glibc build links libc.so.6, so that soname is always found
 * (already loaded) and nothing else is tried; the musl build asks for musl's files only.
 */
export function libcNames(libc: string | undefined = builtFor): string[] {
  if (libc === "glibc") return ["libc.so.6"];
  if (libc === "musl") return MUSL;
  return ["libc.so.6", ...MUSL];
}

function openLibc() {
  const errors: string[] = [];
  for (const name of libcNames()) {
    try {
      return dlopen(name, SYMBOLS).symbols;
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message}`);
    }
  }
  throw new PodGatewayError(`loading libc (bun:ffi) failed: ${errors.join("; ")}`);
}

export type Libc = ReturnType<typeof openLibc>;
let cache: Libc | undefined;

/** The process's one libc handle (opened on first use). */
export function libc(): Libc {
  cache ??= openLibc();
  return cache;
}

/** errno of the call just made; read at once, before anything else can touch it. */
export function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : read.i32(p as unknown as Pointer, 0);
}

/** The C library's text for an errno ("No such device"). */
export function strerror(e: number): string | undefined {
  return libc().strerror(e) ?? undefined;
}
