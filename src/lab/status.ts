// Reads what `lab status` shows: per namespace its addresses and processes, and whether the
// cluster DNS answers the gateway name with the gateway's current IP.
import { readFileSync } from "node:fs";
import { ProcessRunner } from "../sys/exec.ts";
import { parseIpJson, type IpAddr } from "../core/net/ip-json.ts";
import { listLabs, openLab, type LabInfo } from "./lab.ts";
import { labPods, nsName, podIpOf } from "./plan.ts";
import { readNetnsInode, readNetnsNames, readPidsInNetns } from "./procs.ts";
import type { LabStatus, NamespaceStatus } from "./report.ts";
import { LAB } from "./types.ts";

function processName(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    // A role run from source shows as "bun .../main.ts lab echo": name it by its subcommand.
    const main = argv.findIndex((a) => a.endsWith("/main.ts"));
    const shown = main >= 0 ? ["pod-gateway", ...argv.slice(main + 1)] : argv;
    return `${pid} ${shown.slice(0, 4).join(" ")}`;
  } catch {
    return `${pid} (gone)`;
  }
}

async function readNamespace(name: string, present: boolean): Promise<NamespaceStatus> {
  if (!present) return { name, present, addresses: [], processes: [] };
  const runner = new ProcessRunner();
  const r = await runner.run(["ip", "-n", name, "-j", "addr", "show"], { what: `reading addresses in ${name}` });
  const addresses: string[] = [];
  for (const l of parseIpJson<IpAddr>(r.stdout)) {
    for (const a of l.addr_info ?? []) {
      if (a.family !== "inet" || l.ifname === "lo" && a.local.startsWith("127.")) continue;
      addresses.push(`${l.ifname} ${a.local}/${a.prefixlen}${l.operstate === "DOWN" ? " (down)" : ""}`);
    }
  }
  const ino = readNetnsInode(name);
  const processes = ino === undefined ? [] : readPidsInNetns(new Set([ino])).map(processName);
  return { name, present, addresses, processes };
}

export async function readLabStatus(info: LabInfo): Promise<LabStatus> {
  const existing = new Set(readNetnsNames());
  const expected = info.state ? labPods(info.state).map((p) => nsName(info.id, p)) : [];
  const names = info.state ? expected : info.namespaces;
  const namespaces = await Promise.all(names.map((n) => readNamespace(n, existing.has(n))));
  const strays = info.state ? info.namespaces.filter((n) => !expected.includes(n)) : [];
  const status: LabStatus = { id: info.id, state: info.state, stateError: info.stateError, namespaces, strays };
  if (info.state && existing.has(nsName(info.id, "node"))) {
    const lab = await openLab(info.id);
    const want = podIpOf(info.state, "gateway");
    const r = await lab.resolve("node", LAB.gatewayName, { server: LAB.clusterDnsIp, timeoutMs: 1000 });
    status.dns = r.ok
      ? { ok: r.addresses.includes(want), detail: `${LAB.gatewayName} → ${r.addresses.join(", ")}${r.addresses.includes(want) ? "" : ` (expected ${want})`}` }
      : { ok: false, detail: r.error ?? "no answer" };
  }
  return status;
}

export async function readAllLabStatus(id?: string): Promise<LabStatus[]> {
  const labs = listLabs().filter((l) => id === undefined || l.id === id);
  return Promise.all(labs.map(readLabStatus));
}
