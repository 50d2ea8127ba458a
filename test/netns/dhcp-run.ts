// Runs one DHCP client operation from source and prints the result as one JSON line, so the
// netns test can run the real code inside a namespace (`ip netns exec <ns> bun dhcp-run.ts '<json>'`).
//   {"op":"acquire", ...AcquireOptions}            → {"ok":true,"lease":{...},"ms":12.3}
//   {"op":"renew"|"release", "lease":{...}, ...}   → {"ok":true,"lease":{...}} / {"ok":true}
//   {"op":"keep", "lease":{...}, "renewSeconds":1}  → a LeaseKeeper with T1 shortened to renewSeconds:
//                                                    waits for one renewal, then stop() (release)
// Failures print {"ok":false,"name":"DhcpError","message":"..."} and exit 1.
import { LeaseKeeper, acquireLease, releaseLease, renewLease } from "../../src/sys/dhcp-client.ts";
import type { Lease } from "../../src/core/dhcp/types.ts";

const req = JSON.parse(process.argv[2] ?? "{}");
const t0 = performance.now();
try {
  if (req.op === "acquire") {
    const lease = await acquireLease(req);
    console.log(JSON.stringify({ ok: true, lease, ms: performance.now() - t0 }));
  } else if (req.op === "renew") {
    const lease = await renewLease(req.lease, req);
    console.log(JSON.stringify({ ok: true, lease, ms: performance.now() - t0 }));
  } else if (req.op === "keep") {
    const lease: Lease = { ...req.lease, renewSeconds: req.renewSeconds, obtainedAt: Date.now() };
    let keeper: LeaseKeeper | undefined;
    const renewed = await new Promise<Lease>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no renewal within 10 s")), 10_000);
      keeper = new LeaseKeeper(lease, {
        ...req,
        onRenewed: (l) => (clearTimeout(t), resolve(l)),
        onLost: (_l, why) => (clearTimeout(t), reject(new Error(`lost: ${why}`))),
      });
      keeper.start();
    });
    await keeper!.stop();
    console.log(JSON.stringify({ ok: true, lease: renewed, state: keeper!.state, ms: performance.now() - t0 }));
  } else if (req.op === "release") {
    await releaseLease(req.lease, req);
    console.log(JSON.stringify({ ok: true, ms: performance.now() - t0 }));
  } else {
    throw new Error(`unknown op ${JSON.stringify(req.op)}`);
  }
} catch (e) {
  const err = e as Error;
  console.log(JSON.stringify({ ok: false, name: err.name, message: err.message, ms: performance.now() - t0 }));
  process.exitCode = 1;
}
