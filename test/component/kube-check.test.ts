// The Kubernetes API client against a fake API server over real TLS: the sidecar's
// watchUntilPodDone, checkPodDone, and the compiled binary's `check-done`.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createConsola } from "consola/basic";
import type { Pod } from "../../src/core/kube/types.ts";
import { KubeApiError } from "../../src/core/kube/failure.ts";
import { checkPodDone, fetchPod, readInClusterConfig, resolveCheckMode, watchPodDoneIfEnabled, watchUntilPodDone, type WatchTiming } from "../../src/sys/kube.ts";
import { binPath, REPO } from "../helpers/bin.ts";
import { loadFixture, recordingClock, setContainerState, terminated, writeServiceAccount } from "../helpers/fake-kube.ts";
import { fakeKubeRig, type KubeSetup } from "../helpers/fake-kube-rig.ts";

const kube = fakeKubeRig("pgw-kube-test-");
const setup = kube.setup;

interface Captured {
  type: string;
  msg: string;
}
function captureLog() {
  const lines: Captured[] = [];
  const logger = createConsola({ level: 5, reporters: [{ log: (o) => void lines.push({ type: o.type, msg: o.args.map(String).join(" ") }) }] });
  return { logger, lines, of: (type: string) => lines.filter((l) => l.type === type) };
}

async function waitFor(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

const FAST: Partial<WatchTiming> = { requestTimeoutMs: 2000 };

/** Start the sidecar's wait; `settled` tells whether it has resolved. */
function startWatch(s: KubeSetup, extra: { timing?: Partial<WatchTiming>; signal?: AbortSignal } = {}) {
  const clock = recordingClock();
  const log = captureLog();
  const state = { settled: false };
  const promise = watchUntilPodDone({ cfg: s.cfg, clock, log: log.logger, timing: { ...FAST, ...extra.timing }, random: () => 1, signal: extra.signal }).finally(() => {
    state.settled = true;
  });
  return { promise, clock, log, state };
}

describe("checkPodDone (one GET)", () => {
  test("app container running → false; terminated with exit 0 or 1 → true", async () => {
    const s = setup("job-one-app");
    expect(await checkPodDone(s.cfg)).toBe(false);
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(0)));
    expect(await checkPodDone(s.cfg)).toBe(true);
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(1)));
    expect(await checkPodDone(s.cfg)).toBe(true);
    expect(s.fake.requests.map((r) => [r.verb, r.path])).toEqual(Array(3).fill(["get", `/api/v1/namespaces/${s.ns}/pods/${s.name}`]));
  });

  test("init containers are ignored, whatever their state", async () => {
    const s = setup("job-one-app", { edit: (p) => setContainerState(setContainerState(p, "gateway-init", terminated(1)), "backup", terminated(0)) });
    expect(await checkPodDone(s.cfg)).toBe(true);
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(setContainerState(p, "gateway-init", { running: {} }), "backup", { running: {} }));
    expect(await checkPodDone(s.cfg)).toBe(false);
  });

  test("pod name from the hostname and namespace from the namespace file when the downward API is absent", async () => {
    const s = setup("job-one-app");
    const cfg = readInClusterConfig({ saDir: s.saDir, env: { ...s.fake.serviceEnv(), CONTAINER_NAME: "gateway-sidecar" }, hostname: s.name });
    expect(cfg).toMatchObject({ podName: s.name, namespace: s.ns, containerName: "gateway-sidecar" });
    expect(await checkPodDone(cfg)).toBe(false);
  });

  test("the token file is re-read before every request (bound tokens rotate)", async () => {
    const s = setup("job-one-app");
    await fetchPod(s.cfg);
    writeFileSync(join(s.saDir, "token"), "rotated-token\n");
    s.fake.token = "rotated-token";
    await fetchPod(s.cfg);
    expect(s.fake.requests.map((r) => r.token)).toEqual([s.fake.requests[0]!.token, "rotated-token"]);
    expect(s.fake.requests[0]!.token).toMatch(/^token-\d+$/);
  });

  test("a server certificate from another CA is rejected (TLS error, exit code 5)", async () => {
    const s = setup("job-one-app");
    const err = await fetchPod({ ...s.cfg, ca: kube.certs.wrongCaPem }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).failure.kind).toBe("tls");
    expect((err as KubeApiError).exitCode).toBe(5);
    expect((err as KubeApiError).message).toContain(`getting pod ${s.ns}/${s.name} from https://127.0.0.1:${s.fake.port}: TLS verification failed`);
    expect(s.fake.requests).toEqual([]); // the request never reached the handler
  });

  test("IPv6 API host (::1) is bracketed and verified against its IP SAN", async () => {
    const s = setup("job-one-app", { hostname: "::1" });
    expect(s.cfg.apiBase).toBe(`https://[::1]:${s.fake.port}`);
    expect(await checkPodDone(s.cfg)).toBe(false);
    expect(s.fake.requests).toHaveLength(1);
  });

  test("401 and 403 are refusals (exit 4); 404 and 500 are API errors (exit 5)", async () => {
    const s = setup("job-one-app");
    s.fake.rbac.get = false;
    expect(((await fetchPod(s.cfg).catch((e) => e)) as KubeApiError).exitCode).toBe(4);
    s.fake.rbac.get = true;
    s.fake.token = "someone-else";
    expect(((await fetchPod(s.cfg).catch((e) => e)) as KubeApiError).exitCode).toBe(4);
    s.fake.token = s.fake.requests[0]!.token;
    s.fake.fail("get", { status: 500 });
    const e500 = (await fetchPod(s.cfg).catch((e) => e)) as KubeApiError;
    expect([e500.exitCode, e500.message]).toEqual([5, `getting pod ${s.ns}/${s.name} from https://127.0.0.1:${s.fake.port}: HTTP 500 InternalError: fake fault 500`]);
    expect(((await fetchPod({ ...s.cfg, podName: "gone" }).catch((e) => e)) as KubeApiError).exitCode).toBe(5);
  });
});

