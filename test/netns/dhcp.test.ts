// The DHCP client against a real dnsmasq and the real kernel, wired like the product: two
// namespaces joined by a veth "pod network", a VXLAN on top. The server's vxlan0 learns and has
// no FDB entries (so it cannot flood a broadcast reply); the client's vxlan0 has only the
// all-zero FDB entry towards the server and NO address while it acquires.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Lease } from "../../src/core/dhcp/types.ts";
import { ProcessRunner, which } from "../../src/sys/exec.ts";
import { REPO, requireRoot } from "../helpers/bin.ts";

const RUN_ID = Math.random().toString(16).slice(2, 8);
const NS_S = `dhcpt-${RUN_ID}-srv`;
const NS_C = `dhcpt-${RUN_ID}-cli`;
const UNDERLAY_S = "10.99.0.1";
const UNDERLAY_C = "10.99.0.2";
const VNI = 42;
const CLIENT_MAC = "02:11:22:33:44:55";
const ID = { ifname: "vxlan0", mac: CLIENT_MAC, clientId: "pod-a", hostname: "pod-a" };
const CLIENT_ID_HEX = "00:70:6f:64:2d:61"; // type 0 + "pod-a", as dnsmasq writes it

const run = new ProcessRunner();
let dir = "";
let dnsmasq: Subprocess | undefined;

async function ip(...args: string[]) {
  return run.run(["ip", ...args]);
}

async function createClientVxlan(): Promise<void> {
  await ip("-n", NS_C, "link", "add", "vxlan0", "address", CLIENT_MAC, "type", "vxlan", "id", String(VNI), "dev", "veth-c", "dstport", "4789");
  await ip("-n", NS_C, "link", "set", "vxlan0", "up");
  // The all-zero entry: broadcast and unknown unicast go to the gateway (here: the server).
  await run.run(["bridge", "-n", NS_C, "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan0", "dst", UNDERLAY_S]);
}

/** `extra`: more dnsmasq options (the gateway's --dhcp-rapid-commit); without it, a server that does not know Rapid Commit. */
function startDnsmasq(extra: string[] = []): void {
  dnsmasq = Bun.spawn(
    [
      "ip", "netns", "exec", NS_S,
      "dnsmasq", "-k", "--no-ping", "--dhcp-range=172.16.0.20,172.16.0.254,12h", "--interface=vxlan0", "--bind-interfaces",
      "--port=0", `--dhcp-leasefile=${join(dir, "leases")}`, "--dhcp-option=6,172.16.0.1", "--log-facility=-", "--log-dhcp",
      `--pid-file=${join(dir, "dnsmasq.pid")}`, "--conf-file=/dev/null", ...extra,
    ],
    { stdin: "ignore", stdout: "ignore", stderr: Bun.file(join(dir, "dnsmasq.log")) },
  );
}

/** dnsmasq is ready once its pid file exists. */
async function dnsmasqReady(): Promise<void> {
  for (let i = 0; i < 100 && !(await Bun.file(join(dir, "dnsmasq.pid")).exists()); i++) await Bun.sleep(20);
}

/** Stop dnsmasq and start it again with `extra` options, ready for the next exchange. */
async function restartDnsmasq(extra: string[] = []): Promise<void> {
  await stopDnsmasq();
  rmSync(join(dir, "dnsmasq.pid"), { force: true });
  startDnsmasq(extra);
  await dnsmasqReady();
}

async function stopDnsmasq(): Promise<void> {
  if (!dnsmasq) return;
  dnsmasq.kill("SIGTERM");
  await dnsmasq.exited;
  dnsmasq = undefined;
}

interface RunResult {
  ok: boolean;
  lease?: Lease;
  /** Whole call, socket opening included. */
  ms: number;
  name?: string;
  message?: string;
  /** From the client's info log: how the lease was obtained and DISCOVER (or REQUEST) → ACK ms. */
  how?: string;
  exchangeMs?: number;
}

