// `pod-gateway client-init` (and /bin/client_init.sh): the routed pod's init container.
// Loads and validates the configuration, checks it runs in a pod, then runs the role.
// Also exports what client-sidecar shares with it: the real deps and the role input.
import { defineCommand } from "./define.ts";
import { isIpv4 } from "../core/net/ipv4.ts";
import { hostname } from "../sys/hostname.ts";
import type { ConfigIssue } from "../core/errors.ts";
import type { ResolvedConfig } from "../core/settings/types.ts";
import { runClientInit, type ClientInput, type DhcpClient } from "../roles/client-init.ts";
import type { SidecarDeps } from "../roles/client-sidecar.ts";
import { realClock } from "../sys/clock.ts";
import { resolveGatewayAddress } from "../sys/dns.ts";
import { NetlinkClientHost } from "../sys/client-host.ts";
import { log, type Logger } from "../sys/log.ts";
import { probeDns, probeDnsUntil, type DnsProbeResult } from "../sys/probe.ts";
import { roleArgs } from "./args.ts";
import { prepareRole, type RoleArgs } from "./role.ts";

/** The DHCP client, loaded only in DHCP mode (static-mode pods never pay for it). */
const loadDhcp = () => import("../sys/dhcp-client.ts").then((m) => m.systemDhcpClient);
export const dhcpClient: DhcpClient = {
  acquire: async (id, o) => (await loadDhcp()).acquire(id, o),
  renew: async (lease, id, o) => (await loadDhcp()).renew(lease, id, o),
  release: async (lease, id) => (await loadDhcp()).release(lease, id),
};

const describeProbe = (r: DnsProbeResult): string => (r.alive ? `DNS ${r.rcode} in ${r.rttMs.toFixed(1)} ms` : r.detail);

/** What both client roles run against: rtnetlink (in-process), the DHCP client, DNS and the gateway probe. */
export function realClientDeps(logger: Logger): Omit<SidecarDeps, "watchPodDone"> {
  return {
    host: new NetlinkClientHost(),
    dhcp: dhcpClient,
    clock: realClock,
    log: logger,
    resolveGateway: (name, servers, o) => resolveGatewayAddress(name, { servers, deadlineMs: o.deadlineMs, signal: o.signal, log: logger }),
    async probeGateway(ip, o) {
      const { result, attempts } = await probeDnsUntil(ip, { deadlineMs: o.deadlineMs, signal: o.signal });
      return { alive: result.alive, attempts, detail: describeProbe(result) };
    },
    async probeOnce(ip, o) {
      const slow = o.slow;
      const timer = slow ? setTimeout(slow.then, slow.afterMs) : undefined;
      try {
        const r = await probeDns(ip, { timeoutMs: o.timeoutMs, signal: o.signal });
        return { alive: r.alive, detail: describeProbe(r), rttMs: r.alive ? r.rttMs : undefined };
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** POD_NAME (downward API) when set, else the hostname (which Kubernetes sets to the pod name). */
export function podNameFrom(env: Record<string, string | undefined>): string {
  return env.POD_NAME?.trim() || hostname();
}

/**
 * What the client roles need beyond the generic validation, checked before any change so a
 * missing $gateway or $K8S_DNS_ips is a configuration error (exit 2), not a failed step.
 */
export function clientConfigIssues(cfg: ResolvedConfig): ConfigIssue[] {
  const s = cfg.settings;
  const where = (k: "GATEWAY_NAME" | "K8S_DNS_IPS") => {
    const src = cfg.sources[k];
    return src.kind === "file" ? { file: src.file, line: src.line } : { file: src.kind === "env" ? `$${src.name}` : "defaults" };
  };
  const issues: ConfigIssue[] = [];
  if (s.GATEWAY_NAME.trim() === "")
    issues.push({ ...where("GATEWAY_NAME"), key: "GATEWAY_NAME", message: "is empty: set it, or pass the gateway's DNS name as $gateway (the admission webhook does)" });
  else if (!isIpv4(s.GATEWAY_NAME.trim()) && !s.K8S_DNS_IPS.some((d) => isIpv4(d)))
    issues.push({ ...where("K8S_DNS_IPS"), key: "K8S_DNS_IPS", message: `has no IPv4 server to resolve ${s.GATEWAY_NAME} with (the webhook passes them as $K8S_DNS_ips)` });
  return issues;
}

export function clientInput(cfg: ResolvedConfig, env: Record<string, string | undefined> = process.env): ClientInput {
  return {
    settings: cfg.settings,
    nat: cfg.nat,
    podName: podNameFrom(env),
    kubernetesServiceHost: env.KUBERNETES_SERVICE_HOST?.trim() || undefined,
  };
}

/** Steps 1 and 2 of both client roles: configuration (exit 2 on error) and host safety (exit 3). */
export function prepareClient(args: RoleArgs, logger: Logger, role: "client-init" | "client-sidecar" = "client-init"): ResolvedConfig {
  return prepareRole(args, logger, role, clientConfigIssues, podNameFrom(process.env));
}

export default defineCommand({
  meta: {
    name: "client-init",
    description:
      "Route this pod's traffic through the gateway pod: keep cluster traffic on eth0, remove the default routes, " +
      "create vxlan0, take the static (nat.conf) or DHCP address, and wait until the gateway answers. Needs NET_ADMIN and NET_RAW.",
  },
  args: { ...roleArgs },
  async run({ args }) {
    const logger = log().withTag("client-init");
    const started = performance.now();
    const cfg = prepareClient(args, logger);
    const input = clientInput(cfg);
    const r = await runClientInit(realClientDeps(logger), input);
    logger.info(
      `${r.address} (${r.mode}) via gateway pod ${r.gatewayPodIp}, ${r.changed} change(s), ${Math.round(performance.now() - started)} ms`,
    );
    logger.debug(`step times (ms): ${Object.entries(r.timings).map(([k, v]) => `${k} ${Math.round(v)}`).join(", ")}`);
    logger.info("Gateway ready and reachable");
    return 0;
  },
});
