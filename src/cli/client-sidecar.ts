// `pod-gateway client-sidecar` (and /bin/client_sidecar.sh): the routed pod's long-running
// container. Keeps the tunnel healthy and the lease renewed; SIGTERM/SIGINT exit 0 at once (the
// lease released only when the rest of the pod is done); with SIDECAR_EXIT_WHEN_POD_DONE it also
// exits when the rest of the pod finished.
import { defineCommand } from "./define.ts";
import { pickServiceAccountDir } from "../core/kube/config.ts";
import { runClientSidecar, sidecarPolicy, type SidecarDeps } from "../roles/client-sidecar.ts";
import { startClientTelemetry } from "../sys/client-telemetry.ts";
import { log, type Logger } from "../sys/log.ts";
import { useNonBlockingStderr } from "../sys/stderr-sink.ts";
import { parseNumberOption, roleArgs } from "./args.ts";
import { RANGES } from "../core/settings/schema.ts";
import { readRouteSignature } from "../sys/route-signature.ts";
import { openGatewayWatch } from "../sys/gateway-watch.ts";

/** The gateway's greeting is written on accept: 2 s covers a loaded node many times over; past it the connection is not a watch. */
const WATCH_GREETING_TIMEOUT_MS = 2000;
import { clientInput, prepareClient, realClientDeps } from "./client-init.ts";
import type { Settings } from "../core/settings/types.ts";

/** The Jobs check, when SIDECAR_EXIT_WHEN_POD_DONE asks for it; undefined when off or impossible. */
async function podDoneWatcher(settings: Settings, logger: Logger): Promise<SidecarDeps["watchPodDone"]> {
  if (settings.SIDECAR_EXIT_WHEN_POD_DONE === "off") return undefined;
  const kube = await import("../sys/kube.ts");
  const saDir = pickServiceAccountDir(undefined, process.env);
  if (!kube.resolveCheckMode(settings.SIDECAR_EXIT_WHEN_POD_DONE, saDir)) {
    logger.debug(`no service-account token in ${saDir}: not watching for the pod to finish`);
    return undefined;
  }
  let cfg;
  try {
    cfg = kube.readInClusterConfig({ saDir });
  } catch (e) {
    // Never end routing over this: the pod keeps working, only Jobs will not complete on their own.
    logger.warn(`cannot watch for the pod to finish (SIDECAR_EXIT_WHEN_POD_DONE=${settings.SIDECAR_EXIT_WHEN_POD_DONE}): ${(e as Error).message}`);
    return undefined;
  }
  return (signal) => kube.watchUntilPodDone({ cfg, signal, log: log().withTag("kube"), stopWhenNeverCompletes: settings.SIDECAR_EXIT_WHEN_POD_DONE === "auto" });
}

export default defineCommand({
  meta: {
    name: "client-sidecar",
    description:
      "Keep this pod's tunnel to the gateway healthy: probe it every CLIENT_PROBE_INTERVAL seconds, follow a gateway that moved, " +
      "re-initialise a lost tunnel, renew the DHCP lease (now on SIGUSR1), on SIGTERM release it only if the rest of the pod is done. Needs NET_ADMIN and NET_RAW.",
  },
  args: {
    ...roleArgs,
    "isolation-check-interval": {
      type: "string",
      description:
        "Seconds between re-checks that no route leads around the tunnel, 0.1 to 3600; also checked at the first probe after the main routing table changed (default: $POD_GATEWAY_ISOLATION_CHECK_INTERVAL or 30)",
      valueHint: "SECONDS",
    },
  },
  async run({ args }) {
    // A long-lived role never stops for its log: a stalled stderr reader once stopped dnsmasq (src/core/log-queue.ts).
    useNonBlockingStderr();
    const logger = log().withTag("client-sidecar");
    const flag = args["isolation-check-interval"];
    const isolationSeconds = parseNumberOption(
      flag !== undefined ? "--isolation-check-interval" : "$POD_GATEWAY_ISOLATION_CHECK_INTERVAL",
      flag ?? process.env.POD_GATEWAY_ISOLATION_CHECK_INTERVAL ?? "30",
      RANGES.ISOLATION_CHECK_INTERVAL,
      { fraction: true, unit: "seconds" },
    );
    const cfg = prepareClient(args, logger, "client-sidecar");
    const ctl = new AbortController();
    const onSignal = (sig: string) => () => {
      logger.info(`${sig}: stopping`);
      ctl.abort();
    };
    process.on("SIGTERM", onSignal("SIGTERM"));
    process.on("SIGINT", onSignal("SIGINT"));
    // SIGUSR1: renew the DHCP lease now (udhcpc's convention).
    const events = new EventTarget();
    process.on("SIGUSR1", () => events.dispatchEvent(new Event("renew")));
    const deps: SidecarDeps = {
      ...realClientDeps(logger),
      watchPodDone: await podDoneWatcher(cfg.settings, logger),
      routeSignature: () => readRouteSignature(""),
      openWatch: (ip, port, handlers) => openGatewayWatch(ip, port, WATCH_GREETING_TIMEOUT_MS, handlers),
    };
    const input = { ...clientInput(cfg), signal: ctl.signal, events, policy: { isolationIntervalMs: isolationSeconds * 1000 } };
    const policy = sidecarPolicy(input);
    const telemetry = await startClientTelemetry({ settings: cfg.settings, host: deps.host, clock: deps.clock, log: logger, intervalMs: policy.intervalMs, retryCount: policy.retryCount });
    const r = await runClientSidecar(deps, { ...input, monitor: telemetry.monitor });
    telemetry.close();
    logger.info(`exiting (${r.reason === "pod-done" ? "the pod's other containers finished" : "signal"}${r.released ? ", lease released" : ""})`);
    return 0;
  },
});
