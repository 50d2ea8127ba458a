// The lease file rebuilt from vxlan0's neighbours for a sidecar with a fresh filesystem.
import { describe, expect, test } from "bun:test";
import { renderLeaseSeed } from "../../src/core/gateway/leases.ts";

const o = { network: "172.16.0", firstDynamic: 20, leaseTime: "12h", nowSeconds: 1_000_000 };

describe("renderLeaseSeed", () => {
  test("clients in the DHCP range with a MAC, once each, a whole lease from now; static, other networks and failed entries left out", () => {
    const text = renderLeaseSeed(
      [
        { dst: "172.16.0.42", lladdr: "AA:bb:cc:dd:ee:01", state: ["REACHABLE"] },
        { dst: "172.16.0.42", lladdr: "aa:bb:cc:dd:ee:09", state: ["STALE"] },
        { dst: "172.16.0.254", lladdr: "aa:bb:cc:dd:ee:02", state: ["STALE"] },
        { dst: "172.16.0.10", lladdr: "aa:bb:cc:dd:ee:03", state: ["REACHABLE"] }, // nat.conf's static octet
        { dst: "172.16.0.77", state: ["FAILED"] },
        { dst: "172.16.0.78", lladdr: "aa:bb:cc:dd:ee:04", state: ["INCOMPLETE"] },
        { dst: "10.1.0.50", lladdr: "aa:bb:cc:dd:ee:05", state: ["REACHABLE"] },
        { dst: "fe80::1", lladdr: "aa:bb:cc:dd:ee:06", state: ["REACHABLE"] },
      ],
      o,
    );
    expect(text).toBe("1043200 aa:bb:cc:dd:ee:01 172.16.0.42 * *\n1043200 aa:bb:cc:dd:ee:02 172.16.0.254 * *\n");
  });

  test("infinite leases never expire (0); no neighbours, no lines", () => {
    expect(renderLeaseSeed([{ dst: "172.16.0.20", lladdr: "aa:bb:cc:dd:ee:01" }], { ...o, leaseTime: "infinite" })).toBe("0 aa:bb:cc:dd:ee:01 172.16.0.20 * *\n");
    expect(renderLeaseSeed([], o)).toBe("");
  });
});
