// Resolving the gateway's Service name through the cluster DNS servers named in the settings,
// never through /etc/resolv.conf: client-init runs while the pod's routes are being rewritten, and
// some images have no /etc at all. One A query per server over a connected UDP socket
// (sys/udp-query.ts), decoded by core/client/dns-wire.ts: node:dns's Resolver did the same through
// c-ares, whose loading cost every client-init a few ms of CPU.
import { DNS_CLASS_IN, DNS_TYPE_A, decodeDnsAReply, encodeDnsQuery, rcodeName, sameDnsQuestion, type DnsAReply } from "../core/client/dns-wire.ts";
import { isIpv4 as isIPv4 } from "../core/net/ipv4.ts";
import { isIpv6Literal } from "../core/net/ipv6.ts";
import type { Clock } from "./clock.ts";
import { realClock } from "./clock.ts";
import type { Logger } from "./log.ts";
import { udpQuery } from "./udp-query.ts";

export interface ResolveGatewayOptions {
  /** Cluster DNS servers as configured; IPv6 ones are skipped (the pod's route plan is IPv4). */
  servers: readonly string[];
  /** Stop retrying after this long (ms, by the clock). Default 30 s. */
  deadlineMs?: number;
  /** Per-query timeout in ms. Default 1000. */
  timeoutMs?: number;
  clock?: Clock;
  signal?: AbortSignal;
  log?: Logger;
  /** The lookup itself (tests replace it); default asks `server` with lookupA. */
  lookup?: (name: string, server: string, timeoutMs: number) => Promise<string[]>;
}

export interface ResolvedGateway {
  address: string;
  /** "literal" when GATEWAY_NAME was an IP address, else the server that answered. */
  via: string;
  /** Every address the name had (a headless Service may have more than one). */
  all: string[];
  attempts: number;
}

/** c-ares's names for the failures (node:dns's codes, which the logs used before). */
const RCODE_ERRORS: Record<number, string> = { 1: "EFORMERR", 2: "ESERVFAIL", 3: "ENOTFOUND", 4: "ENOTIMP", 5: "EREFUSED" };

/**
 * Ask one server (port 53) for the A records of `name`, once, waiting at most timeoutMs. An empty
 * list when the name has none; throws an error whose `code` says why otherwise (ENOTFOUND for
 * NXDOMAIN, ETIMEOUT, ECONNREFUSED, ...).
 */
export async function lookupA(name: string, server: string, timeoutMs: number, port = 53): Promise<string[]> {
  const id = crypto.getRandomValues(new Uint16Array(1))[0]!;
  const query = encodeDnsQuery(id, { name, type: DNS_TYPE_A, class: DNS_CLASS_IN });
  const r = await udpQuery<DnsAReply>(server, port, query, {
    timeoutMs,
    accept: (datagram) => {
      const reply = decodeDnsAReply(datagram);
      return reply && reply.id === id && sameDnsQuestion(query, datagram) ? reply : undefined;
    },
  });
  const fail = (code: string, message: string) => Object.assign(new Error(`querying ${server} for ${name}: ${message}`), { code });
  if (r.kind === "timeout") throw fail("ETIMEOUT", `no answer within ${timeoutMs} ms`);
  if (r.kind === "aborted") throw fail("ECANCELLED", "aborted");
  if (r.kind === "error") throw fail(/\b(E[A-Z]+)\b/.exec(r.message)?.[1] ?? "EIO", r.message);
  const rcode = r.value.rcode;
  if (rcode !== 0) throw fail(RCODE_ERRORS[rcode] ?? rcodeName(rcode), rcodeName(rcode));
  return r.value.addresses;
}

export class GatewayResolveError extends Error {
  override name = "GatewayResolveError";
}

/**
 * Resolve GATEWAY_NAME to an IPv4 address. An IP literal is returned as is. Otherwise each IPv4
 * server is asked in turn; a round where none answered is retried after a backoff (100 ms doubling
 * to 2 s) until the deadline. NXDOMAIN is retried too: the Service may not exist yet when pods
 * start together with the gateway.
 */
export async function resolveGatewayAddress(name: string, opts: ResolveGatewayOptions): Promise<ResolvedGateway> {
  const literal = name.trim();
  if (isIPv4(literal)) return { address: literal, via: "literal", all: [literal], attempts: 0 };
  if (isIpv6Literal(literal)) throw new GatewayResolveError(`GATEWAY_NAME ${literal} is an IPv6 address; the overlay runs over IPv4`);
  if (literal === "") throw new GatewayResolveError("GATEWAY_NAME is empty (the webhook passes it as $gateway)");
  const servers = opts.servers.filter((s) => isIPv4(s));
  if (servers.length === 0)
    throw new GatewayResolveError(
      `cannot resolve ${literal}: K8S_DNS_IPS has no IPv4 server (${opts.servers.length ? opts.servers.join(" ") : "empty; the webhook passes it as $K8S_DNS_ips"})`,
    );
  const clock = opts.clock ?? realClock;
  const deadline = clock.now() + (opts.deadlineMs ?? 30_000);
  const timeoutMs = opts.timeoutMs ?? 1000;
  const lookup = opts.lookup ?? lookupA;
  let delay = 100;
  let attempts = 0;
  const lastErrors = new Map<string, string>();
  for (;;) {
    for (const server of servers) {
      if (opts.signal?.aborted) throw new GatewayResolveError(`resolving ${literal}: aborted`);
      attempts++;
      try {
        const all = (await lookup(literal, server, timeoutMs)).filter((a) => isIPv4(a));
        if (all.length > 0) {
          if (all.length > 1) opts.log?.debug(`${literal} has ${all.length} addresses (${all.join(" ")}); using ${all[0]}`);
          return { address: all[0]!, via: server, all, attempts };
        }
        lastErrors.set(server, "no A record");
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        lastErrors.set(server, err.code ?? err.message);
      }
    }
    const left = deadline - clock.now();
    if (left <= 0) {
      const why = [...lastErrors].map(([s, e]) => `${s}: ${e}`).join(", ");
      throw new GatewayResolveError(`resolving ${literal} through ${servers.join(" ")} failed after ${attempts} queries (${why})`);
    }
    opts.log?.debug(`resolving ${literal}: ${[...lastErrors].map(([s, e]) => `${s}: ${e}`).join(", ")}; retrying in ${Math.min(delay, left)} ms`);
    await clock.sleep(Math.min(delay, left), opts.signal);
    delay = Math.min(delay * 2, 2000);
  }
}
