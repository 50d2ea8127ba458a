// Group 1: client time to ready. client-init (the compiled binary, nothing but `ip` on PATH)
// from spawn to exit 0, DHCP mode (client-0) and static mode (client-1, nat.conf octet 10), the
// real gateway roles already up. Baseline floor: the very `ip` invocations client-init made
// (recorded once through a wrapper on PATH: arguments and stdin), replayed back to back by
// sh, plus in DHCP mode one exchange by busybox udhcpc (-q -n -f, no-op script) where
// client-init takes its lease. Every run starts from the pod as the lab built it.
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Lab, PodName } from "../../../src/lab/types.ts";
import { benchLab, destroyBenchLab, inNs, LAB, roleEnv, startGateway, type BenchContext } from "../lib/context.ts";
import { mustRun, timed } from "../lib/proc.ts";
import { summarize, type GroupResult } from "../lib/stats.ts";

const ROUTE_PROTO = 201; // src/core/client/constants.ts: every route client-init installs carries it

type Variant = { key: string; pod: PodName; kind: "ours" | "floor"; mode: "dhcp" | "static" };

export interface CapturedCall {
  args: string[];
  stdin: string;
}

/** `sh` text that replays recorded ip calls back to back, udhcpc before the address is set. Pure. */
export function renderFloorScript(calls: readonly CapturedCall[], tools: { ip: string; busybox: string }, dir: string, dhcp: boolean): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const lines = ["#!/bin/sh", "# floor of client-init: the same ip calls, no runtime, no planning"];
  const addrAt = calls.findIndex((c) => /^addr replace /m.test(c.stdin));
  if (dhcp && addrAt < 0) throw new Error("the recorded client-init calls set no address: cannot place the DHCP exchange");
  calls.forEach((c, i) => {
    if (dhcp && i === addrAt) lines.push(`${q(tools.busybox)} udhcpc -i vxlan0 -q -n -f -t 5 -T 1 -s /bin/true >/dev/null 2>&1 || exit 7`);
    const stdinFile = join(dir, `call-${i}.in`);
    // Reads exit 1 when a route lookup finds no route (what client-init hopes for): not checked.
    const check = c.args.includes("-j") ? "" : ` || exit ${10 + i}`;
    lines.push(`${q(tools.ip)} ${c.args.map(q).join(" ")} < ${q(stdinFile)} >/dev/null 2>&1${check}`);
  });
  return lines.join("\n") + "\n";
}

/** A wrapper named `ip` that records each call (args, stdin) in dir, then runs the real ip. */
function writeRecorder(dir: string, ipBin: string): string {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  const script = `#!/bin/sh
n=$(/bin/date +%s%N)
printf '%s\\n' "$@" > "${dir}/$n.args"
/bin/cat > "${dir}/$n.in"
exec "${ipBin}" "$@" < "${dir}/$n.in"
`;
  writeFileSync(join(bin, "ip"), script);
  chmodSync(join(bin, "ip"), 0o755);
  return bin;
}

