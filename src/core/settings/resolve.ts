// Layers settings files and validates the result, then reads the winning nat.conf against it.
// Pure: src/sys/config.ts reads the files and hands their text here.
//
// Layering: each settings file is parsed with the keys of the layers below it in scope (so
// /config/settings.sh may write VPN_LOCAL_CIDRS="$VPN_LOCAL_CIDRS 172.20.0.0/16"); later
// assignments win. nat.conf is NOT merged: a ConfigMap replaces the whole file, so the highest
// layer that has one wins entirely (an empty nat.conf there means "no static entries").
import { formatIssue, type ConfigIssue } from "../errors.ts";
import { parseNatConf } from "../natconf/parse.ts";
import { MAX_CONFIG_FILE_BYTES, MAX_ISSUES_PER_FILE } from "./limits.ts";
import { parseSettings, type ExpansionRef } from "./parse.ts";
import { matchNatEntry, workloadCandidates } from "../natconf/match.ts";
import { isClientRole, roleIsStrictAbout, type Role } from "./roles.ts";
import { isSettingKey, validateSettings, type RawSetting } from "./schema.ts";
import type { ResolvedConfig, SettingKey, SettingSource } from "./types.ts";

export interface ConfigText {
  /** A path, or a name such as "builtin:settings.sh" for the defaults compiled into the binary. */
  file: string;
  text: string;
  /** The defaults compiled into the binary: values from here have source {kind: "default"}. */
  builtin?: boolean;
}

/** What `config` and the roles get: the contract of ResolvedConfig plus details for display. */
export interface LoadedConfig extends ResolvedConfig {
  /** The file nat entries came from (the winning layer's nat.conf or nat.sh, or the built-in one). */
  natFile: string;
  /** Environment variables each setting expanded (set or not), e.g. GATEWAY_NAME ← $gateway. */
  expansions: Partial<Record<SettingKey, { name: string; set: boolean }[]>>;
}

export interface ResolveInput {
  /** Settings layers, lowest first: the built-in defaults, /default_config, the config dir. */
  settings: readonly ConfigText[];
  /** The nat.conf of the highest layer that has one. */
  nat: ConfigText;
  env: Readonly<Record<string, string | undefined>>;
  /** Problems found while reading (an unreadable file); reported with the rest. */
  readIssues?: readonly ConfigIssue[];
  /** Non-fatal findings while reading (a nat.sh shadowed by nat.conf). */
  readWarnings?: readonly string[];
  /**
   * The role that will use the result. A client role is strict only about what it reads (the
   * table in roles.ts) and about its own nat.conf entry; every other problem becomes a warning
   * and the setting keeps its built-in default. Without a role (gateway roles are strict anyway,
   * `pod-gateway config` reports everything) every problem is an error.
   */
  role?: Role;
  /** The pod's name, for a client role: which nat.conf line is its own. */
  podName?: string;
}

export interface Resolution {
  /** Present when there are no issues. */
  config: LoadedConfig | undefined;
  issues: ConfigIssue[];
  /** Formatted "file:line: KEY: message" lines. */
  warnings: string[];
}

export function sourceText(s: SettingSource): string {
  return s.kind === "default" ? "default" : s.kind === "file" ? `${s.file}:${s.line}` : `env $${s.name}`;
}

