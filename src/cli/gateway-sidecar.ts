// gateway-sidecar: the gateway pod's main container (/bin/gateway_sidecar.sh in the chart).
import { defineCommand } from "citty";
import { UsageError } from "../core/errors.ts";
import { runGatewaySidecar } from "../roles/gateway-sidecar.ts";
import { ProcessRunner } from "../sys/exec.ts";
import { Ip } from "../sys/ip.ts";
import { log } from "../sys/log.ts";
import { roleArgs } from "./args.ts";
import { prepareRole } from "./role.ts";

export const DEFAULT_RUN_DIR = "/run/pod-gateway";

export default defineCommand({
  meta: {
    name: "gateway-sidecar",
    description: "Serve DHCP and DNS on vxlan0 with dnsmasq, keep its upstreams in sync with /etc/resolv.conf, guard the firewall",
  },
  args: {
    ...roleArgs,
    "run-dir": {
      type: "string",
      description: `Writable directory for dnsmasq's configuration and leases (default: $POD_GATEWAY_RUN_DIR or ${DEFAULT_RUN_DIR})`,
      valueHint: "DIR",
    },
    "resolv-conf": {
      type: "string",
      description: "The resolv.conf the VPN client rewrites (default: $POD_GATEWAY_RESOLV_CONF or /etc/resolv.conf)",
      valueHint: "FILE",
    },
    "firewall-check-interval": {
      type: "string",
      description: "Seconds between checks that our firewall rules are still in place (default: $POD_GATEWAY_FIREWALL_CHECK_INTERVAL or 5)",
      valueHint: "SECONDS",
    },
    "route-check-interval": {
      type: "string",
      description: "Seconds between looks at the VPN link and main's routes (file reads); the kill switch's routing table is re-synced on a change and every 2 s (default: $POD_GATEWAY_ROUTE_CHECK_INTERVAL or 0.2)",
      valueHint: "SECONDS",
    },
    "max-failed-checks": {
      type: "string",
      description: "Consecutive firewall checks that fail (the kill switch stays closed meanwhile) before exiting non-zero (default: $POD_GATEWAY_MAX_FAILED_CHECKS or 5)",
      valueHint: "N",
    },
  },
  async run({ args }) {
    const logger = log().withTag("gateway-sidecar");
    const env = process.env;
    const seconds = (what: string, text: string) => {
      const n = Number(text);
      if (!Number.isFinite(n) || n <= 0 || n > 86400) throw new UsageError(`${what} ${JSON.stringify(text)} is not a positive number of seconds (at most 86400)`);
      return n;
    };
    const check = seconds("firewall check interval", args["firewall-check-interval"] ?? env.POD_GATEWAY_FIREWALL_CHECK_INTERVAL ?? "5");
    const routeCheck = seconds("route check interval", args["route-check-interval"] ?? env.POD_GATEWAY_ROUTE_CHECK_INTERVAL ?? "0.2");
    const maxText = args["max-failed-checks"] ?? env.POD_GATEWAY_MAX_FAILED_CHECKS ?? "5";
    if (!/^[1-9]\d{0,5}$/.test(maxText)) throw new UsageError(`max failed checks ${JSON.stringify(maxText)} is not a whole number from 1 to 999999`);
    // The sidecar re-asserts firewall rules: it changes network state too, so it is checked like init.
    const config = prepareRole(args, logger);
    const runner = new ProcessRunner();
    return await runGatewaySidecar(
      config,
      {
        runDir: args["run-dir"] ?? env.POD_GATEWAY_RUN_DIR ?? DEFAULT_RUN_DIR,
        resolvConf: args["resolv-conf"] ?? env.POD_GATEWAY_RESOLV_CONF ?? "/etc/resolv.conf",
      },
      { runner, ip: new Ip(runner), log: logger, firewallCheckSeconds: check, routeCheckSeconds: routeCheck, maxFailedChecks: Number(maxText) },
    );
  },
});
