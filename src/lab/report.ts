// Text the lab shows people: the map printed by `lab up`, `lab status`, and the `lab demo`
// report. Pure: fed with results gathered by src/lab/demo.ts and src/cli/lab/*.ts.
import { LAB } from "./types.ts";
import { labPods, nsName, podIpOf, vpnKindOf, type LabState } from "./plan.ts";

// ---- lab up ----

export function renderLabMap(s: LabState, buildMs?: number): string {
  const ovpn = vpnKindOf(s) === "openvpn" ? s.openvpn : undefined;
  const role = (pod: string): string => {
    switch (pod) {
      case "node":
        return `${LAB.nodeIp} on br0, ${LAB.nodeLeakIp} to the leak host; cluster DNS ${LAB.clusterDnsIp}, API server ${LAB.apiServerIp}`;
      case "gateway":
        return `${podIpOf(s, "gateway")} on eth0; ${s.vpnInterface} ${LAB.vpnGatewayIp} (VPN link ${s.vpnLink}${ovpn ? ", made by the OpenVPN client" : ""})`;
      case "vpn":
        return ovpn
          ? `OpenVPN server ${LAB.vpnServerIp} ${ovpn.proto}/${ovpn.port} (reached through the node), tunnel ${LAB.vpnExitIp}, ${LAB.vpnExitInternetIp} (internet side); forwards without NAT`
          : `${LAB.vpnExitIp} (VPN side), ${LAB.vpnExitInternetIp} (internet side); forwards without NAT`;
      case "internet":
        return `${LAB.internetIp}: echo tcp ${LAB.echoTcpPort} / udp ${LAB.echoUdpPort}, VPN DNS (${LAB.internetName})`;
      case "leak":
        return `${LAB.leakHostIp}: echo tcp ${LAB.echoTcpPort} / udp ${LAB.echoUdpPort}; the node's uplink, reachable without VPN`;
      default:
        return `${podIpOf(s, pod as `client-${number}`)} on eth0, default via ${LAB.nodeIp}`;
    }
  };
  const pods = labPods(s);
  const width = Math.max(...pods.map((p) => nsName(s.id, p).length));
  const lines = [`lab ${s.id} is up${buildMs === undefined ? "" : ` (built in ${buildMs} ms)`}`];
  for (const p of pods) lines.push(`  ${p.padEnd(9)} ${nsName(s.id, p).padEnd(width)}  ${role(p)}`);
  lines.push(`  config dir ${s.configDir}`);
  lines.push(`  run dir    ${s.runDir}`);
  lines.push(`try: pod-gateway lab exec client-0 -- ip route    then: pod-gateway lab down --id ${s.id}`);
  return lines.join("\n") + "\n";
}

// ---- lab status ----

export interface NamespaceStatus {
  name: string;
  present: boolean;
  /** "eth0 198.18.0.10/24" entries. */
  addresses: string[];
  /** "1234 dnsmasq" entries. */
  processes: string[];
}

export interface LabStatus {
  id: string;
  stateError?: string;
  state?: LabState;
  namespaces: NamespaceStatus[];
  /** Namespaces that exist but the state does not name (or all of them when there is no state). */
  strays: string[];
  dns?: { ok: boolean; detail: string };
}

export function renderStatus(labs: LabStatus[]): string {
  if (labs.length === 0) return "no lab is running (start one with: pod-gateway lab up)\n";
  const out: string[] = [];
  for (const l of labs) {
    const header = l.state
      ? `lab ${l.id}: ${l.state.clients} client(s), gateway ${podIpOf(l.state, "gateway")}, VPN link ${l.state.vpnInterface} ${l.state.vpnLink}` +
        `${l.state.openvpn ? ` (OpenVPN ${l.state.openvpn.proto}/${l.state.openvpn.port})` : ""}, since ${l.state.createdAt}`
      : `lab ${l.id}: ${l.stateError ?? "no state"} — half-built or crashed; remove it with: pod-gateway lab down --id ${l.id}`;
    out.push(header);
    for (const n of l.namespaces) {
      if (!n.present) {
        out.push(`  ${n.name}: MISSING`);
        continue;
      }
      out.push(`  ${n.name}: ${n.addresses.length ? n.addresses.join(", ") : "no addresses"}`);
      if (n.processes.length) out.push(`    processes: ${n.processes.join(", ")}`);
    }
    for (const s of l.strays) out.push(`  ${s}: present (not in the lab's state)`);
    if (l.dns) out.push(`  cluster DNS: ${l.dns.ok ? "answers" : "DOES NOT ANSWER"} — ${l.dns.detail}`);
  }
  return out.join("\n") + "\n";
}

// ---- lab demo ----

export type StepStatus = "ok" | "failed" | "not-implemented" | "skipped";

export interface StepResult {
  name: string;
  status: StepStatus;
  /** Wall time of the step; undefined when it did not run. */
  ms?: number;
  /** One line a person reads: the address, the source seen, why it failed or was skipped. */
  detail?: string;
}

/** How a role's exit looks to the demo: a NotImplementedError exits 1 saying "not implemented yet". */
export function classifyRoleExit(code: number, stderr: string): { status: StepStatus; detail: string } {
  if (code === 0) return { status: "ok", detail: "exit 0" };
  if (/not implemented yet/i.test(stderr)) return { status: "not-implemented", detail: "not implemented yet" };
  const lines = stderr.trim().split("\n").filter((l) => l.trim() !== "");
  const last = lines.at(-1)?.trim();
  return { status: "failed", detail: `exit ${code}${last ? `: ${last}` : ""}` };
}

/** The demo passes only when every step ran and passed: "not implemented yet" is not a pass. */
export function demoExitCode(steps: readonly StepResult[]): number {
  return steps.length > 0 && steps.every((s) => s.status === "ok") ? 0 : 1;
}

const LABEL: Record<StepStatus, string> = {
  ok: "ok",
  failed: "FAILED",
  "not-implemented": "not implemented yet",
  skipped: "skipped",
};

function formatMs(ms: number | undefined): string {
  if (ms === undefined) return "-";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export function renderDemoReport(p: { labId: string; steps: readonly StepResult[]; kept: boolean }): string {
  const nameW = Math.max(4, ...p.steps.map((s) => s.name.length));
  const timeW = Math.max(4, ...p.steps.map((s) => formatMs(s.ms).length));
  const lines = [`pod-gateway lab demo (lab ${p.labId})`, "", `  ${"step".padEnd(nameW)}  ${"time".padStart(timeW)}  result`];
  for (const s of p.steps) {
    const result = LABEL[s.status] + (s.detail && s.detail !== LABEL[s.status] ? ` — ${s.detail}` : "");
    lines.push(`  ${s.name.padEnd(nameW)}  ${formatMs(s.ms).padStart(timeW)}  ${result}`);
  }
  const count = (st: StepStatus) => p.steps.filter((s) => s.status === st).length;
  lines.push("");
  const summary = [`${count("ok")} ok`, `${count("failed")} failed`, `${count("not-implemented")} not implemented yet`, `${count("skipped")} skipped`].join(", ");
  const verdict = demoExitCode(p.steps) === 0 ? "everything works" : count("failed") > 0 ? "something is broken" : "incomplete";
  lines.push(`${verdict}: ${summary}.`);
  lines.push(p.kept ? `The lab is still up: pod-gateway lab status; pod-gateway lab down --id ${p.labId}` : "The lab was torn down.");
  return lines.join("\n") + "\n";
}
