// Child process of test/unit/config-fuzz.test.ts: `bun config-fuzz-child.ts <settings|nat|resolv> <seed> <runs>`.
// Runs the property for one reader under the parent's timeout and memory limit, prints the seed,
// and exits 1 with the (shrunk) counterexample when the property fails.
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { renderDnsmasqConfig } from "../../src/core/dnsmasq/render.ts";
import type { ConfigIssue } from "../../src/core/errors.ts";
import { planFirewall } from "../../src/core/firewall/model.ts";
import { renderIptablesRestore } from "../../src/core/firewall/render-iptables.ts";
import { renderNftScript } from "../../src/core/firewall/render-nft.ts";
import { parseResolvConf, renderResolvCopy } from "../../src/core/resolv.ts";
import { resolveConfig, type Resolution } from "../../src/core/settings/resolve.ts";
import { decodeConfigText } from "../../src/core/settings/text.ts";
import { isIPv4 } from "../../src/core/settings/values.ts";
import { inputs, REPO } from "./config-fuzz.ts";

const [kind, seedText, runsText] = process.argv.slice(2) as ["settings" | "nat" | "resolv", string, string];
const seed = Number(seedText);
const runs = Number(runsText);
const DEFAULTS = readFileSync(join(REPO, "config/settings.sh"), "utf8");
const SETTINGS = "/config/settings.sh";
const NAT = "/config/nat.conf";
const FILES = new Set(["builtin:settings.sh", SETTINGS, NAT, "settings"]);

function fail(why: string): never {
  throw new Error(why);
}

function checkIssue(i: ConfigIssue, lines: number): void {
  if (!FILES.has(i.file)) fail(`issue names an unknown file: ${JSON.stringify(i)}`);
  if (typeof i.message !== "string" || i.message === "") fail(`issue without a message: ${JSON.stringify(i)}`);
  // Bounded messages: excerpts of at most 60 characters, at most three items of a list (so at
  // most about 600 characters whatever the input); never a whole line of the input.
  if (i.message.length > 800) fail(`message of ${i.message.length} characters: ${i.message.slice(0, 200)}...`);
  if (i.line !== undefined && (!Number.isInteger(i.line) || i.line < 1 || i.line > lines + 1)) fail(`line ${i.line} outside the text (${lines} lines)`);
  if (i.column !== undefined && (!Number.isInteger(i.column) || i.column < 1)) fail(`bad column ${i.column}`);
}

function checkResolution(r: Resolution, lines: number): void {
  if (r.config && r.issues.length) fail("a configuration and issues at once");
  if (!r.config && !r.issues.length) fail("neither a configuration nor an issue");
  for (const i of r.issues) checkIssue(i, lines);
  for (const w of r.warnings) if (typeof w !== "string" || w.length > 600) fail(`bad warning: ${String(w).slice(0, 200)}`);
  if (!r.config) return;
  // What validation accepts, every renderer can write (their escaping functions refuse the rest).
  const s = r.config.settings;
  renderDnsmasqConfig({ settings: s, nat: r.config.nat, mtu: 1400, localServer: s.DNS_LOCAL_SERVER || "10.96.0.10", leaseFile: "/run/pod-gateway/leases" });
  const plan = planFirewall(s, r.config.nat);
  renderIptablesRestore(plan, 4, undefined);
  renderIptablesRestore(plan, 6, undefined);
  renderNftScript(plan);
}

function linesOf(b: Uint8Array): number {
  let n = 1;
  for (const x of b) if (x === 10) n++;
  return n;
}

const property = fc.property(inputs(kind), (bytes) => {
  const file = kind === "settings" ? SETTINGS : kind === "nat" ? NAT : "/etc/resolv.conf";
  const d = decodeConfigText(bytes, file);
  if (!d.ok) {
    if (kind !== "resolv") checkIssue(d.issue, linesOf(bytes));
    return;
  }
  if (kind === "resolv") {
    const r = parseResolvConf(d.text);
    for (const a of r.ipv4) if (!isIPv4(a)) fail(`ipv4 holds ${JSON.stringify(a)}`);
    const copy = renderResolvCopy(r.ipv4, "/etc/resolv.conf");
    if (JSON.stringify(parseResolvConf(copy).ipv4) !== JSON.stringify(r.ipv4)) fail("the copy does not read back as the same nameservers");
    return;
  }
  const settings = [{ file: "builtin:settings.sh", text: DEFAULTS, builtin: true }, ...(kind === "settings" ? [{ file: SETTINGS, text: d.text }] : [])];
  const r = resolveConfig({ settings, nat: { file: NAT, text: kind === "nat" ? d.text : "" }, env: { gateway: "gw.example", K8S_DNS_ips: "10.96.0.10" } });
  checkResolution(r, linesOf(bytes));
});

console.log(`fuzz ${kind}: seed ${seed}, ${runs} runs (replay: FUZZ_SEED=${seed} FUZZ_RUNS=${runs})`);
const out = fc.check(property, { seed, numRuns: runs });
if (out.failed) {
  const ex = out.counterexample?.[0] as Uint8Array | undefined;
  console.log(`FAILED after ${out.numRuns} runs: ${String((out.errorInstance as Error | undefined)?.message ?? out.errorInstance).slice(0, 2000)}`);
  if (ex) console.log(`counterexample (base64, ${ex.length} bytes): ${Buffer.from(ex).toString("base64").slice(0, 20000)}`);
  process.exit(1);
}
console.log(`fuzz ${kind}: ${out.numRuns} cases passed`);
