// Issue 6 end to end: a routed Job pod whose app finishes. In the lab, the gateway roles run
// (gateway-init, gateway-sidecar with its dnsmasq), the fake Kubernetes API (TLS, a CA made now,
// a serving certificate for the lab's API server address) runs in the node namespace on that
// address, and client-0 runs client-init then client-sidecar from the compiled binary with
// SIDECAR_EXIT_WHEN_POD_DONE=on and a service-account directory. While the app container runs the
// sidecar keeps routing and holding its lease; once the API says the app terminated, the sidecar
// releases the lease at the gateway and exits 0.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ROUTE_PROTO_NAMES } from "../../src/core/client/constants.ts";
import type { Pod } from "../../src/core/kube/types.ts";
import type { Lab } from "../../src/lab/types.ts";
import { which } from "../../src/sys/exec.ts";
import { binPath, REPO, requireRoot } from "../helpers/bin.ts";
import { loadFixture, makeCerts, writeServiceAccount } from "../helpers/fake-kube.ts";
import { LAB, collect, waitFor, withLab } from "./helpers.ts";

const TOKEN = "job-completion-test-token";
const APP = "backup"; // the app container of the job-one-app fixture
const API_PORT = 443; // the node namespace is private: the real Service port is free there

const t = withLab({ clients: 1, extraSettings: "SIDECAR_EXIT_WHEN_POD_DONE=on\n" });

let bin = "";
let dir = "";
let pod: Pod;
let podRef = "";
const procs: Subprocess[] = [];

function openssl(args: string[], cwd: string): void {
  const r = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr.toString()}`);
}

/**
 * makeCerts() signs a serving certificate for loopback only; the sidecar connects to the lab's
 * API server address, so sign another one with the same CA whose IP SAN is that address (TLS is
 * verified, there is no insecure mode to fall back on).
 */
function makeLabCerts(certDir: string): string {
  const certs = makeCerts(certDir);
  writeFileSync(join(certDir, "lab-server.ext"), `subjectAltName=IP:${LAB.apiServerIp},DNS:${LAB.apiServerName}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "lab-server.ext"], certDir);
  return certs.caPem;
}

/** The fake API server, standalone, in the node namespace: commands as JSON lines on stdin. */
class FakeKubeProcess {
  private readonly out: { text: () => string };
  private acks = 0;
  constructor(readonly proc: Subprocess<"pipe", "pipe", "pipe">) {
    this.out = collect(proc);
  }
  log(): string {
    return `fake API server output:\n${this.out.text()}`;
  }
  async port(): Promise<number> {
    let port = 0;
    await waitFor(
      "the fake API server to listen",
      () => {
        if (this.proc.exitCode !== null) throw new Error(`the fake API server exited ${this.proc.exitCode}\n${this.log()}`);
        const m = /\{"port":(\d+)/.exec(this.out.text());
        if (m) port = Number(m[1]);
        return port > 0;
      },
      15_000,
      { detail: () => this.log() },
    );
    return port;
  }
  /** Send one command and wait for its acknowledgement line. */
  async send(cmd: Record<string, unknown>): Promise<void> {
    const want = ++this.acks;
    this.proc.stdin.write(JSON.stringify(cmd) + "\n");
    this.proc.stdin.flush();
    await waitFor(`the fake API server to acknowledge ${JSON.stringify(cmd.op)}`, () => this.out.text().split("\n").filter((l) => l.startsWith('{"ok":')).length >= want, 5000, { detail: () => this.log() });
  }
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    try {
      this.proc.stdin.end();
    } catch {
      // already closed
    }
    const ended = await Promise.race([this.proc.exited.then(() => true), Bun.sleep(2000).then(() => false)]);
    if (!ended) this.proc.kill("SIGKILL");
  }
}

let fake: FakeKubeProcess | undefined;

beforeAll(() => {
  requireRoot();
  bin = binPath();
  for (const tool of ["ip", "openssl", "dnsmasq"]) if (!which(tool)) throw new Error(`\`${tool}\` is missing: apt-get install ${tool === "ip" ? "iproute2" : tool}`);
  dir = mkdtempSync(join(tmpdir(), "pgw-job-test-"));
  pod = loadFixture("job-one-app");
  podRef = `${pod.metadata!.namespace}/${pod.metadata!.name}`;
});

