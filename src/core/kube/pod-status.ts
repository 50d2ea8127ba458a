// Decisions about one Pod object: has everything else in the pod finished (so the client
// sidecar may release its lease and exit), and is our own container a native sidecar (so
// the kubelet stops it and we must not watch at all).
import type { Container, ContainerStatus, Pod } from "./types.ts";

export interface PendingContainer {
  name: string;
  /** Why it does not count as finished: "running", "not started", "waiting: ContainerCreating", ... */
  state: string;
}

export interface PodDoneDecision {
  /** Every app container other than ours has terminated and will not be restarted. */
  done: boolean;
  /** The containers that keep the answer at false, in spec order. */
  pending: PendingContainer[];
  /** Our container is neither in spec.containers nor in spec.initContainers (CONTAINER_NAME wrong?). */
  ownMissing: boolean;
  /** One line for logs: "done: app exited 0, worker exited 1" or "waiting for app (running)". */
  summary: string;
}

/**
 * The pod-level restart policy; the API server always fills it in, and its default is
 * Always, so an object without it is treated as Always.
 */
function restartPolicy(pod: Pod): string {
  return pod.spec?.restartPolicy ?? "Always";
}

/**
 * Whether a terminated container stays terminated. The kubelet restarts a container that
 * exited when the pod's restartPolicy is Always, or OnFailure and it exited non-zero; only
 * the other cases are final (a Job with `Never`, or `OnFailure` and exit 0).
 */
function terminatedForGood(policy: string, exitCode: number | undefined): boolean {
  if (policy === "Never") return true;
  if (policy === "OnFailure") return exitCode === 0;
  return false;
}

function describeState(s: ContainerStatus | undefined, policy: string): { finished: boolean; text: string } {
  const st = s?.state;
  if (!s || !st || (!st.running && !st.waiting && !st.terminated)) return { finished: false, text: "not started" };
  if (st.terminated) {
    const code = st.terminated.exitCode;
    const text = `exited ${code ?? "?"}${st.terminated.reason ? ` (${st.terminated.reason})` : ""}`;
    if (terminatedForGood(policy, code)) return { finished: true, text };
    return { finished: false, text: `${text}, will be restarted (restartPolicy ${policy})` };
  }
  if (st.running) return { finished: false, text: "running" };
  return { finished: false, text: `waiting${st.waiting?.reason ? `: ${st.waiting.reason}` : ""}` };
}

/**
 * Whether every container of the pod other than `ownContainer` has terminated for good.
 * Init containers never count (they ran before the app, or are native sidecars that the
 * kubelet stops after the app containers). A container listed in spec but not yet in
 * status, or with no state, or waiting, has not terminated. A pod whose phase is already
 * Succeeded or Failed is done whatever its statuses say.
 */
export function decidePodDone(pod: Pod, ownContainer: string): PodDoneDecision {
  const policy = restartPolicy(pod);
  const specContainers: Container[] = pod.spec?.containers ?? [];
  // Without a spec (a trimmed object), the statuses are all we know.
  const names = specContainers.length > 0 ? specContainers.map((c) => c.name) : (pod.status?.containerStatuses ?? []).map((s) => s.name);
  const inInit = (pod.spec?.initContainers ?? []).some((c) => c.name === ownContainer);
  const ownMissing = !names.includes(ownContainer) && !inInit;
  const statuses = new Map((pod.status?.containerStatuses ?? []).map((s) => [s.name, s]));
  const phase = pod.status?.phase;
  const phaseDone = phase === "Succeeded" || phase === "Failed";

  const pending: PendingContainer[] = [];
  const finished: string[] = [];
  for (const name of names) {
    if (name === ownContainer) continue;
    const d = describeState(statuses.get(name), policy);
    if (d.finished || phaseDone) finished.push(`${name} ${d.text}`);
    else pending.push({ name, state: d.text });
  }
  const done = pending.length === 0;
  let summary: string;
  if (phaseDone) summary = `done: pod phase ${phase}`;
  else if (done) summary = finished.length ? `done: ${finished.join(", ")}` : "done: no other containers in the pod";
  else summary = `waiting for ${pending.map((p) => `${p.name} (${p.state})`).join(", ")}`;
  return { done, pending, ownMissing, summary };
}

/**
 * Our container is a native sidecar: an init container with restartPolicy Always (what the
 * admission webhook's --sidecarAsInit injects). The kubelet terminates those itself once the
 * app containers have finished, so watching the API would only add load.
 */
export function isNativeSidecar(pod: Pod, ownContainer: string): boolean {
  return (pod.spec?.initContainers ?? []).some((c) => c.name === ownContainer && c.restartPolicy === "Always");
}

/** Every container name of the pod, app and init. */
function podContainerNames(pod: Pod): string[] {
  return [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].map((c) => c.name);
}

export interface OwnContainer {
  name: string;
  /** Why CONTAINER_NAME was used or ignored, for one log line; undefined when nothing to say. */
  note?: { level: "warn" | "debug"; message: string };
}

/**
 * Which container of `pod` is ours (issue 13 §7): POD_GATEWAY_CONTAINER_NAME when set; else
 * CONTAINER_NAME, but only when it names a container of this pod (a warning says it was used);
 * else the webhook's gateway-sidecar.
 */
export function pickOwnContainer(pod: Pod, cfg: { containerName: string; containerNameExplicit: boolean; genericContainerName?: string }): OwnContainer {
  if (cfg.containerNameExplicit || cfg.genericContainerName === undefined) return { name: cfg.containerName };
  const generic = cfg.genericContainerName;
  if (generic === cfg.containerName) return { name: generic };
  if (podContainerNames(pod).includes(generic)) {
    return {
      name: generic,
      note: {
        level: "warn",
        message: `using CONTAINER_NAME=${generic} as this sidecar's container name because it names a container of this pod; set POD_GATEWAY_CONTAINER_NAME instead (CONTAINER_NAME is a generic variable other software sets)`,
      },
    };
  }
  return {
    name: cfg.containerName,
    note: { level: "debug", message: `CONTAINER_NAME=${generic} is not a container of this pod: ignored, using ${cfg.containerName} (set POD_GATEWAY_CONTAINER_NAME to name this sidecar's container)` },
  };
}

/**
 * A pod whose restartPolicy is Always (every Deployment's, StatefulSet's, DaemonSet's pod; the
 * API's default) never completes: its containers are restarted whatever their exit code.
 */
export function neverCompletes(pod: Pod): boolean {
  return (pod.spec?.restartPolicy ?? "Always") === "Always";
}
