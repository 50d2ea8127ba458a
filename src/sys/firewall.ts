// Firewall backends behind one interface, and the facts the automatic choice is made from.
import { decideFirewallBackend, type BackendChoice, type BackendFacts, type BackendName } from "../core/firewall/backend.ts";
import type { Family, FirewallPlan } from "../core/firewall/model.ts";
import { NFT_FAMILY, NFT_TABLE } from "../core/firewall/names.ts";
import { renderIptablesRemoval } from "../core/firewall/remove.ts";
import { hasForeignIptablesRules, hasOurIptablesChains, parseIptablesSave } from "../core/firewall/render-iptables.ts";
import { NFT_PROGRAM } from "../core/programs.ts";
import type { FirewallBackendSetting } from "../core/settings/types.ts";
import { which, type Runner } from "./exec.ts";
import { IptablesBackend, iptablesTools } from "./firewall-iptables.ts";
import { NftBackend } from "./firewall-nft.ts";

/** What a backend applies atomically and reads in one go: an iptables family, or the nft table. */
export type FirewallPart = "ipv4" | "ipv6" | "table";

/**
 * Output of reads already made (by the automatic backend choice), by part: a backend's check
 * uses it instead of reading again. null: the read found nothing (no nft table of ours).
 */
export type KnownReads = ReadonlyMap<FirewallPart, string | null>;

/** Our objects as read from the kernel, compared with a plan. */
export interface FirewallCheck {
  /** Every part read → its differences from the plan (none: the part is exactly the plan). */
  readonly parts: ReadonlyMap<FirewallPart, readonly string[]>;
}

/** A check's differences as one list (empty: every part read is exactly the plan). */
export function checkProblems(c: FirewallCheck): string[] {
  return [...c.parts.values()].flat();
}

/** The parts of a check that differ from the plan. */
export function partsToApply(c: FirewallCheck): FirewallPart[] {
  return [...c.parts].filter(([, p]) => p.length > 0).map(([part]) => part);
}

export interface FirewallBackend {
  readonly name: BackendName;
  /** Things the backend could not do (e.g. no ip6tables), to be logged once. */
  readonly warnings: readonly string[];
  /**
   * Read our objects (every part, or `parts`; side by side) and compare them with the plan. A
   * read in `known` is used instead of reading that part again.
   */
  check(plan: FirewallPlan, opts?: { parts?: readonly FirewallPart[]; known?: KnownReads }): Promise<FirewallCheck>;
  /**
   * Replace our objects with the plan, atomically per part: the parts that differ in `check`
   * (a check made just before), or every part without one. Returns the parts applied.
   */
  apply(plan: FirewallPlan, check?: FirewallCheck): Promise<FirewallPart[]>;
  /** Differences between the kernel's state and the plan; empty when our objects are exactly the plan. */
  verify(plan: FirewallPlan): Promise<string[]>;
}

export function createFirewallBackend(name: BackendName, runner: Runner, opts: { ipv6?: boolean } = {}): FirewallBackend {
  switch (name) {
    case "iptables-nft": return new IptablesBackend(runner, "nft", opts);
    case "iptables-legacy": return new IptablesBackend(runner, "legacy", opts);
    case "nft": return new NftBackend(runner);
  }
}

/**
 * Installed backends, where our objects are, and whether iptables flavours hold others' rules;
 * with the reads themselves, so that the chosen backend's first check need not repeat them.
 */
export async function readBackendFacts(runner: Runner): Promise<BackendFacts & { reads: Map<BackendName, KnownReads> }> {
  // Three independent reads, run side by side; the facts are assembled in a fixed order.
  const flavours = (["nft", "legacy"] as const).filter((f) => which(iptablesTools(f).save[4]) && which(iptablesTools(f).restore[4]));
  const name = (f: "nft" | "legacy"): BackendName => (f === "nft" ? "iptables-nft" : "iptables-legacy");
  const haveNft = !!which(NFT_PROGRAM);
  const [texts, nftTable] = await Promise.all([
    Promise.all(flavours.map(async (f) => (await runner.run([iptablesTools(f).save[4]], { what: `reading rules (${name(f)})` })).stdout)),
    // JSON, as the nft backend's check reads it: when our table is there, this is that read.
    haveNft ? runner.run([NFT_PROGRAM, "-j", "list", "table", NFT_FAMILY, NFT_TABLE], { okCodes: [1], what: "looking for our nft table" }) : undefined,
  ]);
  const saves = texts.map(parseIptablesSave);
  const available: BackendName[] = flavours.map(name);
  const ours: BackendName[] = flavours.filter((_, i) => hasOurIptablesChains(saves[i]!)).map(name);
  const reads = new Map<BackendName, KnownReads>(flavours.map((f, i) => [name(f), new Map([["ipv4", texts[i]!]])]));
  const foreign = (f: "nft" | "legacy") => {
    const i = flavours.indexOf(f);
    return i >= 0 && hasForeignIptablesRules(saves[i]!);
  };
  if (haveNft) {
    available.push("nft");
    if (nftTable?.code === 0) ours.push("nft");
    reads.set("nft", new Map([["table", nftTable?.code === 0 ? nftTable.stdout : null]]));
  }
  return { available, ours, foreignLegacy: foreign("legacy"), foreignNft: foreign("nft"), reads };
}

