// rtnetlink in-process: an AF_NETLINK/NETLINK_ROUTE socket through bun:ffi (the model is the DHCP
// packet socket, src/sys/dhcp-socket.ts; both share one libc handle, src/sys/libc.ts), the request/ACK/dump protocol over it, an event
// subscription, and the typed operations the roles use. Messages are built and read by the pure
// codec in src/core/netlink/.
//
// Requests are synchronous: rtnetlink handles a request inside sendmsg() and queues the answer
// (and the first part of a dump) before send returns, so a blocking recv with SO_RCVTIMEO as a
// bound never waits in practice and needs no event loop. Only the event socket polls.
import * as C from "../core/netlink/constants.ts";
import { decodeAddr, decodeLink, decodeNeigh, decodeRoute, decodeRule, type AddrMessage, type LinkMessage, type NeighMessage, type RouteMessage, type RuleMessage } from "../core/netlink/messages.ts";
import * as R from "../core/netlink/requests.ts";
import { attrString, decodeAttrs, decodeError, decodeMessages, encodeMessage, type NlMessage } from "../core/netlink/wire.ts";
import { PodGatewayError } from "../core/errors.ts";
import { realClock } from "./clock.ts";
import { errno, libc, strerror } from "./libc.ts";

// ---------------------------------------------------------------- errors

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV",
  22: "EINVAL", 34: "ERANGE", 61: "ENODATA", 90: "EMSGSIZE", 93: "EPROTONOSUPPORT", 95: "EOPNOTSUPP", 97: "EAFNOSUPPORT", 99: "EADDRNOTAVAIL",
  101: "ENETUNREACH", 105: "ENOBUFS", 110: "ETIMEDOUT", 113: "EHOSTUNREACH",
};
export const ENOENT = 2;
export const EACCES = 13;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ESRCH = 3;
export const EADDRNOTAVAIL = 99;
export const ENETUNREACH = 101;
export const EHOSTUNREACH = 113;
const EPERM = 1;
const EINTR = 4;
const EAGAIN = 11;
const ENOBUFS = 105;

/**
 * A netlink operation failed. The message names the operation and the object, the kernel's
 * errno and its extended-ACK text: "adding route 10.0.0.0/8 via 10.0.0.254 dev eth0: File exists (EEXIST)".
 */
/** NetlinkError's message (also for answers reported without throwing, as routeGet's). */
export function netlinkErrorMessage(what: string, errno: number, kernelMessage?: string, detail?: string): string {
  return `${what}: ${detail ? `${detail} (${ERRNO_NAMES[errno] ?? `errno ${errno}`})` : describeErrno(errno)}${kernelMessage ? ` (kernel: ${kernelMessage})` : ""}${errno === EPERM ? ": the container needs the NET_ADMIN capability" : ""}`;
}

export class NetlinkError extends PodGatewayError {
  override name = "NetlinkError";
  constructor(
    readonly what: string,
    readonly errno: number,
    readonly kernelMessage?: string,
    detail?: string,
  ) {
    super(netlinkErrorMessage(what, errno, kernelMessage, detail));
  }
  get code(): string {
    return ERRNO_NAMES[this.errno] ?? `errno ${this.errno}`;
  }
}

// ---------------------------------------------------------------- libc

const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const AF_NETLINK = 16;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVTIMEO = 20;
const MSG_DONTWAIT = 0x40;
const MSG_TRUNC = 0x20;

export function describeErrno(e: number): string {
  const text = strerror(e) ?? `errno ${e}`;
  return `${text} (${ERRNO_NAMES[e] ?? `errno ${e}`})`;
}

/** The ifindex of `name` in this namespace, or undefined when there is no such link. */
export function ifIndex(name: string): number | undefined {
  const i = libc().if_nametoindex(new TextEncoder().encode(name + "\0"));
  return i === 0 ? undefined : i;
}

// ---------------------------------------------------------------- the socket

export interface NetlinkOptions {
  /** Multicast groups (RTMGRP_*) for an event socket; 0 for requests. */
  groups?: number;
  /** Bound on every receive (a kernel answer is immediate; this only keeps a bug from hanging). */
  timeoutMs?: number;
  /** SO_RCVBUF in bytes (tests make it small to provoke ENOBUFS). */
  rcvbuf?: number;
  /** Netlink protocol (default NETLINK_ROUTE; the drop report uses NETLINK_NETFILTER). */
  protocol?: number;
}

