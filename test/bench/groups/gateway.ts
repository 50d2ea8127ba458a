// Group 3: gateway-init versus port forwards. gateway-init (compiled binary) in a throwaway
// namespace shaped like a fresh gateway pod (eth0 with an address and a default route), with
// 0, 50, 200 and 1000 port-forward entries (a tcp and a udp port each), on the iptables-nft and
// nft backends: time of the first run and of a second run over it, whether the second run
// changed anything (firewall and network state compared as text), rules in the kernel after
// each, and the processes each run starts (counted twice, independently: execve calls under
// strace, and the binary's own debug log of every command it runs). Baseline: the reference
// scripts' approach for the same rules — one iptables process per rule, appended to the
// built-in chains — run from sh in the same kind of namespace; run twice it doubles every rule.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { IPT_CHAINS } from "../../../src/core/firewall/render-iptables.ts";
import { deleteNamespace } from "../lib/cleanup.ts";
import type { BenchContext } from "../lib/context.ts";
import { mustRun, timed } from "../lib/proc.ts";
import { formatRatio, formatSummary } from "../lib/report.ts";
import { meetsTarget, ratio, summarize, type Figure, type GroupResult } from "../lib/stats.ts";

const BACKENDS = ["iptables-nft", "nft"] as const;
type Backend = (typeof BACKENDS)[number];
/** nat.conf gives each pod its own static octet (2 .. FIRST_DYNAMIC_IP-1): at most this many lines. */
const MAX_PODS = 200;
/** The reference figures (REFERENCE.md), by entries. */
const REFERENCE_MS: Record<number, string> = { 0: "0.08 s", 50: "0.8 s", 200: "3.2 s, 2× the rules after a restart" };

/**
 * nat.conf with `pairs` port-forward entries (a tcp and a udp port each, ports 10000 up). Up to
 * 200 pods get one entry each; beyond that the entries are spread over 200 pods, since a pod's
 * static octet must be unique and below the DHCP range. Pure.
 */
export function renderNatConf(pairs: number): string {
  const pods = Math.min(pairs, MAX_PODS);
  const ports: number[][] = Array.from({ length: pods }, () => []);
  for (let j = 0; j < pairs; j++) ports[j % pods]!.push(10000 + j);
  return ports.map((ps, i) => `bench-${i} ${2 + i} ${ps.map((p) => `tcp:${p},udp:${p}`).join(",")}\n`).join("");
}

/**
 * The reference scripts' way of installing the same rules: from our iptables-save output, every
 * rule of our chains appended by its own iptables process to the built-in chain ours hangs from
 * (the reference used the built-in chains), our jumps left out. Pure.
 */
export function renderReferenceScript(save4: string, save6: string, tools: { iptables: string; ip6tables: string }): { script: string; rules: number } {
  const builtinOf = new Map(IPT_CHAINS.map((c) => [`${c.table}/${c.chain}`, c.builtin]));
  const lines = ["#!/bin/sh", "set -e", "# one process per rule, as the reference scripts did"];
  let rules = 0;
  for (const [save, bin] of [[save4, tools.iptables], [save6, tools.ip6tables]] as const) {
    let table = "";
    for (const raw of save.split("\n")) {
      const line = raw.trim();
      if (line.startsWith("*")) table = line.slice(1);
      const m = /^-A (\S+) (.*)$/.exec(line);
      if (!m) continue;
      const builtin = builtinOf.get(`${table}/${m[1]}`);
      if (!builtin) continue; // a jump from a built-in chain to ours
      // iptables-save quotes arguments the way sh reads them (double quotes around comments).
      lines.push(`${bin} -t ${table} -A ${builtin} ${m[2]}`);
      rules++;
    }
  }
  return { script: lines.join("\n") + "\n", rules };
}

/** Rules in the kernel, every table of every family (iptables-nft's tables are nf_tables too). */
async function countRules(ns: string): Promise<number> {
  const r = await mustRun("listing the ruleset", ["ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset"]);
  return (JSON.parse(r.stdout).nftables as Record<string, unknown>[]).filter((x) => "rule" in x).length;
}

