// lab exec <pod> -- <cmd...>: run a command in a pod's namespace with the environment the
// chart/webhook give that pod's roles; stdio inherited, its exit code returned.
import { constants } from "node:os";
import { defineCommand } from "citty";
import { openLab } from "../../lab/lab.ts";
import { labPods } from "../../lab/plan.ts";
import type { PodName } from "../../lab/types.ts";
import { ExitStatus, idArg } from "./common.ts";

export default defineCommand({
  meta: { name: "exec", description: "Run a command inside a lab pod: lab exec client-0 -- ip route" },
  args: {
    pod: { type: "positional", description: "node, gateway, vpn, internet, leak or client-N", required: true },
    ...idArg,
  },
  async run({ args, rawArgs }) {
    const dash = rawArgs.indexOf("--");
    const argv = dash < 0 ? [] : rawArgs.slice(dash + 1);
    if (argv.length === 0) throw new ExitStatus(2, "lab exec needs a command after --, e.g. lab exec client-0 -- ip route");
    const lab = await openLab(args.id);
    const pods: string[] = labPods({ clients: lab.clients.length });
    if (!pods.includes(args.pod)) throw new ExitStatus(2, `lab ${lab.id} has no pod ${JSON.stringify(args.pod)} (it has ${pods.join(", ")})`);
    const pod = args.pod as PodName;
    const p = Bun.spawn(["ip", "netns", "exec", lab.ns(pod), ...argv], {
      stdio: ["inherit", "inherit", "inherit"],
      env: { ...process.env, ...lab.roleEnv(pod) },
    });
    // The terminal's Ctrl-C reaches the child directly (same process group); wait for it.
    const ignore = () => {};
    process.on("SIGINT", ignore);
    const code = await p.exited;
    process.off("SIGINT", ignore);
    const sig = p.signalCode;
    const status = typeof sig === "string" ? 128 + (constants.signals[sig] ?? 0) : code;
    if (status !== 0) throw new ExitStatus(status, `${argv.join(" ")} in ${pod} exited with ${status}`);
  },
});