describe("watchUntilPodDone (the sidecar's wait)", () => {
  test("GET, then a watch of the one pod from its resourceVersion; running → keeps going; exit 0 → done", async () => {
    const s = setup("job-one-app");
    const w = startWatch(s);
    await s.fake.until(() => s.fake.openWatches === 1, "the watch");
    const [get, watch] = s.fake.requests;
    expect(get!.verb).toBe("get");
    expect(watch!.verb).toBe("watch");
    expect(watch!.path).toBe(`/api/v1/namespaces/${s.ns}/pods`);
    expect(watch!.params).toMatchObject({ watch: "1", fieldSelector: `metadata.name=${s.name}`, resourceVersion: s.pod.metadata!.resourceVersion!, allowWatchBookmarks: "true" });
    // An update that changes nothing decisive: still waiting.
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", { running: { startedAt: "2026-11-26T03:05:00Z" } }));
    s.fake.sendBookmark();
    await Bun.sleep(50);
    expect(w.state.settled).toBe(false);
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(0)));
    expect(await w.promise).toBe("done");
    expect(w.log.of("info").map((l) => l.msg)).toContain(`pod ${s.ns}/${s.name}: done: backup exited 0 (Completed)`);
    expect(w.clock.sleeps).toEqual([]);
    expect(s.fake.requests).toHaveLength(2); // no polling, no reconnects
    await s.fake.until(() => s.fake.openWatches === 0, "the stream to be closed by the client");
  });

  test("main container exits 1 → done as well (restartPolicy Never)", async () => {
    const s = setup("job-one-app");
    const w = startWatch(s);
    await s.fake.until(() => s.fake.openWatches === 1, "the watch");
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(1)));
    expect(await w.promise).toBe("done");
  });

  test("already done at the first GET: no watch at all", async () => {
    const s = setup("job-one-app", { edit: (p) => setContainerState(p, "backup", terminated(0)) });
    expect(await startWatch(s).promise).toBe("done");
    expect(s.fake.requests.map((r) => r.verb)).toEqual(["get"]);
  });

  test("several app containers finishing at different times (watch events)", async () => {
    const s = setup("job-two-apps");
    const w = startWatch(s);
    await s.fake.until(() => s.fake.openWatches === 1, "the watch");
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "fetch", terminated(0)));
    await waitFor(() => w.log.lines.some((l) => l.msg.endsWith("waiting for transcode (running)")), "the first event to be seen");
    expect(w.state.settled).toBe(false);
    // restartPolicy OnFailure: a failed attempt is restarted, so it is not the end
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "transcode", terminated(1)));
    await waitFor(() => w.log.lines.some((l) => l.msg.includes("transcode (exited 1 (Error), will be restarted")), "the failed attempt to be seen");
    expect(w.state.settled).toBe(false);
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "transcode", terminated(0)));
    expect(await w.promise).toBe("done");
    expect(s.fake.requestsOf("watch")).toHaveLength(1);
  });

  test("native sidecar (init container with restartPolicy Always): detected, nothing watched", async () => {
    const s = setup("job-native-sidecar");
    const w = startWatch(s);
    expect(await w.promise).toBe("native-sidecar");
    expect(s.fake.requests.map((r) => r.verb)).toEqual(["get"]);
    expect(w.log.of("info")[0]!.msg).toContain("native sidecar");
    // check-done still answers the question about the app containers
    expect(await checkPodDone(s.cfg)).toBe(false);
  });

  test("token rotated during a watch: the resumed watch carries the new token", async () => {
    const s = setup("job-one-app");
    const w = startWatch(s);
    await s.fake.until(() => s.fake.openWatches === 1, "the watch");
    writeFileSync(join(s.saDir, "token"), "rotated\n");
    s.fake.token = "rotated";
    s.fake.closeWatches();
    await s.fake.until(() => s.fake.openWatches === 1 && s.fake.requestsOf("watch").length === 2, "the resumed watch");
    expect(s.fake.requests.map((r) => r.token).slice(-1)).toEqual(["rotated"]);
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(0)));
    expect(await w.promise).toBe("done");
  });

  test("watch stream closed → resumed from the last resourceVersion seen (event or bookmark)", async () => {
    const s = setup("job-two-apps");
    const w = startWatch(s);
    await s.fake.until(() => s.fake.openWatches === 1, "the watch");
    const after = s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "fetch", terminated(0)));
    await waitFor(() => w.log.lines.some((l) => l.msg.endsWith("waiting for transcode (running)")), "the event");
    s.fake.closeWatches();
    await s.fake.until(() => s.fake.requestsOf("watch").length === 2 && s.fake.openWatches === 1, "the resumed watch");
    expect(s.fake.requestsOf("watch")[1]!.params.resourceVersion).toBe(after.metadata!.resourceVersion!);
    s.fake.sendBookmark();
    const bookmarkRv = s.fake.resourceVersion;
    await Bun.sleep(20);
    s.fake.closeWatches();
    await s.fake.until(() => s.fake.requestsOf("watch").length === 3 && s.fake.openWatches === 1, "the second resumed watch");
    // the bookmark was read before the close in stream order
    expect(s.fake.requestsOf("watch")[2]!.params.resourceVersion).toBe(bookmarkRv);
    expect(s.fake.requestsOf("get")).toHaveLength(1); // resumed, not relisted
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "transcode", terminated(0)));
    expect(await w.promise).toBe("done");
    expect(w.clock.sleeps).toEqual([]); // streams that delivered events are resumed at once
  });

  test("410 Gone (resourceVersion compacted) → relist: watch from the current state, which starts with the pod", async () => {
    const s = setup("job-one-app");
    const w = startWatch(s);
    await s.fake.until(() => s.fake.openWatches === 1, "the watch");
    const rv0 = s.pod.metadata!.resourceVersion!;
    // Other pods change and etcd compacts: our resourceVersion (the pod's own, unchanged) is now too old.
    const other = loadFixture("job-two-apps");
    other.metadata!.namespace = s.ns;
    s.fake.setPod(other);
    s.fake.compact();
    s.fake.closeWatches();
    await s.fake.until(() => s.fake.requestsOf("watch").length === 3 && s.fake.openWatches === 1, "the watch after the 410");
    expect(s.fake.requests.map((r) => [r.verb, r.params.resourceVersion ?? "(none)"])).toEqual([
      ["get", "(none)"],
      ["watch", rv0],
      ["watch", rv0], // answered with an ERROR event 410
      ["watch", "(none)"], // the server sends the pod as ADDED, then changes
    ]);
    expect(w.clock.sleeps).toEqual([]); // 410 is routine, no backoff
    expect(w.log.of("warn")).toEqual([]);
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(0)));
    expect(await w.promise).toBe("done");
  });

  test("410 while the pod is already done: the relisted state (ADDED) ends the wait", async () => {
    const s = setup("job-one-app");
    const w = startWatch(s);
    await s.fake.until(() => s.fake.openWatches === 1, "the watch");
    s.fake.fail("watch", { watchError: 410 });
    // The change happens while we are not watching: only the relist can show it.
    s.fake.closeWatches();
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(0)));
    expect(await w.promise).toBe("done");
    expect(s.fake.requestsOf("get")).toHaveLength(1);
  });

  test("an ERROR event other than 410 → backoff, then start over with a GET", async () => {
    const s = setup("job-one-app");
    s.fake.fail("watch", { watchError: 500 });
    const w = startWatch(s);
    await s.fake.until(() => s.fake.openWatches === 1, "the watch after the restart");
    expect(s.fake.requests.map((r) => r.verb)).toEqual(["get", "watch", "get", "watch"]);
    expect(w.clock.sleeps).toEqual([500]);
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(0)));
    expect(await w.promise).toBe("done");
  });

  test("403 on GET → one warning naming the Role, then no more requests", async () => {
    const s = setup("job-one-app");
    s.fake.rbac.get = false;
    const w = startWatch(s);
    expect(await w.promise).toBe("forbidden");
    const warns = w.log.of("warn");
    expect(warns).toHaveLength(1);
    expect(warns[0]!.msg).toContain(`the Kubernetes API refused to get pod ${s.ns}/${s.name}: HTTP 403 Forbidden`);
    expect(warns[0]!.msg).toContain(`User "system:serviceaccount:${s.ns}:default" cannot get resource "pods"`);
    expect(warns[0]!.msg).toContain("Role with verbs get and watch on pods");
    expect(warns[0]!.msg).toContain("config/kubernetes/rbac.yaml");
    expect(s.fake.requests).toHaveLength(1);
  });

  test("401 (token refused) → forbidden with one warning", async () => {
    const s = setup("job-one-app");
    s.fake.token = "not-the-mounted-one";
    const w = startWatch(s);
    expect(await w.promise).toBe("forbidden");
    expect(w.log.of("warn")).toHaveLength(1);
    expect(w.log.of("warn")[0]!.msg).toContain("HTTP 401 Unauthorized");
  });

  test("watch forbidden while GET works → polls with GET every 10 s", async () => {
    const s = setup("job-one-app");
    s.fake.rbac.watch = false;
    const w = startWatch(s);
    await s.fake.until(() => s.fake.requestsOf("get").length >= 3, "a few polls");
    expect(w.state.settled).toBe(false);
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(0)));
    expect(await w.promise).toBe("done");
    expect(s.fake.requestsOf("watch")).toHaveLength(1); // tried once, then never again
    expect(new Set(w.clock.sleeps)).toEqual(new Set([10_000]));
    expect(w.log.of("info").filter((l) => l.msg.includes("polling every 10 s instead"))).toHaveLength(1);
    expect(w.log.of("warn")).toEqual([]);
  });

  test("500s, then success → retried with capped exponential backoff, one warning", async () => {
    const s = setup("job-one-app", { edit: (p) => setContainerState(p, "backup", terminated(0)) });
    s.fake.fail("get", { status: 500 }, 6);
    const w = startWatch(s, { timing: { backoff: { initialMs: 500, maxMs: 4000, factor: 2 } } });
    expect(await w.promise).toBe("done");
    expect(w.clock.sleeps).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
    expect(w.log.of("warn")).toHaveLength(1);
    expect(w.log.of("warn")[0]!.msg).toContain("HTTP 500");
    expect(w.log.of("info").some((l) => l.msg.includes("answering again after 6 failed attempt(s)"))).toBe(true);
  });

  test("404 (pod not visible yet) and 503 → retried", async () => {
    const s = setup("job-one-app", { edit: (p) => setContainerState(p, "backup", terminated(0)) });
    s.fake.fail("get", { status: 404 });
    s.fake.fail("get", { status: 503 });
    expect(await startWatch(s).promise).toBe("done");
    expect(s.fake.requestsOf("get")).toHaveLength(3);
  });

  test("a hanging GET times out and is retried", async () => {
    const s = setup("job-one-app", { edit: (p) => setContainerState(p, "backup", terminated(0)) });
    s.fake.fail("get", "hang");
    const w = startWatch(s, { timing: { requestTimeoutMs: 400 } });
    expect(await w.promise).toBe("done");
    expect(w.clock.sleeps[0]).toBe(500);
    expect(w.log.of("warn")[0]!.msg).toContain("no answer within 400 ms");
  });

  test("a hanging watch times out and is retried from the same resourceVersion", async () => {
    const s = setup("job-one-app");
    s.fake.fail("watch", "hang");
    const w = startWatch(s, { timing: { requestTimeoutMs: 400 } });
    await s.fake.until(() => s.fake.openWatches === 1, "the second watch");
    expect(s.fake.requests.slice(0, 3).map((r) => [r.verb, r.params.resourceVersion ?? ""])).toEqual([["get", ""], ["watch", s.pod.metadata!.resourceVersion!], ["watch", s.pod.metadata!.resourceVersion!]]);
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(0)));
    expect(await w.promise).toBe("done");
    expect(w.clock.sleeps[0]).toBe(500);
    expect(w.log.of("warn")[0]!.msg).toContain("watching pod");
  });

  test("a silent watch stream is dropped after the idle timeout and resumed", async () => {
    const s = setup("job-one-app");
    const w = startWatch(s, { timing: { watchIdleTimeoutMs: 150 } });
    await s.fake.until(() => s.fake.requestsOf("watch").length >= 2, "the watch to be re-opened");
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(0)));
    expect(await w.promise).toBe("done");
    expect(w.log.of("warn")[0]!.msg).toContain("no answer within 150 ms");
  });

  test("bad JSON from GET or in the watch stream → retried", async () => {
    const s = setup("job-one-app");
    s.fake.fail("get", "bad-json");
    s.fake.fail("watch", "bad-json");
    const w = startWatch(s);
    await s.fake.until(() => s.fake.openWatches === 1 && s.fake.requestsOf("watch").length === 2, "the watch after the bad one");
    expect(s.fake.requests.map((r) => r.verb)).toEqual(["get", "get", "watch", "watch"]);
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(0)));
    expect(await w.promise).toBe("done");
    expect(w.clock.sleeps).toEqual([500, 500]); // two separate streaks, each recovered
    expect(w.log.of("warn").map((l) => l.msg)).toEqual([
      expect.stringContaining("unexpected response (malformed JSON"),
      expect.stringContaining("unexpected response (malformed JSON (JSON Parse error: Expected '}') in watch event: "),
    ]);
  });

  test("wrong CA: keeps retrying with backoff and never throws; aborting ends it", async () => {
    const s = setup("job-one-app");
    const ctl = new AbortController();
    const clock = recordingClock();
    const log = captureLog();
    const p = watchUntilPodDone({ cfg: { ...s.cfg, ca: kube.certs.wrongCaPem }, clock, log: log.logger, signal: ctl.signal, random: () => 1 });
    await waitFor(() => clock.sleeps.length >= 4, "a few retries");
    ctl.abort();
    expect(await p).toBe("aborted");
    expect(clock.sleeps.slice(0, 4)).toEqual([500, 1000, 2000, 4000]);
    expect(log.of("warn")).toHaveLength(1);
    expect(log.of("warn")[0]!.msg).toContain("TLS verification failed");
    expect(s.fake.requests).toEqual([]);
  });

  test("abort while watching → aborted, stream closed", async () => {
    const s = setup("job-one-app");
    const ctl = new AbortController();
    const w = startWatch(s, { signal: ctl.signal });
    await s.fake.until(() => s.fake.openWatches === 1, "the watch");
    ctl.abort();
    expect(await w.promise).toBe("aborted");
    await s.fake.until(() => s.fake.openWatches === 0, "the stream to close");
  });

  test("wrong POD_GATEWAY_CONTAINER_NAME: one warning, the pod never counts as done", async () => {
    const s = setup("job-one-app");
    const cfg = { ...s.cfg, containerName: "sidecar" };
    const ctl = new AbortController();
    const log = captureLog();
    const p = watchUntilPodDone({ cfg, clock: recordingClock(), log: log.logger, signal: ctl.signal });
    await s.fake.until(() => s.fake.openWatches === 1, "the watch");
    s.fake.updatePod(s.ns, s.name, (pod) => setContainerState(pod, "backup", terminated(0)));
    await waitFor(() => log.lines.some((l) => l.msg.includes("waiting for gateway-sidecar (running)")), "the event");
    ctl.abort();
    expect(await p).toBe("aborted");
    expect(log.of("warn").map((l) => l.msg)).toEqual([`container sidecar is not in pod ${s.ns}/${s.name} (containers: backup, gateway-sidecar): set POD_GATEWAY_CONTAINER_NAME to this container's name, or the pod never counts as done`]);
  });
});

