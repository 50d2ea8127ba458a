// What client-sidecar does with its DHCP lease as it exits, within the second Kubernetes users
// expect (issue 13 §7). Released only when nothing else in the pod can still use the address (the
// rest of the pod is done, or the sidecar is a native sidecar the kubelet stops after the app
// containers). Otherwise a plain SIGTERM reaches the app's containers at the same time: the
// address stays with the pod, but not for its full lease time either (pods that come and go would
// drain the pool with 12 h leases): a renewal asking for a short lease keeps it through the grace
// period and frees it soon after. The kernel's copy is shortened too, so a sidecar restarted in
// the same pod renews in time.
import type { Lease } from "../core/dhcp/types.ts";
import { messageOf, type ClientDeps, type DhcpIdentity } from "./client-init.ts";

export interface ExitLease {
  /** The lease still held (SidecarMachine.release). */
  live: Lease;
  who: DhcpIdentity;
  /** Release it (nothing else in the pod uses the address any more), or shorten it. */
  release: boolean;
  /** Each of the two ends within this. */
  timeoutMs: number;
  /** The lease time asked for when shortening. */
  shortLeaseSeconds: number;
  /** Write a granted lease to the kernel (vxlan0's address lifetimes). */
  writeLease(lease: Lease): Promise<void>;
}

/** Release or shorten the lease; true when it was released. Failures and timeouts are logged, never thrown. */
export async function endLease(deps: Pick<ClientDeps, "dhcp" | "clock" | "log">, e: ExitLease): Promise<boolean> {
  const { live, who } = e;
  if (e.release) {
    const released = await bounded(deps, e.timeoutMs, `releasing the DHCP lease of ${live.address}`, deps.dhcp.release(live, who));
    if (released) deps.log.info(`released the DHCP lease of ${live.address}`);
    return released;
  }
  let granted: Lease | undefined;
  const shorten = async () => {
    granted = await deps.dhcp.renew(live, who, { broadcast: false, deadlineMs: e.timeoutMs, leaseSeconds: e.shortLeaseSeconds });
    await e.writeLease(granted);
  };
  const ok = await bounded(deps, e.timeoutMs, `shortening the DHCP lease of ${live.address}`, shorten());
  const kept = `not releasing the DHCP lease of ${live.address}: the pod's other containers may still use the address`;
  if (ok && granted) deps.log.info(`${kept}; shortened it to ${granted.leaseSeconds} s, after which the gateway reclaims it`);
  else deps.log.info(`${kept}; the gateway reclaims it when the lease lapses`);
  return false;
}

/** `work` or the timeout, whichever ends first; false on failure or timeout. */
async function bounded(deps: Pick<ClientDeps, "clock" | "log">, timeoutMs: number, what: string, work: Promise<unknown>): Promise<boolean> {
  const timeout = new AbortController();
  let settled = false;
  const ok = await Promise.race([
    work.then(
      () => true,
      (e) => (deps.log.warn(`${what} failed: ${messageOf(e)}`), false),
    ),
    deps.clock.sleep(timeoutMs, timeout.signal).then(() => {
      if (!settled) deps.log.warn(`${what} took longer than ${timeoutMs} ms; exiting anyway`);
      return false;
    }),
  ]);
  settled = true;
  timeout.abort();
  return ok;
}
