// The client sidecar's telemetry: the status socket `pod-gateway health` asks (always on: a few
// hundred bytes of state and one listening socket), and /metrics when CLIENT_METRICS_PORT is set
// (the server's code is imported only then). Feeds on the driver's monitor calls.
import { ISOLATION_PROBES_V4, ISOLATION_PROBES_V6 } from "../core/client/constants.ts";
import { decideIsolation } from "../core/client/isolation.ts";
import type { HealthQuestion } from "../core/health.ts";
import { ClientMonitor } from "../core/metrics/client.ts";
import { gatewayOverlayIp } from "../core/net/vxlan.ts";
import type { Settings } from "../core/settings/types.ts";
import type { ClientHost } from "../roles/client-init.ts";
import type { SidecarMonitor } from "../roles/client-sidecar.ts";
import { commit, version } from "../version.ts";
import type { Clock } from "./clock.ts";
import type { Logger } from "./log.ts";
import { probeDns } from "./probe.ts";
import { serveStatus } from "./status-socket.ts";

export interface ClientTelemetry {
  monitor: SidecarMonitor;
  readonly metricsPort: number | undefined;
  close(): void;
}

export async function startClientTelemetry(o: { settings: Settings; host: ClientHost; clock: Clock; log: Logger; intervalMs: number; retryCount: number }): Promise<ClientTelemetry> {
  const { log, clock } = o;
  const overlayGw = gatewayOverlayIp(o.settings.VXLAN_IP_NETWORK);
  const mon = new ClientMonitor({ intervalMs: o.intervalMs, retryCount: o.retryCount, version, commit, metrics: o.settings.CLIENT_METRICS_PORT !== 0 }, clock.now());
  const status = async (q: HealthQuestion) => {
    if (q === "live") return mon.status(clock.now(), version);
    // Before the loop's first probe (one interval after start) readiness asks the gateway itself:
    // client-init proved it a moment ago, and a pod should not wait a probe period for that.
    if (!mon.answeredSinceStart) {
      const r = await probeDns(overlayGw, { timeoutMs: 500 });
      if (r.alive) mon.answered(clock.now());
    }
    // Readiness also proves isolation now: route lookups only, nothing sent, nothing changed.
    let isolation: { ok: boolean; detail: string };
    try {
      const { routes } = await o.host.readFactsAndRoutes([...ISOLATION_PROBES_V4, ...ISOLATION_PROBES_V6]);
      const v = decideIsolation(routes);
      isolation = { ok: v.isolated, detail: v.isolated ? "no route around the tunnel" : v.leaks.join("; ") };
    } catch (e) {
      isolation = { ok: false, detail: `route lookups failed: ${(e as Error).message}` };
    }
    return mon.status(clock.now(), version, isolation);
  };
  const closers: (() => void)[] = [];
  try {
    closers.push((await serveStatus("client-sidecar", status)).close);
  } catch (e) {
    // Routing matters more than the probe: keep going, the probe will say nobody answers.
    log.warn(`cannot serve the status socket for \`pod-gateway health\`: ${(e as Error).message}`);
  }
  let metricsPort: number | undefined;
  if (o.settings.CLIENT_METRICS_PORT !== 0) {
    const { serveMetrics } = await import("./metrics-server.ts");
    try {
      const srv = serveMetrics({ metrics: async () => mon.registry!.render(), status }, { hostname: o.settings.METRICS_BIND_ADDRESS, port: o.settings.CLIENT_METRICS_PORT });
      metricsPort = srv.port;
      closers.push(srv.stop);
      log.info(`metrics on http://${o.settings.METRICS_BIND_ADDRESS}:${srv.port}/metrics (also /healthz, /readyz)`);
    } catch (e) {
      log.warn(`cannot serve metrics on ${o.settings.METRICS_BIND_ADDRESS}:${o.settings.CLIENT_METRICS_PORT}: ${(e as Error).message}`);
    }
  }
  return {
    monitor: {
      probe: (now, alive, rttMs) => mon.probe(now, alive, rttMs),
      turn: (now, stats, lease) => mon.turn(now, stats, lease),
    },
    metricsPort,
    close: () => closers.forEach((c) => c()),
  };
}
