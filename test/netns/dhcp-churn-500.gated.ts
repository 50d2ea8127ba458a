// Issue 13 §7 as written: "500 client pods created and deleted in turn on one gateway with the
// default lease time; every new pod gets an address". The default pool (.20-.254: 235 addresses)
// and the default 12 h lease: after 235 pods every further pod needs an address whose shortened
// lease (120 s after its pod's SIGTERM) has lapsed. The pods themselves: test/netns/churn.ts.
// Asserted: every pod gets an address. Reported: pods whose shutdown renewal the sidecar could not
// confirm within its 500 ms, and leases the gateway still holds for long (see README, Development).
//
// Long (~500 pods × a few seconds): `npm run test:churn`, not collected by `npm test` (*.gated.ts).
// Prints one progress line every 50 pods and the measurements at the end.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { type Churn, type ChurnPod, createChurn } from "./churn.ts";
import { withLab } from "./helpers.ts";

const PODS = Number(process.env.POD_GATEWAY_CHURN_PODS ?? 500);
/** .20 to .254 (VXLAN_GATEWAY_FIRST_DYNAMIC_IP=20, the default). */
const POOL_SIZE = 235;
const t = withLab({ clients: 1 });

let churn: Churn | undefined;
const measured: Record<string, number | string> = {};

beforeAll(() => {
  requireRoot();
  if (!Number.isInteger(PODS) || PODS < 1 || PODS > 5000) throw new Error(`POD_GATEWAY_CHURN_PODS must be 1..5000, not ${process.env.POD_GATEWAY_CHURN_PODS}`);
});

afterAll(async () => {
  await churn?.close();
  console.log("measured (churn 500):", JSON.stringify(measured));
});

describe("the DHCP pool under churn, 500 pods (issue 13 §7)", () => {
  test(
    `${PODS} pods in turn on the default pool and lease time, each ended by SIGTERM: every pod gets an address`,
    async () => {
      churn = createChurn(t.lab, binPath());
      await churn.startGateway();
      const t0 = performance.now();
      const pods: ChurnPod[] = [];
      let maxInUse = 0;
      for (let i = 0; i < PODS; i++) {
        const p = await churn.pod(i);
        pods.push(p);
        expect(p.address).toMatch(/^172\.16\.0\.\d+$/);
        expect(Number(p.address.split(".")[3])).toBeGreaterThanOrEqual(20);
        const inUse = await churn.leasesInUse();
        maxInUse = Math.max(maxInUse, inUse);
        if ((i + 1) % 50 === 0) console.log(`churn: ${i + 1} pods in ${Math.round((performance.now() - t0) / 1000)} s, ${inUse} leases in use, slowest client-init ${Math.max(...pods.map((x) => x.initSeconds)).toFixed(1)} s`);
      }
      const secs = pods.map((p) => p.initSeconds).sort((a, b) => a - b);
      measured.pods = PODS;
      measured.totalSeconds = Math.round((performance.now() - t0) / 1000);
      measured.distinctAddresses = new Set(pods.map((p) => p.address)).size;
      measured.maxLeasesInUse = maxInUse;
      measured.clientInitMedianSeconds = Number(secs[Math.floor(secs.length / 2)]!.toFixed(2));
      measured.clientInitMaxSeconds = Number(secs[secs.length - 1]!.toFixed(2));
      measured.podsThatRetried = pods.filter((p) => p.tries > 1).length;
      // Reported, not asserted: on a starved machine the sidecar's shutdown renewal can outlast its
      // 500 ms budget (it then says "the gateway reclaims it when the lease lapses"); the gateway
      // usually got it all the same (≤ 120 s left), rarely not (the address is held for 12 h).
      const slow = pods.map((p, i) => ({ i, ...p })).filter((p) => p.log !== undefined);
      measured.sidecarTimedOut = slow.filter((p) => !p.shortened).length;
      measured.longAtGateway = slow.filter((p) => p.leftAtGateway > 125).map((p) => `churn-${p.i} ${p.address} ${p.leftAtGateway} s`).join(", ") || "none";
      for (const p of slow) console.log(`pod churn-${p.i} (${p.address}): shutdown renewal not confirmed by the sidecar (${p.leftAtGateway} s left at the gateway):\n${(p.log ?? "").split("\n").slice(-4).join("\n")}`);
      // The criterion: every new pod got an address (pod() throws when one gets none in 150 s).
      expect(pods).toHaveLength(PODS);
      expect(maxInUse).toBeLessThanOrEqual(POOL_SIZE);
      // More pods than addresses: the pool was reused, so shortened leases lapsed and were handed on.
      expect(new Set(pods.map((p) => p.address)).size).toBeLessThanOrEqual(POOL_SIZE);
    },
    // A bound for a hung run only: 500 pods at up to 150 s each would be far more.
    4 * 3600_000,
  );
});
