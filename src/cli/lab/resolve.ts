// lab resolve (hidden): an A-record lookup from inside a lab pod, without dig or nslookup.
import { defineCommand } from "citty";
import { runResolve } from "../../lab/echo.ts";
import { ExitStatus, parseIntArg } from "./common.ts";
import { writeStdout } from "../../sys/output.ts";

export default defineCommand({
  meta: { name: "resolve", description: "Look up a name's IPv4 addresses (used inside the lab)", hidden: true },
  args: {
    name: { type: "positional", description: "Name to resolve", required: true },
    server: { type: "string", description: "DNS server (default: the pod's resolv.conf)", valueHint: "IP" },
    expect: { type: "string", description: "Keep asking until this address is among the answers", valueHint: "IP" },
    timeout: { type: "string", description: "Give up after this many milliseconds (default 2000)", valueHint: "MS" },
    json: { type: "boolean", description: "Print the result as one JSON line", default: false },
  },
  async run({ args }) {
    const r = await runResolve(args.name, { server: args.server, expect: args.expect, timeoutMs: parseIntArg("timeout", args.timeout, 1, 600_000) ?? 2000 });
    writeStdout(args.json ? JSON.stringify(r) + "\n" : r.addresses.map((a) => a + "\n").join(""));
    if (!r.ok) throw new ExitStatus(1, r.error ?? `resolving ${args.name} failed`);
  },
});
