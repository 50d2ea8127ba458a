// gateway-sidecar: the gateway pod's main container (/bin/gateway_sidecar.sh in the chart).
import { defineCommand } from "citty";
import { UsageError } from "../core/errors.ts";
import { runGatewaySidecar } from "../roles/gateway-sidecar.ts";
import { ProcessRunner } from "../sys/exec.ts";
import { Ip } from "../sys/ip.ts";
import { log } from "../sys/log.ts";
import { startGatewayTelemetry } from "../sys/gateway-telemetry.ts";
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
  },
  async run({ args }) {
    const logger = log().withTag("gateway-sidecar");
    const env = process.env;
    const checkText = args["firewall-check-interval"] ?? env.POD_GATEWAY_FIREWALL_CHECK_INTERVAL ?? "5";
    const check = Number(checkText);
    if (!Number.isFinite(check) || check <= 0) throw new UsageError(`firewall check interval ${JSON.stringify(checkText)} is not a positive number of seconds`);
    // The sidecar re-asserts firewall rules: it changes network state too, so it is checked like init.
    const config = prepareRole(args, logger);
    const runner = new ProcessRunner();
    const telemetry = await startGatewayTelemetry({ settings: config.settings, log: logger, intervalMs: check * 1000 });
    const code = await runGatewaySidecar(
      config,
      {
        runDir: args["run-dir"] ?? env.POD_GATEWAY_RUN_DIR ?? DEFAULT_RUN_DIR,
        resolvConf: args["resolv-conf"] ?? env.POD_GATEWAY_RESOLV_CONF ?? "/etc/resolv.conf",
      },
      { runner, ip: new Ip(runner), log: logger, firewallCheckSeconds: check, monitor: telemetry.monitor },
    );
    telemetry.close();
    return code;
  },
});
