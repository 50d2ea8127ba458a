// Finding and ending the processes that live in the lab's namespaces. A namespace is only
// freed when its last process exits, so teardown kills by namespace membership (read from
// /proc), which also catches processes a crashed `lab up` or a test left behind.
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";

/** Inode of a named network namespace (/run/netns/<name> is a bind mount of the nsfs file). */
export function readNetnsInode(name: string): number | undefined {
  try {
    return statSync(`/run/netns/${name}`).ino;
  } catch {
    return undefined;
  }
}

/** Named network namespaces (`ip netns list` reads the same directory). */
export function readNetnsNames(): string[] {
  try {
    return readdirSync("/run/netns");
  } catch {
    return [];
  }
}

/** Pids whose network namespace is one of `inodes` (never this process). */
export function readPidsInNetns(inodes: ReadonlySet<number>): number[] {
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let link: string;
    try {
      link = readlinkSync(`/proc/${pid}/ns/net`); // "net:[4026532345]"; fails for zombies and exited pids
    } catch {
      continue;
    }
    const m = /^net:\[(\d+)\]$/.exec(link);
    if (m && inodes.has(Number(m[1]))) pids.push(pid);
  }
  return pids;
}

/** Alive means: /proc/<pid> exists and is not a zombie waiting to be reaped. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The state letter follows the command name, which is in parentheses and may contain spaces.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // ESRCH: already gone, which is the goal.
  }
}

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let left = pids.filter(isAlive);
  while (left.length > 0 && Date.now() < deadline) {
    await Bun.sleep(10);
    left = left.filter(isAlive);
  }
  return left;
}

/**
 * SIGTERM, then SIGKILL what is still there after `graceMs`. Returns the pids that survived
 * even SIGKILL (stuck in the kernel); callers report them.
 */
export async function killPids(pids: number[], graceMs = 1500): Promise<number[]> {
  if (pids.length === 0) return [];
  for (const p of pids) signal(p, "SIGTERM");
  const stubborn = await waitGone(pids, graceMs);
  for (const p of stubborn) signal(p, "SIGKILL");
  return waitGone(stubborn, 2000);
}

/** Kill every process in the named namespaces; returns survivors. */
export async function killNamespaceProcesses(names: readonly string[], graceMs?: number): Promise<number[]> {
  const inodes = new Set<number>();
  for (const n of names) {
    const ino = readNetnsInode(n);
    if (ino !== undefined) inodes.add(ino);
  }
  return killPids(readPidsInNetns(inodes), graceMs);
}
