// What the OpenVPN netns tests share: the real roles (compiled binary) in a lab whose VPN is a
// real OpenVPN server and client, probes that keep running while a fault happens, and the leak
// check: the leak host sees not one packet, the internet host sees no source but the tunnel's.
import { expect } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { Lab, PodName } from "../../src/lab/types.ts";
import { collect, LAB, waitFor } from "./helpers.ts";

export const GW = "172.16.0.1";

/** Sources the internet host may see: the tunnel address, and the VPN exit's own ICMP errors. */
export const ALLOWED_AT_INTERNET = [LAB.vpnGatewayIp, LAB.vpnExitInternetIp];

export interface Roles {
  sidecar: Subprocess<"ignore", "pipe", "pipe">;
  sidecarOut: { text: () => string };
  clientSidecar: Subprocess<"ignore", "pipe", "pipe">;
  clientOut: { text: () => string };
}

/**
 * gateway-init (kill switch on), gateway-sidecar, then client-init and client-sidecar in client-0
 * (DHCP). `afterInit` runs between gateway-init and the sidecar (where a VPN container starts in
 * a pod: after the init containers).
 */
export async function startRoles(lab: Lab, bin: string, opts: { afterInit?: () => Promise<void> } = {}): Promise<Roles> {
  const init = await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init" });
  expect(init.stderr).toContain(`kill switch: on (traffic leaves only through ${lab.vpnInterface})`);
  await opts.afterInit?.();
  const { sidecar, sidecarOut } = await startGatewaySidecar(lab, bin);
  await lab.exec("client-0", [bin, "client-init"], { env: lab.roleEnv("client-0"), what: "client-init" });
  const clientSidecar = lab.spawn("client-0", [bin, "client-sidecar"], { env: lab.roleEnv("client-0") });
  return { sidecar, sidecarOut, clientSidecar, clientOut: collect(clientSidecar) };
}

/**
 * gateway-sidecar (the lab's configuration unless `configDir`), once its dnsmasq runs: by then
 * its drop report listens too (it binds the NFLOG group just before starting dnsmasq).
 */
