// client-init: route this pod's traffic through the gateway pod. Resolve the gateway first (while
// the cluster DNS is still reachable; the pod's network is read while the answer is on its way),
// plan, apply (rtnetlink),
// prove isolation, take the address (static from nat.conf or DHCP), set the default route, and
// prove the gateway answers through the tunnel. The client sidecar runs the same function to
// re-initialise, so every step converges when repeated.
import { StepError } from "../core/errors.ts";
import { ISOLATION_PROBES_V4, ISOLATION_PROBES_V6 } from "../core/client/constants.ts";
import { parseClientFacts, type ClientFacts } from "../core/client/facts.ts";
import { planPodIdentity, planSharedStaticWarning } from "../core/client/identity.ts";
import { decideIsolation, type IsolationVerdict, type RouteGetResult } from "../core/client/isolation.ts";
import { addressLifetime } from "../core/client/lease.ts";
import {
  describeRoute,
  planClientAddress,
  planClientNetwork,
  planVxlanMtuChange,
  stateChanges,
  type AddressWanted,
  type Change,
  type ClientNetworkInput,
  type ClientNetworkPlan,
} from "../core/client/plan.ts";
import { describeChanges } from "../core/net/change.ts";
import type { Lease } from "../core/dhcp/types.ts";
import { gatewayOverlayIp, overlayAddress, POD_IF, VXLAN_IF } from "../core/net/vxlan.ts";
import { isIpv4 } from "../core/net/ipv4.ts";
import { matchNatEntry, type NatMatchHow } from "../core/natconf/match.ts";
import type { NatEntry, Settings } from "../core/settings/types.ts";
import type { Clock } from "../sys/clock.ts";
import type { Logger } from "../sys/log.ts";

// ---------------------------------------------------------------- deps

/**
 * The pod's network as the client roles touch it: read facts (and route lookups), apply planned
 * changes. The real one is src/sys/client-host.ts (rtnetlink in-process, no programs run).
 */
export interface ClientHost {
  readFacts(): Promise<ClientFacts>;
  /** The facts plus `ip route get` for each destination, read together. */
  readFactsAndRoutes(dsts: readonly string[]): Promise<{ facts: ClientFacts; routes: RouteGetResult[] }>;
  apply(changes: readonly Change[], what: string): Promise<void>;
}

/** What the client roles need from the DHCP client (src/sys/dhcp-client.ts implements it). */
export interface DhcpIdentity {
  ifname: string;
  mac: string;
  /** Option 61: "<name>@<eth0 IPv4>", so a re-created interface keeps its lease and no other live pod shares it. */
  clientId: string;
  /** Option 12. */
  hostname: string;
}

export interface DhcpClient {
  acquire(id: DhcpIdentity, opts: { requestedAddress?: string; deadlineMs: number; signal?: AbortSignal }): Promise<Lease>;
  /** Unicast REQUEST to lease.serverId (renewing) or broadcast (rebinding). */
  renew(lease: Lease, id: DhcpIdentity, opts: { broadcast: boolean; deadlineMs: number; signal?: AbortSignal; leaseSeconds?: number }): Promise<Lease>;
  release(lease: Lease, id: DhcpIdentity): Promise<void>;
}

export interface GatewayProbeOutcome {
  alive: boolean;
  detail: string;
  attempts: number;
}

export interface ClientDeps {
  host: ClientHost;
  dhcp: DhcpClient;
  clock: Clock;
  log: Logger;
  resolveGateway(name: string, servers: readonly string[], opts: { deadlineMs: number; signal?: AbortSignal }): Promise<{ address: string; via: string }>;
  /** Probe <net>.1 through the tunnel until it answers or the deadline passes. */
  probeGateway(ip: string, opts: { deadlineMs: number; signal?: AbortSignal }): Promise<GatewayProbeOutcome>;
}

// ---------------------------------------------------------------- input

export interface ClientTiming {
  resolveDeadlineMs: number;
  dhcpDeadlineMs: number;
  probeDeadlineMs: number;
}

/** How old the network state read during the gateway lookup may be when the lookup ends. */
export const FACTS_MAX_AGE_MS = 250;

export const DEFAULT_CLIENT_TIMING: ClientTiming = {
  // The cluster DNS may still be starting when the first pods of a node start.
  resolveDeadlineMs: 30_000,
  dhcpDeadlineMs: 15_000,
  probeDeadlineMs: 10_000,
};

export interface ClientInput {
  settings: Settings;
  nat: readonly NatEntry[];
  podName: string;
  /** KUBERNETES_SERVICE_HOST: pinned to eth0 when IPv4, so the API stays reachable (Jobs check). */
  kubernetesServiceHost: string | undefined;
  signal?: AbortSignal;
  timing?: Partial<ClientTiming>;
  /** An address held before (the sidecar re-initialising after vxlan0 vanished): asked for again. */
  requestedAddress?: string;
}

export type AddressMode =
  | {
      kind: "static";
      entry: NatEntry;
      how: NatMatchHow;
      address: string;
      /** Set for the reference's prefix rule. */
      warning?: string;
      /** Set when the entry is matched by a workload's name: every replica gets the address. */
      shared?: string;
    }
  | { kind: "dhcp" };