export function resolveConfig(input: ResolveInput): Resolution {
  const issues: ConfigIssue[] = [...(input.readIssues ?? [])];
  const warnings: ConfigIssue[] = [];
  // Maps, not objects: a key named __proto__ or constructor is a name like any other.
  const raw = new Map<string, RawSetting>();
  const vars = new Map<string, string>();
  /** The built-in defaults' values: what a client role falls back to for a key it does not read. */
  const builtinRaw = new Map<string, RawSetting>();
  const role = input.role;
  const lenient = role !== undefined && isClientRole(role);
  /** Demote an issue to a warning for this role, saying why. */
  const demote = (i: ConfigIssue, why: string): void => void warnings.push({ ...i, message: `${i.message} (${why})` });

  for (const layer of input.settings) {
    if (tooLarge(layer, issues)) continue;
    const p = parseSettings(layer.text, layer.file, { env: input.env, vars });
    for (const i of p.issues) {
      // A statement that failed assigned nothing. When it is about a key this client role does
      // not read (or an unknown key), the role can go on without it.
      if (lenient && i.key !== undefined && !roleIsStrictAbout(role, i.key)) demote(i, `ignored by ${role}, which does not read ${i.key}`);
      else issues.push(i);
    }
    warnings.push(...p.warnings);
    for (const a of p.assignments) {
      vars.set(a.key, a.value);
      const r: RawSetting = {
        value: a.value,
        file: a.file,
        line: a.line,
        source: layer.builtin ? { kind: "default" } : { kind: "file", file: a.file, line: a.line },
        refs: a.refs,
      };
      raw.set(a.key, r);
      if (layer.builtin) builtinRaw.set(a.key, r);
    }
  }

  let v = validateSettings(raw);
  if (lenient) {
    // Bad values of keys this client role does not read: warnings, and the built-in default
    // stands in for them (the role never uses it; the Settings value must still be complete).
    const ignored = v.issues.filter((i) => i.key !== undefined && !roleIsStrictAbout(role, i.key) && builtinRaw.has(i.key));
    if (ignored.length) {
      for (const i of ignored) {
        demote(i, `ignored by ${role}, which does not read ${i.key}; the gateway roles refuse it`);
        raw.set(i.key!, builtinRaw.get(i.key!)!);
      }
      v = validateSettings(raw);
    }
  }
  issues.push(...v.issues);
  warnings.push(...v.warnings);

  const fd = raw.get("VXLAN_GATEWAY_FIRST_DYNAMIC_IP");
  const nat = tooLarge(input.nat, issues)
    ? { entries: [], issues: [], warnings: [] }
    : parseNatConf(input.nat.text, input.nat.file, {
        firstDynamic: v.values.VXLAN_GATEWAY_FIRST_DYNAMIC_IP,
        firstDynamicFrom: fd ? sourceText(fd.source) : undefined,
      });
  if (lenient && input.podName) {
    // A client reads only its own entry: problems on other pods' lines are the gateway's.
    const own = ownNatLines(input.nat.text, input.podName);
    for (const i of nat.issues) {
      if (i.line === undefined || own.lines.has(i.line)) issues.push(i);
      else demote(i, `a line for another pod: ${role} of pod ${JSON.stringify(input.podName)} ignores it; the gateway roles refuse it`);
    }
    // ...and its octet must be unique, also when the other line is the one refused.
    const mine = matchNatEntry(nat.entries, input.podName)?.entry;
    if (mine)
      for (const [line, octet] of own.octets)
        if (octet === String(mine.octet) && line !== mine.line)
          issues.push({ file: input.nat.file, line, message: `octet ${mine.octet} is also ${JSON.stringify(mine.name)}'s (line ${mine.line}), this pod's entry: two pods would share one address` });
  } else issues.push(...nat.issues);
  warnings.push(...nat.warnings);

  // Report in reading order: layer by layer, line by line (validation walks keys, not lines).
  const fileOrder = [...input.settings.map((l) => l.file), input.nat.file];
  // Files outside the layers (those that could not be read) keep the order they were read in.
  const byPlace = (a: ConfigIssue, b: ConfigIssue): number =>
    a.file !== b.file
      ? rank(fileOrder, a.file) - rank(fileOrder, b.file)
      : (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
  issues.sort(byPlace);
  warnings.sort(byPlace);
  capPerFile(issues);
  const warningLines = [...(input.readWarnings ?? []), ...warnings.map(formatIssue)];
  if (issues.length || !v.settings) return { config: undefined, issues, warnings: warningLines };

  const sources = {} as Record<SettingKey, SettingSource>;
  const expansions: LoadedConfig["expansions"] = {};
  for (const [k, r] of raw) {
    if (!isSettingKey(k)) continue;
    sources[k] = r.source;
    const env = envRefs(r.refs ?? []);
    if (env.length) expansions[k] = env;
  }
  return {
    config: {
      settings: v.settings,
      sources,
      nat: nat.entries,
      files: [...input.settings.map((l) => l.file), input.nat.file],
      warnings: warningLines,
      natFile: input.nat.file,
      expansions,
    },
    issues,
    warnings: warningLines,
  };
}

/**
 * A file over the size limit is not parsed at all (bounded time and memory whatever it holds).
 * Its length in UTF-16 units is at most its length in bytes, so this also holds for text that
 * did not come from readRegularFile, which refuses such files before reading them whole.
 */
function tooLarge(f: ConfigText, issues: ConfigIssue[]): boolean {
  if (f.text.length <= MAX_CONFIG_FILE_BYTES) return false;
  issues.push({ file: f.file, message: `is larger than the limit of ${MAX_CONFIG_FILE_BYTES} bytes (1 MiB); refused before parsing` });
  return true;
}

/**
 * At most MAX_ISSUES_PER_FILE problems per file, then one line counting the rest: a file that is
 * not a settings file at all (a secret mounted by mistake) must not be echoed line by line.
 */
function capPerFile(issues: ConfigIssue[]): void {
  const seen = new Map<string, number>();
  const out: ConfigIssue[] = [];
  for (const i of issues) {
    const n = (seen.get(i.file) ?? 0) + 1;
    seen.set(i.file, n);
    if (n <= MAX_ISSUES_PER_FILE) out.push(i);
  }
  for (const [file, n] of seen)
    if (n > MAX_ISSUES_PER_FILE) {
      const at = out.findLastIndex((i) => i.file === file);
      out.splice(at + 1, 0, { file, message: `${n - MAX_ISSUES_PER_FILE} more problems in this file not shown` });
    }
  issues.splice(0, issues.length, ...out);
}

/**
 * Which nat.conf lines may be this pod's own entry (their name is the pod's, its workload's, or
 * the text before its first dash), and the octet text of every line.
 */
function ownNatLines(text: string, podName: string): { lines: Set<number>; octets: Map<number, string> } {
  const pod = podName.toLowerCase();
  const names = new Set([pod, ...workloadCandidates(pod)]);
  const dash = pod.indexOf("-");
  if (dash > 0) names.add(pod.slice(0, dash));
  const lines = new Set<number>();
  const octets = new Map<number, string>();
  text.split("\n").forEach((l, i) => {
    const words = l.replace(/(^|\s)#.*$/, "").trim().split(/\s+/);
    if (!words[0]) return;
    if (names.has(words[0].toLowerCase())) lines.add(i + 1);
    if (words[1] !== undefined) octets.set(i + 1, words[1]);
  });
  return { lines, octets };
}

/** Position of a file in layer order; files not in a layer (read errors, "settings") come first. */
function rank(order: readonly string[], file: string): number {
  return order.indexOf(file);
}

function envRefs(refs: readonly ExpansionRef[]): { name: string; set: boolean }[] {
  const out: { name: string; set: boolean }[] = [];
  for (const r of refs)
    if (r.from !== "key" && !out.some((o) => o.name === r.name)) out.push({ name: r.name, set: r.from === "env" });
  return out;
}