/** How often a dump is retried when the kernel says it was interrupted by a change. */
export const DUMP_INTR_RETRIES = 10;

export class NetlinkSocket {
  private fd: number;
  private seq: number;
  private readonly buf = new Uint8Array(65536);

  private constructor(fd: number) {
    this.fd = fd;
    // Any start works; a per-process start keeps stale answers of an earlier socket from matching.
    this.seq = (Date.now() & 0x7fffffff) >>> 0;
  }

  static open(opts: NetlinkOptions = {}): NetlinkSocket {
    const c = libc();
    const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, opts.protocol ?? C.NETLINK_ROUTE);
    if (fd < 0) {
      const e = errno();
      throw new NetlinkError(opts.protocol === undefined ? "opening a NETLINK_ROUTE socket" : `opening a netlink socket (protocol ${opts.protocol})`, e);
    }
    const s = new NetlinkSocket(fd);
    try {
      const one = new Uint8Array(4);
      new DataView(one.buffer).setInt32(0, 1, true);
      // Extended ACKs carry the kernel's own explanation; capped ACKs do not echo our request.
      s.setopt(C.SOL_NETLINK, C.NETLINK_EXT_ACK, one, "NETLINK_EXT_ACK");
      s.setopt(C.SOL_NETLINK, C.NETLINK_CAP_ACK, one, "NETLINK_CAP_ACK");
      const tv = new Uint8Array(16);
      const ms = opts.timeoutMs ?? 5000;
      const tvv = new DataView(tv.buffer);
      tvv.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
      tvv.setBigInt64(8, BigInt((ms % 1000) * 1000), true);
      s.setopt(SOL_SOCKET, SO_RCVTIMEO, tv, "SO_RCVTIMEO");
      if (opts.rcvbuf !== undefined) {
        const b = new Uint8Array(4);
        new DataView(b.buffer).setInt32(0, opts.rcvbuf, true);
        s.setopt(SOL_SOCKET, SO_RCVBUF, b, "SO_RCVBUF");
      }
      // struct sockaddr_nl { u16 family; u16 pad; u32 pid (0: the kernel assigns); u32 groups }
      const sa = new Uint8Array(12);
      const sav = new DataView(sa.buffer);
      sav.setUint16(0, AF_NETLINK, true);
      sav.setUint32(8, opts.groups ?? 0, true);
      if (c.bind(fd, sa, 12) < 0) throw new NetlinkError("binding the netlink socket", errno());
    } catch (e) {
      s.close();
      throw e;
    }
    return s;
  }

  private setopt(level: number, name: number, value: Uint8Array, what: string): void {
    if (libc().setsockopt(this.fd, level, name, value, value.length) < 0) throw new NetlinkError(`setting ${what} on the netlink socket`, errno());
  }

  close(): void {
    if (this.fd >= 0) libc().close(this.fd);
    this.fd = -1;
  }

  private send(req: R.NlRequest, what: string): number {
    if (this.fd < 0) throw new NetlinkError(what, 9, undefined, "the netlink socket is closed");
    this.seq = (this.seq + 1) >>> 0;
    const bytes = encodeMessage({ type: req.type, flags: req.flags, seq: this.seq, pid: 0 }, req.body);
    for (;;) {
      const n = Number(libc().send(this.fd, bytes, bytes.length, 0));
      if (n >= 0) return this.seq;
      const e = errno();
      if (e !== EINTR) throw new NetlinkError(what, e);
    }
  }

  /**
   * One datagram's messages; undefined when none arrived (non-blocking: none queued; blocking:
   * the timeout passed). ENOBUFS (events lost) is thrown as a NetlinkError with that errno.
   */
  receive(blocking: boolean, what: string): NlMessage[] | undefined {
    for (;;) {
      const n = Number(libc().recv(this.fd, this.buf, this.buf.length, (blocking ? 0 : MSG_DONTWAIT) | MSG_TRUNC));
      if (n >= 0) {
        if (n > this.buf.length) throw new NetlinkError(what, 90, undefined, `a ${n}-byte netlink message does not fit the ${this.buf.length}-byte buffer`);
        return decodeMessages(this.buf.slice(0, n));
      }
      const e = errno();
      if (e === EINTR) continue;
      if (e === EAGAIN) return undefined;
      throw new NetlinkError(what, e);
    }
  }

  /**
   * Send a request and wait for its answer: the ACK (NLM_F_ACK), or the one reply of a GET.
   * Returns the replies before the ACK. Errors become NetlinkError naming `what`.
   */
  request(req: R.NlRequest, what: string): NlMessage[] {
    const r = this.exchange(req, what);
    if (!Array.isArray(r)) throw new NetlinkError(what, r.errno, r.kernelMessage);
    return r;
  }

  /**
   * request() that returns the kernel's refusal instead of throwing it, for requests where a
   * refusal is an ordinary answer (a route lookup's "unreachable": three per isolation check).
   * Transport failures still throw.
   */
  exchange(req: R.NlRequest, what: string): NlMessage[] | { errno: number; kernelMessage?: string } {
    const seq = this.send(req, what);
    const replies: NlMessage[] = [];
    for (;;) {
      const msgs = this.receive(true, what);
      if (msgs === undefined) throw new NetlinkError(what, 110, undefined, "the kernel did not answer");
      for (const m of msgs) {
        if (m.header.seq !== seq) continue; // an answer to an earlier request that timed out
        if (m.header.type === C.NLMSG_ERROR) {
          const err = decodeError(m);
          if (err.errno !== 0) return { errno: err.errno, ...(err.message ? { kernelMessage: err.message } : {}) };
          return replies;
        }
        replies.push(m);
        if (!(req.flags & C.NLM_F_ACK)) return replies;
      }
    }
  }

  /** A dump: every part up to NLMSG_DONE; retried when the kernel flags it interrupted. */
  dump(req: R.NlRequest, what: string): NlMessage[] {
    return runDump(() => this.send(req, what), () => this.receive(true, what), what);
  }
}

