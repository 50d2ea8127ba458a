// Which nat.conf entry belongs to a pod. The reference cut the hostname at the first dash, so
// "my-app-7d9f8b6c4d-x2x4z" matched an entry "my" and never "my-app". We match the exact name
// first, then the name of the workload that owns the pod (worked out from the suffixes Kubernetes
// appends), and only then the reference's rule, flagged so the caller can warn about it.
import type { NatEntry } from "../settings/types.ts";

export type NatMatchHow = "exact" | "workload" | "prefix";

export interface NatMatch {
  entry: NatEntry;
  how: NatMatchHow;
  /** The name that matched the entry (the pod name, a workload name, or the text before the first dash). */
  matched: string;
  /** Set for "prefix" matches: the reference's rule, kept for compatibility but ambiguous. */
  warning?: string;
}

/**
 * Kubernetes' random name suffixes (generateName, pod-template-hash) use this alphabet: no
 * vowels (no accidental words) and no 0, 1, 3 (apimachinery util/rand). Requiring it keeps a
 * name like "web-proxy" from being read as "web" plus a random suffix.
 */
const K = "[bcdfghjklmnpqrstvwxz2456789]";
const STATEFULSET = /^(.+)-(0|[1-9][0-9]*)$/; // name-<ordinal>
const DEPLOYMENT = new RegExp(`^((.+)-${K}{6,10})-${K}{5}$`); // name-<pod-template-hash>-<suffix>
const CRONJOB = new RegExp(`^((.+)-[0-9]{6,12})-${K}{5}$`); // name-<scheduled minute>-<suffix>
const GENERATED = new RegExp(`^(.+)-${K}{5}$`); // DaemonSet, Job, ReplicaSet: name-<suffix>

/** Workload names a pod name may come from, most specific owner last (Deployment before its ReplicaSet). */
export function workloadCandidates(podName: string): string[] {
  const out: string[] = [];
  const add = (s: string | undefined): void => {
    if (s && !out.includes(s) && s !== podName) out.push(s);
  };
  const d = DEPLOYMENT.exec(podName);
  if (d) add(d[2]); // the Deployment
  const c = CRONJOB.exec(podName);
  if (c) add(c[2]); // the CronJob
  const s = STATEFULSET.exec(podName);
  if (s) add(s[1]);
  if (d) add(d[1]); // the ReplicaSet
  if (c) add(c[1]); // the Job
  const g = GENERATED.exec(podName);
  if (g) add(g[1]);
  return out;
}

export function matchNatEntry(entries: readonly NatEntry[], podName: string): NatMatch | undefined {
  const pod = podName.toLowerCase();
  const byName = new Map(entries.map((e) => [e.name.toLowerCase(), e] as const));
  const exact = byName.get(pod);
  if (exact) return { entry: exact, how: "exact", matched: pod };
  for (const w of workloadCandidates(pod)) {
    const e = byName.get(w);
    if (e) return { entry: e, how: "workload", matched: w };
  }
  const dash = pod.indexOf("-");
  if (dash > 0) {
    const prefix = pod.slice(0, dash);
    const e = byName.get(prefix);
    if (e)
      return {
        entry: e,
        how: "prefix",
        matched: prefix,
        warning: `nat.conf entry ${JSON.stringify(e.name)} (${e.file}:${e.line}) matches pod ${JSON.stringify(podName)} only by the text before its first dash (the reference's rule); name the entry after the pod or its workload`,
      };
  }
  return undefined;
}