/** Firewall and network state as comparable text (no counters, no timestamps). */
async function snapshot(ns: string): Promise<string> {
  const run = async (argv: string[]) => (await mustRun(argv.join(" "), ["ip", "netns", "exec", ns, ...argv])).stdout;
  const strip = (t: string) => t.split("\n").filter((l) => !l.startsWith("#")).map((l) => l.replace(/\[\d+:\d+\]$/, "[0:0]")).join("\n");
  return [
    strip(await run(["iptables-nft-save"])),
    strip(await run(["ip6tables-nft-save"])),
    await run(["nft", "-s", "list", "ruleset"]),
    await run(["ip", "-d", "-o", "link", "show"]),
    await run(["ip", "-o", "-4", "addr", "show"]),
    await run(["ip", "rule", "show"]),
    await run(["ip", "-4", "route", "show", "table", "all"]),
  ].join("\n## \n");
}

let podSeq = 0;
/** Throwaway namespaces carry the bench's pid, so a later run can remove what a killed one left. */
export const NS_PREFIX = "pgwbench-";
const PREFIX = `${NS_PREFIX}${process.pid}`;

/** A namespace shaped like a fresh gateway pod: eth0 (a veth whose peer stays inside) with an address and a default route. */
async function makePod(ctx: BenchContext): Promise<string> {
  const ns = `${PREFIX}-${podSeq++}`;
  ctx.cleanup.addNamespace(ns);
  await mustRun(`creating namespace ${ns}`, ["ip", "netns", "add", ns]);
  const cmds = ["link set lo up", "link add eth0 type veth peer name eth0p", "link set eth0 up", "link set eth0p up", "addr add 198.18.0.2/24 dev eth0", "route add default via 198.18.0.1"];
  await mustRun(`configuring ${ns}`, ["ip", "-n", ns, "-batch", "-"], { input: cmds.join("\n") + "\n" });
  return ns;
}

async function dropPod(ctx: BenchContext, ns: string): Promise<void> {
  await deleteNamespace(ns);
  await ctx.cleanup.removeNamespace(ns);
}

function initEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  // KUBERNETES_SERVICE_HOST: the host-safety check's sign of a pod (the namespace is one).
  return { ...process.env, KUBERNETES_SERVICE_HOST: "198.18.1.1", LOG_LEVEL: "info", ...extra };
}

interface Count {
  execve: number;
  logged: number;
}

/** Run gateway-init under strace -f, counting successful execve calls (minus its own) and its logged commands. */
async function countedRun(ctx: BenchContext, ns: string, cfg: string, tag: string): Promise<Count> {
  const out = join(ctx.scratch, `strace-${tag}.txt`);
  const r = await mustRun(`gateway-init under strace (${tag})`, ["ip", "netns", "exec", ns, "strace", "-f", "-qq", "-c", "-o", out, "-e", "trace=execve", ctx.bin, "gateway-init", "--config-dir", cfg], {
    env: initEnv({ LOG_LEVEL: "debug" }),
  });
  const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*execve$/m.exec(readFileSync(out, "utf8"));
  if (!m) throw new Error(`no execve line in strace's summary:\n${readFileSync(out, "utf8")}`);
  const calls = Number(m[1]);
  const errors = Number(m[2] ?? 0);
  const logged = r.stderr.split("\n").filter((l) => l.includes("[exec]")).length;
  return { execve: calls - errors - 1, logged };
}

