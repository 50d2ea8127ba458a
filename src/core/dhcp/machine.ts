// The DHCP client state machine (RFC 2131 §4.4): pure. It takes events (start, packet received,
// timer fired, release) with the current time and returns actions (send, set timer, bound, lost,
// failed). No sockets, no clock reads; randomness (xids, jitter) comes from an injected source.
//
//   discover:  INIT → SELECTING (DISCOVER) → REQUESTING (REQUEST 50+54) → BOUND
//              SELECTING → BOUND on an ACK carrying Rapid Commit (RFC 4039: one round trip)
//   reboot:    INIT-REBOOT → REBOOTING (REQUEST 50, no 54) → BOUND; NAK or silence → discover
//   bound:     T1 → RENEWING (unicast, ciaddr) → T2 → REBINDING (broadcast) → expiry → lost
//   release:   RELEASE to the server, forget the lease
import {
  BOOTREPLY,
  BOOTREQUEST,
  HTYPE_ETHERNET,
  MessageType,
  Opt,
  bytesToMac,
  macToBytes,
  maskToPrefixLength,
  messageTypeName,
  type DhcpMessage,
  type DhcpOptions,
} from "./codec.ts";
import { INFINITE_LEASE, leaseTimes, type Lease } from "./types.ts";

export type MachineState = "init" | "selecting" | "requesting" | "rebooting" | "bound" | "renewing" | "rebinding" | "released";

/** The step an exchange was in, for error messages ("dhcp on vxlan0: discover: ..."). */
export type DhcpStep = "discover" | "request" | "reboot" | "renew" | "rebind";

export interface RetryPolicy {
  /** First retransmission delay. RFC 2131 says 4 s for a LAN; a pod overlay answers in ms. */
  initialMs: number;
  /** Cap of the doubling while acquiring. */
  maxMs: number;
  /** Cap while renewing/rebinding: the lease is still valid, so there is no hurry. */
  renewMaxMs: number;
  /** Each delay is multiplied by 1 ± jitter (uniform) so pods restarted together spread out. */
  jitter: number;
  /** REQUESTs sent after an OFFER before starting over with a new DISCOVER. */
  requestAttempts: number;
  /** INIT-REBOOT REQUESTs sent before falling back to DISCOVER (a non-authoritative dnsmasq stays silent). */
  rebootAttempts: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  initialMs: 250,
  maxMs: 4000,
  renewMaxMs: 60_000,
  jitter: 0.25,
  requestAttempts: 4,
  rebootAttempts: 2,
};

/**
 * Options we ask the server for (55). 1, 3, 6, 26, 51, 54, 58, 59 are what the lease is made of;
 * dnsmasq only sends options that are asked for (or configured to be forced).
 */
export const PARAMETER_REQUEST_LIST = [Opt.subnetMask, Opt.router, Opt.dnsServer, Opt.interfaceMtu, Opt.leaseTime, Opt.serverId, Opt.renewalTime, Opt.rebindingTime];

export interface MachineOptions {
  /** Our hardware address, "02:..:..". */
  mac: string;
  /** Option 61 bytes, type byte first (see clientIdFromName). */
  clientId: Uint8Array;
  /** Option 12. */
  hostname?: string;
  /** Uniform in [0, 1): transaction ids and jitter. */
  random: () => number;
  retry?: Partial<RetryPolicy>;
  /**
   * Ask for Rapid Commit (option 80, RFC 4039) in DISCOVER: a server that supports it (the
   * gateway's dnsmasq, dhcp-rapid-commit) answers with the ACK at once; one that does not ignores
   * the option and OFFERs as usual. Default true.
   */
  rapidCommit?: boolean;
}

export type Destination = { kind: "broadcast" } | { kind: "unicast"; ip: string };

export type MachineEvent =
  /** Acquire a lease from scratch; `requestedAddress` is a hint (option 50 in the DISCOVER). */
  | { type: "discover"; now: number; deadlineAt?: number; requestedAddress?: string }
  /** INIT-REBOOT: ask for a known address directly; falls back to discover (keeping the deadline). */
  | { type: "reboot"; now: number; address: string; deadlineAt?: number }
  /** Adopt a lease obtained earlier (by client-init, by another process) and keep it. */
  | { type: "bind"; now: number; lease: Lease }
  /**
   * Renew now instead of at T1: unicast to the server (RENEWING) or broadcast (REBINDING).
   * `leaseSeconds` asks for that lease time (option 51, RFC 2131 §3.5): the client sidecar asks
   * for a short one at shutdown, so the address returns to the pool soon after the pod is gone.
   */
  | { type: "renew"; now: number; broadcast?: boolean; deadlineAt?: number; leaseSeconds?: number }
  | { type: "release"; now: number }
  | { type: "packet"; now: number; message: DhcpMessage }
  | { type: "timer"; now: number };

