// Which machine the figures came from: CPU model, cores, kernel, memory, runtime, binary version.
import { readFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";

export interface Machine {
  cpu: string;
  cores: number;
  kernel: string;
  memoryGiB: number;
  bun: string;
  /** `pod-gateway version` of the binary under test. */
  podGateway: string;
  date: string;
}

export function readCpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) return m[1]!.trim();
  } catch {}
  return cpus()[0]?.model ?? "unknown";
}

export function readMachine(bin: string, date = new Date()): Machine {
  const v = Bun.spawnSync([bin, "version"], { stdout: "pipe", stderr: "pipe" });
  return {
    cpu: readCpuModel(),
    cores: cpus().length,
    kernel: `Linux ${release()}`,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    bun: Bun.version,
    podGateway: v.stdout.toString().trim() || `(version failed: exit ${v.exitCode})`,
    date: date.toISOString(),
  };
}
