// Decides whether a role that changes network state may run here. Pure: the facts are read
// by sys/host-safety.ts. The danger we guard against is a developer running client-init on
// their own machine and losing their default route.

export interface HostFacts {
  /** readlink /proc/self/ns/net, e.g. "net:[4026531840]"; undefined if unreadable. */
  selfNetNs: string | undefined;
  /** readlink /proc/1/ns/net; undefined if unreadable (then we cannot prove separation). */
  pid1NetNs: string | undefined;
  kubernetesServiceHost: string | undefined;
  dockerEnv: boolean;
  containerEnv: boolean;
}

export type SafetyVerdict = { ok: true; why: string } | { ok: false; why: string };

export function decideHostSafety(f: HostFacts, allowHostNetwork: boolean): SafetyVerdict {
  if (allowHostNetwork) return { ok: true, why: "--allow-host-network given" };
  if (f.kubernetesServiceHost) return { ok: true, why: "KUBERNETES_SERVICE_HOST is set (running in a pod)" };
  if (f.dockerEnv) return { ok: true, why: "/.dockerenv exists (running in a container)" };
  if (f.containerEnv) return { ok: true, why: "/run/.containerenv exists (running in a container)" };
  if (f.selfNetNs && f.pid1NetNs && f.selfNetNs !== f.pid1NetNs)
    return { ok: true, why: `network namespace ${f.selfNetNs} differs from PID 1's ${f.pid1NetNs}` };
  return {
    ok: false,
    why:
      "refusing to change network state: this process shares PID 1's network namespace and nothing says it runs in a container " +
      "(no KUBERNETES_SERVICE_HOST, /.dockerenv or /run/.containerenv), so it would rewrite this host's own routes. " +
      "Run it inside a pod, a container or a network namespace (`ip netns exec <ns> ...`, or `pod-gateway lab`), " +
      "or pass --allow-host-network if this really is a disposable host.",
  };
}