export type MachineAction =
  /** Send `message` from `from`:68 (0.0.0.0 before we have an address) to `to`:67. */
  | { type: "send"; message: DhcpMessage; from: string; to: Destination }
  /** Deliver a timer event at this time (replaces any earlier timer); undefined: no timer. */
  | { type: "timer"; at: number | undefined }
  | { type: "bound"; lease: Lease; how: "selected" | "rapid commit" | "rebooted" | "renewed" | "rebound" }
  /** The lease is gone (expired, or NAKed while renewing): stop using the address. */
  | { type: "lost"; lease: Lease; reason: string }
  /** The exchange's deadline passed. While renewing, the lease itself is kept (state → bound). */
  | { type: "failed"; step: DhcpStep; reason: string }
  /** A packet or event that changed nothing, and why (for debug logs and tests). */
  | { type: "ignored"; reason: string };

const ZERO = "0.0.0.0";

function hex(n: number): string {
  return "0x" + (n >>> 0).toString(16).padStart(8, "0");
}

/**
 * Build the Lease an ACK grants, or a reason it cannot be used. T1/T2 default to 0.5 and 0.875
 * of the lease (RFC 2131 §4.4.5) and are clamped so that T1 ≤ T2 ≤ lease.
 */
export function leaseFromAck(ack: DhcpMessage, now: number, fallbackServer?: string): Lease | string {
  const o = ack.options;
  if (ack.yiaddr === ZERO) return "ACK without an address (yiaddr 0.0.0.0)";
  const serverId = o.serverId ?? fallbackServer;
  if (serverId === undefined) return "ACK without a server identifier (option 54)";
  if (o.leaseSeconds === undefined) return "ACK without a lease time (option 51)";
  let prefixLength = 24; // the pod-gateway overlay is always a /24; dnsmasq always sends option 1
  if (o.subnetMask !== undefined) {
    const p = maskToPrefixLength(o.subnetMask);
    if (p === undefined) return `ACK with a non-contiguous subnet mask ${o.subnetMask}`;
    prefixLength = p;
  }
  const lease = o.leaseSeconds;
  let rebind: number;
  let renew: number;
  if (lease === INFINITE_LEASE) {
    rebind = renew = INFINITE_LEASE;
  } else {
    rebind = Math.min(o.rebindingSeconds ?? Math.floor(lease * 0.875), lease);
    renew = Math.min(o.renewalSeconds ?? Math.floor(lease * 0.5), rebind);
  }
  const out: Lease = {
    address: ack.yiaddr,
    prefixLength,
    dns: o.dnsServers ?? [],
    serverId,
    leaseSeconds: lease,
    renewSeconds: renew,
    rebindSeconds: rebind,
    obtainedAt: now,
  };
  if (o.routers?.[0] !== undefined) out.router = o.routers[0];
  if (o.mtu !== undefined) out.mtu = o.mtu;
  return out;
}

export class DhcpMachine {
  private readonly retry: RetryPolicy;
  private readonly chaddr: Uint8Array;
  private readonly mac: string;

  private _state: MachineState = "init";
  private _lease: Lease | undefined;
  private _timerAt: number | undefined;
  private _xid = 0;

  /** Start of the current exchange (secs field) and its deadline. */
  private exchangeStart = 0;
  private deadlineAt: number | undefined;
  /** Transmissions in the current state and when the next one is due. */
  private attempts = 0;
  private retransmitAt: number | undefined;
  /** NAKs seen in this acquisition: the first restarts at once, later ones back off. */
  private naks = 0;
  private offer: { address: string; serverId: string } | undefined;
  private requestedAddress: string | undefined;
  /** Start of the whole acquisition: its deadline covers restarts after NAKs and silence. */
  private acquisitionStart = 0;
  /** Set by the one-shot renew event: a renew that must finish by its deadline. */
  private renewDeadlineAt: number | undefined;
  /** Set by the one-shot renew event: the lease time to ask for (option 51). */
  private renewLeaseSeconds: number | undefined;

