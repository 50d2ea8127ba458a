// gateway-init: makes the gateway pod a router for the overlay. Reads facts, plans (pure),
// applies the firewall first (so forwarding never runs without the kill switch), then links,
// addresses, the policy rule and routes, then IPv4 forwarding; verifies everything it made.
// Every step converges: a second run on a correct pod changes nothing, and starts only the
// reads that show it (what is already as planned is not applied again).
import { StepError } from "../core/errors.ts";
import type { BackendName } from "../core/firewall/backend.ts";
import { planBlockingFirewall, planFirewall, summarizeFirewall, type FirewallPlan } from "../core/firewall/model.ts";
import {
  GatewayPlanError,
  parseGatewayReads,
  planGatewayNetwork,
  renderGatewayReads,
  summarizeGatewayNetwork,
  type GatewayFacts,
  type GatewayNetPlan,
  type GatewayNetSettings,
  type NetAction,
} from "../core/gateway/plan.ts";
import type { ResolvedConfig } from "../core/settings/types.ts";
import type { Runner } from "../sys/exec.ts";
import {
  checkProblems,
  chooseFirewallBackend,
  createFirewallBackend,
  partsToApply,
  type FirewallBackend,
  type FirewallCheck,
  type FirewallPart,
  type KnownReads,
} from "../sys/firewall.ts";
import { IpBatchError, type Ip } from "../sys/ip.ts";
import type { Logger } from "../sys/log.ts";
import { ensureSysctl, type Sysctl } from "../sys/sysctl.ts";

