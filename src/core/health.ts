// What a sidecar says about itself, and the decision `pod-gateway health [--ready]` makes from it.
// Pure: the sidecar computes ages from its own clock when asked; the probe compares them to
// limits here. Where the status travels (an abstract unix socket) is src/sys/status-socket.ts.

export type SidecarRole = "client-sidecar" | "gateway-sidecar";
export const SIDECAR_ROLES: readonly SidecarRole[] = ["client-sidecar", "gateway-sidecar"];

/**
 * The status socket's name, in the abstract namespace (no file: the webhook cannot add an emptyDir
 * to injected containers). Abstract unix sockets belong to the network namespace, so every
 * container of the pod — and only they — can reach it; `health` run by an exec probe is one of them.
 * Never rename: a newer probe must find an older sidecar.
 */
export function statusSocketName(role: SidecarRole): string {
  return `pod-gateway/${role}`;
}

/** What `health` asks: "live" (cheap, never touches the network) or "ready" (may check a path). */
export type HealthQuestion = "live" | "ready";

export interface ClientStatus {
  role: "client-sidecar";
  version: string;
  /** ms since the loop last finished a turn (a probe, a renewal, a sleep's end). */
  tickAgeMs: number;
  /** The probe interval (CLIENT_PROBE_INTERVAL) in ms. */
  intervalMs: number;
  /** ms since the gateway last answered through the tunnel; undefined: never since start. */
  gatewayAnswerAgeMs: number | undefined;
  /** False once CONNECTION_RETRY_COUNT probes in a row failed (pod_gateway_client_gateway_reachable 0). */
  gatewayReachable: boolean;
  /** Only when asked "ready": the isolation check made for this answer. */
  isolation?: { ok: boolean; detail: string };
}

export interface GatewayStatus {
  role: "gateway-sidecar";
  version: string;
  tickAgeMs: number;
  /** The firewall check interval in ms: the loop's tick. */
  intervalMs: number;
  dnsmasqRunning: boolean;
  /** Did the last firewall check (after any re-assertion) find our rules in place? undefined: not checked yet. */
  firewallVerified: boolean | undefined;
  firewallDetail: string;
  /**
   * The kill switch's drop report (absent with the kill switch off or its log group not bound):
   * packets logged since start, and the last report line with its age.
   */
  drops?: { packets: number; last?: { text: string; ageMs: number } };
  /** Only when asked "ready": a DNS query to the overlay's .1 made for this answer. */
  dns?: { ok: boolean; detail: string };
}

export type SidecarStatus = ClientStatus | GatewayStatus;

export interface HealthVerdict {
  ok: boolean;
  /** One line: what was checked and what was found. */
  line: string;
}

/** Liveness: a loop silent for longer than this many intervals is stuck. */
export const LIVE_INTERVALS = 3;
/** Readiness (client): the gateway must have answered within this many intervals. */
export const READY_INTERVALS = 3;

const secs = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;

/** Decide health from a sidecar's status. Liveness never depends on the network. */
export function decideHealth(st: SidecarStatus, q: HealthQuestion): HealthVerdict {
  const liveLimit = LIVE_INTERVALS * st.intervalMs;
  const loopOk = st.tickAgeMs <= liveLimit;
  const loop = `loop ticked ${secs(st.tickAgeMs)} ago (limit ${secs(liveLimit)})`;
  const problems: string[] = [];
  const facts: string[] = [loop];
  if (!loopOk) problems.push(`loop stuck: last tick ${secs(st.tickAgeMs)} ago, limit ${secs(liveLimit)}`);
  if (st.role === "gateway-sidecar") {
    facts.push(st.dnsmasqRunning ? "dnsmasq running" : "dnsmasq not running");
    if (!st.dnsmasqRunning) problems.push("dnsmasq is not running");
    if (q === "ready") {
      if (st.firewallVerified !== true) problems.push(st.firewallVerified === undefined ? "firewall not verified yet" : `firewall not verified: ${st.firewallDetail}`);
      else facts.push("firewall verified");
      if (!st.dns) problems.push("DNS on the overlay not checked");
      else if (!st.dns.ok) problems.push(`dnsmasq does not answer: ${st.dns.detail}`);
      else facts.push(st.dns.detail);
    }
  } else if (q === "ready") {
    const limit = READY_INTERVALS * st.intervalMs;
    const age = st.gatewayAnswerAgeMs;
    if (age === undefined) problems.push("the gateway has not answered through the tunnel since start");
    else if (!st.gatewayReachable) problems.push(`the gateway does not answer through the tunnel (last answer ${secs(age)} ago)`);
    else if (age > limit) problems.push(`the gateway last answered through the tunnel ${secs(age)} ago (limit ${secs(limit)})`);
    else facts.push(`gateway answered ${secs(age)} ago`);
    if (!st.isolation) problems.push("isolation not checked");
    else if (!st.isolation.ok) problems.push(`not isolated: ${st.isolation.detail}`);
    else facts.push("isolated");
  }
  const what = `${st.role} ${q === "ready" ? "readiness" : "liveness"}`;
  if (problems.length) return { ok: false, line: `${what}: NOT OK: ${problems.join("; ")}` };
  return { ok: true, line: `${what}: ok: ${facts.join(", ")}` };
}

/** Parse and check a status text from the socket (it is ours, but a probe must not crash on garbage). */
export function parseStatus(text: string): SidecarStatus {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`the status is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
  }
  const o = v as Record<string, unknown>;
  if (!o || typeof o !== "object") throw new Error("the status is not an object");
  const num = (k: string) => {
    if (typeof o[k] !== "number" || !Number.isFinite(o[k])) throw new Error(`the status has no number ${k}`);
  };
  num("tickAgeMs");
  num("intervalMs");
  if (o.role === "client-sidecar") {
    if (o.gatewayAnswerAgeMs !== undefined) num("gatewayAnswerAgeMs");
    if (typeof o.gatewayReachable !== "boolean") throw new Error("the status has no gatewayReachable");
    return o as unknown as ClientStatus;
  }
  if (o.role === "gateway-sidecar") {
    if (typeof o.dnsmasqRunning !== "boolean") throw new Error("the status has no dnsmasqRunning");
    return o as unknown as GatewayStatus;
  }
  throw new Error(`the status names an unknown role ${JSON.stringify(o.role)}`);
}