/**
 * The dump protocol over any transport (tests drive it with canned datagrams): send, collect the
 * parts answering our sequence number up to NLMSG_DONE, and start over when any part carries
 * NLM_F_DUMP_INTR (the table changed while the kernel walked it, so the parts may be
 * inconsistent), at most DUMP_INTR_RETRIES times.
 */
export function runDump(send: () => number, receive: () => NlMessage[] | undefined, what: string): NlMessage[] {
  for (let attempt = 0; ; attempt++) {
    const seq = send();
    const out: NlMessage[] = [];
    let interrupted = false;
    let done = false;
    while (!done) {
      const msgs = receive();
      if (msgs === undefined) throw new NetlinkError(what, 110, undefined, "the kernel did not finish the dump");
      for (const m of msgs) {
        if (m.header.seq !== seq) continue;
        if (m.header.flags & C.NLM_F_DUMP_INTR) interrupted = true;
        if (m.header.type === C.NLMSG_DONE) {
          // NLMSG_DONE carries an int: negative when the dump failed part-way.
          const p = m.payload;
          const err = p.length >= 4 ? p[0]! | (p[1]! << 8) | (p[2]! << 16) | (p[3]! << 24) : 0;
          if (err < 0) throw new NetlinkError(what, -err, decodeErrorTail(m));
          done = true;
          break;
        }
        if (m.header.type === C.NLMSG_ERROR) {
          const err = decodeError(m);
          if (err.errno !== 0) throw new NetlinkError(what, err.errno, err.message);
          done = true;
          break;
        }
        out.push(m);
      }
    }
    if (!interrupted) return out;
    if (attempt + 1 >= DUMP_INTR_RETRIES) throw new NetlinkError(what, EAGAIN, undefined, `the dump was interrupted by changes ${DUMP_INTR_RETRIES} times in a row`);
  }
}