describe("which container is ours (issue 13 §7)", () => {
  /** job-one-app with the sidecar container renamed. */
  const renamed = (name: string) => (p: Pod) => {
    for (const c of p.spec!.containers!) if (c.name === "gateway-sidecar") c.name = name;
    for (const c of p.status!.containerStatuses!) if (c.name === "gateway-sidecar") c.name = name;
  };
  const run = async (env: Record<string, string>) => {
    const p = Bun.spawn([binPath(), "check-done"], { env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, out, err };
  };

  test("an unrelated CONTAINER_NAME (set by other software) is ignored: gateway-sidecar (was: the pod never counted as done)", async () => {
    const s = setup("job-one-app", { edit: (p) => setContainerState(p, "backup", terminated(0)) });
    const r = await run({ ...s.env, POD_GATEWAY_SERVICEACCOUNT_DIR: s.saDir, CONTAINER_NAME: "devbox-7f3a" });
    expect(r).toMatchObject({ code: 0, out: "true\n" });
    expect(r.err).not.toContain("[warn]");
  });

  test("CONTAINER_NAME that names a container of the pod is used, with a warning", async () => {
    const s = setup("job-one-app", { edit: (p) => (renamed("vpn-sidecar")(p), setContainerState(p, "backup", terminated(0))) });
    const r = await run({ ...s.env, POD_GATEWAY_SERVICEACCOUNT_DIR: s.saDir, CONTAINER_NAME: "vpn-sidecar" });
    expect(r).toMatchObject({ code: 0, out: "true\n" });
    expect(r.err).toContain("using CONTAINER_NAME=vpn-sidecar as this sidecar's container name because it names a container of this pod; set POD_GATEWAY_CONTAINER_NAME instead");
  });

  test("POD_GATEWAY_CONTAINER_NAME wins, without a warning", async () => {
    const s = setup("job-one-app", { edit: (p) => (renamed("vpn-sidecar")(p), setContainerState(p, "backup", terminated(0))) });
    const r = await run({ ...s.env, POD_GATEWAY_SERVICEACCOUNT_DIR: s.saDir, POD_GATEWAY_CONTAINER_NAME: "vpn-sidecar", CONTAINER_NAME: "backup" });
    expect(r).toMatchObject({ code: 0, out: "true\n" });
    expect(r.err).toBe("");
  });

  test("the watch settles the name once and logs the warning once", async () => {
    const s = setup("job-one-app", { edit: renamed("vpn-sidecar") });
    const log = captureLog();
    const cfg = readInClusterConfig({ saDir: s.saDir, env: { ...s.env, CONTAINER_NAME: "vpn-sidecar" } });
    const p = watchUntilPodDone({ cfg, clock: recordingClock(), log: log.logger });
    await s.fake.until(() => s.fake.openWatches === 1, "the watch");
    s.fake.updatePod(s.ns, s.name, (pod) => setContainerState(pod, "backup", { running: {} }));
    s.fake.updatePod(s.ns, s.name, (pod) => setContainerState(pod, "backup", terminated(0)));
    expect(await p).toBe("done");
    expect(log.of("warn").map((l) => l.msg)).toEqual([expect.stringContaining("using CONTAINER_NAME=vpn-sidecar")]);
  });
});

describe("SIDECAR_EXIT_WHEN_POD_DONE=auto and restartPolicy Always (issue 13 §7)", () => {
  test("auto: one GET, then no more requests (no watch from every Deployment pod)", async () => {
    const s = setup("job-one-app", { edit: (p) => (p.spec!.restartPolicy = "Always") });
    const log = captureLog();
    expect(await watchPodDoneIfEnabled({ setting: "auto", saDir: s.saDir, env: s.env, log: log.logger, clock: recordingClock() })).toBe("never-completes");
    expect(s.fake.requests.map((r) => r.verb)).toEqual(["get"]);
    expect(log.of("info").map((l) => l.msg)).toContain(`pod ${s.ns}/${s.name} has restartPolicy Always: it never completes, so this sidecar will not watch it (SIDECAR_EXIT_WHEN_POD_DONE=auto; set it to on to watch anyway)`);
    // The API's default is Always, too.
    const d = setup("job-one-app", { edit: (p) => delete p.spec!.restartPolicy });
    expect(await watchPodDoneIfEnabled({ setting: "auto", saDir: d.saDir, env: d.env, log: log.logger, clock: recordingClock() })).toBe("never-completes");
  });

  test("on: watches anyway; auto with restartPolicy Never or OnFailure: watches", async () => {
    for (const [setting, policy] of [["on", "Always"], ["auto", "Never"], ["auto", "OnFailure"]] as const) {
      const s = setup("job-one-app", { edit: (p) => (p.spec!.restartPolicy = policy) });
      const ctl = new AbortController();
      const p = watchPodDoneIfEnabled({ setting, saDir: s.saDir, env: s.env, log: captureLog().logger, clock: recordingClock(), signal: ctl.signal });
      await s.fake.until(() => s.fake.openWatches === 1, `a watch (${setting}, ${policy})`);
      ctl.abort();
      expect(await p).toBe("aborted");
    }
  });
});

describe("resolveCheckMode", () => {
  test("auto is on exactly when a token is mounted; on/off are forced", () => {
    const withToken = writeServiceAccount(join(kube.work, "mode-token"), { token: "t" });
    const without = writeServiceAccount(join(kube.work, "mode-none"), { ca: "x" });
    expect(resolveCheckMode("auto", withToken)).toBe(true);
    expect(resolveCheckMode("auto", without)).toBe(false);
    expect(resolveCheckMode("auto", join(kube.work, "does-not-exist"))).toBe(false);
    expect(resolveCheckMode("on", without)).toBe(true);
    expect(resolveCheckMode("off", withToken)).toBe(false);
  });
});

describe("watchPodDoneIfEnabled (the sidecar's entry point)", () => {
  test("auto without a token → off, no request", async () => {
    const s = setup("job-one-app");
    const noToken = writeServiceAccount(join(kube.work, `sa-notoken-${kube.seq}`), { ca: kube.certs.caPem, namespace: s.ns });
    const log = captureLog();
    expect(await watchPodDoneIfEnabled({ setting: "auto", saDir: noToken, env: s.env, log: log.logger })).toBe("off");
    expect(await watchPodDoneIfEnabled({ setting: "off", saDir: s.saDir, env: s.env, log: log.logger })).toBe("off");
    expect(s.fake.requests).toEqual([]);
    expect(log.of("warn")).toEqual([]);
  });

  test("on, but not in a cluster → unconfigured, one warning naming what is missing", async () => {
    const s = setup("job-one-app");
    const log = captureLog();
    expect(await watchPodDoneIfEnabled({ setting: "on", saDir: s.saDir, env: { POD_NAME: s.name }, log: log.logger })).toBe("unconfigured");
    expect(log.of("warn")).toHaveLength(1);
    expect(log.of("warn")[0]!.msg).toContain("KUBERNETES_SERVICE_HOST");
  });

  test("auto with a token, service dir from POD_GATEWAY_SERVICEACCOUNT_DIR → watches until done", async () => {
    const s = setup("job-one-app");
    const log = captureLog();
    const p = watchPodDoneIfEnabled({ setting: "auto", env: { ...s.env, POD_GATEWAY_SERVICEACCOUNT_DIR: s.saDir }, log: log.logger, clock: recordingClock() });
    await s.fake.until(() => s.fake.openWatches === 1, "the watch");
    s.fake.updatePod(s.ns, s.name, (pod) => setContainerState(pod, "backup", terminated(0)));
    expect(await p).toBe("done");
    expect(log.of("info").map((l) => l.msg)).toEqual([`pod ${s.ns}/${s.name}: waiting for backup (running)`, `pod ${s.ns}/${s.name}: done: backup exited 0 (Completed)`]);
  });
});

describe("pod-gateway check-done (compiled binary)", () => {
  // Spawned asynchronously: the fake API server answers from this process's event loop.
  const run = async (args: string[], env: Record<string, string>) => {
    const p = Bun.spawn([binPath(), "check-done", ...args], { env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, out, err };
  };

  test("false (exit 1) while the app runs, true (exit 0) once it exited 0 or 1", async () => {
    const s = setup("job-one-app");
    expect(await run(["--serviceaccount-dir", s.saDir], s.env)).toMatchObject({ code: 1, out: "false\n" });
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(1)));
    expect(await run([], { ...s.env, POD_GATEWAY_SERVICEACCOUNT_DIR: s.saDir })).toMatchObject({ code: 0, out: "true\n" });
  });

  test("IPv6 API host", async () => {
    const s = setup("job-two-apps", { hostname: "::1", edit: (p) => (setContainerState(p, "fetch", terminated(0)), setContainerState(p, "transcode", terminated(0))) });
    expect(s.env.KUBERNETES_SERVICE_HOST).toBe("::1");
    expect(await run(["--serviceaccount-dir", s.saDir], s.env)).toMatchObject({ code: 0, out: "true\n" });
  });

  test("errors: configuration 2, refused 4, wrong CA / server error 5; nothing on stdout", async () => {
    const s = setup("job-one-app");
    const missing = await run(["--serviceaccount-dir", join(kube.work, "nowhere")], { POD_NAME: s.name });
    expect(missing.code).toBe(2);
    expect(missing.err).toContain("KUBERNETES_SERVICE_HOST");
    expect(missing.err).toContain(`${join(kube.work, "nowhere")}/token`);

    s.fake.rbac.get = false;
    const refused = await run(["--serviceaccount-dir", s.saDir], s.env);
    expect(refused.code).toBe(4);
    expect(refused.err).toContain("HTTP 403 Forbidden");
    s.fake.rbac.get = true;

    const wrongCa = writeServiceAccount(join(kube.work, `sa-wrong-ca-${kube.seq}`), { token: s.fake.token, ca: kube.certs.wrongCaPem, namespace: s.ns });
    const tls = await run(["--serviceaccount-dir", wrongCa], s.env);
    expect(tls.code).toBe(5);
    expect(tls.err).toContain("TLS verification failed");

    s.fake.fail("get", { status: 500 });
    expect((await run(["--serviceaccount-dir", s.saDir], s.env)).code).toBe(5);
    for (const r of [missing, refused, tls]) expect(r.out).toBe("");
  });

  test("--help documents the exit codes", () => {
    const r = Bun.spawnSync([binPath(), "check-done", "--help"], { stdout: "pipe" });
    expect(r.exitCode).toBe(0);
    for (const s of ["0 true", "1 false", "2 configuration", "4 refused", "5 API"]) expect(r.stdout.toString()).toContain(s);
  });
});