  constructor(private readonly opts: MachineOptions) {
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.chaddr = macToBytes(opts.mac);
    this.mac = bytesToMac(this.chaddr);
  }

  get state(): MachineState {
    return this._state;
  }
  get lease(): Lease | undefined {
    return this._lease;
  }
  /** When the next timer event is due (the same value the last timer action carried). */
  get timerAt(): number | undefined {
    return this._timerAt;
  }
  get xid(): number {
    return this._xid;
  }
  /** The exchange under way, as errors name it (a machine at rest counts as discover). */
  get step(): DhcpStep {
    switch (this._state) {
      case "requesting":
        return "request";
      case "rebooting":
        return "reboot";
      case "renewing":
        return "renew";
      case "rebinding":
        return "rebind";
      default:
        return "discover";
    }
  }

  handle(ev: MachineEvent): MachineAction[] {
    const out: MachineAction[] = [];
    switch (ev.type) {
      case "discover":
        this.acquisitionStart = ev.now;
        this.naks = 0;
        this.deadlineAt = ev.deadlineAt;
        this.requestedAddress = ev.requestedAddress;
        this._lease = undefined;
        this.startDiscover(ev.now, out);
        break;
      case "reboot":
        this.acquisitionStart = ev.now;
        this.naks = 0;
        this.deadlineAt = ev.deadlineAt;
        this.requestedAddress = ev.address;
        this._lease = undefined;
        this.newExchange(ev.now);
        this._state = "rebooting";
        this.transmit(ev.now, out);
        break;
      case "bind":
        this._lease = ev.lease;
        this._state = "bound";
        this.retransmitAt = undefined;
        this.deadlineAt = undefined;
        this.checkLeaseTimes(ev.now, out);
        break;
      case "renew":
        if (!this._lease || !(this._state === "bound" || this._state === "renewing" || this._state === "rebinding")) {
          out.push({ type: "ignored", reason: `renew while ${this._state}: no lease to renew` });
          break;
        }
        this.renewDeadlineAt = ev.deadlineAt;
        this.renewLeaseSeconds = ev.leaseSeconds;
        this.startRenew(ev.now, ev.broadcast ? "rebinding" : "renewing", out);
        break;
      case "release":
        this.release(ev.now, out);
        break;
      case "packet":
        this.receive(ev.now, ev.message, out);
        break;
      case "timer":
        this.onTimer(ev.now, out);
        break;
    }
    this.updateTimer(out, ev.now);
    return out;
  }

  // -------------------------------------------------------------------------------------------

  private random32(): number {
    return Math.floor(this.opts.random() * 0x100000000) >>> 0;
  }

  private newExchange(now: number): void {
    this._xid = this.random32();
    this.exchangeStart = now;
    this.attempts = 0;
  }

  /** Delay before retransmission number `attempts` (1 = after the first send). */
  private backoff(attempts: number, cap: number): number {
    const base = Math.min(this.retry.initialMs * 2 ** Math.max(0, attempts - 1), cap);
    const j = 1 + this.retry.jitter * (2 * this.opts.random() - 1);
    return Math.max(1, Math.round(base * j));
  }

  private startDiscover(now: number, out: MachineAction[]): void {
    this.newExchange(now);
    this.offer = undefined;
    this._state = "selecting";
    this.transmit(now, out);
  }

  private startRenew(now: number, state: "renewing" | "rebinding", out: MachineAction[]): void {
    this.newExchange(now);
    this._state = state;
    this.transmit(now, out);
  }

  private base(now: number, ciaddr: string, options: Omit<DhcpOptions, "raw">): DhcpMessage {
    const chaddr = new Uint8Array(16);
    chaddr.set(this.chaddr);
    return {
      op: BOOTREQUEST,
      htype: HTYPE_ETHERNET,
      hlen: 6,
      hops: 0,
      xid: this._xid,
      secs: Math.min(0xffff, Math.max(0, Math.floor((now - this.exchangeStart) / 1000))),
      // Broadcast flag OFF: the server then unicasts its reply to our MAC. The gateway's learning
      // VXLAN has no flood entry, so a broadcast OFFER would never leave the gateway.
      flags: 0,
      ciaddr,
      yiaddr: ZERO,
      siaddr: ZERO,
      giaddr: ZERO,
      chaddr,
      sname: "",
      file: "",
      options: {
        messageType: options.messageType,
        clientId: this.opts.clientId,
        ...(this.opts.hostname !== undefined ? { hostname: this.opts.hostname } : {}),
        ...options,
        raw: [],
      },
    };
  }