/** Run test/netns/dhcp-run.ts (the real client code, from source) in the client namespace. */
async function client(req: Record<string, unknown>, prefix: string[] = []): Promise<RunResult> {
  const p = Bun.spawn([...prefix, "ip", "netns", "exec", NS_C, process.execPath, join(REPO, "test/netns/dhcp-run.ts"), JSON.stringify(req)], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, LOG_LEVEL: "info" },
  });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const line = out.trim().split("\n").at(-1) ?? "";
  try {
    const r = JSON.parse(line) as RunResult;
    const m = /leased \S+ from \S+ for \d+ s \(([\w ]+), (\d+) ms\)/.exec(err);
    if (m) {
      r.how = m[1];
      r.exchangeMs = Number(m[2]);
    }
    return r;
  } catch {
    throw new Error(`dhcp-run.ts printed no JSON (stdout ${JSON.stringify(out)}, stderr ${JSON.stringify(err)})`);
  }
}

interface LeaseLine {
  expiry: number;
  mac: string;
  address: string;
  hostname: string;
  clientId: string;
}
function leaseFile(): LeaseLine[] {
  let text = "";
  try {
    text = readFileSync(join(dir, "leases"), "utf8");
  } catch {}
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => {
      const [expiry, mac, address, hostname, clientId] = l.split(/\s+/);
      return { expiry: Number(expiry), mac: mac!, address: address!, hostname: hostname!, clientId: clientId! };
    });
}

/** dnsmasq writes its lease file after each change; wait (briefly) for the one we expect. */
async function waitForLeaseFile(pred: (l: LeaseLine[]) => boolean): Promise<LeaseLine[]> {
  for (let i = 0; i < 50; i++) {
    const l = leaseFile();
    if (pred(l)) return l;
    await Bun.sleep(20);
  }
  return leaseFile();
}

beforeAll(async () => {
  requireRoot();
  for (const tool of ["ip", "bridge", "dnsmasq", "setpriv"])
    if (!which(tool)) throw new Error(`the DHCP netns test needs \`${tool}\` on PATH (apt-get install iproute2 dnsmasq-base util-linux)`);
  dir = mkdtempSync(join(tmpdir(), "dhcpt-"));
  await ip("netns", "add", NS_S);
  await ip("netns", "add", NS_C);
  await ip("link", "add", "veth-s", "netns", NS_S, "type", "veth", "peer", "name", "veth-c", "netns", NS_C);
  for (const [ns, dev, addr] of [
    [NS_S, "veth-s", UNDERLAY_S],
    [NS_C, "veth-c", UNDERLAY_C],
  ] as const) {
    await ip("-n", ns, "addr", "add", `${addr}/24`, "dev", dev);
    await ip("-n", ns, "link", "set", dev, "up");
    await ip("-n", ns, "link", "set", "lo", "up");
  }
  // Server (gateway) side: learning VXLAN, no FDB entries, the overlay's .1.
  await ip("-n", NS_S, "link", "add", "vxlan0", "type", "vxlan", "id", String(VNI), "dev", "veth-s", "dstport", "4789");
  await ip("-n", NS_S, "addr", "add", "172.16.0.1/24", "dev", "vxlan0");
  await ip("-n", NS_S, "link", "set", "vxlan0", "up");
  await createClientVxlan();
  startDnsmasq();
  await dnsmasqReady();
}, 30_000);

