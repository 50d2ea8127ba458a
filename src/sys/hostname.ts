// The host name, as os.hostname() gives it (the nodename of this UTS namespace: Kubernetes sets it
// to the pod's name), by gethostname(2) through libc: node:os (and node:fs, which reading /proc
// would need) are modules of their own that every client process would otherwise load at
// start-up (~2 ms of CPU each) for this one call. node:os only if that call fails.
import { hostName } from "./fs.ts";

export function hostname(): string {
  try {
    const name = hostName().trim();
    if (name !== "") return name;
  } catch {}
  return (process.getBuiltinModule("node:os") as typeof import("node:os")).hostname();
}
