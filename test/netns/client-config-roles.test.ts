// One ConfigMap, every routed pod (issue 13 §1): with a shared configuration holding a bad
// gateway-only setting and a bad nat.conf line for some other pod, client-init still routes its
// pod (the compiled binary, real kernel and gateway, in the lab) and warns at file:line; the
// gateway roles refuse the same files (exit 2, nothing changed); a client whose own nat.conf line
// is bad is refused too.
import { beforeAll, describe, expect, test } from "bun:test";
import { cpSync, appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { EchoReply, Lab } from "../../src/lab/types.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { collect, LAB, waitFor, withLab } from "./helpers.ts";

const t = withLab({ clients: 2 });
let bin = "";
let shared = "";
const procs: Subprocess[] = [];
const ip = (r: EchoReply) => (r.ok ? r.source.replace(/:\d+$/, "") : `no answer: ${r.error}`);

beforeAll(async () => {
  requireRoot();
  bin = binPath();
  const lab = t.lab;
  // The gateway runs with the lab's valid configuration.
  await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init" });
  const proc = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gateway", "sidecar")], { env: lab.roleEnv("gateway") });
  procs.push(proc);
  const out = collect(proc);
  await waitFor("the gateway's dnsmasq", () => out.text().includes("dnsmasq running") || proc.exitCode !== null, 15_000);
  if (proc.exitCode !== null) throw new Error(`gateway-sidecar exited ${proc.exitCode}:\n${out.text()}`);
  // The shared ConfigMap someone then broke: a gateway-only key and another pod's nat.conf line.
  shared = join(lab.runDir, "shared-config");
  cpSync(lab.configDir, shared, { recursive: true });
  appendFileSync(join(shared, "settings.sh"), 'VPN_INTERFACE="tun+"\n');
  writeFileSync(join(shared, "nat.conf"), "client-1 1 tcp:8080\n");
}, 60_000);

describe("a client is routed despite a bad line for another role or pod", () => {
  test("client-init routes client-0 and warns at file:line", async () => {
    const lab = t.lab;
    const r = await lab.exec("client-0", [bin, "client-init", "--config-dir", shared], { env: lab.roleEnv("client-0"), okCodes: [1, 2, 3] });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`${join(shared, "settings.sh")}:`);
    expect(r.stderr).toContain("ignored by client-init, which does not read VPN_INTERFACE; the gateway roles refuse it");
    expect(r.stderr).toContain(`${join(shared, "nat.conf")}:1:10: octet 1 is reserved (the gateway)`);
    expect(r.stderr).toContain('a line for another pod: client-init of pod "client-0" ignores it');
    expect(ip(await lab.echoFrom("client-0", "internet", "tcp"))).toBe(LAB.vpnGatewayIp);
  }, 60_000);

  test("the pod whose own nat.conf line is bad is refused (exit 2)", async () => {
    const lab = t.lab;
    const r = await lab.exec("client-1", [bin, "client-init", "--config-dir", shared], { env: lab.roleEnv("client-1"), okCodes: [1, 2, 3] });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${join(shared, "nat.conf")}:1:10: octet 1 is reserved (the gateway)`);
  }, 60_000);

  test("gateway-init refuses the same files (exit 2) and changes nothing", async () => {
    const lab = t.lab;
    const before = (await lab.exec("gateway", ["nft", "-s", "list", "ruleset"])).stdout;
    const r = await lab.exec("gateway", [bin, "gateway-init", "--config-dir", shared], { env: lab.roleEnv("gateway"), okCodes: [1, 2, 3] });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("VPN_INTERFACE");
    expect((await lab.exec("gateway", ["nft", "-s", "list", "ruleset"])).stdout).toBe(before);
    for (const p of procs) if (p.exitCode === null) p.kill("SIGTERM");
  }, 60_000);
});
