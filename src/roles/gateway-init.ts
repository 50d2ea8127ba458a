// gateway-init: makes the gateway pod a router for the overlay. Reads facts, plans (pure),
// applies the firewall first (so forwarding never runs without the kill switch), then links,
// addresses, the policy rule and routes, then IPv4 forwarding; verifies everything it made.
// Every step converges: a second run on a correct pod changes nothing.
import { StepError } from "../core/errors.ts";
import type { BackendName } from "../core/firewall/backend.ts";
import { planBlockingFirewall, planFirewall, summarizeFirewall, type FirewallPlan } from "../core/firewall/model.ts";
import { GatewayPlanError, planGatewayNetwork, summarizeGatewayNetwork, type GatewayFacts, type GatewayNetPlan, type NetAction } from "../core/gateway/plan.ts";
import type { ResolvedConfig } from "../core/settings/types.ts";
import type { Runner } from "../sys/exec.ts";
import { chooseFirewallBackend, createFirewallBackend, type FirewallBackend } from "../sys/firewall.ts";
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
  forwardingChanged: boolean;
}

export const IP_FORWARD = "net.ipv4.ip_forward";

export async function readGatewayFacts(ip: Ip): Promise<GatewayFacts> {
  const [links, routes, rules] = await Promise.all([ip.addrs(), ip.routes(4, "main"), ip.rules(4)]);
  return { links, routes, rules };
}

export async function selectFirewallBackend(config: ResolvedConfig, runner: Runner, log: Logger): Promise<FirewallBackend> {
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
  return backend;
}

/** Apply a ruleset and read it back; fail closed when the kill switch is on. */
export async function applyFirewall(backend: FirewallBackend, plan: FirewallPlan, config: ResolvedConfig, log: Logger): Promise<void> {
  let failure: string | undefined;
  try {
    await backend.apply(plan);
    const problems = await backend.verify(plan);
    if (problems.length) failure = `rules read back differ from the plan:\n  ${problems.join("\n  ")}`;
  } catch (e) {
    failure = (e as Error).message;
  }
  if (failure === undefined) return;
  if (!plan.killSwitch) throw new StepError(`applying the firewall (${backend.name})`, failure);
  // Fail closed: the previous ruleset stays wherever the transaction was refused, and on top
  // of that a minimal blocking ruleset (no forwarding, own output to loopback only) goes in.
  try {
    await backend.apply(planBlockingFirewall(config.settings));
    log.error("firewall could not be applied: all forwarded and outgoing traffic is blocked (fail closed)");
  } catch (e) {
    failure += `\n  and the blocking fallback failed too: ${(e as Error).message}`;
  }
  throw new StepError(`applying the firewall (${backend.name})`, failure);
}

/** The action a failed batch stopped at, with why it was planned. */
function batchError(actions: NetAction[], e: unknown): string {
  const a = e instanceof IpBatchError ? actions[e.index] : undefined;
  return a ? `ip ${a.args.join(" ")} (${a.why}): ${(e as IpBatchError).detail}` : (e as Error).message;
}

export async function runGatewayInit(config: ResolvedConfig, deps: GatewayInitDeps): Promise<GatewayInitResult> {
  const { ip, log } = deps;
  const s = config.settings;

  // 1. Plan (pure) from the settings and the pod's current state.
  const fwPlan = planFirewall(s, config.nat);
  for (const w of fwPlan.warnings) log.warn(w);
  const plan = async (): Promise<GatewayNetPlan> => {
    const facts = await readGatewayFacts(ip);
    try {
      return planGatewayNetwork(s, facts);
    } catch (e) {
      if (e instanceof GatewayPlanError) throw new StepError("planning the gateway network", e.message);
      throw e;
    }
  };
  // Reading the pod's network and choosing the firewall backend are independent reads: overlap them.
  const [net, backend] = await Promise.all([
    plan(),
    deps.firewall ? deps.firewall() : selectFirewallBackend(config, deps.runner, log),
  ]);
  for (const w of net.warnings) log.warn(w);

  // 2. Firewall first: forwarding must never be on without the kill switch in place.
  await applyFirewall(backend, fwPlan, config, log);

  // 3. Links, addresses, policy rule, routes: only what differs, in one ip process.
  for (const a of net.actions) log.debug(`ip ${a.args.join(" ")}  # ${a.why}`);
  try {
    await ip.batch(net.actions.map((a) => a.args), "configuring vxlan0, the policy rule and routes");
  } catch (e) {
    throw new StepError("configuring the gateway network", batchError(net.actions, e), { cause: e });
  }

  // 4. IPv4 forwarding.
  const forwardingChanged = ensureSysctl(
    deps.sysctl, IP_FORWARD, "1", "enabling IPv4 forwarding",
    "gateway-init needs a privileged container (or allow the unsafe sysctl net.ipv4.ip_forward and set it in the pod's securityContext.sysctls)",
  );

  // 5. Verify: planning again over the new state must find nothing left to do.
  const after = await plan();
  if (after.actions.length)
    throw new StepError("verifying the gateway network", `still differs after applying: ${after.actions.map((a) => `${a.why} (ip ${a.args.join(" ")})`).join("; ")}`);

  log.info(`gateway ready (${net.actions.length ? `${net.actions.length} network changes` : "network already as planned"}, firewall ${backend.name})`);
  for (const line of [...summarizeGatewayNetwork(net), ...summarizeFirewall(fwPlan)]) log.info(line);
  return { backend: backend.name, network: net, firewall: fwPlan, networkChanges: net.actions.length, forwardingChanged };
}
