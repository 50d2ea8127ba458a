// gateway-init: makes the gateway pod a router for the overlay. Reads facts, plans (pure),
// applies the firewall first (so forwarding never runs without the kill switch), then links,
// addresses, the policy rule and routes, then IPv4 forwarding; verifies everything it made.
// Every step converges: a second run on a correct pod changes nothing, and starts only the
// reads that show it (what is already as planned is not applied again).
import { StepError } from "../core/errors.ts";
import type { BackendName } from "../core/firewall/backend.ts";
import { planBlockingFirewall, planFirewall, summarizeFirewall, type FirewallPlan } from "../core/firewall/model.ts";
import { GatewayPlanError, planGatewayNetwork, readClusterDnsRecord, summarizeGatewayNetwork, type GatewayFacts, type GatewayNetPlan, type GatewayNetSettings } from "../core/gateway/plan.ts";
import { describeChanges, formatChange, type NetChange } from "../core/net/change.ts";
import { killSwitchInput, planDnsUpstreams, planKillSwitch, readDnsUpstreamRecord, routingFactsAfter, summarizeKillSwitch, type KillSwitchInput, type KillSwitchPlan } from "../core/gateway/killswitch.ts";
import type { ResolvedConfig, Settings } from "../core/settings/types.ts";
import type { Runner } from "../sys/exec.ts";
import {
  checkProblems,
  chooseFirewallBackend,
  createFirewallBackend,
  partsToApply,
  readOtherBackends,
  removeStaleFirewall,
  type FirewallBackend,
  type FirewallCheck,
  type FirewallPart,
  type KnownReads,
} from "../sys/firewall.ts";
import type { GatewayNet } from "../sys/gateway-host.ts";
import type { Logger } from "../sys/log.ts";
import { ensureSysctl, type Sysctl } from "../sys/sysctl.ts";
import { failClosed, readDnsFacts, reconcileFirewall } from "./gateway-killswitch.ts";
import { netlinkRoutes6Host, reconcileLocalRoutes6, type Routes6Host } from "./gateway-local6.ts";

export interface GatewayInitDeps {
  runner: Runner;
  /** Links, addresses, rules and routes: rtnetlink (src/sys/gateway-host.ts). */
  net: GatewayNet;
  sysctl: Sysctl;
  log: Logger;
  /** Backend factory (tests inject one); default: automatic choice per the settings. */
  firewall?: () => Promise<FirewallBackend>;
  /** The pod's resolv.conf (default /etc/resolv.conf): names the cluster DNS at gateway-init time. */
  resolvConf?: string;
  /** Removes our objects from the backends other than the chosen one (tests inject one). */
  removeStaleFirewall?: (chosen: BackendName) => Promise<string[]>;
  /** The pod's IPv6 routes for the IPv6 VPN_LOCAL_CIDRS (tests inject one); default: rtnetlink. */
  routes6?: () => Routes6Host;
}

export interface GatewayInitResult {
  backend: BackendName;
  network: GatewayNetPlan;
  firewall: FirewallPlan;
  /** Network commands that were needed (0 on a re-run over a correct pod). */
  networkChanges: number;
  /** Firewall parts (iptables families, the nft table) that were applied (none on a re-run). */
  firewallApplied: FirewallPart[];
  forwardingChanged: boolean;
}

export const IP_FORWARD = "net.ipv4.ip_forward";
/** The pod's resolv.conf: at gateway-init time (before any VPN container) it names the cluster DNS. */
export const ETC_RESOLV_CONF = "/etc/resolv.conf";

/** Links with addresses, IPv4 routes of every table and IPv4 rules (rtnetlink dumps). */
export async function readGatewayFacts(net: GatewayNet): Promise<GatewayFacts> {
  try {
    return await net.readFacts();
  } catch (e) {
    throw new StepError("reading the gateway network", (e as Error).message, { cause: e });
  }
}

function planNetwork(s: GatewayNetSettings, facts: GatewayFacts, clusterDns?: string): GatewayNetPlan {
  try {
    return planGatewayNetwork(s, facts, { clusterDns });
  } catch (e) {
    if (e instanceof GatewayPlanError) throw new StepError("planning the gateway network", e.message);
    throw e;
  }
}

