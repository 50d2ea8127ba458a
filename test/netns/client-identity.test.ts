// Issue 13 §2 on the real kernel, against the real gateway roles (compiled binary):
//  - two routed pods with one name (POD_NAME unset, as the webhook leaves it, and one hostname:
//    the lab's pods share the host's UTS namespace, so hostname() is the same in every pod) get
//    distinct vxlan0 MACs and distinct leases, and both are routed; a re-run of client-init and a
//    sidecar started after it keep the lease (the sidecar's renewal is ACKed: same client id);
//  - two pods of one Deployment matched by a nat.conf workload entry both take its static
//    address: each client warns, and the gateway sidecar reports the address behind both pod IPs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { Lab, PodName } from "../../src/lab/types.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { collect, LAB, waitFor, withLab } from "./helpers.ts";

const OVERLAY_GW = "172.16.0.1";
const t = withLab({ clients: 4, natConf: "web 5\n", extraSettings: "DHCP_LEASE_TIME=2m\n" });

let bin = "";
const procs: Subprocess[] = [];
let gateway: { text: () => string } = { text: () => "" };

beforeAll(() => {
  requireRoot();
  bin = binPath();
});

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  if (process.env.PGW_TEST_SHOW_GATEWAY_LOG) console.log(gateway.text());
});

/** POD_NAME unset (empty): the roles fall back to the hostname, as in a pod the webhook mutated. */
const SAME_NAME = { POD_NAME: "" };

async function clientInit(lab: Lab, pod: PodName, extra: Record<string, string>) {
  return lab.exec(pod, [bin, "client-init"], { env: { ...lab.roleEnv(pod), ...extra }, okCodes: [1, 2, 3] });
}

async function ipJson<T>(lab: Lab, pod: PodName, args: string[]): Promise<T[]> {
  const r = await lab.exec(pod, ["ip", "-j", ...args], { okCodes: [1] });
  return r.code === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as T[]) : [];
}

async function vxlan(lab: Lab, pod: PodName): Promise<{ mac: string; address: string | undefined; validLft: number | undefined }> {
  const [l] = await ipJson<{ address: string; addr_info: { family: string; local: string; valid_life_time: number }[] }>(lab, pod, ["addr", "show", "dev", "vxlan0"]);
  const a = l?.addr_info.find((x) => x.family === "inet");
  return { mac: l?.address ?? "", address: a?.local, validLft: a?.valid_life_time };
}

function leases(lab: Lab): Promise<string[]> {
  return Bun.file(join(lab.runDir, "gw", "dnsmasq.leases"))
    .text()
    .then((t) => t.split("\n").filter((l) => l.includes(" 172.16.0.")))
    .catch(() => []);
}

