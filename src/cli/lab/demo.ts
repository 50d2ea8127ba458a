// lab demo: build a lab, run the roles in it, check what matters, print a short report, tear down.
import { defineCommand } from "citty";
import { runDemo } from "../../lab/demo.ts";
import { demoExitCode, renderDemoReport } from "../../lab/report.ts";
import { log } from "../../sys/log.ts";
import { ExitStatus, parseIntArg, parseVpnArgs, vpnArgs } from "./common.ts";
import { writeStdout } from "../../sys/output.ts";

export default defineCommand({
  meta: { name: "demo", description: "Build a lab, run the gateway and client roles in it, and report what works" },
  args: {
    clients: { type: "string", description: "Number of client pods (1-20, default 2; client-0 static with a port forward, the rest DHCP)", valueHint: "N" },
    keep: { type: "boolean", description: "Leave the lab running afterwards", default: false },
    ...vpnArgs,
  },
  async run({ args }) {
    const logger = log().withTag("demo");
    const { labId, steps } = await runDemo({
      clients: parseIntArg("clients", args.clients, 1, 20),
      keep: args.keep,
      ...parseVpnArgs(args),
      onStep: (s) => logger.info(`${s.name}: ${s.status}${s.detail ? ` — ${s.detail}` : ""}`),
    });
    writeStdout("\n" + renderDemoReport({ labId, steps, kept: args.keep }));
    const code = demoExitCode(steps);
    if (code !== 0) throw new ExitStatus(code, "the demo did not pass every step (see the report)");
  },
});
