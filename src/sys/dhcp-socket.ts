// The DHCP transport: an AF_PACKET socket on the client's vxlan0 through bun:ffi, IPv4/UDP
// built by hand, for every exchange (acquire, renew/rebind, release).
//
// Why not UDP for the first exchange (measured, see PLATFORM.md): the DISCOVER leaves through
// eth0 (or with eth0's source), and the unicast OFFER to our MAC is never delivered to a UDP
// socket while the address is not local. Why not UDP for renew/release either: a socket bound to
// port 68 needs NET_BIND_SERVICE, which a container with only NET_ADMIN and NET_RAW lacks
// (`--cap-drop all`: bind fails with EACCES); the packet socket needs only NET_RAW. Renewals
// leave at the link broadcast too, with the server's IP as destination (the gateway accepts them:
// net.ipv4.conf.*.drop_unicast_in_l2_multicast is off by default). The server's unicast reply
// reaches the packet socket as well as the IP layer, which finds no UDP socket on port 68 and may
// answer with an ICMP port unreachable; the lab's renewal tests pass with it.
import { ptr } from "bun:ffi";
import { DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DecodeError, decodeIpUdp, encodeIpUdp } from "../core/dhcp/codec.ts";
import { DHCP_REPLY_FILTER, encodeBpfProgram } from "../core/dhcp/bpf.ts";
import type { Destination } from "../core/dhcp/machine.ts";
import { PodGatewayError } from "../core/errors.ts";
import { realClock } from "./clock.ts";
import { errno, libc, strerror } from "./libc.ts";

/** What the DHCP driver needs from a transport: send a BOOTP payload, wait for replies. */
export interface DhcpTransport {
  /** Send `payload` (a BOOTP message) from `from`:68 to `to`:67. */
  send(payload: Uint8Array, from: string, to: Destination): Promise<void>;
  /** The next BOOTP payload that arrived for port 68, or undefined once `waitMs` has passed. */
  receive(waitMs: number, signal?: AbortSignal): Promise<Uint8Array | undefined>;
  close(): void;
}

/** A socket call failed; says which call, on which interface, and errno. */
export class DhcpSocketError extends PodGatewayError {
  override name = "DhcpSocketError";
  constructor(
    message: string,
    readonly errno?: number,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// libc through bun:ffi (works inside compiled binaries): the process's one handle, src/sys/libc.ts.

const AF_PACKET = 17;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const ETH_P_IP = 0x0800;
const SOL_SOCKET = 1;
const SO_ATTACH_FILTER = 26;
/** SO_RCVTIMEO (asm-generic, x86_64 and arm64): a struct timeval of two 64-bit longs on these targets. */
const SO_RCVTIMEO = 20;
const MSG_DONTWAIT = 0x40;
const SOCKADDR_LL_SIZE = 20;

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 4: "EINTR", 6: "ENXIO", 11: "EAGAIN", 13: "EACCES", 19: "ENODEV", 22: "EINVAL", 90: "EMSGSIZE",
  93: "EPROTONOSUPPORT", 97: "EAFNOSUPPORT", 100: "ENETDOWN", 101: "ENETUNREACH", 105: "ENOBUFS",
};
const EINTR = 4;
const EAGAIN = 11;
const EPERM = 1;
const EACCES = 13;

function describeErrno(e: number): string {
  const text = strerror(e) ?? `errno ${e}`;
  return `${text} (${ERRNO_NAMES[e] ?? `errno ${e}`})`;
}

function sockaddrLl(ifindex: number, broadcastDest: boolean): Uint8Array {
  const b = new Uint8Array(SOCKADDR_LL_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, AF_PACKET, true); // sll_family, host order
  dv.setUint16(2, ETH_P_IP, false); // sll_protocol, network order
  dv.setInt32(4, ifindex, true); // sll_ifindex
  if (broadcastDest) {
    b[11] = 6; // sll_halen
    b.fill(0xff, 12, 18); // sll_addr: ff:ff:ff:ff:ff:ff
  }
  return b;
}

/**
 * A raw AF_PACKET/SOCK_DGRAM socket bound to one interface, for IPv4 packets. The kernel adds
 * the Ethernet header on send (to the link broadcast) and strips it on receive.
 */
export class PacketSocket {
  private fd: number;
  private readonly dest: Uint8Array;
  private readonly buf = new Uint8Array(4096);

  private constructor(
    readonly ifname: string,
    readonly ifindex: number,
    fd: number,
  ) {
    this.fd = fd;
    this.dest = sockaddrLl(ifindex, true);
  }

