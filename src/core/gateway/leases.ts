// dnsmasq's lease file, rebuilt for a sidecar whose filesystem is fresh (a container restart):
// dnsmasq runs authoritative and without ping checks, so with an empty lease file it could hand a
// new client an address a running client still uses. The kernel remembers who is there: vxlan0's
// neighbour entries map the clients' addresses to their MACs. Pure: neighbours in, file text out.
import { leaseSeconds } from "../settings/values.ts";

export interface Neighbour {
  dst: string;
  lladdr?: string;
  state?: string[];
}

/**
 * Lease lines (`<expiry> <mac> <ip> * *`, dnsmasq's format; expiry 0 for infinite leases) for
 * every neighbour with a MAC whose address is in the DHCP range, one per address, each running a
 * whole lease time from now: the client keeps its address when it renews, and no one else gets it.
 */
export function renderLeaseSeed(neighbours: readonly Neighbour[], o: { network: string; firstDynamic: number; leaseTime: string; nowSeconds: number }): string {
  const secs = leaseSeconds(o.leaseTime);
  const expiry = secs === "infinite" || secs === undefined ? 0 : o.nowSeconds + secs;
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const n of neighbours) {
    if (!n.lladdr || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(n.lladdr)) continue;
    if ((n.state ?? []).some((s) => s === "FAILED" || s === "INCOMPLETE")) continue;
    const parts = n.dst.split(".");
    if (parts.length !== 4 || parts.slice(0, 3).join(".") !== o.network) continue;
    const octet = Number(parts[3]);
    if (!(octet >= o.firstDynamic && octet <= 254) || seen.has(n.dst)) continue;
    seen.add(n.dst);
    lines.push(`${expiry} ${n.lladdr.toLowerCase()} ${n.dst} * *`);
  }
  return lines.map((l) => `${l}\n`).join("");
}

// ---- a new gateway pod's first addresses ------------------------------------------------------
// A new gateway pod (the gateway moved) has no lease file and, unlike a restarted sidecar, no
// neighbours to rebuild one from: its clients reach it only once it is ready (a headless Service
// lists ready pods only) and announce their leases at a random point of the 5 s after that. A
// DHCPDISCOVER in between would be offered an address one of them holds. So the sidecar starts
// dnsmasq at once (DNS and readiness are not delayed) and guards its first offers: dnsmasq's
// dhcp-hostsfile (re-read on SIGHUP; the lease file is not) holds, for a short hold, a wildcard
// `ignore` (no answer to anyone unknown), and, for a bounded learning window, a reservation
// `<mac>,<ip>` for every client seen on vxlan0 with an address (its neighbour entry: clients of a
// lost gateway ARP for .1 as soon as they reach the new one) until dnsmasq's lease file holds it.

/** A wildcard dhcp-host: every MAC not named by a more exact line (dnsmasq matches exact ones first). */
export const HOLD_LINE = "*:*:*:*:*:*,ignore";

export interface LeaseGuardOptions {
  network: string;
  firstDynamic: number;
  /** The hold ends this long (s) after the newest client was first seen on vxlan0 (or after the start, when clients were there already). */
  quietSeconds: number;
  /** ... and at most this long (s) after the first client was seen. */
  maxHoldSeconds: number;
  /** Reservations are kept and learned for this long (s) after the hold ended; then the hosts file is emptied. */
  learnSeconds: number;
}

/** What the guard sees on one look: vxlan0's neighbours, the MACs of its learned forwarding entries, dnsmasq's leases. */
export interface LeaseGuardLook {
  nowMs: number;
  neighbours: readonly Neighbour[];
  fdbMacs: readonly string[];
  /** address → MAC, from dnsmasq's lease file. */
  leases: ReadonlyMap<string, string>;
}

export interface LeaseGuardStep {
  /** The hosts file's text when it must change (write it, then SIGHUP dnsmasq). */
  hosts?: string;
  /** Something to log (the hold ended, the window closed). */
  note?: string;
  /** The guard is over: nothing more to look at. */
  done: boolean;
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

/** The dhcp-hostsfile text: the hold line while holding, then one `<mac>,<ip>` per reservation (sorted by address). */
export function renderGuardHosts(hold: boolean, reservations: ReadonlyMap<string, string>): string {
  const lines = [...reservations].sort(([a], [b]) => octetOf(a) - octetOf(b)).map(([ip, mac]) => `${mac},${ip}`);
  if (hold) lines.push(HOLD_LINE);
  return lines.map((l) => `${l}\n`).join("");
}

function octetOf(ip: string): number {
  return Number(ip.split(".")[3]);
}

/** address → MAC, from dnsmasq's lease file text (`<expiry> <mac> <ip> <name> <client id>`). */
export function parseLeaseFile(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\n")) {
    const [, mac, ip] = line.trim().split(/\s+/);
    if (mac && ip && MAC.test(mac)) m.set(ip, mac.toLowerCase());
  }
  return m;
}

