// Talking to the Kubernetes API with plain fetch: in-cluster configuration, GET our pod, and
// the watch loop the client sidecar runs to exit once the rest of its pod has finished.
// Decisions (is the pod done, what a failure means, backoff) live in src/core/kube.
import { existsSync } from "node:fs";
import { hostname as osHostname } from "./hostname.ts";
import { joinPath as join } from "../core/path.ts";
import { ConfigError } from "../core/errors.ts";
import { pickServiceAccountDir, resolveInClusterConfig, type KubeConfig } from "../core/kube/config.ts";
import {
  backoffDelay,
  decideOnFailure,
  DEFAULT_BACKOFF,
  describeFailure,
  failureFromFetchError,
  forbiddenMessage,
  KubeApiError,
  type ApiFailure,
  type BackoffPolicy,
} from "../core/kube/failure.ts";
import { decidePodDone, isNativeSidecar, neverCompletes, pickOwnContainer, type OwnContainer } from "../core/kube/pod-status.ts";
import type { Pod } from "../core/kube/types.ts";
import { podPath, podWatchPath } from "../core/kube/url.ts";
import { LineSplitter, MAX_ERROR_BODY_BYTES, MAX_POD_BYTES, MAX_WATCH_LINE_BYTES, parsePod, parseStatus, parseWatchEvent } from "../core/kube/watch.ts";
import type { TriState } from "../core/settings/types.ts";
import { realClock, type Clock } from "./clock.ts";
import { readRegularFile } from "./files.ts";
import { log as rootLog, type Logger } from "./log.ts";

export type { KubeConfig } from "../core/kube/config.ts";
export { KubeApiError } from "../core/kube/failure.ts";

/** Limits on the service-account files (a projected token is about 1 KiB, a CA bundle a few KiB). */
export const MAX_TOKEN_BYTES = 64 * 1024;
export const MAX_CA_BYTES = 1024 * 1024;
const MAX_NAMESPACE_BYTES = 4096;

/** A service-account file: only a regular file (symlinks followed) of at most `max` bytes. */
function readServiceAccountFile(file: string, max: number): { text: string } | { problem: string } {
  const r = readRegularFile(file, max);
  if (!r.ok) return { problem: r.message };
  return { text: new TextDecoder().decode(r.bytes) };
}

/**
 * In-cluster configuration: KUBERNETES_SERVICE_HOST/_PORT, the service-account directory
 * (token, ca.crt, namespace), POD_NAME/POD_NAMESPACE (downward API) or the hostname and the
 * namespace file, CONTAINER_NAME or "gateway-sidecar". Throws ConfigError listing every
 * missing piece.
 */
export function readInClusterConfig(opts: { saDir: string; env?: Record<string, string | undefined>; hostname?: string }): KubeConfig {
  const env = opts.env ?? process.env;
  const token = readServiceAccountFile(join(opts.saDir, "token"), MAX_TOKEN_BYTES);
  const ca = readServiceAccountFile(join(opts.saDir, "ca.crt"), MAX_CA_BYTES);
  const ns = readServiceAccountFile(join(opts.saDir, "namespace"), MAX_NAMESPACE_BYTES);
  const r = resolveInClusterConfig({
    env,
    saDir: opts.saDir,
    tokenProblem: "problem" in token ? token.problem : undefined,
    ca: "text" in ca ? ca.text : undefined,
    caProblem: "problem" in ca ? ca.problem : undefined,
    namespaceFile: "text" in ns ? ns.text : undefined,
    namespaceProblem: "problem" in ns ? ns.problem : undefined,
    hostname: opts.hostname ?? osHostname(),
  });
  if (!r.ok) throw new ConfigError(r.issues);
  return r.config;
}

/**
 * Whether the sidecar should watch its pod. auto = on when a service-account token is
 * mounted (automountServiceAccountToken: false leaves none, and then asking would only fail).
 */
export function resolveCheckMode(setting: TriState, saDir: string): boolean {
  if (setting === "on") return true;
  if (setting === "off") return false;
  return existsSync(join(saDir, "token"));
}

/** Thrown when the caller's signal aborted a request (fetchPod rethrows it; watchUntilPodDone never does). */
class Aborted extends Error {
  override name = "AbortError";
  constructor() {
    super("aborted");
  }
}