/** Decide the backend: explicit settings need no facts (and start no processes). */
export async function chooseFirewallBackend(
  setting: FirewallBackendSetting,
  iptablesNft: boolean,
  runner: Runner,
): Promise<BackendChoice & { facts?: BackendFacts; known?: KnownReads; reads?: ReadonlyMap<BackendName, KnownReads> }> {
  if (setting !== "auto") {
    const available = (["iptables-nft", "iptables-legacy", "nft"] as const).filter((b) =>
      b === "nft" ? !!which(NFT_PROGRAM) : !!which(iptablesTools(b === "iptables-nft" ? "nft" : "legacy").restore[4]),
    );
    return decideFirewallBackend(setting, iptablesNft, { available, ours: [], foreignLegacy: false, foreignNft: false });
  }
  const { reads, ...facts } = await readBackendFacts(runner);
  const choice = decideFirewallBackend(setting, iptablesNft, facts);
  return { ...choice, facts, known: reads.get(choice.backend), reads };
}

/**
 * The reads removeStaleFirewall needs, for every backend but `chosen` (the IPv4 save of each
 * iptables flavour, our nft table): started early, they overlap the chosen backend's check and
 * apply. The automatic choice made them already (its `reads`).
 */
export async function readOtherBackends(chosen: BackendName, runner: Runner): Promise<Map<BackendName, KnownReads>> {
  const out = new Map<BackendName, KnownReads>();
  await Promise.all([
    ...(["nft", "legacy"] as const).map(async (f) => {
      const name: BackendName = f === "nft" ? "iptables-nft" : "iptables-legacy";
      if (name === chosen || !which(iptablesTools(f).save[4])) return;
      out.set(name, new Map([["ipv4", (await runner.run([iptablesTools(f).save[4]], { what: `reading rules (${name})` })).stdout]]));
    }),
    (async () => {
      if (chosen === "nft" || !which(NFT_PROGRAM)) return;
      const r = await runner.run([NFT_PROGRAM, "-j", "list", "table", NFT_FAMILY, NFT_TABLE], { okCodes: [1], what: "looking for our nft table" });
      out.set("nft", new Map([["table", r.code === 0 ? r.stdout : null]]));
    })(),
  ]);
  return out;
}

/**
 * Remove our objects from every backend but `chosen` (they are read first: `known` holds reads
 * already made, per backend). Returns one line per backend cleaned; throws naming the backend
 * whose removal failed.
 */
export async function removeStaleFirewall(chosen: BackendName, runner: Runner, known?: ReadonlyMap<BackendName, KnownReads>): Promise<string[]> {
  const others: BackendName[] = [];
  for (const f of ["nft", "legacy"] as const) {
    const name: BackendName = f === "nft" ? "iptables-nft" : "iptables-legacy";
    if (name !== chosen && which(iptablesTools(f).save[4]) && which(iptablesTools(f).restore[4])) others.push(name);
  }
  if (chosen !== "nft" && which(NFT_PROGRAM)) others.push("nft");
  const done = await Promise.all(others.map((b) => removeFrom(b, runner, known?.get(b))));
  return done.filter((d): d is string => d !== undefined);
}

async function removeFrom(b: BackendName, runner: Runner, known: KnownReads | undefined): Promise<string | undefined> {
  if (b === "nft") {
    const had = known?.get("table");
    const exists = had !== undefined ? had !== null : (await runner.run([NFT_PROGRAM, "list", "table", NFT_FAMILY, NFT_TABLE], { okCodes: [1], what: "looking for our nft table" })).code === 0;
    if (!exists) return undefined;
    await runner.run([NFT_PROGRAM, "delete", "table", NFT_FAMILY, NFT_TABLE], { what: `removing table ${NFT_FAMILY} ${NFT_TABLE} (nft, no longer the chosen backend)` });
    return `nft: table ${NFT_FAMILY} ${NFT_TABLE} removed`;
  }
  const tools = iptablesTools(b === "iptables-nft" ? "nft" : "legacy");
  const read = async (family: Family) => parseIptablesSave((await runner.run([tools.save[family]], { what: `reading ${b} rules` })).stdout);
  const v4 = typeof known?.get("ipv4") === "string" ? parseIptablesSave(known.get("ipv4") as string) : await read(4);
  // Both families are always installed together: nothing of ours in IPv4 means nothing in IPv6
  // (so a clean backend costs no read beyond the one the automatic choice made).
  if (!renderIptablesRemoval(v4, 4)) return undefined;
  const removed: string[] = [];
  const families = ([4, 6] as const).filter((f) => which(tools.save[f]) && which(tools.restore[f]));
  await Promise.all(
    families.map(async (family) => {
      const script = renderIptablesRemoval(family === 4 ? v4 : await read(6), family);
      if (!script) return;
      await runner.run([tools.restore[family], "-w", "5", "--noflush"], { input: script, what: `removing our ${family === 4 ? "IPv4" : "IPv6"} chains from ${b} (no longer the chosen backend)` });
      removed.push(family === 4 ? "IPv4" : "IPv6");
    }),
  );
  return removed.length ? `${b}: our ${removed.sort().join(" and ")} chains removed` : undefined;
}