  /** Send (or resend) the message of the current state and schedule the next retransmission. */
  private transmit(now: number, out: MachineAction[]): void {
    this.attempts++;
    const prl = { parameterRequestList: PARAMETER_REQUEST_LIST };
    let cap = this.retry.maxMs;
    switch (this._state) {
      case "selecting":
        out.push({
          type: "send",
          from: ZERO,
          to: { kind: "broadcast" },
          message: this.base(now, ZERO, {
            messageType: MessageType.discover,
            ...prl,
            ...(this.requestedAddress ? { requestedAddress: this.requestedAddress } : {}),
            ...(this.opts.rapidCommit !== false ? { rapidCommit: true } : {}),
          }),
        });
        break;
      case "requesting":
        out.push({
          type: "send",
          from: ZERO,
          // Broadcast, not unicast to the server: RFC 2131 §4.4.1, and we have no address yet.
          to: { kind: "broadcast" },
          message: this.base(now, ZERO, { messageType: MessageType.request, ...prl, requestedAddress: this.offer!.address, serverId: this.offer!.serverId }),
        });
        break;
      case "rebooting":
        out.push({
          type: "send",
          from: ZERO,
          to: { kind: "broadcast" },
          message: this.base(now, ZERO, { messageType: MessageType.request, ...prl, requestedAddress: this.requestedAddress! }),
        });
        break;
      case "renewing":
      case "rebinding": {
        const l = this._lease!;
        // RFC 2131 §4.3.2: in RENEWING/REBINDING ciaddr carries the address; 50 and 54 must not be sent.
        out.push({
          type: "send",
          from: l.address,
          to: this._state === "renewing" ? { kind: "unicast", ip: l.serverId } : { kind: "broadcast" },
          message: this.base(now, l.address, {
            messageType: MessageType.request,
            ...prl,
            ...(this.renewLeaseSeconds !== undefined ? { leaseSeconds: this.renewLeaseSeconds } : {}),
          }),
        });
        cap = this.retry.renewMaxMs;
        break;
      }
      default:
        return;
    }
    this.retransmitAt = now + this.backoff(this.attempts, cap);
  }

  private release(now: number, out: MachineAction[]): void {
    const l = this._lease;
    if (!l || !(this._state === "bound" || this._state === "renewing" || this._state === "rebinding")) {
      out.push({ type: "ignored", reason: `release while ${this._state}: no lease to release` });
      return;
    }
    this.newExchange(now);
    const msg = this.base(now, l.address, { messageType: MessageType.release, serverId: l.serverId });
    delete msg.options.hostname;
    out.push({ type: "send", from: l.address, to: { kind: "unicast", ip: l.serverId }, message: msg });
    this._state = "released";
    this._lease = undefined;
    this.retransmitAt = undefined;
    this.deadlineAt = undefined;
    this.renewDeadlineAt = undefined;
    this.renewLeaseSeconds = undefined;
  }

  private checkLeaseTimes(now: number, out: MachineAction[]): boolean {
    const l = this._lease!;
    const t = leaseTimes(l);
    if (t && now >= t.expiry) {
      this.lose(`lease on ${l.address} expired`, out);
      return false;
    }
    return true;
  }

  private lose(reason: string, out: MachineAction[]): void {
    const l = this._lease!;
    out.push({ type: "lost", lease: l, reason });
    this._lease = undefined;
    this._state = "init";
    this.retransmitAt = undefined;
    this.renewDeadlineAt = undefined;
    this.renewLeaseSeconds = undefined;
  }

  private fail(step: DhcpStep, reason: string, out: MachineAction[]): void {
    out.push({ type: "failed", step, reason });
    this.retransmitAt = undefined;
    this.deadlineAt = undefined;
    this.renewDeadlineAt = undefined;
    this.renewLeaseSeconds = undefined;
    // A failed renew keeps the (still valid) lease; a failed acquisition leaves nothing.
    this._state = this._lease ? "bound" : "init";
  }

