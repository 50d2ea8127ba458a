// lab probe (hidden): ask an echo service which source address it sees (run inside a lab pod).
import { defineCommand } from "citty";
import { runProbe, type ProbeTarget } from "../../lab/echo.ts";
import { ExitStatus, parseHostPort, parseIntArg } from "./common.ts";
import { writeStdout } from "../../sys/output.ts";

export default defineCommand({
  meta: { name: "probe", description: "Ask a lab echo service which source address it sees", hidden: true },
  args: {
    tcp: { type: "string", description: "HTTP GET to IP:PORT", valueHint: "IP:PORT" },
    udp: { type: "string", description: "UDP datagram to IP:PORT", valueHint: "IP:PORT" },
    timeout: { type: "string", description: "Give up after this many milliseconds (default 2000)", valueHint: "MS" },
    json: { type: "boolean", description: "Print the result as one JSON line", default: false },
  },
  async run({ args }) {
    if ((args.tcp === undefined) === (args.udp === undefined)) throw new ExitStatus(2, "lab probe needs exactly one of --tcp IP:PORT or --udp IP:PORT");
    const proto = args.tcp !== undefined ? "tcp" : "udp";
    const target: ProbeTarget = { proto, ...parseHostPort(proto, (args.tcp ?? args.udp)!) };
    const r = await runProbe(target, parseIntArg("timeout", args.timeout, 1, 600_000) ?? 2000);
    writeStdout(args.json ? JSON.stringify(r) + "\n" : r.ok ? r.source + "\n" : "");
    if (!r.ok) throw new ExitStatus(1, r.error);
  },
});
