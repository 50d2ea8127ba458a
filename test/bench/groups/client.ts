// Group 1: client time to ready. client-init (the compiled binary) from spawn to exit 0, DHCP
// mode (client-0) and static mode (client-1, nat.conf octet 10), the real gateway roles already
// up. Baselines from the same run: a hello world compiled with the same flags, started the same
// way (`ip netns exec <pod> hello`: the floor of any process), and the binary built from the base
// commit of issue 16 (which still ran `ip`: BENCH_BASE_BIN, or built from BENCH_BASE_COMMIT).
// CPU time (user + system) of every run is read from the kernel's accounting of the child.
// Every run starts from the pod as the lab built it.
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { COMPILE_FLAGS } from "../../../build.ts";
import type { Lab, PodName } from "../../../src/lab/types.ts";
import { benchLab, destroyBenchLab, inNs, LAB, roleEnv, startGateway, type BenchContext } from "../lib/context.ts";
import { mustRun } from "../lib/proc.ts";
import { summarize, type Figure, type GroupResult } from "../lib/stats.ts";

const ROUTE_PROTO = 201; // src/core/client/constants.ts: every route client-init installs carries it
const REPO = join(import.meta.dir, "..", "..", "..");
/** Issue 16's base commit: the last client that ran `ip`. */
export const BASE_COMMIT = process.env.BENCH_BASE_COMMIT ?? "7c99982";

type Variant = { key: string; pod: PodName; kind: "ours" | "base" | "hello"; mode: "dhcp" | "static" | "version" };

/** Spawn to exit, and the child's CPU time (ms, user + system) from its resource usage. */
async function timedCpu(argv: readonly string[], env: Record<string, string | undefined>): Promise<{ ms: number; cpuMs: number; code: number; stderr: string }> {
  const t0 = performance.now();
  const p = Bun.spawn([...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: env as Record<string, string> });
  const [, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const ms = performance.now() - t0;
  const u = p.resourceUsage();
  // `ip netns exec` execs the command in place: the child's usage is the command's (plus ip's setns).
  const cpuMs = u ? Number(u.cpuTime.user + u.cpuTime.system) / 1000 : NaN;
  return { ms, cpuMs, code, stderr };
}

/** A hello world compiled with the flags build.ts uses. */
async function compileHello(ctx: BenchContext): Promise<string> {
  const dir = ctx.cleanup.addDir(mkdtempSync(join(tmpdir(), "pgw-bench-client-hello-")));
  writeFileSync(join(dir, "hello.ts"), 'console.log("hello");\n');
  const out = join(dir, "hello");
  await mustRun("compiling hello world", [ctx.bun, "build", join(dir, "hello.ts"), ...COMPILE_FLAGS, "--outfile", out]);
  return out;
}

/** The binary of BASE_COMMIT: BENCH_BASE_BIN, or built from `git archive` of that commit. */
async function baseBinary(ctx: BenchContext): Promise<{ bin: string; from: string }> {
  if (process.env.BENCH_BASE_BIN) return { bin: process.env.BENCH_BASE_BIN, from: process.env.BENCH_BASE_BIN };
  const dir = ctx.cleanup.addDir(mkdtempSync(join(tmpdir(), "pgw-bench-base-")));
  const tar = join(dir, "src.tar");
  await mustRun(`exporting ${BASE_COMMIT}`, ["git", "-C", REPO, "archive", "-o", tar, BASE_COMMIT]);
  const tree = join(dir, "tree");
  mkdirSync(tree);
  await mustRun("unpacking it", ["tar", "-x", "-f", tar, "-C", tree]);
  symlinkSync(join(REPO, "node_modules"), join(tree, "node_modules"));
  const commit = (await mustRun("naming it", ["git", "-C", REPO, "rev-parse", "--short=12", BASE_COMMIT])).stdout.trim();
  await mustRun(`building ${BASE_COMMIT}`, ["sh", "-c", `cd '${tree}' && '${ctx.bun}' build.ts`], { env: { ...process.env, POD_GATEWAY_COMMIT: commit } });
  return { bin: join(tree, "dist", "pod-gateway"), from: `${BASE_COMMIT} built with build.ts` };
}

/** The state a run may change, as text: links, IPv4 routes, IPv6 defaults. */
async function podState(lab: Lab, pod: PodName): Promise<string> {
  const links = await mustRun("reading links", ["ip", "-n", lab.ns(pod), "-o", "link", "show"]);
  const r4 = await mustRun("reading routes", ["ip", "-n", lab.ns(pod), "-4", "route", "show", "table", "all"]);
  const r6 = await mustRun("reading routes", ["ip", "-n", lab.ns(pod), "-6", "route", "show", "default"]);
  const names = links.stdout.split("\n").map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1]).filter(Boolean).sort();
  return JSON.stringify({ names, r4: r4.stdout.split("\n").sort(), r6: r6.stdout });
}

