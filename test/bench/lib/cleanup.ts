// Everything the bench starts or creates is registered here and removed at the end, on failure,
// on SIGINT/SIGTERM, and (best effort, synchronously) when the process exits any other way:
// labs (by id, so a half-built one goes too), throwaway namespaces (their processes first),
// long-running processes, temporary directories. The host's own network is never touched.
import { spawnSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { destroyLabById } from "../../../src/lab/lab.ts";
import { killNamespaceProcesses } from "../../../src/lab/procs.ts";

const REPO = join(import.meta.dir, "..", "..", "..");

export class Cleanup {
  private readonly labIds = new Set<string>();
  private readonly namespaces = new Set<string>();
  private readonly procs = new Set<Subprocess>();
  private readonly dirs = new Set<string>();
  /** Synchronous restores of something the bench changed (host sysctls): run last, each once. */
  private readonly restores = new Set<() => void>();
  private running: Promise<string[]> | undefined;
  /** Set once an interrupt started the teardown: groups stop starting new work. */
  interrupted = false;

  addLab(id: string): void {
    this.labIds.add(id);
  }
  async removeLab(id: string): Promise<void> {
    await destroyLabById(id);
    this.labIds.delete(id);
  }
  addNamespace(ns: string): void {
    this.namespaces.add(ns);
  }
  async removeNamespace(ns: string): Promise<void> {
    await deleteNamespace(ns);
    this.namespaces.delete(ns);
  }
  addProc<T extends Subprocess>(p: T): T {
    this.procs.add(p);
    void p.exited.then(() => this.procs.delete(p));
    return p;
  }
  addDir(d: string): string {
    this.dirs.add(d);
    return d;
  }
  /** `fn` must be synchronous and idempotent (it may also be called by its owner). */
  addRestore(fn: () => void): void {
    this.restores.add(fn);
  }

  private runRestores(problems: string[]): void {
    for (const fn of this.restores) {
      try {
        fn();
      } catch (e) {
        problems.push(`restoring: ${(e as Error).message}`);
      }
    }
    this.restores.clear();
  }

  /** Remove everything registered; returns the problems (never throws). Safe to call twice. */
  runAll(): Promise<string[]> {
    this.running ??= this.doRunAll();
    return this.running;
  }

  private async doRunAll(): Promise<string[]> {
    const problems: string[] = [];
    for (const p of this.procs) {
      try {
        // Spawned detached: the group holds whatever the process started.
        process.kill(-p.pid, "SIGKILL");
      } catch {
        try {
          p.kill("SIGKILL");
        } catch {}
      }
    }
    for (const id of this.labIds) {
      try {
        await destroyLabById(id);
        this.labIds.delete(id);
      } catch (e) {
        problems.push(`lab ${id}: ${(e as Error).message}`);
      }
    }
    for (const ns of this.namespaces) {
      try {
        await deleteNamespace(ns);
        this.namespaces.delete(ns);
      } catch (e) {
        problems.push(`namespace ${ns}: ${(e as Error).message}`);
      }
    }
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    this.dirs.clear();
    this.runRestores(problems);
    return problems;
  }

  /** Last resort on process exit (no awaiting possible): `lab down`, `ip netns del`, rm. */
  runAllSync(): void {
    for (const p of this.procs) {
      try {
        process.kill(-p.pid, "SIGKILL");
      } catch {}
    }
    for (const id of this.labIds) spawnSync(process.execPath, [join(REPO, "src/main.ts"), "lab", "down", "--id", id], { stdio: "ignore" });
    for (const ns of this.namespaces) {
      const pids = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout ?? "";
      for (const pid of pids.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {}
      }
      spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
    }
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    this.runRestores([]);
  }

  /**
   * SIGINT/SIGTERM: stop, tear everything down, exit 130/143. A second signal during the
   * teardown falls back to the synchronous path and exits at once.
   */
  installSignalHandlers(log: (line: string) => void): void {
    let count = 0;
    const onSignal = (sig: NodeJS.Signals, code: number) => {
      count++;
      this.interrupted = true;
      if (count > 1) {
        log(`${sig} again: removing what is left synchronously and exiting`);
        this.runAllSync();
        process.exit(code);
      }
      log(`${sig}: stopping, removing every lab, namespace and process the bench started`);
      void this.runAll().then((problems) => {
        for (const p of problems) log(`cleanup: ${p}`);
        log(problems.length ? "cleanup finished with problems" : "cleanup finished: nothing left behind");
        process.exit(code);
      });
    };
    process.on("SIGINT", () => onSignal("SIGINT", 130));
    process.on("SIGTERM", () => onSignal("SIGTERM", 143));
    process.on("exit", () => this.runAllSync());
  }
}

/**
 * Namespaces named <prefix><pid>-<n> whose bench process is gone (it was SIGKILLed, or the
 * machine's OOM killer struck): removed at the start of the next run. Returns their names.
 */
export async function sweepStaleNamespaces(prefix: string): Promise<string[]> {
  let names: string[] = [];
  try {
    names = readdirSync("/run/netns");
  } catch {
    return [];
  }
  const stale = names.filter((n) => {
    const m = new RegExp(`^${prefix}(\\d+)-\\d+$`).exec(n);
    if (!m) return false;
    try {
      process.kill(Number(m[1]), 0);
      return false; // its bench is still running
    } catch {
      return true;
    }
  });
  for (const ns of stale) await deleteNamespace(ns);
  return stale;
}

/** Kill the processes of a namespace, then delete it. A namespace that is gone is success. */
export async function deleteNamespace(ns: string): Promise<void> {
  const survivors = await killNamespaceProcesses([ns], 500);
  if (survivors.length) throw new Error(`deleting namespace ${ns}: processes ${survivors.join(", ")} survived SIGKILL`);
  const r = Bun.spawnSync(["ip", "netns", "del", ns], { stderr: "pipe" });
  if (r.exitCode !== 0 && existsNetns(ns)) throw new Error(`deleting namespace ${ns}: ${r.stderr.toString().trim()}`);
}

export function existsNetns(ns: string): boolean {
  try {
    return readdirSync("/run/netns").includes(ns);
  } catch {
    return false;
  }
}