export async function startGatewaySidecar(lab: Lab, bin: string, configDir?: string): Promise<Pick<Roles, "sidecar" | "sidecarOut">> {
  const args = [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gateway", "sidecar"), "--firewall-check-interval", "1"];
  if (configDir) args.push("--config-dir", configDir);
  const sidecar = lab.spawn("gateway", args, { env: lab.roleEnv("gateway") });
  const sidecarOut = collect(sidecar);
  await waitFor("the gateway's dnsmasq", () => sidecarOut.text().includes("dnsmasq running") || sidecar.exitCode !== null, 15_000);
  if (sidecar.exitCode !== null) throw new Error(`gateway-sidecar exited ${sidecar.exitCode}:\n${sidecarOut.text()}`);
  expect(sidecarOut.text()).not.toContain("drop report is off");
  return { sidecar, sidecarOut };
}

async function stopProcs(...ps: (Subprocess | undefined)[]): Promise<void> {
  for (const p of ps) if (p && p.exitCode === null) p.kill("SIGTERM");
  await Promise.all(ps.map((p) => p?.exited));
}

/** The drop report's line (issue 13 §5) for the lab's VPN server on this transport and port. */
export function dropReportLine(proto: "udp" | "tcp", port: number): RegExp {
  const dst = `${LAB.vpnServerIp.replaceAll(".", "\\.")} ${proto}/${port}`;
  // The parenthesis counts other destinations: the ICMP errors the server's old session draws.
  return new RegExp(`the kill switch dropped \\d+ packets? to ${dst} on eth0( \\(and [^)]*\\))? — if that is your VPN server, add ${port} to VPN_TRAFFIC_PORT`);
}

/**
 * With the kill switch on and a VPN_TRAFFIC_PORT that misses the server's port, the tunnel does
 * not come up, nothing leaks, and gateway-sidecar says why (the drop report names the server, its
 * transport and port). Then the lab's own VPN_TRAFFIC_PORT lets the waiting client through.
 *
 * The gateway's running containers are stopped first (a sidecar re-asserts its own settings).
 * The new sidecar starts before the VPN client so its drop report listens before the client's
 * first packet: a UDP client whose sends fail (the kill switch's drop gives it EPERM) only resends
 * its first handshake packet with a doubling timeout (measured: at 0, 2.5, 7, 15 and 31 s, then
 * a restart at 60 s), so a report that binds after the first packet can wait half a minute.
 */
export async function expectWrongPortKeepsTunnelDown(lab: Lab, bin: string, roles: Roles | undefined, wrongPort: number): Promise<void> {
  const vpn = lab.openvpn();
  const { proto, port } = vpn.settings;
  await stopProcs(roles?.sidecar, roles?.clientSidecar);
  await lab.setVpnLink("deleted");
  const wrong = configWith(lab, `config-wrong-port-${wrongPort}`, `VPN_TRAFFIC_PORT="${wrongPort}"`);
  await lab.exec("gateway", [bin, "gateway-init", "--config-dir", wrong], { env: lab.roleEnv("gateway"), what: `gateway-init (VPN_TRAFFIC_PORT ${wrongPort})` });
  const { sidecar, sidecarOut } = await startGatewaySidecar(lab, bin, wrong);
  try {
    const before = await leakBaseline(lab);
    const drops = await killSwitchOutputDrops(lab);
    const n = vpn.connections();
    const initiated = () => readFileSync(vpn.logFile("client"), "utf8").split("Peer Connection Initiated").length;
    const initiatedBefore = initiated();
    const started = performance.now();
    await vpn.start("client");
    await waitFor("the drop report naming the VPN server", () => dropReportLine(proto, port).test(sidecarOut.text()), 20_000, {
      everyMs: 100,
      detail: () => `${sidecarOut.text()}\nclient:\n${tail(vpn.logFile("client"))}`,
    });
    // An unblocked client connects in ~0.1 s here; give the blocked one its first resends.
    await Bun.sleep(Math.max(0, 4000 - (performance.now() - started)));
    expect(vpn.connections()).toBe(n);
    expect(initiated()).toBe(initiatedBefore);
    expect(await vpnIfindex(lab)).toBeUndefined(); // OpenVPN opens tun0 only once the server answered
    expect((await lab.exec("gateway", ["ip", "route", "show"])).stdout).not.toContain("0.0.0.0/1");
    expect(await killSwitchOutputDrops(lab)).toBeGreaterThan(drops);
    await expectNoLeak(lab, before, `wrong VPN_TRAFFIC_PORT ${wrongPort}`);
  } finally {
    await stopProcs(sidecar);
  }
  // The right port: the waiting client gets through at its next attempt.
  const before = await leakBaseline(lab);
  const n = vpn.connections();
  await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init" });
  await vpn.waitConnected(n, 40_000);
  // The server counts the connection a moment before the client has set up tun0's routes.
  await waitFor("the VPN's routes", async () => (await lab.exec("gateway", ["ip", "route", "show"])).stdout.includes("0.0.0.0/1"), 15_000, { everyMs: 100 });
  // No sidecar runs now to copy the new tun0's routes into our table, and the lab's internet
  // host is also the VPN's resolver, which issue 11 §3 routes through that table only: one more
  // gateway-init (idempotent) brings it in line, as the sidecar would within its route check.
  await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init (tunnel up)" });
  expect((await lab.echoFrom("gateway", "internet", "tcp")).ok).toBe(true);
  await expectNoLeak(lab, before, `wrong VPN_TRAFFIC_PORT ${wrongPort}, then corrected`);
}

export interface LeakBaseline {
  leak: number;
  internetSources: string[];
}

export async function leakBaseline(lab: Lab): Promise<LeakBaseline> {
  const [leak, inet] = await Promise.all([lab.packetsSeen("leak"), lab.packetsSeen("internet")]);
  return { leak: leak.packets, internetSources: inet.sources };
}

/** Not one packet more at the leak host; no source at the internet host but the tunnel's. */
export async function expectNoLeak(lab: Lab, before: LeakBaseline, what: string): Promise<void> {
  const [leak, inet] = await Promise.all([lab.packetsSeen("leak"), lab.packetsSeen("internet")]);
  const strange = inet.sources.filter((s) => !ALLOWED_AT_INTERNET.includes(s as (typeof ALLOWED_AT_INTERNET)[number]));
  expect({ what, leakHostPackets: leak.packets - before.leak, leakHostSources: leak.sources, internetSourcesOutsideTheTunnel: strange }).toEqual({
    what,
    leakHostPackets: 0,
    leakHostSources: leak.sources, // shown in the diff when the count is off
    internetSourcesOutsideTheTunnel: [],
  });
}

/**
 * Probes that keep running until stop(): TCP and UDP to the internet and the leak host from a
 * client, UDP to the leak host from the gateway itself (unless `gatewayOwn` is false), ICMP from
 * the client to the internet host, and a DNS query for an internet name through the gateway.
 * stop() lets every loop finish at least `minRounds` probes first (a fault shorter than one probe
 * is still covered from before it to after it). Returns how many ran and how many were answered.
 */
export function probeContinuously(lab: Lab, client: PodName, minRounds = 2, opts: { gatewayOwn?: boolean } = {}): { stop: () => Promise<{ probes: number; answered: number }> } {
  let running = true;
  let probes = 0;
  let answered = 0;
  const loop = async (f: () => Promise<boolean>) => {
    for (let n = 0; running || n < minRounds; n++) {
      probes++;
      if (await f()) answered++;
      await Bun.sleep(100); // seven loops of process starts are enough load on two shared cores
    }
  };
  const ms = 600;
  const loops = [
    loop(async () => (await lab.echoFrom(client, "internet", "tcp", { timeoutMs: ms })).ok),
    loop(async () => (await lab.echoFrom(client, "internet", "udp", { timeoutMs: ms })).ok),
    loop(async () => (await lab.echoFrom(client, "leak", "tcp", { timeoutMs: ms })).ok),
    loop(async () => (await lab.echoFrom(client, "leak", "udp", { timeoutMs: ms })).ok),
    ...(opts.gatewayOwn === false ? [] : [loop(async () => (await lab.echoFrom("gateway", "leak", "udp", { timeoutMs: ms })).ok)]),
    loop(async () => (await lab.exec(client, ["busybox", "ping", "-c", "1", "-W", "1", LAB.internetIp], { okCodes: [1] })).code === 0),
    loop(async () => (await lab.resolve(client, LAB.internetName, { server: GW, timeoutMs: ms })).ok),
  ];
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return { probes, answered };
    },
  };
}

