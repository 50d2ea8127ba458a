// lab status: what exists of each lab (namespaces, addresses, processes) and whether its DNS answers.
import { defineCommand } from "citty";
import { renderStatus } from "../../lab/report.ts";
import { readAllLabStatus } from "../../lab/status.ts";
import { ExitStatus } from "./common.ts";
import { writeStdout } from "../../sys/output.ts";

export default defineCommand({
  meta: { name: "status", description: "Show the labs on this machine: namespaces, addresses, processes, cluster DNS" },
  args: { id: { type: "string", description: "Only this lab (default: all)", valueHint: "ID" } },
  async run({ args }) {
    const labs = await readAllLabStatus(args.id);
    if (args.id !== undefined && labs.length === 0) throw new ExitStatus(1, `no lab with id ${args.id}`);
    writeStdout(renderStatus(labs));
    const broken = labs.filter((l) => !l.state || l.namespaces.some((n) => !n.present) || (l.dns && !l.dns.ok));
    if (broken.length) throw new ExitStatus(1, `lab ${broken.map((l) => l.id).join(", ")} is not healthy (see above)`);
  },
});
