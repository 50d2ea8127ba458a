// ELF headers as data: architecture, program interpreter, DT_NEEDED/SONAME/RUNPATH.
// Used by build.ts (is each compiled binary what its name says?) and by the root-filesystem
// assembler (which libraries does a program need?) without running ldd — ldd executes the
// program's loader, which cannot work for another architecture's sysroot (the Docker build
// assembles an arm64 root filesystem on an amd64 builder).
// decodeElf is pure (bytes in, facts out); readElf is its thin file-reading wrapper. They
// live beside the assembler (src/image/rootfs.ts) because that is their only other user.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** e_machine values (ELF gABI / the processor supplements). */
export const EM = { x86_64: 62, aarch64: 183 } as const;

/** e_type values. */
export const ET = { rel: 1, exec: 2, dyn: 3, core: 4 } as const;

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;

const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;

// Sanity bounds: real files stay far below them; a corrupt header must not make us allocate
// or loop without end.
const MAX_PHNUM = 4096;
const MAX_DYN_ENTRIES = 65536;
const MAX_STRING = 4096;
const MAX_SHNUM = 65536;

export interface ElfInfo {
  bits: 32 | 64;
  endian: "little" | "big";
  /** e_type: 2 = executable, 3 = shared object / PIE (see ET). */
  type: number;
  /** e_machine: 62 = x86-64, 183 = aarch64 (see EM). */
  machine: number;
  /** PT_INTERP: the dynamic loader the kernel starts, e.g. /lib64/ld-linux-x86-64.so.2. */
  interp?: string;
  /** DT_NEEDED entries in file order. */
  needed: string[];
  soname?: string;
  runpath: string[];
  rpath: string[];
  /** Section headers by name (empty when the file has none, e.g. after sstrip). */
  sections: ElfSection[];
}

export interface ElfSection {
  name: string;
  offset: number;
  size: number;
}

export class ElfError extends Error {
  override name = "ElfError";
}

/**
 * Reads `length` bytes at `offset`; may return fewer at the end of the file. Lets the decoder
 * look at a 100 MB compiled binary without loading it whole.
 */
export type ByteSource = (offset: number, length: number) => Uint8Array;

export function machineName(machine: number): string {
  if (machine === EM.x86_64) return "x86-64";
  if (machine === EM.aarch64) return "aarch64";
  return `machine ${machine}`;
}

interface Reader {
  u16(off: number): number;
  u32(off: number): number;
  /** An address-sized (32 or 64 bit) unsigned value; rejects values beyond 2^53. */
  addr(off: number): number;
  /** A signed address-sized value (d_tag). */
  saddr(off: number): number;
}

function exact(read: ByteSource, offset: number, length: number, what: string): Uint8Array {
  const b = read(offset, length);
  if (b.length < length) throw new ElfError(`${what} at offset ${offset} runs past the end of the file`);
  return b;
}

function makeReader(buf: Uint8Array, bits: 32 | 64, little: boolean): Reader {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const big = (v: bigint): number => {
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`value ${v} is too large`);
    return Number(v);
  };
  return {
    u16: (o) => dv.getUint16(o, little),
    u32: (o) => dv.getUint32(o, little),
    addr: (o) => (bits === 64 ? big(dv.getBigUint64(o, little)) : dv.getUint32(o, little)),
    saddr: (o) => (bits === 64 ? Number(dv.getBigInt64(o, little)) : dv.getInt32(o, little)),
  };
}

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

function cString(read: ByteSource, offset: number, limit: number, what: string): string {
  const max = Math.min(limit, MAX_STRING);
  if (max <= 0) throw new ElfError(`${what} at offset ${offset} is outside its table`);
  const b = read(offset, max);
  const end = b.indexOf(0);
  if (end < 0) throw new ElfError(`${what} at offset ${offset} is not terminated`);
  return new TextDecoder().decode(b.subarray(0, end));
}

