// The pod-done decision and native-sidecar detection, on realistic pod objects.
import { describe, expect, test } from "bun:test";
import { decidePodDone, isNativeSidecar, neverCompletes, pickOwnContainer } from "../../src/core/kube/pod-status.ts";
import type { Pod } from "../../src/core/kube/types.ts";
import { loadFixture, setContainerState, terminated } from "../helpers/fake-kube.ts";

const OWN = "gateway-sidecar";

describe("decidePodDone", () => {
  test("app container still running: not done, names what it waits for", () => {
    const d = decidePodDone(loadFixture("job-one-app"), OWN);
    expect(d.done).toBe(false);
    expect(d.pending).toEqual([{ name: "backup", state: "running" }]);
    expect(d.ownMissing).toBe(false);
    expect(d.summary).toBe("waiting for backup (running)");
  });

  test.each([0, 1, 137])("app terminated with exit %d under restartPolicy Never: done", (code) => {
    const pod = setContainerState(loadFixture("job-one-app"), "backup", terminated(code));
    const d = decidePodDone(pod, OWN);
    expect(d.done).toBe(true);
    expect(d.pending).toEqual([]);
    expect(d.summary).toBe(`done: backup exited ${code} (${code === 0 ? "Completed" : "Error"})`);
  });

  test("our own container's state never matters", () => {
    const pod = setContainerState(loadFixture("job-one-app"), "backup", terminated(0));
    expect(decidePodDone(setContainerState(pod, OWN, { waiting: { reason: "CrashLoopBackOff" } }), OWN).done).toBe(true);
    // ...but with another name for ours, the sidecar (running) is one of the "others"
    expect(decidePodDone(pod, "someone-else").done).toBe(false);
  });

  test("several app containers: done only when the last one finishes", () => {
    let pod = loadFixture("job-two-apps"); // restartPolicy OnFailure
    expect(decidePodDone(pod, OWN).pending.map((p) => p.name)).toEqual(["fetch", "transcode"]);
    pod = setContainerState(pod, "fetch", terminated(0));
    expect(decidePodDone(pod, OWN)).toMatchObject({ done: false, pending: [{ name: "transcode", state: "running" }] });
    pod = setContainerState(pod, "transcode", terminated(0));
    expect(decidePodDone(pod, OWN)).toMatchObject({ done: true, summary: "done: fetch exited 0 (Completed), transcode exited 0 (Completed)" });
  });

  test("OnFailure: a non-zero exit is restarted by the kubelet, so it is not finished", () => {
    const pod = setContainerState(setContainerState(loadFixture("job-two-apps"), "fetch", terminated(0)), "transcode", terminated(2));
    const d = decidePodDone(pod, OWN);
    expect(d.done).toBe(false);
    expect(d.pending).toEqual([{ name: "transcode", state: "exited 2 (Error), will be restarted (restartPolicy OnFailure)" }]);
  });

  test("restartPolicy Always (a Deployment's pod): never done, every exit is restarted", () => {
    const pod = setContainerState(loadFixture("job-one-app"), "backup", terminated(0));
    pod.spec!.restartPolicy = "Always";
    expect(decidePodDone(pod, OWN).done).toBe(false);
    delete pod.spec!.restartPolicy; // the API default is Always
    expect(decidePodDone(pod, OWN).done).toBe(false);
  });

  test("containers without state, waiting, or missing from status are not terminated", () => {
    const base = loadFixture("job-two-apps");
    setContainerState(base, "fetch", terminated(0));
    const noState = setContainerState(structuredClone(base), "transcode", undefined);
    expect(decidePodDone(noState, OWN).pending).toEqual([{ name: "transcode", state: "not started" }]);
    const waiting = setContainerState(structuredClone(base), "transcode", { waiting: { reason: "ContainerCreating" } });
    expect(decidePodDone(waiting, OWN).pending).toEqual([{ name: "transcode", state: "waiting: ContainerCreating" }]);
    const empty = setContainerState(structuredClone(base), "transcode", {});
    expect(decidePodDone(empty, OWN).pending).toEqual([{ name: "transcode", state: "not started" }]);
    const absent = structuredClone(base);
    absent.status!.containerStatuses = absent.status!.containerStatuses!.filter((s) => s.name !== "transcode");
    expect(decidePodDone(absent, OWN).pending).toEqual([{ name: "transcode", state: "not started" }]);
    const noStatus: Pod = { ...structuredClone(base), status: { phase: "Pending" } };
    expect(decidePodDone(noStatus, OWN).pending.map((p) => p.name)).toEqual(["fetch", "transcode"]);
  });

  test("init containers do not count, running or failed", () => {
    const pod = setContainerState(loadFixture("job-one-app"), "backup", terminated(0));
    setContainerState(pod, "gateway-init", { running: {} });
    expect(decidePodDone(pod, OWN).done).toBe(true);
    const stillInit = loadFixture("job-one-app");
    setContainerState(stillInit, "gateway-init", { running: {} });
    expect(decidePodDone(stillInit, OWN).pending.map((p) => p.name)).toEqual(["backup"]);
  });

  test("native sidecar: our container is an init container; every app container counts", () => {
    const pod = loadFixture("job-native-sidecar");
    expect(decidePodDone(pod, OWN)).toMatchObject({ done: false, ownMissing: false, pending: [{ name: "mailer", state: "running" }] });
    expect(decidePodDone(setContainerState(pod, "mailer", terminated(0)), OWN).done).toBe(true);
  });

  test("phase Succeeded or Failed is done whatever the statuses say", () => {
    for (const phase of ["Succeeded", "Failed"]) {
      const pod = loadFixture("job-one-app");
      pod.status!.phase = phase;
      expect(decidePodDone(pod, OWN)).toMatchObject({ done: true, summary: `done: pod phase ${phase}` });
    }
  });

  test("our container missing from the spec is reported (wrong CONTAINER_NAME)", () => {
    const d = decidePodDone(loadFixture("job-one-app"), "sidecar");
    expect(d.ownMissing).toBe(true);
    expect(d.pending.map((p) => p.name)).toEqual(["backup", "gateway-sidecar"]);
  });

  test("a pod with no other containers is done", () => {
    const pod: Pod = { metadata: { name: "p" }, spec: { restartPolicy: "Never", containers: [{ name: OWN }] }, status: { containerStatuses: [{ name: OWN, state: { running: {} } }] } };
    expect(decidePodDone(pod, OWN)).toMatchObject({ done: true, summary: "done: no other containers in the pod" });
  });

  test("without a spec, the statuses are used", () => {
    const pod: Pod = { metadata: { name: "p" }, status: { containerStatuses: [{ name: "app", state: { running: {} } }, { name: OWN, state: { running: {} } }] } };
    expect(decidePodDone(pod, OWN).pending.map((p) => p.name)).toEqual(["app"]);
  });
});

