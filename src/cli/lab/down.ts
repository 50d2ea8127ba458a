// lab down: remove a lab (or all of them), including half-built leftovers of a crash.
import { defineCommand } from "citty";
import { destroyLabById, listLabs } from "../../lab/lab.ts";
import { pickCliLabs } from "../../lab/plan.ts";
import { log } from "../../sys/log.ts";
import { ExitStatus, idArg } from "./common.ts";
import { writeStdout } from "../../sys/output.ts";

export default defineCommand({
  meta: { name: "down", description: "Remove a lab: its processes, namespaces, /etc/netns entries and run directory" },
  args: {
    ...idArg,
    all: { type: "boolean", description: "Remove every lab on this machine (also other users' and tests' labs)", default: false },
  },
  async run({ args }) {
    let ids: string[];
    if (args.all) ids = listLabs().map((l) => l.id);
    else if (args.id !== undefined) ids = [args.id];
    else {
      // Only a lab `lab up` built: never a running test's or demo's.
      const { mine, others } = pickCliLabs(listLabs());
      if (mine.length > 1) throw new ExitStatus(2, `several labs started with \`lab up\` are running (${mine.join(", ")}): pass --id ID or --all`);
      ids = mine;
      if (ids.length === 0 && others.length) log().withTag("lab").info(`other labs (tests, demos, half-built) are left alone: ${others.join(", ")}; name one with --id`);
    }

    if (ids.length === 0) log().withTag("lab").info("no lab to remove");
    const failures: string[] = [];
    for (const id of ids) {
      try {
        await destroyLabById(id);
        writeStdout(`lab ${id} removed\n`);
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
    if (failures.length) throw new ExitStatus(1, failures.join("\n"));
  },
});
