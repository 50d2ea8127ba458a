// iptables backends (nf_tables flavour and legacy): one iptables-save to learn where the jumps
// are, one iptables-restore --noflush per family to apply, one iptables-save to verify.
import { existsSync } from "node:fs";
import type { BackendName } from "../core/firewall/backend.ts";
import type { Family, FirewallPlan } from "../core/firewall/model.ts";
import { diffIptables, normalizeIptablesSave, parseIptablesSave, renderIptablesRestore, type IptSave } from "../core/firewall/render-iptables.ts";
import { which, type Runner } from "./exec.ts";
import type { FirewallBackend } from "./firewall.ts";

export interface IptablesTools {
  save: Record<Family, string>;
  restore: Record<Family, string>;
}

export function iptablesTools(flavour: "nft" | "legacy"): IptablesTools {
  return {
    save: { 4: `iptables-${flavour}-save`, 6: `ip6tables-${flavour}-save` },
    restore: { 4: `iptables-${flavour}-restore`, 6: `ip6tables-${flavour}-restore` },
  };
}

/** IPv6 is usable in this network namespace (not disabled on the kernel command line or by sysctl). */
export function ipv6Enabled(): boolean {
  return existsSync("/proc/net/if_inet6");
}

export class IptablesBackend implements FirewallBackend {
  readonly name: BackendName;
  private readonly tools: IptablesTools;
  /** Families we manage: IPv4 always; IPv6 when the kernel has it and ip6tables is installed. */
  readonly families: Family[];
  readonly warnings: string[] = [];

  constructor(
    private readonly runner: Runner,
    flavour: "nft" | "legacy",
    opts: { ipv6?: boolean; tools?: IptablesTools } = {},
  ) {
    this.name = flavour === "nft" ? "iptables-nft" : "iptables-legacy";
    this.tools = opts.tools ?? iptablesTools(flavour);
    const ipv6 = opts.ipv6 ?? ipv6Enabled();
    this.families = [4];
    if (ipv6) {
      if (which(this.tools.restore[6]) && which(this.tools.save[6])) this.families.push(6);
      else this.warnings.push(`IPv6 is enabled but ${this.tools.restore[6]} is missing: IPv6 from the overlay is not blocked by a rule (it is still not forwarded while net.ipv6.conf.all.forwarding is 0)`);
    }
  }

  async readSave(family: Family): Promise<IptSave> {
    const r = await this.runner.run([this.tools.save[family]], { what: `reading ${family === 4 ? "IPv4" : "IPv6"} rules` });
    return parseIptablesSave(r.stdout);
  }

  // IPv4 and IPv6 are separate tables and separate transactions, so the two families are read
  // and applied side by side: the processes' start-up dominates gateway-init's time.
  async apply(plan: FirewallPlan): Promise<void> {
    await Promise.all(
      this.families.map(async (family) => {
        const current = await this.readSave(family);
        const text = renderIptablesRestore(plan, family, current);
        // -w: another container of the pod (the VPN client) may be changing rules right now.
        await this.runner.run([this.tools.restore[family], "-w", "5", "--noflush"], {
          input: text,
          what: `applying ${family === 4 ? "IPv4" : "IPv6"} firewall rules (${this.name})`,
        });
      }),
    );
  }

  async verify(plan: FirewallPlan): Promise<string[]> {
    const saves = await Promise.all(this.families.map((family) => this.readSave(family)));
    return this.families.flatMap((family, i) => diffIptables(plan, family, saves[i]!));
  }

  /** Every table of every family as iptables-save prints it, minus comments and counters. */
  async read(): Promise<string> {
    const parts: string[] = [];
    for (const family of this.families) {
      const r = await this.runner.run([this.tools.save[family]], { what: "reading rules" });
      parts.push(`# ${this.tools.save[family]}`, normalizeIptablesSave(r.stdout));
    }
    return parts.join("\n");
  }
}