export interface GatewayInitDeps {
  runner: Runner;
  ip: Ip;
  sysctl: Sysctl;
  log: Logger;
  /** Backend factory (tests inject one); default: automatic choice per the settings. */
  firewall?: () => Promise<FirewallBackend>;
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

/** Links with addresses, IPv4 routes of table main and IPv4 rules, in one `ip` process. */
export async function readGatewayFacts(ip: Ip): Promise<GatewayFacts> {
  return parseReads(await ip.batchRead([], renderGatewayReads(), "reading links, addresses, routes and rules"));
}

function parseReads(stdout: string): GatewayFacts {
  try {
    return parseGatewayReads(stdout);
  } catch (e) {
    throw new StepError("reading the gateway network", (e as Error).message, { cause: e });
  }
}

function planNetwork(s: GatewayNetSettings, facts: GatewayFacts): GatewayNetPlan {
  try {
    return planGatewayNetwork(s, facts);
  } catch (e) {
    if (e instanceof GatewayPlanError) throw new StepError("planning the gateway network", e.message);
    throw e;
  }
}

/** The backend per the settings, with the reads its automatic choice made (a check can reuse them). */
export async function openFirewall(config: ResolvedConfig, runner: Runner, log: Logger): Promise<{ backend: FirewallBackend; known?: KnownReads }> {
  const s = config.settings;
  let choice;
  try {
    choice = await chooseFirewallBackend(s.FIREWALL_BACKEND, s.IPTABLES_NFT, runner);
  } catch (e) {
    throw new StepError("choosing the firewall backend", (e as Error).message, { cause: e });
  }
  log.debug(`firewall backend ${choice.backend} (${choice.why})`);
  if (choice.backend !== "iptables-legacy" && choice.facts?.foreignLegacy)
    log.warn("iptables-legacy holds another container's rules: a DROP there is not overridden by our accepts (set FIREWALL_BACKEND=iptables-legacy)");
  const backend = createFirewallBackend(choice.backend, runner);
  for (const w of backend.warnings) log.warn(w);
  return { backend, known: choice.known };
}

export async function selectFirewallBackend(config: ResolvedConfig, runner: Runner, log: Logger): Promise<FirewallBackend> {
  return (await openFirewall(config, runner, log)).backend;
}

/**
 * Fail closed: the previous ruleset stays wherever the transaction was refused, and on top of
 * that a minimal blocking ruleset (no forwarding, own output to loopback only) goes in. Throws.
 */
async function failClosed(backend: FirewallBackend, config: ResolvedConfig, log: Logger, failure: string): Promise<never> {
  try {
    await backend.apply(planBlockingFirewall(config.settings));
    log.error("firewall could not be applied: all forwarded and outgoing traffic is blocked (fail closed)");
  } catch (e) {
    failure += `\n  and the blocking fallback failed too: ${(e as Error).message}`;
  }
  throw new StepError(`applying the firewall (${backend.name})`, failure);
}

/**
 * Apply the parts of a ruleset that differ in `check` (a check made just before); fail closed
 * when the kill switch is on. Returns the parts applied, to be verified with verifyFirewall.
 */
export async function applyFirewall(backend: FirewallBackend, plan: FirewallPlan, check: FirewallCheck, config: ResolvedConfig, log: Logger): Promise<FirewallPart[]> {
  try {
    return await backend.apply(plan, check);
  } catch (e) {
    if (!plan.killSwitch) throw new StepError(`applying the firewall (${backend.name})`, (e as Error).message, { cause: e });
    return failClosed(backend, config, log, (e as Error).message);
  }
}

/** Read the applied parts back: they must be exactly the plan, or the firewall fails closed. */
export async function verifyFirewall(backend: FirewallBackend, plan: FirewallPlan, parts: readonly FirewallPart[], config: ResolvedConfig, log: Logger): Promise<void> {
  let failure: string;
  try {
    const problems = checkProblems(await backend.check(plan, { parts }));
    if (problems.length === 0) return;
    failure = `rules read back differ from the plan:\n  ${problems.join("\n  ")}`;
  } catch (e) {
    failure = (e as Error).message;
  }
  if (!plan.killSwitch) throw new StepError(`applying the firewall (${backend.name})`, failure);
  return failClosed(backend, config, log, failure);
}

/** The action a failed batch stopped at, with why it was planned (or the read that failed). */
function batchError(actions: NetAction[], e: unknown): string {
  const a = e instanceof IpBatchError ? actions[e.index] : undefined;
  return a ? `ip ${a.args.join(" ")} (${a.why}): ${(e as IpBatchError).detail}` : (e as Error).message;
}

/** Apply the network actions and read the state back in the same `ip` process: nothing may be left to do. */
async function applyNetwork(s: GatewayNetSettings, ip: Ip, net: GatewayNetPlan, log: Logger): Promise<void> {
  if (net.actions.length === 0) return; // the facts just read are the verification
  for (const a of net.actions) log.debug(`ip ${a.args.join(" ")}  # ${a.why}`);
  let out: string;
  try {
    out = await ip.batchRead(net.actions.map((a) => a.args), renderGatewayReads(), "configuring vxlan0, the policy rule and routes");
  } catch (e) {
    throw new StepError("configuring the gateway network", batchError(net.actions, e), { cause: e });
  }
  const after = planNetwork(s, parseReads(out));
  if (after.actions.length)
    throw new StepError("verifying the gateway network", `still differs after applying: ${after.actions.map((a) => `${a.why} (ip ${a.args.join(" ")})`).join("; ")}`);
}

export async function runGatewayInit(config: ResolvedConfig, deps: GatewayInitDeps): Promise<GatewayInitResult> {
  const { ip, log } = deps;
  const s = config.settings;

  // 1. Read and plan. The pod's network and our firewall objects are independent reads: one ip
  //    process side by side with the backend's (after its automatic choice, whose reads the
  //    check reuses). Planning fails before anything is changed.
  const netRead = readGatewayFacts(ip);
  netRead.catch(() => undefined); // awaited below; this keeps a failure from counting as unhandled if planning throws first
  const fwPlan = planFirewall(s, config.nat);
  for (const w of fwPlan.warnings) log.warn(w);
  const firewallRead = (async () => {
    const { backend, known } = deps.firewall ? { backend: await deps.firewall(), known: undefined } : await openFirewall(config, deps.runner, log);
    return { backend, check: await backend.check(fwPlan, { known }) };
  })();
  const [net, { backend, check }] = await Promise.all([netRead.then((f) => planNetwork(s, f)), firewallRead]);
  for (const w of net.warnings) log.warn(w);

  // 2. Firewall first: forwarding must never be on without the kill switch in place. A part
  //    already exactly the plan is left alone (its read was the verification), so a re-run
  //    changes no rule and its counters keep counting.
  const differs = checkProblems(check);
  for (const p of differs) log.debug(`firewall: ${p}`);
  const applied = differs.length ? await applyFirewall(backend, fwPlan, check, config, log) : [];

  // 3. Read back what was applied, side by side with the network changes (links, addresses,
  //    policy rule, routes: only what differs, applied and read back in one ip process). The
  //    restore that succeeded already put the kill switch in; if the read back finds the rules
  //    differ, the blocking ruleset goes in, and forwarding (step 4) is never turned on.
  const [verified, network] = await Promise.allSettled([
    applied.length ? verifyFirewall(backend, fwPlan, applied, config, log) : undefined,
    applyNetwork(s, ip, net, log),
  ]);
  if (verified.status === "rejected") throw verified.reason;
  if (network.status === "rejected") throw network.reason;

  // 4. IPv4 forwarding.
  const forwardingChanged = ensureSysctl(
    deps.sysctl, IP_FORWARD, "1", "enabling IPv4 forwarding",
    "gateway-init needs a privileged container (or allow the unsafe sysctl net.ipv4.ip_forward and set it in the pod's securityContext.sysctls)",
  );

  const fwState = applied.length ? `applied ${applied.join(", ")}` : "already as planned";
  log.info(`gateway ready (${net.actions.length ? `${net.actions.length} network changes` : "network already as planned"}, firewall ${backend.name} ${fwState})`);
  for (const line of [...summarizeGatewayNetwork(net), ...summarizeFirewall(fwPlan)]) log.info(line);
  return { backend: backend.name, network: net, firewall: fwPlan, networkChanges: net.actions.length, firewallApplied: applied, forwardingChanged };
}
