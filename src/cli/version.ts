// `pod-gateway version` (also --version/-v, handled in main.ts): the version compiled in by build.ts.
import { defineCommand } from "citty";
import { versionString } from "../version.ts";

export default defineCommand({
  meta: { name: "version", description: "Print the version (package version + git commit)" },
  run() {
    process.stdout.write(`pod-gateway ${versionString}\n`);
  },
});