  private waitingFor(): string {
    switch (this._state) {
      case "selecting":
        return `no OFFER after ${this.attempts} DISCOVER(s)`;
      case "requesting":
        return `no ACK from ${this.offer?.serverId} for ${this.offer?.address} after ${this.attempts} REQUEST(s)`;
      case "rebooting":
        return `no ACK for ${this.requestedAddress} after ${this.attempts} REQUEST(s)`;
      default:
        return `no ACK from ${this._state === "renewing" ? this._lease?.serverId : "any server"} after ${this.attempts} REQUEST(s) for ${this._lease?.address}`;
    }
  }

  private onTimer(now: number, out: MachineAction[]): void {
    if (this._timerAt === undefined || now < this._timerAt) {
      out.push({ type: "ignored", reason: this._timerAt === undefined ? "timer with none set" : `timer early (${now} < ${this._timerAt})` });
      return;
    }
    switch (this._state) {
      case "selecting":
      case "requesting":
      case "rebooting": {
        if (this.deadlineAt !== undefined && now >= this.deadlineAt) {
          this.fail(this.step, `${this.waitingFor()} in ${now - this.acquisitionStart} ms`, out);
          return;
        }
        if (this.retransmitAt !== undefined && now >= this.retransmitAt) {
          if (this._state === "requesting" && this.attempts >= this.retry.requestAttempts) {
            this.startDiscover(now, out); // RFC 2131 §4.4.1: no answer to REQUEST → back to INIT
          } else if (this._state === "rebooting" && this.attempts >= this.retry.rebootAttempts) {
            this.startDiscover(now, out); // keep requestedAddress as the DISCOVER's hint
          } else {
            this.transmit(now, out);
          }
        }
        return;
      }
      case "bound": {
        if (!this.checkLeaseTimes(now, out)) return;
        const t = leaseTimes(this._lease!)!;
        if (now >= t.t2) this.startRenew(now, "rebinding", out);
        else if (now >= t.t1) this.startRenew(now, "renewing", out);
        return;
      }
      case "renewing":
      case "rebinding": {
        if (!this.checkLeaseTimes(now, out)) return;
        if (this.renewDeadlineAt !== undefined && now >= this.renewDeadlineAt) {
          this.fail(this.step, `${this.waitingFor()} in ${now - this.exchangeStart} ms`, out);
          return;
        }
        const t = leaseTimes(this._lease!);
        if (this._state === "renewing" && t && now >= t.t2 && this.renewDeadlineAt === undefined) {
          this.startRenew(now, "rebinding", out); // RFC 2131 §4.4.5: T2 → broadcast to any server
          return;
        }
        if (this.retransmitAt !== undefined && now >= this.retransmitAt) this.transmit(now, out);
        return;
      }
      default:
        out.push({ type: "ignored", reason: `timer while ${this._state}` });
    }
  }

