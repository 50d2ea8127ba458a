// lab up: build a lab and leave it running (its daemons outlive this command).
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { defineCommand } from "citty";
import { configDirArg } from "../args.ts";
import { createLab, listLabs, readLabState } from "../../lab/lab.ts";
import { CLI_OWNER, MAX_CLIENTS, pickCliLabs } from "../../lab/plan.ts";
import { renderLabMap } from "../../lab/report.ts";
import { log } from "../../sys/log.ts";
import { ExitStatus, idArg, parseIntArg, parseVpnArgs, vpnArgs } from "./common.ts";
import { writeStdout } from "../../sys/output.ts";

export default defineCommand({
  meta: { name: "up", description: "Build a lab: node, gateway pod, VPN exit, internet, leak host, client pods" },
  args: {
    clients: { type: "string", description: `Number of client pods (0-${MAX_CLIENTS}, default 1)`, valueHint: "N" },
    "vpn-interface": { type: "string", description: "Name of the gateway's VPN interface (default tun0)", valueHint: "NAME" },
    ...vpnArgs,
    ...configDirArg,
    ...idArg,
  },
  async run({ args }) {
    const clients = parseIntArg("clients", args.clients, 0, MAX_CLIENTS);
    const vpn = parseVpnArgs(args);
    let configDir: string | undefined;
    if (args["config-dir"]) {
      configDir = resolve(args["config-dir"]);
      if (!existsSync(configDir)) throw new ExitStatus(2, `--config-dir ${configDir} does not exist`);
      const settings = `${configDir}/settings.sh`;
      if (!existsSync(settings) || !/^\s*(export\s+)?RESOLV_CONF_COPY=/m.test(readFileSync(settings, "utf8")))
        log().withTag("lab").warn(`${settings} does not set RESOLV_CONF_COPY: the gateway sidecar would write the host's /etc/resolv_copy.conf (ip netns exec does not isolate /etc)`);
    }
    // Without --id, `up` again rebuilds the lab an earlier `lab up` built instead of adding a
    // second one; labs of tests and demos are never touched.
    let id = args.id;
    if (id === undefined) {
      const { mine } = pickCliLabs(listLabs());
      if (mine.length === 1) id = mine[0];
    }
    const lab = await createLab({ clients, configDir, id, vpnInterface: args["vpn-interface"], createdBy: CLI_OWNER, ...vpn });
    writeStdout(renderLabMap(readLabState(lab.id), lab.buildMs));
  },
});
