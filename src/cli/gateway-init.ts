// gateway-init: the gateway pod's init container (/bin/gateway_init.sh in the chart).
import { defineCommand } from "./define.ts";
import { runGatewayInit } from "../roles/gateway-init.ts";
import { ProcessRunner } from "../sys/exec.ts";
import { NetlinkGatewayNet } from "../sys/gateway-host.ts";
import { log } from "../sys/log.ts";
import { ProcSysctl } from "../sys/sysctl.ts";
import { roleArgs } from "./args.ts";
import { prepareRole } from "./role.ts";

export default defineCommand({
  meta: {
    name: "gateway-init",
    description: "Set up the gateway pod: vxlan0, forwarding, policy rule, routes and the firewall (NAT, port forwards, kill switch)",
  },
  args: { ...roleArgs },
  async run({ args }) {
    const logger = log().withTag("gateway-init");
    // Configuration first: any error exits 2 before anything is changed.
    const config = prepareRole(args, logger, "gateway-init");
    const runner = new ProcessRunner();
    const net = new NetlinkGatewayNet();
    try {
      await runGatewayInit(config, { runner, net, sysctl: new ProcSysctl(), log: logger });
    } finally {
      net.close();
    }
    return 0;
  },
});