/** NLMSG_DONE of a failed dump: int error, then (NLM_F_ACK_TLVS) the extended-ACK attributes. */
function decodeErrorTail(m: NlMessage): string | undefined {
  if (!(m.header.flags & C.NLM_F_ACK_TLVS)) return undefined;
  try {
    const a = decodeAttrs(m.payload.subarray(4)).find((x) => x.type === C.NLMSGERR_ATTR_MSG);
    return a ? attrString(a) : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- typed operations

export const fmtPrefix = (addr: string, len: number) => `${addr}/${len}`;

/** A link as the roles see it: the decoded message with its name guaranteed. */
export type Link = LinkMessage & { name: string };

export interface Route extends RouteMessage {
  /** Output device name, resolved from oif. */
  dev?: string;
}

export type RouteGet = { dst: string; ok: true; route: Route } | { dst: string; ok: false; errno: number; message: string };

/**
 * The typed operations of issue 16 over one request socket. Interface names are resolved to
 * indexes here (if_nametoindex, in-process). Every error names the operation and the object.
 */
export class Rtnl {
  constructor(readonly sock: NetlinkSocket) {}

  static open(opts?: NetlinkOptions): Rtnl {
    return new Rtnl(NetlinkSocket.open(opts));
  }

  close(): void {
    this.sock.close();
  }

  /** ifindex of `name`, or a NetlinkError ENODEV naming the operation. */
  index(name: string, what: string): number {
    const i = ifIndex(name);
    if (i === undefined) throw new NetlinkError(what, ENODEV, undefined, `no device ${name}`);
    return i;
  }

  // ---- links
  links(): Link[] {
    return this.sock.dump(R.linkDumpRequest(), "listing links").filter((m) => m.header.type === C.RTM_NEWLINK).map((m) => decodeLink(m.payload) as Link);
  }

  /** The link called `name`, or undefined. */
  link(name: string): Link | undefined {
    try {
      const [m] = this.sock.request(R.linkGetRequest(name), `reading link ${name}`);
      return m ? (decodeLink(m.payload) as Link) : undefined;
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === ENODEV) return undefined;
      throw e;
    }
  }

  createVxlan(v: Omit<R.VxlanCreate, "dev"> & { dev?: string }): void {
    const what = `creating vxlan ${v.name} (VNI ${v.vni}${v.dev ? ` dev ${v.dev}` : ""}${v.remote ? ` remote ${v.remote}` : ""})`;
    const dev = v.dev === undefined ? undefined : this.index(v.dev, what);
    this.sock.request(R.vxlanCreateRequest({ ...v, dev }), what);
  }

  setLink(name: string, s: R.LinkSet): void {
    const parts = [s.mtu !== undefined ? `mtu ${s.mtu}` : "", s.mac !== undefined ? `address ${s.mac}` : "", s.up === true ? "up" : s.up === false ? "down" : ""].filter(Boolean);
    const what = `setting link ${name} ${parts.join(" ")}`;
    this.sock.request(R.linkSetRequest(this.index(name, what), s), what);
  }

  setVxlanRemote(name: string, remote: string): void {
    const what = `setting vxlan ${name} remote ${remote}`;
    this.sock.request(R.vxlanSetRemoteRequest(this.index(name, what), remote), what);
  }

  deleteLink(name: string): void {
    const what = `deleting link ${name}`;
    this.sock.request(R.linkDeleteRequest(this.index(name, what)), what);
  }

  // ---- addresses
  addresses(family?: R.Family): AddrMessage[] {
    return this.sock.dump(R.addrDumpRequest(family), "listing addresses").filter((m) => m.header.type === C.RTM_NEWADDR).map((m) => decodeAddr(m.payload));
  }

  address(op: "add" | "replace" | "delete", a: Omit<R.AddrSpec, "index"> & { dev: string }): void {
    const verb = op === "add" ? "adding" : op === "replace" ? "replacing" : "deleting";
    const what = `${verb} address ${fmtPrefix(a.local, a.prefixlen)} on ${a.dev}`;
    this.sock.request(R.addrRequest(op, { ...a, index: this.index(a.dev, what) }), what);
  }

  // ---- routes
  /** Every route of every table (family undefined: both). */
  routes(family?: R.Family): RouteMessage[] {
    return this.sock.dump(R.routeDumpRequest(family), "listing routes").filter((m) => m.header.type === C.RTM_NEWROUTE).map((m) => decodeRoute(m.payload));
  }

  route(op: "add" | "replace" | "delete", r: Omit<R.RouteSpec, "oif"> & { dev?: string }): void {
    const verb = op === "add" ? "adding" : op === "replace" ? "replacing" : "deleting";
    const what = `${verb} route ${describeRouteSpec(r)}`;
    const oif = r.dev === undefined ? undefined : this.index(r.dev, what);
    try {
      this.sock.request(R.routeRequest(op, { ...r, ...(oif !== undefined ? { oif } : {}) }), what);
    } catch (e) {
      // The kernel's "No such process" means: no route matched.
      if (e instanceof NetlinkError && e.errno === ESRCH) throw new NetlinkError(what, ESRCH, e.kernelMessage, "no such route");
      throw e;
    }
  }

  /** `ip route get`: the route the kernel would use, or its routing error (no route, unreachable, prohibited). */
  routeGet(dst: string): RouteGet {
    const family: R.Family = dst.includes(":") ? 6 : 4;
    const what = `looking up the route to ${dst}`;
    try {
      const r = this.sock.exchange(R.routeGetRequest(dst, family), what);
      if (!Array.isArray(r)) return { dst, ok: false, errno: r.errno, message: netlinkErrorMessage(what, r.errno, r.kernelMessage) };
      const [m] = r;
      if (!m) return { dst, ok: false, errno: ENOENT, message: "no answer" };
      return { dst, ok: true, route: decodeRoute(m.payload) };
    } catch (e) {
      if (e instanceof NetlinkError) return { dst, ok: false, errno: e.errno, message: e.message };
      throw e;
    }
  }

  // ---- rules
  rules(family: R.Family): RuleMessage[] {
    return this.sock.dump(R.ruleDumpRequest(family), `listing IPv${family} rules`).filter((m) => m.header.type === C.RTM_NEWRULE).map((m) => decodeRule(m.payload));
  }

  rule(op: "add" | "delete", r: R.RuleSpec): void {
    const what = `${op === "add" ? "adding" : "deleting"} rule ${describeRuleSpec(r)}`;
    try {
      this.sock.request(R.ruleRequest(op, r), what);
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === ENOENT && op === "delete") throw new NetlinkError(what, ENOENT, e.kernelMessage, "no such rule");
      throw e;
    }
  }

  // ---- neighbours
  /** The vxlan (or bridge port) forwarding entries of `dev`. */
  fdb(dev: string): NeighMessage[] {
    const what = `listing forwarding entries of ${dev}`;
    const index = this.index(dev, what);
    // The kernel filters by port only for bridge ports; filter here too.
    return this.sock.dump(R.fdbDumpRequest(index), what).filter((m) => m.header.type === C.RTM_NEWNEIGH).map((m) => decodeNeigh(m.payload)).filter((n) => n.index === index);
  }

  neighbours(family: R.Family, dev?: string): NeighMessage[] {
    const what = `listing IPv${family} neighbours${dev ? ` of ${dev}` : ""}`;
    const index = dev === undefined ? undefined : this.index(dev, what);
    return this.sock.dump(R.neighDumpRequest(family, index), what).filter((m) => m.header.type === C.RTM_NEWNEIGH).map((m) => decodeNeigh(m.payload)).filter((n) => index === undefined || n.index === index);
  }

  /**
   * `ip neigh flush dev <dev> [to <addr>]`: every IPv4 entry (or only `to`'s) but the permanent
   * ones (NOARP ones go too, as with ip). Returns how many went.
   */
  /** `ip ntable change name arp_cache dev <dev> retrans <ms>`. */
  setNeighRetrans(dev: string, retransMs: number): void {
    const what = `setting the ARP retransmit time of ${dev} to ${retransMs} ms`;
    this.sock.request(R.neighRetransRequest(this.index(dev, what), retransMs), what);
  }

  flushNeighbours(dev: string, to?: string): number {
    let n = 0;
    for (const e of this.neighbours(4, dev)) {
      if (e.state & C.NUD_PERMANENT || e.dst === undefined) continue;
      if (to !== undefined && e.dst !== to) continue;
      try {
        this.sock.request(R.neighDeleteRequest(4, e.index, e.dst), `deleting neighbour ${e.dst} on ${dev}`);
        n++;
      } catch (err) {
        // gone meanwhile (garbage collected): that is what we wanted
        if (!(err instanceof NetlinkError && err.errno === ENOENT)) throw err;
      }
    }
    return n;
  }
}

