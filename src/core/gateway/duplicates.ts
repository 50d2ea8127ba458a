// Duplicate overlay identities, seen from the gateway (issue 13 §2). Clients cannot find them
// themselves: their vxlan0 reaches only the gateway. The gateway's vxlan0 learns: its forwarding
// database maps each client MAC to the pod IP (VTEP) it came from, and its neighbour table maps
// each overlay address to the MAC that last spoke for it. Two pods holding one address (a nat.conf
// entry matched by a workload's name, during a rolling update) make the neighbour entry flip
// between their MACs; two pods with one MAC make the forwarding entry flip between their pod IPs.
// So an overlay address or a MAC seen behind two pod IPs within a minute is reported.
//
// Pure: parse*() read `ip -j neigh show dev vxlan0` and `bridge -j fdb show dev vxlan0`;
// planDuplicateReports() keeps what was seen in a value and says what to report.
import { isIpv4 } from "../net/ipv4.ts";

/** One observation: `mac` was behind pod IP `podIp`, speaking for overlay address `overlayIp` (if known). */
export interface Sighting {
  mac: string;
  podIp: string;
  overlayIp?: string;
}

export const DUPLICATE_WINDOW_MS = 60_000;

const ZERO_MAC = "00:00:00:00:00:00";
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function records(json: unknown): Record<string, unknown>[] {
  return Array.isArray(json) ? json.filter((x): x is Record<string, unknown> => typeof x === "object" && x !== null) : [];
}

/** MAC → pod IP from the learned entries of `bridge -j fdb show dev vxlan0` (the all-zero default and permanent entries are not learned). */
export function parseFdbPodIps(fdb: unknown): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of records(fdb)) {
    const mac = typeof e.mac === "string" ? e.mac.toLowerCase() : "";
    const dst = typeof e.dst === "string" ? e.dst : "";
    if (!MAC_RE.test(mac) || mac === ZERO_MAC || !isIpv4(dst)) continue;
    if (e.state === "permanent" || e.state === "static") continue;
    out.set(mac, dst);
  }
  return out;
}

/** Overlay address → MAC from `ip -j neigh show dev vxlan0` (entries with a link-layer address only). */
export function parseNeighMacs(neigh: unknown): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of records(neigh)) {
    const dst = typeof e.dst === "string" ? e.dst : "";
    const mac = typeof e.lladdr === "string" ? e.lladdr.toLowerCase() : "";
    if (!isIpv4(dst) || !MAC_RE.test(mac)) continue;
    const state = Array.isArray(e.state) ? e.state : [];
    if (state.includes("FAILED") || state.includes("INCOMPLETE")) continue;
    out.set(dst, mac);
  }
  return out;
}

/** What one poll of the two tables shows: every learned MAC with its pod IP, and the overlay address it speaks for. */
export function parseSightings(neigh: unknown, fdb: unknown): Sighting[] {
  const podIps = parseFdbPodIps(fdb);
  const out: Sighting[] = [];
  const withAddress = new Set<string>();
  for (const [overlayIp, mac] of parseNeighMacs(neigh)) {
    const podIp = podIps.get(mac);
    if (podIp === undefined) continue;
    out.push({ mac, podIp, overlayIp });
    withAddress.add(mac);
  }
  for (const [mac, podIp] of podIps) if (!withAddress.has(mac)) out.push({ mac, podIp });
  return out;
}

/** Per key ("ip 172.16.0.5" or "mac 02:…"): pod IP → when it was last seen there, and the MAC seen with it. */
export interface DuplicateState {
  seen: Map<string, Map<string, { at: number; mac: string }>>;
  /** Key → when it was last reported (one report per key per window). */
  reported: Map<string, number>;
  /** Keys behind two or more pod IPs now (within the window): a line when one stops being so. */
  active: Set<string>;
}

export function newDuplicateState(): DuplicateState {
  return { seen: new Map(), reported: new Map(), active: new Set() };
}

/** The metric the duplicate lines move: keys behind two or more pod IPs now, by kind. */
export const DUPLICATES_METRIC = "pod_gateway_gateway_duplicate_identities";

