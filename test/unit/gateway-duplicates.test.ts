// The gateway's report of duplicate overlay identities (issue 13 §2): parsing vxlan0's neighbour
// table and forwarding database (shapes as `ip -j` / `bridge -j` print them), and the one-minute window.
import { describe, expect, test } from "bun:test";
import { countDuplicates, newDuplicateState, parseFdbPodIps, parseNeighMacs, parseSightings, planDuplicateReports, type Sighting } from "../../src/core/gateway/duplicates.ts";

const MAC_A = "02:aa:aa:aa:aa:aa";
const MAC_B = "02:bb:bb:bb:bb:bb";

describe("parsing", () => {
  test("fdb: learned entries only (the all-zero default and permanent entries are not pods)", () => {
    const fdb = [
      { mac: MAC_A, dst: "10.244.1.17", state: "" },
      { mac: "02:BB:BB:BB:BB:BB", dst: "10.244.2.9" },
      { mac: "00:00:00:00:00:00", dst: "10.244.0.1", flags: ["self"], state: "permanent" },
      { mac: "02:cc:cc:cc:cc:cc", dst: "10.244.3.3", flags: ["self"], state: "permanent" },
      { mac: "02:dd:dd:dd:dd:dd", dst: "fd00::1" },
      { mac: "nonsense", dst: "10.0.0.1" },
      null,
      "text",
    ];
    expect([...parseFdbPodIps(fdb)]).toEqual([
      [MAC_A, "10.244.1.17"],
      [MAC_B, "10.244.2.9"],
    ]);
    expect(parseFdbPodIps({ not: "an array" }).size).toBe(0);
  });

  test("neighbours: entries with a link-layer address, not FAILED or INCOMPLETE", () => {
    const neigh = [
      { dst: "172.16.0.5", lladdr: MAC_A, state: ["STALE"] },
      { dst: "172.16.0.6", state: ["FAILED"] },
      { dst: "172.16.0.7", lladdr: MAC_B, state: ["INCOMPLETE"] },
      { dst: "fe80::1", lladdr: MAC_B, state: ["REACHABLE"] },
      { dst: "172.16.0.8", lladdr: MAC_B, state: ["REACHABLE"] },
    ];
    expect([...parseNeighMacs(neigh)]).toEqual([
      ["172.16.0.5", MAC_A],
      ["172.16.0.8", MAC_B],
    ]);
  });

  test("sightings join the two: overlay address → MAC → pod IP; MACs without an address still count", () => {
    const s = parseSightings([{ dst: "172.16.0.5", lladdr: MAC_A, state: ["REACHABLE"] }, { dst: "172.16.0.9", lladdr: "02:99:99:99:99:99", state: ["STALE"] }], [
      { mac: MAC_A, dst: "10.244.1.17" },
      { mac: MAC_B, dst: "10.244.2.9" },
    ]);
    expect(s).toEqual([
      { mac: MAC_A, podIp: "10.244.1.17", overlayIp: "172.16.0.5" },
      { mac: MAC_B, podIp: "10.244.2.9" },
    ]);
  });
});

