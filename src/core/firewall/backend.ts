// Which firewall backend to use: a pure decision over the setting and facts read from the pod.
import type { FirewallBackendSetting } from "../settings/types.ts";

export type BackendName = "iptables-nft" | "iptables-legacy" | "nft";
export const BACKENDS: readonly BackendName[] = ["iptables-nft", "iptables-legacy", "nft"];

export interface BackendFacts {
  /** Backends whose tools are installed (iptables-nft-restore, iptables-legacy-restore, nft). */
  available: readonly BackendName[];
  /** Backends that already hold our chains/table (an earlier gateway-init). */
  ours: readonly BackendName[];
  /** iptables-legacy holds rules or non-ACCEPT policies that are not ours (another container uses legacy). */
  foreignLegacy: boolean;
  /** iptables-nft holds rules or non-ACCEPT policies that are not ours. */
  foreignNft: boolean;
}

export interface BackendChoice {
  backend: BackendName;
  why: string;
}

/**
 * Order of preference:
 *  1. FIREWALL_BACKEND when not auto, then IPTABLES_NFT=yes (the reference's switch, which
 *     always meant "the nf_tables backend of iptables");
 *  2. where our objects already are (a re-run, or the sidecar after gateway-init): never
 *     split one ruleset over two backends;
 *  3. the iptables flavour another container already uses: only in the *same* chains do our
 *     position-1 accepts win over its INPUT policy DROP;
 *  4. iptables-nft (the default of current distributions), then native nft, then legacy.
 * Throws when the chosen backend's tools are missing.
 */
export function decideFirewallBackend(setting: FirewallBackendSetting, iptablesNft: boolean, f: BackendFacts): BackendChoice {
  const need = (c: BackendChoice): BackendChoice => {
    if (!f.available.includes(c.backend))
      throw new Error(`firewall backend ${c.backend} (${c.why}) is not usable: ${toolsOf(c.backend)} not found${f.available.length ? ` (available: ${f.available.join(", ")})` : ""}`);
    return c;
  };
  if (setting !== "auto") return need({ backend: setting, why: `FIREWALL_BACKEND=${setting}` });
  if (iptablesNft) return need({ backend: "iptables-nft", why: "IPTABLES_NFT=yes" });
  const ours = f.ours.filter((b) => f.available.includes(b));
  if (ours.length === 1) return { backend: ours[0]!, why: "our rules are already there" };
  if (f.foreignLegacy && !f.foreignNft && f.available.includes("iptables-legacy"))
    return { backend: "iptables-legacy", why: "iptables-legacy already holds rules" };
  if (f.available.includes("iptables-nft")) return { backend: "iptables-nft", why: "default" };
  if (f.available.includes("nft")) return { backend: "nft", why: "iptables-nft is not installed" };
  if (f.available.includes("iptables-legacy")) return { backend: "iptables-legacy", why: "only iptables-legacy is installed" };
  throw new Error("no firewall tools found: install iptables (iptables-nft-restore or iptables-legacy-restore) or nftables (nft)");
}

export function toolsOf(b: BackendName): string {
  switch (b) {
    case "iptables-nft": return "iptables-nft-save/iptables-nft-restore";
    case "iptables-legacy": return "iptables-legacy-save/iptables-legacy-restore";
    case "nft": return "nft";
  }
}
