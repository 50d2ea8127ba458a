// `pod-gateway config`: what an operator runs to debug a ConfigMap. Prints every resolved
// setting and nat entry with where it came from; warnings go to stderr; any error exits 2.
import { defineCommand } from "citty";
import { renderConfigJson, renderConfigTable } from "../core/settings/summary.ts";
import { loadConfig } from "../sys/config.ts";
import { log } from "../sys/log.ts";
import { configDirArg } from "./args.ts";

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
    const cfg = loadConfig({ configDir: args["config-dir"], onWarning: (w) => log().withTag("config").warn(w) });
    process.stdout.write(args.json ? renderConfigJson(cfg) : renderConfigTable(cfg).join("\n") + "\n");
  },
});
