// config/kubernetes/: every manifest is validated against the Kubernetes OpenAPI schema (the
// kubernetes-models package's generated validators; the ServiceMonitor, a Prometheus Operator
// CRD kubernetes-models has no type for, against a checked-in subset of its CRD schema,
// test/fixtures/servicemonitor.schema.json), and holds exactly the container specs
// the chart and the admission webhook generate; the Helm values set the image in both chart
// layouts; the ConfigMap's settings load with pod-gateway's own loader.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/image/rootfs.ts";
import { checkSchema } from "../helpers/schema-subset.ts";

const dir = join(REPO_ROOT, "config", "kubernetes");
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
const IMAGE = `ghcr.io/your-org/pod-gateway:${pkg.version}`;

type Obj = Record<string, any>;
const files = readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort();
const docs: { file: string; doc: Obj }[] = [];
for (const f of files) {
  const parsed = Bun.YAML.parse(readFileSync(join(dir, f), "utf8"));
  for (const doc of (Array.isArray(parsed) ? parsed : [parsed]) as Obj[]) if (doc) docs.push({ file: f, doc });
}
const manifests = docs.filter((d) => d.doc.apiVersion && d.doc.kind);
const values = docs.filter((d) => d.file.startsWith("values-"));
const find = (kind: string, name: string): Obj => {
  const d = manifests.find((m) => m.doc.kind === kind && m.doc.metadata?.name === name);
  if (!d) throw new Error(`no ${kind} ${name} in config/kubernetes`);
  return d.doc;
};

/** kubernetes-models module path of an apiVersion/kind ("apps/v1" + "Deployment" → kubernetes-models/apps/v1/Deployment). */
function modelPath(apiVersion: string, kind: string): string {
  return `kubernetes-models/${apiVersion}/${kind}`;
}

const SERVICE_MONITOR_SCHEMA = JSON.parse(readFileSync(join(REPO_ROOT, "test", "fixtures", "servicemonitor.schema.json"), "utf8"));

async function validate(doc: Obj): Promise<void> {
  if (doc.apiVersion === "monitoring.coreos.com/v1" && doc.kind === "ServiceMonitor") {
    const problems = checkSchema(SERVICE_MONITOR_SCHEMA, doc);
    if (problems.length) throw new Error(problems.join("; "));
    return;
  }
  const mod = (await import(modelPath(doc.apiVersion, doc.kind))) as Record<string, new (o: Obj) => { validate(): void }>;
  const Model = mod[doc.kind];
  if (!Model) throw new Error(`kubernetes-models has no ${doc.apiVersion} ${doc.kind}`);
  new Model(doc).validate();
}

function podSpec(doc: Obj): Obj {
  return doc.kind === "Pod" ? doc.spec : doc.spec.template.spec;
}

