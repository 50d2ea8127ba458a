// `pod-gateway version` (also --version/-v, handled in main.ts): the version compiled in by build.ts.
// console.log, not process.stdout: creating that stream costs more CPU than the rest of the command.
import { defineCommand } from "citty";
import { versionString } from "../version.ts";

export default defineCommand({
  meta: { name: "version", description: "Print the version (package version + git commit)" },
  run() {
    console.log(`pod-gateway ${versionString}`);
  },
});
