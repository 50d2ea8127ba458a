// `pod-gateway config`: what an operator runs to debug a ConfigMap. Prints every resolved
// setting and nat entry with where it came from; warnings go to stderr; any error exits 2, and
// each error says which roles it stops (core/settings/roles.ts: the client roles refuse only
// what they read), so one run shows every problem and what it would take down.
import { defineCommand } from "citty";
import { ConfigError, type ConfigIssue } from "../core/errors.ts";
import { MAX_CONFIG_FILE_BYTES } from "../core/settings/limits.ts";
import { stopsText } from "../core/settings/roles.ts";
import { renderConfigJson, renderConfigTable } from "../core/settings/summary.ts";
import { loadConfig } from "../sys/config.ts";
import { readRegularFile } from "../sys/files.ts";
import { log } from "../sys/log.ts";
import { configDirArg } from "./args.ts";
import { writeStdout } from "../sys/output.ts";

/** The pod name a nat.conf line names ("" when it names none), read from the file again. */
function natLineNames(file: string): Map<number, string> {
  const out = new Map<number, string>();
  const r = readRegularFile(file, MAX_CONFIG_FILE_BYTES);
  if (!r.ok) return out;
  new TextDecoder().decode(r.bytes).split("\n").forEach((l, i) => out.set(i + 1, l.replace(/(^|\s)#.*$/, "").trim().split(/\s+/)[0] ?? ""));
  return out;
}

/** The issues with "[stops ...]" appended to each message. */
export function withStops(issues: readonly ConfigIssue[], natFile: (file: string) => boolean, readNat = natLineNames): ConfigIssue[] {
  const names = new Map<string, Map<number, string>>();
  return issues.map((i) => {
    let natName: string | undefined;
    // A nat.conf line stops the clients of the pod it names; a nat.conf that cannot be read at
    // all (no line) stops every role: no client can tell its own entry.
    if (natFile(i.file) && i.line !== undefined) {
      if (!names.has(i.file)) names.set(i.file, readNat(i.file));
      natName = names.get(i.file)!.get(i.line) ?? "";
    }
    return { ...i, message: `${i.message} [stops ${stopsText(i, natName)}]` };
  });
}

export default defineCommand({
  meta: {
    name: "config",
    description: "Print the resolved settings and nat.conf entries, with the file and line each value came from",
  },
  args: {
    ...configDirArg,
    json: { type: "boolean", description: "Print JSON: { settings, sources, nat, files, warnings, natFile, expansions }", default: false },
  },
  run({ args }) {
    // loadConfig logs the warnings (to stderr) and throws ConfigError (exit 2) on any error.
    let cfg;
    try {
      cfg = loadConfig({ configDir: args["config-dir"], onWarning: (w) => log().withTag("config").warn(w) });
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      throw new ConfigError(withStops(e.issues, (f) => /\/nat\.(conf|sh)$/.test(f)));
    }
    writeStdout(args.json ? renderConfigJson(cfg) : renderConfigTable(cfg).join("\n") + "\n");
  },
});
