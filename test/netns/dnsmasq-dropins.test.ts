// User dnsmasq drop-ins (issue 13 §4): the reference's dnsmasq read /etc/dnsmasq.d and users
// mount local records or upstream overrides there. gateway-sidecar (the compiled binary, real
// dnsmasq, in the lab) includes that directory's *.conf files after its own configuration, says
// which it included, answers a record a drop-in defines, and refuses to start — with dnsmasq's
// own message — when a drop-in is broken.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { clientMac } from "../../src/core/net/vxlan.ts";
import type { Lab } from "../../src/lab/types.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { collect, waitFor, withLab } from "./helpers.ts";

const GW = "172.16.0.1";
const t = withLab({ clients: 1 });
let bin = "";
const procs: Subprocess[] = [];

const env = (lab: Lab) => lab.roleEnv("gateway");

beforeAll(async () => {
  requireRoot();
  bin = binPath();
  const lab = t.lab;
  await lab.exec("gateway", [bin, "gateway-init"], { env: env(lab), what: "gateway-init" });
  // client-0: a VXLAN endpoint with a static overlay address, enough to ask .1 for names
  const cmds = [
    `link add vxlan0 address ${clientMac("client-0", 42)} type vxlan id 42 dev eth0 dstport 8472`,
    "link set vxlan0 mtu 1450 up",
    "addr add 172.16.0.10/24 dev vxlan0",
  ];
  await lab.exec("client-0", ["ip", "-batch", "-"], { input: cmds.join("\n") + "\n" });
  await lab.exec("client-0", ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan0", "dst", lab.gatewayPodIp()]);
}, 60_000);

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
});

describe("dnsmasq drop-ins", () => {
  test("a broken drop-in stops gateway-sidecar before dnsmasq starts, with dnsmasq's message", async () => {
    const lab = t.lab;
    const dir = join(lab.runDir, "dnsmasq.d-broken");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "typo.conf"), "adress=/x.example/192.0.2.1\n");
    const p = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gateway", "sidecar-broken"), "--dnsmasq-dir", dir], { env: env(lab) });
    procs.push(p);
    const out = collect(p);
    const code = await p.exited;
    expect(code).toBe(1);
    expect(out.text()).toContain(`dnsmasq drop-ins from ${dir}: typo.conf`);
    expect(out.text()).toContain(`checking the dnsmasq drop-ins in ${dir}:`);
    expect(out.text()).toContain("bad option at line 1 of " + join(dir, "typo.conf"));
    expect(out.text()).not.toContain("dnsmasq running");
  }, 30_000);

  test("a record from a drop-in answers through .1; files other than *.conf are not read", async () => {
    const lab = t.lab;
    const dir = join(lab.runDir, "dnsmasq.d");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "10-records.conf"), "address=/dropin.example/192.0.2.77\n");
    writeFileSync(join(dir, "README"), "this is not dnsmasq syntax and must not be read\n");
    writeFileSync(join(dir, "old.conf.disabled"), "address=/disabled.example/192.0.2.66\n");
    const p = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gateway", "sidecar"), "--dnsmasq-dir", dir], { env: env(lab) });
    procs.push(p);
    const out = collect(p);
    await waitFor("dnsmasq to bind vxlan0", () => out.text().includes("sockets bound exclusively to interface vxlan0") || p.exitCode !== null, 15_000);
    expect(p.exitCode, out.text()).toBeNull();
    expect(out.text()).toContain(`dnsmasq drop-ins from ${dir}: 10-records.conf`);
    expect(await lab.resolve("client-0", "dropin.example", { server: GW })).toMatchObject({ ok: true, addresses: ["192.0.2.77"] });
    expect((await lab.resolve("client-0", "disabled.example", { server: GW, timeoutMs: 1000 })).addresses ?? []).not.toContain("192.0.2.66");
    p.kill("SIGTERM");
    await p.exited;
  }, 60_000);
});