/** Undo client-init: tunnel (and every route through it) gone, our routes gone, default route back. */
async function restorePod(lab: Lab, pod: PodName, pristine: string): Promise<void> {
  const cmds = ["link del vxlan0", `route flush proto ${ROUTE_PROTO}`, `route replace default via ${LAB.nodeIp} dev eth0`];
  await mustRun(`restoring ${pod}`, ["ip", "-n", lab.ns(pod), "-force", "-batch", "-"], { input: cmds.join("\n") + "\n", okCodes: [1] });
  const now = await podState(lab, pod);
  if (now !== pristine) throw new Error(`restoring ${pod} did not bring back its original state:\nwant ${pristine}\nhave ${now}`);
}

export async function clientGroup(ctx: BenchContext): Promise<GroupResult> {
  const t0 = performance.now();
  const hello = await compileHello(ctx);
  const base = await baseBinary(ctx);
  const lab = await benchLab(ctx, { clients: 2, natConf: "client-1 10\n" });
  const notes: string[] = [];
  try {
    await startGateway(ctx, lab, "gw");
    const pristine = new Map<PodName, string>();
    for (const pod of ["client-0", "client-1"] as const) pristine.set(pod, await podState(lab, pod));
    const restore = (pod: PodName) => restorePod(lab, pod, pristine.get(pod)!);

    const variants: Variant[] = [
      { key: "dhcp-ours", pod: "client-0", kind: "ours", mode: "dhcp" },
      { key: "dhcp-base", pod: "client-0", kind: "base", mode: "dhcp" },
      { key: "static-ours", pod: "client-1", kind: "ours", mode: "static" },
      { key: "static-base", pod: "client-1", kind: "base", mode: "static" },
      { key: "hello", pod: "client-1", kind: "hello", mode: "static" },
      // Start-up: `version` (issue 16: ≤ 1.5 × hello world), started the same way.
      { key: "version-ours", pod: "client-1", kind: "ours", mode: "version" },
      { key: "version-base", pod: "client-1", kind: "base", mode: "version" },
    ];
    const changes = (v: Variant) => v.kind !== "hello" && v.mode !== "version";
    const argvOf = (v: Variant) =>
      inNs(lab, v.pod, v.kind === "hello" ? [hello] : [v.kind === "ours" ? ctx.bin : base.bin, v.mode === "version" ? "version" : "client-init"]);
    // One unmeasured warm-up run of each (the first lease is a new one for dnsmasq).
    for (const v of variants) {
      const r = await timedCpu(argvOf(v), roleEnv(ctx, lab, v.pod));
      if (r.code !== 0) throw new Error(`${v.key} warm-up: exit ${r.code}\n${r.stderr}`);
      if (changes(v)) await restore(v.pod);
    }
    const samples: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.key, []]));
    const cpu: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.key, []]));
    for (let i = 0; i < ctx.opts.runs; i++) {
      if (ctx.cleanup.interrupted) throw new Error("interrupted");
      // Rotate the order so drift on a shared machine does not always favour one variant.
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(i + k) % variants.length]!;
        const r = await timedCpu(argvOf(v), roleEnv(ctx, lab, v.pod));
        if (r.code !== 0) throw new Error(`${v.key} run ${i + 1}: exit ${r.code}\n${r.stderr}`);
        if (changes(v) && !r.stderr.includes("Gateway ready and reachable")) throw new Error(`${v.key} run ${i + 1}: no "Gateway ready and reachable":\n${r.stderr}`);
        samples[v.key]!.push(r.ms);
        cpu[v.key]!.push(r.cpuMs);
        if (changes(v)) await restore(v.pod);
      }
      ctx.log(`client: run ${i + 1}/${ctx.opts.runs}: ${variants.map((v) => `${v.key} ${samples[v.key]!.at(-1)!.toFixed(0)} ms (cpu ${cpu[v.key]!.at(-1)!.toFixed(0)})`).join(", ")}`);
    }
    // Where client-init's time goes: one more run of each mode at debug level (not counted).
    const steps: Record<string, string> = {};
    for (const [pod, mode] of [["client-0", "dhcp"], ["client-1", "static"]] as const) {
      const r = await mustRun(`client-init (${mode}, debug)`, inNs(lab, pod, [ctx.bin, "client-init"]), { env: roleEnv(ctx, lab, pod, { LOG_LEVEL: "debug" }) });
      const line = /step times \(ms\): (.*)$/m.exec(r.stderr)?.[1]?.trim();
      const sum = line ? [...line.matchAll(/ (\d+)(?:,|$)/g)].reduce((n, m) => n + Number(m[1]), 0) : 0;
      steps[mode] = line ? `${line} (sum ${sum} ms, against ${r.ms.toFixed(0)} ms from spawn to exit: the rest is start-up and loading the configuration)` : "(not logged)";
      await restore(pod);
    }
    const helloMs = summarize(samples.hello!);
    const helloCpu = summarize(cpu.hello!);
    notes.push(
      "Measured from spawn to exit of `ip netns exec <pod> …` (every variant pays the same `ip netns exec`). One unmeasured warm-up run of each first; the order rotates every round.",
      `Baselines: hello world compiled with build.ts's flags (the floor of any Bun process, same \`ip netns exec\`); the binary of the base commit ${BASE_COMMIT} (${base.from}), which ran \`ip\` 4 times per client-init.`,
      "CPU: user + system time of the child from the kernel's accounting (Bun's resourceUsage), `ip netns exec`'s few setns calls included.",
      "Every run starts from the pod as the lab built it (vxlan0 deleted, our routes flushed, default route back, state compared).",
    );
    const fig = (key: string, label: string, oursKey: string, baseline: { label: string; summary: ReturnType<typeof summarize> }, target?: { op: "<="; value: number }): Figure => ({
      key,
      label,
      unit: "ms",
      ours: summarize((key.includes(".cpu") ? cpu : samples)[oursKey]!),
      baseline,
      ...(target ? { target } : {}),
    });
    return {
      id: "client",
      title: "Client time to ready (client-init, gateway already up)",
      figures: [
        { ...fig("client.dhcp", "client-init, DHCP mode", "dhcp-ours", { label: "hello world (target: + 30 ms)", summary: helloMs }, { op: "<=", value: helloMs.median + 30 }), reference: "3.2 s median" },
        { ...fig("client.static", "client-init, static mode (nat.conf)", "static-ours", { label: "hello world (target: + 20 ms)", summary: helloMs }, { op: "<=", value: helloMs.median + 20 }), reference: "~0.07 s" },
        fig("client.dhcp.base", `client-init, DHCP mode: base commit ${BASE_COMMIT}`, "dhcp-base", { label: "hello world", summary: helloMs }),
        fig("client.static.base", `client-init, static mode: base commit ${BASE_COMMIT}`, "static-base", { label: "hello world", summary: helloMs }),
        fig("client.cpu.dhcp", "CPU time per client-init, DHCP mode", "dhcp-ours", { label: `base commit ${BASE_COMMIT} (target: half)`, summary: summarize(cpu["dhcp-base"]!) }, { op: "<=", value: summarize(cpu["dhcp-base"]!).median / 2 }),
        fig("client.cpu.static", "CPU time per client-init, static mode", "static-ours", { label: `base commit ${BASE_COMMIT} (target: half)`, summary: summarize(cpu["static-base"]!) }, { op: "<=", value: summarize(cpu["static-base"]!).median / 2 }),
        fig("client.cpu.startup", "CPU time of start-up (`pod-gateway version`)", "version-ours", { label: "hello world (target: 1.5×)", summary: helloCpu }, { op: "<=", value: helloCpu.median * 1.5 }),
        fig("client.cpu.startup.base", `CPU time of start-up (\`version\`): base commit ${BASE_COMMIT}`, "version-base", { label: "hello world", summary: helloCpu }),
        fig("client.startup", "start-up (`pod-gateway version`), spawn to exit", "version-ours", { label: "hello world", summary: helloMs }),
      ],
      facts: [
        { label: "programs executed per client-init (ours / base commit)", value: "0 / 4 `ip`" },
        { label: "CPU time of hello world", value: `${helloCpu.median.toFixed(1)} ms median` },
        { label: "client-init's own step times, one debug run (DHCP)", value: steps.dhcp! },
        { label: "client-init's own step times, one debug run (static)", value: steps.static! },
      ],
      notes,
      durationMs: performance.now() - t0,
    };
  } finally {
    await destroyBenchLab(ctx, lab);
  }
}