function readRecorded(dir: string): CapturedCall[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".args"))
    .sort((a, b) => (BigInt(a.slice(0, -5)) < BigInt(b.slice(0, -5)) ? -1 : 1))
    .map((f) => ({
      args: readFileSync(join(dir, f), "utf8").split("\n").slice(0, -1),
      stdin: readFileSync(join(dir, f.replace(/\.args$/, ".in")), "utf8"),
    }));
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
  const lab = await benchLab(ctx, { clients: 2, natConf: "client-1 10\n" });
  const notes: string[] = [];
  try {
    await startGateway(ctx, lab, "gw");
    const pristine = new Map<PodName, string>();
    for (const pod of ["client-0", "client-1"] as const) pristine.set(pod, await podState(lab, pod));
    const restore = (pod: PodName) => restorePod(lab, pod, pristine.get(pod)!);

    // Record client-init's ip calls once per mode (this is also the warm-up run, not counted).
    const floors: Record<string, string> = {};
    const callCounts: Record<string, number> = {};
    for (const [pod, mode] of [["client-0", "dhcp"], ["client-1", "static"]] as const) {
      const dir = join(ctx.scratch, `client-record-${mode}`);
      mkdirSync(dir, { recursive: true });
      const bin = writeRecorder(dir, ctx.ipBin);
      await mustRun(`client-init (${mode}, recording its ip calls)`, inNs(lab, pod, [ctx.bin, "client-init"]), { env: roleEnv(ctx, lab, pod, { PATH: bin }) });
      const calls = readRecorded(dir);
      callCounts[mode] = calls.length;
      calls.forEach((c, i) => writeFileSync(join(dir, `call-${i}.in`), c.stdin));
      const script = join(dir, "floor.sh");
      writeFileSync(script, renderFloorScript(calls, { ip: ctx.ipBin, busybox: ctx.busybox }, dir, mode === "dhcp"));
      floors[mode] = script;
      await restore(pod);
      // warm the floor too (udhcpc's first lease is a new one for dnsmasq)
      await mustRun(`floor (${mode}) warm-up`, inNs(lab, pod, ["/bin/sh", script]));
      await restore(pod);
    }

    const variants: Variant[] = [
      { key: "dhcp-ours", pod: "client-0", kind: "ours", mode: "dhcp" },
      { key: "dhcp-floor", pod: "client-0", kind: "floor", mode: "dhcp" },
      { key: "static-ours", pod: "client-1", kind: "ours", mode: "static" },
      { key: "static-floor", pod: "client-1", kind: "floor", mode: "static" },
    ];
    const samples: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.key, []]));
    for (let i = 0; i < ctx.opts.runs; i++) {
      if (ctx.cleanup.interrupted) throw new Error("interrupted");
      // Rotate the order so drift on a shared machine does not always favour one variant.
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(i + k) % variants.length]!;
        const argv = v.kind === "ours" ? inNs(lab, v.pod, [ctx.bin, "client-init"]) : inNs(lab, v.pod, ["/bin/sh", floors[v.mode]!]);
        const r = await timed(argv, { env: v.kind === "ours" ? roleEnv(ctx, lab, v.pod) : process.env });
        if (r.code !== 0) throw new Error(`${v.key} run ${i + 1}: exit ${r.code}\n${r.stderr}`);
        if (v.kind === "ours" && !r.stderr.includes("Gateway ready and reachable")) throw new Error(`${v.key} run ${i + 1}: no "Gateway ready and reachable":\n${r.stderr}`);
        samples[v.key]!.push(r.ms);
        await restore(v.pod);
      }
      ctx.log(`client: run ${i + 1}/${ctx.opts.runs}: ${variants.map((v) => `${v.key} ${samples[v.key]!.at(-1)!.toFixed(0)} ms`).join(", ")}`);
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
    notes.push(
      "Measured from spawn to exit of `ip netns exec <pod> …` (both sides pay the same `ip netns exec`). One unmeasured warm-up run of each side first.",
      `The floor replays client-init's own ${callCounts.dhcp} (DHCP) / ${callCounts.static} (static) \`ip\` processes, recorded through a wrapper on PATH, back to back from sh; DHCP adds one busybox udhcpc exchange (-q -n -f, no-op script). It leaves out what only client-init does: resolving the gateway name, the runtime's start-up, and probing the gateway through the tunnel.`,
      "Every run starts from the pod as the lab built it (vxlan0 deleted, our routes flushed, default route back, state compared).",
    );
    return {
      id: "client",
      title: "Client time to ready (client-init, gateway already up)",
      figures: [
        {
          key: "client.dhcp",
          label: "client-init, DHCP mode",
          unit: "ms",
          ours: summarize(samples["dhcp-ours"]!),
          baseline: { label: "floor: same ip calls + one udhcpc exchange", summary: summarize(samples["dhcp-floor"]!) },
          target: { op: "<=", value: 150 },
          reference: "3.2 s median",
        },
        {
          key: "client.static",
          label: "client-init, static mode (nat.conf)",
          unit: "ms",
          ours: summarize(samples["static-ours"]!),
          baseline: { label: "floor: same ip calls", summary: summarize(samples["static-floor"]!) },
          reference: "~0.07 s",
        },
      ],
      facts: [
        { label: "ip processes per client-init (DHCP / static)", value: `${callCounts.dhcp} / ${callCounts.static}` },
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
