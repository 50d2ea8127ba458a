// What the lab needs from the machine, and a message that says exactly what is missing and
// how to install it. describeMissing is pure; readLabPrerequisites looks at the machine.
import { which } from "../sys/exec.ts";

export interface PrereqFacts {
  root: boolean;
  /** Path of each tool on PATH (where the lab's spawns look), undefined when not there. */
  tools: Record<Tool, string | undefined>;
  /** Tools that are installed but not on PATH (e.g. /usr/sbin missing from a sudo PATH). */
  offPath?: Partial<Record<Tool, string>>;
}

type Tool = "ip" | "dnsmasq" | "sysctl" | "sh" | "iptables" | "nft";

function onPath(name: string): string | undefined {
  for (const d of (process.env.PATH ?? "").split(":")) {
    if (!d) continue;
    const p = which(name, d);
    if (p?.startsWith(d + "/")) return p;
  }
  return undefined;
}

/** Debian/Ubuntu package of each tool. */
export const PACKAGES: Record<keyof PrereqFacts["tools"], string> = {
  ip: "iproute2",
  dnsmasq: "dnsmasq-base",
  sysctl: "procps",
  sh: "dash", // starts the lab's daemons detached
  iptables: "iptables",
  nft: "nftables",
};

export function readLabPrerequisites(): PrereqFacts {
  const names: Tool[] = ["ip", "dnsmasq", "sysctl", "sh", "iptables", "nft"];
  const tools = Object.fromEntries(names.map((n) => [n, onPath(n)])) as Record<Tool, string | undefined>;
  const offPath: Partial<Record<Tool, string>> = {};
  for (const n of names) {
    const anywhere = tools[n] ? undefined : which(n);
    if (anywhere) offPath[n] = anywhere;
  }
  return { root: process.getuid?.() === 0, tools, offPath };
}

/** undefined when the lab can run; otherwise one message naming everything that is missing. */
export function describeMissing(f: PrereqFacts): string | undefined {
  const missing: string[] = [];
  const pkgs: string[] = [];
  for (const t of ["ip", "dnsmasq", "sysctl", "sh"] as const) {
    if (f.tools[t]) continue;
    const elsewhere = f.offPath?.[t];
    if (elsewhere) {
      missing.push(`${t} on PATH (it is installed as ${elsewhere}: add ${elsewhere.slice(0, elsewhere.lastIndexOf("/"))} to PATH)`);
      continue;
    }
    missing.push(`${t} (package ${PACKAGES[t]})`);
    pkgs.push(PACKAGES[t]);
  }
  // The roles need one firewall tool; the lab's packet counters need nft, so suggest both.
  if (!f.tools.iptables && !f.tools.nft) {
    const elsewhere = f.offPath?.nft ?? f.offPath?.iptables;
    if (elsewhere) missing.push(`iptables or nft on PATH (${elsewhere} is installed: add ${elsewhere.slice(0, elsewhere.lastIndexOf("/"))} to PATH)`);
    else {
      missing.push("iptables or nft (packages iptables, nftables)");
      pkgs.push("iptables", "nftables");
    }
  }
  const parts: string[] = [];
  if (!f.root) parts.push("root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN: run it with sudo)");
  parts.push(...missing);
  if (parts.length === 0) return undefined;
  let msg = `the lab cannot start: missing ${parts.join("; ")}`;
  if (pkgs.length) msg += `. Install with: ${f.root ? "" : "sudo "}apt-get install -y --no-install-recommends ${pkgs.join(" ")}`;
  return msg;
}