afterAll(async () => {
  await stopDnsmasq().catch(() => {});
  for (const ns of [NS_C, NS_S]) await run.run(["ip", "netns", "del", ns], { okCodes: [1, 2] }).catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("DHCP client on an address-less vxlan0 against dnsmasq", () => {
  let lease: Lease;

  test("acquire: DISCOVER (asking for Rapid Commit) → OFFER → REQUEST → ACK from a dnsmasq without dhcp-rapid-commit", async () => {
    const r = await client({ op: "acquire", ...ID, deadlineMs: 5000 });
    expect(r).toMatchObject({ ok: true, how: "selected" });
    lease = r.lease!;
    expect(lease.address).toMatch(/^172\.16\.0\.(\d+)$/);
    const octet = Number(lease.address.split(".")[3]);
    expect(octet).toBeGreaterThanOrEqual(20);
    expect(octet).toBeLessThanOrEqual(254);
    expect(lease).toMatchObject({ prefixLength: 24, router: "172.16.0.1", dns: ["172.16.0.1"], serverId: "172.16.0.1", leaseSeconds: 43200, renewSeconds: 21600, rebindSeconds: 37800 });
    const lines = await waitForLeaseFile((l) => l.some((x) => x.address === lease.address));
    expect(lines).toEqual([{ expiry: expect.any(Number), mac: CLIENT_MAC, address: lease.address, hostname: "pod-a", clientId: CLIENT_ID_HEX }]);
    // The client interface still has no address: acquiring does not configure anything.
    const addrs = JSON.parse((await ip("-j", "-n", NS_C, "addr", "show", "dev", "vxlan0")).stdout)[0].addr_info.filter((a: { family: string }) => a.family === "inet");
    expect(addrs).toEqual([]);
  }, 20_000);

  test("acquire with Rapid Commit: dnsmasq --dhcp-rapid-commit ACKs the DISCOVER (one round trip) and records the lease", async () => {
    await restartDnsmasq(["--dhcp-rapid-commit"]);
    try {
      const r = await client({ op: "acquire", ...ID, deadlineMs: 5000 });
      expect(r).toMatchObject({ ok: true, how: "rapid commit", lease: { address: lease.address, serverId: "172.16.0.1", leaseSeconds: 43200, router: "172.16.0.1" } });
      const lines = await waitForLeaseFile((l) => l.some((x) => x.address === lease.address));
      expect(lines).toEqual([{ expiry: expect.any(Number), mac: CLIENT_MAC, address: lease.address, hostname: "pod-a", clientId: CLIENT_ID_HEX }]);
    } finally {
      await restartDnsmasq();
    }
  }, 20_000);

  test("measure: DISCOVER → ACK time over 5 acquisitions (reported, not asserted)", async () => {
    const exchange: number[] = [];
    const call: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await client({ op: "acquire", ...ID, deadlineMs: 5000 });
      expect(r.ok).toBe(true);
      expect(r.lease!.address).toBe(lease.address); // same client id + MAC: same address
      exchange.push(r.exchangeMs!);
      call.push(r.ms);
    }
    const stats = (v: number[]) => {
      const s = [...v].sort((a, b) => a - b);
      return `min ${s[0]!.toFixed(0)} median ${s[2]!.toFixed(0)} max ${s[4]!.toFixed(0)}`;
    };
    console.log(`DHCP DISCOVER→ACK ms: ${stats(exchange)}; whole acquireLease call (libc load, socket, filter) ms: ${stats(call)}`);
  }, 30_000);

  test("renew (unicast over UDP from the address) and rebind (broadcast) extend the lease", async () => {
    await ip("-n", NS_C, "addr", "add", `${lease.address}/24`, "dev", "vxlan0");
    const before = leaseFile()[0]!.expiry;
    await Bun.sleep(1100); // the lease file has one-second resolution
    const r = await client({ op: "renew", ...ID, lease });
    expect(r).toMatchObject({ ok: true, lease: { address: lease.address, serverId: "172.16.0.1", leaseSeconds: 43200 } });
    expect(r.lease!.obtainedAt).toBeGreaterThan(lease.obtainedAt);
    const after = await waitForLeaseFile((l) => (l[0]?.expiry ?? 0) > before);
    expect(after[0]!.expiry).toBeGreaterThan(before);
    expect(after[0]!.address).toBe(lease.address);

    await Bun.sleep(1100);
    const rb = await client({ op: "renew", ...ID, lease, broadcast: true });
    expect(rb).toMatchObject({ ok: true, lease: { address: lease.address } });
    const after2 = await waitForLeaseFile((l) => (l[0]?.expiry ?? 0) > after[0]!.expiry);
    expect(after2[0]!.expiry).toBeGreaterThan(after[0]!.expiry);
    lease = r.lease!;
  }, 20_000);

  test("a re-created vxlan0 with the same MAC and client id gets the same address (also by INIT-REBOOT)", async () => {
    await ip("-n", NS_C, "link", "del", "vxlan0");
    await createClientVxlan();
    const r = await client({ op: "acquire", ...ID, deadlineMs: 5000 });
    expect(r).toMatchObject({ ok: true, lease: { address: lease.address } });
    // INIT-REBOOT: one REQUEST for the known address, which dnsmasq ACKs directly.
    const rb = await client({ op: "acquire", ...ID, requestedAddress: lease.address, initReboot: true, deadlineMs: 5000 });
    expect(rb).toMatchObject({ ok: true, how: "rebooted", lease: { address: lease.address } });
    // Another client id on the same MAC is another client to dnsmasq: a different address.
    const other = await client({ op: "acquire", ...ID, clientId: "pod-b", hostname: "pod-b", deadlineMs: 5000 });
    expect(other.ok).toBe(true);
    expect(other.lease!.address).not.toBe(lease.address);
  }, 20_000);

  test("release removes the lease from dnsmasq's lease file", async () => {
    // The RELEASE leaves from the address (the re-created vxlan0 has none yet).
    await ip("-n", NS_C, "addr", "add", `${lease.address}/24`, "dev", "vxlan0");
    const again = await client({ op: "acquire", ...ID, deadlineMs: 5000 });
    expect(again).toMatchObject({ ok: true, lease: { address: lease.address } });
    await waitForLeaseFile((l) => l.some((x) => x.address === lease.address));
    expect(leaseFile().some((l) => l.address === lease.address)).toBe(true);
    const r = await client({ op: "release", ...ID, lease });
    expect(r).toMatchObject({ ok: true });
    const lines = await waitForLeaseFile((l) => !l.some((x) => x.address === lease.address));
    expect(lines.map((l) => l.address)).not.toContain(lease.address);
  }, 20_000);

  test("without NET_RAW the error says what the container needs", async () => {
    const r = await client({ op: "acquire", ...ID, deadlineMs: 2000 }, ["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", "--"]);
    expect(r.ok).toBe(false);
    expect(r.name).toBe("DhcpSocketError");
    expect(r.message).toBe(
      "DHCP on vxlan0: opening an AF_PACKET socket: Operation not permitted (EPERM): the container needs the NET_RAW capability (securityContext.capabilities.add: [NET_RAW])",
    );
  }, 20_000);

  test("an interface that does not exist is named in the error", async () => {
    const r = await client({ op: "acquire", ...ID, ifname: "nope0", deadlineMs: 2000 });
    expect(r).toMatchObject({ ok: false, name: "DhcpSocketError", message: "DHCP on nope0: looking up the interface index: No such device (ENODEV)" });
  }, 20_000);

  test("no server: a clear error at the deadline", async () => {
    await stopDnsmasq();
    const r = await client({ op: "acquire", ...ID, deadlineMs: 1500 });
    expect(r.ok).toBe(false);
    expect(r.name).toBe("DhcpError");
    expect(r.message).toMatch(/^DHCP on vxlan0: discover: no OFFER after \d+ DISCOVER\(s\) in \d+ ms$/);
    // Never before the deadline; how late a busy machine fires the timer is not asserted.
    expect(Number(/in (\d+) ms$/.exec(r.message!)![1])).toBeGreaterThanOrEqual(1500);
    console.log(`no-server failure reported after ${r.ms.toFixed(0)} ms (deadline 1500 ms)`);
  }, 20_000);
});
