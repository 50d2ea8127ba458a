// What a DHCP lease is, as the client roles use it (the codec and state machine produce it), and
// its T1/T2/expiry times, which the state machine and the client sidecar both schedule by.

export interface Lease {
  /** Our address, e.g. "172.16.0.23". */
  address: string;
  /** Prefix length from option 1 (subnet mask); 24 on the pod-gateway overlay. */
  prefixLength: number;
  /** Option 3, first router. */
  router?: string;
  /** Option 6. */
  dns: string[];
  /** Option 54: the server that granted it (the gateway's .1). */
  serverId: string;
  /** Option 51, seconds (0xffffffff = infinite). */
  leaseSeconds: number;
  /** Option 58 / 59, seconds (defaults 0.5 and 0.875 of the lease when absent). */
  renewSeconds: number;
  rebindSeconds: number;
  /** Option 26, when the server advertises it. */
  mtu?: number;
  /** Clock time (ms) the ACK was received; T1/T2/expiry count from here. */
  obtainedAt: number;
}

/** Option 51's "infinite" (RFC 2131 §3.3): never renewed, never expires. */
export const INFINITE_LEASE = 0xffffffff;

/** T1/T2/expiry of a lease as clock times (ms); undefined for an infinite lease. */
export function leaseTimes(l: Lease): { t1: number; t2: number; expiry: number } | undefined {
  if (l.leaseSeconds >= INFINITE_LEASE) return undefined;
  return { t1: l.obtainedAt + l.renewSeconds * 1000, t2: l.obtainedAt + l.rebindSeconds * 1000, expiry: l.obtainedAt + l.leaseSeconds * 1000 };
}