export function describeRouteSpec(r: Omit<R.RouteSpec, "oif"> & { dev?: string }): string {
  return [
    r.type && r.type !== "unicast" ? r.type : "",
    r.dst,
    r.via ? `via ${r.via}` : "",
    r.dev ? `dev ${r.dev}` : "",
    r.onlink ? "onlink" : "",
    r.table !== undefined && r.table !== C.RT_TABLE_MAIN ? `table ${r.table}` : "",
    r.protocol !== undefined ? `proto ${r.protocol}` : "",
    r.scope !== undefined ? `scope ${r.scope}` : "",
    r.metric !== undefined ? `metric ${r.metric}` : "",
  ]
    .filter(Boolean)
    .join(" ");
}

export function describeRuleSpec(r: R.RuleSpec): string {
  return [
    `pref ${r.priority}`,
    r.from ? `from ${r.from}` : "",
    r.to ? `to ${r.to}` : "",
    r.iif ? `iif ${r.iif}` : "",
    r.oif ? `oif ${r.oif}` : "",
    r.fwmark !== undefined ? `fwmark ${r.fwmark}` : "",
    r.table !== undefined ? `table ${r.table}` : "",
    r.suppressPrefixlen !== undefined ? `suppress_prefixlength ${r.suppressPrefixlen}` : "",
  ]
    .filter(Boolean)
    .join(" ");
}

