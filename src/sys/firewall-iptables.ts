// iptables backends (nf_tables flavour and legacy): one iptables-save per family to compare our
// chains and jumps with the plan, one iptables-restore --noflush per family that differs, and
// one iptables-save per restored family to verify. A family already exactly the plan is left
// alone: its save was the verification.
import { existsSync } from "node:fs";
import type { BackendName } from "../core/firewall/backend.ts";
import type { Family, FirewallPlan } from "../core/firewall/model.ts";
import { diffIptables, parseIptablesSave, planIptablesChains, renderIptablesRestore, type IptSave } from "../core/firewall/render-iptables.ts";
import { iptablesTools, type IptablesTools } from "../core/programs.ts";
import { which, type Runner } from "./exec.ts";
import type { FirewallBackend, FirewallCheck, FirewallPart, KnownReads } from "./firewall.ts";

export { iptablesTools, type IptablesTools };

/** IPv6 is usable in this network namespace (not disabled on the kernel command line or by sysctl). */
export function ipv6Enabled(): boolean {
  return existsSync("/proc/net/if_inet6");
}

const PART: Record<Family, FirewallPart> = { 4: "ipv4", 6: "ipv6" };

/** A check that keeps the saves it was made from: the restore needs them to place our jumps. */
class IptablesCheck implements FirewallCheck {
  constructor(
    readonly parts: ReadonlyMap<FirewallPart, readonly string[]>,
    readonly saves: ReadonlyMap<Family, IptSave>,
  ) {}
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
  async check(plan: FirewallPlan, opts: { parts?: readonly FirewallPart[]; known?: KnownReads } = {}): Promise<IptablesCheck> {
    const families = this.families.filter((f) => !opts.parts || opts.parts.includes(PART[f]));
    const reads = families.map((f) => {
      const known = opts.known?.get(PART[f]);
      return typeof known === "string" ? parseIptablesSave(known) : this.readSave(f);
    });
    // The saves are running: render the plan meanwhile (kept with the plan for the diff and the restore).
    for (const f of families) planIptablesChains(plan, f);
    const saves = await Promise.all(reads);
    return new IptablesCheck(
      new Map(families.map((f, i) => [PART[f], diffIptables(plan, f, saves[i]!)])),
      new Map(families.map((f, i) => [f, saves[i]!])),
    );
  }

  async apply(plan: FirewallPlan, check?: FirewallCheck): Promise<FirewallPart[]> {
    if (check && !(check instanceof IptablesCheck)) throw new Error(`${this.name}: a check made by another backend`);
    // Without a check every family is restored, from saves read now (our jumps are placed from them).
    const c = check ?? (await this.check(plan));
    const todo = check ? this.families.filter((f) => (check.parts.get(PART[f])?.length ?? 0) > 0) : this.families;
    await Promise.all(
      todo.map(async (family) => {
        const text = renderIptablesRestore(plan, family, c.saves.get(family));
        // -w: another container of the pod (the VPN client) may be changing rules right now.
        await this.runner.run([this.tools.restore[family], "-w", "5", "--noflush"], {
          input: text,
          what: `applying ${family === 4 ? "IPv4" : "IPv6"} firewall rules (${this.name})`,
        });
      }),
    );
    return todo.map((f) => PART[f]);
  }

  async verify(plan: FirewallPlan): Promise<string[]> {
    return [...(await this.check(plan)).parts.values()].flat();
  }
}