  static open(ifname: string): PacketSocket {
    const c = libc();
    const name = new TextEncoder().encode(ifname + "\0");
    const ifindex = c.if_nametoindex(name);
    if (ifindex === 0) {
      const e = errno();
      throw new DhcpSocketError(`DHCP on ${ifname}: looking up the interface index: ${describeErrno(e)}`, e);
    }
    const fd = c.socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, ((ETH_P_IP & 0xff) << 8) | (ETH_P_IP >> 8));
    if (fd < 0) {
      const e = errno();
      const hint = e === EPERM || e === EACCES ? ": the container needs the NET_RAW capability (securityContext.capabilities.add: [NET_RAW])" : "";
      throw new DhcpSocketError(`DHCP on ${ifname}: opening an AF_PACKET socket: ${describeErrno(e)}${hint}`, e);
    }
    const s = new PacketSocket(ifname, ifindex, fd);
    try {
      s.attachFilter();
      const addr = sockaddrLl(ifindex, false);
      if (c.bind(fd, addr, SOCKADDR_LL_SIZE) < 0) {
        const e = errno();
        throw new DhcpSocketError(`DHCP on ${ifname}: binding the packet socket to ifindex ${ifindex}: ${describeErrno(e)}`, e);
      }
      // Packets queued between socket() and bind() may come from any interface: drop them.
      while (s.recv() !== undefined);
    } catch (e) {
      s.close();
      throw e;
    }
    return s;
  }

  private attachFilter(): void {
    const prog = encodeBpfProgram(DHCP_REPLY_FILTER);
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; } — 16 bytes on 64-bit.
    const fprog = new Uint8Array(16);
    const dv = new DataView(fprog.buffer);
    dv.setUint16(0, DHCP_REPLY_FILTER.length, true);
    dv.setBigUint64(8, BigInt(ptr(prog)), true);
    if (libc().setsockopt(this.fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, 16) < 0) {
      const e = errno();
      throw new DhcpSocketError(`DHCP on ${this.ifname}: attaching the BPF filter: ${describeErrno(e)}`, e);
    }
    // `prog` must stay alive until the kernel copied it, which setsockopt does before returning.
    void prog.length;
  }

  /** Send one IPv4 packet to the link broadcast address. */
  send(packet: Uint8Array): void {
    if (this.fd < 0) throw new DhcpSocketError(`DHCP on ${this.ifname}: send on a closed socket`);
    for (;;) {
      const n = libc().sendto(this.fd, packet, packet.length, 0, this.dest, SOCKADDR_LL_SIZE);
      if (Number(n) >= 0) return;
      const e = errno();
      if (e === EINTR) continue;
      throw new DhcpSocketError(`DHCP on ${this.ifname}: sending ${packet.length} bytes: ${describeErrno(e)}`, e);
    }
  }

  /** One queued IPv4 packet (a copy), or undefined when none is waiting. Never blocks. */
  recv(): Uint8Array | undefined {
    if (this.fd < 0) return undefined;
    for (;;) {
      const n = Number(libc().recvfrom(this.fd, this.buf, this.buf.length, MSG_DONTWAIT, null, null));
      if (n >= 0) return this.buf.slice(0, n);
      const e = errno();
      if (e === EINTR) continue;
      if (e === EAGAIN) return undefined;
      throw new DhcpSocketError(`DHCP on ${this.ifname}: receiving: ${describeErrno(e)}`, e);
    }
  }

  /** The receive timeout set on the socket (µs), so it is set again only when it changes. */
  private timeoutUs = 0;

  /**
   * One queued IPv4 packet (a copy), waiting for it at most `ms` in the kernel (a receive bounded
   * by SO_RCVTIMEO): woken as soon as a packet arrives. Undefined when none came in time.
   */
  recvWithin(ms: number): Uint8Array | undefined {
    if (this.fd < 0) return undefined;
    // At least 100 µs: a zero timeval would mean "wait forever".
    const us = Math.max(100, Math.ceil(ms * 1000));
    if (us !== this.timeoutUs) {
      const tv = new Uint8Array(16);
      const dv = new DataView(tv.buffer);
      dv.setBigInt64(0, BigInt(Math.floor(us / 1_000_000)), true);
      dv.setBigInt64(8, BigInt(us % 1_000_000), true);
      if (libc().setsockopt(this.fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16) < 0) {
        const e = errno();
        throw new DhcpSocketError(`DHCP on ${this.ifname}: setting the receive timeout: ${describeErrno(e)}`, e);
      }
      this.timeoutUs = us;
    }
    const n = Number(libc().recvfrom(this.fd, this.buf, this.buf.length, 0, null, null));
    if (n >= 0) return this.buf.slice(0, n);
    const e = errno();
    if (e === EINTR || e === EAGAIN) return undefined;
    throw new DhcpSocketError(`DHCP on ${this.ifname}: receiving: ${describeErrno(e)}`, e);
  }

  close(): void {
    if (this.fd >= 0) libc().close(this.fd);
    this.fd = -1;
  }
}

