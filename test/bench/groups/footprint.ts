// Group 4: footprint. In a lab of its own: gateway-init + gateway-sidecar (with its dnsmasq) and
// client-init + client-sidecar in two client pods, all the compiled binary with default settings
// (a client probes the gateway every 2 s, the gateway re-checks its firewall every 5 s). RSS,
// private memory (Private_Clean + Private_Dirty from /proc/<pid>/smaps_rollup) and anonymous
// memory of client-0's sidecar and of the gateway sidecar, every second over the first minute
// (steady state) and every 5 s after that for the rest of the soak; growth = median of the last
// minute − median of the first. The soak runs while the other groups do (see run.ts).
//
// Which pages count as private depends on who else maps the same file: a page of the binary
// touched by one process only is private to it. So the soak's sidecars run their own copy of the
// binary (the other groups' processes coming and going cannot change the figures), and a second
// client pod runs a sidecar too, as on a node with several routed pods sharing one image.
//
// Start-up: `pod-gateway version` against a hello world compiled with the flags build.ts uses,
// alternated, after the other groups are done.
import { appendFileSync, copyFileSync, chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { COMPILE_FLAGS } from "../../../build.ts";
import type { Lab } from "../../../src/lab/types.ts";
import { agentArgv, benchLab, destroyBenchLab, inNs, OVERLAY_GW, roleEnv, startGateway, type BenchContext } from "../lib/context.ts";
import { childPids, collect, exeOf, mustRun, readFileRss, readMem, readMemIfAlive, timed, waitFor, type Collected, type MemSample } from "../lib/proc.ts";
import { summarize, type Figure, type GroupResult } from "../lib/stats.ts";

interface Sample {
  /** Seconds since sampling started. */
  t: number;
  client: MemSample;
  /** client-1's sidecar: the same, with CLIENT_METRICS_PORT on and scraped (issue 15's budget). */
  clientMetrics: MemSample;
  gateway: MemSample;
  /** dnsmasq (the gateway sidecar's child), summed if several. */
  dnsmasq: MemSample;
  /** Resident pages of the binary file in the client sidecar (from smaps). */
  clientBinary: number;
  /** The floor: an idle Bun program compiled like ours (a timer, nothing else). */
  idle: MemSample;
  idleBinary: number;
}

/** An idle Bun process compiled with build.ts's flags: the floor of any long-running Bun program's memory. */
async function startIdle(ctx: BenchContext): Promise<{ bin: string; proc: Subprocess }> {
  const dir = ctx.cleanup.addDir(mkdtempSync(join(tmpdir(), "pgw-bench-idle-")));
  writeFileSync(join(dir, "idle.ts"), "setInterval(() => {}, 2000);\n");
  const bin = join(dir, "idle");
  await mustRun("compiling an idle program", [ctx.bun, "build", join(dir, "idle.ts"), ...COMPILE_FLAGS, "--outfile", bin]);
  return { bin, proc: Bun.spawn([bin], { stdin: "ignore", stdout: "ignore", stderr: "ignore" }) };
}

/** The pid of the binary itself: `ip netns exec` execs it in place, but wait until it has. */
async function binaryPid(p: Subprocess, bin: string): Promise<number> {
  let pid = 0;
  await waitFor(`${bin} to be exec'ed by ip netns exec (pid ${p.pid})`, () => {
    if (exeOf(p.pid) === bin) pid = p.pid;
    else pid = childPids(p.pid).find((c) => exeOf(c) === bin) ?? 0;
    return pid !== 0;
  }, 5000, 10);
  return pid;
}

function sumMem(ms: MemSample[]): MemSample {
  return ms.reduce((a, m) => ({ rss: a.rss + m.rss, pss: a.pss + m.pss, private: a.private + m.private, anon: a.anon + m.anon }), { rss: 0, pss: 0, private: 0, anon: 0 });
}

/** Memory growth: median of the last `windowS` seconds minus median of the first. Pure. */
export function growth(samples: readonly { t: number; v: number }[], windowS: number): number {
  if (samples.length === 0) return 0;
  const end = samples[samples.length - 1]!.t;
  const first = samples.filter((s) => s.t <= windowS).map((s) => s.v);
  const last = samples.filter((s) => s.t >= end - windowS).map((s) => s.v);
  return summarize(last).median - summarize(first).median;
}

interface Running {
  lab: Lab;
  clientSidecar: Subprocess<"ignore", "pipe", "pipe">;
  clientOut: Collected;
  gatewayOut: Collected;
  gatewaySidecar: Subprocess<"ignore", "pipe", "pipe">;
  pids: { client: number; gateway: number; clientMetrics: number };
}

/** client-1's sidecar serves /metrics here (its own config dir: the lab's plus the port). */
const METRICS_PORT = 9100;

async function probeCount(lab: Lab): Promise<number> {
  const r = await mustRun("reading the probe counter", inNs(lab, "client-0", ["nft", "-j", "list", "table", "inet", "pgwbench_count"]));
  const rule = (JSON.parse(r.stdout).nftables as { rule?: { expr: { counter?: { packets: number } }[] } }[]).find((x) => x.rule);
  return rule?.rule!.expr.find((e) => e.counter)?.counter!.packets ?? 0;
}

export async function startFootprint(outer: BenchContext): Promise<{ finish(): Promise<GroupResult>; abort(): Promise<void> }> {
  const t0 = performance.now();
  const soakBin = join(outer.scratch, "pod-gateway-soak");
  copyFileSync(outer.bin, soakBin);
  chmodSync(soakBin, 0o755);
  const ctx: BenchContext = { ...outer, bin: soakBin };
  const idle = await startIdle(ctx);
  const lab = await benchLab(ctx, { clients: 2 }).catch((e) => {
    idle.proc.kill();
    throw e;
  });
  let running: Running;
  try {
    const gw = await startGateway(ctx, lab, "gw");
    for (const pod of ["client-0", "client-1"] as const) await mustRun(`client-init in ${pod}`, inNs(lab, pod, [ctx.bin, "client-init"]), { env: roleEnv(ctx, lab, pod) });
    // Count the sidecar's probes (DNS to .1), to show the probe loop ran through the soak.
    await mustRun("adding a probe counter", inNs(lab, "client-0", ["nft", "-f", "-"]), {
      input: `table inet pgwbench_count {\n  chain out {\n    type filter hook output priority 0;\n    ip daddr ${OVERLAY_GW} udp dport 53 counter\n  }\n}\n`,
    });
    const clientSidecar = lab.spawn("client-0", [ctx.bin, "client-sidecar"], { env: roleEnv(ctx, lab, "client-0") as Record<string, string> });
    const clientOut = collect(clientSidecar);
    await waitFor("client-sidecar to start watching", () => clientOut.text().includes("watching gateway") || clientSidecar.exitCode !== null, 10_000);
    if (clientSidecar.exitCode !== null) throw new Error(`client-sidecar exited ${clientSidecar.exitCode}:\n${clientOut.text()}`);
    // The second routed pod's sidecar shares the binary's pages as pods on one node do. It runs with
    // metrics on (scraped every 5 s below): its private memory minus client-0's is what metrics cost.
    const metricsConfig = ctx.cleanup.addDir(mkdtempSync(join(tmpdir(), "pgw-bench-metrics-")));
    for (const f of ["settings.sh", "nat.conf"]) copyFileSync(join(lab.configDir, f), join(metricsConfig, f));
    appendFileSync(join(metricsConfig, "settings.sh"), `\nCLIENT_METRICS_PORT=${METRICS_PORT}\n`);
    const other = lab.spawn("client-1", [ctx.bin, "client-sidecar"], { env: roleEnv(ctx, lab, "client-1", { POD_GATEWAY_CONFIG_DIR: metricsConfig }) as Record<string, string> });
    const otherOut = collect(other);
    await waitFor("client-1's sidecar to serve metrics", () => otherOut.text().includes("metrics on http://") || other.exitCode !== null, 10_000);
    if (other.exitCode !== null) throw new Error(`client-1's sidecar exited ${other.exitCode}:\n${otherOut.text()}`);
    running = {
      lab,
      clientSidecar,
      clientOut,
      gatewayOut: gw.out,
      gatewaySidecar: gw.sidecar,
      pids: { client: await binaryPid(clientSidecar, ctx.bin), gateway: await binaryPid(gw.sidecar, ctx.bin), clientMetrics: await binaryPid(other, ctx.bin) },
    };
  } catch (e) {
    idle.proc.kill();
    await destroyBenchLab(ctx, lab);
    throw e;
  }

  const { pids } = running;
  const samples: Sample[] = [];
  // Let start-up allocations settle before the steady-state minute.
  const warmupS = ctx.opts.quick ? 2 : 5;
  await Bun.sleep(warmupS * 1000);
  const probesAtStart = await probeCount(lab);
  const start = performance.now();
  let stop = false;
  let scrapes = 0;
  let scrapeError: string | undefined;
  // A Prometheus scraping client-1's sidecar every 5 s (from inside its pod: the port is in its namespace).
  const scraper = (async () => {
    while (!stop && (performance.now() - start) / 1000 < ctx.opts.soakSeconds) {
      const r = await timed(inNs(lab, "client-1", agentArgv(ctx, "http-get", `http://127.0.0.1:${METRICS_PORT}/metrics`)));
      if (r.code === 0 && r.stdout.includes("pod_gateway_client_gateway_reachable")) scrapes++;
      else scrapeError ??= `scraping client-1's /metrics: exit ${r.code}: ${(r.stdout + r.stderr).slice(0, 300)}`;
      await Bun.sleep(5000);
    }
  })();
  let samplerError: unknown;
  const sampler = (async () => {
    while (!stop) {
      const t = (performance.now() - start) / 1000;
      if (t > ctx.opts.soakSeconds) break;
      try {
        // dnsmasq only: the sidecar's other children (iptables/nft at each firewall check) live
        // for milliseconds and can be gone between listing and reading (ENOENT ended a full run).
        const dns = childPids(pids.gateway).filter((c) => exeOf(c)?.endsWith("/dnsmasq"));
        samples.push({ t, client: readMem(pids.client), clientMetrics: readMem(pids.clientMetrics), gateway: readMem(pids.gateway), dnsmasq: sumMem(dns.flatMap((c) => readMemIfAlive(c) ?? [])), clientBinary: readFileRss(pids.client, ctx.bin), idle: readMem(idle.proc.pid), idleBinary: readFileRss(idle.proc.pid, idle.bin) });
      } catch (e) {
        samplerError = new Error(`sampling memory at ${t.toFixed(0)} s: ${(e as Error).message} (did a sidecar exit?)`);
        return;
      }
      const every = t < ctx.opts.steadySeconds ? 1000 : 5000;
      const next = start + Math.ceil((performance.now() - start + 1) / every) * every;
      await Bun.sleep(Math.max(0, next - performance.now()));
    }
  })();
  ctx.log(`footprint: soak of ${(ctx.opts.soakSeconds / 60).toFixed(1)} min started (client-sidecar pid ${pids.client}, gateway-sidecar pid ${pids.gateway}); it runs alongside the other groups`);

  const stopAll = async () => {
    stop = true;
    await sampler;
    await scraper;
    idle.proc.kill();
    await destroyBenchLab(ctx, lab);
  };

  return {
    abort: stopAll,
    async finish(): Promise<GroupResult> {
      const startup = await measureStartup(outer);
      const left = ctx.opts.soakSeconds - (performance.now() - start) / 1000;
      if (left > 1) ctx.log(`footprint: waiting ${left.toFixed(0)} s for the soak to end`);
      await sampler;
      const probesAtEnd = await probeCount(lab);
      const exited = [running.clientSidecar, running.gatewaySidecar].filter((p) => p.exitCode !== null);
      const clientLog = running.clientOut.text();
      await stopAll();
      if (samplerError) throw samplerError;
      if (exited.length) throw new Error(`a sidecar exited during the soak:\n${clientLog.slice(-2000)}\n${running.gatewayOut.text().slice(-2000)}`);
      const soakS = samples.at(-1)!.t;
      const steady = samples.filter((s) => s.t <= ctx.opts.steadySeconds);
      const windowS = Math.min(60, soakS / 4);
      const of = (pick: (s: Sample) => number) => summarize(steady.map(pick));
      const grow = (pick: (s: Sample) => number) => growth(samples.map((s) => ({ t: s.t, v: pick(s) })), windowS);
      const steadyLabel = `${steady.length} samples over ${Math.round(ctx.opts.steadySeconds)} s`;
      const figures: Figure[] = [
        { key: "footprint.client.rss", label: `client-sidecar RSS (${steadyLabel})`, unit: "MB", ours: of((s) => s.client.rss), target: { op: "<=", value: 32 }, reference: "~5 MB (bash + sleep)" },
        { key: "footprint.client.private", label: "client-sidecar private memory", unit: "MB", ours: of((s) => s.client.private), baseline: { label: "idle Bun program's anonymous memory (floor)", summary: of((s) => s.idle.anon) }, target: { op: "<=", value: 6, text: "≤ 6 MB (issue 16)" } },
        { key: "footprint.client.binary", label: "client-sidecar: pages of the binary touched (smaps Rss of its mappings)", unit: "MB", ours: of((s) => s.clientBinary), baseline: { label: "idle Bun program (floor)", summary: of((s) => s.idleBinary) }, target: { op: "<=", value: 20, text: "≤ 20 MB (issue 16)" } },
        { key: "footprint.client.anon", label: "client-sidecar anonymous memory (heap, stacks, JIT)", unit: "MB", ours: of((s) => s.client.anon) },
        { key: "footprint.client.metrics.private", label: "client-sidecar private memory with CLIENT_METRICS_PORT on, scraped every 5 s (client-1)", unit: "MB", ours: of((s) => s.clientMetrics.private) },
        {
          key: "footprint.client.metrics.cost",
          label: "private memory metrics cost: client-1 (metrics on) − client-0 (off), per sample",
          unit: "MB",
          ours: of((s) => s.clientMetrics.private - s.client.private),
          target: { op: "<=", value: 2 },
        },
        { key: "footprint.client.pss", label: "client-sidecar PSS (shared pages divided among their users)", unit: "MB", ours: of((s) => s.client.pss) },
        { key: "footprint.gateway.rss", label: "gateway-sidecar RSS (without dnsmasq)", unit: "MB", ours: of((s) => s.gateway.rss), reference: "~9 MB whole tree (bash, dnsmasq, inotifyd)" },
        { key: "footprint.gateway.private", label: "gateway-sidecar private memory", unit: "MB", ours: of((s) => s.gateway.private) },
        { key: "footprint.gateway.anon", label: "gateway-sidecar anonymous memory", unit: "MB", ours: of((s) => s.gateway.anon) },
        { key: "footprint.dnsmasq.rss", label: "its dnsmasq RSS", unit: "MB", ours: of((s) => s.dnsmasq.rss) },
        { key: "footprint.startup", label: "start-up: `pod-gateway version`", unit: "ms", ours: startup.ours, baseline: { label: "hello world compiled with the same flags", summary: startup.hello } },
      ];
      const g = (pick: (s: Sample) => number) => `${grow(pick) >= 0 ? "+" : ""}${grow(pick).toFixed(2)} MB`;
      const flat = (pick: (s: Sample) => number) => Math.abs(grow(pick)) <= 1;
      return {
        id: "footprint",
        title: "Footprint",
        figures,
        facts: [
          {
            label: `growth over the ${(soakS / 60).toFixed(1)}-min soak (median of the last ${Math.round(windowS)} s − median of the first ${Math.round(windowS)} s)`,
            value:
              `client-sidecar RSS ${g((s) => s.client.rss)}, private ${g((s) => s.client.private)}, anonymous ${g((s) => s.client.anon)}; ` +
              `gateway-sidecar RSS ${g((s) => s.gateway.rss)}, private ${g((s) => s.gateway.private)}, anonymous ${g((s) => s.gateway.anon)}; dnsmasq RSS ${g((s) => s.dnsmasq.rss)}`,
          },
          {
            label: "flat over the soak (our criterion: |growth| ≤ 1 MB per measure)",
            value: (["client", "gateway"] as const)
              .map((who) => `${who}-sidecar: ${(["private", "anon", "rss"] as const).map((k) => `${k === "anon" ? "anonymous" : k === "rss" ? "RSS" : k} ${flat((s) => s[who][k]) ? "✅" : "❌"}`).join(", ")}`)
              .join("; "),
          },
          {
            label: "what RSS is made of (steady-state medians): anonymous memory / the rest (mapped binary and libraries)",
            value: `client-sidecar ${of((s) => s.client.anon).median.toFixed(1)} / ${(of((s) => s.client.rss).median - of((s) => s.client.anon).median).toFixed(1)} MB, gateway-sidecar ${of((s) => s.gateway.anon).median.toFixed(1)} / ${(of((s) => s.gateway.rss).median - of((s) => s.gateway.anon).median).toFixed(1)} MB`,
          },
          { label: "scrapes of client-1's /metrics during the soak", value: `${scrapes}${scrapeError ? ` (first failure: ${scrapeError})` : ""}` },
          { label: "probes the client-sidecar sent to the gateway during the soak", value: `${probesAtEnd - probesAtStart} (${((probesAtEnd - probesAtStart) / (soakS / 60)).toFixed(0)} a minute)` },
          { label: "pod-gateway binary size", value: `${(Bun.file(ctx.bin).size / 2 ** 20).toFixed(0)} MiB (hello world: ${(startup.helloSize / 2 ** 20).toFixed(0)} MiB)` },
        ],
        notes: [
          `The soak (${(soakS / 60).toFixed(1)} min${ctx.opts.soakSeconds < 600 ? ", shorter than the issue's 10 min: --soak-min" : ""}) runs alongside the other groups in a lab of its own, so that it fits the 15-minute budget; both sides of every other ratio ran with it in the background.`,
          "RSS counts the pages of the 100 MB binary the process touched; they are shared by every process running the same file (on a node: every pod using the image), which is why private memory is the per-pod cost. The soak runs its own copy of the binary, shared by its three sidecars only (client-1's sidecar runs so that client pages are shared as with several routed pods).",
          "Growth of RSS beyond the growth of anonymous memory is pages of the binary touched for the first time later in the soak: file pages, shared with every other process running the binary.",
          `Start-up: ${startup.ours.n} runs of each, alternated, spawn to exit, after the other groups.`,
          "The floor of the memory figures: a program that only runs a 2 s timer, compiled with build.ts's flags, sampled with the sidecars. Its binary is mapped by it alone, so its private memory counts every page it touched; its anonymous memory (heap, stacks) is the floor of a sidecar's private memory, its touched binary pages the floor of the sidecar's.",
        ],
        durationMs: performance.now() - t0,
        data: { samples, probes: probesAtEnd - probesAtStart },
      };
    },
  };
}

/** `pod-gateway version` against a compiled hello world, alternated. */
async function measureStartup(ctx: BenchContext): Promise<{ ours: ReturnType<typeof summarize>; hello: ReturnType<typeof summarize>; helloSize: number }> {
  const dir = ctx.cleanup.addDir(mkdtempSync(join(tmpdir(), "pgw-bench-hello-")));
  writeFileSync(join(dir, "hello.ts"), 'console.log("hello");\n');
  const hello = join(dir, "hello");
  // The flags build.ts compiles pod-gateway with (minus the --define of the version).
  await mustRun("compiling hello world", [ctx.bun, "build", join(dir, "hello.ts"), ...COMPILE_FLAGS, "--outfile", hello]);
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
  const ours: number[] = [];
  const base: number[] = [];
  for (let i = 0; i < 3; i++) {
    await timed([ctx.bin, "version"], { env });
    await timed([hello], { env });
  }
  for (let i = 0; i < ctx.opts.startupRuns; i++) {
    const a = await timed([ctx.bin, "version"], { env });
    if (a.code !== 0) throw new Error(`pod-gateway version: exit ${a.code}: ${a.stderr}`);
    const b = await timed([hello], { env });
    if (b.code !== 0 || b.stdout !== "hello\n") throw new Error(`hello world: exit ${b.code}: ${b.stdout}${b.stderr}`);
    ours.push(a.ms);
    base.push(b.ms);
  }
  return { ours: summarize(ours), hello: summarize(base), helloSize: Bun.file(hello).size };
}