afterAll(async () => {
  await fake?.stop();
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const gatewayLeases = (lab: Lab) => join(lab.roleEnv("gateway").POD_GATEWAY_RUN_DIR!, "dnsmasq.leases");
const leaseText = (lab: Lab) =>
  Bun.file(gatewayLeases(lab))
    .text()
    .catch(() => "");

interface RouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
}

async function routeToApi(lab: Lab): Promise<{ get: RouteJson | undefined; pinned: RouteJson[] }> {
  const get = JSON.parse((await lab.exec("client-0", ["ip", "-j", "-4", "route", "get", LAB.apiServerIp])).stdout) as RouteJson[];
  const all = JSON.parse((await lab.exec("client-0", ["ip", "-j", "-4", "route", "show", "table", "main"])).stdout) as RouteJson[];
  return { get: get[0], pinned: all.filter((r) => r.dst === LAB.apiServerIp) };
}

describe("a routed Job pod in the lab", () => {
  let side: Subprocess<"ignore", "pipe", "pipe"> | undefined;
  let sideOut = { text: () => "" };
  let address = "";
  const sidecarLog = () => `client-sidecar output:\n${sideOut.text()}`;

  afterAll(() => {
    if (process.env.PGW_TEST_SHOW_SIDECAR_LOG) console.log(sidecarLog());
  });

  test("gateway roles, fake API server and client-init come up; the API server stays on eth0", async () => {
    const lab = t.lab;
    // The gateway pod: its dnsmasq hands out the client's lease and keeps the lease file.
    await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init" });
    const gw = lab.spawn("gateway", [bin, "gateway-sidecar"], { env: lab.roleEnv("gateway") });
    procs.push(gw);
    const gwOut = collect(gw);
    await waitFor("the gateway's dnsmasq", () => gwOut.text().includes("dnsmasq running") || gw.exitCode !== null, 15_000);
    if (gw.exitCode !== null) throw new Error(`gateway-sidecar exited ${gw.exitCode}:\n${gwOut.text()}`);

    // The API server, on the address the lab's node holds for it (on lo, like a Service IP).
    const certDir = join(dir, "certs");
    const ca = makeLabCerts(certDir);
    const podFile = join(dir, "pod.json");
    writeFileSync(podFile, JSON.stringify(pod));
    const argv = [process.execPath, join(REPO, "test/helpers/fake-kube.ts"), "--certs", certDir, "--host", LAB.apiServerIp, "--port", String(API_PORT), "--token", TOKEN, "--pod", podFile];
    // Not lab.spawn: the fake server takes its commands on stdin and stops when stdin closes.
    const fp = Bun.spawn(["ip", "netns", "exec", lab.ns("node"), ...argv], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    procs.push(fp);
    fake = new FakeKubeProcess(fp);
    expect(await fake.port()).toBe(API_PORT);

    // The pod's service account, as the kubelet mounts it.
    writeServiceAccount(join(dir, "serviceaccount"), { token: TOKEN, ca, namespace: pod.metadata!.namespace! });

    const r = await lab.exec("client-0", [bin, "client-init"], { env: clientEnv(lab), okCodes: [1, 2, 3] });
    if (r.code !== 0) throw new Error(`client-init exited ${r.code}:\n${r.stderr}`);
    expect(r.stderr).toContain("Gateway ready and reachable");

    const addrs = JSON.parse((await lab.exec("client-0", ["ip", "-j", "-4", "addr", "show", "dev", "vxlan0"])).stdout) as { addr_info: { local: string }[] }[];
    address = addrs[0]?.addr_info[0]?.local ?? "";
    expect(address).toMatch(/^172\.16\.0\.\d+$/);
    expect(await leaseText(lab)).toContain(` ${address} `);

    // KUBERNETES_SERVICE_HOST is pinned to eth0 via the pod's original gateway (the node), so
    // the sidecar reaches the API server around the tunnel.
    const route = await routeToApi(lab);
    expect(route.get).toMatchObject({ dev: "eth0", gateway: LAB.nodeIp });
    expect(route.pinned).toEqual([expect.objectContaining({ dev: "eth0", gateway: LAB.nodeIp })]);
    expect(ROUTE_PROTO_NAMES).toContain(route.pinned[0]!.protocol!);
  }, 30_000);

  test("while the app container runs, the sidecar watches the pod, keeps running and holds its lease", async () => {
    const lab = t.lab;
    // With only NET_ADMIN and NET_RAW (`--cap-drop all --cap-add NET_ADMIN,NET_RAW`, as
    // config/kubernetes/client-*.yaml): the release must not need NET_BIND_SERVICE (port 68).
    side = lab.spawn("client-0", ["setpriv", "--inh-caps=-all,+net_admin,+net_raw", "--ambient-caps=-all,+net_admin,+net_raw", "--bounding-set=-all,+net_admin,+net_raw", "--", bin, "client-sidecar"], { env: clientEnv(lab) });
    procs.push(side);
    sideOut = collect(side);
    await waitFor("the sidecar to take the lease over", () => sideOut.text().includes(`took over the DHCP lease of ${address}`) || side!.exitCode !== null, 10_000, { detail: sidecarLog });
    // Its first answer from the API server (over TLS, with the token) is logged: the app is running.
    await waitFor(`the sidecar to see pod ${podRef}`, () => sideOut.text().includes(`pod ${podRef}: waiting for ${APP}`) || side!.exitCode !== null, 10_000, { detail: sidecarLog });
    // Give the watch time to act on the running app (it must not), then look again.
    await Bun.sleep(2000);
    expect(side.exitCode, sidecarLog()).toBeNull();
    expect(sideOut.text()).not.toContain("every other container of this pod has finished");
    expect(sideOut.text()).not.toMatch(/^\[warn\] \[kube\]/m);
    expect(await leaseText(lab)).toContain(` ${address} `);
    // Routing works meanwhile: the internet host sees the gateway's VPN address.
    const echo = await lab.echoFrom("client-0", "internet", "udp", { timeoutMs: 5000 });
    expect(echo).toMatchObject({ ok: true, source: expect.stringMatching(new RegExp(`^${LAB.vpnGatewayIp.replace(/\./g, "\\.")}:`)) });
  }, 30_000);

  test("the app container terminates (exit 0): the sidecar releases the lease at the gateway and exits 0", async () => {
    const lab = t.lab;
    if (!side || !fake) throw new Error("the sidecar is not running (see the previous test)");
    await fake.send({ op: "terminate", namespace: pod.metadata!.namespace, name: pod.metadata!.name, container: APP, exitCode: 0 });
    // A bound for the test, not a timing assertion: the watch reacts within a second.
    const code = await Promise.race([side.exited, Bun.sleep(10_000).then(() => "still running after 10 s")]);
    expect(code, sidecarLog()).toBe(0);
    const out = sideOut.text();
    expect(out).toContain(`pod ${podRef}: done: ${APP}`);
    expect(out).toContain("every other container of this pod has finished: releasing the lease and exiting");
    expect(out).toContain(`released the DHCP lease of ${address}`);
    expect(out).toContain("exiting (the pod's other containers finished, lease released)");
    // dnsmasq rewrites its lease file when it handles the DHCPRELEASE.
    await waitFor(`${address} to leave the gateway's lease file`, async () => !(await leaseText(lab)).includes(` ${address} `), 5000);
    // The sidecar left the routes as they were: the API server is still reached on eth0.
    const route = await routeToApi(lab);
    expect(route.get).toMatchObject({ dev: "eth0", gateway: LAB.nodeIp });
  }, 30_000);
});

/** client-0's environment: the webhook's env, the downward API's pod name, the API server and the service account. */
function clientEnv(lab: Lab): Record<string, string> {
  return {
    ...lab.roleEnv("client-0"),
    POD_NAME: pod.metadata!.name!,
    POD_NAMESPACE: pod.metadata!.namespace!,
    KUBERNETES_SERVICE_HOST: LAB.apiServerIp,
    KUBERNETES_SERVICE_PORT: String(API_PORT),
    POD_GATEWAY_SERVICEACCOUNT_DIR: join(dir, "serviceaccount"),
    // The name the webhook gives the sidecar (also the default), set because lab.exec/spawn pass
    // this process's environment on, and a CONTAINER_NAME inherited from wherever the suite runs
    // would make the pod never count as done.
    CONTAINER_NAME: "gateway-sidecar",
  };
}