/** The backend per the settings, with the reads its automatic choice made (a check can reuse them). */
export async function openFirewall(
  config: ResolvedConfig,
  runner: Runner,
  log: Logger,
): Promise<{ backend: FirewallBackend; known?: KnownReads; reads: ReadonlyMap<BackendName, KnownReads> | Promise<ReadonlyMap<BackendName, KnownReads>> }> {
  const s = config.settings;
  let choice;
  try {
    choice = await chooseFirewallBackend(s.FIREWALL_BACKEND, s.IPTABLES_NFT, runner);
  } catch (e) {
    throw new StepError("choosing the firewall backend", (e as Error).message, { cause: e });
  }
  log.debug(`firewall backend ${choice.backend} (${choice.why})`);
  // An explicit choice read nothing: what the other backends hold (ours, left by an earlier
  // choice?) is read now, side by side with the chosen backend's check and apply.
  const reads = choice.reads ?? readOtherBackends(choice.backend, runner);
  if (reads instanceof Promise) reads.catch(() => undefined); // awaited (and reported) after the apply
  if (choice.backend !== "iptables-legacy" && choice.facts?.foreignLegacy)
    log.warn("iptables-legacy holds another container's rules: a DROP there is not overridden by our accepts (set FIREWALL_BACKEND=iptables-legacy)");
  const backend = createFirewallBackend(choice.backend, runner);
  for (const w of backend.warnings) log.warn(w);
  return { backend, known: choice.known, reads };
}

/** The network plan and the kill switch's routing layer (its table and rules) from one read. */
interface NetworkPlans {
  net: GatewayNetPlan;
  routing: KillSwitchPlan;
  input: KillSwitchInput;
  /** The cluster DNS as decided (DNS_LOCAL_SERVER, the kernel's record, the files), if known. */
  clusterDns: string | undefined;
  dns: { upstreams: string[]; warning?: string };
}

/**
 * What the DNS side of the plan starts from: the nameservers of the resolv.conf copy dnsmasq
 * forwards to, and candidates for the cluster DNS from files (the kernel's record wins over them).
 */
export interface DnsFacts {
  nameservers: readonly string[];
  /** First IPv4 nameserver of the saved original resolv.conf, then of the current one. */
  clusterDnsCandidates: readonly (string | undefined)[];
}

function planAll(s: Settings, facts: GatewayFacts, d: DnsFacts): NetworkPlans {
  const clusterDns = s.DNS_LOCAL_SERVER || readClusterDnsRecord(facts.routes) || d.clusterDnsCandidates.find((c) => c !== undefined);
  const net = planNetwork(s, facts, clusterDns);
  // No copy to read (gateway-init's own container never has the sidecar's): the upstreams the kernel routes.
  const dns = planDnsUpstreams(d.nameservers.length ? d.nameservers : readDnsUpstreamRecord(facts.rules), clusterDns);
  const input = killSwitchInput(s, net.localRoutes, dns.upstreams, false, clusterDns);
  return { net, input, clusterDns, dns, routing: planKillSwitch(input, routingFactsAfter(net, facts)) };
}

const actionsOf = (p: NetworkPlans): NetChange[] => [...p.net.actions, ...p.routing.actions];

/** Apply the network changes (vxlan0, the policy rules, routes, our routing table) and read the state back: nothing may be left to do. */
async function applyNetwork(s: Settings, net: GatewayNet, plans: NetworkPlans, d: DnsFacts, log: Logger): Promise<void> {
  const actions = actionsOf(plans);
  if (actions.length === 0) return; // the facts just read are the verification
  for (const line of describeChanges(actions)) log.debug(line);
  try {
    await net.apply(actions);
  } catch (e) {
    throw new StepError("configuring the gateway network", (e as Error).message, { cause: e });
  }
  const after = actionsOf(planAll(s, await readGatewayFacts(net), d));
  if (after.length) throw new StepError("verifying the gateway network", `still differs after applying: ${after.map((a) => `${a.why} (${formatChange(a)})`).join("; ")}`);
}

/**
 * The network part of gateway-init on its own (read, plan, apply and read back): links,
 * addresses, policy rules, routes and our routing table exactly as planned for these settings.
 * gateway-sidecar runs it at start, so a ConfigMap changed since gateway-init ran leaves nothing
 * stale. Returns the number of changes and the cluster DNS as decided.
 */
export async function reconcileGatewayNetwork(
  s: Settings, net: GatewayNet, d: DnsFacts, log: Logger, routes6: () => Routes6Host = netlinkRoutes6Host,
): Promise<{ changes: number; clusterDns?: string; dns: NetworkPlans["dns"] }> {
  const plans = planAll(s, await readGatewayFacts(net), d);
  for (const w of plans.net.warnings) log.warn(w);
  await applyNetwork(s, net, plans, d, log);
  const six = await reconcileLocalRoutes6(s, routes6, log);
  return { changes: actionsOf(plans).length + six.changes, clusterDns: plans.clusterDns, dns: plans.dns };
}