export interface ClientInitResult {
  gatewayPodIp: string;
  mode: "static" | "dhcp";
  address: string;
  lease: Lease | undefined;
  /** Number of state changes applied (0 on a converged re-run). */
  changed: number;
  /** Milliseconds per step, by the clock. */
  timings: Record<string, number>;
}

// ---------------------------------------------------------------- helpers shared with the sidecar

export function networkInput(input: ClientInput, gatewayPodIp: string): ClientNetworkInput {
  const s = input.settings;
  return {
    podName: input.podName,
    vni: s.VXLAN_ID,
    port: s.VXLAN_PORT,
    network: s.VXLAN_IP_NETWORK,
    vpnInterfaceMtu: s.VPN_INTERFACE_MTU,
    notRoutedCidrs: s.NOT_ROUTED_TO_GATEWAY_CIDRS,
    dnsServers: s.K8S_DNS_IPS,
    gatewayPodIp,
    kubernetesServiceHost: input.kubernetesServiceHost && isIpv4(input.kubernetesServiceHost) ? input.kubernetesServiceHost : undefined,
  };
}

/**
 * The DHCP identity of this pod: vxlan0's MAC and the client id are seeded from the name and eth0's
 * IPv4 address (src/core/client/identity.ts), so client-init, a re-run of it and the sidecar all
 * send the same one, and no other live pod does.
 */
export function dhcpIdentity(input: Pick<ClientInput, "podName" | "settings">, facts: Pick<ClientFacts, "eth0">): DhcpIdentity {
  const id = planPodIdentity(input.podName, facts.eth0?.addresses ?? [], input.settings.VXLAN_ID);
  return { ifname: VXLAN_IF, mac: id.mac, clientId: id.clientId, hostname: id.hostname };
}

