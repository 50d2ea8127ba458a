// Group: many clients (issue 11 §6). For N = 1, 50, 200 client pods in one lab: N client-inits
// started together (the storm when a node full of routed pods starts, or a Deployment scales up),
// then N client-sidecars; then the gateway pod is re-created — at a new pod IP and at the same
// one — and the time until the last client is back is measured from the moment the new gateway's
// dnsmasq answers. "Back" for a client is its sidecar's own "answers again" line (its probe
// through the tunnel answered; while lost the sidecar probes every 250 ms, so this reads up to a
// quarter second late), seen by the bench as the line arrives. One UDP echo poller (every 20 ms)
// in client-0 gives the exact figure for one client alongside.
//
// A lab of 200 pods overflows the kernel's neighbour table at its defaults (one table per kernel,
// shared by every namespace; ../../../PLATFORM facts): for that run the bench raises
// net.ipv4.neigh.default.gc_thresh1/2/3 in the host's namespace and restores the values it found
// (in finally, and from the cleanup on an interrupt).
//
// Diagnosis: with PGW_BENCH_SLOW_LOG=/dir/prefix, each move writes the three slowest clients'
// sidecar lines (ms from the new gateway being ready) to /dir/prefix-<run>.txt.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { Lab } from "../../../src/lab/types.ts";
import { agentArgv, benchLab, destroyBenchLab, inNs, LAB, OVERLAY_GW, roleEnv, startGateway, type BenchContext, type RunningGateway } from "../lib/context.ts";
import { collect, epochMs, mustRun, waitFor, type Collected } from "../lib/proc.ts";
import { summarize, type Figure, type GroupResult } from "../lib/stats.ts";

/** Sizes at or above this get the raised neighbour table. */
const RAISE_FROM = 100;
const RAISED = { gc_thresh1: 4096, gc_thresh2: 8192, gc_thresh3: 16384 };
const THRESH = ["gc_thresh1", "gc_thresh2", "gc_thresh3"] as const;
const sysctlFile = (k: string) => `/proc/sys/net/ipv4/neigh/default/${k}`;
/** One client is also measured with the old gateway gone this long before the new one comes (see moveGateway). */
const OUTAGE_MS = 3000;
/** A client that is not back this long after the gateway is ready counts as failed. */
const GIVE_UP_MS = 60_000;

/** Raise the shared neighbour table's limits; returns the restore (idempotent), registered with the cleanup. */
export function raiseNeighbourTable(ctx: BenchContext): () => void {
  const before = Object.fromEntries(THRESH.map((k) => [k, readFileSync(sysctlFile(k), "utf8").trim()]));
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    // gc_thresh3 last going down, first going up: the kernel does not check the order, but a
    // table never sees thresh2 above thresh3 this way.
    for (const k of ["gc_thresh1", "gc_thresh2", "gc_thresh3"] as const) writeFileSync(sysctlFile(k), before[k]!);
    ctx.log(`scale: neighbour table limits restored (${THRESH.map((k) => `${k}=${before[k]}`).join(" ")})`);
  };
  ctx.cleanup.addRestore(restore);
  for (const k of ["gc_thresh3", "gc_thresh2", "gc_thresh1"] as const) writeFileSync(sysctlFile(k), String(RAISED[k]));
  ctx.log(`scale: neighbour table limits raised for this run (were ${THRESH.map((k) => `${k}=${before[k]}`).join(" ")})`);
  return restore;
}

interface Sidecar {
  pod: string;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  out: Collected;
  /** Epoch ms of each "answers again" line. */
  backs: number[];
  /** Every line with the epoch ms it arrived (the slowest clients' are written out after a move). */
  lines: [number, string][];
}

interface StormOutcome {
  /** Start of the storm to the last successful exit, ms. */
  lastReadyMs: number;
  /** CPU (user + system) of each successful client-init, ms. */
  cpuMs: number[];
  /** client-inits that failed and were started again (as the kubelet restarts an init container). */
  retries: number;
}