describe("unique identity per live pod", () => {
  test("the gateway roles come up", async () => {
    const lab = t.lab;
    await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init" });
    const proc = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gw")], { env: lab.roleEnv("gateway") });
    procs.push(proc);
    gateway = collect(proc);
    await waitFor("the gateway's dnsmasq", () => gateway.text().includes("dnsmasq running") || proc.exitCode !== null, 15_000);
    expect(proc.exitCode).toBeNull();
  }, 30_000);

  test("two pods with one name get distinct MACs and leases, and both are routed", async () => {
    const lab = t.lab;
    const logs: string[] = [];
    for (const pod of ["client-0", "client-1"] as const) {
      const r = await clientInit(lab, pod, SAME_NAME);
      expect(r.stderr).toContain("Gateway ready and reachable");
      expect(r.code).toBe(0);
      logs.push(r.stderr);
    }
    const [a, b] = [await vxlan(lab, "client-0"), await vxlan(lab, "client-1")];
    expect(a.mac).not.toBe(b.mac);
    expect(a.address).toMatch(/^172\.16\.0\.\d+$/);
    expect(b.address).toMatch(/^172\.16\.0\.\d+$/);
    expect(a.address).not.toBe(b.address);
    expect(await leases(lab)).toHaveLength(2);
    for (const pod of ["client-0", "client-1"] as const) {
      const udp = await lab.echoFrom(pod, "internet", "udp", { timeoutMs: 5000 });
      expect(udp).toMatchObject({ ok: true, source: expect.stringMatching(new RegExp(`^${LAB.vpnGatewayIp.replace(/\./g, "\\.")}:`)) });
    }
    // the identity is logged: the same name, each pod's own IP
    expect(logs[0]).toContain(`identity: ${hostname()} at ${lab.podIp("client-0")}`);
    expect(logs[1]).toContain(`identity: ${hostname()} at ${lab.podIp("client-1")}`);
  }, 60_000);

  test("a re-run of client-init and a sidecar started after it keep the lease (the renewal is ACKed)", async () => {
    const lab = t.lab;
    const before = await vxlan(lab, "client-0");
    await lab.exec("client-0", ["ip", "link", "del", "vxlan0"]); // a re-created interface, as after a crash
    const r = await clientInit(lab, "client-0", SAME_NAME);
    expect(r.code).toBe(0);
    const again = await vxlan(lab, "client-0");
    expect(again.mac).toBe(before.mac);
    expect(again.address).toBe(before.address);

    const side = lab.spawn("client-0", [bin, "client-sidecar"], { env: { ...lab.roleEnv("client-0"), ...SAME_NAME } });
    procs.push(side);
    const out = collect(side);
    await waitFor("the sidecar to take the lease over", () => out.text().includes("took over the DHCP lease") || side.exitCode !== null, 15_000, { detail: out.text });
    // Some lifetime runs down, so the renewal is visible: the renewal writes the granted 120 s less
    // the second it is into (119), so at least two whole seconds must have passed before reading.
    await Bun.sleep(3000);
    const lft = (await vxlan(lab, "client-0")).validLft!;
    side.kill("SIGUSR1");
    await waitFor("the renewal", async () => ((await vxlan(lab, "client-0")).validLft ?? 0) > lft, 15_000, { detail: out.text });
    expect((await vxlan(lab, "client-0")).address).toBe(before.address);
    expect(out.text()).not.toContain("DHCPNAK");
    expect(await leases(lab)).toHaveLength(2);
    side.kill("SIGTERM");
    await side.exited;
  }, 60_000);

  test("two pods of one Deployment on a workload nat.conf entry: each client warns, the gateway reports the address behind both pod IPs", async () => {
    const lab = t.lab;
    const pods = [
      ["client-2", "web-7d9f8b6c4d-x2x4z"],
      ["client-3", "web-7d9f8b6c4d-b5n7q"],
    ] as const;
    for (const [pod, name] of pods) {
      const r = await clientInit(lab, pod, { POD_NAME: name });
      expect(r.stderr).toContain(`matches pod "${name}" by its workload's name "web": every pod of it gets 172.16.0.5`);
      expect((await vxlan(lab, pod)).address).toBe("172.16.0.5");
    }
    // Both pods keep speaking ARP for .1 (their sidecars would, every reachable time): the gateway's
    // neighbour entry for .5 follows whichever spoke last. One pod speaks per turn, and a turn lasts
    // longer than the sidecar's poll (5 s), so the poll sees each pod's MAC behind .5 in turn.
    const want = `overlay address 172.16.0.5 seen behind 2 pod IPs within 60 s`;
    let turn = 0;
    await waitFor(
      "the gateway's duplicate report",
      async () => {
        if (gateway.text().includes(want)) return true;
        const [pod] = pods[turn++ % 2]!;
        await lab.exec(pod, ["ip", "neigh", "flush", "dev", "vxlan0"]);
        await lab.resolve(pod, LAB.internetName, { server: OVERLAY_GW, timeoutMs: 1000 });
        return false;
      },
      90_000,
      { everyMs: 6000, detail: gateway.text },
    );
    const line = gateway.text().split("\n").find((l) => l.includes(want))!;
    const [ip2, ip3] = [lab.podIp("client-2"), lab.podIp("client-3")].sort();
    expect(line).toContain(`${ip2} (MAC `);
    expect(line).toContain(`${ip3} (MAC `);
    // the MACs named are the two pods' own
    for (const [pod] of pods) expect(line).toContain((await vxlan(lab, pod)).mac);
    // pods with distinct addresses were never reported
    expect(gateway.text()).not.toContain(`overlay address ${(await vxlan(lab, "client-0")).address} seen`);
    expect(gateway.text()).not.toMatch(/MAC [0-9a-f:]{17} seen behind/);
  }, 120_000);
});
