// Firewall backends behind one interface, and the facts the automatic choice is made from.
import { decideFirewallBackend, type BackendChoice, type BackendFacts, type BackendName } from "../core/firewall/backend.ts";
import type { FirewallPlan } from "../core/firewall/model.ts";
import { NFT_FAMILY, NFT_TABLE } from "../core/firewall/names.ts";
import { hasForeignIptablesRules, hasOurIptablesChains, parseIptablesSave } from "../core/firewall/render-iptables.ts";
import type { FirewallBackendSetting } from "../core/settings/types.ts";
import { which, type Runner } from "./exec.ts";
import { IptablesBackend, iptablesTools } from "./firewall-iptables.ts";
import { NftBackend } from "./firewall-nft.ts";

export interface FirewallBackend {
  readonly name: BackendName;
  /** Things the backend could not do (e.g. no ip6tables), to be logged once. */
  readonly warnings: readonly string[];
  /** Replace our objects with the plan, atomically per family (iptables) or as one transaction (nft). */
  apply(plan: FirewallPlan): Promise<void>;
  /** Differences between the kernel's state and the plan; empty when our objects are exactly the plan. */
  verify(plan: FirewallPlan): Promise<string[]>;
  /** The backend's whole ruleset as text, counters left out (tests compare it across runs). */
  read(): Promise<string>;
}

export function createFirewallBackend(name: BackendName, runner: Runner, opts: { ipv6?: boolean } = {}): FirewallBackend {
  switch (name) {
    case "iptables-nft": return new IptablesBackend(runner, "nft", opts);
    case "iptables-legacy": return new IptablesBackend(runner, "legacy", opts);
    case "nft": return new NftBackend(runner);
  }
}

/** Installed backends, where our objects are, and whether iptables flavours hold others' rules. */
export async function readBackendFacts(runner: Runner): Promise<BackendFacts> {
  // Three independent reads, run side by side; the facts are assembled in a fixed order.
  const flavours = (["nft", "legacy"] as const).filter((f) => which(iptablesTools(f).save[4]) && which(iptablesTools(f).restore[4]));
  const name = (f: "nft" | "legacy"): BackendName => (f === "nft" ? "iptables-nft" : "iptables-legacy");
  const haveNft = !!which("nft");
  const [saves, nftTable] = await Promise.all([
    Promise.all(flavours.map(async (f) => parseIptablesSave((await runner.run([iptablesTools(f).save[4]], { what: `reading rules (${name(f)})` })).stdout))),
    haveNft ? runner.run(["nft", "list", "table", NFT_FAMILY, NFT_TABLE], { okCodes: [1], what: "looking for our nft table" }) : undefined,
  ]);
  const available: BackendName[] = flavours.map(name);
  const ours: BackendName[] = flavours.filter((_, i) => hasOurIptablesChains(saves[i]!)).map(name);
  const foreign = (f: "nft" | "legacy") => {
    const i = flavours.indexOf(f);
    return i >= 0 && hasForeignIptablesRules(saves[i]!);
  };
  if (haveNft) {
    available.push("nft");
    if (nftTable?.code === 0) ours.push("nft");
  }
  return { available, ours, foreignLegacy: foreign("legacy"), foreignNft: foreign("nft") };
}

/** Decide the backend: explicit settings need no facts (and start no processes). */
export async function chooseFirewallBackend(setting: FirewallBackendSetting, iptablesNft: boolean, runner: Runner): Promise<BackendChoice & { facts?: BackendFacts }> {
  if (setting !== "auto") {
    const available = (["iptables-nft", "iptables-legacy", "nft"] as const).filter((b) =>
      b === "nft" ? !!which("nft") : !!which(iptablesTools(b === "iptables-nft" ? "nft" : "legacy").restore[4]),
    );
    return decideFirewallBackend(setting, iptablesNft, { available, ours: [], foreignLegacy: false, foreignNft: false });
  }
  const facts = await readBackendFacts(runner);
  return { ...decideFirewallBackend(setting, iptablesNft, facts), facts };
}