export async function runGatewayInit(config: ResolvedConfig, deps: GatewayInitDeps): Promise<GatewayInitResult> {
  const { log } = deps;
  const s = config.settings;

  // 1. Read and plan. The pod's network (rtnetlink dumps, in-process) and our firewall objects
  //    (the backend's programs, after its automatic choice, whose reads the check reuses).
  //    Planning fails before anything is changed.
  const netRead = readGatewayFacts(deps.net);
  netRead.catch(() => undefined); // awaited below; this keeps a failure from counting as unhandled if planning throws first
  const fwPlan = planFirewall(s, config.nat);
  for (const w of fwPlan.warnings) log.warn(w);
  const firewallRead = (async () => {
    const { backend, known, reads } = deps.firewall ? { backend: await deps.firewall(), known: undefined, reads: undefined } : await openFirewall(config, deps.runner, log);
    return { backend, reads, check: await backend.check(fwPlan, { known }) };
  })();
  // The DNS upstreams the sidecar forwards to (none before its first start) keep their host routes.
  const dnsFacts = readDnsFacts(s, deps.resolvConf ?? ETC_RESOLV_CONF);
  const [plans, { backend, check, reads }] = await Promise.all([netRead.then((f) => planAll(s, f, dnsFacts)), firewallRead]);
  const dns = plans.dns;
  const net = plans.net;
  for (const w of net.warnings) log.warn(w);

  // 2. The firewall (check → apply → check, the reconcile the sidecar repeats) side by side with
  //    the network changes (links, addresses, policy rules, routes and our routing table: only
  //    what differs, applied and read back over rtnetlink). Forwarding is still off. A part
  //    already exactly the plan is left alone (its read was the verification), so a re-run
  //    changes no rule and its counters keep counting.
  for (const p of checkProblems(check)) log.debug(`firewall: ${p}`);
  //    The IPv6 VPN_LOCAL_CIDRS routes (issue 13 §3) follow the IPv4 network, on the netlink layer.
  const [fw, network] = await Promise.allSettled([
    reconcileFirewall(backend, fwPlan, log, { check }),
    applyNetwork(s, deps.net, plans, dnsFacts, log).then(() => reconcileLocalRoutes6(s, deps.routes6 ?? netlinkRoutes6Host, log)),
  ]);
  const fwResult = fw.status === "fulfilled" ? fw.value : { applied: 0, parts: [], problems: [(fw.reason as Error).message] };
  const applied = fwResult.parts;

  // 3. A layer not proven: with the kill switch on, both layers fail closed (the blocking
  //    ruleset, our table without the VPN's routes) and forwarding (step 4) is never turned on.
  const failures: string[] = [];
  if (fwResult.problems.length) failures.push(...fwResult.problems);
  if (network.status === "rejected" && fwPlan.killSwitch) failures.push((network.reason as Error).message);
  if (failures.length && fwPlan.killSwitch) {
    const closeErrors = await failClosed(backend, s, deps.net, dns.upstreams, log);
    if (closeErrors.length === 0) log.error("the kill switch could not be proven: all forwarded and outgoing traffic is blocked (fail closed)");
    const also = closeErrors.map((e) => `\n  and failing closed failed too: ${e}`).join("");
    if (fwResult.problems.length) throw new StepError(`applying the firewall (${backend.name})`, failures.join("\n  ") + also);
    const reason = (network as PromiseRejectedResult).reason as Error;
    if (!also) throw reason;
    throw reason instanceof StepError ? new StepError(reason.step, reason.message.slice(reason.step.length + 2) + also, { cause: reason }) : new StepError("configuring the gateway network", reason.message + also);
  }
  if (fwResult.problems.length) throw new StepError(`applying the firewall (${backend.name})`, fwResult.problems.join("\n  "));
  if (network.status === "rejected") throw network.reason;
  if (dns.warning) log.warn(dns.warning);

  // Nothing stale: our objects in a backend no longer chosen go, once the chosen one is proven
  // (the automatic choice's reads tell whether there are any: no extra process when clean).
  try {
    for (const line of await (deps.removeStaleFirewall ?? (async (b) => removeStaleFirewall(b, deps.runner, await reads)))(backend.name)) log.info(`firewall: ${line}`);
  } catch (e) {
    throw new StepError("removing our rules from a firewall backend no longer chosen", (e as Error).message, { cause: e });
  }

  // 4. IPv4 forwarding.
  const forwardingChanged = ensureSysctl(
    deps.sysctl, IP_FORWARD, "1", "enabling IPv4 forwarding",
    "gateway-init needs a privileged container (or allow the unsafe sysctl net.ipv4.ip_forward and set it in the pod's securityContext.sysctls)",
  );

  const fwState = applied.length ? `applied ${applied.join(", ")}` : "already as planned";
  const changes = actionsOf(plans).length + (network.status === "fulfilled" ? network.value.changes : 0);
  log.info(`gateway ready (${changes ? `${changes} network changes` : "network already as planned"}, firewall ${backend.name} ${fwState})`);
  const routes6 = network.status === "fulfilled" ? network.value.plan.routes : [];
  if (routes6.length) log.info(`routes (IPv6): ${routes6.map((r) => `${r.dst} via ${r.via} dev ${r.dev}`).join(", ")}`);
  for (const line of [...summarizeGatewayNetwork(net), summarizeKillSwitch(plans.routing, plans.input), ...summarizeFirewall(fwPlan)]) log.info(line);
  return { backend: backend.name, network: net, firewall: fwPlan, networkChanges: changes, firewallApplied: applied, forwardingChanged };
}
