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
  const sidecar = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gateway", "sidecar"), "--firewall-check-interval", "1"], {
    env: lab.roleEnv("gateway"),
  });
  const sidecarOut = collect(sidecar);
  await waitFor("the gateway's dnsmasq", () => sidecarOut.text().includes("dnsmasq running") || sidecar.exitCode !== null, 15_000);
  if (sidecar.exitCode !== null) throw new Error(`gateway-sidecar exited ${sidecar.exitCode}:\n${sidecarOut.text()}`);
  await lab.exec("client-0", [bin, "client-init"], { env: lab.roleEnv("client-0"), what: "client-init" });
  const clientSidecar = lab.spawn("client-0", [bin, "client-sidecar"], { env: lab.roleEnv("client-0") });
  return { sidecar, sidecarOut, clientSidecar, clientOut: collect(clientSidecar) };
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
