// A gateway-sidecar restarted as Kubernetes restarts a container (its own filesystem fresh:
// no lease file, no resolv.conf copy or saved original; the kernel's state kept) never hands a
// new client an address a running client still uses. The DHCP range is one address (.254) so a
// collision cannot hide behind dnsmasq's MAC-hashed choice: client-0 holds .254; after the
// restart client-1 gets nothing. Control: with vxlan0's neighbours flushed (the kernel forgot
// client-0), the same restart hands client-1 .254 — the collision the lease rebuild prevents.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { clientMac } from "../../src/core/net/vxlan.ts";
import type { Lab, PodName } from "../../src/lab/types.ts";
import { which } from "../../src/sys/exec.ts";
import { binPath, REPO, requireRoot } from "../helpers/bin.ts";
import { collect, waitFor, withLab } from "./helpers.ts";

const GW = "172.16.0.1";
const ONLY = "172.16.0.254";
const SCRIPT = join(REPO, "test/fixtures/gateway/udhcpc-script.sh");
const t = withLab({ clients: 2, extraSettings: "VXLAN_GATEWAY_FIRST_DYNAMIC_IP=254\n" });
const procs: Subprocess[] = [];
let bin = "";
let sidecar: Subprocess<"ignore", "pipe", "pipe"> | undefined;
let out = { text: () => "" };

async function vxlanClient(lab: Lab, pod: PodName): Promise<void> {
  const cmds = [`link add vxlan0 address ${clientMac(pod, 42)} mtu 1450 type vxlan id 42 dev eth0 dstport 8472`, "link set vxlan0 up"];
  await lab.exec(pod, ["ip", "-batch", "-"], { input: cmds.join("\n") + "\n" });
  await lab.exec(pod, ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan0", "dst", lab.gatewayPodIp()]);
}

/** A lease with busybox udhcpc (5 tries: a sidecar without a lease file holds its first answers 1.5 s): the address, or undefined when none was offered. */
async function udhcpc(lab: Lab, pod: PodName): Promise<string | undefined> {
  const file = join(lab.runDir, `${pod}-lease.env`);
  rmSync(file, { force: true });
  const r = await lab.exec(pod, ["busybox", "udhcpc", "-i", "vxlan0", "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", SCRIPT], { env: { PGW_LEASE_OUT: file }, okCodes: [1] });
  if (r.code !== 0) return undefined;
  return /^ip=(.*)$/m.exec(readFileSync(file, "utf8"))?.[1];
}

async function startSidecar(lab: Lab): Promise<void> {
  sidecar = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gateway", "sidecar")], { env: lab.roleEnv("gateway") });
  procs.push(sidecar);
  out = collect(sidecar);
  await waitFor("dnsmasq to bind vxlan0", () => out.text().includes("sockets bound exclusively to interface vxlan0"), 15_000, { detail: () => out.text() });
}

/** What a container restart does to the sidecar: stopped, its own files gone, started again. */
async function restartFresh(lab: Lab): Promise<void> {
  sidecar!.kill("SIGTERM");
  expect(await sidecar!.exited).toBe(0);
  const copy = join(lab.runDir, "gateway", "resolv_copy.conf");
  for (const f of [copy, `${copy}.original`, join(lab.runDir, "gateway", "sidecar")]) rmSync(f, { recursive: true, force: true });
  await startSidecar(lab);
}

beforeAll(async () => {
  requireRoot();
  bin = binPath();
  for (const tool of ["dnsmasq", "busybox", "bridge"]) if (!which(tool)) throw new Error(`${tool} is missing: apt-get install dnsmasq-base busybox iproute2`);
  for (const pod of ["client-0", "client-1"] as const) await vxlanClient(t.lab, pod);
  await t.lab.exec("gateway", [bin, "gateway-init"], { env: t.lab.roleEnv("gateway"), what: "gateway-init" });
}, 30_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
});

describe("gateway-sidecar restarted with a fresh filesystem", () => {
  test("the lease file is rebuilt from vxlan0's neighbours: a new client never gets an address in use; the old one keeps it", async () => {
    const lab = t.lab;
    await startSidecar(lab);
    expect(await udhcpc(lab, "client-0")).toBe(ONLY);
    expect((await lab.exec("client-0", ["busybox", "ping", "-c", "1", "-W", "2", GW], { okCodes: [] })).code).toBe(0);
    await restartFresh(lab);
    expect(out.text()).toContain("no lease file: 1 lease(s) rebuilt from vxlan0's neighbours");
    expect(await udhcpc(lab, "client-1")).toBeUndefined();
    expect(await udhcpc(lab, "client-0")).toBe(ONLY);
  }, 60_000);

  test("control: with the kernel's neighbours flushed, the same restart hands the address in use to the new client", async () => {
    const lab = t.lab;
    await lab.exec("gateway", ["ip", "neigh", "flush", "dev", "vxlan0"]);
    await restartFresh(lab);
    expect(out.text()).not.toContain("lease(s) rebuilt");
    expect(await udhcpc(lab, "client-1")).toBe(ONLY);
    sidecar!.kill("SIGTERM");
    expect(await sidecar!.exited).toBe(0);
  }, 60_000);
});
