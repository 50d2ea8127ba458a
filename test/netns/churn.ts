// The pod churn of issue 13 §7, shared by test/netns/dhcp-churn.test.ts (7 pods on a pool of 5,
// in `npm test`) and test/netns/dhcp-churn-500.gated.ts (500 pods on the default pool,
// `npm run test:churn`).
//
// Every "pod" is client-0's network namespace with a new POD_NAME (so a new MAC and client id,
// i.e. a new DHCP client to dnsmasq); deleting the pod is deleting its vxlan0. Each pod is ended
// by a plain SIGTERM (the pod not known to be done, so the lease is not released: the app may
// still use the address); the sidecar shortens its lease to 120 s (dnsmasq's minimum) instead of
// leaving the default 12 h to lapse. The sidecar runs with only NET_ADMIN and NET_RAW, as the
// webhook's containers may (see client-roles.test.ts).
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { Lab } from "../../src/lab/types.ts";
import { which } from "../../src/sys/exec.ts";
import { collect, waitFor } from "./helpers.ts";

/** Only NET_ADMIN and NET_RAW, as root: `--cap-drop all --cap-add NET_ADMIN,NET_RAW`. */
const CAPS = ["setpriv", "--inh-caps=-all,+net_admin,+net_raw", "--ambient-caps=-all,+net_admin,+net_raw", "--bounding-set=-all,+net_admin,+net_raw", "--"];

/** The run dir (under the lab's) of the churn's gateway-sidecar: its dnsmasq lease file lives there. */
const RUN = "churn";

/** client-init's tries for one pod end after this long: the pool counts as drained. */
const INIT_BUDGET_MS = 150_000;

export interface ChurnPod {
  address: string;
  /** Seconds from the first client-init try to its success (the wait for a lapsed lease included). */
  initSeconds: number;
  /** client-init tries (the kubelet restarts a failed init container). */
  tries: number;
  /** Seconds left of the lease in dnsmasq's lease file after the SIGTERM (Infinity: not found). */
  leftAtGateway: number;
  /** The sidecar said it kept (did not release) the lease and shortened it to 120 s. */
  shortened: boolean;
  /** The sidecar's log when it did not say so, or the gateway's lease was not shortened. */
  log?: string;
}

export interface Churn {
  /** Start gateway-init and a gateway-sidecar with its dnsmasq. */
  startGateway(): Promise<void>;
  /** One pod created (client-init, client-sidecar), ended by SIGTERM and deleted. */
  pod(i: number): Promise<ChurnPod>;
  /** Addresses with an unexpired lease in dnsmasq's lease file now. */
  leasesInUse(): Promise<number>;
  /** Stop what was started and remove the symlink dir. */
  close(): Promise<void>;
}

