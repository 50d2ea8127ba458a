// The fake-API setup the Kubernetes component tests share: one set of certificates and one work
// directory per test file, a fresh FakeKube per setup() holding one fixture pod, with its
// service-account directory and the resolved in-cluster config. fakeKubeRig() registers the
// hooks in the calling test file (fakes stopped after each test, files removed at the end).
import { afterAll, afterEach, beforeAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Pod } from "../../src/core/kube/types.ts";
import { readInClusterConfig, type KubeConfig } from "../../src/sys/kube.ts";
import { FakeKube, loadFixture, makeCerts, writeServiceAccount, type Certs, type FixtureName } from "./fake-kube.ts";

export interface KubeSetup {
  fake: FakeKube;
  cfg: KubeConfig;
  saDir: string;
  pod: Pod;
  ns: string;
  name: string;
  /** The pod's env for the binary: KUBERNETES_SERVICE_HOST/PORT of the fake, POD_NAME, POD_NAMESPACE. */
  env: Record<string, string>;
}

export interface FakeKubeRig {
  readonly certs: Certs;
  /** Scratch directory of this test file, removed at the end. */
  readonly work: string;
  /** Number of the last setup() (its token is token-<seq>, its service account <work>/sa-<seq>). */
  readonly seq: number;
  setup(fixture?: FixtureName, opts?: { hostname?: string; edit?: (p: Pod) => void }): KubeSetup;
}

export function fakeKubeRig(workPrefix: string): FakeKubeRig {
  let certs: Certs | undefined;
  let work = "";
  let seq = 0;
  const fakes: FakeKube[] = [];
  beforeAll(() => {
    certs = makeCerts();
    work = mkdtempSync(join(tmpdir(), workPrefix));
  });
  afterEach(async () => {
    await Promise.all(fakes.splice(0).map((f) => f.stop()));
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });
  const ready = (): Certs => {
    if (!certs) throw new Error("fakeKubeRig: used before its beforeAll ran (call setup() inside a test)");
    return certs;
  };
  return {
    get certs() {
      return ready();
    },
    get work() {
      ready();
      return work;
    },
    get seq() {
      return seq;
    },
    setup(fixture = "job-one-app", opts = {}) {
      const c = ready();
      const token = `token-${++seq}`;
      const fake = new FakeKube({ certs: c, token, hostname: opts.hostname });
      fakes.push(fake);
      const base = loadFixture(fixture);
      opts.edit?.(base);
      const pod = fake.setPod(base);
      const ns = pod.metadata!.namespace!;
      const name = pod.metadata!.name!;
      const saDir = writeServiceAccount(join(work, `sa-${seq}`), { token, ca: c.caPem, namespace: ns });
      const env = { ...fake.serviceEnv(), POD_NAME: name, POD_NAMESPACE: ns };
      const cfg = readInClusterConfig({ saDir, env });
      return { fake, cfg, saDir, pod, ns, name, env };
    },
  };
}
