// `npm run bench` (as root): the five benchmark groups of issue 8 against the compiled binary,
// in the namespace lab, each figure set against a baseline measured in the same run.
//
//   bun test/bench/run.ts                      everything (~16 min on 2 cores; the scale group
//                                              builds a 200-client lab), writes
//                                              test/bench/results/latest.{json,md} and chart.svg
//   --only client,gateway                      a subset: client, recovery, scale, gateway, footprint, datapath, openvpn
//   --scale-sizes 1,50,200                     client pods per lab of the scale group (default 1,50,200; quick 1,50)
//   --quick                                    fewer and shorter runs (development)
//   --runs N  --soak-min M  --outage-runs N    override the run counts / soak length
//   --no-sweep                                 leave other runs' throwaway namespaces alone (a
//                                              machine where someone else may be benchmarking)
//   --out DIR                                  where to write (default: results/ for a complete
//                                              run, /tmp/pod-gateway-bench for a subset or --quick run)
//
// The footprint soak runs alongside the other groups (its sidecars idle in a lab of their own,
// probing every 2 s) so that a 10-minute soak fits the 15-minute budget; start-up is measured
// once the other groups are done. Every lab, namespace and process is removed at the end, on
// failure and on SIGINT/SIGTERM. After a SIGKILL: the next run removes the throwaway
// namespaces; `pod-gateway lab status` / `lab down --id <id>` the labs (their ids are logged).
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { which } from "../../src/sys/exec.ts";
import { Cleanup, sweepStaleNamespaces } from "./lib/cleanup.ts";
import { makeIpOnlyPath, type BenchContext, type BenchOptions } from "./lib/context.ts";
import { readMachine } from "./lib/machine.ts";
import { CHART_FILE, renderConsole, renderMarkdown, type BenchResults } from "./lib/report.ts";
import { chartRows, renderChart } from "./lib/chart.ts";
import { GROUPS, type GroupId, type GroupResult } from "./lib/stats.ts";
import { clientGroup } from "./groups/client.ts";
import { recoveryGroup } from "./groups/recovery.ts";
import { gatewayGroup, NS_PREFIX } from "./groups/gateway.ts";
import { startFootprint } from "./groups/footprint.ts";
import { datapathGroup } from "./groups/datapath.ts";
import { openvpnGroup } from "./groups/openvpn.ts";
import { scaleGroup } from "./groups/scale.ts";
import { MAX_CLIENTS } from "../../src/lab/plan.ts";

const REPO = join(import.meta.dir, "..", "..");
const log = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

function usage(): never {
  process.stderr.write(
    "usage: bun test/bench/run.ts [--only client,recovery,scale,gateway,footprint,datapath,openvpn] [--quick] [--runs N] [--soak-min M] [--outage-runs N] [--scale-sizes 1,50,200] [--no-sweep] [--out DIR]\n",
  );
  process.exit(2);
}

