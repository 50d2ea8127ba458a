// The classic BPF program attached to the DHCP client's packet socket (pure data + encoding).
// The socket otherwise copies every IPv4 packet on the interface to user space; with the filter
// the kernel hands us only unfragmented UDP to port 68 whose BOOTP op is 2 (a reply). xid and
// chaddr are still checked by the state machine.

export interface BpfInstruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

// Opcode parts from linux/filter.h (classic BPF).
export const BPF = {
  LD: 0x00, LDX: 0x01, JMP: 0x05, RET: 0x06,
  W: 0x00, H: 0x08, B: 0x10,
  ABS: 0x20, IND: 0x40, MSH: 0xa0,
  JEQ: 0x10, JSET: 0x40, K: 0x00,
} as const;

const ACCEPT = 0xffff; // bytes of the packet to keep: all of any DHCP reply
const DROP = 0;

/**
 * Offsets are from the IPv4 header: on a SOCK_DGRAM packet socket the filter runs after the
 * link-layer header has been removed.
 */
export const DHCP_REPLY_FILTER: readonly BpfInstruction[] = [
  /* 0 */ { code: BPF.LD | BPF.B | BPF.ABS, jt: 0, jf: 0, k: 9 }, //            A = IPv4 protocol
  /* 1 */ { code: BPF.JMP | BPF.JEQ | BPF.K, jt: 0, jf: 8, k: 17 }, //           UDP? else drop (→10)
  /* 2 */ { code: BPF.LD | BPF.H | BPF.ABS, jt: 0, jf: 0, k: 6 }, //             A = flags + fragment offset
  /* 3 */ { code: BPF.JMP | BPF.JSET | BPF.K, jt: 6, jf: 0, k: 0x3fff }, //      MF or offset set → drop (→10)
  /* 4 */ { code: BPF.LDX | BPF.B | BPF.MSH, jt: 0, jf: 0, k: 0 }, //            X = IPv4 header length
  /* 5 */ { code: BPF.LD | BPF.H | BPF.IND, jt: 0, jf: 0, k: 2 }, //             A = UDP destination port
  /* 6 */ { code: BPF.JMP | BPF.JEQ | BPF.K, jt: 0, jf: 3, k: 68 }, //           port 68? else drop (→10)
  /* 7 */ { code: BPF.LD | BPF.B | BPF.IND, jt: 0, jf: 0, k: 8 }, //             A = BOOTP op (first payload byte)
  /* 8 */ { code: BPF.JMP | BPF.JEQ | BPF.K, jt: 0, jf: 1, k: 2 }, //            BOOTREPLY? else drop (→10)
  /* 9 */ { code: BPF.RET | BPF.K, jt: 0, jf: 0, k: ACCEPT },
  /* 10 */ { code: BPF.RET | BPF.K, jt: 0, jf: 0, k: DROP },
];

/** struct sock_filter[] in host (little-endian) byte order: u16 code, u8 jt, u8 jf, u32 k. */
export function encodeBpfProgram(prog: readonly BpfInstruction[]): Uint8Array {
  const b = new Uint8Array(prog.length * 8);
  const dv = new DataView(b.buffer);
  prog.forEach((ins, i) => {
    dv.setUint16(i * 8, ins.code, true);
    b[i * 8 + 2] = ins.jt;
    b[i * 8 + 3] = ins.jf;
    dv.setUint32(i * 8 + 4, ins.k >>> 0, true);
  });
  return b;
}

/**
 * A tiny interpreter for the opcodes above, so the filter is tested without a kernel: returns
 * the number of bytes the kernel would keep (0 = dropped). Out-of-bounds loads drop the packet,
 * as in the kernel.
 */
export function runBpf(prog: readonly BpfInstruction[], pkt: Uint8Array): number {
  let a = 0;
  let x = 0;
  const load = (off: number, size: number): number | undefined => {
    if (off < 0 || off + size > pkt.length) return undefined;
    let v = 0;
    for (let i = 0; i < size; i++) v = (v << 8) | pkt[off + i]!;
    return v >>> 0;
  };
  for (let pc = 0; pc < prog.length; pc++) {
    const ins = prog[pc]!;
    const cls = ins.code & 0x07;
    const size = ins.code & 0x18;
    const mode = ins.code & 0xe0;
    const bytes = size === BPF.B ? 1 : size === BPF.H ? 2 : 4;
    if (cls === BPF.LD) {
      const v = load(mode === BPF.IND ? x + ins.k : ins.k, bytes);
      if (v === undefined) return 0;
      a = v;
    } else if (cls === BPF.LDX && mode === BPF.MSH) {
      const v = load(ins.k, 1);
      if (v === undefined) return 0;
      x = (v & 0x0f) * 4;
    } else if (cls === BPF.JMP) {
      const op = ins.code & 0xf0;
      const taken = op === BPF.JEQ ? a === ins.k >>> 0 : op === BPF.JSET ? (a & ins.k) !== 0 : false;
      pc += taken ? ins.jt : ins.jf;
    } else if (cls === BPF.RET) {
      return ins.k;
    } else {
      throw new Error(`runBpf: opcode 0x${ins.code.toString(16)} not supported`);
    }
  }
  return 0;
}
