// Fuzz targets (issue 12 §11) shared by test/unit/fuzz-decoders.test.ts (in process) and the
// isolated runs of test/helpers/fuzz.ts (in a limited child process). Each takes one input and
// returns a short description of the typed outcome — a result or the decoder's own error value —
// and throws for anything else: an exception of another kind, or a result that breaks its type.
import { DecodeError, decodeIpUdp, decodeMessage } from "../../src/core/dhcp/codec.ts";
import { leaseFromAck } from "../../src/core/dhcp/machine.ts";
import { describeFailure } from "../../src/core/kube/failure.ts";
import { decidePodDone, isNativeSidecar } from "../../src/core/kube/pod-status.ts";
import type { ContainerStatus, Pod, Status } from "../../src/core/kube/types.ts";
import { LineSplitter, parsePod, parseStatus, parseWatchEvent } from "../../src/core/kube/watch.ts";

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`typed result broken: ${what}`);
}

const optString = (v: unknown) => v === undefined || typeof v === "string";
const optInt = (v: unknown) => v === undefined || (typeof v === "number" && Number.isSafeInteger(v));

/**
 * The DHCP path a packet takes in the client: IPv4/UDP (when it starts like an IPv4 header; a
 * bare DHCP message starts with op 1 or 2), then DHCP, then the lease it would give.
 */
export function dhcpPacket(bytes: Uint8Array): string {
  try {
    const payload = bytes.length > 0 && bytes[0]! >> 4 === 4 ? decodeIpUdp(bytes).payload : bytes;
    const m = decodeMessage(payload);
    const lease = leaseFromAck(m, 0);
    if (typeof lease !== "string") {
      check(/^\d+\.\d+\.\d+\.\d+$/.test(lease.address), "lease address");
      check(lease.renewSeconds <= lease.rebindSeconds && lease.rebindSeconds <= lease.leaseSeconds, "lease timers ordered");
    }
    return typeof lease === "string" ? `message, no lease: ${lease}` : `lease ${lease.address}/${lease.prefixLength}`;
  } catch (e) {
    if (e instanceof DecodeError) return `DecodeError: ${e.message}`;
    throw e;
  }
}

function checkStatuses(list: ContainerStatus[] | undefined): void {
  if (list === undefined) return;
  check(Array.isArray(list), "statuses array");
  for (const s of list) {
    check(typeof s.name === "string" && s.name !== "", "status name");
    const t = s.state?.terminated;
    if (t) check(optInt(t.exitCode) && optString(t.reason), "terminated fields");
  }
}

/** A decoded Pod has the types the decisions rely on, and the decisions never throw on it. */
function checkPod(pod: Pod): string {
  check(Object.getPrototypeOf(pod) === Object.prototype, "plain object");
  check(optString(pod.metadata?.name) && optString(pod.metadata?.resourceVersion), "metadata strings");
  if (pod.spec) {
    check(Array.isArray(pod.spec.containers), "containers array");
    for (const c of [...pod.spec.containers!, ...(pod.spec.initContainers ?? [])]) check(typeof c.name === "string" && optString(c.restartPolicy), "container fields");
    check(optString(pod.spec.restartPolicy), "restartPolicy");
  }
  if (pod.status) {
    check(optString(pod.status.phase), "phase");
    checkStatuses(pod.status.containerStatuses);
    checkStatuses(pod.status.initContainerStatuses);
  }
  const d = decidePodDone(pod, "gateway-sidecar");
  isNativeSidecar(pod, "gateway-sidecar");
  check(typeof d.done === "boolean" && typeof d.summary === "string", "decision");
  return d.done ? "pod: done" : "pod: not done";
}

/** A GET body: a Pod (whose decision never throws) or an error value. */
export function kubePod(body: string): string {
  const r = parsePod(body);
  if (!r.ok) {
    check(typeof r.error === "string" && r.error.length <= 400, "short error");
    return `error: ${r.error}`;
  }
  return checkPod(r.pod);
}

function checkStatus(s: Status): void {
  check(s.kind === "Status" && optInt(s.code) && optString(s.message) && optString(s.reason) && optString(s.status), "Status fields");
  for (const t of [s.message, s.reason]) if (t !== undefined) check(!/[\u0000-\u001f\u007f]/.test(t) && t.length <= 201, "printable excerpt");
  describeFailure({ kind: "http", code: s.code ?? 500, status: s });
  describeFailure({ kind: "watch-error", status: s });
}

/** One watch line: an event of a known type with a typed object, or an error value. */
export function kubeWatchLine(line: string): string {
  const r = parseWatchEvent(line);
  if (!r.ok) {
    check(typeof r.error === "string" && r.error.length <= 400, "short error");
    return `error: ${r.error}`;
  }
  const ev = r.event;
  if (ev.type === "ERROR") {
    checkStatus(ev.object);
    return "ERROR event";
  }
  check(["ADDED", "MODIFIED", "DELETED", "BOOKMARK"].includes(ev.type), "event type");
  if (ev.type !== "BOOKMARK") checkPod(ev.object);
  return `${ev.type} event`;
}

/** An error body: a Status with typed, printable fields, or nothing. */
export function kubeStatus(body: string): string {
  const s = parseStatus(body);
  if (s === undefined) return "no Status";
  checkStatus(s);
  return `Status ${s.code}`;
}

/** A watch stream as bytes, in the chunks given: lines at most 1 KiB here, every line decoded. */
export function kubeWatchStream(chunks: Uint8Array[]): string {
  const split = new LineSplitter(1024);
  let lines = 0;
  for (const c of chunks) {
    const r = split.push(c);
    if (!r.ok) return `error: ${r.error}`;
    for (const l of r.lines) {
      check(new TextEncoder().encode(l).length <= 1024, "line within the limit");
      kubeWatchLine(l);
      lines++;
    }
    check(split.pending <= 1024, "pending within the limit");
  }
  return `${lines} lines`;
}