export function parseOptions(argv: string[]): { opts: BenchOptions; only: GroupId[]; out?: string; complete: boolean; sweep: boolean } {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        only: { type: "string" },
        quick: { type: "boolean", default: false },
        runs: { type: "string" },
        "soak-min": { type: "string" },
        "outage-runs": { type: "string" },
        "scale-sizes": { type: "string" },
        out: { type: "string" },
        "no-sweep": { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
      strict: true,
    }).values;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    usage();
  }
  if (values.help) usage();
  const only = values.only ? values.only.split(",").map((s) => s.trim()).filter(Boolean) : [...GROUPS];
  for (const g of only) if (!(GROUPS as readonly string[]).includes(g)) throw new Error(`--only: unknown group ${JSON.stringify(g)} (groups: ${GROUPS.join(", ")})`);
  const num = (name: string, v: string | undefined, min: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} ${JSON.stringify(v)}: expected a number ≥ ${min}`);
    return n;
  };
  const q = values.quick;
  const runs = num("runs", values.runs, 1) ?? (q ? 3 : 7);
  const soakMin = num("soak-min", values["soak-min"], 0.5) ?? (q ? 1.5 : 10);
  const opts: BenchOptions = {
    quick: q,
    runs,
    outageRuns: num("outage-runs", values["outage-runs"], 1) ?? (q ? 1 : 3),
    outageSeconds: q ? 10 : 30,
    natSizes: q ? [0, 50, 200] : [0, 50, 200, 1000],
    referenceRunsLargest: q ? 1 : 3,
    soakSeconds: Math.round(soakMin * 60),
    steadySeconds: Math.min(60, Math.round(soakMin * 60) / 2),
    startupRuns: q ? 15 : 50,
    iperfSeconds: q ? 1 : 2,
    scaleSizes: values["scale-sizes"] !== undefined ? parseSizes(values["scale-sizes"]) : q ? [1, 50] : [1, 50, 200],
  };
  const complete =
    !q && only.length === GROUPS.length && values.runs === undefined && values["soak-min"] === undefined && values["outage-runs"] === undefined && values["scale-sizes"] === undefined;
  return { opts, only: only as GroupId[], out: values.out, complete, sweep: !values["no-sweep"] };
}

/** "1,50,200": client counts of the scale group, each 1 to the lab's maximum. */
export function parseSizes(v: string): number[] {
  const sizes = v.split(",").map((x) => x.trim());
  const out = sizes.map(Number);
  if (!sizes.length || out.some((n, i) => !/^\d+$/.test(sizes[i]!) || n < 1 || n > MAX_CLIENTS)) throw new Error(`--scale-sizes ${JSON.stringify(v)}: expected client counts from 1 to ${MAX_CLIENTS}, comma-separated`);
  return out;
}

function checkPrerequisites(only: GroupId[]): void {
  if (process.getuid?.() !== 0) throw new Error("the bench needs root (network namespaces, iptables, nft): run it as root");
  const need = new Set(["ip", "dnsmasq", "sysctl", "nft", "iptables-nft", "busybox"]);
  if (only.includes("gateway")) for (const t of ["iptables-nft-save", "ip6tables-nft", "ip6tables-nft-save", "strace"]) need.add(t);
  if (only.includes("datapath") || only.includes("openvpn")) need.add("iperf3");
  if (only.includes("openvpn")) for (const t of ["openvpn", "openssl"]) need.add(t);
  const missing = [...need].filter((t) => !which(t));
  if (missing.length)
    throw new Error(`missing tools: ${missing.join(", ")} (apt-get install -y iproute2 dnsmasq-base procps nftables iptables busybox strace iperf3)`);
}

async function main(): Promise<number> {
  const started = performance.now();
  const { opts, only, out, complete, sweep } = parseOptions(process.argv.slice(2));
  checkPrerequisites(only);
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers(log);
  const stale = sweep ? await sweepStaleNamespaces(NS_PREFIX) : [];
  if (stale.length) log(`removed ${stale.length} namespace(s) a killed bench left behind: ${stale.join(", ")}`);

  const scratch = cleanup.addDir(mkdtempSync(join(tmpdir(), "pgw-bench-")));
  const src = process.env.POD_GATEWAY_BIN ?? join(REPO, "dist", "pod-gateway");
  const bin = join(scratch, "pod-gateway");
  try {
    copyFileSync(src, bin);
  } catch (e) {
    throw new Error(`copying the binary under test ${src}: ${(e as Error).message} (build it first: bun build.ts)`);
  }
  Bun.spawnSync(["chmod", "755", bin]);
  const ipBin = which("ip")!;
  const ctx: BenchContext = {
    opts,
    bin,
    bun: process.execPath,
    ipBin,
    busybox: which("busybox") ?? "busybox",
    ipOnlyPath: cleanup.addDir(makeIpOnlyPath(ipBin)),
    cleanup,
    log,
    scratch,
  };
  const machine = readMachine(bin);
  log(`${machine.podGateway} on ${machine.cpu}, ${machine.cores} cores, ${machine.kernel}; groups: ${only.join(", ")}${opts.quick ? " (quick)" : ""}`);

  const results: GroupResult[] = [];
  const failed = (id: GroupId, title: string, t0: number, e: unknown): GroupResult => {
    const msg = e instanceof Error ? e.message : String(e);
    log(`${id} FAILED: ${msg}`);
    return { id, title, figures: [], facts: [], notes: [], durationMs: performance.now() - t0, error: msg };
  };
  let exit = 0;
  try {
    // The soak first: it runs while the other groups do.
    const t0f = performance.now();
    let footprint: Awaited<ReturnType<typeof startFootprint>> | undefined;
    let footprintError: unknown;
    if (only.includes("footprint")) {
      try {
        footprint = await startFootprint(ctx);
      } catch (e) {
        footprintError = e;
      }
    }
    const sequential: [GroupId, string, (c: BenchContext) => Promise<GroupResult>][] = [
      ["client", "Client time to ready", clientGroup],
      ["recovery", "Recovery after the gateway moves", recoveryGroup],
      ["scale", "Many clients", scaleGroup],
      ["gateway", "Gateway init versus port forwards", gatewayGroup],
      ["datapath", "Data path", datapathGroup],
      ["openvpn", "The real VPN", openvpnGroup],
    ];
    for (const [id, title, fn] of sequential) {
      if (!only.includes(id)) continue;
      if (cleanup.interrupted) break;
      const t0 = performance.now();
      log(`${id}: starting`);
      try {
        const r = await fn(ctx);
        log(`${id}: done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
        results.push(r);
      } catch (e) {
        results.push(failed(id, title, t0, e));
      }
    }
    if (only.includes("footprint")) {
      const title = "Footprint";
      try {
        if (footprintError) throw footprintError;
        results.push(await footprint!.finish());
      } catch (e) {
        await footprint?.abort().catch(() => {});
        results.push(failed("footprint", title, t0f, e));
      }
    }
  } finally {
    const problems = await cleanup.runAll();
    for (const p of problems) log(`cleanup: ${p}`);
    if (problems.length) exit = 1;
  }
  if (cleanup.interrupted) return 130;

  // Keep the groups in the order of the issue.
  results.sort((a, b) => GROUPS.indexOf(a.id) - GROUPS.indexOf(b.id));
  const report: BenchResults = {
    format: 1,
    machine,
    options: { ...opts, only },
    complete,
    totalMs: performance.now() - started,
    groups: results,
  };
  const dir = out ?? (complete ? join(import.meta.dir, "results") : join(tmpdir(), "pod-gateway-bench"));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "latest.json"), JSON.stringify(report, null, 2) + "\n");
  writeFileSync(join(dir, "latest.md"), renderMarkdown(report));
  if (chartRows(report).length) writeFileSync(join(dir, CHART_FILE), renderChart(report));
  process.stdout.write("\n" + renderConsole(report));
  log(`wrote ${join(dir, "latest.json")}, latest.md and ${CHART_FILE}${complete ? " (splice into README: bun test/bench/readme.ts)" : " (partial run: not for README)"}`);
  if (results.some((r) => r.error)) exit = 1;
  return exit;
}

if (import.meta.main) {
  try {
    process.exit(await main());
  } catch (e) {
    log(`failed: ${(e as Error).message}`);
    process.exit(1);
  }
}
