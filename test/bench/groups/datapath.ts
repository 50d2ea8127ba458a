// Group 5: the data path. TCP throughput (iperf3, client → server) from client-0 to the
// internet host through vxlan0, the gateway (forwarding, kill switch, MASQUERADE), the VPN-like
// link and the VPN exit, against the same two namespaces joined directly by a veth pair (no
// tunnel, no gateway), alternated. Fragmentation: the IPv4 fragment counters of every namespace
// on the path (/proc/net/snmp: FragCreates, FragOKs, FragFails, ReasmReqds) before and after.
import type { Lab, PodName } from "../../../src/lab/types.ts";
import { benchLab, destroyBenchLab, inNs, LAB, roleEnv, startGateway, type BenchContext } from "../lib/context.ts";
import { mustRun, timed, waitFor } from "../lib/proc.ts";
import { summarize, type GroupResult } from "../lib/stats.ts";

const DIRECT = { client: "10.254.0.1", internet: "10.254.0.2" };
const PATH_PODS: PodName[] = ["client-0", "node", "gateway", "vpn", "internet"];
const FRAG_KEYS = ["FragCreates", "FragOKs", "FragFails", "ReasmReqds", "ReasmOKs", "ReasmFails"] as const;

/** The Ip: counters of /proc/net/snmp (header line, then values). Pure. */
export function parseSnmpIp(text: string): Record<string, number> {
  const ip = text.split("\n").filter((l) => l.startsWith("Ip:"));
  if (ip.length < 2) throw new Error("/proc/net/snmp has no Ip: lines");
  const keys = ip[0]!.split(/\s+/).slice(1);
  const vals = ip[1]!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(keys.map((k, i) => [k, vals[i] ?? NaN]));
}

async function fragCounters(lab: Lab): Promise<Record<string, number>> {
  let total: Record<string, number> = Object.fromEntries(FRAG_KEYS.map((k) => [k, 0]));
  for (const pod of PATH_PODS) {
    const c = parseSnmpIp((await mustRun(`reading /proc/net/snmp in ${pod}`, inNs(lab, pod, ["cat", "/proc/net/snmp"]))).stdout);
    total = Object.fromEntries(FRAG_KEYS.map((k) => [k, total[k]! + (c[k] ?? 0)]));
  }
  return total;
}

interface Iperf {
  mbps: number;
  retransmits: number;
  mss: number | undefined;
}

async function iperf(ctx: BenchContext, lab: Lab, server: string): Promise<Iperf> {
  const r = await timed(inNs(lab, "client-0", ["iperf3", "-c", server, "-t", String(ctx.opts.iperfSeconds), "-O", "1", "-J"]), { env: process.env });
  let j: any;
  try {
    j = JSON.parse(r.stdout);
  } catch {
    throw new Error(`iperf3 to ${server}: exit ${r.code}, no JSON: ${r.stdout.slice(0, 500)} ${r.stderr}`);
  }
  if (r.code !== 0 || j.error) throw new Error(`iperf3 to ${server}: ${j.error ?? `exit ${r.code}`}`);
  return { mbps: j.end.sum_received.bits_per_second / 1e6, retransmits: j.end.sum_sent.retransmits ?? 0, mss: j.start?.tcp_mss_default };
}

