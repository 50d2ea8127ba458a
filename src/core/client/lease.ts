// When the client sidecar renews, rebinds or gives up a DHCP lease (RFC 2131 §4.4.5), and how a
// lease is recovered from the kernel: client-init writes the lease time into the address's
// valid/preferred lifetimes, so the sidecar — a different container, started later — reads what
// is left of it with `ip -j addr` instead of sharing a file.
import { INFINITE_LEASE, leaseTimes, type Lease } from "../dhcp/types.ts";
import type { AddressFact } from "./facts.ts";

export type LeaseStep =
  | { kind: "none"; why: string }
  | { kind: "wait"; untilMs: number }
  | { kind: "renew" } // unicast REQUEST to the server that granted it
  | { kind: "rebind" } // broadcast REQUEST to any server
  | { kind: "expired" };

/**
 * Shortest wait between failed renewal attempts. RFC 2131 suggests half the remaining time with a
 * 60 s minimum; a short lease (dnsmasq's minimum is 2 minutes) needs a smaller floor to get several
 * tries in before T2.
 */
export function retryFloorMs(l: Lease): number {
  return Math.max(1000, Math.min(60_000, (l.leaseSeconds * 1000) / 20));
}

/**
 * What to do about the lease at `now`. `lastAttemptAt` is the time of the last failed
 * renew/rebind (undefined when none failed since the lease was obtained); after a failure the
 * next attempt waits half the time left until the next boundary (T2 or expiry), at least the floor.
 */
export function planLeaseStep(l: Lease, now: number, lastAttemptAt?: number): LeaseStep {
  const t = leaseTimes(l);
  if (!t) return { kind: "none", why: "infinite lease" };
  if (now >= t.expiry) return { kind: "expired" };
  const phase: "bound" | "renewing" | "rebinding" = now >= t.t2 ? "rebinding" : now >= t.t1 ? "renewing" : "bound";
  if (phase === "bound") return { kind: "wait", untilMs: t.t1 };
  const kind = phase === "renewing" ? "renew" : "rebind";
  if (lastAttemptAt === undefined || lastAttemptAt < (phase === "renewing" ? t.t1 : t.t2)) return { kind };
  const boundary = phase === "renewing" ? t.t2 : t.expiry;
  const next = Math.min(boundary, lastAttemptAt + Math.max(retryFloorMs(l), (boundary - lastAttemptAt) / 2));
  return now >= next ? { kind } : { kind: "wait", untilMs: next };
}

/**
 * The lease as the kernel remembers it: the address and the seconds left of its lifetime. We do
 * not know when it was granted, so it is treated as granted now for the time left — renewal then
 * comes at half of what is left, earlier than strictly needed, never later. An address that
 * never expires is an infinite lease (client-init writes one as "forever"): never renewed, still
 * released at the end. serverId is the gateway's overlay address, the only DHCP server on vxlan0.
 */
export function leaseFromAddress(a: AddressFact, serverId: string, now: number): Lease {
  const left = a.validLft === Infinity ? INFINITE_LEASE : Math.max(0, Math.floor(a.validLft));
  const infinite = left === INFINITE_LEASE;
  return {
    address: a.local,
    prefixLength: a.prefixlen,
    router: serverId,
    dns: [serverId],
    serverId,
    leaseSeconds: left,
    renewSeconds: infinite ? INFINITE_LEASE : left / 2,
    rebindSeconds: infinite ? INFINITE_LEASE : (left * 7) / 8,
    obtainedAt: now,
  };
}

/** Lifetime to write into the kernel for a lease, counted from `now`. */
export function addressLifetime(l: Lease, now: number): number | "forever" {
  const t = leaseTimes(l);
  return t ? Math.max(1, Math.floor((t.expiry - now) / 1000)) : "forever";
}
