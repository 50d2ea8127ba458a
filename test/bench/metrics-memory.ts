// One-off comparison for issue 15's budget (run as root: bun test/bench/metrics-memory.ts BASE_BIN [SECONDS]):
// three client-sidecars in one lab, each running its own copy of a binary (so no page of a binary
// is shared and private memory compares like for like): the base binary (before probes and
// metrics), this one with metrics off, and this one with CLIENT_METRICS_PORT on, scraped every 5 s.
// Prints the medians of private and anonymous memory (/proc/<pid>/smaps_rollup), sampled every second.
import { appendFileSync, chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab } from "../../src/lab/lab.ts";
import type { PodName } from "../../src/lab/types.ts";
import { binPath } from "../helpers/bin.ts";
import { readMem } from "./lib/proc.ts";
import { summarize } from "./lib/stats.ts";

const base = process.argv[2];
const seconds = Number(process.argv[3] ?? 40);
if (!base) throw new Error("usage: bun test/bench/metrics-memory.ts BASE_BIN [SECONDS]");
const dir = mkdtempSync(join(tmpdir(), "pgw-metrics-mem-"));
const copy = (src: string, name: string) => {
  const p = join(dir, name);
  copyFileSync(src, p);
  chmodSync(p, 0o755);
  return p;
};
const bins = { base: copy(base, "base"), off: copy(binPath(), "off"), on: copy(binPath(), "on") };
const lab = await createLab({ clients: 3 });
try {
  const gwBin = copy(binPath(), "gw");
  await lab.exec("gateway", [gwBin, "gateway-init"], { env: lab.roleEnv("gateway") });
  const gw = lab.spawn("gateway", [gwBin, "gateway-sidecar"], { env: lab.roleEnv("gateway") });
  void gw.stdout.pipeTo(new WritableStream());
  void gw.stderr.pipeTo(new WritableStream());
  await Bun.sleep(2000);
  const cfg = join(dir, "config-metrics");
  Bun.spawnSync(["cp", "-r", lab.configDir, cfg]);
  appendFileSync(join(cfg, "settings.sh"), "\nCLIENT_METRICS_PORT=9100\n");
  const who: [PodName, string, Record<string, string>][] = [
    ["client-0", bins.base, {}],
    ["client-1", bins.off, {}],
    ["client-2", bins.on, { POD_GATEWAY_CONFIG_DIR: cfg }],
  ];
  const pids: number[] = [];
  for (const [pod, bin, env] of who) {
    await lab.exec(pod, [bin, "client-init"], { env: { ...lab.roleEnv(pod), ...env } });
    const p = lab.spawn(pod, [bin, "client-sidecar"], { env: { ...lab.roleEnv(pod), ...env, LOG_LEVEL: "info" } });
    void p.stdout.pipeTo(new WritableStream());
    void p.stderr.pipeTo(new WritableStream());
    pids.push(p.pid);
  }
  await Bun.sleep(5000);
  const samples: { priv: number[]; anon: number[] }[] = who.map(() => ({ priv: [], anon: [] }));
  let scrapes = 0;
  for (let t = 0; t < seconds; t++) {
    if (t % 5 === 0) {
      const r = await lab.exec("client-2", [process.execPath, "-e", "const r = await fetch('http://127.0.0.1:9100/metrics'); console.log(r.status)"]);
      if (r.stdout.trim() === "200") scrapes++;
    }
    pids.forEach((pid, i) => {
      const m = readMem(pid);
      samples[i]!.priv.push(m.private);
      samples[i]!.anon.push(m.anon);
    });
    await Bun.sleep(1000);
  }
  const w = Math.max(1, Math.floor(seconds / 4));
  const grow = (xs: number[]) => summarize(xs.slice(-w)).median - summarize(xs.slice(0, w)).median;
  const line = (name: string, i: number) =>
    `${name}: private ${summarize(samples[i]!.priv).median.toFixed(2)} MB, anonymous ${summarize(samples[i]!.anon).median.toFixed(2)} MB; ` +
    `growth (median of the last ${w} s − the first ${w} s): private ${grow(samples[i]!.priv).toFixed(2)} MB, anonymous ${grow(samples[i]!.anon).toFixed(2)} MB`;
  console.log(`${seconds} samples each, ${scrapes} scrapes of the metrics-on sidecar`);
  console.log(line("base binary (no probes, no metrics)", 0));
  console.log(line("this binary, metrics off", 1));
  console.log(line("this binary, CLIENT_METRICS_PORT on", 2));

  // Start-up: spawn to the "watching gateway" line, alternated, in client-0 (its sidecar stopped
  // first; SIGKILL keeps the lease in the kernel for the next start to take over).
  process.kill(pids[0]!, "SIGKILL");
  const startup = async (bin: string): Promise<number> => {
    const t0 = performance.now();
    const p = lab.spawn("client-0", [bin, "client-sidecar"], { env: { ...lab.roleEnv("client-0"), LOG_LEVEL: "info" } });
    void p.stdout.pipeTo(new WritableStream());
    const dec = new TextDecoder();
    let text = "";
    for await (const chunk of p.stderr) {
      text += dec.decode(chunk);
      if (text.includes("watching gateway")) break;
    }
    const ms = performance.now() - t0;
    p.kill("SIGKILL");
    await p.exited;
    return ms;
  };
  const times: Record<"base" | "off", number[]> = { base: [], off: [] };
  for (let i = 0; i < 12; i++) {
    times.base.push(await startup(bins.base));
    times.off.push(await startup(bins.off));
  }
  const med = (xs: number[]) => summarize(xs.slice(2)).median.toFixed(0);
  console.log(`client-sidecar start-up to "watching gateway" (10 runs each after 2 warm-ups, alternated): base ${med(times.base)} ms, this binary (metrics off) ${med(times.off)} ms`);
} finally {
  await lab.destroy();
  rmSync(dir, { recursive: true, force: true });
}
