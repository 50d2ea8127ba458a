// In-cluster configuration for talking to the Kubernetes API, resolved from the environment
// and the service-account files the kubelet mounts (pure: the caller reads the files).
import type { ConfigIssue } from "../errors.ts";
import { apiBaseUrl } from "./url.ts";

export const DEFAULT_SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/** The container name the admission webhook gives the injected client sidecar. */
export const DEFAULT_CONTAINER_NAME = "gateway-sidecar";

export interface KubeConfig {
  /** https://host:port, IPv6 bracketed. */
  apiBase: string;
  /** Re-read before every request: projected (bound) tokens are rotated by the kubelet. */
  tokenFile: string;
  /** PEM of the cluster CA (ca.crt); the server certificate is always verified against it. */
  ca: string;
  /** Our pod. */
  namespace: string;
  podName: string;
  /**
   * Our container, excluded from "every other container has finished": POD_GATEWAY_CONTAINER_NAME,
   * else the webhook's gateway-sidecar (see pickOwnContainer for CONTAINER_NAME).
   */
  containerName: string;
  /** containerName came from POD_GATEWAY_CONTAINER_NAME (then CONTAINER_NAME is not looked at). */
  containerNameExplicit: boolean;
  /**
   * CONTAINER_NAME, when set and POD_GATEWAY_CONTAINER_NAME is not. A generic variable other
   * software sets (it is set, to something unrelated, on the machines we develop on), so it is
   * used only when it names a container of this pod.
   */
  genericContainerName?: string;
}

export interface InClusterInput {
  env: Record<string, string | undefined>;
  saDir: string;
  /** Why the token file cannot be used (missing, not a regular file, too large); undefined when it can (its content is read per request). */
  tokenProblem: string | undefined;
  /** ca.crt content, undefined when missing or unusable. */
  ca: string | undefined;
  /** Why ca.crt could not be read, when it could not (default: "missing"). */
  caProblem?: string;
  /** namespace file content, undefined when missing or unusable. */
  namespaceFile: string | undefined;
  /** Why the namespace file could not be read, when it could not. */
  namespaceProblem?: string;
  /** os.hostname(): the pod name unless spec.hostname overrides it. */
  hostname: string;
}

/** --serviceaccount-dir, else POD_GATEWAY_SERVICEACCOUNT_DIR, else the kubelet's mount point. */
export function pickServiceAccountDir(option: string | undefined, env: Record<string, string | undefined>): string {
  if (option !== undefined && option !== "") return option;
  const e = env.POD_GATEWAY_SERVICEACCOUNT_DIR;
  return e !== undefined && e !== "" ? e : DEFAULT_SERVICEACCOUNT_DIR;
}

function nonEmpty(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t ? t : undefined;
}

function containerNames(env: Record<string, string | undefined>): Pick<KubeConfig, "containerName" | "containerNameExplicit" | "genericContainerName"> {
  const explicit = nonEmpty(env.POD_GATEWAY_CONTAINER_NAME);
  if (explicit) return { containerName: explicit, containerNameExplicit: true };
  const generic = nonEmpty(env.CONTAINER_NAME);
  return { containerName: DEFAULT_CONTAINER_NAME, containerNameExplicit: false, ...(generic ? { genericContainerName: generic } : {}) };
}

/** Resolve everything at once, reporting every missing piece together. */
export function resolveInClusterConfig(input: InClusterInput): { ok: true; config: KubeConfig } | { ok: false; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const { env, saDir } = input;
  const host = nonEmpty(env.KUBERNETES_SERVICE_HOST);
  const port = nonEmpty(env.KUBERNETES_SERVICE_PORT);
  if (!host) issues.push({ file: "environment", key: "KUBERNETES_SERVICE_HOST", message: "not set (not running in a Kubernetes pod?)" });
  if (!port) issues.push({ file: "environment", key: "KUBERNETES_SERVICE_PORT", message: "not set (not running in a Kubernetes pod?)" });
  else if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    issues.push({ file: "environment", key: "KUBERNETES_SERVICE_PORT", message: `not a port number: ${JSON.stringify(port)}` });
  }
  if (input.tokenProblem !== undefined) {
    issues.push({ file: `${saDir}/token`, message: `${input.tokenProblem} (is a service-account token mounted? automountServiceAccountToken: false?)` });
  }
  const ca = nonEmpty(input.ca);
  if (!ca) issues.push({ file: `${saDir}/ca.crt`, message: `${input.caProblem ?? "missing or empty"}: needed to verify the API server` });
  const namespace = nonEmpty(env.POD_NAMESPACE) ?? nonEmpty(input.namespaceFile);
  if (!namespace) issues.push({ file: `${saDir}/namespace`, message: `${input.namespaceProblem ?? "missing"} and POD_NAMESPACE is not set` });
  const podName = nonEmpty(env.POD_NAME) ?? nonEmpty(input.hostname);
  if (!podName) issues.push({ file: "environment", key: "POD_NAME", message: "not set and the hostname is empty" });
  if (issues.length) return { ok: false, issues };
  return {
    ok: true,
    config: {
      apiBase: apiBaseUrl(host!, port!),
      tokenFile: `${saDir}/token`,
      ca: ca!,
      namespace: namespace!,
      podName: podName!,
      ...containerNames(env),
    },
  };
}
