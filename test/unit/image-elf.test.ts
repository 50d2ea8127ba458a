// The ELF reader behind build.ts's checks and the root filesystem assembler: hand-built headers
// laid out field by field, real files of this machine, and corrupt input.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeElf, ElfError, EM, readElf, type ByteSource } from "../../src/image/rootfs-elf.ts";
import { hostArch } from "../../src/image/rootfs.ts";

interface FixtureOpts {
  bits: 32 | 64;
  little: boolean;
  machine: number;
  interp?: string;
  needed?: string[];
  soname?: string;
  runpath?: string;
  sections?: { name: string; size: number }[];
}

/**
 * Lays out a small ELF file:
 *   [ELF header][program headers: LOAD, INTERP?, DYNAMIC][interp string][dynamic entries]
 *   [dynamic string table][section bodies][section name table][section headers]
 * The one PT_LOAD maps the whole file at vaddr 0x400000 (offset == vaddr - 0x400000), so
 * DT_STRTAB holds 0x400000 + the table's file offset.
 */
function buildElf(o: FixtureOpts): Uint8Array {
  const is64 = o.bits === 64;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const shentsize = is64 ? 64 : 40;
  const dynent = is64 ? 16 : 8;
  const base = 0x400000;

  // Dynamic string table: "\0" then each name.
  const strs: string[] = [];
  const strOff = (s: string): number => {
    let off = 1;
    for (const x of strs) {
      if (x === s) return off;
      off += x.length + 1;
    }
    strs.push(s);
    return off;
  };
  const dyn: [number, number | "strtab" | "strsz"][] = [];
  for (const n of o.needed ?? []) dyn.push([1, strOff(n)]);
  if (o.soname) dyn.push([14, strOff(o.soname)]);
  if (o.runpath) dyn.push([29, strOff(o.runpath)]);
  const hasDyn = dyn.length > 0;
  if (hasDyn) dyn.push([5, "strtab"], [10, "strsz"], [0, 0]);
  const strtab = new TextEncoder().encode("\0" + strs.map((s) => s + "\0").join(""));

  const phnum = 1 + (o.interp ? 1 : 0) + (hasDyn ? 1 : 0);
  let off = ehsize + phnum * phentsize;
  const interpOff = off;
  const interpBytes = o.interp ? new TextEncoder().encode(o.interp + "\0") : new Uint8Array();
  off += interpBytes.length;
  off = (off + 7) & ~7;
  const dynOff = off;
  off += hasDyn ? dyn.length * dynent : 0;
  const strtabOff = off;
  off += hasDyn ? strtab.length : 0;
  const sections = o.sections ?? [];
  const secBodies = sections.map((s) => {
    const at = off;
    off += s.size;
    return at;
  });
  const shstr = new TextEncoder().encode("\0" + [...sections.map((s) => s.name), ".shstrtab"].map((s) => s + "\0").join(""));
  const shstrOff = off;
  off += sections.length ? shstr.length : 0;
  off = (off + 7) & ~7;
  const shoff = off;
  const shnum = sections.length ? sections.length + 2 : 0; // null section + ours + .shstrtab
  off += shnum * shentsize;
  const size = off;

  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer);
  const le = o.little;
  const w16 = (at: number, v: number) => dv.setUint16(at, v, le);
  const w32 = (at: number, v: number) => dv.setUint32(at, v, le);
  const wA = (at: number, v: number) => (is64 ? dv.setBigUint64(at, BigInt(v), le) : dv.setUint32(at, v, le));

  // e_ident: magic, EI_CLASS, EI_DATA, EI_VERSION
  buf.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, le ? 1 : 2, 1], 0);
  w16(16, 3); // e_type ET_DYN
  w16(18, o.machine); // e_machine
  w32(20, 1); // e_version
  if (is64) {
    wA(32, ehsize); // e_phoff
    wA(40, shnum ? shoff : 0); // e_shoff
    w16(52, ehsize);
    w16(54, phentsize);
    w16(56, phnum);
    w16(58, shentsize);
    w16(60, shnum);
    w16(62, shnum ? shnum - 1 : 0); // e_shstrndx: .shstrtab is last
  } else {
    wA(28, ehsize);
    wA(32, shnum ? shoff : 0);
    w16(40, ehsize);
    w16(42, phentsize);
    w16(44, phnum);
    w16(46, shentsize);
    w16(48, shnum);
    w16(50, shnum ? shnum - 1 : 0);
  }

  // Program headers.
  let ph = ehsize;
  const putPh = (type: number, offset: number, filesz: number) => {
    w32(ph, type);
    if (is64) {
      wA(ph + 8, offset);
      wA(ph + 16, base + offset);
      wA(ph + 24, base + offset);
      wA(ph + 32, filesz);
      wA(ph + 40, filesz);
    } else {
      wA(ph + 4, offset);
      wA(ph + 8, base + offset);
      wA(ph + 12, base + offset);
      wA(ph + 16, filesz);
      wA(ph + 20, filesz);
    }
    ph += phentsize;
  };
  putPh(1, 0, size); // PT_LOAD: whole file
  if (o.interp) putPh(3, interpOff, interpBytes.length); // PT_INTERP
  if (hasDyn) putPh(2, dynOff, dyn.length * dynent); // PT_DYNAMIC
  buf.set(interpBytes, interpOff);

  // Dynamic entries (d_tag, d_val).
  dyn.forEach(([tag, val], i) => {
    const at = dynOff + i * dynent;
    const v = val === "strtab" ? base + strtabOff : val === "strsz" ? strtab.length : val;
    if (is64) {
      dv.setBigInt64(at, BigInt(tag), le);
      dv.setBigUint64(at + 8, BigInt(v), le);
    } else {
      dv.setInt32(at, tag, le);
      dv.setUint32(at + 4, v, le);
    }
  });
  if (hasDyn) buf.set(strtab, strtabOff);

  // Sections: null, ours (PROGBITS), .shstrtab (STRTAB).
  if (shnum) {
    buf.set(shstr, shstrOff);
    let nameOff = 1;
    const putSh = (i: number, name: number, type: number, offset: number, sz: number) => {
      const at = shoff + i * shentsize;
      w32(at, name);
      w32(at + 4, type);
      if (is64) {
        wA(at + 24, offset);
        wA(at + 32, sz);
      } else {
        wA(at + 16, offset);
        wA(at + 20, sz);
      }
    };
    sections.forEach((s, i) => {
      putSh(i + 1, nameOff, 1, secBodies[i]!, s.size);
      nameOff += s.name.length + 1;
    });
    putSh(shnum - 1, nameOff, 3, shstrOff, shstr.length);
  }
  return buf;
}

