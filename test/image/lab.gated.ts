// The four roles run from the built image (dist/image.json) by podman, in the lab's pods, with
// the container specs the chart and the admission webhook generate:
//   gateway pod: /bin/gateway_init.sh privileged; /bin/gateway_sidecar.sh with NET_ADMIN, NET_RAW
//   client pods: /bin/client_init.sh, /bin/client_sidecar.sh: user 0, --cap-drop all,
//                --cap-add NET_ADMIN,NET_RAW, not privileged, env gateway/DNS/DNS_ips/K8S_DNS_ips
//   every container: --network ns:/run/netns/<pod> --hostname <pod> --dns none, the pod's
//                resolv.conf bind-mounted read-write, the ConfigMap read-only at /config.
// Then the demo's checks (addresses, egress through the VPN, DNS, port forward, kill switch).
// A container restart is `podman rm` + `podman run` (a fresh filesystem); the second round runs
// every role again with a read-only root filesystem (and an emptyDir-like tmpfs at /run, where
// that round's ConfigMap puts RESOLV_CONF_COPY), and the checks pass again.
//
// Never a podman network: only --network ns:<lab namespace> (a default podman network would
// make a bridge and turn on forwarding in the host's namespace). Every container is removed,
// also on failure. Timings (podman run → gateway ready, → client ready) are printed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { podman, podmanArgv } from "../../src/image/podman.ts";
import { selfCommand, startDaemon } from "../../src/lab/lab.ts";
import type { Lab, PodName } from "../../src/lab/types.ts";
import { REPO_ROOT } from "../../src/image/rootfs.ts";
import { collect, LAB, waitFor, withLab } from "../netns/helpers.ts";
import { Containers, requireImage, type ImageFixture } from "./common.ts";

const OVERLAY = "172.16.0";
const STATIC_OCTET = 10;
const FORWARD_PORT = 8080;
const viaVpn = new RegExp(`^${LAB.vpnGatewayIp.replaceAll(".", "\\.")}:\\d+$`);

const t = withLab({ clients: 2, natConf: `client-0 ${STATIC_OCTET} tcp:${FORWARD_PORT}\n` });

let fx: ImageFixture;
let cs: Containers;
let work = "";
/** ConfigMap directories: the image's default paths, and the read-only round's. */
const configs = { rw: "", ro: "" };
const timings: Record<string, number> = {};
const running = new Map<string, { proc: Subprocess; text: () => string }>();
/** The gateway pod's resolv.conf as the kubelet wrote it (before the VPN client rewrote it). */
let kubeletResolvConf = "";
/** Output of the client sidecars stopped for the restart. */
const stopped: Record<string, string> = {};

type Role = "gateway_init" | "gateway_sidecar" | "client_init" | "client_sidecar";

/** What the chart / the webhook give each role's container, as podman flags. */
function securityFlags(role: Role): string[] {
  switch (role) {
    case "gateway_init":
      return ["--privileged"];
    case "gateway_sidecar":
      return ["--cap-add", "NET_ADMIN,NET_RAW"];
    default:
      return ["--user", "0", "--cap-drop", "all", "--cap-add", "NET_ADMIN,NET_RAW"];
  }
}

/** The environment the chart/webhook set (the lab's roleEnv without its POD_GATEWAY_* host paths). */
function envFlags(lab: Lab, pod: PodName): string[] {
  const env = Object.entries(lab.roleEnv(pod)).filter(([k]) => !k.startsWith("POD_GATEWAY_"));
  return env.flatMap(([k, v]) => ["--env", `${k}=${v}`]);
}

function runArgs(lab: Lab, pod: PodName, role: Role, name: string, readOnly: boolean): string[] {
  return [
    "run", "--name", name, "--pull=never",
    "--network", `ns:/run/netns/${lab.ns(pod)}`, "--hostname", pod, "--dns", "none",
    "--volume", `${lab.resolvConfPath(pod)}:/etc/resolv.conf:rw`,
    "--volume", `${readOnly ? configs.ro : configs.rw}:/config:ro`,
    // An emptyDir is the pod's, not the container's: it outlives container restarts, and the
    // gateway's init and sidecar share it (config/kubernetes/gateway.yaml).
    ...(readOnly ? ["--read-only", "--read-only-tmpfs=false", ...(pod === "gateway" ? ["--volume", `${emptyDir(pod, "run")}:/run:rw`] : [])] : []),
    ...securityFlags(role),
    ...envFlags(lab, pod),
    fx.rec.image, `/bin/${role}.sh`,
  ];
}