/** The two role names as the webhook calls them, symlinked to the binary in a temporary dir. */
export function createChurn(lab: Lab, bin: string): Churn {
  for (const tool of ["ip", "setpriv"]) if (!which(tool)) throw new Error(`\`${tool}\` is missing: apt-get install ${tool === "ip" ? "iproute2" : "util-linux"}`);
  const dir = mkdtempSync(join(tmpdir(), "pgw-churn-test-"));
  symlinkSync(bin, join(dir, "client_init.sh"));
  symlinkSync(bin, join(dir, "client_sidecar.sh"));
  const role = (name: string) => ["/usr/bin/env", `PATH=${dir}`, join(dir, name)];
  const procs: Subprocess[] = [];
  let gwOut = { text: () => "" };
  let gw: Subprocess | undefined;

  const leaseLines = async () => (await Bun.file(join(lab.runDir, RUN, "dnsmasq.leases")).text().catch(() => "")).split("\n").filter((l) => l.trim());
  const leaseLeft = async (address: string): Promise<number> => {
    const line = (await leaseLines()).find((l) => l.split(" ")[2] === address);
    return line ? Number(line.split(" ")[0]) - Date.now() / 1000 : Infinity;
  };
  const overlayAddr = async (): Promise<string | undefined> => {
    const r = await lab.exec("client-0", ["ip", "-j", "-4", "addr", "show", "dev", "vxlan0"], { okCodes: [1] });
    if (r.code !== 0 || !r.stdout.trim()) return undefined;
    return (JSON.parse(r.stdout) as { addr_info: { local: string }[] }[])[0]?.addr_info[0]?.local;
  };

  return {
    async startGateway() {
      await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway") });
      const g = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, RUN)], { env: lab.roleEnv("gateway") });
      gw = g;
      procs.push(g);
      gwOut = collect(g);
      await waitFor("the gateway's dnsmasq", () => gwOut.text().includes("dnsmasq running") || g.exitCode !== null, 15_000);
      if (g.exitCode !== null) throw new Error(`gateway-sidecar exited ${g.exitCode}:\n${gwOut.text()}`);
    },

    async pod(i) {
      const env = { ...lab.roleEnv("client-0"), POD_NAME: `churn-${i}` };
      // client-init as the kubelet runs it: retried until it succeeds (each try waits for DHCP
      // for its own deadline). A full pool frees an address only when a shortened lease lapses.
      const start = performance.now();
      let tries = 1;
      let init = await lab.exec("client-0", role("client_init.sh"), { env, okCodes: [1, 2, 3] });
      while (init.code !== 0 && performance.now() - start < INIT_BUDGET_MS) {
        tries++;
        init = await lab.exec("client-0", role("client_init.sh"), { env, okCodes: [1, 2, 3] });
      }
      if (init.code !== 0) throw new Error(`pod churn-${i} got no address in ${INIT_BUDGET_MS / 1000} s (pool drained?); ${(await leaseLines()).length} lines in dnsmasq's lease file:\n${init.stderr}\ngateway:\n${gwOut.text().slice(-3000)}`);
      const initSeconds = (performance.now() - start) / 1000;
      const address = await overlayAddr();
      if (!address) throw new Error(`pod churn-${i}: client-init succeeded but vxlan0 has no IPv4 address`);

      const side = lab.spawn("client-0", [...CAPS, ...role("client_sidecar.sh")], { env });
      procs.push(side);
      const out = collect(side);
      await waitFor(`pod churn-${i}'s sidecar to start`, () => out.text().includes("took over the DHCP lease") || side.exitCode !== null, 10_000, { detail: () => out.text() });
      side.kill("SIGTERM");
      const code = await side.exited;
      if (code !== 0) throw new Error(`pod churn-${i}'s sidecar exited ${code} at SIGTERM:\n${out.text()}`);
      procs.splice(procs.indexOf(side), 1);
      // The exit can be seen before the last lines are read off the pipe (a busy machine showed it).
      await waitFor(`pod churn-${i}'s last lines`, () => out.text().includes("not releasing the DHCP lease") || out.text().includes("released the DHCP lease"), 3000).catch(() => {});
      const text = out.text();
      // At the gateway the lease now ends within ~2 minutes (the 12 h default otherwise).
      let left = Infinity;
      await waitFor(`dnsmasq's lease of ${address} to be shortened`, async () => (left = await leaseLeft(address)) <= 125, 5000).catch(() => {});
      // The pod is deleted: its network namespace (here: its tunnel) goes.
      await lab.exec("client-0", ["ip", "link", "del", "vxlan0"]);
      const shortened = text.includes(`not releasing the DHCP lease of ${address}`) && text.includes("shortened it to 120 s");
      return {
        address,
        initSeconds,
        tries,
        leftAtGateway: Math.round(left),
        shortened,
        ...(shortened && left <= 125 ? {} : { log: `${text}\n(dnsmasq's lease file: ${(await leaseLines()).find((l) => l.split(" ")[2] === address) ?? "no line"}; now ${Math.round(Date.now() / 1000)})` }),
      };
    },

    async leasesInUse() {
      const now = Date.now() / 1000;
      return (await leaseLines()).filter((l) => Number(l.split(" ")[0]) > now).length;
    },

    async close() {
      if (gw && gw.exitCode === null) {
        gw.kill("SIGTERM");
        await gw.exited;
      }
      for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