/** One turn of the event loop (signals, timers, the abort) without a timer's millisecond. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The DHCP payload of a packet from port 67 to 68; undefined for anything else. */
function dhcpPayload(raw: Uint8Array): Uint8Array | undefined {
  try {
    const d = decodeIpUdp(raw);
    return d.dstPort === DHCP_CLIENT_PORT && d.srcPort === DHCP_SERVER_PORT ? d.payload : undefined;
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return undefined;
  }
}

/**
 * How receive() waits between looks at the packet socket (which cannot join Bun's event loop).
 * "block": in the kernel for at most pollMs (woken the moment a reply arrives; a 2 ms sleep between
 * non-blocking polls added ~2 ms to each exchange), then one event-loop turn — for the first
 * exchange, whose latency is the pod's start-up. It keeps the process awake: a 5 s renewal
 * nobody answers made 1155 recvfrom calls (strace). "sleep": a timer of idleMs between
 * non-blocking polls (118 calls for the same renewal), the event loop free — for a renewal in the
 * background of a client sidecar, where a reply seen idleMs late costs nothing, and where after
 * a gateway move up to 122 of 200 sidecars of one node were seen renewing at once (each
 * announces its lease to the gateway that is back).
 */
export type ReceiveWait = { kind: "block"; pollMs: number } | { kind: "sleep"; idleMs: number };

/** The first exchange's wait (see ReceiveWait). */
export const BLOCKING_RECEIVE: ReceiveWait = { kind: "block", pollMs: 2 };
/** A background renewal's wait (see ReceiveWait): 20 looks a second. */
export const BACKGROUND_RECEIVE: ReceiveWait = { kind: "sleep", idleMs: 50 };

/**
 * The next wait of receive() with `leftMs` of its wait left and nothing queued: undefined when
 * the wait is over; else how long to block in the kernel or sleep on a timer (never past the end).
 */
export function planReceiveStep(w: ReceiveWait, leftMs: number): { kind: "block" | "sleep"; ms: number } | undefined {
  if (!(leftMs > 0)) return undefined;
  return w.kind === "block" ? { kind: "block", ms: Math.min(w.pollMs, leftMs) } : { kind: "sleep", ms: Math.min(Math.max(1, w.idleMs), leftMs) };
}

/**
 * DHCP over a packet socket. Sends from the given address (0.0.0.0 for the first exchange, on an
 * interface without an address) to port 67 at the link broadcast; receives through the BPF filter,
 * waiting as `wait` says (ReceiveWait).
 */
export class PacketTransport implements DhcpTransport {
  private ipId = 0;
  constructor(
    private readonly sock: Pick<PacketSocket, "send" | "recv" | "recvWithin" | "close">,
    private readonly wait: ReceiveWait = BLOCKING_RECEIVE,
  ) {}

  static open(ifname: string, wait: ReceiveWait = BLOCKING_RECEIVE): PacketTransport {
    return new PacketTransport(PacketSocket.open(ifname), wait);
  }

  async send(payload: Uint8Array, from: string, to: Destination): Promise<void> {
    // The link destination is always broadcast (we know no MAC yet); a unicast IP destination is
    // still honoured in the IPv4 header.
    const dst = to.kind === "broadcast" ? "255.255.255.255" : to.ip;
    this.ipId = (this.ipId + 1) & 0xffff;
    this.sock.send(encodeIpUdp({ src: from, dst, srcPort: DHCP_CLIENT_PORT, dstPort: DHCP_SERVER_PORT, payload }, { id: this.ipId }));
  }

  async receive(waitMs: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    const end = performance.now() + Math.max(0, waitMs);
    for (;;) {
      for (let raw = this.sock.recv(); raw !== undefined; raw = this.sock.recv()) {
        const payload = dhcpPayload(raw);
        if (payload) return payload;
      }
      const step = signal?.aborted ? undefined : planReceiveStep(this.wait, end - performance.now());
      if (!step) return undefined;
      if (step.kind === "sleep") {
        await realClock.sleep(step.ms, signal);
        continue;
      }
      const raw = this.sock.recvWithin(step.ms);
      const payload = raw && dhcpPayload(raw);
      if (payload) return payload;
      await nextTurn();
    }
  }

  close(): void {
    this.sock.close();
  }
}