export async function gatewayGroup(ctx: BenchContext): Promise<GroupResult> {
  const t0 = performance.now();
  const dir = join(ctx.scratch, "gateway");
  mkdirSync(dir, { recursive: true });
  const sizes = ctx.opts.natSizes;
  const largest = Math.max(...sizes);
  const figures: Figure[] = [];
  const facts: GroupResult["facts"] = [];
  const timeRows: string[][] = [];
  const countRows: string[][] = [];
  const data: Record<string, unknown> = {};
  const tools = { iptables: "iptables-nft", ip6tables: "ip6tables-nft" };

  for (const size of sizes) {
    if (ctx.cleanup.interrupted) throw new Error("interrupted");
    const cfgs = {} as Record<Backend, string>;
    for (const b of BACKENDS) {
      const cfg = join(dir, `${b}-${size}`);
      mkdirSync(cfg, { recursive: true });
      writeFileSync(join(cfg, "settings.sh"), `FIREWALL_BACKEND=${b}\n# every octet below the DHCP range may be a static one\nVXLAN_GATEWAY_FIRST_DYNAMIC_IP=254\n`);
      writeFileSync(join(cfg, "nat.conf"), renderNatConf(size));
      cfgs[b] = cfg;
    }

    // Counting runs (not timed): processes per run, and the iptables rules the reference script replays.
    const counts = {} as Record<Backend, { first: Count; second: Count }>;
    let reference = { script: "", rules: 0 };
    for (const b of BACKENDS) {
      const ns = await makePod(ctx);
      const first = await countedRun(ctx, ns, cfgs[b], `${b}-${size}-1`);
      if (b === "iptables-nft") {
        const s4 = await mustRun("iptables-nft-save", ["ip", "netns", "exec", ns, "iptables-nft-save"]);
        const s6 = await mustRun("ip6tables-nft-save", ["ip", "netns", "exec", ns, "ip6tables-nft-save"]);
        reference = renderReferenceScript(s4.stdout, s6.stdout, tools);
      }
      const second = await countedRun(ctx, ns, cfgs[b], `${b}-${size}-2`);
      counts[b] = { first, second };
      await dropPod(ctx, ns);
    }
    const refScript = join(dir, `reference-${size}.sh`);
    writeFileSync(refScript, reference.script);

    const times: Record<string, number[]> = { "iptables-nft-1": [], "iptables-nft-2": [], "nft-1": [], "nft-2": [], reference: [] };
    const rules: Record<string, { first: number; second: number }[]> = { "iptables-nft": [], nft: [] };
    const changed: Record<string, number> = { "iptables-nft": 0, nft: 0 };
    const refRuns = size === largest ? Math.min(ctx.opts.referenceRunsLargest, ctx.opts.runs) : ctx.opts.runs;
    let refRules = { first: 0, second: 0 };
    for (let i = 0; i < ctx.opts.runs; i++) {
      if (ctx.cleanup.interrupted) throw new Error("interrupted");
      const jobs: (() => Promise<void>)[] = BACKENDS.map((b) => async () => {
        const ns = await makePod(ctx);
        const argv = ["ip", "netns", "exec", ns, ctx.bin, "gateway-init", "--config-dir", cfgs[b]];
        const r1 = await timed(argv, { env: initEnv() });
        if (r1.code !== 0) throw new Error(`gateway-init (${b}, ${size} entries): exit ${r1.code}\n${r1.stderr}`);
        const snap1 = await snapshot(ns);
        const n1 = await countRules(ns);
        const r2 = await timed(argv, { env: initEnv() });
        if (r2.code !== 0) throw new Error(`gateway-init again (${b}, ${size} entries): exit ${r2.code}\n${r2.stderr}`);
        const snap2 = await snapshot(ns);
        const n2 = await countRules(ns);
        times[`${b}-1`]!.push(r1.ms);
        times[`${b}-2`]!.push(r2.ms);
        rules[b]!.push({ first: n1, second: n2 });
        if (snap1 !== snap2) changed[b]!++;
        await dropPod(ctx, ns);
      });
      if (i < refRuns)
        jobs.push(async () => {
          const ns = await makePod(ctx);
          const r = await timed(["ip", "netns", "exec", ns, "/bin/sh", refScript], { env: process.env });
          if (r.code !== 0) throw new Error(`reference script (${size} entries): exit ${r.code}\n${r.stderr}`);
          times.reference!.push(r.ms);
          if (i === 0) {
            // The reference's restart: the same script again appends every rule a second time.
            const first = await countRules(ns);
            await mustRun("reference script, second run", ["ip", "netns", "exec", ns, "/bin/sh", refScript]);
            refRules = { first, second: await countRules(ns) };
          }
          await dropPod(ctx, ns);
        });
      // Rotate: no side always runs first (or right after a namespace teardown).
      for (let k = 0; k < jobs.length; k++) await jobs[(i + k) % jobs.length]!();
    }
    ctx.log(
      `gateway: ${size} entries: iptables-nft ${med(times["iptables-nft-1"]!)} / ${med(times["iptables-nft-2"]!)} ms, nft ${med(times["nft-1"]!)} / ${med(times["nft-2"]!)} ms, ` +
        `reference ${med(times.reference!)} ms (${reference.rules} iptables processes)`,
    );

    const refSummary = summarize(times.reference!);
    const refLabel = `reference approach: ${reference.rules} iptables processes`;
    const target = size === 200 ? { op: "<=" as const, value: 150 } : undefined;
    const byBackend = {} as Record<Backend, { first: Figure; second: Figure }>;
    for (const b of BACKENDS) {
      const first: Figure = {
        key: `gateway.${b}.${size}.first`,
        label: `${b}, ${size} entries, first run`,
        unit: "ms",
        ours: summarize(times[`${b}-1`]!),
        baseline: { label: refLabel, summary: refSummary },
        target,
        reference: REFERENCE_MS[size],
      };
      const second: Figure = { ...first, key: `gateway.${b}.${size}.second`, label: `${b}, ${size} entries, second run`, ours: summarize(times[`${b}-2`]!), reference: undefined };
      figures.push(first, second);
      byBackend[b] = { first, second };
    }
    const cell = (f: Figure) => `${formatSummary(f.ours, "ms")}${f.target ? (meetsTarget(f) ? " ✅" : " ❌") : ""}`;
    timeRows.push([
      String(size),
      ...BACKENDS.flatMap((b) => [cell(byBackend[b].first), cell(byBackend[b].second)]),
      `${formatSummary(refSummary, "ms")} (n=${refSummary.n}, ${reference.rules} processes)`,
      BACKENDS.map((b) => formatRatio(ratio(byBackend[b].first))).join(" / "),
      REFERENCE_MS[size] ?? "—",
    ]);
    const rs = (b: Backend) => rules[b]!;
    const sameCount = (b: Backend) => rs(b).every((r) => r.first === r.second);
    countRows.push([
      String(size),
      BACKENDS.map((b) => `${counts[b].first.execve}, ${counts[b].second.execve}${counts[b].first.logged !== counts[b].first.execve || counts[b].second.logged !== counts[b].second.execve ? ` (log: ${counts[b].first.logged}, ${counts[b].second.logged})` : ""}`).join(" / "),
      BACKENDS.map((b) => `${rs(b)[0]?.first} → ${rs(b)[0]?.second}${sameCount(b) ? "" : " (differs in some runs!)"}`).join(" / "),
      BACKENDS.map((b) => `${changed[b]} of ${rs(b).length}`).join(" / "),
      `${reference.rules} processes; ${refRules.first} → ${refRules.second} rules`,
    ]);
    data[String(size)] = { times, rules, changed, counts, referenceRules: refRules, referenceProcesses: reference.rules, referenceRuns: refRuns };
  }
  return {
    id: "gateway",
    title: "Gateway init versus port forwards",
    figures,
    tables: [
      {
        title: "Time from spawn to exit, median (min–max) of each",
        head: ["Entries", "iptables-nft, first run", "iptables-nft, second run", "nft, first run", "nft, second run", "Baseline: reference approach, same rules", "Ours / baseline (first run: iptables-nft / nft)", "Reference scripts"],
        rows: timeRows,
      },
      {
        title: "Processes started and rules left (iptables-nft / nft)",
        head: ["Entries", "Processes per run (first, second)", "Rules in the kernel (after first → after second run)", "Second run changed the state", "Reference approach (rules after one → two runs)"],
        rows: countRows,
      },
    ],
    facts,
    notes: [
      "An entry is a port forward with a tcp and a udp port (4 rules: DNAT and FORWARD each), as in the reference's measurement. nat.conf gives every pod its own static octet below the DHCP range, so 1000 entries are spread over 200 pods (5 each).",
      "Each run starts in a fresh namespace shaped like a gateway pod; the second run follows the first in the same namespace (a container restart). Both measured from spawn to exit of `ip netns exec … gateway-init`.",
      `The baseline replays the same rules (taken from our iptables-nft result) one iptables-nft process per rule, as the reference scripts did; at ${largest} entries it runs ${Math.min(ctx.opts.referenceRunsLargest, ctx.opts.runs)} time(s) only (one run takes tens of seconds; the 15-minute budget rules).`,
      "Kill switch on (the shipped default), VPN_INTERFACE=tun0. Target (issue 8): ≤ 150 ms with 200 entries (✅/❌ in the table) and zero duplicates. Processes are counted as successful execve calls under strace -f (the binary's own log of the commands it runs agrees unless shown).",
    ],
    durationMs: performance.now() - t0,
    data,
  };
}

function med(xs: number[]): string {
  return xs.length ? summarize(xs).median.toFixed(0) : "-";
}
