// Reads the facts decideHostSafety needs and enforces its verdict.
import { pathExists, readLink } from "./fs.ts";
import { decideHostSafety, type HostFacts } from "../core/host-safety.ts";
import { UnsafeHostError } from "../core/errors.ts";
import { log } from "./log.ts";

function readNs(path: string): string | undefined {
  try {
    return readLink(path);
  } catch {
    return undefined;
  }
}

export function readHostFacts(env: Record<string, string | undefined> = process.env): HostFacts {
  return {
    selfNetNs: readNs("/proc/self/ns/net"),
    pid1NetNs: readNs("/proc/1/ns/net"),
    kubernetesServiceHost: env.KUBERNETES_SERVICE_HOST || undefined,
    dockerEnv: pathExists("/.dockerenv"),
    containerEnv: pathExists("/run/.containerenv"),
  };
}

/** Throws UnsafeHostError unless this looks like a pod, container or separate namespace. */
export function assertSafeToChangeNetwork(allowHostNetwork: boolean, facts: HostFacts = readHostFacts()): void {
  const v = decideHostSafety(facts, allowHostNetwork);
  if (!v.ok) throw new UnsafeHostError(v.why);
  log().withTag("safety").debug(`network changes allowed: ${v.why}`);
}
