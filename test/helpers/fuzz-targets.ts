// Fuzz targets (issue 12 §11) shared by test/unit/fuzz-decoders.test.ts and
// test/unit/config-fuzz.test.ts (in process) and the isolated runs of test/helpers/fuzz.ts (in a
// limited child process). Each takes one input and
// returns a short description of the typed outcome — a result or the decoder's own error value —
// and throws for anything else: an exception of another kind, or a result that breaks its type.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DecodeError, decodeIpUdp, decodeMessage } from "../../src/core/dhcp/codec.ts";
import { leaseFromAck } from "../../src/core/dhcp/machine.ts";
import { renderDnsmasqConfig } from "../../src/core/dnsmasq/render.ts";
import type { ConfigIssue } from "../../src/core/errors.ts";
import { planFirewall } from "../../src/core/firewall/model.ts";
import { renderIptablesRestore } from "../../src/core/firewall/render-iptables.ts";
import { renderNftScript } from "../../src/core/firewall/render-nft.ts";
import { describeFailure } from "../../src/core/kube/failure.ts";
import { decidePodDone, isNativeSidecar } from "../../src/core/kube/pod-status.ts";
import type { ContainerStatus, Pod, Status } from "../../src/core/kube/types.ts";
import { LineSplitter, parsePod, parseStatus, parseWatchEvent } from "../../src/core/kube/watch.ts";
import { parseResolvConf, renderResolvCopy } from "../../src/core/resolv.ts";
import { resolveConfig, type Resolution } from "../../src/core/settings/resolve.ts";
import { decodeConfigText } from "../../src/core/settings/text.ts";
import { isIPv4 } from "../../src/core/settings/values.ts";

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

// ---- configuration readers: settings.sh, nat.conf, resolv.conf ----------------------------------

const DEFAULTS = readFileSync(join(import.meta.dir, "..", "..", "config", "settings.sh"), "utf8");
const SETTINGS = "/config/settings.sh";
const NAT = "/config/nat.conf";
const CONFIG_FILES = new Set(["builtin:settings.sh", SETTINGS, NAT, "settings"]);

function linesOf(b: Uint8Array): number {
  let n = 1;
  for (const x of b) if (x === 10) n++;
  return n;
}

function checkIssue(i: ConfigIssue, lines: number): void {
  check(CONFIG_FILES.has(i.file), `issue names an unknown file: ${JSON.stringify(i).slice(0, 300)}`);
  check(typeof i.message === "string" && i.message !== "", `issue without a message: ${JSON.stringify(i).slice(0, 300)}`);
  // Bounded messages: excerpts of at most 60 characters, at most three items of a list (so at
  // most about 600 characters whatever the input); never a whole line of the input.
  check(i.message.length <= 800, `message of ${i.message.length} characters: ${i.message.slice(0, 200)}...`);
  check(i.line === undefined || (Number.isInteger(i.line) && i.line >= 1 && i.line <= lines + 1), `line ${i.line} outside the text (${lines} lines)`);
  check(i.column === undefined || (Number.isInteger(i.column) && i.column >= 1), `bad column ${i.column}`);
}

function checkResolution(r: Resolution, lines: number): string {
  check(!(r.config && r.issues.length), "a configuration and issues at once");
  check(!!(r.config || r.issues.length), "neither a configuration nor an issue");
  for (const i of r.issues) checkIssue(i, lines);
  for (const w of r.warnings) check(typeof w === "string" && w.length <= 600, `bad warning: ${String(w).slice(0, 200)}`);
  if (!r.config) return `issues: ${r.issues.length}`;
  // What validation accepts, every renderer can write (their escaping functions refuse the rest).
  const s = r.config.settings;
  renderDnsmasqConfig({ settings: s, nat: r.config.nat, mtu: 1400, localServer: s.DNS_LOCAL_SERVER || "10.96.0.10", leaseFile: "/run/pod-gateway/leases" });
  const plan = planFirewall(s, r.config.nat);
  renderIptablesRestore(plan, 4, undefined);
  renderIptablesRestore(plan, 6, undefined);
  renderNftScript(plan);
  return "config";
}

/** Decode the file's bytes; an undecodable file is an issue naming the file (and a line). */
function decoded(bytes: Uint8Array, file: string): { text: string } | { outcome: string } {
  const d = decodeConfigText(bytes, file);
  if (d.ok) return { text: d.text };
  checkIssue(d.issue, linesOf(bytes));
  return { outcome: "undecodable" };
}

/** A mounted settings.sh over the defaults: a configuration every renderer can write, or bounded issues at file:line. */
export function settingsFile(bytes: Uint8Array): string {
  const d = decoded(bytes, SETTINGS);
  if ("outcome" in d) return d.outcome;
  const settings = [
    { file: "builtin:settings.sh", text: DEFAULTS, builtin: true },
    { file: SETTINGS, text: d.text },
  ];
  return checkResolution(resolveConfig({ settings, nat: { file: NAT, text: "" }, env: { gateway: "gw.example", K8S_DNS_ips: "10.96.0.10" } }), linesOf(bytes));
}

/** A mounted nat.conf with the default settings: as for settingsFile. */
export function natFile(bytes: Uint8Array): string {
  const d = decoded(bytes, NAT);
  if ("outcome" in d) return d.outcome;
  const settings = [{ file: "builtin:settings.sh", text: DEFAULTS, builtin: true }];
  return checkResolution(resolveConfig({ settings, nat: { file: NAT, text: d.text }, env: { gateway: "gw.example", K8S_DNS_ips: "10.96.0.10" } }), linesOf(bytes));
}

/** The VPN client's resolv.conf: IPv4 nameservers only, and the copy reads back as the same ones. */
export function resolvFile(bytes: Uint8Array): string {
  const d = decodeConfigText(bytes, "/etc/resolv.conf");
  if (!d.ok) return "undecodable";
  const r = parseResolvConf(d.text);
  for (const a of r.ipv4) check(isIPv4(a), `ipv4 holds ${JSON.stringify(a).slice(0, 100)}`);
  const copy = renderResolvCopy(r.ipv4, "/etc/resolv.conf");
  check(JSON.stringify(parseResolvConf(copy).ipv4) === JSON.stringify(r.ipv4), "the copy does not read back as the same nameservers");
  return `nameservers: ${r.ipv4.length}`;
}
