// lab get (hidden): one HTTP GET from inside a lab pod, the body on stdout (the demo reads a
// sidecar's /metrics with it: the port is in the pod's network namespace).
import { defineCommand } from "citty";
import { ExitStatus, parseIntArg } from "./common.ts";

export default defineCommand({
  meta: { name: "get", description: "HTTP GET a URL and print the body", hidden: true },
  args: {
    url: { type: "positional", description: "http://IP:PORT/PATH", required: true },
    timeout: { type: "string", description: "Give up after this many milliseconds (default 2000)", valueHint: "MS" },
  },
  async run({ args }) {
    const ms = parseIntArg("timeout", args.timeout, 1, 600_000) ?? 2000;
    let r: Response;
    try {
      r = await fetch(args.url, { signal: AbortSignal.timeout(ms) });
    } catch (e) {
      throw new ExitStatus(1, `GET ${args.url}: ${(e as Error).message}`);
    }
    process.stdout.write(await r.text());
    if (r.status !== 200) throw new ExitStatus(1, `GET ${args.url}: HTTP ${r.status}`);
  },
});