/** Static address from nat.conf when this pod has an entry, else DHCP. */
export function addressMode(input: Pick<ClientInput, "nat" | "podName" | "settings">): AddressMode {
  const m = matchNatEntry([...input.nat], input.podName);
  if (!m) return { kind: "dhcp" };
  const address = overlayAddress(input.settings.VXLAN_IP_NETWORK, m.entry.octet);
  const shared = planSharedStaticWarning(m, input.podName, address);
  return { kind: "static", entry: m.entry, how: m.how, address, ...(m.warning ? { warning: m.warning } : {}), ...(shared ? { shared } : {}) };
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Run one step; any error becomes a StepError naming it. */
async function step<T>(name: string, timings: Record<string, number>, clock: Clock, fn: () => Promise<T>): Promise<T> {
  const t0 = clock.now();
  try {
    return await fn();
  } catch (e) {
    if (e instanceof StepError) throw e;
    throw new StepError(name, messageOf(e), { cause: e });
  } finally {
    timings[name] = clock.now() - t0;
  }
}

export async function applyLogged(deps: Pick<ClientDeps, "host" | "log">, changes: readonly Change[], what: string): Promise<void> {
  if (changes.length === 0) return;
  for (const line of describeChanges(changes)) deps.log.debug(line);
  await deps.host.apply(changes, what);
}

export function logNetworkPlan(log: Logger, plan: ClientNetworkPlan): void {
  if (plan.original) log.debug(`original default gateway: ${plan.original.via ?? `dev ${POD_IF}`}${plan.original.onlink ? " onlink" : ""} (from the ${plan.original.source})`);
  for (const p of plan.pins) log.debug(`kept on ${POD_IF}: ${describeRoute(p)}`);
  for (const s of plan.skipped) log.debug(`not pinned: ${s.target} (${s.reason}): ${s.why}`);
  log.debug(`${VXLAN_IF}: VNI ${plan.vxlan.vni}, port ${plan.vxlan.port}, remote ${plan.vxlan.remote}, MAC ${plan.vxlan.mac}, MTU ${plan.vxlan.mtu} (${plan.vxlan.mtuWhy})`);
}

/**
 * Look up the isolation probe addresses (nothing is sent) and read the network state on the same
 * netlink socket: the check client-init runs after phase 1, and the client sidecar re-runs.
 */
export async function readIsolation(host: ClientHost): Promise<{ facts: ClientFacts; verdict: IsolationVerdict }> {
  const { facts, routes } = await host.readFactsAndRoutes([...ISOLATION_PROBES_V4, ...ISOLATION_PROBES_V6]);
  return { facts, verdict: decideIsolation(routes) };
}

/** Prove that no route leads to the internet except through the tunnel; the state after phase 1. */
export async function checkIsolation(host: ClientHost): Promise<ClientFacts> {
  const { facts, verdict: v } = await readIsolation(host);
  if (!v.isolated)
    throw new Error(
      `the pod is not isolated after removing the default routes: ${v.leaks.join("; ")}. ` +
        `A route this tool does not own (another table with a policy rule, a split default such as 0.0.0.0/1, a default route that came back) ` +
        `still leads around the tunnel; refusing to continue`,
    );
  return facts;
}

// ---------------------------------------------------------------- the role

export async function runClientInit(deps: ClientDeps, input: ClientInput): Promise<ClientInitResult> {
  const { host, clock, log } = deps;
  const timing = { ...DEFAULT_CLIENT_TIMING, ...input.timing };
  const s = input.settings;
  const timings: Record<string, number> = {};
  const overlayGw = gatewayOverlayIp(s.VXLAN_IP_NETWORK);
  let changed = 0;

  // Before any route is touched: with the default route gone, an off-link cluster DNS that is not
  // pinned yet could not be asked (the reference's most reported failure).
  const resolving = step("resolve gateway", timings, clock, () => deps.resolveGateway(s.GATEWAY_NAME, s.K8S_DNS_IPS, { deadlineMs: timing.resolveDeadlineMs, signal: input.signal }));
  resolving.catch(() => {}); // awaited below; this only keeps it from counting as unhandled meanwhile
  // The pod's network is read while the question is out (a round trip to the cluster DNS):
  // reading changes nothing, and the answer then waits for the read instead of the read for the
  // answer. A read that failed, or is older than FACTS_MAX_AGE_MS once the name resolved (a slow
  // or retrying DNS), is done again in its own step, so errors keep their order and step.
  await new Promise<void>((r) => setImmediate(r)); // one turn: the query is sent (the socket opens in a callback)
  const readAt = clock.now();
  const early = host.readFacts().then(
    (f) => ({ ok: true as const, f }),
    () => ({ ok: false as const }),
  );
  const gw = await resolving;
  log.debug(`gateway ${s.GATEWAY_NAME} is ${gw.address} (${gw.via === "literal" ? "IP literal" : `answered by ${gw.via}`})`);

  const facts = await step("read network state", timings, clock, async () => {
    const r = await early;
    return r.ok && clock.now() - readAt <= FACTS_MAX_AGE_MS ? r.f : host.readFacts();
  });
  const identity = planPodIdentity(input.podName, facts.eth0?.addresses ?? [], s.VXLAN_ID);
  if (identity.warning) log.warn(identity.warning);
  else log.debug(`identity: ${input.podName} at ${identity.podIp}: ${VXLAN_IF} MAC ${identity.mac}, DHCP client id ${JSON.stringify(identity.clientId)}`);
  const mode = addressMode(input);
  // DHCP mode: an MTU an earlier lease's option 26 set on vxlan0 stays until this lease says otherwise (phase 2).
  const keptMtu = mode.kind === "dhcp" ? facts.vxlan?.mtu : undefined;
  const plan = await step("plan", timings, clock, async () => planClientNetwork(facts, { ...networkInput(input, gw.address), dhcpMtu: keptMtu }));
  logNetworkPlan(log, plan);

  await step("route cluster traffic and create the tunnel", timings, clock, async () => {
    await applyLogged(deps, plan.changes, "keeping cluster traffic on eth0, removing default routes, creating vxlan0");
    changed += stateChanges(plan.changes).length;
  });

  const after = await step("isolation check", timings, clock, () => checkIsolation(host));
  let want: AddressWanted;
  let lease: Lease | undefined;
  if (mode.kind === "static") {
    if (mode.warning) log.warn(mode.warning);
    if (mode.shared) log.warn(mode.shared);
    log.debug(`static address ${mode.address} from nat.conf entry "${mode.entry.name}" (${mode.how} match)`);
    want = { local: mode.address, prefixlen: 24, lifetime: "forever" };
  } else {
    const current = after.vxlan?.addresses.find((a) => a.local.startsWith(`${s.VXLAN_IP_NETWORK}.`) && a.validLft !== Infinity);
    lease = await step("DHCP", timings, clock, () =>
      deps.dhcp.acquire(dhcpIdentity(input, facts), { requestedAddress: current?.local ?? input.requestedAddress, deadlineMs: timing.dhcpDeadlineMs, signal: input.signal }),
    );
    log.debug(`DHCP lease ${lease.address}/${lease.prefixLength} from ${lease.serverId} for ${lease.leaseSeconds} s`);
    want = { local: lease.address, prefixlen: lease.prefixLength, lifetime: addressLifetime(lease, clock.now()) };
  }

  await step("address and default route", timings, clock, async () => {
    const changes = [...planVxlanMtuChange(after, { vpnInterfaceMtu: s.VPN_INTERFACE_MTU, dhcpMtu: lease?.mtu }), ...planClientAddress(after, s.VXLAN_IP_NETWORK, want)];
    await applyLogged(deps, changes, `setting ${want.local}/${want.prefixlen} on ${VXLAN_IF} and the default route via ${overlayGw}`);
    changed += stateChanges(changes).length;
  });

  const probe = await step("probe gateway", timings, clock, () => deps.probeGateway(overlayGw, { deadlineMs: timing.probeDeadlineMs, signal: input.signal }));
  if (!probe.alive) throw new StepError("probe gateway", `the gateway ${overlayGw} did not answer through the tunnel (${probe.attempts} attempts): ${probe.detail}`);

  return { gatewayPodIp: gw.address, mode: mode.kind, address: want.local, lease, changed, timings };
}

