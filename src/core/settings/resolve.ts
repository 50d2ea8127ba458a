// Layers settings files and validates the result, then reads the winning nat.conf against it.
// Pure: src/sys/config.ts reads the files and hands their text here.
//
// Layering: each settings file is parsed with the keys of the layers below it in scope (so
// /config/settings.sh may write VPN_LOCAL_CIDRS="$VPN_LOCAL_CIDRS 172.20.0.0/16"); later
// assignments win. nat.conf is NOT merged: a ConfigMap replaces the whole file, so the highest
// layer that has one wins entirely (an empty nat.conf there means "no static entries").
import { formatIssue, type ConfigIssue } from "../errors.ts";
import { parseNatConf } from "../natconf/parse.ts";
import { parseSettings, type ExpansionRef } from "./parse.ts";
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
  const raw: Record<string, RawSetting> = {};
  const vars: Record<string, string> = {};

  for (const layer of input.settings) {
    const p = parseSettings(layer.text, layer.file, { env: input.env, vars });
    issues.push(...p.issues);
    warnings.push(...p.warnings);
    for (const a of p.assignments) {
      vars[a.key] = a.value;
      raw[a.key] = {
        value: a.value,
        file: a.file,
        line: a.line,
        source: layer.builtin ? { kind: "default" } : { kind: "file", file: a.file, line: a.line },
        refs: a.refs,
      };
    }
  }

  const v = validateSettings(raw);
  issues.push(...v.issues);
  warnings.push(...v.warnings);

  const fd = raw.VXLAN_GATEWAY_FIRST_DYNAMIC_IP;
  const nat = parseNatConf(input.nat.text, input.nat.file, {
    firstDynamic: v.values.VXLAN_GATEWAY_FIRST_DYNAMIC_IP,
    firstDynamicFrom: fd ? sourceText(fd.source) : undefined,
  });
  issues.push(...nat.issues);
  warnings.push(...nat.warnings);

  // Report in reading order: layer by layer, line by line (validation walks keys, not lines).
  const fileOrder = [...input.settings.map((l) => l.file), input.nat.file];
  const byPlace = (a: ConfigIssue, b: ConfigIssue): number =>
    rank(fileOrder, a.file) - rank(fileOrder, b.file) || (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
  issues.sort(byPlace);
  warnings.sort(byPlace);
  const warningLines = [...(input.readWarnings ?? []), ...warnings.map(formatIssue)];
  if (issues.length || !v.settings) return { config: undefined, issues, warnings: warningLines };

  const sources = {} as Record<SettingKey, SettingSource>;
  const expansions: LoadedConfig["expansions"] = {};
  for (const [k, r] of Object.entries(raw)) {
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