/** A timer that aborts a request: first for the response headers, then per quiet stream gap. */
class Deadline {
  private readonly ctl = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  readonly signal: AbortSignal;
  ms = 0;
  constructor(ms: number, outer?: AbortSignal) {
    this.signal = outer ? AbortSignal.any([this.ctl.signal, outer]) : this.ctl.signal;
    this.reset(ms);
  }
  reset(ms: number): void {
    this.clear();
    this.ms = ms;
    this.timer = setTimeout(() => this.ctl.abort(new DOMException("deadline", "TimeoutError")), ms);
  }
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The token, re-read for every request (the kubelet rotates projected tokens). */
function readToken(cfg: KubeConfig): string {
  const r = readServiceAccountFile(cfg.tokenFile, MAX_TOKEN_BYTES);
  if ("problem" in r) throw new RequestFailed({ kind: "token", detail: `${cfg.tokenFile} ${r.problem}` });
  return r.text.trim();
}

class RequestFailed extends Error {
  constructor(readonly failure: ApiFailure) {
    super(describeFailure(failure));
  }
}

/**
 * Read a response body of at most `max` bytes after decoding (fetch undoes gzip/br chunk by chunk,
 * so a compression bomb or an endless body stops at the limit too); it must be UTF-8.
 * Over the limit: `undefined` when `overflow` is "undefined", else a bad-response failure.
 */
async function readBodyCapped(res: Response, max: number, what: string, deadline: Deadline, outer: AbortSignal | undefined): Promise<string> {
  const declared = Number(res.headers.get("content-length") ?? "");
  const tooLarge = (): RequestFailed => new RequestFailed({ kind: "bad-response", detail: `${what} larger than the limit of ${max} bytes` });
  // Content-Length counts encoded bytes: only a plain body can be refused before reading.
  if (!res.headers.get("content-encoding") && Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!res.body) return "";
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (outer?.aborted) throw new Aborted();
        throw new RequestFailed(failureFromFetchError(e as Error, deadline.ms));
      }
      if (chunk.done) break;
      size += chunk.value.length;
      if (size > max) throw tooLarge();
      parts.push(chunk.value);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(parts));
  } catch {
    throw new RequestFailed({ kind: "bad-response", detail: `${what} is not valid UTF-8` });
  }
}

/**
 * fetch with the token read now, the cluster CA, and a deadline; non-2xx becomes a failure.
 * Redirects are never followed: the token would go to wherever a Location points, and the
 * answer would no longer come from the API server we verified.
 */
async function apiFetch(cfg: KubeConfig, path: string, deadline: Deadline, outer: AbortSignal | undefined): Promise<Response> {
  const token = readToken(cfg);
  let res: Response;
  try {
    res = await fetch(cfg.apiBase + path, {
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
      // Always verified against the service-account CA; there is deliberately no insecure mode.
      tls: { ca: cfg.ca },
      redirect: "manual",
      signal: deadline.signal,
    });
  } catch (e) {
    if (outer?.aborted) throw new Aborted();
    throw new RequestFailed(failureFromFetchError(e as Error, deadline.ms));
  }
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel().catch(() => {});
    throw new RequestFailed({ kind: "redirect", code: res.status, location: res.headers.get("location") ?? undefined });
  }
  if (!res.ok) {
    let status;
    try {
      status = parseStatus(await readBodyCapped(res, MAX_ERROR_BODY_BYTES, "error body", deadline, outer));
    } catch (e) {
      if (e instanceof Aborted) throw e;
      // An error body that is too large, cut off or not UTF-8: the status code still says what happened.
    }
    throw new RequestFailed({ kind: "http", code: res.status, status });
  }
  return res;
}

