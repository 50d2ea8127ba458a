// Issue 11 §7, the client side, on the real kernel in the lab, run as the compiled binary:
// - vxlan0's MTU follows the gateway's DHCP option 26 (the gateway runs with VPN_INTERFACE_MTU=1300,
//   so its vxlan0 and the option dnsmasq sends are 1300; the client's own settings do not lower it);
// - client-sidecar re-checks isolation and reports a route someone else added around the tunnel,
//   naming it, leaves it in place, and reports when it is gone: a split default in main (seen by
//   the routes' fingerprint at the next probe) and a default in another table behind a policy rule
//   (no fingerprint change: seen by the periodic check, 1 s here through
//   $POD_GATEWAY_ISOLATION_CHECK_INTERVAL).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { which } from "../../src/sys/exec.ts";
import type { Lab, PodName } from "../../src/lab/types.ts";
import { collect, LAB, startGateway, waitFor, withClientDropIns, withLab } from "./helpers.ts";

const t = withLab({ clients: 1 });
const POD: PodName = "client-0";
const GATEWAY_MTU = 1300;

const c = withClientDropIns("client-care");
const procs: Subprocess[] = [];

beforeAll(() => {
  if (!which("ip")) throw new Error("`ip` (iproute2) is missing (the test changes routes with it): apt-get install iproute2");
});

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
});

async function linkMtu(lab: Lab, pod: PodName, dev: string): Promise<number> {
  const r = await lab.exec(pod, ["ip", "-j", "link", "show", "dev", dev]);
  return (JSON.parse(r.stdout) as { mtu: number }[])[0]!.mtu;
}

describe("issue 11 §7 in the lab", () => {
  let side: Subprocess<"ignore", "pipe", "pipe">;
  let out: { text: () => string } = { text: () => "" };
  afterAll(() => {
    if (process.env.PGW_TEST_SHOW_SIDECAR_LOG) console.log(out.text());
  });

  test("a gateway advertising a smaller MTU (option 26) gets the client's vxlan0 that MTU", async () => {
    const lab = t.lab;
    // The gateway's own configuration: the lab's, plus VPN_INTERFACE_MTU.
    const gwConfig = join(c.dir, "gateway-config");
    cpSync(lab.configDir, gwConfig, { recursive: true });
    writeFileSync(join(gwConfig, "settings.sh"), `${readFileSync(join(gwConfig, "settings.sh"), "utf8")}\nVPN_INTERFACE_MTU=${GATEWAY_MTU}\n`);
    const gwEnv = { ...lab.roleEnv("gateway"), POD_GATEWAY_CONFIG_DIR: gwConfig };
    await lab.exec("gateway", [c.bin, "gateway-init"], { env: gwEnv, what: "gateway-init" });
    expect(await linkMtu(lab, "gateway", "vxlan0")).toBe(GATEWAY_MTU);
    await startGateway(lab, c.bin, "care-gw", { env: gwEnv, init: false, track: procs });

    const r = await lab.exec(POD, c.role("client_init.sh"), { env: lab.roleEnv(POD), okCodes: [1, 2, 3] });
    if (r.code !== 0) throw new Error(`client-init exited ${r.code}:\n${r.stderr}`);
    const eth0 = await linkMtu(lab, POD, "eth0");
    expect(eth0 - 50).toBeGreaterThan(GATEWAY_MTU); // so only option 26 can explain what follows
    expect(await linkMtu(lab, POD, "vxlan0")).toBe(GATEWAY_MTU);
    expect(r.stderr).toContain(`MTU ${GATEWAY_MTU}`);
  }, 60_000);

  test("the sidecar reports a route around the tunnel, naming it, leaves it, and reports it gone", async () => {
    const lab = t.lab;
    side = lab.spawn(POD, c.role("client_sidecar.sh"), { env: { ...lab.roleEnv(POD), POD_GATEWAY_ISOLATION_CHECK_INTERVAL: "1" } });
    procs.push(side);
    out = collect(side);
    await waitFor("the sidecar to start", () => out.text().includes("took over the DHCP lease") || side.exitCode !== null, 10_000);
    await waitFor("the first isolation check", () => out.text().includes("isolation holds (") || side.exitCode !== null, 10_000);
    expect(out.text()).not.toContain("isolation broken");

    // 1. A split default in main, as a VPN client would add it: seen through the fingerprint.
    const split = ["0.0.0.0/1", "via", LAB.nodeIp, "dev", "eth0"];
    await lab.exec(POD, ["ip", "route", "add", ...split]);
    try {
      await waitFor("the isolation error", () => out.text().includes("isolation broken"), 30_000);
      expect(out.text()).toContain(`isolation broken: route "0.0.0.0/1 via ${LAB.nodeIp} dev eth0 proto boot" sends 1.1.1.1 around the tunnel (via ${LAB.nodeIp} dev eth0)`);
      // Never fought: the route is still there a few checks later, and reported once.
      await Bun.sleep(2500);
      expect((await lab.exec(POD, ["ip", "route", "show", "0.0.0.0/1"])).stdout).toContain(`via ${LAB.nodeIp}`);
      expect(out.text().split("isolation broken").length - 1).toBe(1);
    } finally {
      await lab.exec(POD, ["ip", "route", "del", ...split], { okCodes: [2] });
    }
    await waitFor("isolation to hold again", () => out.text().includes("isolation holds again"), 30_000);

    // 2. A default route in another table, chosen by a policy rule: main does not change.
    await lab.exec(POD, ["ip", "route", "add", "default", "via", LAB.nodeIp, "dev", "eth0", "table", "100"]);
    await lab.exec(POD, ["ip", "rule", "add", "pref", "100", "lookup", "100"]);
    try {
      await waitFor("the second isolation error", () => out.text().split("isolation broken").length - 1 >= 2, 30_000);
      expect(out.text()).toContain(`1.1.1.1 is reachable via ${LAB.nodeIp} dev eth0 by a route outside the main table`);
    } finally {
      await lab.exec(POD, ["ip", "rule", "del", "pref", "100"], { okCodes: [2] });
      await lab.exec(POD, ["ip", "route", "flush", "table", "100"], { okCodes: [2] });
    }
    await waitFor("isolation to hold again", () => out.text().split("isolation holds again").length - 1 >= 2, 30_000);
    expect(side.exitCode).toBeNull();
  }, 120_000);
});
