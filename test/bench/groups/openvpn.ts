// Group 6: the real VPN. Two labs side by side, each with the gateway roles and client-0 routed:
// one whose VPN is a real OpenVPN server and client (UDP 1194, TLS), one with the veth stand-in.
// - Tunnel up → client traffic: after the VPN link is re-created (OpenVPN: a soft restart,
//   SIGUSR1, which deletes and re-creates tun0; stand-in: the veth deleted and added back), the
//   time from the second def1 route appearing in the gateway pod (`ip -ts monitor route`) to
//   the first reply to a client-0 UDP probe sent every 20 ms (each waits 20 ms for its reply: the resolution) to the internet host. With routes in
//   the main table only, this is the probe interval plus a round trip; a routing layer that
//   copies the VPN's routes into its own table adds its copy delay here.
// - TCP throughput (iperf3) client-0 → internet host through each, alternated.
import type { Lab } from "../../../src/lab/types.ts";
import { agentArgv, benchLab, destroyBenchLab, inNs, LAB, roleEnv, startGateway, type BenchContext } from "../lib/context.ts";
import { collect, mustRun, timed, waitFor } from "../lib/proc.ts";
import { summarize, type GroupResult } from "../lib/stats.ts";

const POLL_MS = 20;

/** "[2026-12-03T09:37:00.123456] 128.0.0.0/1 via ..." (ip -ts, TZ=UTC) → epoch ms; undefined for other lines. Pure. */
export function parseMonitorRouteAdd(line: string, dev: string): { epochMs: number; dst: string } | undefined {
  const m = /^\[(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{6})\] (0\.0\.0\.0\/1|128\.0\.0\.0\/1) .*\bdev (\S+)/.exec(line);
  if (!m || m[9] !== dev) return undefined;
  const [y, mo, d, h, mi, s, us] = m.slice(1, 8).map(Number) as [number, number, number, number, number, number, number];
  return { epochMs: Date.UTC(y, mo - 1, d, h, mi, s) + us / 1000, dst: m[8]! };
}

interface Side {
  lab: Lab;
  /** Re-create the VPN link and return once it is up again. */
  recreate: () => Promise<void>;
}

async function routeUpToTraffic(ctx: BenchContext, side: Side): Promise<number> {
  const { lab } = side;
  const monitor = ctx.cleanup.addProc(Bun.spawn(inNs(lab, "gateway", ["ip", "-ts", "-o", "monitor", "route"]), { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, TZ: "UTC" }, detached: true }));
  const poll = ctx.cleanup.addProc(lab.spawn("client-0", agentArgv(ctx, "udp-poll", LAB.internetIp, String(LAB.echoUdpPort), String(POLL_MS))));
  const mon = collect(monitor);
  const replies = collect(poll);
  try {
    await waitFor("the monitor and the first probe reply", () => replies.text().includes("ok "), 10_000, 10);
    const start = Date.now();
    await side.recreate();
    // The link is up and its routes are in: find when the second of them appeared, then the first reply after it.
    let upAt: number | undefined;
    let firstReply: number | undefined;
    await waitFor(
      "the route events and a probe reply after them",
      () => {
        const seen = new Map<string, number>();
        for (const l of mon.lines()) {
          if (l.includes("Deleted")) continue;
          const r = parseMonitorRouteAdd(l, lab.vpnInterface);
          if (r && r.epochMs >= start - 1) seen.set(r.dst, r.epochMs);
        }
        if (seen.size < 2) return false;
        upAt = Math.max(...seen.values());
        for (const l of replies.lines()) {
          const m = /^ok (\S+) (\S+)$/.exec(l);
          if (m && Number(m[2]) >= upAt) {
            firstReply = Number(m[2]);
            return true;
          }
        }
        return false;
      },
      20_000,
      10,
    );
    return firstReply! - upAt!;
  } finally {
    for (const p of [monitor, poll]) {
      try {
        process.kill(-p.pid, "SIGKILL");
      } catch {}
    }
  }
}

async function iperf(ctx: BenchContext, lab: Lab): Promise<number> {
  const r = await timed(inNs(lab, "client-0", ["iperf3", "-c", LAB.internetIp, "-t", String(ctx.opts.iperfSeconds), "-O", "1", "-J"]), { env: process.env });
  let j: any;
  try {
    j = JSON.parse(r.stdout);
  } catch {
    throw new Error(`iperf3 in lab ${lab.id}: exit ${r.code}, no JSON: ${r.stdout.slice(0, 300)} ${r.stderr}`);
  }
  if (r.code !== 0 || j.error) throw new Error(`iperf3 in lab ${lab.id}: ${j.error ?? `exit ${r.code}`}`);
  return j.end.sum_received.bits_per_second / 1e6;
}