/** How many overlay addresses and MACs are behind two or more pod IPs now. */
export function countDuplicates(state: DuplicateState): { address: number; mac: number } {
  let address = 0;
  for (const k of state.active) if (k.startsWith("address ")) address++;
  return { address, mac: state.active.size - address };
}

export interface DuplicateReport {
  kind: "address" | "mac";
  /** The overlay address or the MAC. */
  value: string;
  /** The pod IPs it was seen behind within the window, sorted, each with the MAC seen there. */
  pods: { podIp: string; mac: string }[];
  /** True: the duplicate is over (seen behind one pod IP at most for a whole window), an info line. */
  over?: boolean;
  text: string;
}

function describe(kind: DuplicateReport["kind"], value: string, pods: DuplicateReport["pods"], windowMs: number): string {
  const secs = Math.round(windowMs / 1000);
  if (kind === "address")
    return (
      `overlay address ${value} seen behind ${pods.length} pod IPs within ${secs} s: ${pods.map((p) => `${p.podIp} (MAC ${p.mac})`).join(", ")}; ` +
      `two live pods hold it (a nat.conf entry matched by a workload's name gives every replica the same address), ` +
      `unless one of them was just replaced or its DHCP lease went to the other`
    );
  return (
    `MAC ${value} seen behind ${pods.length} pod IPs within ${secs} s: ${pods.map((p) => p.podIp).join(", ")}; ` +
    `two live pods share one overlay identity (clients without an IPv4 address on eth0, or an older client image, derive it from the name alone)`
  );
}

/**
 * Add one poll's sightings at `now`, forget what is older than the window, and return the keys seen
 * behind two or more pod IPs within it that were not reported in the last window. Changes `state`.
 */
export function planDuplicateReports(state: DuplicateState, sightings: readonly Sighting[], now: number, windowMs = DUPLICATE_WINDOW_MS): DuplicateReport[] {
  const note = (key: string, podIp: string, mac: string) => {
    let m = state.seen.get(key);
    if (!m) state.seen.set(key, (m = new Map()));
    m.set(podIp, { at: now, mac });
  };
  for (const s of sightings) {
    note(`mac ${s.mac}`, s.podIp, s.mac);
    if (s.overlayIp !== undefined) note(`address ${s.overlayIp}`, s.podIp, s.mac);
  }
  const reports: DuplicateReport[] = [];
  const secs = Math.round(windowMs / 1000);
  const parse = (key: string) => {
    const [kindWord, value] = key.split(" ", 2) as [string, string];
    return { kind: kindWord === "address" ? ("address" as const) : ("mac" as const), value };
  };
  const ended = (key: string, pods: Map<string, { at: number; mac: string }> | undefined) => {
    if (!state.active.delete(key)) return;
    const { kind, value } = parse(key);
    const list = [...(pods ?? [])].map(([podIp, v]) => ({ podIp, mac: v.mac }));
    reports.push({ kind, value, pods: list, over: true, text: `${kind === "address" ? "overlay address" : "MAC"} ${value} no longer seen behind two pod IPs within ${secs} s: the duplicate is over` });
  };
  for (const [key, pods] of state.seen) {
    for (const [podIp, v] of pods) if (now - v.at > windowMs) pods.delete(podIp);
    if (pods.size === 0) {
      state.seen.delete(key);
      ended(key, undefined);
      continue;
    }
    if (pods.size < 2) {
      ended(key, pods);
      continue;
    }
    state.active.add(key);
    const last = state.reported.get(key);
    if (last !== undefined && now - last < windowMs) continue;
    state.reported.set(key, now);
    const { kind, value } = parse(key);
    const list = [...pods].map(([podIp, v]) => ({ podIp, mac: v.mac })).sort((a, b) => (a.podIp < b.podIp ? -1 : a.podIp > b.podIp ? 1 : 0));
    reports.push({ kind, value, pods: list, text: describe(kind, value, list, windowMs) });
  }
  for (const [key, at] of state.reported) if (now - at >= windowMs && !state.seen.has(key)) state.reported.delete(key);
  // Every line names the metric it moves, with its value after this poll.
  const counts = countDuplicates(state);
  for (const r of reports) r.text += ` (${DUPLICATES_METRIC}{kind="${r.kind}"} ${counts[r.kind]})`;
  return reports;
}
