// API URLs and in-cluster configuration resolution.
import { describe, expect, test } from "bun:test";
import { pickServiceAccountDir, resolveInClusterConfig, type InClusterInput } from "../../src/core/kube/config.ts";
import { apiBaseUrl, podPath, podWatchPath } from "../../src/core/kube/url.ts";

describe("URLs", () => {
  test("IPv4, IPv6 (bracketed), names, zone index", () => {
    expect(apiBaseUrl("10.96.0.1", "443")).toBe("https://10.96.0.1:443");
    expect(apiBaseUrl("fd00:10:96::1", 443)).toBe("https://[fd00:10:96::1]:443");
    expect(apiBaseUrl("[::1]", "6443")).toBe("https://[::1]:6443");
    expect(apiBaseUrl("kubernetes.default.svc", "443")).toBe("https://kubernetes.default.svc:443");
    expect(apiBaseUrl("fe80::1%eth0", "443")).toBe("https://[fe80::1%25eth0]:443");
    expect(new URL(apiBaseUrl("::1", "6443")).hostname).toBe("[::1]");
  });

  test("pod GET and the one-pod watch", () => {
    expect(podPath("media", "job-x")).toBe("/api/v1/namespaces/media/pods/job-x");
    expect(podWatchPath("media", "job-x", { resourceVersion: "4821", timeoutSeconds: 290 })).toBe(
      "/api/v1/namespaces/media/pods?watch=1&fieldSelector=metadata.name%3Djob-x&resourceVersion=4821&allowWatchBookmarks=true&timeoutSeconds=290",
    );
    // from the current state (after 410 Gone): no resourceVersion at all
    expect(podWatchPath("media", "job-x", { resourceVersion: undefined })).toBe("/api/v1/namespaces/media/pods?watch=1&fieldSelector=metadata.name%3Djob-x&allowWatchBookmarks=true");
  });
});

function input(over: Partial<InClusterInput> = {}): InClusterInput {
  return {
    env: { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" },
    saDir: "/sa",
    tokenProblem: undefined,
    ca: "-----BEGIN CERTIFICATE-----\n...\n",
    namespaceFile: "media\n",
    hostname: "job-x-abcde",
    ...over,
  };
}

describe("resolveInClusterConfig", () => {
  test("defaults: hostname as pod name, namespace file, gateway-sidecar", () => {
    const r = resolveInClusterConfig(input());
    expect(r).toEqual({
      ok: true,
      config: { apiBase: "https://10.96.0.1:443", tokenFile: "/sa/token", ca: "-----BEGIN CERTIFICATE-----\n...", namespace: "media", podName: "job-x-abcde", containerName: "gateway-sidecar", containerNameExplicit: false },
    });
  });

  test("downward API and POD_GATEWAY_CONTAINER_NAME win", () => {
    const r = resolveInClusterConfig(input({ env: { KUBERNETES_SERVICE_HOST: "::1", KUBERNETES_SERVICE_PORT: "6443", POD_NAME: "real-name", POD_NAMESPACE: "other", POD_GATEWAY_CONTAINER_NAME: "vpn-sidecar", CONTAINER_NAME: "unrelated" } }));
    expect(r.ok && r.config).toMatchObject({ apiBase: "https://[::1]:6443", podName: "real-name", namespace: "other", containerName: "vpn-sidecar", containerNameExplicit: true });
    expect(r.ok && r.config.genericContainerName).toBeUndefined();
  });

  test("CONTAINER_NAME alone is only a candidate (it names a container of the pod or is ignored)", () => {
    const r = resolveInClusterConfig(input({ env: { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443", CONTAINER_NAME: "vpn-sidecar" } }));
    expect(r.ok && r.config).toMatchObject({ containerName: "gateway-sidecar", containerNameExplicit: false, genericContainerName: "vpn-sidecar" });
  });

  test("every missing piece is reported at once", () => {
    const r = resolveInClusterConfig({ env: { KUBERNETES_SERVICE_PORT: "https" }, saDir: "/sa", tokenProblem: "does not exist", ca: undefined, namespaceFile: undefined, hostname: "" });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map((i) => i.key ?? i.file)).toEqual(["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "/sa/token", "/sa/ca.crt", "/sa/namespace", "POD_NAME"]);
    expect(r.issues[1]!.message).toBe('not a port number: "https"');
  });

  test("service-account directory: option, then env, then the kubelet's path", () => {
    expect(pickServiceAccountDir("/opt", { POD_GATEWAY_SERVICEACCOUNT_DIR: "/env" })).toBe("/opt");
    expect(pickServiceAccountDir(undefined, { POD_GATEWAY_SERVICEACCOUNT_DIR: "/env" })).toBe("/env");
    expect(pickServiceAccountDir("", {})).toBe("/var/run/secrets/kubernetes.io/serviceaccount");
  });
});
