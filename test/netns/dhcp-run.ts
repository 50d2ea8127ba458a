// Runs one DHCP client operation from source and prints the result as one JSON line, so the
// netns test can run the real code inside a namespace (`ip netns exec <ns> bun dhcp-run.ts '<json>'`).
//   {"op":"acquire", ...AcquireOptions}            → {"ok":true,"lease":{...},"ms":12.3}
//   {"op":"renew"|"release", "lease":{...}, ...}   → {"ok":true,"lease":{...}} / {"ok":true}
// Failures print {"ok":false,"name":"DhcpError","message":"..."} and exit 1.
import { acquireLease, releaseLease, renewLease } from "../../src/sys/dhcp-client.ts";

const req = JSON.parse(process.argv[2] ?? "{}");
const t0 = performance.now();
try {
  if (req.op === "acquire") {
    const lease = await acquireLease(req);
    console.log(JSON.stringify({ ok: true, lease, ms: performance.now() - t0 }));
  } else if (req.op === "renew") {
    const lease = await renewLease(req.lease, req);
    console.log(JSON.stringify({ ok: true, lease, ms: performance.now() - t0 }));
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
