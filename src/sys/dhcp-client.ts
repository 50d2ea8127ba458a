// The DHCP client the client roles call: ties the pure machine (core/dhcp/machine.ts) to a
// transport (sys/dhcp-socket.ts) and a clock. One exchange per call: acquire (client-init, or the
// sidecar after a lost lease), renew/rebind and release; when to renew is the sidecar's decision
// (core/client/lease.ts), since it must work from what the kernel remembers of the lease.
//
// What the client role passes (the same values in client-init and client-sidecar, so dnsmasq
// sees one client):
//   ifname   "vxlan0"
//   mac      from the pod name, eth0's IPv4 address and VXLAN_ID — the MAC vxlan0 was created
//            with (core/client/identity.ts)
//   clientId "<pod name>@<eth0 IPv4>" (a string): option 61 = type 0 + its bytes. dnsmasq keys
//            leases by client id, so a re-created vxlan0 (same pod, same stable MAC) gets the same
//            address, another live pod with the same name does not, and the lease file shows
//            which pod holds it.
//   hostname the pod name (option 12: dnsmasq registers it as a DNS name on the overlay)
import { DecodeError, clientIdFromName, decodeMessage, encodeMessage, messageTypeName } from "../core/dhcp/codec.ts";
import { DhcpMachine, type DhcpStep, type MachineAction, type RetryPolicy } from "../core/dhcp/machine.ts";
import type { Lease } from "../core/dhcp/types.ts";
import { PodGatewayError } from "../core/errors.ts";
import { realClock, type Clock } from "./clock.ts";
import { BACKGROUND_RECEIVE, PacketTransport, type DhcpTransport, type ReceiveWait } from "./dhcp-socket.ts";
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
  crypto.getRandomValues(b); // Web Crypto: no node:crypto import (~10 ms of start-up)
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
    if (signal?.aborted) throw new DhcpError(ifname, machine.step, "cancelled");
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
  /** Ask for this lease time (option 51); the server may grant less, or its minimum. */
  leaseSeconds?: number;
  /** How the reply is waited for (default BACKGROUND_RECEIVE: a renewal runs beside a sidecar's work; see ReceiveWait). */
  receiveWait?: ReceiveWait;
}

/**
 * Renew a lease now: REQUEST with ciaddr = lease.address from lease.address:68, unicast to
 * lease.serverId (or broadcast with `broadcast: true`), through the same AF_PACKET socket as the
 * first exchange. Not a UDP socket bound to port 68: that port is privileged, and a container
 * with only NET_ADMIN and NET_RAW (`--cap-drop all`, no NET_BIND_SERVICE) gets EACCES. The
 * address must be configured, so the kernel takes the server's reply (to ciaddr) as local.
 * Resolves with the new lease (obtainedAt = now); rejects with DhcpError on NAK ("lost") or
 * after the deadline.
 */
export async function renewLease(lease: Lease, opts: RenewOptions): Promise<Lease> {
  const clock = opts.clock ?? realClock;
  const transport = opts.transport ?? PacketTransport.open(opts.ifname, opts.receiveWait ?? BACKGROUND_RECEIVE);
  try {
    const machine = newMachine(opts, opts);
    const now = clock.now();
    const bind = machine.handle({ type: "bind", now, lease });
    const lost = bind.find((a) => a.type === "lost");
    if (lost) throw new DhcpError(opts.ifname, "renew", lost.reason);
    const first = machine.handle({
      type: "renew",
      now,
      broadcast: opts.broadcast ?? false,
      deadlineAt: now + (opts.deadlineMs ?? DEFAULT_RENEW_DEADLINE_MS),
      ...(opts.leaseSeconds !== undefined ? { leaseSeconds: opts.leaseSeconds } : {}),
    });
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
 * Send DHCPRELEASE for the lease (unicast to lease.serverId from lease.address:68, through the
 * AF_PACKET socket, like renewLease). Best effort: nothing answers a RELEASE, but a failure to
 * send (interface gone, no NET_RAW) is reported as DhcpError.
 */
export async function releaseLease(lease: Lease, opts: DhcpIdentity & Pick<DhcpRuntime, "clock" | "transport" | "random">): Promise<void> {
  const clock = opts.clock ?? realClock;
  let transport = opts.transport;
  try {
    transport ??= PacketTransport.open(opts.ifname);
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

/**
 * The three one-shot calls in the (identity, options) shape the client roles' `DhcpClient`
 * interface uses (src/roles/client-init.ts): `deps.dhcp = systemDhcpClient`.
 */
export const systemDhcpClient = {
  acquire: (id: DhcpIdentity, opts: { requestedAddress?: string; deadlineMs: number; signal?: AbortSignal }): Promise<Lease> => acquireLease({ ...id, ...opts }),
  renew: (lease: Lease, id: DhcpIdentity, opts: { broadcast: boolean; deadlineMs: number; signal?: AbortSignal; leaseSeconds?: number }): Promise<Lease> =>
    renewLease(lease, { ...id, ...opts }),
  release: (lease: Lease, id: DhcpIdentity): Promise<void> => releaseLease(lease, id),
};
