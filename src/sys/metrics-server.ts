// The sidecars' HTTP endpoint, loaded (dynamic import) only when a *_METRICS_PORT is set:
// /metrics (Prometheus text exposition), /healthz and /readyz (the probe's decisions, 200 or 503).
import { decideHealth, type HealthQuestion, type SidecarStatus } from "../core/health.ts";
import { EXPOSITION_CONTENT_TYPE } from "../core/metrics/registry.ts";

export interface MetricsSource {
  /** The exposition text, refreshed for this scrape. */
  metrics(): Promise<string>;
  status(q: HealthQuestion): Promise<SidecarStatus>;
}

export interface MetricsServer {
  readonly port: number;
  stop(): void;
}

export function serveMetrics(source: MetricsSource, opts: { hostname: string; port: number }): MetricsServer {
  const health = async (q: HealthQuestion) => {
    const v = decideHealth(await source.status(q), q);
    return new Response(`${v.line}\n`, { status: v.ok ? 200 : 503, headers: { "content-type": "text/plain; charset=utf-8" } });
  };
  const server = Bun.serve({
    hostname: opts.hostname,
    port: opts.port,
    // Scrapes are small GETs; nothing else is served.
    maxRequestBodySize: 1024,
    async fetch(req) {
      if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
      const path = new URL(req.url).pathname;
      try {
        if (path === "/metrics") return new Response(await source.metrics(), { headers: { "content-type": EXPOSITION_CONTENT_TYPE } });
        if (path === "/healthz") return await health("live");
        if (path === "/readyz") return await health("ready");
      } catch (e) {
        return new Response(`${(e as Error).message}\n`, { status: 500 });
      }
      return new Response("not found: try /metrics, /healthz or /readyz\n", { status: 404 });
    },
  });
  return { port: server.port ?? opts.port, stop: () => server.stop(true) };
}
