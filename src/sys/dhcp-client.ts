// The DHCP client the client roles call: ties the pure machine (core/dhcp/machine.ts) to a
// transport (sys/dhcp-socket.ts) and a clock. acquireLease for client-init, LeaseKeeper for the
// sidecar (renew at T1, rebind at T2, "lost" at expiry, release on stop).
//
// What the client role passes (the same values in client-init and client-sidecar, so dnsmasq
// sees one client):
//   ifname   "vxlan0"
//   mac      clientMac(POD_NAME, VXLAN_ID) — the MAC vxlan0 was created with (core/net/vxlan.ts)
//   clientId POD_NAME (a string): option 61 = type 0 + the name's bytes. dnsmasq keys leases by
//            client id, so a re-created vxlan0 (same name, same stable MAC) gets the same address
//            and the lease file shows which pod holds it.
//   hostname POD_NAME (option 12: dnsmasq registers it as a DNS name on the overlay)
import { randomFillSync } from "node:crypto";
import { DecodeError, MessageType, clientIdFromName, decodeMessage, encodeMessage, messageTypeName } from "../core/dhcp/codec.ts";
import { DhcpMachine, type DhcpStep, type MachineAction, type RetryPolicy } from "../core/dhcp/machine.ts";
import type { Lease } from "../core/dhcp/types.ts";
import { PodGatewayError } from "../core/errors.ts";
import { realClock, type Clock } from "./clock.ts";
import { PacketTransport, UdpTransport, type DhcpTransport } from "./dhcp-socket.ts";
import { log } from "./log.ts";

export type { DhcpTransport } from "./dhcp-socket.ts";

/** Who we are to the DHCP server. */
export interface DhcpIdentity {
  ifname: string;
  /** The interface's MAC ("02:ab:..."), sent as chaddr. */
  mac: string;
  /** A string becomes option 61 type 0 + its UTF-8 bytes; bytes are sent as the whole option 61. */
  clientId: Uint8Array | string;
  /** Option 12. */
  hostname?: string;
}

export interface DhcpRuntime {
  clock?: Clock;
  /** Uniform in [0, 1); crypto-random by default. */
  random?: () => number;
  signal?: AbortSignal;
  retry?: Partial<RetryPolicy>;
  /** Use this transport instead of opening a socket (tests); closed when the call ends. */
  transport?: DhcpTransport;
}

export const DEFAULT_ACQUIRE_DEADLINE_MS = 10_000;
export const DEFAULT_RENEW_DEADLINE_MS = 5_000;

/** A DHCP exchange failed: names the interface and the step ("dhcp on vxlan0: discover: ..."). */
export class DhcpError extends PodGatewayError {
  override name = "DhcpError";
  constructor(
    readonly ifname: string,
    readonly step: DhcpStep | "release",
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`DHCP on ${ifname}: ${step}: ${detail}`, options);
  }
}

export function cryptoRandom(): number {
  const b = new Uint32Array(1);
  randomFillSync(b);
  return b[0]! / 0x100000000;
}

function clientIdBytes(id: Uint8Array | string): Uint8Array {
  return typeof id === "string" ? clientIdFromName(id) : id;
}

function newMachine(id: DhcpIdentity, rt: DhcpRuntime): DhcpMachine {
  return new DhcpMachine({
    mac: id.mac,
    clientId: clientIdBytes(id.clientId),
    ...(id.hostname !== undefined ? { hostname: id.hostname } : {}),
    random: rt.random ?? cryptoRandom,
    ...(rt.retry ? { retry: rt.retry } : {}),
  });
}

type Outcome = Extract<MachineAction, { type: "bound" | "lost" | "failed" }>;

function describeSend(a: Extract<MachineAction, { type: "send" }>): string {
  const m = a.message;
  return `${messageTypeName(m.options.messageType)} xid 0x${m.xid.toString(16).padStart(8, "0")} ${a.from} → ${a.to.kind === "broadcast" ? "255.255.255.255" : a.to.ip}` +
    (m.options.requestedAddress ? ` requesting ${m.options.requestedAddress}` : "") + (m.ciaddr !== "0.0.0.0" ? ` ciaddr ${m.ciaddr}` : "");
}

/** Perform send actions; return the first outcome (bound/lost/failed) among them, if any. */
async function perform(actions: MachineAction[], transport: DhcpTransport | undefined, ifname: string): Promise<Outcome | undefined> {
  const l = log().withTag("dhcp");
  for (const a of actions) {
    switch (a.type) {
      case "send":
        l.debug(`${ifname}: sending ${describeSend(a)}`);
        if (!transport) throw new Error("internal: send without a transport");
        await transport.send(encodeMessage(a.message), a.from, a.to);
        break;
      case "ignored":
        l.debug(`${ifname}: ignored: ${a.reason}`);
        break;
      case "timer":
        break;
      default:
        return a;
    }
  }
  return undefined;
}

