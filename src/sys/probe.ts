// The gateway liveness probe through the tunnel: a UDP DNS query to the gateway's
// overlay address (<net>.1:53): it needs no privileges and exercises exactly what clients depend
// on (the VXLAN path, the gateway's ARP entry for us, its DNS service). Any answer, whatever its
// rcode, means "alive".
import { DNS_CLASS_CH, DNS_TYPE_TXT, decodeDnsReplyHeader, encodeDnsQuery, rcodeName } from "../core/client/dns-wire.ts";
import type { Clock } from "./clock.ts";
import { realClock } from "./clock.ts";
import { udpQuery } from "./udp-query.ts";

/**
 * The question asked: `version.bind` CHAOS TXT. dnsmasq answers it from its own state and never
 * forwards it, so the probe stays cheap and does not fail when only the VPN (dnsmasq's upstream)
 * is down — that is the gateway's business, not a reason for the client to re-resolve it.
 */
export const PROBE_QUESTION = { name: "version.bind", type: DNS_TYPE_TXT, class: DNS_CLASS_CH } as const;

export type DnsProbeResult =
  | { alive: true; rttMs: number; rcode: string }
  | { alive: false; reason: "timeout" | "error" | "aborted"; detail: string };

export interface DnsProbeOptions {
  port?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Query id source (tests pin it); random by default. */
  randomId?: () => number;
}

/** One DNS query to ip:port; resolves (never rejects) with what happened. */
export async function probeDns(ip: string, opts: DnsProbeOptions = {}): Promise<DnsProbeResult> {
  const port = opts.port ?? 53;
  const timeoutMs = opts.timeoutMs ?? 1000;
  const id = (opts.randomId ?? (() => crypto.getRandomValues(new Uint16Array(1))[0]!))() & 0xffff;
  const query = encodeDnsQuery(id, PROBE_QUESTION);
  const started = performance.now();
  const r = await udpQuery(ip, port, query, {
    timeoutMs,
    signal: opts.signal,
    accept: (datagram) => {
      const h = decodeDnsReplyHeader(datagram);
      return h && h.id === id ? h : undefined; // anything else is not our answer: keep waiting
    },
  });
  switch (r.kind) {
    case "answer":
      return { alive: true, rttMs: performance.now() - started, rcode: rcodeName(r.value.rcode) };
    case "timeout":
      return { alive: false, reason: "timeout", detail: `no DNS answer from ${ip}:${port} within ${timeoutMs} ms` };
    case "aborted":
      return { alive: false, reason: "aborted", detail: "probe aborted" };
    case "error":
      return { alive: false, reason: "error", detail: `DNS probe of ${ip}:${port}: ${r.message}` };
  }
}

export interface ProbeUntilOptions extends DnsProbeOptions {
  /** Give up after this long (ms, by the clock). */
  deadlineMs: number;
  clock?: Clock;
  /** First per-attempt timeout; doubles each attempt up to maxTimeoutMs. */
  firstTimeoutMs?: number;
  maxTimeoutMs?: number;
}

/**
 * Probe until the gateway answers or the deadline passes. The first attempts are short: the very
 * first packet waits for ARP through the tunnel, and a lost one should cost milliseconds, not a second.
 */
export async function probeDnsUntil(
  ip: string,
  opts: ProbeUntilOptions,
): Promise<{ result: DnsProbeResult; attempts: number }> {
  const clock = opts.clock ?? realClock;
  const start = clock.now();
  let timeout = opts.firstTimeoutMs ?? 200;
  const maxTimeout = opts.maxTimeoutMs ?? 1000;
  let attempts = 0;
  for (;;) {
    const left = opts.deadlineMs - (clock.now() - start);
    attempts++;
    const result = await probeDns(ip, { ...opts, timeoutMs: Math.max(1, Math.min(timeout, left)) });
    if (result.alive || result.reason === "aborted") return { result, attempts };
    const remaining = opts.deadlineMs - (clock.now() - start);
    if (remaining <= 0) return { result, attempts };
    // An error (e.g. ICMP port unreachable) returns at once: pause so we do not spin.
    if (result.reason === "error") await clock.sleep(Math.min(timeout, remaining), opts.signal);
    if (opts.signal?.aborted) return { result: { alive: false, reason: "aborted", detail: "probe aborted" }, attempts };
    timeout = Math.min(timeout * 2, maxTimeout);
  }
}
