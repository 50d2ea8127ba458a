// Issue 13 §3 (client side) on the real kernel: an IPv6 CIDR in NOT_ROUTED_TO_GATEWAY_CIDRS stays
// on eth0 via the pod's IPv6 gateway while the IPv6 default route goes (and with it every other
// IPv6 path); a re-run finds the gateway again from our route and changes nothing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ROUTE_PROTO } from "../../src/core/client/constants.ts";
import type { Lab } from "../../src/lab/types.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { collect, waitFor, withLab } from "./helpers.ts";

const t = withLab({ clients: 1, extraSettings: 'NOT_ROUTED_TO_GATEWAY_CIDRS="198.18.0.0/16 fd00:99::/64"\n' });
let bin = "";
const procs: Subprocess[] = [];

beforeAll(() => {
  requireRoot();
  bin = binPath();
});
afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
});

interface Route6 {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
}

async function routes6(lab: Lab): Promise<Route6[]> {
  const r = await lab.exec("client-0", ["ip", "-j", "-6", "route", "show", "table", "main"]);
  return JSON.parse(r.stdout || "[]") as Route6[];
}

async function routeGet6(lab: Lab, dst: string): Promise<{ code: number; route?: Route6 }> {
  const r = await lab.exec("client-0", ["ip", "-j", "-6", "route", "get", dst], { okCodes: [2] });
  return { code: r.code, route: r.code === 0 ? (JSON.parse(r.stdout) as Route6[])[0] : undefined };
}

describe("IPv6 CIDRs in NOT_ROUTED_TO_GATEWAY_CIDRS", () => {
  test("the gateway roles come up", async () => {
    const lab = t.lab;
    await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init" });
    const proc = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gw")], { env: lab.roleEnv("gateway") });
    procs.push(proc);
    const out = collect(proc);
    await waitFor("the gateway's dnsmasq", () => out.text().includes("dnsmasq running") || proc.exitCode !== null, 15_000, { detail: out.text });
    expect(proc.exitCode).toBeNull();
  }, 30_000);

  test("client-init keeps them on eth0 via the IPv6 gateway; the IPv6 default and every other IPv6 path are gone", async () => {
    const lab = t.lab;
    // A dual-stack pod: an IPv6 address and default route on eth0, as the CNI gives them.
    await lab.exec("client-0", ["ip", "-6", "addr", "add", "fd00:18::11/64", "dev", "eth0", "nodad"]);
    await lab.exec("client-0", ["ip", "-6", "route", "add", "default", "via", "fd00:18::1", "dev", "eth0"]);
    const r = await lab.exec("client-0", [bin, "client-init"], { env: lab.roleEnv("client-0"), okCodes: [1, 2, 3] });
    expect(r.stderr).toContain("Gateway ready and reachable");
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("kept on eth0: fd00:99::/64 via fd00:18::1 dev eth0");
    const rs = await routes6(lab);
    expect(rs.filter((x) => x.dst === "default")).toEqual([]);
    expect(rs.find((x) => x.dst === "fd00:99::/64")).toMatchObject({ gateway: "fd00:18::1", dev: "eth0", protocol: String(ROUTE_PROTO) });
    // The kernel's own lookups: the kept CIDR leaves through eth0, anything else has no IPv6 path.
    expect((await routeGet6(lab, "fd00:99::5")).route).toMatchObject({ gateway: "fd00:18::1", dev: "eth0" });
    expect((await routeGet6(lab, "2001:db8::1")).code).toBe(2);
  }, 30_000);

  test("a re-run finds the IPv6 gateway from our route and changes nothing", async () => {
    const lab = t.lab;
    const before = JSON.stringify(await routes6(lab));
    const r = await lab.exec("client-0", [bin, "client-init"], { env: lab.roleEnv("client-0"), okCodes: [1, 2, 3] });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(", 0 change(s),");
    expect(JSON.stringify(await routes6(lab))).toBe(before);
  }, 30_000);
});
