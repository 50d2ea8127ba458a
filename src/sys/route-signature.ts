// A cheap fingerprint of what the kill switch's routing table copies: the main table's IPv4
// routes (/proc/net/route) and the VPN link's index and flags (/sys/class/net/<name>), read as
// files — no process, a few microseconds — so gateway-sidecar can look every fraction of a second
// and start `ip` only when something changed. Both are per network namespace.
import { readFileSync } from "node:fs";

function read(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    return `(${(e as NodeJS.ErrnoException).code ?? "unreadable"})`;
  }
}

/** Changes when a main-table IPv4 route changes, or the link named `vpnInterface` comes, goes, is re-created, goes up or down. */
export function readRouteSignature(vpnInterface: string, root = ""): string {
  const link = vpnInterface ? `${read(`${root}/sys/class/net/${vpnInterface}/ifindex`)}/${read(`${root}/sys/class/net/${vpnInterface}/flags`)}` : "";
  return `${link}\n${read(`${root}/proc/net/route`)}`;
}