const source = (b: Uint8Array): ByteSource => (offset, length) => b.subarray(Math.min(offset, b.length), Math.min(offset + length, b.length));
const decode = (b: Uint8Array) => decodeElf(source(b), b.length);

describe("decodeElf on hand-built headers", () => {
  test("64-bit little-endian x86-64 program: loader, needed libraries in order, runpath, sections", () => {
    const info = decode(
      buildElf({
        bits: 64, little: true, machine: EM.x86_64, interp: "/lib64/ld-linux-x86-64.so.2",
        needed: ["libmnl.so.0", "libc.so.6"], runpath: "$ORIGIN/../lib:/opt/x", sections: [{ name: ".bun", size: 24 }],
      }),
    );
    expect(info).toEqual({
      bits: 64, endian: "little", type: 3, machine: 62, interp: "/lib64/ld-linux-x86-64.so.2",
      needed: ["libmnl.so.0", "libc.so.6"], runpath: ["$ORIGIN/../lib", "/opt/x"], rpath: [],
      sections: [
        { name: "", offset: 0, size: 0 },
        { name: ".bun", offset: expect.any(Number), size: 24 },
        { name: ".shstrtab", offset: expect.any(Number), size: 16 },
      ],
    });
  });

  test("64-bit shared library: soname, no interpreter", () => {
    const info = decode(buildElf({ bits: 64, little: true, machine: EM.aarch64, needed: ["libc.so.6"], soname: "libfoo.so.1" }));
    expect(info.machine).toBe(183);
    expect(info.interp).toBeUndefined();
    expect(info.soname).toBe("libfoo.so.1");
    expect(info.needed).toEqual(["libc.so.6"]);
    expect(info.sections).toEqual([]);
  });

  test("32-bit big-endian file decodes with its own field offsets", () => {
    const info = decode(buildElf({ bits: 32, little: false, machine: 8, interp: "/lib/ld.so.1", needed: ["libc.so.6"], sections: [{ name: ".text", size: 4 }] }));
    expect(info.bits).toBe(32);
    expect(info.endian).toBe("big");
    expect(info.machine).toBe(8);
    expect(info.interp).toBe("/lib/ld.so.1");
    expect(info.needed).toEqual(["libc.so.6"]);
    expect(info.sections.map((s) => s.name)).toEqual(["", ".text", ".shstrtab"]);
  });

  test("a static file without dynamic section has no needed libraries", () => {
    const info = decode(buildElf({ bits: 64, little: true, machine: EM.x86_64 }));
    expect(info.needed).toEqual([]);
    expect(info.interp).toBeUndefined();
  });

  test.each([
    ["empty file", new Uint8Array(), "not an ELF file"],
    ["wrong magic", new TextEncoder().encode("#!/bin/sh\necho hi\n"), "not an ELF file"],
    ["unknown class", new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 3, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), "unknown ELF class 3"],
    ["header cut short", new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0]), "ELF header at offset 0 runs past the end"],
  ])("%s is an ElfError", (_n, bytes, msg) => {
    expect(() => decode(bytes)).toThrow(ElfError);
    expect(() => decode(bytes)).toThrow(msg);
  });

  test("a truncated file is an ElfError naming what runs past the end", () => {
    const full = buildElf({ bits: 64, little: true, machine: EM.x86_64, interp: "/lib64/ld-linux-x86-64.so.2", needed: ["libc.so.6"] });
    const cut = full.subarray(0, 100);
    expect(() => decodeElf(source(cut), cut.length)).toThrow(/runs? past the end/);
  });

  test("an unterminated interpreter string is an ElfError", () => {
    const b = buildElf({ bits: 64, little: true, machine: EM.x86_64, interp: "/lib/ld.so" });
    const nul = b.indexOf(0, 64 + 2 * 56);
    b[nul] = 0x41; // overwrite the terminating NUL
    expect(() => decode(b)).toThrow(/PT_INTERP.*not terminated/);
  });

  test("property: any corruption of a valid file either decodes or throws ElfError, nothing else", () => {
    const good = buildElf({
      bits: 64, little: true, machine: EM.x86_64, interp: "/lib64/ld-linux-x86-64.so.2",
      needed: ["libc.so.6", "libm.so.6"], soname: "x.so", sections: [{ name: ".bun", size: 8 }],
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 }), fc.nat(good.length), (edits, cut) => {
        const b = good.slice();
        for (const [at, v] of edits) b[at] = v;
        const t = b.subarray(0, Math.max(cut, 16));
        try {
          decodeElf(source(t), t.length);
        } catch (e) {
          if (!(e instanceof ElfError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("readElf on this machine's files", () => {
  const arch = hostArch();
  test("ip: a program of this machine, asking for glibc's loader and libc", () => {
    const info = readElf("/usr/bin/ip");
    expect(info.machine).toBe(arch.machine);
    expect(info.interp).toBe(arch.loader);
    expect(info.needed).toContain("libc.so.6");
  });
  test("libc: a shared object with its soname", () => {
    const info = readElf(`/lib/${arch.triplet}/libc.so.6`);
    expect(info.soname).toBe("libc.so.6");
  });
  test("a missing file is an ElfError naming it", () => {
    expect(() => readElf("/nonexistent/elf")).toThrow(/reading ELF header of \/nonexistent\/elf/);
  });
  test("a text file is an ElfError naming it", () => {
    expect(() => readElf("/etc/hostname")).toThrow(/\/etc\/hostname: not an ELF file/);
  });
});