async function prepare(ctx: BenchContext, vpn: "veth" | "openvpn"): Promise<Lab> {
  const lab = await benchLab(ctx, { clients: 1, vpn });
  await startGateway(ctx, lab, "gw");
  await mustRun("client-init", inNs(lab, "client-0", [ctx.bin, "client-init"]), { env: roleEnv(ctx, lab, "client-0") });
  const server = ctx.cleanup.addProc(lab.spawn("internet", ["iperf3", "-s"]));
  void server.stdout.pipeTo(new WritableStream());
  void server.stderr.pipeTo(new WritableStream());
  await waitFor("iperf3 to listen", async () => (await timed(inNs(lab, "internet", ["ss", "-Hltn", "sport", "= :5201"]))).stdout.includes("5201"), 5000, 50);
  return lab;
}

export async function openvpnGroup(ctx: BenchContext): Promise<GroupResult> {
  const t0 = performance.now();
  const labs: Lab[] = [];
  try {
    const ovpn = await prepare(ctx, "openvpn");
    labs.push(ovpn);
    const veth = await prepare(ctx, "veth");
    labs.push(veth);
    const sides: Record<"openvpn" | "veth", Side> = {
      openvpn: {
        lab: ovpn,
        recreate: async () => {
          const vpn = ovpn.openvpn();
          const n = vpn.connections();
          vpn.signal("client", "SIGUSR1");
          await vpn.waitConnected(n);
        },
      },
      veth: {
        lab: veth,
        recreate: async () => {
          await veth.setVpnLink("deleted");
          await veth.setVpnLink("up");
        },
      },
    };
    const up = { openvpn: [] as number[], veth: [] as number[] };
    const tput = { openvpn: [] as number[], veth: [] as number[] };
    for (let i = 0; i < ctx.opts.runs; i++) {
      if (ctx.cleanup.interrupted) throw new Error("interrupted");
      const order: ("openvpn" | "veth")[] = i % 2 ? ["veth", "openvpn"] : ["openvpn", "veth"];
      for (const k of order) up[k].push(await routeUpToTraffic(ctx, sides[k]));
      for (const k of order) tput[k].push(await iperf(ctx, sides[k].lab));
      ctx.log(
        `openvpn: run ${i + 1}/${ctx.opts.runs}: route → traffic ${up.openvpn.at(-1)!.toFixed(1)} ms (stand-in ${up.veth.at(-1)!.toFixed(1)} ms), ` +
          `TCP ${tput.openvpn.at(-1)!.toFixed(0)} Mbit/s (stand-in ${tput.veth.at(-1)!.toFixed(0)})`,
      );
    }
    return {
      id: "openvpn",
      title: "The real VPN: OpenVPN against the veth stand-in",
      figures: [
        {
          key: "openvpn.route-to-traffic",
          label: "VPN link re-created: its def1 routes in place → first client-0 reply from the internet host",
          unit: "ms",
          ours: summarize(up.openvpn),
          baseline: { label: "the veth stand-in, deleted and added back", summary: summarize(up.veth) },
          note: `client-0 probes every ${POLL_MS} ms; OpenVPN re-creates tun0 on SIGUSR1 (no persist-tun)`,
        },
        {
          key: "openvpn.tcp",
          label: "iperf3 TCP client-0 → internet host through the gateway and OpenVPN (UDP, AES-256-GCM, userspace)",
          unit: "Mbit/s",
          ours: summarize(tput.openvpn),
          baseline: { label: "the same through the veth stand-in", summary: summarize(tput.veth) },
        },
      ],
      facts: [],
      notes: [
        "Both labs run at once on the same shared cores; runs alternate between them. OpenVPN here runs without its kernel data-channel offload (no ovpn-dco module), so every packet crosses user space twice (client and server).",
      ],
      durationMs: performance.now() - t0,
      data: { up, tput },
    };
  } finally {
    for (const l of labs) await destroyBenchLab(ctx, l).catch((e) => ctx.log(`openvpn: removing lab ${l.id}: ${(e as Error).message}`));
  }
}
