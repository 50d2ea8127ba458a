// Issue 13 §7, the pool under churn: client pods that come and go, each ended by a plain SIGTERM
// (the pod not known to be done, so the lease is not released: the app may still use the
// address), must not drain the gateway's DHCP pool. The sidecar shortens its lease at SIGTERM
// (a renewal asking for 120 s, dnsmasq's minimum) instead of leaving the default 12 h to lapse.
//
// The pool is made small (VXLAN_GATEWAY_FIRST_DYNAMIC_IP=250: .250-.254, 5 addresses) and the
// lease time is the default, so the 500-pod churn of the issue becomes 7 pods in turn: the first
// five take the whole pool, the sixth and seventh get an address only once a shortened lease has
// lapsed (~120 s after its pod's SIGTERM; with 12 h leases, never). That wait is dnsmasq's
// minimum lease time and cannot be shortened, hence the test's length (~2.5 min, mostly asleep).
//
// Every "pod" is client-0's network namespace with a new POD_NAME (so a new MAC and client id,
// i.e. a new DHCP client to dnsmasq); deleting the pod is deleting its vxlan0. The sidecar runs
// with only NET_ADMIN and NET_RAW, as the webhook's containers may (see client-roles.test.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { which } from "../../src/sys/exec.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { collect, waitFor, withLab } from "./helpers.ts";

const POOL = ["172.16.0.250", "172.16.0.251", "172.16.0.252", "172.16.0.253", "172.16.0.254"];
const PODS = 7;
const t = withLab({ clients: 1, extraSettings: "VXLAN_GATEWAY_FIRST_DYNAMIC_IP=250\n" });

let dir = "";
let bin = "";
const procs: Subprocess[] = [];
const measured: Record<string, number | string> = {};

/** Only NET_ADMIN and NET_RAW, as root: `--cap-drop all --cap-add NET_ADMIN,NET_RAW`. */
const CAPS = ["setpriv", "--inh-caps=-all,+net_admin,+net_raw", "--ambient-caps=-all,+net_admin,+net_raw", "--bounding-set=-all,+net_admin,+net_raw", "--"];
const role = (name: string) => ["/usr/bin/env", `PATH=${dir}`, join(dir, name)];

beforeAll(() => {
  requireRoot();
  bin = binPath();
  for (const tool of ["ip", "setpriv"]) if (!which(tool)) throw new Error(`\`${tool}\` is missing: apt-get install ${tool === "ip" ? "iproute2" : "util-linux"}`);
  dir = mkdtempSync(join(tmpdir(), "pgw-churn-test-"));
  symlinkSync(bin, join(dir, "client_init.sh"));
  symlinkSync(bin, join(dir, "client_sidecar.sh"));
});

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.log("measured (churn):", JSON.stringify(measured));
});

async function overlayAddr(): Promise<string | undefined> {
  const r = await t.lab.exec("client-0", ["ip", "-j", "-4", "addr", "show", "dev", "vxlan0"], { okCodes: [1] });
  if (r.code !== 0 || !r.stdout.trim()) return undefined;
  return (JSON.parse(r.stdout) as { addr_info: { local: string }[] }[])[0]?.addr_info[0]?.local;
}

describe("the DHCP pool under churn (issue 13 §7)", () => {
  test(
    `${PODS} pods in turn on a pool of ${POOL.length}, each ended by SIGTERM: every pod gets an address`,
    async () => {
      const lab = t.lab;
      await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway") });
      const gw = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "churn")], { env: lab.roleEnv("gateway") });
      procs.push(gw);
      const gwOut = collect(gw);
      await waitFor("the gateway's dnsmasq", () => gwOut.text().includes("dnsmasq running") || gw.exitCode !== null, 15_000);
      const t0 = performance.now();
      const got: string[] = [];
      const logs: { address: string; text: string }[] = [];
      /** Seconds left of each pod's lease in dnsmasq's lease file after its SIGTERM. */
      const leftAtGateway: number[] = [];
      const leaseLeft = async (address: string): Promise<number> => {
        const text = await Bun.file(join(lab.runDir, "churn", "dnsmasq.leases")).text().catch(() => "");
        const line = text.split("\n").find((l) => l.split(" ")[2] === address);
        return line ? Number(line.split(" ")[0]) - Date.now() / 1000 : Infinity;
      };
      for (let i = 0; i < PODS; i++) {
        const env = { ...lab.roleEnv("client-0"), POD_NAME: `churn-${i}` };
        // client-init as the kubelet runs it: retried until it succeeds (each try waits for DHCP
        // for its own deadline). The pool is full until a shortened lease lapses.
        const start = performance.now();
        let init = await lab.exec("client-0", role("client_init.sh"), { env, okCodes: [1, 2, 3] });
        while (init.code !== 0 && performance.now() - start < 150_000) init = await lab.exec("client-0", role("client_init.sh"), { env, okCodes: [1, 2, 3] });
        if (init.code !== 0) throw new Error(`pod churn-${i} got no address in 150 s (pool drained):\n${init.stderr}\ngateway:\n${gwOut.text().slice(-3000)}`);
        const address = (await overlayAddr())!;
        got.push(address);
        measured[`pod${i}`] = `${address} after ${Math.round((performance.now() - start) / 1000)} s`;
        expect(POOL).toContain(address);

        const side = lab.spawn("client-0", [...CAPS, ...role("client_sidecar.sh")], { env });
        procs.push(side);
        const out = collect(side);
        await waitFor("the sidecar to start", () => out.text().includes("took over the DHCP lease") || side.exitCode !== null, 10_000, { detail: () => out.text() });
        side.kill("SIGTERM");
        expect(await side.exited).toBe(0);
        logs.push({ address, text: out.text() });
        // At the gateway the lease now ends within ~2 minutes (the 12 h default otherwise).
        let left = Infinity;
        await waitFor(`dnsmasq's lease of ${address} to be shortened`, async () => (left = await leaseLeft(address)) <= 125, 5000).catch(() => {});
        leftAtGateway.push(Math.round(left));
        // The pod is deleted: its network namespace (here: its tunnel) goes.
        await lab.exec("client-0", ["ip", "link", "del", "vxlan0"]);
      }
      measured.totalSeconds = Math.round((performance.now() - t0) / 1000);
      // The first five took the whole pool; later pods reused lapsed addresses.
      expect(new Set(got.slice(0, POOL.length)).size).toBe(POOL.length);
      expect(got).toHaveLength(PODS);
      measured.leftAtGateway = leftAtGateway.join(",");
      for (const left of leftAtGateway) expect(left).toBeLessThanOrEqual(125);
      for (const l of logs) {
        expect(l.text).toContain(`not releasing the DHCP lease of ${l.address}`);
        expect(l.text).toContain("shortened it to 120 s"); // asked for 120 s; dnsmasq granted it
      }
      gw.kill("SIGTERM");
      await gw.exited;
    },
    300_000,
  );
});