async function clientInitStorm(ctx: BenchContext, lab: Lab): Promise<StormOutcome> {
  const t0 = epochMs();
  const cpuMs: number[] = [];
  let retries = 0;
  let lastAt = t0;
  const one = async (pod: string): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      const p = Bun.spawn(inNs(lab, pod as `client-${number}`, [ctx.bin, "client-init"]), {
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
        env: roleEnv(ctx, lab, pod as `client-${number}`) as Record<string, string>,
      });
      const [, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      if (code === 0) {
        lastAt = Math.max(lastAt, epochMs());
        const u = p.resourceUsage();
        cpuMs.push(u ? Number(u.cpuTime.user + u.cpuTime.system) / 1000 : NaN);
        return;
      }
      if (attempt >= 3) throw new Error(`client-init in ${pod} failed ${attempt + 1} times; last (exit ${code}):\n${err.trim().split("\n").slice(-8).join("\n")}`);
      retries++;
    }
  };
  await Promise.all(lab.clients.map(one));
  return { lastReadyMs: lastAt - t0, cpuMs, retries };
}

function startSidecars(ctx: BenchContext, lab: Lab): Sidecar[] {
  return lab.clients.map((pod) => {
    const proc = ctx.cleanup.addProc(lab.spawn(pod as `client-${number}`, [ctx.bin, "client-sidecar"], { env: roleEnv(ctx, lab, pod as `client-${number}`) as Record<string, string> }));
    const out = collect(proc);
    const backs: number[] = [];
    const lines: [number, string][] = [];
    out.onLine((l) => {
      const t = epochMs();
      lines.push([t, l]);
      if (lines.length > 400) lines.splice(0, 200);
      if (l.includes("answers again")) backs.push(t);
    });
    return { pod, proc, out, backs, lines };
  });
}

interface MoveOutcome {
  sameIp: boolean;
  /** How long the old gateway stopped answering before it was re-created (0: re-created at once). */
  outageMs: number;
  /** Last client back − ready (ms); negative: before dnsmasq answered. */
  lastBackMs: number;
  /** Median client back − ready. */
  medianBackMs: number;
  /** client-0's first UDP echo through the new gateway − ready. */
  echoBackMs: number | undefined;
}

