// Runs rtnetlink operations from source inside a namespace and prints one JSON line, so the netns
// tests can drive src/sys/netlink.ts in a throwaway namespace
// (`ip netns exec <ns> bun netlink-run.ts '<json>'`):
//   [{"call":"route","args":["add",{...}]}, ...]   → {"ok":true,"results":[...]}
//   [{"call":"applyNetChange","args":[<NetChange>]}]  (the change model's executor)
//   {"events": {"rcvbuf": 4096, "waitMs": 3000, "until": "resync"}}  → the first event of that kind
// A failing call prints {"ok":false,"index":i,"name":"NetlinkError","code":"EEXIST","message":"..."}.
import { NetlinkError, NetlinkEvents, Rtnl } from "../../src/sys/netlink.ts";
import { applyNetChange } from "../../src/sys/net-apply.ts";

const req = JSON.parse(process.argv[2] ?? "[]");
const print = (v: unknown) => console.log(JSON.stringify(v));

if (!Array.isArray(req) && req.events) {
  const ev = NetlinkEvents.open({ rcvbuf: req.events.rcvbuf });
  // tell the test we are subscribed, then wait for it to make changes
  print({ ready: true });
  await new Promise<void>((resolve) => process.stdin.once("data", () => resolve()));
  const seen: string[] = [];
  const end = Date.now() + req.events.waitMs;
  let found: unknown;
  while (Date.now() < end && found === undefined) {
    const e = await ev.next(end - Date.now());
    if (!e) break;
    seen.push(e.kind);
    if (e.kind === req.events.until) found = e.kind === "resync" ? { kind: e.kind, links: e.links.length, routes: e.routes.length } : e;
  }
  ev.close();
  print({ ok: found !== undefined, found, seen: seen.length });
  process.exit(0);
}

const r = Rtnl.open();
const results: unknown[] = [];
for (const [i, c] of (req as { call: string; args: unknown[] }[]).entries()) {
  try {
    if (c.call === "applyNetChange") {
      applyNetChange(r, c.args[0] as Parameters<typeof applyNetChange>[1]);
      results.push(null);
      continue;
    }
    const fn = (r as unknown as Record<string, (...a: unknown[]) => unknown>)[c.call];
    if (typeof fn !== "function") throw new Error(`no operation ${c.call}`);
    results.push(fn.apply(r, c.args) ?? null);
  } catch (e) {
    const err = e as Error;
    print({ ok: false, index: i, name: err.name, code: e instanceof NetlinkError ? e.code : undefined, message: err.message });
    process.exit(1);
  }
}
r.close();
print({ ok: true, results });
