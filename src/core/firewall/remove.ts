// Removing our firewall objects from a backend that is no longer chosen (FIREWALL_BACKEND
// changed, or the automatic choice moved): a stale kill switch or port forward left in the old
// backend is a security bug, not clutter. Pure: renders the removal from what was read.
import type { Family } from "./model.ts";
import { IPT_CHAINS, type IptSave } from "./render-iptables.ts";

/**
 * `iptables-restore --noflush` input that deletes every jump to our chains from the built-in
 * chains, then flushes and deletes our chains; undefined when the save holds nothing of ours.
 * Only our own objects are named, so other containers' rules are untouched.
 */
export function renderIptablesRemoval(save: IptSave, family: Family): string | undefined {
  const lines: string[] = [];
  const tables = [...new Set(IPT_CHAINS.filter((c) => c.families.includes(family)).map((c) => c.table))];
  for (const table of tables) {
    const t = save.get(table);
    if (!t) continue;
    const chains = IPT_CHAINS.filter((c) => c.table === table && c.families.includes(family));
    const body: string[] = [];
    for (const c of chains) {
      // Any rule of a built-in chain that jumps to ours, exactly as saved (our jumps carry no other match).
      for (const [builtin, rules] of t.rules) {
        if (t.chains.get(builtin) === "-") continue;
        for (const r of rules) if (r === `-j ${c.chain}`) body.push(`-D ${builtin} ${r}`);
      }
    }
    const present = chains.filter((c) => t.chains.has(c.chain));
    for (const c of present) body.push(`-F ${c.chain}`);
    for (const c of present) body.push(`-X ${c.chain}`);
    if (body.length) lines.push(`*${table}`, ...body, "COMMIT");
  }
  return lines.length ? lines.join("\n") + "\n" : undefined;
}
