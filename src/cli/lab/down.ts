// lab down: remove a lab (or all of them), including half-built leftovers of a crash.
import { defineCommand } from "citty";
import { destroyLabById, listLabs } from "../../lab/lab.ts";
import { log } from "../../sys/log.ts";
import { ExitStatus, idArg } from "./common.ts";

export default defineCommand({
  meta: { name: "down", description: "Remove a lab: its processes, namespaces, /etc/netns entries and run directory" },
  args: {
    ...idArg,
    all: { type: "boolean", description: "Remove every lab on this machine (also other users' and tests' labs)", default: false },
  },
  async run({ args }) {
    const labs = listLabs();
    let ids: string[];
    if (args.all) ids = labs.map((l) => l.id);
    else if (args.id !== undefined) ids = [args.id];
    else if (labs.length <= 1) ids = labs.map((l) => l.id);
    else throw new ExitStatus(2, `several labs are running (${labs.map((l) => l.id).join(", ")}): pass --id ID or --all`);
    if (ids.length === 0) log().withTag("lab").info("no lab to remove");
    const failures: string[] = [];
    for (const id of ids) {
      try {
        await destroyLabById(id);
        process.stdout.write(`lab ${id} removed\n`);
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
    if (failures.length) throw new ExitStatus(1, failures.join("\n"));
  },
});
