// IPv6 CIDRs in NOT_ROUTED_TO_GATEWAY_CIDRS (issue 13 §3): accepted by the settings, kept on eth0
// via the pod's IPv6 gateway by the client's planner (before the IPv6 default goes), remembered
// across re-runs by our route protocol, and removed when no longer listed.
import { describe, expect, test } from "bun:test";
import { ROUTE_PROTO } from "../../src/core/client/constants.ts";
import { parseClientFacts, type ClientFacts } from "../../src/core/client/facts.ts";
import { findOriginalGateway6, planClientNetwork, stateChanges, type ClientNetworkInput } from "../../src/core/client/plan.ts";
import { simulateChanges } from "../../src/core/client/simulate.ts";
import { formatChange } from "../../src/core/net/change.ts";
import type { IpRoute } from "../../src/core/net/ip-json.ts";
import { parseCidr6, parseCidrList46 } from "../../src/core/settings/values.ts";
import { validateSettings, type RawSetting } from "../../src/core/settings/schema.ts";

function pod(v6Default: boolean): ClientFacts {
  const routes6: IpRoute[] = v6Default ? [{ dst: "default", gateway: "fe80::1", dev: "eth0", metric: 1024, flags: [] }] : [];
  return parseClientFacts(
    [{ ifindex: 2, ifname: "eth0", flags: ["UP"], mtu: 1500, operstate: "UP", addr_info: [{ family: "inet", local: "198.18.0.10", prefixlen: 24 }] }],
    [
      { dst: "default", gateway: "198.18.0.1", dev: "eth0", flags: [] },
      { dst: "198.18.0.0/24", dev: "eth0", protocol: "kernel", scope: "link", flags: [] },
    ],
    routes6,
  );
}

function input(cidrs: string[]): ClientNetworkInput {
  return {
    podName: "web-0",
    vni: 42,
    port: 0,
    network: "172.16.0",
    vpnInterfaceMtu: undefined,
    notRoutedCidrs: cidrs,
    dnsServers: ["198.18.1.10", "fd00:10::a"],
    gatewayPodIp: "198.18.0.2",
    kubernetesServiceHost: undefined,
  };
}

describe("settings", () => {
  test("IPv6 CIDRs are read, canonical (RFC 5952), host bits cleared with a warning, a bare address is /128", () => {
    expect(parseCidr6("FD00:99:0:0::/64")).toEqual({ ok: true, value: "fd00:99::/64" });
    expect(parseCidr6("fd00:99::1/64")).toEqual({ ok: true, value: "fd00:99::/64", warnings: ["fd00:99::1/64 has host bits set; using fd00:99::/64"] });
    expect(parseCidr6("fd00::5")).toEqual({ ok: true, value: "fd00::5/128" });
    expect(parseCidr6("fd00::/129").ok).toBe(false);
    expect(parseCidr6("fd00::/064").ok).toBe(false);
    expect(parseCidr6("fd00:::1/64").ok).toBe(false);
    expect(parseCidrList46("10.0.0.0/8 fd00:99::/64, fd00:99::/64")).toEqual({ ok: true, value: ["10.0.0.0/8", "fd00:99::/64"], warnings: ["fd00:99::/64 is listed twice; using it once"] });
  });

  test("NOT_ROUTED_TO_GATEWAY_CIDRS takes them; all of IPv6 is refused as all of IPv4 is; so does VPN_LOCAL_CIDRS (issue 13 §3, the gateway)", () => {
    const v = (k: string, value: string) => validateSettings({ [k]: { value, file: "/config/settings.sh", line: 3, source: { kind: "file", file: "/config/settings.sh", line: 3 } } } as Record<string, RawSetting>);
    expect(v("NOT_ROUTED_TO_GATEWAY_CIDRS", "10.0.0.0/8 fd00:99::/64").values.NOT_ROUTED_TO_GATEWAY_CIDRS).toEqual(["10.0.0.0/8", "fd00:99::/64"]);
    const msg = (k: string, value: string) => v(k, value).issues.filter((i) => i.key === k).map((i) => i.message).join("\n");
    expect(msg("NOT_ROUTED_TO_GATEWAY_CIDRS", "10.0.0.0/8 fd00:99::/64")).toBe("");
    expect(msg("NOT_ROUTED_TO_GATEWAY_CIDRS", "fd00::/8 ::/0")).toContain("::/0 is all of IPv6");
    expect(msg("VPN_LOCAL_CIDRS", "fd00:99::/64")).toBe("");
    expect(msg("VPN_LOCAL_CIDRS", "fd00:99::/64 ::/0")).toContain("::/0 is all of IPv6");
  });
});

describe("planClientNetwork with IPv6 CIDRs", () => {
  test("kept via eth0's IPv6 gateway, added before the IPv6 default is deleted; an IPv6 DNS server is still only reported", () => {
    const p = planClientNetwork(pod(true), input(["10.0.0.0/8", "fd00:99::/64"]));
    const lines = p.changes.map(formatChange);
    const add = lines.findIndex((l) => l.includes("fd00:99::/64"));
    const del = lines.findIndex((l) => l.startsWith("route del ::/0"));
    expect(lines[add]).toBe(`route add fd00:99::/64 via fe80::1 dev eth0 proto ${ROUTE_PROTO}`);
    expect(add).toBeGreaterThanOrEqual(0);
    expect(del).toBeGreaterThan(add);
    expect(p.skipped.map((s) => s.target)).toContain("fd00:10::a");
    expect(p.skipped.map((s) => s.target)).not.toContain("fd00:99::/64");
    expect(p.pins.map((r) => r.dst)).toContain("fd00:99::/64");
  });

  test("applied, then planned again: nothing left; the gateway is found again from our route once the default is gone", () => {
    const f1 = simulateChanges(pod(true), planClientNetwork(pod(true), input(["fd00:99::/64"])).changes);
    expect(f1.defaults6).toEqual([]);
    expect(f1.ours6.map((r) => [r.dst, r.gateway, r.dev])).toEqual([["fd00:99::/64", "fe80::1", "eth0"]]);
    expect(findOriginalGateway6(f1)).toMatchObject({ via: "fe80::1", source: "routes of an earlier run" });
    expect(stateChanges(planClientNetwork(f1, input(["fd00:99::/64"])).changes)).toEqual([]);
  });

  test("a CIDR no longer listed is deleted; another one is added via the remembered gateway", () => {
    const f1 = simulateChanges(pod(true), planClientNetwork(pod(true), input(["fd00:99::/64"])).changes);
    const lines = planClientNetwork(f1, input(["fd00:aa::/48"])).changes.map(formatChange);
    expect(lines).toContain(`route add fd00:aa::/48 via fe80::1 dev eth0 proto ${ROUTE_PROTO}`);
    expect(lines.some((l) => l.startsWith("route del fd00:99::/64 via fe80::1 dev eth0"))).toBe(true);
  });

  test("a pod without IPv6: nothing to keep, reported with the reason", () => {
    const p = planClientNetwork(pod(false), input(["fd00:99::/64"]));
    expect(p.changes.map(formatChange).some((l) => l.includes("fd00:99"))).toBe(false);
    expect(p.skipped.find((s) => s.target === "fd00:99::/64")?.why).toContain("no IPv6 default route on eth0");
  });
});
