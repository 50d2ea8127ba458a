// Kernel parameters through /proc/sys (per network namespace for net.*). Writing needs a
// writable /proc/sys: a privileged container, or the sysctl set by the pod spec instead.
import { readFileSync, writeFileSync } from "node:fs";
import { StepError } from "../core/errors.ts";

export interface Sysctl {
  read(key: string): string | undefined;
  write(key: string, value: string): void;
}

export function sysctlPath(key: string, root = "/proc/sys"): string {
  return `${root}/${key.replaceAll(".", "/")}`;
}

export class ProcSysctl implements Sysctl {
  constructor(private readonly root = "/proc/sys") {}
  read(key: string): string | undefined {
    try {
      return readFileSync(sysctlPath(key, this.root), "utf8").trim();
    } catch {
      return undefined;
    }
  }
  write(key: string, value: string): void {
    writeFileSync(sysctlPath(key, this.root), value + "\n");
  }
}

/**
 * Set a sysctl unless it already has the value (so a pod that sets it through
 * securityContext.sysctls needs no write access). `privilege` says what the container needs.
 */
export function ensureSysctl(sysctl: Sysctl, key: string, value: string, step: string, privilege: string): boolean {
  if (sysctl.read(key) === value) return false;
  try {
    sysctl.write(key, value);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const ro = err.code === "EROFS" || err.code === "EACCES" || err.code === "EPERM";
    throw new StepError(step, `cannot write ${value} to ${sysctlPath(key)}: ${err.code ?? err.message}${ro ? ` (/proc/sys is read-only here: ${privilege})` : ""}`, { cause: e });
  }
  const now = sysctl.read(key);
  if (now !== value) throw new StepError(step, `${sysctlPath(key)} is ${now ?? "unreadable"} after writing ${value}`);
  return true;
}