async function moveGateway(ctx: BenchContext, lab: Lab, sidecars: Sidecar[], echo: number[], sameIp: boolean, outageMs: number, run: string): Promise<{ outcome: MoveOutcome; gateway: RunningGateway }> {
  // Everyone routed and answering before the move.
  await waitFor("every client's traffic to flow before the move", () => sidecars.every((s) => s.proc.exitCode === null) && (echo.at(-1) ?? 0) > epochMs() - 500, 30_000);
  const seen = sidecars.map((s) => s.backs.length);
  if (outageMs > 0) {
    // The old pod stops answering first (its VXLAN port dropped), as a pod that is deleted and
    // scheduled again is gone for a while: the sidecars know it is lost before the new one is ready.
    await mustRun("cutting the gateway off", inNs(lab, "gateway", ["nft", "-f", "-"]), {
      input: "table inet pgwbench_outage {\n  chain in {\n    type filter hook input priority -400;\n    udp dport 8472 drop\n  }\n}\n",
    });
    await Bun.sleep(outageMs);
  }
  await lab.recreateGateway({ sameIp });
  const goneAt = epochMs();
  // Generous (90 s): gateway-init and dnsmasq start slowly beside 200 sidecars probing on 2 cores.
  const waiter = lab.spawn("gateway", agentArgv(ctx, "dns-wait", OVERLAY_GW, "90000"));
  const waiterOut = collect(waiter);
  // gateway-init, then gateway-sidecar; "ready" is the earlier of its "dnsmasq running" line (logged
  // as dnsmasq is spawned, so a little early) and the first DNS answer the in-pod poller saw (late
  // when the machine is so loaded that the poller itself starts slowly): back − ready errs long.
  await mustRun("gateway-init", inNs(lab, "gateway", [ctx.bin, "gateway-init"]), { env: roleEnv(ctx, lab, "gateway") });
  const runDir = join(lab.runDir, `gw-${run}`);
  mkdirSync(runDir, { recursive: true });
  const sidecar = lab.spawn("gateway", [ctx.bin, "gateway-sidecar", "--run-dir", runDir], { env: { ...lab.roleEnv("gateway"), LOG_LEVEL: "info" } });
  const out = collect(sidecar);
  const gwLines: [number, string][] = [];
  out.onLine((l) => void gwLines.push([epochMs(), l]));
  let runningAt = Infinity;
  out.onLine((l) => {
    if (l.includes("dnsmasq running")) runningAt = Math.min(runningAt, epochMs());
  });
  // Generous: with 200 sidecars probing every 250 ms on 2 cores, gateway-init and the sidecar start slowly.
  await waitFor("the gateway's dnsmasq to start", () => runningAt < Infinity || sidecar.exitCode !== null, 60_000);
  if (sidecar.exitCode !== null) throw new Error(`gateway-sidecar exited ${sidecar.exitCode}:\n${out.text()}`);
  const gateway: RunningGateway = { sidecar, out };
  const code = await waiter.exited;
  const m = /ready (\S+)/.exec(waiterOut.text());
  if (code !== 0 || !m) throw new Error(`the new gateway's DNS never answered: ${waiterOut.text()}`);
  const readyAt = Math.min(Number(m[1]), runningAt);
  const backAt: number[] = [];
  await waitFor(
    `every client back after the gateway moved (${sameIp ? "same" : "new"} IP)`,
    () => {
      backAt.length = 0;
      for (let i = 0; i < sidecars.length; i++) {
        const b = sidecars[i]!.backs[seen[i]!];
        if (b === undefined) return false;
        backAt.push(b);
      }
      return true;
    },
    GIVE_UP_MS,
  );
  let echoAt: number | undefined;
  await waitFor("client-0's echo through the new gateway", () => (echoAt = echo.find((t) => t > goneAt)) !== undefined, 10_000).catch(() => {});
  const rel = backAt.map((t) => t - readyAt);
  if (process.env.PGW_BENCH_SLOW_LOG) {
    // Diagnosis: the three slowest clients' sidecar lines of this move, ms from ready.
    const slow = rel.map((r, i) => [r, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 3);
    const text = slow
      .map(([r, i]) => `== ${sidecars[i]!.pod} back ${r.toFixed(0)} ms (gone ${(goneAt - readyAt).toFixed(0)})\n` + sidecars[i]!.lines.filter(([t]) => t > goneAt - 5000).map(([t, l]) => `${(t - readyAt).toFixed(0).padStart(7)} ${l}`).join("\n"))
      .join("\n");
    // Every client's DHCP renewals in flight, per 500 ms from 5 s before the old gateway left.
    const from = goneAt - 5000;
    const buckets = Math.ceil((Math.max(...backAt) - from) / 500) + 1;
    const inFlight = new Array<number>(buckets).fill(0);
    for (const sc of sidecars) {
      let startAt: number | undefined;
      for (const [t, l] of sc.lines) {
        if (/renewing the DHCP lease .* now|renewing the DHCP lease of \S+ at/.test(l) && !l.includes("failed")) startAt = t;
        else if (startAt !== undefined && /DHCP lease of \S+ (renewed|rebound)|(renewing|rebinding) the DHCP lease of \S+ failed/.test(l)) {
          for (let b = 0; b < buckets; b++) if (from + b * 500 + 500 > startAt && from + b * 500 < t) inFlight[b]!++;
          startAt = undefined;
        }
      }
      if (startAt !== undefined) for (let b = 0; b < buckets; b++) if (from + b * 500 + 500 > startAt) inFlight[b]!++;
    }
    const hist = `renewals in flight per 500 ms from ${(from - readyAt).toFixed(0)} ms: ${inFlight.join(" ")}`;
    const gw = gwLines.map(([t, l]) => `${(t - readyAt).toFixed(0).padStart(7)} ${l}`).join("\n");
    writeFileSync(`${process.env.PGW_BENCH_SLOW_LOG}-${run}.txt`, hist + "\n" + text + "\n== the new gateway's sidecar\n" + gw + "\n");
  }
  return {
    outcome: { sameIp, outageMs, lastBackMs: Math.max(...rel), medianBackMs: summarize(rel).median, echoBackMs: echoAt === undefined ? undefined : echoAt - readyAt },
    gateway,
  };
}

interface SizeOutcome {
  n: number;
  /** Why this size stopped early (its figures are what it measured before). */
  error?: string;
  storm: StormOutcome;
  sidecarsWatchingMs: number;
  moves: MoveOutcome[];
  reinits: number;
  neighbourTableRaised: boolean;
}

async function runSize(ctx: BenchContext, n: number, moves: number): Promise<SizeOutcome> {
  const restore = n >= RAISE_FROM ? raiseNeighbourTable(ctx) : undefined;
  let lab: Lab | undefined;
  try {
    const t0 = performance.now();
    lab = await benchLab(ctx, { clients: n });
    ctx.log(`scale: ${n} client(s): lab built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    let gateway = await startGateway(ctx, lab, "gw-0");
    const storm = await clientInitStorm(ctx, lab);
    ctx.log(`scale: ${n} client-init(s) started together: the last ready after ${storm.lastReadyMs.toFixed(0)} ms (${storm.retries} retried), CPU median ${summarize(storm.cpuMs).median.toFixed(0)} ms each`);
    const s0 = epochMs();
    const sidecars = startSidecars(ctx, lab);
    await waitFor(`${n} client-sidecars to start watching`, () => sidecars.every((s) => s.out.text().includes("watching gateway") || s.proc.exitCode !== null), 60_000);
    const dead = sidecars.find((s) => s.proc.exitCode !== null);
    if (dead) throw new Error(`client-sidecar in ${dead.pod} exited ${dead.proc.exitCode}:\n${dead.out.text()}`);
    const sidecarsWatchingMs = epochMs() - s0;
    const echo: number[] = [];
    const poller = ctx.cleanup.addProc(lab.spawn("client-0", agentArgv(ctx, "udp-poll", LAB.internetIp, String(LAB.echoUdpPort), "20")));
    collect(poller).onLine((l) => {
      const m = /^ok (\S+) (\S+)$/.exec(l);
      if (m) echo.push(Number(m[2]));
    });
    const outcomes: MoveOutcome[] = [];
    let error: string | undefined;
    try {
      for (let i = 0; i < moves; i++) {
        for (const [sameIp, outageMs] of n === 1 ? ([[false, 0], [true, 0], [false, OUTAGE_MS], [true, OUTAGE_MS]] as const) : ([[false, 0], [true, 0]] as const)) {
          if (ctx.cleanup.interrupted) throw new Error("interrupted");
          // A different phase of the sidecars' probe cycle each run.
          await Bun.sleep(1000 + Math.random() * 2000);
          void gateway; // recreateGateway() kills the old pod's processes
          const r = await moveGateway(ctx, lab, sidecars, echo, sameIp, outageMs, `n${n}-${i}-${sameIp ? "s" : "m"}${outageMs ? "o" : ""}`);
          gateway = r.gateway;
          outcomes.push(r.outcome);
          const o = r.outcome;
          ctx.log(
            `scale: ${n} client(s), gateway re-created at ${sameIp ? "the same" : "a new"} IP${outageMs ? ` after a ${outageMs / 1000} s outage` : ""}: the last back ${o.lastBackMs.toFixed(0)} ms after the new gateway was ready (median ${o.medianBackMs.toFixed(0)} ms; client-0's echo ${o.echoBackMs?.toFixed(0) ?? "—"} ms)`,
          );
        }
      }
    } catch (e) {
      if (ctx.cleanup.interrupted) throw e;
      error = (e as Error).message;
      ctx.log(`scale: ${n} client(s): stopped after ${outcomes.length} move(s): ${error}`);
    }
    const reinits = sidecars.reduce((a, s) => a + (s.out.text().split("re-initialising the tunnel").length - 1), 0);
    for (const s of sidecars) s.proc.kill("SIGKILL");
    poller.kill("SIGKILL");
    return { n, ...(error ? { error } : {}), storm, sidecarsWatchingMs, moves: outcomes, reinits, neighbourTableRaised: restore !== undefined };
  } finally {
    if (lab) await destroyBenchLab(ctx, lab);
    restore?.();
  }
}