// ---------------------------------------------------------------- events

export type NetlinkEvent =
  | { kind: "link"; deleted: boolean; link: LinkMessage }
  | { kind: "route"; deleted: boolean; route: RouteMessage }
  /** The kernel dropped events (ENOBUFS): here is the whole state again. */
  | { kind: "resync"; links: LinkMessage[]; routes: RouteMessage[] };

/**
 * Link and IPv4 route events (RTMGRP_LINK | RTMGRP_IPV4_ROUTE). A netlink socket cannot join
 * Bun's event loop, so next() polls a non-blocking receive with short sleeps. When the kernel
 * could not queue an event (ENOBUFS: the receive buffer overflowed) every later event is
 * suspect, so next() answers with a fresh dump of links and routes instead.
 */
export class NetlinkEvents {
  private readonly pending: NetlinkEvent[] = [];
  private constructor(
    private readonly events: NetlinkSocket,
    private readonly rtnl: Rtnl,
    private readonly pollMs: number,
  ) {}

  static open(opts: { rcvbuf?: number; pollMs?: number } = {}): NetlinkEvents {
    const events = NetlinkSocket.open({ groups: C.RTMGRP_LINK | C.RTMGRP_IPV4_ROUTE, ...(opts.rcvbuf !== undefined ? { rcvbuf: opts.rcvbuf } : {}) });
    try {
      return new NetlinkEvents(events, Rtnl.open(), opts.pollMs ?? 20);
    } catch (e) {
      events.close();
      throw e;
    }
  }

  /** The next event, or undefined once `waitMs` passed without one. */
  async next(waitMs: number, signal?: AbortSignal): Promise<NetlinkEvent | undefined> {
    const end = performance.now() + Math.max(0, waitMs);
    for (;;) {
      const queued = this.pending.shift();
      if (queued) return queued;
      let msgs: NlMessage[] | undefined;
      try {
        msgs = this.events.receive(false, "receiving link and route events");
      } catch (e) {
        if (e instanceof NetlinkError && e.errno === ENOBUFS) {
          // Drain what is queued (it predates the re-dump), then dump.
          while (this.safeReceive() !== undefined);
          return { kind: "resync", links: this.rtnl.links(), routes: this.rtnl.routes(4) };
        }
        throw e;
      }
      if (msgs) {
        for (const m of msgs) {
          const t = m.header.type;
          if (t === C.RTM_NEWLINK || t === C.RTM_DELLINK) this.pending.push({ kind: "link", deleted: t === C.RTM_DELLINK, link: decodeLink(m.payload) });
          else if (t === C.RTM_NEWROUTE || t === C.RTM_DELROUTE) this.pending.push({ kind: "route", deleted: t === C.RTM_DELROUTE, route: decodeRoute(m.payload) });
        }
        continue;
      }
      const left = end - performance.now();
      if (left <= 0 || signal?.aborted) return undefined;
      await realClock.sleep(Math.min(this.pollMs, left), signal);
    }
  }

  private safeReceive(): NlMessage[] | undefined {
    try {
      return this.events.receive(false, "draining events");
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.events.close();
    this.rtnl.close();
  }
}

/** One rtnetlink socket opened at first use and kept until close(): the roles' network hosts extend it. */
export class LazyRtnl {
  private rtnl: Rtnl | undefined;

  protected nl(): Rtnl {
    this.rtnl ??= Rtnl.open();
    return this.rtnl;
  }

  close(): void {
    this.rtnl?.close();
    this.rtnl = undefined;
  }
}