describe("isNativeSidecar", () => {
  test("init container with restartPolicy Always", () => {
    expect(isNativeSidecar(loadFixture("job-native-sidecar"), OWN)).toBe(true);
  });
  test("a regular sidecar or an ordinary init container is not", () => {
    expect(isNativeSidecar(loadFixture("job-one-app"), OWN)).toBe(false);
    expect(isNativeSidecar(loadFixture("job-native-sidecar"), "gateway-init")).toBe(false);
    const pod = loadFixture("job-native-sidecar");
    delete pod.spec!.initContainers![1]!.restartPolicy;
    expect(isNativeSidecar(pod, OWN)).toBe(false);
  });
});

describe("pickOwnContainer (issue 13 §7)", () => {
  const pod = loadFixture("job-one-app"); // containers backup, gateway-sidecar; init gateway-init
  const cfg = (over: { containerName?: string; containerNameExplicit?: boolean; genericContainerName?: string }) => ({ containerName: OWN, containerNameExplicit: false, ...over });
  test("POD_GATEWAY_CONTAINER_NAME is taken as it is", () => {
    expect(pickOwnContainer(pod, cfg({ containerName: "x", containerNameExplicit: true, genericContainerName: "backup" }))).toEqual({ name: "x" });
  });
  test("CONTAINER_NAME naming a container (app or init) is used, with a warning", () => {
    for (const name of ["backup", "gateway-init"]) {
      const r = pickOwnContainer(pod, cfg({ genericContainerName: name }));
      expect(r.name).toBe(name);
      expect(r.note?.level).toBe("warn");
    }
  });
  test("CONTAINER_NAME naming nothing in the pod is ignored (debug note); unset or equal to the default says nothing", () => {
    expect(pickOwnContainer(pod, cfg({ genericContainerName: "devbox" }))).toMatchObject({ name: OWN, note: { level: "debug" } });
    expect(pickOwnContainer(pod, cfg({}))).toEqual({ name: OWN });
    expect(pickOwnContainer(pod, cfg({ genericContainerName: OWN }))).toEqual({ name: OWN });
  });
});

describe("neverCompletes", () => {
  test("restartPolicy Always, or none (the API default), never completes; Never and OnFailure can", () => {
    const pod = loadFixture("job-one-app");
    expect(neverCompletes(pod)).toBe(false);
    for (const [policy, never] of [["Always", true], ["OnFailure", false], ["Never", false], [undefined, true]] as const) {
      if (policy === undefined) delete pod.spec!.restartPolicy;
      else pod.spec!.restartPolicy = policy;
      expect([policy, neverCompletes(pod)]).toEqual([policy, never]);
    }
  });
});
