// What every group gets: the compiled binary under test, options, the cleanup registry, a
// logger, and helpers to build a lab and bring the real gateway roles up in it.
import { mkdirSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { createLab, LAB } from "../../../src/lab/lab.ts";
import { makeLabId } from "../../../src/lab/plan.ts";
import type { Lab, LabOptions, PodName } from "../../../src/lab/types.ts";
import { which } from "../../../src/sys/exec.ts";
import type { Cleanup } from "./cleanup.ts";
import { collect, mustRun, waitFor, type Collected } from "./proc.ts";

export const OVERLAY_GW = "172.16.0.1";
export { LAB };

export interface BenchOptions {
  quick: boolean;
  /** Runs per timed figure (client, recovery, gateway, data path). */
  runs: number;
  /** Runs of the 30 s outage figure. */
  outageRuns: number;
  outageSeconds: number;
  /** Port-forward entries for the gateway-init figures. */
  natSizes: number[];
  /** Runs of the reference approach at the largest size (one iptables process per rule is slow). */
  referenceRunsLargest: number;
  soakSeconds: number;
  steadySeconds: number;
  startupRuns: number;
  iperfSeconds: number;
  /** Client pods per lab of the scale group (issue 11 §6). */
  scaleSizes: number[];
}

export interface BenchContext {
  opts: BenchOptions;
  /** The compiled pod-gateway under test (a private copy: others may rebuild dist/ meanwhile). */
  bin: string;
  /** The Bun runtime running the bench (runs the in-namespace agent). */
  bun: string;
  /** Absolute paths of `ip` and `busybox`. */
  ipBin: string;
  busybox: string;
  /** A directory holding only a link to `ip`: the PATH the client roles get (as in a distroless image). */
  ipOnlyPath: string;
  cleanup: Cleanup;
  log(line: string): void;
  /** A scratch directory removed at the end. */
  scratch: string;
}

/** argv of the in-namespace helper (test/bench/agent.ts). */
export function agentArgv(ctx: BenchContext, ...args: string[]): string[] {
  return [ctx.bun, join(import.meta.dir, "..", "agent.ts"), ...args];
}

export function makeIpOnlyPath(ipBin: string): string {
  const dir = mkdtempSync(join(tmpdir(), "pgw-bench-path-"));
  symlinkSync(ipBin, join(dir, "ip"));
  return dir;
}

/** A lab registered for cleanup before it is built, so an interrupt during the build removes it too. */
export async function benchLab(ctx: BenchContext, opts: LabOptions): Promise<Lab> {
  const id = `b${makeLabId(Math.random).slice(0, 5)}`;
  ctx.cleanup.addLab(id);
  ctx.log(`lab ${id}: building (namespaces pgw-${id}-*)`);
  return createLab({ ...opts, id });
}

export async function destroyBenchLab(ctx: BenchContext, lab: Lab): Promise<void> {
  await lab.destroy();
  await ctx.cleanup.removeLab(lab.id);
}

/** The env a role gets in the lab, at the production log level (debug costs time). */
export function roleEnv(ctx: BenchContext, lab: Lab, pod: PodName, extra: Record<string, string> = {}): Record<string, string | undefined> {
  // Client roles run with nothing but `ip` on PATH, as in the image.
  const path = pod === "gateway" ? {} : { PATH: ctx.ipOnlyPath };
  return { ...process.env, ...lab.roleEnv(pod), LOG_LEVEL: "info", ...path, ...extra };
}

// Absolute: the roles run with a PATH of their own, which must not decide which `ip` enters the namespace.
const IP = which("ip") ?? "/usr/sbin/ip";

export function inNs(lab: Lab, pod: PodName, argv: readonly string[]): string[] {
  return [IP, "netns", "exec", lab.ns(pod), ...argv];
}

export interface RunningGateway {
  sidecar: Subprocess<"ignore", "pipe", "pipe">;
  out: Collected;
}

/** gateway-init, then gateway-sidecar; returns once dnsmasq answers on the overlay address. */
export async function startGateway(ctx: BenchContext, lab: Lab, runDirName: string): Promise<RunningGateway> {
  await mustRun("gateway-init", inNs(lab, "gateway", [ctx.bin, "gateway-init"]), { env: roleEnv(ctx, lab, "gateway") });
  const runDir = join(lab.runDir, runDirName);
  mkdirSync(runDir, { recursive: true });
  const sidecar = lab.spawn("gateway", [ctx.bin, "gateway-sidecar", "--run-dir", runDir], { env: { ...lab.roleEnv("gateway"), LOG_LEVEL: "info" } });
  const out = collect(sidecar);
  await waitFor("the gateway's dnsmasq to start", () => out.text().includes("dnsmasq running") || sidecar.exitCode !== null, 15_000);
  if (sidecar.exitCode !== null) throw new Error(`gateway-sidecar exited ${sidecar.exitCode}:\n${out.text()}`);
  await mustRun("waiting for the gateway's DNS on the overlay", inNs(lab, "gateway", agentArgv(ctx, "dns-wait", OVERLAY_GW, "10000")));
  return { sidecar, out };
}
