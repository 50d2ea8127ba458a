// The routed pod's overlay identity (issue 13 §2): vxlan0's MAC and the DHCP client id must differ
// for two live pods with the same name and stay the same for the same pod. The goldens were
// computed independently (Python hashlib: sha256 of the seed, first 6 bytes, first octet & 0xfc | 2);
// a change to them changes every client's lease on upgrade.
import { describe, expect, test } from "bun:test";
import { CLIENT_ID_TEXT_MAX, planPodIdentity, planSharedStaticWarning } from "../../src/core/client/identity.ts";
import { parseClientFacts } from "../../src/core/client/facts.ts";
import { planClientNetwork } from "../../src/core/client/plan.ts";
import { matchNatEntry } from "../../src/core/natconf/match.ts";
import { clientMac } from "../../src/core/net/vxlan.ts";
import { dhcpIdentity } from "../../src/roles/client-init.ts";
import { testSettings } from "../helpers/settings.ts";

describe("planPodIdentity", () => {
  test("goldens: the seed is the name, eth0's IPv4 address and the VNI", () => {
    expect(planPodIdentity("db-0", ["10.244.1.17"], 42)).toEqual({
      name: "db-0",
      podIp: "10.244.1.17",
      mac: "b6:dd:9a:1e:d1:4a",
      clientId: "db-0@10.244.1.17",
      hostname: "db-0",
    });
    expect(planPodIdentity("db-0", ["10.244.2.9"], 42).mac).toBe("56:68:fb:bd:bd:cb");
    expect(planPodIdentity("web-0", ["198.18.0.10"], 42).mac).toBe("aa:61:af:7c:c1:9a");
  });

  test("two live pods with one name (a StatefulSet in two namespaces, one spec.hostname) differ in MAC and client id", () => {
    const a = planPodIdentity("db-0", ["10.244.1.17"], 42);
    const b = planPodIdentity("db-0", ["10.244.2.9"], 42);
    expect(a.mac).not.toBe(b.mac);
    expect(a.clientId).not.toBe(b.clientId);
  });

  test("the same pod (a restarted container, a re-run of client-init, the sidecar) gets the same identity", () => {
    expect(planPodIdentity("db-0", ["10.244.1.17"], 42)).toEqual(planPodIdentity("db-0", ["10.244.1.17"], 42));
  });

  test("the primary (first listed) IPv4 address is the seed; anything not IPv4 is passed over", () => {
    const id = planPodIdentity("db-0", ["", "fd00::5", "10.244.1.17", "10.244.1.18"], 42);
    expect(id.podIp).toBe("10.244.1.17");
    expect(id.mac).toBe("b6:dd:9a:1e:d1:4a");
  });

  test("locally administered unicast; differs per VNI", () => {
    for (const vni of [1, 42, 16777215]) {
      const m = planPodIdentity("db-0", ["10.244.1.17"], vni).mac;
      expect(m).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      const first = parseInt(m.slice(0, 2), 16);
      expect(first & 0x01).toBe(0);
      expect(first & 0x02).toBe(2);
    }
    expect(planPodIdentity("db-0", ["10.244.1.17"], 1).mac).not.toBe(planPodIdentity("db-0", ["10.244.1.17"], 2).mac);
  });

  test("long names the 63-character hostname limit cut to one prefix: distinct by the pod IP", () => {
    const cut = "a-very-long-deployment-name-that-the-kernel-cuts-at-sixty-three"; // 63 characters
    expect(cut.length).toBe(63);
    const ids = ["10.0.0.1", "10.0.0.2", "10.0.0.3"].map((ip) => planPodIdentity(cut, [ip], 42));
    expect(new Set(ids.map((i) => i.mac)).size).toBe(3);
    expect(new Set(ids.map((i) => i.clientId)).size).toBe(3);
  });

  test("the client id fits option 61 (254 bytes of text) and keeps the whole IP when the name is cut", () => {
    const long = "x".repeat(253);
    const id = planPodIdentity(long, ["255.255.255.255"], 42);
    expect(new TextEncoder().encode(id.clientId).length).toBe(CLIENT_ID_TEXT_MAX);
    expect(id.clientId.endsWith("@255.255.255.255")).toBe(true);
    // never cut inside a character
    const wide = planPodIdentity("é".repeat(200), ["10.0.0.1"], 42).clientId;
    expect(new TextEncoder().encode(wide).length).toBeLessThanOrEqual(CLIENT_ID_TEXT_MAX);
    expect(wide).toBe("é".repeat(Math.floor((CLIENT_ID_TEXT_MAX - "@10.0.0.1".length) / 2)) + "@10.0.0.1");
  });

  test("no IPv4 on eth0: the name alone (the old derivation), and a warning that says what that risks", () => {
    const id = planPodIdentity("db-0", [], 42);
    expect(id.mac).toBe(clientMac("db-0", 42));
    expect(id.mac).toBe("5e:7d:ba:70:8a:ab");
    expect(id.clientId).toBe("db-0");
    expect(id.warning).toContain("eth0 has no IPv4 address");
    expect(planPodIdentity("db-0", ["10.244.1.17"], 42).warning).toBeUndefined();
  });
});

describe("the client roles agree", () => {
  const facts = (ip: string) =>
    parseClientFacts(
      [{ ifindex: 2, ifname: "eth0", flags: ["UP"], mtu: 1500, operstate: "UP", addr_info: [{ family: "inet", local: ip, prefixlen: 24 }] }],
      [{ dst: "default", gateway: "198.18.0.1", dev: "eth0", flags: [] }],
      [],
    );
  const settings = { ...testSettings(), VXLAN_ID: 42 };

  test("vxlan0 is created with the MAC the DHCP client sends (client-init and the sidecar both use dhcpIdentity)", () => {
    for (const ip of ["198.18.0.10", "198.18.0.11"]) {
      const f = facts(ip);
      const plan = planClientNetwork(f, {
        podName: "db-0",
        vni: 42,
        port: 0,
        network: "172.16.0",
        vpnInterfaceMtu: undefined,
        notRoutedCidrs: [],
        dnsServers: [],
        gatewayPodIp: "198.18.0.2",
        kubernetesServiceHost: undefined,
      });
      const id = dhcpIdentity({ podName: "db-0", settings }, f);
      expect(plan.vxlan.mac).toBe(id.mac);
      expect(id).toEqual({ ifname: "vxlan0", mac: planPodIdentity("db-0", [ip], 42).mac, clientId: `db-0@${ip}`, hostname: "db-0" });
    }
  });
});

describe("planSharedStaticWarning", () => {
  const entries = [{ name: "web", octet: 5, ports: [], file: "/config/nat.conf", line: 3 }];

  test("a workload match warns that every replica gets the address", () => {
    const m = matchNatEntry(entries, "web-7d9f8b6c4d-x2x4z")!;
    expect(m.how).toBe("workload");
    const w = planSharedStaticWarning(m, "web-7d9f8b6c4d-x2x4z", "172.16.0.5");
    expect(w).toContain('nat.conf entry "web" (/config/nat.conf:3)');
    expect(w).toContain("every pod of it gets 172.16.0.5");
    expect(w).toContain("rolling update");
  });

  test("a match by the pod's own name does not; the first-dash rule has its own warning", () => {
    expect(planSharedStaticWarning(matchNatEntry(entries, "web")!, "web", "172.16.0.5")).toBeUndefined();
    const prefix = matchNatEntry(entries, "web-main")!;
    expect(prefix.how).toBe("prefix");
    expect(planSharedStaticWarning(prefix, "web-main", "172.16.0.5")).toBeUndefined();
  });
});