export async function datapathGroup(ctx: BenchContext): Promise<GroupResult> {
  const t0 = performance.now();
  const lab = await benchLab(ctx, { clients: 1 });
  try {
    await startGateway(ctx, lab, "gw");
    await mustRun("client-init", inNs(lab, "client-0", [ctx.bin, "client-init"]), { env: roleEnv(ctx, lab, "client-0") });
    // The direct link: a veth pair straight from client-0 to the internet host (made from the
    // host namespace with each end created inside its namespace, as the lab does).
    await mustRun("joining client-0 and the internet host directly", [
      "ip", "link", "add", "direct0", "netns", lab.ns("client-0"), "type", "veth", "peer", "name", "direct0", "netns", lab.ns("internet"),
    ]);
    await mustRun("addressing the direct link (client)", ["ip", "-n", lab.ns("client-0"), "-batch", "-"], { input: `addr add ${DIRECT.client}/30 dev direct0\nlink set direct0 up\n` });
    await mustRun("addressing the direct link (internet)", ["ip", "-n", lab.ns("internet"), "-batch", "-"], { input: `addr add ${DIRECT.internet}/30 dev direct0\nlink set direct0 up\n` });
    const server = lab.spawn("internet", ["iperf3", "-s"]);
    void server.stdout.pipeTo(new WritableStream());
    void server.stderr.pipeTo(new WritableStream());
    await waitFor("iperf3 to listen", async () => (await timed(inNs(lab, "internet", ["ss", "-Hltn", "sport", "= :5201"]))).stdout.includes("5201"), 5000, 50);
    const vxlanMtu = JSON.parse((await mustRun("reading vxlan0", inNs(lab, "client-0", ["ip", "-j", "link", "show", "vxlan0"]))).stdout)[0].mtu as number;

    const tunnel: Iperf[] = [];
    const direct: Iperf[] = [];
    const frag = { tunnel: Object.fromEntries(FRAG_KEYS.map((k) => [k, 0])) as Record<string, number>, direct: Object.fromEntries(FRAG_KEYS.map((k) => [k, 0])) as Record<string, number> };
    for (let i = 0; i < ctx.opts.runs; i++) {
      if (ctx.cleanup.interrupted) throw new Error("interrupted");
      const order: ("tunnel" | "direct")[] = i % 2 ? ["direct", "tunnel"] : ["tunnel", "direct"];
      for (const path of order) {
        const before = await fragCounters(lab);
        const r = await iperf(ctx, lab, path === "tunnel" ? LAB.internetIp : DIRECT.internet);
        const after = await fragCounters(lab);
        for (const k of FRAG_KEYS) frag[path][k]! += after[k]! - before[k]!;
        (path === "tunnel" ? tunnel : direct).push(r);
      }
      ctx.log(`datapath: run ${i + 1}/${ctx.opts.runs}: tunnel ${tunnel.at(-1)!.mbps.toFixed(0)} Mbit/s, direct ${direct.at(-1)!.mbps.toFixed(0)} Mbit/s`);
    }
    // Control: the counters do see fragments (a 3000-byte ping over the 1500-byte direct link).
    const beforeCtl = await fragCounters(lab);
    await mustRun("control ping with fragments", inNs(lab, "client-0", [ctx.busybox, "ping", "-c", "1", "-W", "2", "-s", "3000", DIRECT.internet]));
    const afterCtl = await fragCounters(lab);
    const control = Object.fromEntries(FRAG_KEYS.map((k) => [k, afterCtl[k]! - beforeCtl[k]!]));
    if (control.FragCreates === 0 || control.ReasmReqds === 0) throw new Error(`the fragment counters missed the control's fragments: ${JSON.stringify(control)}`);
    const fragText = (f: Record<string, number>) => FRAG_KEYS.map((k) => `${k} ${f[k]}`).join(", ");
    const fragments = FRAG_KEYS.reduce((n, k) => n + frag.tunnel[k]!, 0);
    return {
      id: "datapath",
      title: "Data path: TCP throughput client → internet host",
      figures: [
        {
          key: "datapath.tcp",
          label: "iperf3 TCP, through vxlan0 + gateway + NAT + VPN link",
          unit: "Mbit/s",
          ours: summarize(tunnel.map((r) => r.mbps)),
          baseline: { label: "the same two namespaces joined by a veth pair", summary: summarize(direct.map((r) => r.mbps)) },
        },
      ],
      facts: [
        { label: "IP fragments on the tunnel path (sum over client, node, gateway, VPN exit, internet host)", value: `${fragments === 0 ? "none" : "SOME"}: ${fragText(frag.tunnel)}` },
        { label: "IP fragments on the direct path", value: fragText(frag.direct) },
        { label: "control: one 3000-byte ping over the direct link (proves the counters see fragments)", value: fragText(control) },
        { label: "vxlan0 MTU / TCP MSS (tunnel, direct)", value: `${vxlanMtu} / ${tunnel[0]?.mss ?? "?"}, ${direct[0]?.mss ?? "?"}` },
        { label: "TCP retransmits, median per run (tunnel, direct)", value: `${summarize(tunnel.map((r) => r.retransmits)).median}, ${summarize(direct.map((r) => r.retransmits)).median}` },
      ],
      notes: [
        `iperf3 ${ctx.opts.iperfSeconds} s per run after a 1 s warm-up that is not counted (-O 1), tunnel and direct alternated. Every hop is a veth or bridge inside one kernel on this machine's shared cores, so the ratio (the cost of the tunnel, the gateway's forwarding and NAT, and two more hops) matters more than the absolute figure.`,
      ],
      durationMs: performance.now() - t0,
      data: { tunnel, direct, frag, control, vxlanMtu },
    };
  } finally {
    await destroyBenchLab(ctx, lab);
  }
}
