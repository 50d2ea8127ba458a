// gateway-sidecar: the gateway pod's main container (/bin/gateway_sidecar.sh in the chart).
import { defineCommand } from "./define.ts";
import { runGatewaySidecar } from "../roles/gateway-sidecar.ts";
import { ProcessRunner } from "../sys/exec.ts";
import { NetlinkGatewayNet } from "../sys/gateway-host.ts";
import { log } from "../sys/log.ts";
import { useNonBlockingStderr } from "../sys/stderr-sink.ts";
import { RANGES } from "../core/settings/schema.ts";
import { parseNumberOption, roleArgs } from "./args.ts";
import { startGatewayTelemetry } from "../sys/gateway-telemetry.ts";
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
    "dnsmasq-dir": {
      type: "string",
      description: "User dnsmasq drop-ins: *.conf files read after ours when the directory exists (default: $POD_GATEWAY_DNSMASQ_DIR or /etc/dnsmasq.d)",
      valueHint: "DIR",
    },
    "firewall-check-interval": {
      type: "string",
      description: "Seconds between checks that our firewall rules are still in place, 1 to 3600 (default: $POD_GATEWAY_FIREWALL_CHECK_INTERVAL or 5)",
      valueHint: "SECONDS",
    },
    "route-check-interval": {
      type: "string",
      description: "Seconds between looks at the VPN link and main's routes (file reads), 0.05 to 60; the kill switch's routing table is re-synced on a change and every 2 s (default: $POD_GATEWAY_ROUTE_CHECK_INTERVAL or 0.2)",
      valueHint: "SECONDS",
    },
    "new-pod-hold": {
      type: "string",
      description: "With no lease file at start (a new pod), answer no DHCP client dnsmasq does not know until this many seconds passed without a new client on vxlan0, 0 to 30; 0 turns the guard off (default: $POD_GATEWAY_NEW_POD_HOLD or 1.5)",
      valueHint: "SECONDS",
    },
    "max-failed-checks": {
      type: "string",
      description: "Consecutive firewall checks that fail (the kill switch stays closed meanwhile) before exiting non-zero, 1 to 1000 (default: $POD_GATEWAY_MAX_FAILED_CHECKS or 5)",
      valueHint: "N",
    },
  },
  async run({ args }) {
    // A long-lived role never stops for its log: a stalled stderr reader once stopped dnsmasq (src/core/log-queue.ts).
    useNonBlockingStderr();
    const logger = log().withTag("gateway-sidecar");
    const env = process.env;
    // One number syntax and a documented range for every flag (issue 12 §7).
    const numberOption = (name: string, envName: string, dflt: string, range: { min: number; max: number }, fraction: boolean) => {
      const flag = (args as Record<string, string | undefined>)[name];
      return parseNumberOption(flag !== undefined ? `--${name}` : `$${envName}`, flag ?? env[envName] ?? dflt, range, fraction ? { fraction: true, unit: "seconds" } : {});
    };
    const check = numberOption("firewall-check-interval", "POD_GATEWAY_FIREWALL_CHECK_INTERVAL", "5", RANGES.FIREWALL_CHECK_INTERVAL, true);
    const routeCheck = numberOption("route-check-interval", "POD_GATEWAY_ROUTE_CHECK_INTERVAL", "0.2", RANGES.ROUTE_CHECK_INTERVAL, true);
    const maxFailedChecks = numberOption("max-failed-checks", "POD_GATEWAY_MAX_FAILED_CHECKS", "5", RANGES.MAX_FAILED_CHECKS, false);
    const newPodHold = numberOption("new-pod-hold", "POD_GATEWAY_NEW_POD_HOLD", "1.5", RANGES.NEW_POD_HOLD, true);
    // The sidecar re-asserts firewall rules: it changes network state too, so it is checked like init.
    const config = prepareRole(args, logger, "gateway-sidecar");
    const runner = new ProcessRunner();
    const telemetry = await startGatewayTelemetry({ settings: config.settings, log: logger, intervalMs: check * 1000 });
    const code = await runGatewaySidecar(
      config,
      {
        runDir: args["run-dir"] ?? env.POD_GATEWAY_RUN_DIR ?? DEFAULT_RUN_DIR,
        resolvConf: args["resolv-conf"] ?? env.POD_GATEWAY_RESOLV_CONF ?? "/etc/resolv.conf",
        dnsmasqDir: args["dnsmasq-dir"] ?? env.POD_GATEWAY_DNSMASQ_DIR ?? "/etc/dnsmasq.d",
      },
      { runner, net: new NetlinkGatewayNet(), log: logger, firewallCheckSeconds: check, routeCheckSeconds: routeCheck, maxFailedChecks, newPodHoldSeconds: newPodHold, monitor: telemetry.monitor },
    );
    telemetry.close();
    return code;
  },
});