/** Decodes the parts of an ELF file that say what it runs on and what it loads. */
export function decodeElf(read: ByteSource, size: number): ElfInfo {
  const ident = read(0, 16);
  if (ident.length < 16 || ident[0] !== 0x7f || ident[1] !== 0x45 || ident[2] !== 0x4c || ident[3] !== 0x46) {
    throw new ElfError("not an ELF file (no \\x7fELF magic)");
  }
  const cls = ident[4];
  const data = ident[5];
  if (cls !== 1 && cls !== 2) throw new ElfError(`unknown ELF class ${cls}`);
  if (data !== 1 && data !== 2) throw new ElfError(`unknown ELF data encoding ${data}`);
  const bits = cls === 2 ? 64 : 32;
  const little = data === 1;
  const ehsize = bits === 64 ? 64 : 52;
  const eh = makeReader(exact(read, 0, ehsize, "ELF header"), bits, little);

  const type = eh.u16(16);
  const machine = eh.u16(18);
  const phoff = eh.addr(bits === 64 ? 32 : 28);
  const phentsize = eh.u16(bits === 64 ? 54 : 42);
  const phnum = eh.u16(bits === 64 ? 56 : 44);
  const wantPhent = bits === 64 ? 56 : 32;

  const info: ElfInfo = { bits, endian: little ? "little" : "big", type, machine, needed: [], runpath: [], rpath: [], sections: [] };
  info.sections = decodeSections(read, size, eh, bits, little);
  if (phnum === 0) return info;
  if (phentsize < wantPhent) throw new ElfError(`program header entry size ${phentsize} is smaller than ${wantPhent}`);
  if (phnum > MAX_PHNUM) throw new ElfError(`${phnum} program headers is implausible`);
  if (phoff + phnum * phentsize > size) throw new ElfError("program headers run past the end of the file");

  const ph = makeReader(exact(read, phoff, phnum * phentsize, "program headers"), bits, little);
  const segments: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = i * phentsize;
    const seg =
      bits === 64
        ? { type: ph.u32(o), offset: ph.addr(o + 8), vaddr: ph.addr(o + 16), filesz: ph.addr(o + 32) }
        : { type: ph.u32(o), offset: ph.addr(o + 4), vaddr: ph.addr(o + 8), filesz: ph.addr(o + 16) };
    segments.push(seg);
  }

  const interp = segments.find((s) => s.type === PT_INTERP);
  if (interp) {
    if (interp.offset + interp.filesz > size) throw new ElfError("PT_INTERP runs past the end of the file");
    info.interp = cString(read, interp.offset, interp.filesz, "PT_INTERP");
  }

  const dyn = segments.find((s) => s.type === PT_DYNAMIC);
  if (!dyn) return info;
  if (dyn.offset + dyn.filesz > size) throw new ElfError("PT_DYNAMIC runs past the end of the file");
  const entsize = bits === 64 ? 16 : 8;
  const count = Math.min(Math.floor(dyn.filesz / entsize), MAX_DYN_ENTRIES);
  const dr = makeReader(exact(read, dyn.offset, count * entsize, "dynamic section"), bits, little);
  const entries: { tag: number; val: number }[] = [];
  for (let i = 0; i < count; i++) {
    const tag = dr.saddr(i * entsize);
    if (tag === DT_NULL) break;
    entries.push({ tag, val: dr.addr(i * entsize + entsize / 2) });
  }

  const strtabAddr = entries.find((e) => e.tag === DT_STRTAB)?.val;
  const strsz = entries.find((e) => e.tag === DT_STRSZ)?.val;
  const wantsStrings = entries.some((e) => e.tag === DT_NEEDED || e.tag === DT_SONAME || e.tag === DT_RPATH || e.tag === DT_RUNPATH);
  if (!wantsStrings) return info;
  if (strtabAddr === undefined || strsz === undefined) throw new ElfError("dynamic section has names but no DT_STRTAB/DT_STRSZ");
  // DT_STRTAB is a virtual address: find the loaded segment holding it to get a file offset.
  const load = segments.find((s) => s.type === PT_LOAD && strtabAddr >= s.vaddr && strtabAddr < s.vaddr + s.filesz);
  if (!load) throw new ElfError(`DT_STRTAB address 0x${strtabAddr.toString(16)} is in no loaded segment`);
  const strtab = strtabAddr - load.vaddr + load.offset;
  if (strtab + strsz > size) throw new ElfError("dynamic string table runs past the end of the file");
  const str = (off: number, what: string): string => {
    if (off >= strsz) throw new ElfError(`${what} name offset ${off} is outside the string table (${strsz} bytes)`);
    return cString(read, strtab + off, strsz - off, what);
  };

  for (const e of entries) {
    if (e.tag === DT_NEEDED) info.needed.push(str(e.val, "DT_NEEDED"));
    else if (e.tag === DT_SONAME) info.soname = str(e.val, "DT_SONAME");
    else if (e.tag === DT_RUNPATH) info.runpath.push(...str(e.val, "DT_RUNPATH").split(":").filter(Boolean));
    else if (e.tag === DT_RPATH) info.rpath.push(...str(e.val, "DT_RPATH").split(":").filter(Boolean));
  }
  return info;
}