/** Until a client's traffic leaves through the tunnel again and internet names resolve through .1. */
export async function waitTrafficFlows(lab: Lab, client: PodName, timeoutMs = 20_000): Promise<void> {
  await waitFor(
    `${client}'s traffic to flow through the tunnel again`,
    async () => {
      const r = await lab.echoFrom(client, "internet", "tcp", { timeoutMs: 500 });
      return r.ok && r.source.startsWith(`${LAB.vpnGatewayIp}:`);
    },
    timeoutMs,
    { everyMs: 100, detail: () => tail(join(lab.runDir, "logs", "openvpn-client.log")) },
  );
  await waitFor("an internet name to resolve through the gateway", async () => (await lab.resolve(client, LAB.internetName, { server: GW, timeoutMs: 500 })).ok, timeoutMs, {
    everyMs: 100,
  });
}

export function tail(file: string, n = 15): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-n).join("\n");
  } catch {
    return "(no log)";
  }
}

/** ifindex of the gateway's VPN link (undefined when it does not exist): a new index means a re-created device. */
export async function vpnIfindex(lab: Lab): Promise<number | undefined> {
  const r = await lab.exec("gateway", ["ip", "-j", "link", "show", "dev", lab.vpnInterface], { okCodes: [1] });
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as { ifindex: number }[])[0]?.ifindex;
}

/** Packets the kill switch's final DROP in our OUTPUT chain has dropped (iptables backends). */
export async function killSwitchOutputDrops(lab: Lab): Promise<number> {
  const r = await lab.exec("gateway", ["iptables-save", "-c", "-t", "filter"]);
  let n = 0;
  for (const line of r.stdout.split("\n")) {
    const m = /^\[(\d+):\d+\] -A POD-GATEWAY-OUTPUT .*-j DROP$/.exec(line);
    if (m) n += Number(m[1]);
  }
  return n;
}

/** A config dir like the lab's with one setting changed (appended: the last assignment wins). */
export function configWith(lab: Lab, name: string, line: string): string {
  const dir = join(lab.runDir, name);
  Bun.spawnSync(["cp", "-r", lab.configDir, dir]);
  const settings = join(dir, "settings.sh");
  writeFileSync(settings, readFileSync(settings, "utf8") + `\n${line}\n`);
  return dir;
}
