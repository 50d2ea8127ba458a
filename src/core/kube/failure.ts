// What to do when a request to the Kubernetes API fails, and how long to wait before the
// next try. The sidecar must never end early because of the API: only a refusal (RBAC
// missing) stops the asking; everything else is retried with capped exponential backoff.
import { PodGatewayError } from "../errors.ts";
import type { Status } from "./types.ts";
import { excerpt } from "./watch.ts";

export type ApiFailure =
  /** The server answered with a non-2xx status (body decoded when it was a Status). */
  | { kind: "http"; code: number; status?: Status }
  /** A watch stream sent an ERROR event (410 Gone: our resourceVersion is too old). */
  | { kind: "watch-error"; status: Status }
  /** No answer (or no more stream data) within the deadline. */
  | { kind: "timeout"; afterMs: number }
  /** Certificate verification or handshake failed: wrong CA, name/IP not in the SAN. */
  | { kind: "tls"; detail: string }
  /** Connection refused/reset, DNS, unreachable. */
  | { kind: "network"; detail: string }
  /** A 3xx: redirects are never followed (the token must not go elsewhere, the answer must come from the API server). */
  | { kind: "redirect"; code: number; location: string | undefined }
  /** 2xx with a body that is not what the API sends (not a Pod, over the size limit, not UTF-8). */
  | { kind: "bad-response"; detail: string }
  /** The service-account token file could not be read (rotating, unmounted). */
  | { kind: "token"; detail: string };

export type FailureAction =
  /** 401/403 on GET: warn once and stop asking; routing goes on. */
  | "forbidden"
  /** Try the same request again after a backoff delay. */
  | "retry"
  /**
   * 410 Gone: our resourceVersion was compacted away. Watch again without one: the server
   * then sends the pod's current state as a synthetic ADDED event (a LIST would need the
   * "list" verb, which we deliberately do not ask for; a GET returns the pod's own, possibly
   * just as old, resourceVersion).
   */
  | "relist"
  /** Start over with a GET after a backoff delay, then watch again. */
  | "restart"
  /** Watching is not allowed or not supported, but GET works: poll instead. */
  | "poll";

export type ApiRequest = "get" | "watch";

/** The decision table. */
export function decideOnFailure(request: ApiRequest, f: ApiFailure): FailureAction {
  const code = f.kind === "http" ? f.code : f.kind === "watch-error" ? (f.status.code ?? 0) : 0;
  if (request === "get") {
    if (f.kind === "http" && (code === 401 || code === 403)) return "forbidden";
    return "retry";
  }
  // watch
  if (f.kind === "watch-error" || f.kind === "http") {
    if (code === 410) return "relist"; // Gone: resourceVersion compacted away
    // 403: a Role with get but not watch. 405/501: a proxy or server without watch.
    if (f.kind === "http" && (code === 403 || code === 405 || code === 501)) return "poll";
    // 401 (token now refused) and 404 (pod gone): let the GET decide what it means.
    if (code === 401 || code === 404) return "restart";
    // An ERROR event other than 410 (e.g. 500 "internal error") ends the stream: start over.
    if (f.kind === "watch-error") return "restart";
  }
  return "retry";
}

export function describeFailure(f: ApiFailure): string {
  switch (f.kind) {
    case "http":
      return `HTTP ${f.code}${f.status?.reason ? ` ${f.status.reason}` : ""}${f.status?.message ? `: ${f.status.message}` : ""}`;
    case "watch-error":
      return `watch ERROR event ${f.status.code ?? "?"}${f.status.reason ? ` ${f.status.reason}` : ""}${f.status.message ? `: ${f.status.message}` : ""}`;
    case "timeout":
      return `no answer within ${f.afterMs} ms`;
    case "tls":
      return `TLS verification failed (${f.detail})`;
    case "network":
      return `network error (${f.detail})`;
    case "redirect":
      return `HTTP ${f.code} redirect${f.location ? ` to ${excerpt(f.location, 120)}` : ""}: redirects are never followed`;
    case "bad-response":
      return `unexpected response (${f.detail})`;
    case "token":
      return `reading the service-account token: ${f.detail}`;
  }
}

export const RBAC_HINT =
  "grant the pod's service account a Role with verbs get and watch on pods in its namespace " +
  "(see config/kubernetes/rbac.yaml)";

/** The one warning logged when the API refuses us; names the missing Role. */
export function forbiddenMessage(namespace: string, name: string, f: ApiFailure): string {
  return `the Kubernetes API refused to get pod ${namespace}/${name}: ${describeFailure(f)}; ` +
    `${RBAC_HINT}. Until then this sidecar will not exit when the pod's other containers finish (routing is unaffected).`;
}

export interface BackoffPolicy {
  /** Delay after the first failure. */
  initialMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
  /** Growth per consecutive failure. */
  factor: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, factor: 2 };

/**
 * Delay before retry number `attempt` (1 = after the first failure): initial·factor^(n-1),
 * capped, then spread over [50 %, 100 %] of that by `random` in [0, 1) so the sidecars of
 * many Job pods do not all come back to a recovering API server in the same instant.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random = 1): number {
  const n = Math.max(1, Math.floor(attempt));
  const raw = Math.min(policy.maxMs, policy.initialMs * Math.pow(policy.factor, n - 1));
  const r = Math.min(1, Math.max(0, random));
  return Math.round(raw * (0.5 + 0.5 * r));
}

/** Exit codes of `check-done` beyond 0 (done), 1 (not done) and 2 (configuration). */
export const KubeExitCode = {
  /** The API refused us (401/403): the RBAC Role or binding is missing. */
  forbidden: 4,
  /** The API could not be asked or answered wrongly: network, TLS, timeout, 404, 5xx, a redirect, a body that is not a Pod or too large. */
  api: 5,
} as const;

/** Turn what fetch threw into a failure (the caller has ruled out its own abort). */
export function failureFromFetchError(e: { name?: string; code?: unknown; message?: string }, timeoutMs: number): ApiFailure {
  const name = e.name ?? "";
  const code = typeof e.code === "string" ? e.code : "";
  const message = e.message ?? String(e);
  if (name === "TimeoutError" || name === "AbortError") return { kind: "timeout", afterMs: timeoutMs };
  // Bun reports OpenSSL's verify codes (UNABLE_TO_VERIFY_LEAF_SIGNATURE, SELF_SIGNED_CERT_IN_CHAIN,
  // CERT_HAS_EXPIRED, ...) and Node's ERR_TLS_* codes.
  if (/CERT|TLS|SSL|UNABLE_TO_(GET|VERIFY)|HANDSHAKE/i.test(code) || /certificate|handshake/i.test(message)) {
    return { kind: "tls", detail: code || message };
  }
  return { kind: "network", detail: code ? `${code}: ${message.replace(/^\S+: /, "")}` : message };
}

/** A request to the API failed; `check-done` turns it into exit code 4 or 5. */
export class KubeApiError extends PodGatewayError {
  override name = "KubeApiError";
  override readonly exitCode: number;
  constructor(readonly operation: string, readonly failure: ApiFailure) {
    super(`${operation}: ${describeFailure(failure)}`);
    this.exitCode = failure.kind === "http" && (failure.code === 401 || failure.code === 403) ? KubeExitCode.forbidden : KubeExitCode.api;
  }
}