describe("fake API server as a separate process (for lab tests in a namespace)", () => {
  test("serves a pod file, takes commands on stdin, check-done follows", async () => {
    const podFile = join(kube.work, "standalone-pod.json");
    writeFileSync(podFile, JSON.stringify(loadFixture("job-one-app")));
    const saDir = writeServiceAccount(join(kube.work, "sa-standalone"), { token: "lab-token", ca: kube.certs.caPem, namespace: "media" });
    const proc = Bun.spawn([process.execPath, join(REPO, "test/helpers/fake-kube.ts"), "--certs", kube.certs.dir, "--host", "127.0.0.1", "--token", "lab-token", "--pod", podFile], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    try {
      const reader = proc.stdout.getReader();
      let buf = "";
      const nextLine = async (): Promise<string> => {
        while (!buf.includes("\n")) {
          const { done, value } = await reader.read();
          if (done) throw new Error("fake-kube process ended");
          buf += new TextDecoder().decode(value);
        }
        const i = buf.indexOf("\n");
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        return line;
      };
      const { port } = JSON.parse(await nextLine()) as { port: number };
      const env = { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(port), POD_NAME: "nightly-backup-28391040-x7k2p" };
      const check = () => Bun.spawnSync([binPath(), "check-done", "--serviceaccount-dir", saDir], { env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" }).exitCode;
      expect(check()).toBe(1);
      proc.stdin.write(JSON.stringify({ op: "terminate", namespace: "media", name: "nightly-backup-28391040-x7k2p", container: "backup", exitCode: 0 }) + "\n");
      proc.stdin.flush();
      expect(JSON.parse(await nextLine())).toEqual({ ok: "terminate" });
      expect(check()).toBe(0);
      proc.stdin.end();
      expect(await proc.exited).toBe(0);
    } finally {
      proc.kill();
    }
  });
});