describe("planDuplicateReports", () => {
  const a: Sighting = { mac: MAC_A, podIp: "10.244.1.17", overlayIp: "172.16.0.5" };
  const b: Sighting = { mac: MAC_B, podIp: "10.244.2.9", overlayIp: "172.16.0.5" };

  test("one address behind two pod IPs within a minute: one report naming the address and both pod IPs", () => {
    const st = newDuplicateState();
    expect(planDuplicateReports(st, [a], 0)).toEqual([]);
    const r = planDuplicateReports(st, [b, { mac: MAC_A, podIp: "10.244.1.17" }], 30_000);
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ kind: "address", value: "172.16.0.5", pods: [{ podIp: "10.244.1.17", mac: MAC_A }, { podIp: "10.244.2.9", mac: MAC_B }] });
    expect(r[0]!.text).toStartWith("overlay address 172.16.0.5 seen behind 2 pod IPs within 60 s: 10.244.1.17 (MAC 02:aa:aa:aa:aa:aa), 10.244.2.9 (MAC 02:bb:bb:bb:bb:bb)");
  });

  test("reported at most once a minute per address while it lasts, and again after", () => {
    const st = newDuplicateState();
    planDuplicateReports(st, [a], 0);
    expect(planDuplicateReports(st, [b], 5_000)).toHaveLength(1);
    for (let t = 10_000; t < 65_000; t += 5_000) expect(planDuplicateReports(st, [t % 10_000 ? a : b], t)).toEqual([]);
    expect(planDuplicateReports(st, [a], 65_000)).toHaveLength(1);
  });

  test("a pod replaced more than a minute later (the old one gone) is no duplicate", () => {
    const st = newDuplicateState();
    planDuplicateReports(st, [a], 0);
    expect(planDuplicateReports(st, [b], 61_000)).toEqual([]);
    expect(st.seen.get("address 172.16.0.5")?.size).toBe(1);
  });

  test("one MAC behind two pod IPs: reported as a shared MAC", () => {
    const st = newDuplicateState();
    planDuplicateReports(st, [{ mac: MAC_A, podIp: "10.244.1.17" }], 0);
    const r = planDuplicateReports(st, [{ mac: MAC_A, podIp: "10.244.2.9" }], 5_000);
    expect(r.map((x) => [x.kind, x.value, x.pods.map((p) => p.podIp)])).toEqual([["mac", MAC_A, ["10.244.1.17", "10.244.2.9"]]]);
    expect(r[0]!.text).toContain(`MAC ${MAC_A} seen behind 2 pod IPs within 60 s: 10.244.1.17, 10.244.2.9`);
  });

  test("every line names the metric it moves; a duplicate that stops (a window without a second pod IP) gets one info line", () => {
    const st = newDuplicateState();
    planDuplicateReports(st, [a], 0);
    const seen = planDuplicateReports(st, [b], 5_000);
    expect(seen.map((r) => r.text.slice(r.text.lastIndexOf(" ("))).sort()).toEqual([' (pod_gateway_gateway_duplicate_identities{kind="address"} 1)']);
    expect(countDuplicates(st)).toEqual({ address: 1, mac: 0 });
    // Only pod a speaks from now on: b's sighting (5 s) is in the window until 65 s (reported again then).
    for (let t = 10_000; t < 65_000; t += 5_000) expect(planDuplicateReports(st, [a], t)).toEqual([]);
    expect(planDuplicateReports(st, [a], 65_000).map((r) => r.over)).toEqual([undefined]);
    const over = planDuplicateReports(st, [a], 70_000);
    expect(over).toEqual([
      {
        kind: "address",
        value: "172.16.0.5",
        pods: [{ podIp: "10.244.1.17", mac: MAC_A }],
        over: true,
        text: 'overlay address 172.16.0.5 no longer seen behind two pod IPs within 60 s: the duplicate is over (pod_gateway_gateway_duplicate_identities{kind="address"} 0)',
      },
    ]);
    expect(countDuplicates(st)).toEqual({ address: 0, mac: 0 });
    expect(planDuplicateReports(st, [a], 75_000)).toEqual([]);
    // Both gone at once (the key itself forgotten): still one line.
    const st2 = newDuplicateState();
    planDuplicateReports(st2, [{ mac: MAC_A, podIp: "10.244.1.17" }], 0);
    expect(planDuplicateReports(st2, [{ mac: MAC_A, podIp: "10.244.2.9" }], 1_000)[0]!.text).toEndWith('(pod_gateway_gateway_duplicate_identities{kind="mac"} 1)');
    const gone = planDuplicateReports(st2, [], 100_000);
    expect(gone.map((r) => [r.kind, r.over, r.pods])).toEqual([["mac", true, []]]);
    expect(gone[0]!.text).toBe(`MAC ${MAC_A} no longer seen behind two pod IPs within 60 s: the duplicate is over (pod_gateway_gateway_duplicate_identities{kind="mac"} 0)`);
  });

  test("distinct pods with distinct addresses and MACs: nothing, and nothing is kept past the window", () => {
    const st = newDuplicateState();
    const many = Array.from({ length: 200 }, (_, i): Sighting => ({ mac: `02:00:00:00:00:${i.toString(16).padStart(2, "0")}`, podIp: `10.244.0.${i + 1}`, overlayIp: `172.16.0.${i + 20}` }));
    for (let t = 0; t <= 120_000; t += 5_000) expect(planDuplicateReports(st, many, t)).toEqual([]);
    expect(st.seen.size).toBe(400);
    planDuplicateReports(st, [], 200_000);
    expect(st.seen.size).toBe(0);
    expect(st.reported.size).toBe(0);
  });
});