function emptyDir(pod: PodName, name: string): string {
  const d = join(work, `emptydir-${pod}-${name}`);
  mkdirSync(d, { recursive: true, mode: 0o755 });
  return d;
}

/** An init container: run to completion; returns exit code and output. */
async function runInit(lab: Lab, pod: PodName, role: Role, readOnly: boolean): Promise<{ code: number; out: string; ms: number }> {
  const name = cs.name(`${pod}-${role}`);
  const t0 = performance.now();
  const r = await podman(fx.p, runArgs(lab, pod, role, name, readOnly), { ok: Array.from({ length: 256 }, (_, i) => i) });
  const ms = performance.now() - t0;
  await cs.remove(name); // an init container that finished; its restart would be a fresh one
  return { code: r.code, out: r.stdout + r.stderr, ms };
}

/** A long-running container, attached (its output collected). */
function startSidecar(lab: Lab, pod: PodName, role: Role, readOnly: boolean): { proc: Subprocess; text: () => string } {
  const name = cs.name(`${pod}-${role}`);
  const proc = Bun.spawn(podmanArgv(fx.p, runArgs(lab, pod, role, name, readOnly)), { env: fx.p.env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const s = { proc, text: collect(proc).text };
  running.set(name, s);
  return s;
}

/** Container restart: podman rm (stops it, with SIGTERM first) and the caller runs a fresh one. */
async function removeSidecar(pod: PodName, role: Role): Promise<{ code: number; text: string }> {
  const name = `${cs.prefix}-${pod}-${role}`;
  const s = running.get(name);
  if (!s) throw new Error(`${name} is not running (see the first failure)`);
  await podman(fx.p, ["stop", "-t", "10", name], { what: `stopping ${name}` });
  const code = await s.proc.exited; // `podman run` attached exits with the container's code
  await cs.remove(name);
  running.delete(name);
  return { code, text: s.text() };
}

/**
 * The gateway's dnsmasq answers on .1: a cluster name (upstream: the cluster DNS) or, once the
 * VPN client has rewritten resolv.conf, a name only the VPN's DNS knows.
 */
async function gatewayDnsAnswers(lab: Lab): Promise<boolean> {
  const server = `${OVERLAY}.1`;
  if ((await lab.resolve("gateway", LAB.apiServerName, { server, timeoutMs: 300 })).ok) return true;
  return (await lab.resolve("gateway", LAB.internetName, { server, timeoutMs: 300 })).ok;
}

async function bringUpGateway(lab: Lab, readOnly: boolean, label: string): Promise<void> {
  const t0 = performance.now();
  const init = await runInit(lab, "gateway", "gateway_init", readOnly);
  if (init.code !== 0) throw new Error(`gateway_init.sh (${label}) exited ${init.code}:\n${init.out}`);
  const side = startSidecar(lab, "gateway", "gateway_sidecar", readOnly);
  await waitFor(`the gateway sidecar (${label}) to answer DNS on ${OVERLAY}.1`, async () => side.proc.exitCode !== null || (await gatewayDnsAnswers(lab)), 60_000, { everyMs: 100, detail: () => side.text() });
  if (side.proc.exitCode !== null) throw new Error(`gateway_sidecar.sh (${label}) exited ${side.proc.exitCode}:\n${side.text()}`);
  timings[`${label}: podman run gateway_init → gateway ready (DNS answers on .1)`] = performance.now() - t0;
}

async function bringUpClient(lab: Lab, pod: PodName, readOnly: boolean, label: string): Promise<void> {
  const init = await runInit(lab, pod, "client_init", readOnly);
  if (init.code !== 0) throw new Error(`client_init.sh in ${pod} (${label}) exited ${init.code}:\n${init.out}`);
  expect(init.out).toContain("Gateway ready and reachable");
  timings[`${label}: podman run client_init → ${pod} ready`] = init.ms;
  const side = startSidecar(lab, pod, "client_sidecar", readOnly);
  await waitFor(`the client sidecar in ${pod} (${label}) to watch the gateway`, () => side.text().includes("watching gateway") || side.proc.exitCode !== null, 30_000, { everyMs: 100, detail: () => side.text() });
  if (side.proc.exitCode !== null) throw new Error(`client_sidecar.sh in ${pod} (${label}) exited ${side.proc.exitCode}:\n${side.text()}`);
}

interface AddrJson {
  addr_info?: { family: string; local: string; prefixlen: number; valid_life_time?: number; preferred_life_time?: number }[];
}

async function readOverlayAddress(lab: Lab, pod: PodName) {
  const r = await lab.exec(pod, ["ip", "-j", "addr", "show", "dev", "vxlan0"]);
  const a = (JSON.parse(r.stdout) as AddrJson[])[0]?.addr_info?.find((x) => x.family === "inet");
  if (!a) throw new Error(`${pod}: vxlan0 has no IPv4 address`);
  return a;
}

/** Static addresses are forever; a DHCP lease is written as the address' lifetime. */
async function overlayAddress(lab: Lab, pod: PodName): Promise<{ addr: string; dhcp: boolean }> {
  const a = await readOverlayAddress(lab, pod);
  return { addr: `${a.local}/${a.prefixlen}`, dhcp: a.valid_life_time !== undefined && a.valid_life_time < 0xffffffff };
}

async function totalPackets(lab: Lab): Promise<number> {
  const [i, k] = await Promise.all([lab.packetsSeen("internet"), lab.packetsSeen("leak")]);
  return i.packets + k.packets;
}

/** The demo's checks, against whatever containers are running now. */
async function demoChecks(lab: Lab): Promise<void> {
  // Addresses: client-0 static from nat.conf, client-1 by DHCP from the dynamic range.
  expect(await overlayAddress(lab, "client-0")).toEqual({ addr: `${OVERLAY}.${STATIC_OCTET}/24`, dhcp: false });
  const c1 = await overlayAddress(lab, "client-1");
  expect(c1.dhcp).toBe(true);
  expect(Number(c1.addr.split("/")[0]!.split(".")[3])).toBeGreaterThanOrEqual(20);
  for (const c of ["client-0", "client-1"] as const) {
    // Egress through the VPN: the internet sees the gateway's VPN-side address.
    expect(await lab.echoFrom(c, "internet", "tcp", { timeoutMs: 5000 })).toEqual({ ok: true, source: expect.stringMatching(viaVpn) });
    expect(await lab.echoFrom(c, "internet", "udp", { timeoutMs: 5000 })).toEqual({ ok: true, source: expect.stringMatching(viaVpn) });
    // DNS through the gateway's dnsmasq, answered by the VPN's DNS.
    const r = await lab.resolve(c, LAB.internetName, { server: `${OVERLAY}.1`, timeoutMs: 3000 });
    expect({ c, ok: r.ok, addresses: r.addresses }).toEqual({ c, ok: true, addresses: [LAB.internetIp] });
  }
  // Port forward from the VPN side to client-0.
  const fwd = await lab.echoFrom("internet", LAB.vpnGatewayIp, "tcp", { port: FORWARD_PORT, timeoutMs: 5000 });
  expect(fwd.ok).toBe(true);
  // Kill switch: VPN link down, then deleted — nothing answers, nothing reaches either host.
  for (const state of ["down", "deleted"] as const) {
    await lab.setVpnLink(state);
    const before = await totalPackets(lab);
    const probes = await Promise.all([
      lab.echoFrom("client-0", "internet", "tcp", { timeoutMs: 1000 }),
      lab.echoFrom("client-1", "internet", "udp", { timeoutMs: 1000 }),
      lab.echoFrom("client-0", "leak", "tcp", { timeoutMs: 1000 }),
    ]);
    const after = await totalPackets(lab);
    expect({ state, answered: probes.filter((p) => p.ok).length, leaked: after - before }).toEqual({ state, answered: 0, leaked: 0 });
  }
  await lab.setVpnLink("up");
  await waitFor("client-0 to reach the internet again after the VPN link came back", async () => (await lab.echoFrom("client-0", "internet", "tcp", { timeoutMs: 1000 })).ok, 15_000, { everyMs: 200 });
}

beforeAll(async () => {
  fx = await requireImage();
  const lab = t.lab;
  cs = new Containers(fx.p, `pgw-imgtest-${lab.id}`);
  work = mkdtempSync(join(tmpdir(), "pgw-image-lab-"));
  // The chart's ConfigMap: the lab's settings, with RESOLV_CONF_COPY back inside the container
  // (the image's default), and for the read-only round inside /run (the emptyDir).
  const settings = readFileSync(join(lab.configDir, "settings.sh"), "utf8");
  const nat = readFileSync(join(lab.configDir, "nat.conf"), "utf8");
  for (const [k, copy] of [["rw", "/etc/resolv_copy.conf"], ["ro", "/run/resolv_copy.conf"]] as const) {
    const d = join(work, `config-${k}`);
    mkdirSync(d);
    writeFileSync(join(d, "settings.sh"), settings.replace(/^RESOLV_CONF_COPY=.*$/m, `RESOLV_CONF_COPY="${copy}" # inside the image`));
    writeFileSync(join(d, "nat.conf"), nat);
    configs[k] = d;
  }
  kubeletResolvConf = readFileSync(lab.resolvConfPath("gateway"), "utf8");
  // The port forward's target in client-0 (the lab's echo service, not part of the image).
  await startDaemon(lab, "client-0", "echo-client-0", [...selfCommand(), "lab", "echo", "--tcp", String(FORWARD_PORT)]);
}, 120_000);

afterAll(async () => {
  const errors: string[] = [];
  try {
    if (cs) await cs.removeAll();
  } catch (e) {
    errors.push((e as Error).message);
  }
  for (const s of running.values()) if (s.proc.exitCode === null) s.proc.kill("SIGKILL");
  if (work) rmSync(work, { recursive: true, force: true });
  const rows = Object.entries(timings).map(([k, ms]) => `  ${(ms / 1000).toFixed(2).padStart(6)} s  ${k}`);
  if (rows.length) {
    const text = `image ${fx?.rec.image} (${fx?.rec.id.slice(0, 12)}), timings:\n${rows.join("\n")}\n`;
    process.stdout.write(text);
    writeFileSync(join(REPO_ROOT, "dist", "image-lab-timings.json"), JSON.stringify({ image: fx?.rec.image, measuredAt: new Date().toISOString(), ms: timings }, null, 2) + "\n");
  }
  if (errors.length) throw new Error(errors.join("\n"));
}, 60_000);

describe("the roles from the image, run by podman in the lab", () => {
  test("gateway: gateway_init.sh (privileged), then gateway_sidecar.sh (NET_ADMIN, NET_RAW) with its dnsmasq", async () => {
    await bringUpGateway(t.lab, false, "writable root");
    // What a VPN client does once connected: point the pod's resolv.conf at the VPN's DNS, in place.
    await t.lab.writeResolvConf("gateway", `nameserver ${LAB.vpnDnsIp}\n`);
  }, 120_000);

  test("clients: client_init.sh and client_sidecar.sh as the webhook runs them (root, only NET_ADMIN and NET_RAW)", async () => {
    for (const c of ["client-0", "client-1"] as const) await bringUpClient(t.lab, c, false, "writable root");
  }, 120_000);

  test("the demo's checks: addresses, egress through the VPN, DNS, port forward, kill switch", async () => {
    await demoChecks(t.lab);
  }, 120_000);

  test("client-1's sidecar renews its DHCP lease on SIGUSR1 with only NET_ADMIN and NET_RAW (no NET_BIND_SERVICE)", async () => {
    // Renewals once bound a UDP socket to <lease>:68, a privileged port: with --cap-drop all and
    // only NET_ADMIN and NET_RAW that bind failed with EACCES. They now use the packet socket,
    // which is why config/kubernetes/client-*.yaml add nothing but NET_ADMIN and NET_RAW.
    const lab = t.lab;
    const name = `${cs.prefix}-client-1-client_sidecar`;
    const side = running.get(name);
    if (!side) throw new Error(`${name} is not running (see the first failure)`);
    const lifetime = async () => (await readOverlayAddress(lab, "client-1")).valid_life_time ?? 0xffffffff;
    // Let the address' lifetime run down a little, so a renewal shows as it going back up.
    const start = await lifetime();
    await waitFor("client-1's lease lifetime to run down by 2 s", async () => (await lifetime()) <= start - 2, 15_000, { everyMs: 500 });
    const before = await lifetime();
    const { addr } = await overlayAddress(lab, "client-1");
    await podman(fx.p, ["kill", "--signal", "USR1", name], { what: `asking ${name} to renew` });
    await waitFor("the renewal (vxlan0's address lifetime going back up)", async () => (await lifetime()) > before, 15_000, { everyMs: 200, detail: () => side.text() });
    expect((await overlayAddress(lab, "client-1")).addr).toBe(addr);
    expect(side.text()).toContain("renewing the DHCP lease of " + addr.split("/")[0] + " now, as asked");
    expect(/(renewing|rebinding) the DHCP lease[^\n]*failed[^\n]*/.exec(side.text())?.[0]).toBeUndefined();
  }, 60_000);

  test("the image's binary reports this build under the client's capabilities, and the image has no shell", async () => {
    const lab = t.lab;
    const name = cs.name("client-1-probe");
    const r = await podman(fx.p, ["run", "--name", name, "--pull=never", "--network", `ns:/run/netns/${lab.ns("client-1")}`, "--dns", "none", ...securityFlags("client_init"), fx.rec.image, "/usr/local/bin/pod-gateway", "version"], { ok: [0] });
    expect(r.stdout).toStartWith(`pod-gateway ${fx.rec.version}+${fx.rec.commit}`);
    await cs.remove(name);
    const ro = await podman(fx.p, ["run", "--rm", "--pull=never", "--network", "none", fx.rec.image, "/bin/sh", "-c", "true"], { ok: [0, 125, 126, 127] });
    expect(ro.code).not.toBe(0); // no shell in the image
  }, 60_000);

  test("restart: podman rm + podman run of every role with a read-only root filesystem (an emptyDir at the gateway's /run); the checks pass again", async () => {
    const lab = t.lab;
    // Sidecars stop on SIGTERM with exit 0 (podman stop), then their containers are removed.
    for (const c of ["client-0", "client-1"] as const) {
      const { code, text } = await removeSidecar(c, "client_sidecar");
      expect({ c, code }).toEqual({ c, code: 0 });
      stopped[c] = text;
    }
    expect((await removeSidecar("gateway", "gateway_sidecar")).code).toBe(0);
    // This round is a new gateway pod: the kubelet's resolv.conf and a new emptyDir, then the
    // VPN client rewrites resolv.conf once it is connected.
    await lab.writeResolvConf("gateway", kubeletResolvConf);
    await bringUpGateway(lab, true, "read-only root");
    await lab.writeResolvConf("gateway", `nameserver ${LAB.vpnDnsIp}\n`);
    for (const c of ["client-0", "client-1"] as const) await bringUpClient(lab, c, true, "read-only root");
    await demoChecks(lab);
  }, 240_000);

  test("client-1's sidecar released or shortened its DHCP lease when stopped, with only NET_ADMIN and NET_RAW", () => {
    // The release (and renewals) once went through a UDP socket bound to <lease>:68, a privileged
    // port: with --cap-drop all, bind() failed with EACCES. They now use the packet socket (NET_RAW).
    const text = stopped["client-1"] ?? "";
    // A plain stop (SIGTERM, the pod not known done) shortens the lease instead of releasing it
    // (issue 13 §7); either way a DHCP exchange at shutdown must work.
    const failed = /(releasing|shortening) the DHCP lease[^\n]*(failed|took longer)[^\n]*/.exec(text)?.[0];
    const done = text.includes("released the DHCP lease") || text.includes("shortened it to 120 s");
    expect({ done, failed }).toEqual({ done: true, failed: undefined });
  });

  test("restart of the gateway sidecar alone: clients keep working, and cluster names still go to the cluster DNS (original resolv.conf kept in the emptyDir)", async () => {
    const lab = t.lab;
    const t0 = performance.now();
    await removeSidecar("gateway", "gateway_sidecar");
    const side = startSidecar(lab, "gateway", "gateway_sidecar", true);
    await waitFor("the restarted gateway sidecar to answer DNS", async () => side.proc.exitCode !== null || (await gatewayDnsAnswers(lab)), 60_000, { everyMs: 100, detail: () => side.text() });
    expect(side.proc.exitCode).toBeNull();
    timings["gateway sidecar restart (rm + run) → DNS answers again"] = performance.now() - t0;
    // The original resolv.conf was kept in the emptyDir (RESOLV_CONF_COPY in /run), so cluster
    // names still go to the cluster DNS, though resolv.conf now names the VPN's DNS.
    const local = await lab.resolve("gateway", LAB.apiServerName, { server: `${OVERLAY}.1`, timeoutMs: 3000 });
    expect({ ok: local.ok, addresses: local.addresses }).toEqual({ ok: true, addresses: [LAB.apiServerIp] });
    expect(side.text()).toContain(`cluster DNS for local: ${LAB.clusterDnsIp}`);
    await waitFor("client-1 (DHCP) to reach the internet through the restarted gateway", async () => (await lab.echoFrom("client-1", "internet", "tcp", { timeoutMs: 1000 })).ok, 60_000, { everyMs: 500 });
    expect(await lab.echoFrom("client-0", "internet", "tcp", { timeoutMs: 5000 })).toEqual({ ok: true, source: expect.stringMatching(viaVpn) });
  }, 120_000);

  test("every container this test made is removed at the end (none left now but the running sidecars)", async () => {
    const r = await podman(fx.p, ["ps", "-a", "--filter", `name=^${cs.prefix}-`, "--format", "{{.Names}}"]);
    expect(r.stdout.trim().split("\n").filter(Boolean).sort()).toEqual([...cs.names].sort());
    expect([...cs.names].every((n) => n.endsWith("_sidecar"))).toBe(true);
  });
});