/** Feed received packets and timers to the machine until it binds, loses or fails. */
async function drive(machine: DhcpMachine, transport: DhcpTransport, clock: Clock, first: MachineAction[], ifname: string, signal?: AbortSignal): Promise<Outcome> {
  let actions = first;
  for (;;) {
    const outcome = await perform(actions, transport, ifname);
    if (outcome) return outcome;
    if (signal?.aborted) throw new DhcpError(ifname, stepOf(machine), "cancelled");
    const at = machine.timerAt;
    const wait = at === undefined ? 60_000 : Math.max(0, at - clock.now());
    const bytes = await transport.receive(wait, signal);
    actions = [];
    if (bytes !== undefined) {
      try {
        actions = machine.handle({ type: "packet", now: clock.now(), message: decodeMessage(bytes) });
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
        log().withTag("dhcp").debug(`${ifname}: undecodable reply ignored: ${e.message}`);
      }
    } else if (at !== undefined && clock.now() >= at) {
      actions = machine.handle({ type: "timer", now: clock.now() });
    }
  }
}

function stepOf(m: DhcpMachine): DhcpStep {
  switch (m.state) {
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

export interface AcquireOptions extends DhcpIdentity, DhcpRuntime {
  /** An address we held before: sent as option 50 so the server gives it back if it can. */
  requestedAddress?: string;
  /**
   * With requestedAddress: try INIT-REBOOT first (a REQUEST for that address, one round trip),
   * falling back to DISCOVER after `retry.rebootAttempts` unanswered REQUESTs. Pays off with an
   * authoritative server (dnsmasq --dhcp-authoritative answers at once, even after losing its
   * lease file); a non-authoritative one stays silent for addresses it does not know.
   */
  initReboot?: boolean;
  /** Give up after this long (default 10 s). */
  deadlineMs?: number;
}

/**
 * Get a lease on an interface that has no address (DISCOVER → OFFER → REQUEST → ACK over an
 * AF_PACKET socket). Rejects with DhcpError naming the interface and step after the deadline, or
 * with DhcpSocketError when the socket cannot be opened (e.g. missing NET_RAW).
 * Does not configure the address: the caller applies lease.address/prefixLength, router, MTU.
 */
export async function acquireLease(opts: AcquireOptions): Promise<Lease> {
  const clock = opts.clock ?? realClock;
  const transport = opts.transport ?? PacketTransport.open(opts.ifname);
  const l = log().withTag("dhcp");
  try {
    const machine = newMachine(opts, opts);
    const start = clock.now();
    const deadlineAt = start + (opts.deadlineMs ?? DEFAULT_ACQUIRE_DEADLINE_MS);
    const first =
      opts.requestedAddress !== undefined && opts.initReboot
        ? machine.handle({ type: "reboot", now: start, address: opts.requestedAddress, deadlineAt })
        : machine.handle({ type: "discover", now: start, deadlineAt, ...(opts.requestedAddress !== undefined ? { requestedAddress: opts.requestedAddress } : {}) });
    const r = await drive(machine, transport, clock, first, opts.ifname, opts.signal);
    if (r.type === "bound") {
      l.info(`${opts.ifname}: leased ${r.lease.address}/${r.lease.prefixLength} from ${r.lease.serverId} for ${r.lease.leaseSeconds} s (${r.how}, ${clock.now() - start} ms)`);
      return r.lease;
    }
    throw new DhcpError(opts.ifname, r.type === "failed" ? r.step : "discover", r.reason);
  } finally {
    transport.close();
  }
}

export interface RenewOptions extends DhcpIdentity, DhcpRuntime {
  /** REBINDING: broadcast to any server instead of unicast to lease.serverId. */
  broadcast?: boolean;
  /** Give up after this long (default 5 s); the old lease is untouched then. */
  deadlineMs?: number;
}

/**
 * Renew a lease now: REQUEST with ciaddr = lease.address over UDP from lease.address:68, unicast
 * to lease.serverId (or broadcast with `broadcast: true`). The address must be configured.
 * Resolves with the new lease (obtainedAt = now); rejects with DhcpError on NAK ("lost") or
 * after the deadline.
 */
export async function renewLease(lease: Lease, opts: RenewOptions): Promise<Lease> {
  const clock = opts.clock ?? realClock;
  const transport = opts.transport ?? (await UdpTransport.open(lease.address));
  try {
    const machine = newMachine(opts, opts);
    const now = clock.now();
    const bind = machine.handle({ type: "bind", now, lease });
    const lost = bind.find((a) => a.type === "lost");
    if (lost) throw new DhcpError(opts.ifname, "renew", lost.reason);
    const first = machine.handle({ type: "renew", now, broadcast: opts.broadcast ?? false, deadlineAt: now + (opts.deadlineMs ?? DEFAULT_RENEW_DEADLINE_MS) });
    const step = opts.broadcast ? "rebind" : "renew";
    const r = await drive(machine, transport, clock, first, opts.ifname, opts.signal);
    if (r.type === "bound") {
      log().withTag("dhcp").debug(`${opts.ifname}: ${r.how} ${r.lease.address} for ${r.lease.leaseSeconds} s`);
      return r.lease;
    }
    throw new DhcpError(opts.ifname, r.type === "failed" ? r.step : step, r.reason);
  } finally {
    transport.close();
  }
}

/**
 * Send DHCPRELEASE for the lease (unicast to lease.serverId from lease.address:68). Best effort:
 * nothing answers a RELEASE, but a failure to send (address no longer configured, no route) is
 * reported as DhcpError.
 */
export async function releaseLease(lease: Lease, opts: DhcpIdentity & Pick<DhcpRuntime, "clock" | "transport" | "random">): Promise<void> {
  const clock = opts.clock ?? realClock;
  let transport = opts.transport;
  try {
    transport ??= await UdpTransport.open(lease.address);
    const machine = newMachine(opts, opts);
    // Bind with a fresh obtainedAt: a release is sent even for a lease our clock thinks expired.
    machine.handle({ type: "bind", now: clock.now(), lease: { ...lease, obtainedAt: clock.now() } });
    await perform(machine.handle({ type: "release", now: clock.now() }), transport, opts.ifname);
    log().withTag("dhcp").info(`${opts.ifname}: released ${lease.address} to ${lease.serverId}`);
  } catch (e) {
    if (e instanceof DhcpError) throw e;
    throw new DhcpError(opts.ifname, "release", `releasing ${lease.address} to ${lease.serverId}: ${(e as Error).message}`, { cause: e });
  } finally {
    transport?.close();
  }
}

export interface KeeperOptions extends DhcpIdentity {
  clock?: Clock;
  random?: () => number;
  retry?: Partial<RetryPolicy>;
  /** A renewal (T1, unicast) or rebinding (T2, broadcast) succeeded. */
  onRenewed?: (lease: Lease, how: "renewed" | "rebound") => void;
  /**
   * The lease expired or the server refused it (NAK): the address must no longer be used. The
   * keeper has stopped; the caller acquires a new lease (and starts a new keeper).
   */
  onLost?: (lease: Lease, reason: string) => void;
  /** Opens the socket for renewals (default: UdpTransport bound to <address>:68). */
  openTransport?: (address: string) => Promise<DhcpTransport>;
}

/**
 * Keeps a lease alive in the background: sleeps until T1, renews by unicast, rebinds by
 * broadcast at T2, reports "lost" at expiry, and releases on stop(). Never throws from its loop:
 * socket errors are logged and retried at the next retransmission.
 *
 *   const keeper = new LeaseKeeper(lease, { ifname, mac, clientId: podName, hostname: podName, onLost });
 *   keeper.start();
 *   ...on SIGTERM: await keeper.stop();   // sends DHCPRELEASE
 */
export class LeaseKeeper {
  private readonly machine: DhcpMachine;
  private readonly clock: Clock;
  private readonly abort = new AbortController();
  private transport: DhcpTransport | undefined;
  private transportAddress: string | undefined;
  private loop: Promise<void> | undefined;
  private _lease: Lease | undefined;
  private readonly log = log().withTag("dhcp");

  constructor(
    lease: Lease,
    private readonly opts: KeeperOptions,
  ) {
    this.clock = opts.clock ?? realClock;
    this.machine = newMachine(opts, opts);
    this._lease = lease;
  }

  /** The lease as last renewed; undefined once lost or released. */
  get lease(): Lease | undefined {
    return this._lease;
  }
  /** The machine's state: "bound", "renewing", "rebinding", "init" (lost) or "released". */
  get state(): string {
    return this.machine.state;
  }

  start(): void {
    if (this.loop) return;
    this.loop = this.run().catch((e) => this.log.error(`${this.opts.ifname}: lease keeper stopped: ${(e as Error).message}`));
  }

  /**
   * Stop renewing; with release (the default) send DHCPRELEASE for the current lease. Resolves
   * quickly (one datagram); rejects with DhcpError when the release could not be sent.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.abort.abort();
    await this.loop;
    try {
      if ((opts.release ?? true) && this._lease && (this.machine.state === "bound" || this.machine.state === "renewing" || this.machine.state === "rebinding")) {
        const lease = this._lease;
        try {
          const t = await this.transportFor(lease.address);
          await perform(this.machine.handle({ type: "release", now: this.clock.now() }), t, this.opts.ifname);
          this.log.info(`${this.opts.ifname}: released ${lease.address} to ${lease.serverId}`);
        } catch (e) {
          throw new DhcpError(this.opts.ifname, "release", `releasing ${lease.address} to ${lease.serverId}: ${(e as Error).message}`, { cause: e });
        }
        this._lease = undefined;
      }
    } finally {
      this.closeTransport();
    }
  }

  private async transportFor(address: string): Promise<DhcpTransport> {
    if (this.transport && this.transportAddress === address) return this.transport;
    this.closeTransport();
    this.transport = await (this.opts.openTransport ?? UdpTransport.open)(address);
    this.transportAddress = address;
    return this.transport;
  }

  private closeTransport(): void {
    this.transport?.close();
    this.transport = undefined;
    this.transportAddress = undefined;
  }

  private async handleActions(actions: MachineAction[]): Promise<boolean> {
    const id = this.opts.ifname;
    for (const a of actions) {
      switch (a.type) {
        case "send":
          try {
            const t = await this.transportFor(a.from);
            this.log.debug(`${id}: sending ${describeSend(a)}`);
            await t.send(encodeMessage(a.message), a.from, a.to);
          } catch (e) {
            // The machine retransmits on its timer; a transient error (no route yet) heals itself.
            this.log.warn(`${id}: ${a.message.options.messageType === MessageType.request ? "renewal" : "DHCP"} send failed, will retry: ${(e as Error).message}`);
            this.closeTransport();
          }
          break;
        case "bound":
          this._lease = a.lease;
          this.closeTransport();
          this.log.info(`${id}: ${a.how} ${a.lease.address} for ${a.lease.leaseSeconds} s`);
          if (a.how === "renewed" || a.how === "rebound") this.opts.onRenewed?.(a.lease, a.how);
          break;
        case "lost":
          this._lease = undefined;
          this.closeTransport();
          this.log.warn(`${id}: lease lost: ${a.reason}`);
          this.opts.onLost?.(a.lease, a.reason);
          return false;
        case "failed":
          this.log.warn(`${id}: ${a.step}: ${a.reason}`);
          break;
        case "ignored":
          this.log.debug(`${id}: ignored: ${a.reason}`);
          break;
        case "timer":
          break;
      }
    }
    return true;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    if (!(await this.handleActions(this.machine.handle({ type: "bind", now: this.clock.now(), lease: this._lease! })))) return;
    while (!signal.aborted) {
      const at = this.machine.timerAt;
      if (at === undefined && this.machine.state === "bound") {
        // Infinite lease: nothing to do until stop().
        await this.clock.sleep(2 ** 31 - 1, signal);
        continue;
      }
      const wait = at === undefined ? 1000 : Math.max(0, at - this.clock.now());
      const exchanging = this.machine.state === "renewing" || this.machine.state === "rebinding";
      let actions: MachineAction[] = [];
      if (exchanging && this.transport) {
        let bytes: Uint8Array | undefined;
        try {
          bytes = await this.transport.receive(wait, signal);
        } catch (e) {
          this.log.warn(`${this.opts.ifname}: receiving renewal replies: ${(e as Error).message}`);
          this.closeTransport();
          continue;
        }
        if (signal.aborted) break;
        if (bytes !== undefined) {
          try {
            actions = this.machine.handle({ type: "packet", now: this.clock.now(), message: decodeMessage(bytes) });
          } catch (e) {
            if (!(e instanceof DecodeError)) throw e;
            this.log.debug(`${this.opts.ifname}: undecodable reply ignored: ${e.message}`);
          }
        }
      } else {
        await this.clock.sleep(wait, signal);
        if (signal.aborted) break;
      }
      if (actions.length === 0 && at !== undefined && this.clock.now() >= at) actions = this.machine.handle({ type: "timer", now: this.clock.now() });
      if (!(await this.handleActions(actions))) return;
    }
  }
}

/**
 * The three one-shot calls in the (identity, options) shape the client roles' `DhcpClient`
 * interface uses (src/roles/client-init.ts): `deps.dhcp = systemDhcpClient`.
 */
export const systemDhcpClient = {
  acquire: (id: DhcpIdentity, opts: { requestedAddress?: string; deadlineMs: number; signal?: AbortSignal }): Promise<Lease> => acquireLease({ ...id, ...opts }),
  renew: (lease: Lease, id: DhcpIdentity, opts: { broadcast: boolean; deadlineMs: number; signal?: AbortSignal }): Promise<Lease> => renewLease(lease, { ...id, ...opts }),
  release: (lease: Lease, id: DhcpIdentity): Promise<void> => releaseLease(lease, id),
};
