// Native nftables backend: one `nft -f -` transaction replaces our table; `nft -j` reads it back.
import type { BackendName } from "../core/firewall/backend.ts";
import type { FirewallPlan } from "../core/firewall/model.ts";
import { NFT_FAMILY, NFT_TABLE } from "../core/firewall/names.ts";
import { diffNft, parseNftTableJson, renderNftScript, type NftTableState } from "../core/firewall/render-nft.ts";
import type { Runner } from "./exec.ts";
import type { FirewallBackend } from "./firewall.ts";

export class NftBackend implements FirewallBackend {
  readonly name: BackendName = "nft";
  readonly warnings: string[] = [];
  constructor(private readonly runner: Runner, private readonly bin = "nft") {}

  async apply(plan: FirewallPlan): Promise<void> {
    await this.runner.run([this.bin, "-f", "-"], { input: renderNftScript(plan), what: `applying firewall table ${NFT_FAMILY} ${NFT_TABLE} (nft)` });
  }

  /** Our table, or undefined when it does not exist (nft exits 1 for a missing table). */
  async readTable(): Promise<NftTableState | undefined> {
    const r = await this.runner.run([this.bin, "-j", "list", "table", NFT_FAMILY, NFT_TABLE], { okCodes: [1], what: `reading table ${NFT_FAMILY} ${NFT_TABLE}` });
    if (r.code !== 0) return undefined;
    return parseNftTableJson(r.stdout);
  }

  async verify(plan: FirewallPlan): Promise<string[]> {
    return diffNft(plan, await this.readTable());
  }

  /** The whole ruleset without counters (`nft -s`: stateless output). */
  async read(): Promise<string> {
    return (await this.runner.run([this.bin, "-s", "list", "ruleset"], { what: "reading the nft ruleset" })).stdout;
  }
}
