// Reads the configuration layers from disk and resolves them (src/core/settings/resolve.ts):
// the defaults compiled into the binary, /default_config, then the config dir (/config, or
// --config-dir, or $POD_GATEWAY_CONFIG_DIR). A missing file counts as empty; an unreadable one
// is an error. Throws ConfigError carrying every problem of every layer.
// Imported as text so `bun build --compile` embeds them: the binary works with no files at all.
import builtinSettingsText from "../../config/settings.sh" with { type: "text" };
import builtinNatText from "../../config/nat.conf" with { type: "text" };
import { ConfigError, type ConfigIssue } from "../core/errors.ts";
import { joinPath as join, resolvePath } from "../core/path.ts";
import { MAX_CONFIG_FILE_BYTES } from "../core/settings/limits.ts";
import { resolveConfig, type ConfigText, type LoadedConfig } from "../core/settings/resolve.ts";
import type { Role } from "../core/settings/roles.ts";
import { decodeConfigText } from "../core/settings/text.ts";
import { readRegularFile } from "./files.ts";
import { S_IFDIR, S_IFMT, statPath } from "./fs.ts";
import { log } from "./log.ts";

export type { LoadedConfig } from "../core/settings/resolve.ts";

export const BUILTIN_SETTINGS = "builtin:settings.sh";
export const BUILTIN_NAT = "builtin:nat.conf";
export const DEFAULT_CONFIG_DIR = "/config";
export const DEFAULT_DEFAULTS_DIR = "/default_config";

export interface LoadConfigOptions {
  /** --config-dir; else env.POD_GATEWAY_CONFIG_DIR; else /config. */
  configDir?: string;
  /** Where the image keeps its own defaults layer; /default_config. */
  defaultConfigDir?: string;
  /** For $VAR expansion and POD_GATEWAY_CONFIG_DIR; process.env when omitted. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The role that will use the configuration: a client role is strict only about what it reads (core/settings/roles.ts). */
  role?: Role;
  /** The pod's name (client roles): which nat.conf line is its own. */
  podName?: string;
  /** Receives each warning line; by default they are logged (also when loading fails, since a misspelt key often explains an error). */
  onWarning?: (line: string) => void;
}

/** The config dir in effect and whether someone chose it (then its absence deserves a warning). */
export function configDirFor(opts: Pick<LoadConfigOptions, "configDir" | "env">): { dir: string; chosen: boolean } {
  const fromEnv = (opts.env ?? process.env).POD_GATEWAY_CONFIG_DIR;
  if (opts.configDir) return { dir: opts.configDir, chosen: true };
  if (fromEnv) return { dir: fromEnv, chosen: true };
  return { dir: DEFAULT_CONFIG_DIR, chosen: false };
}

type Read = { kind: "missing" } | { kind: "text"; text: string } | { kind: "error"; issue: ConfigIssue };

/**
 * Read a config file; absent is not an error (ENOENT), anything else that stops reading is: a file
 * that is not a regular file (a FIFO would block every role forever, /dev/zero never ends), one
 * over the size limit, one that is not UTF-8. Symlinks are followed (ConfigMap keys are symlinks
 * into ..data).
 */
export function readConfigFile(path: string): Read {
  const r = readRegularFile(path, MAX_CONFIG_FILE_BYTES);
  if (!r.ok) {
    if (r.reason === "missing") return { kind: "missing" };
    const message = r.reason === "too-large" ? `${r.message} (1 MiB); refused before parsing` : r.message;
    return { kind: "error", issue: { file: path, message } };
  }
  const d = decodeConfigText(r.bytes, path);
  return d.ok ? { kind: "text", text: d.text } : { kind: "error", issue: d.issue };
}

function isDirectory(path: string): boolean {
  try {
    return (statPath(path).mode & S_IFMT) === S_IFDIR;
  } catch {
    return false;
  }
}

export function loadConfig(opts: LoadConfigOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const onWarning = opts.onWarning ?? ((w: string) => log().withTag("config").warn(w));
  const { dir, chosen } = configDirFor({ configDir: opts.configDir, env });
  const dirs = [opts.defaultConfigDir ?? DEFAULT_DEFAULTS_DIR, dir].filter((d, i, all) => all.findIndex((x) => resolvePath(x, process.cwd()) === resolvePath(d, process.cwd())) === i);

  const readIssues: ConfigIssue[] = [];
  const readWarnings: string[] = [];
  if (chosen && !isDirectory(dir)) readWarnings.push(`${dir}: config dir does not exist or is not a directory; using the defaults`);

  const settings: ConfigText[] = [{ file: BUILTIN_SETTINGS, text: builtinSettingsText, builtin: true }];
  for (const d of dirs) {
    const path = join(d, "settings.sh");
    const r = readConfigFile(path);
    if (r.kind === "text") settings.push({ file: path, text: r.text });
    else if (r.kind === "error") readIssues.push(r.issue);
  }

  // nat.conf is not merged: the highest layer holding nat.conf (or, failing that, nat.sh) wins.
  let nat: ConfigText = { file: BUILTIN_NAT, text: builtinNatText, builtin: true };
  for (const d of [...dirs].reverse()) {
    const conf = join(d, "nat.conf");
    const sh = join(d, "nat.sh");
    const rc = readConfigFile(conf);
    const rs = readConfigFile(sh);
    if (rc.kind === "error") readIssues.push(rc.issue);
    if (rc.kind === "text") {
      if (rs.kind === "text") readWarnings.push(`${sh}: ignored because ${conf} exists`);
      nat = { file: conf, text: rc.text };
      break;
    }
    if (rs.kind === "error") readIssues.push(rs.issue);
    if (rs.kind === "text") {
      nat = { file: sh, text: rs.text };
      break;
    }
    if (rc.kind === "error" || rs.kind === "error") break;
  }

  // The chart renders a nat6.conf (the reference's IPv6 port forwards): say it is not used.
  for (const d of dirs) {
    const path = join(d, "nat6.conf");
    const r = readRegularFile(path, MAX_CONFIG_FILE_BYTES);
    if (r.ok && /^[ \t]*[^#\s]/m.test(new TextDecoder().decode(r.bytes)))
      readWarnings.push(`${path}: ignored: pod-gateway forwards IPv4 ports only (nat.conf); IPv6 port forwards are not supported`);
  }

  const res = resolveConfig({ settings, nat, env, readIssues, readWarnings, role: opts.role, podName: opts.podName });
  for (const w of res.warnings) onWarning(w);
  if (!res.config) throw new ConfigError(res.issues);
  return res.config;
}
