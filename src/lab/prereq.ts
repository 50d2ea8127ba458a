// What the lab needs from the machine, and a message that says exactly what is missing and
// how to install it. describeMissing is pure; readLabPrerequisites looks at the machine.
import { which } from "../sys/exec.ts";

export interface PrereqFacts {
  root: boolean;
  /** Path of each tool, undefined when not found. */
  tools: Record<"ip" | "dnsmasq" | "sysctl" | "sh" | "iptables" | "nft", string | undefined>;
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
  return {
    root: process.getuid?.() === 0,
    tools: {
      ip: which("ip"),
      dnsmasq: which("dnsmasq"),
      sysctl: which("sysctl"),
      sh: which("sh"),
      iptables: which("iptables"),
      nft: which("nft"),
    },
  };
}

/** undefined when the lab can run; otherwise one message naming everything that is missing. */
export function describeMissing(f: PrereqFacts): string | undefined {
  const missing: string[] = [];
  const pkgs: string[] = [];
  for (const t of ["ip", "dnsmasq", "sysctl", "sh"] as const) {
    if (!f.tools[t]) {
      missing.push(`${t} (package ${PACKAGES[t]})`);
      pkgs.push(PACKAGES[t]);
    }
  }
  // The roles need one firewall tool; the lab's packet counters need nft, so suggest both.
  if (!f.tools.iptables && !f.tools.nft) {
    missing.push("iptables or nft (packages iptables, nftables)");
    pkgs.push("iptables", "nftables");
  }
  const parts: string[] = [];
  if (!f.root) parts.push("root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN: run it with sudo)");
  parts.push(...missing);
  if (parts.length === 0) return undefined;
  let msg = `the lab cannot start: missing ${parts.join("; ")}`;
  if (pkgs.length) msg += `. Install with: ${f.root ? "" : "sudo "}apt-get install -y --no-install-recommends ${pkgs.join(" ")}`;
  return msg;
}