export interface RequestOptions {
  /** Deadline for the whole GET (default 10 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** GET our pod. Throws KubeApiError (exit code 4 for 401/403, 5 otherwise). */
export async function fetchPod(cfg: KubeConfig, opts: RequestOptions = {}): Promise<Pod> {
  try {
    return await getPod(cfg, opts.timeoutMs ?? DEFAULT_TIMING.requestTimeoutMs, opts.signal);
  } catch (e) {
    if (e instanceof RequestFailed) throw new KubeApiError(`getting pod ${cfg.namespace}/${cfg.podName} from ${cfg.apiBase}`, e.failure);
    throw e;
  }
}

async function getPod(cfg: KubeConfig, timeoutMs: number, signal: AbortSignal | undefined): Promise<Pod> {
  const deadline = new Deadline(timeoutMs, signal);
  try {
    const res = await apiFetch(cfg, podPath(cfg.namespace, cfg.podName), deadline, signal);
    const body = await readBodyCapped(res, MAX_POD_BYTES, "pod body", deadline, signal);
    const p = parsePod(body);
    if (!p.ok) throw new RequestFailed({ kind: "bad-response", detail: p.error });
    return p.pod;
  } finally {
    deadline.clear();
  }
}

function logOwnNote(own: OwnContainer, logger: Logger): void {
  if (own.note?.level === "warn") logger.warn(own.note.message);
  else if (own.note) logger.debug(own.note.message);
}

/** One GET: has every container of our pod other than ours finished? */
export async function checkPodDone(cfg: KubeConfig, opts: RequestOptions & { log?: Logger } = {}): Promise<boolean> {
  const pod = await fetchPod(cfg, opts);
  const own = pickOwnContainer(pod, cfg);
  logOwnNote(own, opts.log ?? rootLog().withTag("kube"));
  return decidePodDone(pod, own.name).done;
}

export interface WatchTiming {
  /** Deadline for a GET, and for a watch's response headers. */
  requestTimeoutMs: number;
  /** Asked of the server: end each watch stream after this long (then we resume). */
  watchTimeoutSeconds: number;
  /** A stream quiet for longer than this is dead (a vanished server sends no FIN). */
  watchIdleTimeoutMs: number;
  /** How long past watchTimeoutSeconds a stream may stay open before we end it ourselves. */
  watchOverrunMs: number;
  /** GET interval when watching is not allowed. */
  pollIntervalMs: number;
  backoff: BackoffPolicy;
}

export const DEFAULT_TIMING: WatchTiming = {
  requestTimeoutMs: 10_000,
  watchTimeoutSeconds: 290,
  // The server ends the stream at watchTimeoutSeconds and sends bookmarks meanwhile.
  watchIdleTimeoutMs: 320_000,
  watchOverrunMs: 60_000,
  pollIntervalMs: 10_000,
  backoff: DEFAULT_BACKOFF,
};

export type WatchResult = "done" | "native-sidecar" | "forbidden" | "aborted" | "never-completes";

export interface WatchUntilDoneOptions {
  cfg: KubeConfig;
  clock?: Clock;
  signal?: AbortSignal;
  log?: Logger;
  timing?: Partial<WatchTiming>;
  /** Jitter source in [0, 1) for the backoff (tests pass () => 1 for exact delays). */
  random?: () => number;
  /**
   * SIDECAR_EXIT_WHEN_POD_DONE=auto: after the first GET, stop when the pod's restartPolicy is
   * Always — such a pod never completes, and a watch from every Deployment pod would only load
   * the API server. ("on" watches regardless.)
   */
  stopWhenNeverCompletes?: boolean;
}

type StreamEnd =
  | { kind: "decided"; result: "done" | "native-sidecar" }
  | { kind: "closed"; events: number }
  | { kind: "failed"; failure: ApiFailure };

/**
 * Wait until every other container of our pod has finished. GET the pod (state and
 * resourceVersion), then watch it from that resourceVersion, resuming from the last one seen
 * when the stream ends; on 410 Gone watch from the current state (the server sends the pod
 * as a synthetic ADDED event). When watching is not allowed (403) or not supported, poll
 * with GET instead. Network and API errors never end this: they are logged and retried with
 * capped backoff. Resolves:
 *  - "done": the pod's other containers have terminated for good;
 *  - "native-sidecar": our container is an init container with restartPolicy Always, the
 *    kubelet will stop it, nothing to watch;
 *  - "forbidden": GET was refused (401/403); one warning naming the Role needed was logged;
 *  - "aborted": `signal` fired.
 */
export async function watchUntilPodDone(opts: WatchUntilDoneOptions): Promise<WatchResult> {
  const { cfg, signal } = opts;
  const clock = opts.clock ?? realClock;
  const logger = opts.log ?? rootLog().withTag("kube");
  const t: WatchTiming = { ...DEFAULT_TIMING, ...opts.timing };
  const random = opts.random ?? Math.random;
  const podRef = `${cfg.namespace}/${cfg.podName}`;

  let failures = 0;
  let lastSummary = "";
  let warnedOwnMissing = false;
  let own: OwnContainer | undefined;
  let polling = false;

  const backoff = async (what: string, f: ApiFailure): Promise<void> => {
    failures++;
    const delay = backoffDelay(failures, t.backoff, random());
    const msg = `${what}: ${describeFailure(f)}; retrying in ${delay} ms (attempt ${failures})`;
    // The first failure of a streak is a warning; repeats stay at debug so an outage does not flood the log.
    if (failures === 1) logger.warn(msg);
    else logger.debug(msg);
    await clock.sleep(delay, signal);
  };
  const succeeded = (): void => {
    if (failures > 0) logger.info(`Kubernetes API answering again after ${failures} failed attempt(s)`);
    failures = 0;
  };
  /** Apply the decision to a pod object; a result ends the wait. */
  const evaluate = (pod: Pod): "done" | "native-sidecar" | undefined => {
    if (pod.metadata?.name !== undefined && pod.metadata.name !== cfg.podName) return undefined;
    // Which container is ours is settled on the first pod seen (the containers of a pod never change).
    if (!own) {
      own = pickOwnContainer(pod, cfg);
      logOwnNote(own, logger);
    }
    const ownName = own.name;
    if (isNativeSidecar(pod, ownName)) {
      logger.info(`container ${ownName} is a native sidecar (init container with restartPolicy Always): the kubelet stops it when pod ${podRef} is done; not watching`);
      return "native-sidecar";
    }
    const d = decidePodDone(pod, ownName);
    if (d.ownMissing && !warnedOwnMissing) {
      warnedOwnMissing = true;
      const names = (pod.spec?.containers ?? []).map((c) => c.name).join(", ");
      logger.warn(`container ${ownName} is not in pod ${podRef} (containers: ${names || "none"}): set POD_GATEWAY_CONTAINER_NAME to this container's name, or the pod never counts as done`);
    }
    if (d.summary !== lastSummary) {
      // The first state and the end at info; the steps between at debug.
      if (d.done || lastSummary === "") logger.info(`pod ${podRef}: ${d.summary}`);
      else logger.debug(`pod ${podRef}: ${d.summary}`);
      lastSummary = d.summary;
    }
    return d.done ? "done" : undefined;
  };

  /** One watch stream from `state.rv` (undefined: from the current state); events move it forward. */
  const watchStream = async (state: { rv: string | undefined }): Promise<StreamEnd> => {
    const deadline = new Deadline(t.requestTimeoutMs, signal);
    let events = 0;
    try {
      const path = podWatchPath(cfg.namespace, cfg.podName, { resourceVersion: state.rv, timeoutSeconds: t.watchTimeoutSeconds });
      const res = await apiFetch(cfg, path, deadline, signal);
      if (!res.body) return { kind: "failed", failure: { kind: "bad-response", detail: "watch response without a body" } };
      const reader = res.body.getReader();
      const lines = new LineSplitter(MAX_WATCH_LINE_BYTES);
      // The server ends a stream at timeoutSeconds; one that keeps it open (an endless stream of
      // blank lines, say) is ended here a little later and resumed like any closed stream.
      const endBy = performance.now() + t.watchTimeoutSeconds * 1000 + t.watchOverrunMs;
      try {
        for (;;) {
          if (performance.now() > endBy) return { kind: "closed", events };
          // (real time, like the Deadline's timers: the injected clock drives only our own sleeps)
          deadline.reset(Math.max(1, Math.min(t.watchIdleTimeoutMs, Math.ceil(endBy - performance.now()) + 1)));
          let chunk: Awaited<ReturnType<typeof reader.read>>;
          try {
            chunk = await reader.read();
          } catch (e) {
            if (signal?.aborted) throw new Aborted();
            if (performance.now() > endBy) return { kind: "closed", events };
            return { kind: "failed", failure: failureFromFetchError(e as Error, deadline.ms) };
          }
          if (chunk.done) return { kind: "closed", events };
          const split = lines.push(chunk.value);
          if (!split.ok) return { kind: "failed", failure: { kind: "bad-response", detail: split.error } };
          for (const line of split.lines) {
            const p = parseWatchEvent(line);
            if (!p.ok) return { kind: "failed", failure: { kind: "bad-response", detail: p.error } };
            const ev = p.event;
            if (ev.type === "ERROR") return { kind: "failed", failure: { kind: "watch-error", status: ev.object } };
            events++;
            const rv = ev.object.metadata?.resourceVersion;
            if (rv) state.rv = rv;
            if (ev.type === "BOOKMARK") continue;
            // A deleted pod has nothing left to wait for here; the GET that follows says what it means.
            if (ev.type === "DELETED") return { kind: "failed", failure: { kind: "http", code: 404 } };
            const r = evaluate(ev.object);
            if (r) return { kind: "decided", result: r };
          }
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
    } catch (e) {
      if (e instanceof Aborted || signal?.aborted) throw new Aborted();
      if (e instanceof RequestFailed) return { kind: "failed", failure: e.failure };
      throw e;
    } finally {
      deadline.clear();
    }
  };

  try {
    restart: for (;;) {
      if (signal?.aborted) return "aborted";
      let pod: Pod;
      try {
        pod = await getPod(cfg, t.requestTimeoutMs, signal);
      } catch (e) {
        if (e instanceof Aborted || signal?.aborted) return "aborted";
        if (!(e instanceof RequestFailed)) throw e;
        if (decideOnFailure("get", e.failure) === "forbidden") {
          logger.warn(forbiddenMessage(cfg.namespace, cfg.podName, e.failure));
          return "forbidden";
        }
        await backoff(`getting pod ${podRef}`, e.failure);
        continue restart;
      }
      succeeded();
      const r = evaluate(pod);
      if (r) return r;
      if (opts.stopWhenNeverCompletes && neverCompletes(pod)) {
        logger.info(`pod ${podRef} has restartPolicy ${pod.spec?.restartPolicy ?? "Always (the default)"}: it never completes, so this sidecar will not watch it (SIDECAR_EXIT_WHEN_POD_DONE=auto; set it to on to watch anyway)`);
        return "never-completes";
      }
      const rv = pod.metadata?.resourceVersion;
      if (polling || !rv) {
        await clock.sleep(t.pollIntervalMs, signal);
        continue restart;
      }
      const state: { rv: string | undefined } = { rv };
      let emptyCloses = 0;
      for (;;) {
        if (signal?.aborted) return "aborted";
        const end = await watchStream(state);
        if (end.kind === "decided") return end.result;
        if (end.kind === "closed") {
          succeeded();
          // The server ends streams at timeoutSeconds; resume at once. A server that keeps
          // closing streams without sending anything gets the backoff instead of a hot loop.
          emptyCloses = end.events > 0 ? 0 : emptyCloses + 1;
          logger.debug(`watch on pod ${podRef} ended after ${end.events} event(s); resuming from resourceVersion ${state.rv}`);
          if (emptyCloses > 1) await clock.sleep(backoffDelay(emptyCloses - 1, t.backoff, random()), signal);
          continue;
        }
        const action = decideOnFailure("watch", end.failure);
        if (action === "poll") {
          polling = true;
          logger.info(`watching pod ${podRef} is not possible (${describeFailure(end.failure)}); polling every ${Math.round(t.pollIntervalMs / 1000)} s instead (grant "watch" on pods to react at once)`);
          continue restart;
        }
        if (action === "relist") {
          // A server that answers 410 even to a watch from the current state gets the backoff, not a hot loop.
          if (state.rv === undefined) await backoff(`watching pod ${podRef}`, end.failure);
          else logger.debug(`watch on pod ${podRef}: resourceVersion ${state.rv} is too old (410 Gone); watching from the current state`);
          state.rv = undefined;
          continue;
        }
        if (action === "restart") {
          await backoff(`watching pod ${podRef}`, end.failure);
          continue restart;
        }
        await backoff(`watching pod ${podRef}`, end.failure);
      }
    }
  } catch (e) {
    if (e instanceof Aborted || signal?.aborted) return "aborted";
    throw e;
  }
}

export type PodDoneWatchResult = WatchResult | "off" | "unconfigured";

/**
 * What the client sidecar runs next to its routing loop: decide from the setting whether to
 * watch at all (auto: when a token is mounted), read the in-cluster configuration (a missing
 * piece is logged once and ends the watching, never the sidecar), then watchUntilPodDone.
 * "off": the setting (or auto without a token) says not to watch; "unconfigured": the
 * configuration is incomplete (e.g. KUBERNETES_SERVICE_HOST unset). On "done" the sidecar
 * releases its DHCP lease and exits 0; on any other result it just keeps routing.
 */
export async function watchPodDoneIfEnabled(opts: {
  setting: TriState;
  /** Default: $POD_GATEWAY_SERVICEACCOUNT_DIR or the kubelet's mount point. */
  saDir?: string;
  env?: Record<string, string | undefined>;
  clock?: Clock;
  signal?: AbortSignal;
  log?: Logger;
  timing?: Partial<WatchTiming>;
}): Promise<PodDoneWatchResult> {
  const env = opts.env ?? process.env;
  const logger = opts.log ?? rootLog().withTag("kube");
  const saDir = opts.saDir ?? pickServiceAccountDir(undefined, env);
  if (!resolveCheckMode(opts.setting, saDir)) {
    logger.debug(`not watching the pod (SIDECAR_EXIT_WHEN_POD_DONE=${opts.setting}${opts.setting === "auto" ? `, no token in ${saDir}` : ""})`);
    return "off";
  }
  let cfg: KubeConfig;
  try {
    cfg = readInClusterConfig({ saDir, env });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    logger.warn(`cannot ask the Kubernetes API whether the pod is done, so this sidecar will not exit on its own: ${e.message}`);
    return "unconfigured";
  }
  return watchUntilPodDone({ cfg, clock: opts.clock, signal: opts.signal, log: logger, timing: opts.timing, stopWhenNeverCompletes: opts.setting === "auto" });
}
