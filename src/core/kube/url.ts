// URLs of the Kubernetes API requests pod-gateway makes: GET one pod and WATCH one pod.

/**
 * The API base URL from KUBERNETES_SERVICE_HOST/_PORT. An IPv6 literal goes in brackets
 * (RFC 3986 §3.2.2); a zone index's "%" is escaped as "%25" (RFC 6874).
 */
export function apiBaseUrl(host: string, port: string | number): string {
  let h = host.trim();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h.includes(":")) h = `[${h.replace(/%(?!25)/, "%25")}]`;
  return `https://${h}:${String(port).trim()}`;
}

export function podPath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`;
}

export interface WatchOptions {
  /**
   * Resume after this resourceVersion; events newer than it are streamed. Undefined starts
   * at the current state: the server first sends the pod as a synthetic ADDED event.
   */
  resourceVersion: string | undefined;
  /** Ask the server to end the stream after this long (it would pick 30–60 min otherwise). */
  timeoutSeconds?: number;
}

/**
 * Watch one pod: a list-watch on the namespace's pods narrowed by a field selector, which
 * needs only the `watch` verb on pods (a watch on a single named object is this same
 * request in the API). Bookmarks keep our resourceVersion fresh on a quiet pod, so a
 * resumed watch is less likely to meet 410 Gone.
 */
export function podWatchPath(namespace: string, name: string, opts: WatchOptions): string {
  const q = new URLSearchParams({ watch: "1", fieldSelector: `metadata.name=${name}` });
  if (opts.resourceVersion !== undefined) q.set("resourceVersion", opts.resourceVersion);
  q.set("allowWatchBookmarks", "true");
  if (opts.timeoutSeconds !== undefined) q.set("timeoutSeconds", String(opts.timeoutSeconds));
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?${q.toString()}`;
}