function decodeSections(read: ByteSource, size: number, eh: Reader, bits: 32 | 64, little: boolean): ElfSection[] {
  const shoff = eh.addr(bits === 64 ? 40 : 32);
  const shentsize = eh.u16(bits === 64 ? 58 : 46);
  const shnum = eh.u16(bits === 64 ? 60 : 48);
  const shstrndx = eh.u16(bits === 64 ? 62 : 50);
  if (shoff === 0 || shnum === 0) return [];
  const want = bits === 64 ? 64 : 40;
  if (shentsize < want) throw new ElfError(`section header entry size ${shentsize} is smaller than ${want}`);
  if (shnum > MAX_SHNUM || shoff + shnum * shentsize > size) throw new ElfError("section headers run past the end of the file");
  if (shstrndx >= shnum) throw new ElfError(`section name table index ${shstrndx} is out of range`);
  const sh = makeReader(exact(read, shoff, shnum * shentsize, "section headers"), bits, little);
  const raw = [];
  for (let i = 0; i < shnum; i++) {
    const o = i * shentsize;
    raw.push(
      bits === 64
        ? { nameOff: sh.u32(o), type: sh.u32(o + 4), offset: sh.addr(o + 24), size: sh.addr(o + 32) }
        : { nameOff: sh.u32(o), type: sh.u32(o + 4), offset: sh.addr(o + 16), size: sh.addr(o + 20) },
    );
  }
  const names = raw[shstrndx]!;
  if (names.offset + names.size > size) throw new ElfError("section name table runs past the end of the file");
  const SHT_NOBITS = 8; // .bss and friends occupy no file bytes
  return raw.map((r) => {
    if (r.nameOff >= names.size) throw new ElfError(`section name offset ${r.nameOff} is outside the name table`);
    const name = cString(read, names.offset + r.nameOff, names.size - r.nameOff, "section name");
    return { name, offset: r.offset, size: r.type === SHT_NOBITS ? 0 : r.size };
  });
}

/** decodeElf over a file, reading only the few regions it needs. */
export function readElf(path: string): ElfInfo {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new ElfError(`reading ELF header of ${path}: ${(e as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    const read: ByteSource = (offset, length) => {
      const n = Math.max(0, Math.min(length, size - offset));
      const buf = new Uint8Array(n);
      let got = 0;
      while (got < n) {
        const r = readSync(fd, buf, got, n - got, offset + got);
        if (r === 0) break;
        got += r;
      }
      return buf.subarray(0, got);
    };
    try {
      return decodeElf(read, size);
    } catch (e) {
      if (e instanceof ElfError) throw new ElfError(`${path}: ${e.message}`);
      throw e;
    }
  } finally {
    closeSync(fd);
  }
}

/** True when the file starts with the ELF magic (cheap: reads 4 bytes). */
export function isElfFile(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const b = new Uint8Array(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