export async function scaleGroup(ctx: BenchContext): Promise<GroupResult> {
  const t0 = performance.now();
  const sizes = ctx.opts.scaleSizes;
  const out: SizeOutcome[] = [];
  for (const n of sizes) {
    if (ctx.cleanup.interrupted) throw new Error("interrupted");
    // One client: several moves (its figure is a distribution); many: one move of each kind.
    out.push(await runSize(ctx, n, n === 1 ? Math.max(1, Math.ceil(ctx.opts.runs / 2)) : 1));
  }
  const figures: Figure[] = [];
  const clamp = (xs: number[]) => xs.map((x) => Math.max(0, x));
  for (const s of out) {
    const label = s.n === 1 ? "1 client" : `${s.n} clients`;
    figures.push({ key: `scale.ready.${s.n}`, label: `${label} started together: the last ready (client-init exit)`, unit: "ms", ours: summarize([s.storm.lastReadyMs]) });
    figures.push({ key: `scale.cpu.${s.n}`, label: `${label}: CPU per client-init (median of ${s.storm.cpuMs.length})`, unit: "ms", ours: summarize(s.storm.cpuMs) });
    for (const [sameIp, outage] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const ms = s.moves.filter((m) => m.sameIp === sameIp && m.outageMs > 0 === outage);
      if (!ms.length) continue;
      figures.push({
        key: `scale.back.${sameIp ? "same" : "new"}${outage ? ".outage" : ""}.${s.n}`,
        label: `${label}: the last back after the gateway pod was re-created at ${sameIp ? "the same IP" : "a new IP"}${outage ? ` after a ${OUTAGE_MS / 1000} s outage` : " at once"}`,
        unit: "ms",
        ours: summarize(clamp(ms.map((m) => m.lastBackMs))),
        target: { op: "<=", value: s.n === 1 ? 500 : 1500 },
        ...(s.n === 1 ? { note: "target: median ≤ 0.5 s, max ≤ 1 s" } : {}),
      });
    }
    const echoes = s.moves.map((m) => m.echoBackMs).filter((x): x is number => x !== undefined);
    if (echoes.length) figures.push({ key: `scale.echo.${s.n}`, label: `${label}: client-0's traffic back (UDP echo every 20 ms), both kinds of move`, unit: "ms", ours: summarize(clamp(echoes)) });
  }
  return {
    id: "scale",
    title: "Many clients",
    figures,
    facts: [
      ...out.filter((s) => s.error).map((s) => ({ label: `${s.n} client(s): stopped early`, value: s.error!.split("\n")[0]! })),
      ...out.map((s) => ({ label: `${s.n} client(s): client-inits retried / sidecars' full re-initialisations / neighbour table raised`, value: `${s.storm.retries} / ${s.reinits} / ${s.neighbourTableRaised ? "yes" : "no"}` })),
      ...out.map((s) => ({ label: `${s.n} client(s): all sidecars watching after`, value: `${(s.sidecarsWatchingMs / 1000).toFixed(1)} s` })),
    ],
    notes: [
      `One lab per size (${sizes.join(", ")} client pods, DHCP, default settings: probe every 2 s, 1 failure before acting). Ready = client-init's exit; the storm starts every client-init at once; a failed client-init is started again at once (the kubelet would back off) and counted. CPU = user + system time of each client-init from the kernel's accounting.`,
      `Back = the client's sidecar logs that the gateway answers again (its probe through the tunnel; every 250 ms while lost), measured from the new gateway being ready: the earlier of its sidecar's "dnsmasq running" line and the first answer on 172.16.0.1 of a poller inside the new pod (every 5 ms). The gateway pod is re-created by the lab (its namespace deleted and made again: new MAC; the cluster DNS answers the new IP before gateway-init runs), at a new IP and at the same IP in turn — "at once": the lab re-creates a pod within about a second, sooner than a sidecar probing every 2 s may notice the old one is gone, so that figure includes the detection; one client is also measured after a ${OUTAGE_MS / 1000} s outage (the old pod's VXLAN port dropped first), where the sidecar knows the gateway is lost before the new one is ready, as when a real pod is deleted and scheduled again; negative values (back before dnsmasq answered, on the old lease of a probe) count as 0.`,
      `Sizes of ${RAISE_FROM} and more run with the kernel's neighbour table raised (gc_thresh1/2/3 ${RAISED.gc_thresh1}/${RAISED.gc_thresh2}/${RAISED.gc_thresh3}; restored after): one table is shared by every namespace of the machine, and 200 pods overflow the defaults (128/512/1024).`,
    ],
    durationMs: performance.now() - t0,
    data: { sizes: out },
  };
}
