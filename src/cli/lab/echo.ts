// lab echo (hidden): the echo service the lab runs on its internet and leak hosts.
import { defineCommand } from "citty";
import { runEcho } from "../../lab/echo.ts";
import { log } from "../../sys/log.ts";
import { ExitStatus, parseIntArg } from "./common.ts";

export default defineCommand({
  meta: { name: "echo", description: "Echo service: answers with the source address it sees (used inside the lab)", hidden: true },
  args: {
    tcp: { type: "string", description: "HTTP port: GET / answers ip:port, GET /hits the counters", valueHint: "PORT" },
    udp: { type: "string", description: "UDP port: each datagram is answered with ip:port", valueHint: "PORT" },
    state: { type: "string", description: "File where the counters are kept (JSON)", valueHint: "FILE" },
    host: { type: "string", description: "Listen address (default 0.0.0.0)", valueHint: "IP" },
  },
  async run({ args }) {
    const tcpPort = parseIntArg("tcp", args.tcp, 1, 65535);
    const udpPort = parseIntArg("udp", args.udp, 1, 65535);
    if (tcpPort === undefined && udpPort === undefined) throw new ExitStatus(2, "lab echo needs --tcp PORT and/or --udp PORT");
    const stop = new AbortController();
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => stop.abort());
    await runEcho({ tcpPort, udpPort, stateFile: args.state, host: args.host }, stop.signal).catch((e: Error) => {
      throw new ExitStatus(1, `echo service: ${e.message}`);
    });
    log().withTag("echo").debug("stopped");
  },
});
