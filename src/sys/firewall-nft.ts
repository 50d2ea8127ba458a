// Native nftables backend: `nft -j list table` to compare our table with the plan, one
// `nft -f -` transaction that replaces the table when it differs, and the same read to verify.
import type { BackendName } from "../core/firewall/backend.ts";
import type { FirewallPlan } from "../core/firewall/model.ts";
import { NFT_FAMILY, NFT_TABLE } from "../core/firewall/names.ts";
import { diffNft, parseNftTableJson, planNftTable, renderNftScript } from "../core/firewall/render-nft.ts";
import { NFT_PROGRAM } from "../core/programs.ts";
import type { Runner } from "./exec.ts";
import type { FirewallBackend, FirewallCheck, FirewallPart, KnownReads } from "./firewall.ts";

export class NftBackend implements FirewallBackend {
  readonly name: BackendName = "nft";
  readonly warnings: string[] = [];
  constructor(private readonly runner: Runner, private readonly bin = NFT_PROGRAM) {}

  /** `nft -j list table` output, or null when our table does not exist (nft exits 1). */
  async readTableJson(): Promise<string | null> {
    const r = await this.runner.run([this.bin, "-j", "list", "table", NFT_FAMILY, NFT_TABLE], { okCodes: [1], what: `reading table ${NFT_FAMILY} ${NFT_TABLE}` });
    return r.code === 0 ? r.stdout : null;
  }

  async check(plan: FirewallPlan, opts: { parts?: readonly FirewallPart[]; known?: KnownReads } = {}): Promise<FirewallCheck> {
    if (opts.parts && !opts.parts.includes("table")) return { parts: new Map() };
    const known = opts.known?.get("table");
    const read = known !== undefined ? known : this.readTableJson();
    planNftTable(plan); // while nft runs: kept with the plan for the diff and the script
    const text = await read;
    return { parts: new Map([["table", diffNft(plan, text === null ? undefined : parseNftTableJson(text))]]) };
  }

  async apply(plan: FirewallPlan, check?: FirewallCheck): Promise<FirewallPart[]> {
    // The script deletes and re-creates the whole table: nothing of the current state is needed.
    if (check && !(check.parts.get("table")?.length ?? 0)) return [];
    await this.runner.run([this.bin, "-f", "-"], { input: renderNftScript(plan), what: `applying firewall table ${NFT_FAMILY} ${NFT_TABLE} (nft)` });
    return ["table"];
  }

  async verify(plan: FirewallPlan): Promise<string[]> {
    return [...(await this.check(plan)).parts.values()].flat();
  }
}
