// `pod-gateway health [--ready]`: the sidecars' exec probe. Asks the sidecar of this pod over its
// status socket (@pod-gateway/<role>, see src/core/health.ts), prints one line saying what it
// checked, exits 0 (healthy / ready) or 1 (not). Changes nothing; bounded to one second.
import { defineCommand } from "citty";
import { decideHealth, parseStatus, SIDECAR_ROLES, type HealthQuestion, type SidecarRole } from "../core/health.ts";
import { UsageError } from "../core/errors.ts";
import { askStatus, type StatusReply } from "../sys/status-socket.ts";

/** The probe's whole budget; the sidecar bounds its own checks below it. */
const HEALTH_TIMEOUT_MS = 800;

export async function runHealth(q: HealthQuestion, role: SidecarRole | undefined, timeoutMs = HEALTH_TIMEOUT_MS): Promise<{ ok: boolean; line: string }> {
  const roles = role ? [role] : SIDECAR_ROLES;
  // The pod has one of the two sidecars: ask both at once and take the one that answers.
  const replies: [SidecarRole, StatusReply][] = await Promise.all(roles.map(async (r) => [r, await askStatus(r, q, timeoutMs)] as [SidecarRole, StatusReply]));
  const answered = replies.find(([, r]) => r.ok);
  if (!answered) return { ok: false, line: `${q === "ready" ? "readiness" : "liveness"}: NOT OK: ${replies.map(([, r]) => (r.ok ? "" : r.error)).join("; ")}` };
  const [r, reply] = answered;
  try {
    const text = (reply as { text: string }).text;
    const err = /^\{"error":/.test(text) ? (JSON.parse(text) as { error: string }).error : undefined;
    if (err) return { ok: false, line: `${r} ${q}: NOT OK: the sidecar could not answer: ${err}` };
    return decideHealth(parseStatus(text), q);
  } catch (e) {
    return { ok: false, line: `${r} ${q}: NOT OK: ${(e as Error).message}` };
  }
}

export default defineCommand({
  meta: {
    name: "health",
    description:
      "Exec probe for the sidecars: liveness (the loop ticks; the gateway's dnsmasq runs) or, with --ready, readiness " +
      "(client: the gateway answered through the tunnel recently and isolation holds; gateway: dnsmasq answers on the overlay and the firewall is verified). Exit 0 or 1.",
  },
  args: {
    ready: { type: "boolean", description: "Check readiness instead of liveness", default: false },
    role: { type: "string", description: "client-sidecar or gateway-sidecar (default: whichever runs in this pod)", valueHint: "ROLE" },
  },
  async run({ args }) {
    const role = args.role;
    if (role !== undefined && !(SIDECAR_ROLES as readonly string[]).includes(role)) throw new UsageError(`--role ${JSON.stringify(role)} is not one of ${SIDECAR_ROLES.join(", ")}`);
    const v = await runHealth(args.ready ? "ready" : "live", role as SidecarRole | undefined);
    process.stdout.write(`${v.line}\n`);
    return v.ok ? 0 : 1;
  },
});