describe("config/kubernetes manifests", () => {
  test("the plain manifests are all there", () => {
    expect(manifests.map((m) => `${m.file}: ${m.doc.apiVersion} ${m.doc.kind} ${m.doc.metadata.name}`).sort()).toEqual([
      "client-job.yaml: batch/v1 Job my-job",
      "client-pod.yaml: v1 Pod my-app",
      "configmap.yaml: v1 ConfigMap pod-gateway",
      "gateway.yaml: apps/v1 Deployment pod-gateway",
      "gateway.yaml: v1 Service pod-gateway",
      "rbac.yaml: rbac.authorization.k8s.io/v1 Role pod-gateway-pod-reader",
      "rbac.yaml: rbac.authorization.k8s.io/v1 RoleBinding pod-gateway-pod-reader",
      "servicemonitor.yaml: monitoring.coreos.com/v1 ServiceMonitor pod-gateway",
    ]);
  });

  test("each validates against the Kubernetes OpenAPI schema", async () => {
    for (const m of manifests) {
      let error = "";
      try {
        await validate(m.doc);
      } catch (e) {
        error = (e as Error).message;
      }
      expect({ file: m.file, kind: m.doc.kind, error }).toEqual({ file: m.file, kind: m.doc.kind, error: "" });
    }
  });

  test("the validator does reject a wrong manifest (capabilities.add as a string)", async () => {
    const bad = structuredClone(find("Pod", "my-app"));
    bad.spec.initContainers[0].securityContext.capabilities.add = "NET_ADMIN";
    await expect(validate(bad)).rejects.toThrow("capabilities/add must be array");
    const noSelector = structuredClone(find("Deployment", "pod-gateway"));
    delete noSelector.spec.selector;
    await expect(validate(noSelector)).rejects.toThrow("selector");
    const badProbe = structuredClone(find("Deployment", "pod-gateway"));
    badProbe.spec.template.spec.containers[0].readinessProbe.periodSeconds = "10";
    await expect(validate(badProbe)).rejects.toThrow("periodSeconds must be integer");
    const sm = structuredClone(find("ServiceMonitor", "pod-gateway"));
    sm.spec.endpoints[0].interval = "30 seconds";
    sm.spec.endpoints[0].port = 9108;
    sm.spec.endpoint = [];
    delete sm.spec.selector;
    await expect(validate(sm)).rejects.toThrow(
      '/spec: must have selector; /spec/endpoints/0/port: must be string, not integer; /spec/endpoints/0/interval: "30 seconds" must match',
    );
    await expect(validate(sm)).rejects.toThrow("/spec/endpoint: unknown field");
  });

  test("probes: both sidecars (gateway and hand-written clients) run the binary as an exec probe, `health` live and `health --ready`, every 10 s or more; init containers have none", () => {
    const dockerfile = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8");
    expect(dockerfile).toContain("/usr/local/bin/pod-gateway");
    const sidecars = [
      find("Deployment", "pod-gateway").spec.template.spec.containers.find((c: Obj) => c.name === "gateway-sidecar"),
      ...[find("Pod", "my-app"), find("Job", "my-job")].map((d) => podSpec(d).initContainers.find((c: Obj) => c.name === "gateway-sidecar")),
    ];
    for (const c of sidecars) {
      expect(c.livenessProbe.exec.command).toEqual(["/usr/local/bin/pod-gateway", "health"]);
      expect(c.readinessProbe.exec.command).toEqual(["/usr/local/bin/pod-gateway", "health", "--ready"]);
      for (const p of [c.livenessProbe, c.readinessProbe]) expect(p.periodSeconds).toBeGreaterThanOrEqual(10);
      // `health` answers within 1 s, Kubernetes' default timeoutSeconds: none is set lower.
      for (const p of [c.livenessProbe, c.readinessProbe]) expect(p.timeoutSeconds ?? 1).toBeGreaterThanOrEqual(1);
      expect(c.livenessProbe.failureThreshold).toBeGreaterThanOrEqual(3);
    }
    const inits = [find("Deployment", "pod-gateway").spec.template.spec.initContainers, ...[find("Pod", "my-app"), find("Job", "my-job")].map((d) => podSpec(d).initContainers.filter((c: Obj) => c.restartPolicy !== "Always"))].flat();
    for (const c of inits) expect([c.name, c.livenessProbe, c.readinessProbe]).toEqual([c.name, undefined, undefined]);
  });

  test("metrics: GATEWAY_METRICS_PORT in the ConfigMap = the sidecar's containerPort = the scrape annotation = the Service's metrics port, which the ServiceMonitor selects; clients keep theirs off", () => {
    const settings = find("ConfigMap", "pod-gateway").data["settings.sh"] as string;
    const port = Number(/^\s*GATEWAY_METRICS_PORT="?(\d+)"?\s*$/m.exec(settings)?.[1]);
    expect(port).toBeGreaterThan(0);
    expect(settings).not.toMatch(/^\s*CLIENT_METRICS_PORT=/m);
    const tpl = find("Deployment", "pod-gateway").spec.template;
    expect(tpl.metadata.annotations).toEqual({ "prometheus.io/scrape": "true", "prometheus.io/port": String(port), "prometheus.io/path": "/metrics" });
    const side = tpl.spec.containers.find((c: Obj) => c.name === "gateway-sidecar");
    expect(side.ports).toEqual([{ name: "metrics", containerPort: port, protocol: "TCP" }]);
    const svc = find("Service", "pod-gateway");
    expect(svc.spec.ports).toContainEqual({ name: "metrics", protocol: "TCP", port, targetPort: "metrics" });
    const sm = find("ServiceMonitor", "pod-gateway");
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) expect(svc.metadata.labels[k]).toBe(v);
    expect(sm.spec.endpoints).toEqual([{ port: "metrics", path: "/metrics", interval: "30s" }]);
  });

  test("gateway: init /bin/gateway_init.sh privileged, sidecar /bin/gateway_sidecar.sh with NET_ADMIN and NET_RAW, ConfigMap at /config, emptyDir at /run", () => {
    const spec = find("Deployment", "pod-gateway").spec.template.spec;
    const [init] = spec.initContainers;
    const side = spec.containers.find((c: Obj) => c.name === "gateway-sidecar");
    expect(init.command).toEqual(["/bin/gateway_init.sh"]);
    expect(init.securityContext.privileged).toBe(true);
    expect(side.command).toEqual(["/bin/gateway_sidecar.sh"]);
    expect(side.securityContext.capabilities.add.sort()).toEqual(["NET_ADMIN", "NET_RAW"]);
    expect(side.securityContext.privileged).toBeUndefined();
    for (const c of [init, side]) {
      expect(c.image).toBe(IMAGE);
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
      expect(c.volumeMounts).toContainEqual({ name: "config", mountPath: "/config", readOnly: true });
      expect(c.volumeMounts).toContainEqual({ name: "run", mountPath: "/run" });
    }
    expect(spec.volumes).toContainEqual({ name: "config", configMap: { name: "pod-gateway" } });
    expect(spec.volumes.find((v: Obj) => v.name === "run").emptyDir).toBeDefined();
    const svc = find("Service", "pod-gateway").spec;
    expect(svc.clusterIP).toBe("None");
    expect(svc.selector).toEqual(find("Deployment", "pod-gateway").spec.template.metadata.labels);
  });

  test("clients (Pod and Job): the webhook's containers as native sidecars, root, NET_ADMIN and NET_RAW and nothing else (DHCP renew/release go through the packet socket, no port-68 bind), its env, ConfigMap read-only at /config", () => {
    for (const doc of [find("Pod", "my-app"), find("Job", "my-job")]) {
      const spec = podSpec(doc);
      const [init, side] = spec.initContainers;
      expect(init.name).toBe("gateway-init");
      expect(init.command).toEqual(["/bin/client_init.sh"]);
      expect(init.restartPolicy).toBeUndefined();
      expect(side.name).toBe("gateway-sidecar"); // the name the sidecar finds itself by (CONTAINER_NAME's default)
      expect(side.command).toEqual(["/bin/client_sidecar.sh"]);
      expect(side.restartPolicy).toBe("Always");
      for (const c of [init, side]) {
        expect(c.image).toBe(IMAGE);
        expect(c.securityContext).toMatchObject({ runAsUser: 0, privileged: false, capabilities: { drop: ["ALL"], add: ["NET_ADMIN", "NET_RAW"] } });
        expect(c.env.map((e: Obj) => e.name)).toEqual(expect.arrayContaining(["gateway", "DNS", "DNS_ips", "K8S_DNS_ips"]));
        expect(c.volumeMounts).toEqual([{ name: "pod-gateway-config", mountPath: "/config", readOnly: true }]);
      }
      expect(spec.volumes).toContainEqual({ name: "pod-gateway-config", configMap: { name: "pod-gateway" } });
    }
    expect(podSpec(find("Job", "my-job")).restartPolicy).toBe("Never");
  });

  const tmp = mkdtempSync(join(tmpdir(), "pgw-k8s-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  test("the ConfigMap's settings.sh and nat.conf load with pod-gateway's loader; RESOLV_CONF_COPY lives in the /run emptyDir", () => {
    const data = find("ConfigMap", "pod-gateway").data as Record<string, string>;
    expect(Object.keys(data).sort()).toEqual(["nat.conf", "settings.sh"]);
    for (const [k, v] of Object.entries(data)) writeFileSync(join(tmp, k), v);
    const r = Bun.spawnSync([process.execPath, join(REPO_ROOT, "src/main.ts"), "config", "--config-dir", tmp, "--json"], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
    expect({ code: r.exitCode, stderr: r.stderr.toString() }).toMatchObject({ code: 0 });
    const cfg = JSON.parse(r.stdout.toString()) as { settings: Record<string, unknown> };
    expect(cfg.settings.GATEWAY_NAME).toBe(find("Pod", "my-app").spec.initContainers[0].env.find((e: Obj) => e.name === "gateway").value);
    expect(cfg.settings.RESOLV_CONF_COPY).toBe("/run/resolv_copy.conf");
    expect(cfg.settings.VPN_BLOCK_OTHER_TRAFFIC).toBe(true);
  });
});

describe("Helm values", () => {
  test("chart 7.x sets controllers.main.containers.main.image; older charts set image; both this version", () => {
    const v7 = values.find((v) => v.file === "values-chart-7.yaml")!.doc;
    const old = values.find((v) => v.file === "values-chart-legacy.yaml")!.doc;
    const want = { repository: IMAGE.split(":")[0], tag: pkg.version };
    expect(v7).toEqual({ controllers: { main: { containers: { main: { image: want } } } } });
    expect(old).toEqual({ image: want });
  });

  test("the image name is the one the release workflow pushes", () => {
    const wf = Bun.YAML.parse(readFileSync(join(REPO_ROOT, ".github/workflows/release.yml"), "utf8")) as Obj;
    expect(wf.env.IMAGE).toBe("ghcr.io/${{ github.repository_owner }}/pod-gateway");
    expect(IMAGE.split(":")[0]!.replace("your-org", "${{ github.repository_owner }}")).toBe(wf.env.IMAGE);
  });
});