/**
 * The guard's state, pure: fed one look at a time (with the time of the look), it says what the
 * hosts file must hold. The first look is the baseline: clients there already (a restarted
 * sidecar's) count as seen at the start.
 */
export class LeaseGuard {
  private readonly seen = new Set<string>();
  private firstContact: number | undefined;
  private lastContact: number | undefined;
  private holding = true;
  private holdEnded: number | undefined;
  private reservations = new Map<string, string>();
  private readonly leased = new Set<string>();
  private written: string | undefined;
  private started: number | undefined;
  private over = false;

  constructor(private readonly o: LeaseGuardOptions) {}

  get holdingOffers(): boolean {
    return this.holding;
  }

  /** The hosts file to start dnsmasq with: the hold alone. */
  initialHosts(): string {
    this.written = renderGuardHosts(true, new Map());
    return this.written;
  }

  look(l: LeaseGuardLook): LeaseGuardStep {
    if (this.over) return { done: true };
    const macs = new Set<string>();
    for (const m of l.fdbMacs) if (MAC.test(m) && m !== "00:00:00:00:00:00") macs.add(m.toLowerCase());
    const inRange = new Map<string, string>();
    for (const n of l.neighbours) {
      if (!n.lladdr || !MAC.test(n.lladdr)) continue;
      if ((n.state ?? []).some((s) => s === "FAILED" || s === "INCOMPLETE")) continue;
      const mac = n.lladdr.toLowerCase();
      macs.add(mac);
      const parts = n.dst.split(".");
      const octet = Number(parts[3]);
      if (parts.length === 4 && parts.slice(0, 3).join(".") === this.o.network && octet >= this.o.firstDynamic && octet <= 254) inRange.set(n.dst, mac);
    }
    if (this.started === undefined) {
      this.started = l.nowMs;
      if (macs.size) this.firstContact = this.lastContact = l.nowMs;
    } else {
      for (const m of macs)
        if (!this.seen.has(m)) {
          this.firstContact ??= l.nowMs;
          this.lastContact = l.nowMs;
        }
    }
    for (const m of macs) this.seen.add(m);

    let note: string | undefined;
    if (this.holding && this.lastContact !== undefined && this.firstContact !== undefined) {
      if (l.nowMs - this.lastContact >= this.o.quietSeconds * 1000 || l.nowMs - this.firstContact >= this.o.maxHoldSeconds * 1000) {
        this.holding = false;
        this.holdEnded = l.nowMs;
        note = `first offers held ${((l.nowMs - this.started) / 1000).toFixed(1)} s after start (${this.seen.size} client(s) seen on vxlan0); offering addresses now`;
      }
    }
    if (!this.holding && this.holdEnded !== undefined && l.nowMs - this.holdEnded >= this.o.learnSeconds * 1000) {
      this.over = true;
      const left = [...this.reservations.keys()];
      const hosts = renderGuardHosts(false, new Map());
      const changed = hosts !== this.written;
      this.written = hosts;
      return { hosts: changed ? hosts : undefined, done: true, note: left.length ? `address reservations of clients that never renewed dropped: ${left.join(" ")}` : undefined };
    }
    // A reservation for every client address not in the lease file; one whose lease dnsmasq
    // holds is covered by it (whatever MAC: a lease dnsmasq gave is not ours to dispute). While
    // holding, every client seen is named, leased or not: the hold line would ignore its renewal.
    // A pair dnsmasq has leased once is its business from then on: a client that released its
    // lease (a pod gone) leaves a neighbour entry behind, which must not reserve the address again.
    for (const [ip, mac] of l.leases) this.leased.add(`${ip} ${mac}`);
    const next = new Map<string, string>();
    const keep = (ip: string, mac: string) => this.holding || (!l.leases.has(ip) && !this.leased.has(`${ip} ${mac}`));
    for (const [ip, mac] of this.reservations) if (keep(ip, mac)) next.set(ip, mac);
    for (const [ip, mac] of inRange) if (keep(ip, mac)) next.set(ip, mac);
    this.reservations = next;
    const hosts = renderGuardHosts(this.holding, next);
    if (hosts === this.written) return { note, done: false };
    this.written = hosts;
    return { hosts, note, done: false };
  }
}