  private receive(now: number, m: DhcpMessage, out: MachineAction[]): void {
    const ignore = (reason: string) => void out.push({ type: "ignored", reason });
    const type = m.options.messageType;
    const what = messageTypeName(type);
    if (m.op !== BOOTREPLY) return ignore(`${what}: op ${m.op} is not a reply`);
    if (!(this._state === "selecting" || this._state === "requesting" || this._state === "rebooting" || this._state === "renewing" || this._state === "rebinding"))
      return ignore(`${what} while ${this._state}`);
    if (m.xid !== this._xid) return ignore(`${what}: xid ${hex(m.xid)} is not ours (${hex(this._xid)})`);
    if (m.hlen !== 6 || m.htype !== HTYPE_ETHERNET || bytesToMac(m.chaddr.subarray(0, 6)) !== this.mac)
      return ignore(`${what}: chaddr ${bytesToMac(m.chaddr.subarray(0, Math.min(16, m.hlen)))} is not our ${this.mac}`);
    if (type === undefined) return ignore("BOOTP reply without a DHCP message type");

    switch (this._state) {
      case "selecting": {
        if (type === MessageType.ack) return this.rapidAck(now, m, out);
        if (type !== MessageType.offer) return ignore(`${what} while selecting`);
        if (m.yiaddr === ZERO) return ignore("OFFER without an address");
        if (m.options.serverId === undefined) return ignore("OFFER without a server identifier (option 54)");
        // Take the first usable OFFER; same xid for the REQUEST (RFC 2131 §4.4.1).
        this.offer = { address: m.yiaddr, serverId: m.options.serverId };
        this._state = "requesting";
        this.attempts = 0;
        this.transmit(now, out);
        return;
      }
      case "requesting":
      case "rebooting":
      case "renewing":
      case "rebinding": {
        if (type !== MessageType.ack && type !== MessageType.nak) return ignore(`${what} while ${this._state}`);
        // A reply from a server we did not select is meant for it, not us (RFC 2131 §4.4.1).
        if (this._state === "requesting" && m.options.serverId !== undefined && m.options.serverId !== this.offer!.serverId)
          return ignore(`${what} from ${m.options.serverId}, we requested from ${this.offer!.serverId}`);
        if (type === MessageType.nak) {
          if (this._state === "renewing" || this._state === "rebinding") {
            this.lose(`server ${m.options.serverId ?? "?"} refused to renew ${this._lease!.address} (NAK)`, out);
            return;
          }
          // Start over; back off from the second NAK on so a confused server cannot make us spin.
          this.naks++;
          this.requestedAddress = undefined;
          if (this.naks === 1) {
            this.startDiscover(now, out);
          } else {
            this.newExchange(now);
            this._state = "selecting";
            this.offer = undefined;
            this.retransmitAt = now + this.backoff(this.naks - 1, this.retry.maxMs);
            // The DISCOVER goes out when the timer fires (transmit from onTimer: attempts 0 → 1).
          }
          return;
        }
        const prev = this._lease;
        const l = leaseFromAck(m, now, prev?.serverId ?? this.offer?.serverId);
        if (typeof l === "string") return ignore(l);
        const how = this._state === "requesting" ? "selected" : this._state === "rebooting" ? "rebooted" : this._state === "renewing" ? "renewed" : "rebound";
        this.bind(l, how, out);
        return;
      }
    }
  }

  /**
   * An ACK while selecting: bound when it answers our Rapid Commit (it carries option 80 too and a
   * server identifier); otherwise ignored (RFC 4039 §4: an ACK without the option is not for a
   * DISCOVER, and a client that did not ask takes only OFFERs).
   */
  private rapidAck(now: number, m: DhcpMessage, out: MachineAction[]): void {
    if (this.opts.rapidCommit === false) return void out.push({ type: "ignored", reason: "ACK while selecting (Rapid Commit not asked for)" });
    if (!m.options.rapidCommit) return void out.push({ type: "ignored", reason: "ACK while selecting without Rapid Commit (option 80)" });
    if (m.options.serverId === undefined) return void out.push({ type: "ignored", reason: "Rapid Commit ACK without a server identifier (option 54)" });
    const l = leaseFromAck(m, now);
    if (typeof l === "string") return void out.push({ type: "ignored", reason: l });
    this.bind(l, "rapid commit", out);
  }

  private bind(l: Lease, how: Extract<MachineAction, { type: "bound" }>["how"], out: MachineAction[]): void {
    this._lease = l;
    this._state = "bound";
    this.retransmitAt = undefined;
    this.deadlineAt = undefined;
    this.renewDeadlineAt = undefined;
    this.renewLeaseSeconds = undefined;
    out.push({ type: "bound", lease: l, how });
  }

  private updateTimer(out: MachineAction[], now: number): void {
    let at: number | undefined;
    const min = (x: number | undefined) => {
      if (x !== undefined && (at === undefined || x < at)) at = x;
    };
    switch (this._state) {
      case "selecting":
      case "requesting":
      case "rebooting":
        min(this.retransmitAt);
        min(this.deadlineAt);
        break;
      case "bound": {
        const t = leaseTimes(this._lease!);
        if (t) [t.t1, t.t2, t.expiry].forEach(min);
        // Back in bound after a failed one-shot renew past T1: the renewal is due now, not at a
        // time already gone (a timer in the past is reserved for an overdue exchange).
        if (at !== undefined && at < now) at = now;
        break;
      }
      case "renewing":
      case "rebinding": {
        const t = leaseTimes(this._lease!);
        min(this.retransmitAt);
        min(this.renewDeadlineAt);
        if (t) {
          if (this._state === "renewing" && this.renewDeadlineAt === undefined) min(t.t2);
          min(t.expiry);
        }
        break;
      }
    }
    if (at !== this._timerAt) {
      this._timerAt = at;
      out.push({ type: "timer", at });
    }
  }
}
