// The gateway sidecar's telemetry: the status socket `pod-gateway health` asks, and /metrics when
// GATEWAY_METRICS_PORT is set (the server's code is imported only then). Besides what the sidecar
// reports (firewall checks, upstream changes, dnsmasq), it looks every interval at the VPN link
// (/sys/class/net: no program, no netlink socket) and dnsmasq's lease file.
import { readFileSync } from "node:fs";
import type { HealthQuestion } from "../core/health.ts";
import { dhcpPoolSize, GatewayMonitor, parseDnsmasqLeases } from "../core/metrics/gateway.ts";
import { gatewayOverlayIp } from "../core/net/vxlan.ts";
import type { Settings } from "../core/settings/types.ts";
import type { GatewaySidecarMonitor } from "../roles/gateway-sidecar.ts";
import { commit, version } from "../version.ts";
import type { Logger } from "./log.ts";
import { probeDns } from "./probe.ts";
import { serveStatus } from "./status-socket.ts";

export interface GatewayTelemetry {
  monitor: GatewaySidecarMonitor;
  readonly metricsPort: number | undefined;
  close(): void;
}

/** IFF_UP in /sys/class/net/<if>/flags, and carrier: what `ip link` shows as UP and LOWER_UP. */
export function readLinkUp(name: string): boolean | undefined {
  let flags: number;
  try {
    flags = Number.parseInt(readFileSync(`/sys/class/net/${name}/flags`, "utf8").trim(), 16);
  } catch {
    return undefined; // no such link
  }
  if (!(flags & 1)) return false;
  try {
    return readFileSync(`/sys/class/net/${name}/carrier`, "utf8").trim() === "1";
  } catch {
    return false; // EINVAL while down
  }
}

export async function startGatewayTelemetry(o: { settings: Settings; log: Logger; intervalMs: number; now?: () => number }): Promise<GatewayTelemetry> {
  const { log, settings: s } = o;
  const now = o.now ?? Date.now;
  const mon = new GatewayMonitor({ intervalMs: o.intervalMs, poolSize: dhcpPoolSize(s.VXLAN_GATEWAY_FIRST_DYNAMIC_IP), version, commit }, now());
  const say = (n: { level: "info" | "warn"; text: string } | undefined) => n && log[n.level](n.text);
  let leaseFile: string | undefined;
  const look = () => {
    say(mon.vpnLink(s.VPN_INTERFACE, readLinkUp(s.VPN_INTERFACE) ?? false));
    if (!leaseFile) return;
    let text = "";
    try {
      text = readFileSync(leaseFile, "utf8");
    } catch {} // not written yet: no leases
    mon.leases(now(), parseDnsmasqLeases(text));
  };
  look();
  const timer = setInterval(look, o.intervalMs);
  timer.unref();
  const overlay = gatewayOverlayIp(s.VXLAN_IP_NETWORK);
  const status = async (q: HealthQuestion) => {
    if (q === "live") return mon.status(now(), version);
    // dnsmasq answering on the overlay's .1 is what every client needs (any rcode counts).
    const r = await probeDns(overlay, { timeoutMs: 500 });
    return mon.status(now(), version, { ok: r.alive, detail: r.alive ? `dnsmasq answered on ${overlay}:53 in ${r.rttMs.toFixed(1)} ms` : `dnsmasq does not answer on ${overlay}:53: ${r.detail}` });
  };
  const closers: (() => void)[] = [() => clearInterval(timer)];
  try {
    closers.push((await serveStatus("gateway-sidecar", status)).close);
  } catch (e) {
    log.warn(`cannot serve the status socket for \`pod-gateway health\`: ${(e as Error).message}`);
  }
  let metricsPort: number | undefined;
  if (s.GATEWAY_METRICS_PORT !== 0) {
    const { serveMetrics } = await import("./metrics-server.ts");
    try {
      const srv = serveMetrics(
        {
          metrics: async () => {
            look();
            mon.refresh();
            return mon.registry.render();
          },
          status,
        },
        { hostname: s.METRICS_BIND_ADDRESS, port: s.GATEWAY_METRICS_PORT },
      );
      metricsPort = srv.port;
      closers.push(srv.stop);
      log.info(`metrics on http://${s.METRICS_BIND_ADDRESS}:${srv.port}/metrics (also /healthz, /readyz)`);
    } catch (e) {
      log.warn(`cannot serve metrics on ${s.METRICS_BIND_ADDRESS}:${s.GATEWAY_METRICS_PORT}: ${(e as Error).message}`);
    }
  }
  return {
    monitor: {
      firewallChecked: (r) => say(mon.firewallChecked(now(), r)),
      upstreams: (servers, initial) => mon.upstreamChanged(servers, initial),
      dnsmasqStarted(child, file) {
        leaseFile = file;
        mon.dnsmasq(true);
        void child.exited.then(() => mon.dnsmasq(false));
      },
      dropReport: (r) => mon.dropReport(r.counter),
      duplicates: (c) => mon.duplicates(c),
      killSwitchDropped: (packets) => mon.killSwitchDropped(packets),
      watchConnections: (held) => mon.watchConnections(held),
    },
    metricsPort,
    close: () => closers.forEach((c) => c()),
  };
}
