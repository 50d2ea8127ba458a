// The firewall model: which rules exist for which settings, and the backend choice.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decideFirewallBackend, type BackendFacts } from "../../src/core/firewall/backend.ts";
import {
  canonicalCidr,
  countByPurpose,
  planBlockingFirewall,
  planFirewall,
  rulesOf,
  safeComment,
  summarizeFirewall,
  type FirewallNatEntry,
  type FirewallSettings,
  type FwRule,
} from "../../src/core/firewall/model.ts";
import { KILLSWITCH_NFLOG_GROUP } from "../../src/core/firewall/names.ts";
import { formatPrefix4, parsePrefix4 } from "../../src/core/net/ipv4.ts";
import { testSettings } from "../helpers/settings.ts";

const base: FirewallSettings = testSettings({ VPN_LOCAL_CIDRS: ["10.0.0.0/8", "192.168.0.0/16"], SNAT_IP: "" });
const web: FirewallNatEntry = { name: "web", octet: 10, ports: [{ proto: "tcp", port: 8080 }, { proto: "udp", port: 8081 }] };

const of = (rules: FwRule[], table: string, hook: string) => rules.filter((r) => r.table === table && r.hook === hook);
const comments = (rules: FwRule[]) => rules.map((r) => r.comment);

describe("planFirewall", () => {
  const clientInput = (p: ReturnType<typeof planFirewall>) =>
    of(p.rules, "filter", "input")
      .filter((r) => r.purpose === "client-input")
      .map((r) => [r.match.in, r.match.proto, r.match.dport ?? (r.match.icmpEchoRequest ? "echo" : "-"), r.families.join("")]);

  test("client input: VXLAN on eth0 (both families), DHCP, DNS udp+tcp, ping and the watch port on vxlan0 (IPv4)", () => {
    const p = planFirewall(base, []);
    expect(of(p.rules, "filter", "input").filter((r) => r.purpose === "client-input").every((r) => r.target.kind === "accept")).toBe(true);
    expect(clientInput(p)).toEqual([
      ["eth0", "udp", 8472, "46"],
      ["vxlan0", "udp", 67, "4"],
      ["vxlan0", "udp", 53, "4"],
      ["vxlan0", "tcp", 53, "4"],
      ["vxlan0", "icmp", "echo", "4"],
      ["vxlan0", "tcp", 4790, "4"], // GATEWAY_WATCH_PORT's default
    ]);
  });

  test("GATEWAY_WATCH_PORT: its accept follows the setting, with the kill switch on or off, and in the blocking ruleset; 0 means no rule", () => {
    const watch = (p: ReturnType<typeof planFirewall>) => p.rules.filter((r) => r.comment === "watch from clients").map((r) => [r.hook, r.match.in, r.match.proto, r.match.dport, r.families.join("")]);
    for (const killSwitch of [true, false]) {
      const s = { ...base, VPN_BLOCK_OTHER_TRAFFIC: killSwitch };
      expect(watch(planFirewall({ ...s, GATEWAY_WATCH_PORT: 5000 }, []))).toEqual([["input", "vxlan0", "tcp", 5000, "4"]]);
      expect(watch(planFirewall({ ...s, GATEWAY_WATCH_PORT: 0 }, []))).toEqual([]);
    }
    // Failing closed must not cut the clients' watch connections (the sidecar keeps running).
    expect(watch(planBlockingFirewall({ ...base, GATEWAY_WATCH_PORT: 5000 }))).toEqual([["input", "vxlan0", "tcp", 5000, "4"]]);
    expect(watch(planBlockingFirewall({ ...base, GATEWAY_WATCH_PORT: 0 }))).toEqual([]);
    expect(clientInput(planFirewall({ ...base, GATEWAY_WATCH_PORT: 0 }, []))).toHaveLength(5);
  });

  test("VXLAN_PORT 0 means the kernel's 8472; an explicit port is used as is (never port 0 rules)", () => {
    expect(planFirewall(base, []).rules.some((r) => r.match.dport === 0)).toBe(false);
    const p = planFirewall({ ...base, VXLAN_PORT: 4789 }, []);
    expect(of(p.rules, "filter", "input")[0]!.match.dport).toBe(4789);
    expect(p.rules.filter((r) => r.comment === "vxlan to client pods")[0]!.match.dport).toBe(4789);
  });

  test("kill switch: FORWARD and OUTPUT end in DROP in our chains; exceptions by interface name", () => {
    const p = planFirewall(base, [web]);
    expect(p.killSwitch).toBe(true);
    const fwd4 = of(rulesOf(p, 4), "filter", "forward");
    expect(comments(fwd4)).toEqual([
      "replies to clients",
      "port forward web tcp/8080",
      "port forward web udp/8081",
      "nothing else in from the vpn",
      "out through the vpn",
      "to VPN_LOCAL_CIDRS",
      "to VPN_LOCAL_CIDRS",
      "kill switch",
    ]);
    expect(fwd4.at(-1)!.target.kind).toBe("drop");
    expect(fwd4.at(-1)!.match).toEqual({});
    // Replies are accepted only towards the overlay: an established client connection must
    // not continue out of eth0 when the VPN route disappears.
    expect(fwd4[0]!.match).toEqual({ out: "vxlan0", ctState: ["related", "established"] });
    const out4 = of(rulesOf(p, 4), "filter", "output");
    expect(out4.map((r) => [r.match.out ?? r.match.dst ?? `${r.match.proto}/${r.match.dport}`, r.target.kind])).toEqual([
      ["lo", "accept"],
      ["tun0", "accept"],
      ["vxlan0", "accept"],
      ["eth0", "accept"], // VXLAN to client pods
      ["eth0", "accept"], // replies only
      ["10.0.0.0/8", "accept"],
      ["192.168.0.0/16", "accept"],
      ["udp/443", "accept"],
      ["tcp/443", "accept"],
      ["eth0", "nflog"], // the drop report (issue 13 §5): what eth0 is about to drop, to the sidecar
      ["undefined/undefined", "drop"],
    ]);
    expect(out4[4]!.match).toEqual({ out: "eth0", ctState: ["established"], ctReply: true });
    expect(out4.at(-2)!.target).toEqual({ kind: "nflog", group: KILLSWITCH_NFLOG_GROUP, perSecond: 10 });
    expect(out4.at(-2)!.families).toEqual([4, 6]);
    // No rule anywhere matches on an address of the VPN interface.
    expect(p.rules.every((r) => r.match.src === undefined || r.match.src === "172.16.0.0/24")).toBe(true);
  });

  test("kill switch off: no DROP anywhere, OUTPUT chain empty, VPN ingress still rejected", () => {
    const p = planFirewall({ ...base, VPN_BLOCK_OTHER_TRAFFIC: false }, [web]);
    expect(p.killSwitch).toBe(false);
    expect(p.rules.filter((r) => r.target.kind === "drop" && r.purpose !== "ipv6-block")).toEqual([]);
    expect(of(p.rules, "filter", "output")).toEqual([]);
    expect(p.rules.filter((r) => r.purpose === "vpn-ingress").map((r) => r.target.kind)).toEqual(["reject"]);
  });

  test("no VPN interface: plain NAT gateway, no port forwards, warnings for settings without effect", () => {
    const p = planFirewall({ ...base, VPN_INTERFACE: "", SNAT_IP: "1.2.3.4" }, [web]);
    expect(p.killSwitch).toBe(false);
    expect(p.portForwards).toEqual([]);
    expect(p.rules.filter((r) => r.purpose === "port-forward" || r.purpose === "vpn-ingress" || r.purpose === "kill-switch")).toEqual([]);
    expect(p.nat).toEqual({ kind: "masquerade" });
    expect(p.warnings).toHaveLength(3);
    expect(p.warnings.join("\n")).toContain("VPN_BLOCK_OTHER_TRAFFIC has no effect without VPN_INTERFACE");
  });

  test("NAT: MASQUERADE of the overlay only, never towards vxlan0; SNAT_IP adds SNAT out of the VPN first", () => {
    const m = of(planFirewall(base, []).rules, "nat", "postrouting");
    expect(m.map((r) => [r.match, r.target])).toEqual([[{ src: "172.16.0.0/24", notOut: "vxlan0" }, { kind: "masquerade" }]]);
    const s = planFirewall({ ...base, SNAT_IP: "198.19.0.2" }, []);
    expect(of(s.rules, "nat", "postrouting").map((r) => r.target.kind)).toEqual(["snat", "masquerade"]);
    expect(of(s.rules, "nat", "postrouting")[0]!.match).toEqual({ src: "172.16.0.0/24", out: "tun0" });
    expect(s.nat).toEqual({ kind: "snat", to: "198.19.0.2" });
  });

  test("port forwards: DNAT on the VPN interface to <net>.<octet>:<port> plus a FORWARD accept limited to DNATed connections", () => {
    const p = planFirewall({ ...base, VXLAN_IP_NETWORK: "10.99.1" }, [web, { name: "quiet", octet: 11, ports: [] }]);
    expect(p.portForwards).toEqual([
      { name: "web", address: "10.99.1.10", proto: "tcp", port: 8080 },
      { name: "web", address: "10.99.1.10", proto: "udp", port: 8081 },
    ]);
    const dnat = of(p.rules, "nat", "prerouting");
    expect(dnat.map((r) => [r.match, r.target])).toEqual([
      [{ in: "tun0", proto: "tcp", dport: 8080 }, { kind: "dnat", to: "10.99.1.10", port: 8080 }],
      [{ in: "tun0", proto: "udp", dport: 8081 }, { kind: "dnat", to: "10.99.1.10", port: 8081 }],
    ]);
    const acc = p.rules.filter((r) => r.purpose === "port-forward" && r.table === "filter");
    expect(acc[0]!.match).toEqual({ dst: "10.99.1.10/32", in: "tun0", out: "vxlan0", proto: "tcp", dport: 8080, ctDnat: true });
  });

  test("MSS clamp on forwarded SYNs, in mangle", () => {
    const r = planFirewall(base, []).rules.filter((x) => x.purpose === "mss-clamp");
    expect(r).toEqual([{ table: "mangle", hook: "forward", families: [4], match: { proto: "tcp", tcpSyn: true }, target: { kind: "clamp-mss" }, purpose: "mss-clamp", comment: "clamp mss to path mtu" }]);
  });

  test("IPv6: overlay blocked both ways before anything else; IPv6 local CIDRs land in the IPv6 rules only", () => {
    const p = planFirewall({ ...base, VPN_LOCAL_CIDRS: ["10.0.0.0/8", "fd00::/8"] }, []);
    const f6 = of(rulesOf(p, 6), "filter", "forward");
    expect(f6.slice(0, 2).map((r) => [r.match, r.target.kind])).toEqual([[{ in: "vxlan0" }, "drop"], [{ out: "vxlan0" }, "drop"]]);
    expect(rulesOf(p, 6).some((r) => r.match.dst === "10.0.0.0/8")).toBe(false);
    expect(rulesOf(p, 4).some((r) => r.match.dst === "fd00::/8")).toBe(false);
    expect(rulesOf(p, 6).filter((r) => r.match.dst === "fd00::/8")).toHaveLength(2); // forward + output
    expect(rulesOf(p, 6).some((r) => r.table !== "filter")).toBe(false);
  });

  test("IPv6 dual stack (issue 13 §6): ND types 133-136 (hop limit 255) and MLDv2 reports (143, hop limit 1) may leave eth0, IPv6 only, before the VPN_LOCAL_CIDRS accepts and the drop", () => {
    const p = planFirewall({ ...base, VPN_LOCAL_CIDRS: ["10.0.0.0/8", "fd00:18::/48"] }, []);
    const out6 = of(rulesOf(p, 6), "filter", "output");
    const nd = out6.filter((r) => r.match.proto === "icmpv6");
    expect(nd.map((r) => [r.match.out, r.match.icmpv6Type, r.match.hopLimit, r.target.kind, r.families])).toEqual([
      ["eth0", 133, 255, "accept", [6]],
      ["eth0", 134, 255, "accept", [6]],
      ["eth0", 135, 255, "accept", [6]],
      ["eth0", 136, 255, "accept", [6]],
      ["eth0", 143, 1, "accept", [6]],
    ]);
    expect(rulesOf(p, 4).some((r) => r.match.proto === "icmpv6")).toBe(false);
    const at = (pred: (r: (typeof out6)[number]) => boolean) => out6.findIndex(pred);
    expect(at((r) => r.match.proto === "icmpv6")).toBeLessThan(at((r) => r.match.dst === "fd00:18::/48"));
    expect(at((r) => r.match.dst === "fd00:18::/48")).toBeLessThan(at((r) => r.target.kind === "drop"));
    expect(out6.at(-1)!.target.kind).toBe("drop");
    // Only ND/MLD: no ICMPv6 echo, no other type, and nothing with the kill switch off.
    expect(new Set(nd.map((r) => r.match.icmpv6Type))).toEqual(new Set([133, 134, 135, 136, 143]));
    expect(planFirewall({ ...base, VPN_BLOCK_OTHER_TRAFFIC: false }, []).rules.some((r) => r.match.proto === "icmpv6")).toBe(false);
  });

  test("several VPN transport ports: udp and tcp each", () => {
    const p = planFirewall({ ...base, VPN_TRAFFIC_PORT: [1194, 51820] }, []);
    expect(p.rules.filter((r) => r.comment === "vpn transport").map((r) => `${r.match.proto}/${r.match.dport}`)).toEqual(["udp/1194", "tcp/1194", "udp/51820", "tcp/51820"]);
  });

  test("the plan is deterministic and counts rules by purpose", () => {
    expect(planFirewall(base, [web])).toEqual(planFirewall(base, [web]));
    expect(countByPurpose(planFirewall(base, [web]))).toEqual({
      "client-input": 6, "mss-clamp": 1, nat: 1, "port-forward": 4, replies: 3, "vpn-ingress": 1, "kill-switch": 19, "ipv6-block": 2,
    });
    expect(summarizeFirewall(planFirewall(base, [web]))).toEqual([
      "rules by purpose: client-input 6, mss-clamp 1, nat 1, port-forward 4, replies 3, vpn-ingress 1, kill-switch 19, ipv6-block 2",
      "nat: MASQUERADE",
      "kill switch: on (traffic leaves only through tun0)",
      "port forwards: tun0:tcp/8080 -> 172.16.0.10 (web), tun0:udp/8081 -> 172.16.0.10 (web)",
    ]);
  });

  test("comments are reduced to a safe alphabet", () => {
    expect(safeComment('a"b\\c\'d`$(x) ok/1:2,3=4+5-6.7')).toBe("a_b_c_d___x_ ok/1:2,3=4+5-6.7");
    const p = planFirewall(base, [{ name: 'evil"name', octet: 5, ports: [{ proto: "tcp", port: 1 }] }]);
    expect(p.rules.every((r) => !/["\\']/.test(r.comment))).toBe(true);
  });
});

describe("planBlockingFirewall (fail closed)", () => {
  test("forwarding dropped, own output to loopback, the overlay, the VXLAN underlay and VPN_LOCAL_CIDRS only (dnsmasq keeps serving), client input kept", () => {
    const p = planBlockingFirewall(base);
    expect(p.killSwitch).toBe(true);
    expect(of(p.rules, "filter", "forward").map((r) => r.target.kind)).toEqual(["drop"]);
    expect(of(p.rules, "filter", "output").map((r) => [r.match, r.target.kind])).toEqual([
      [{ out: "lo" }, "accept"],
      [{ out: "vxlan0" }, "accept"],
      [{ out: "eth0", proto: "udp", dport: 8472 }, "accept"],
      [{ out: "eth0", ctState: ["established"], ctReply: true }, "accept"],
      [{ out: "eth0", proto: "icmpv6", icmpv6Type: 133, hopLimit: 255 }, "accept"],
      [{ out: "eth0", proto: "icmpv6", icmpv6Type: 134, hopLimit: 255 }, "accept"],
      [{ out: "eth0", proto: "icmpv6", icmpv6Type: 135, hopLimit: 255 }, "accept"],
      [{ out: "eth0", proto: "icmpv6", icmpv6Type: 136, hopLimit: 255 }, "accept"],
      [{ out: "eth0", proto: "icmpv6", icmpv6Type: 143, hopLimit: 1 }, "accept"],
      [{ dst: "10.0.0.0/8" }, "accept"],
      [{ dst: "192.168.0.0/16" }, "accept"],
      [{}, "drop"],
    ]);
    expect(of(p.rules, "filter", "input")).toHaveLength(6); // the client-input accepts, the watch port's among them
    expect(p.rules.some((r) => r.table === "nat")).toBe(false);
  });
});

describe("canonicalCidr", () => {
  test.each([
    ["10.1.2.3/8", "10.0.0.0/8"],
    ["10.1.2.3", "10.1.2.3/32"],
    ["0.0.0.0/0", "0.0.0.0/0"],
    ["192.168.255.255/17", "192.168.128.0/17"],
    ["FD00::/8", "fd00::/8"],
  ])("%s -> %s", (a, b) => expect(canonicalCidr(a)).toBe(b));
  test("garbage throws", () => {
    expect(() => canonicalCidr("10.0.0/8")).toThrow(/invalid IPv4 CIDR/);
    expect(() => canonicalCidr("10.0.0.0/33")).toThrow(/invalid IPv4 CIDR/);
    expect(() => canonicalCidr("256.0.0.1/32")).toThrow(/invalid IPv4 CIDR/);
  });
  test("property: the /32 shortcut answers as parsing and printing would (leading zeros, octets past 255)", () => {
    const octet = fc.oneof(fc.integer({ min: 0, max: 255 }).map(String), fc.integer({ min: 0, max: 999 }).map((n) => String(n).padStart(3, "0")));
    fc.assert(
      fc.property(fc.tuple(octet, octet, octet, octet), (q) => {
        const host = `${q.join(".")}/32`;
        const p = parsePrefix4(host);
        if (p) expect(canonicalCidr(host)).toBe(formatPrefix4(p));
        else expect(() => canonicalCidr(host)).toThrow(/invalid IPv4 CIDR/);
      }),
      { numRuns: 500 },
    );
  });
});

describe("decideFirewallBackend", () => {
  const all: BackendFacts = { available: ["iptables-nft", "iptables-legacy", "nft"], ours: [], foreignLegacy: false, foreignNft: false };
  test("an explicit FIREWALL_BACKEND wins over everything", () => {
    expect(decideFirewallBackend("nft", true, { ...all, ours: ["iptables-legacy"], foreignLegacy: true }).backend).toBe("nft");
  });
  test("IPTABLES_NFT=yes means the nf_tables backend of iptables", () => {
    expect(decideFirewallBackend("auto", true, { ...all, foreignLegacy: true })).toEqual({ backend: "iptables-nft", why: "IPTABLES_NFT=yes" });
  });
  test("where our rules already are (re-run, sidecar)", () => {
    expect(decideFirewallBackend("auto", false, { ...all, ours: ["iptables-legacy"] }).backend).toBe("iptables-legacy");
    expect(decideFirewallBackend("auto", false, { ...all, ours: ["nft"] }).backend).toBe("nft");
  });
  test("legacy when another container uses legacy and nothing uses iptables-nft", () => {
    expect(decideFirewallBackend("auto", false, { ...all, foreignLegacy: true }).backend).toBe("iptables-legacy");
    expect(decideFirewallBackend("auto", false, { ...all, foreignLegacy: true, foreignNft: true }).backend).toBe("iptables-nft");
  });
  test("defaults: iptables-nft, else nft, else legacy", () => {
    expect(decideFirewallBackend("auto", false, all).backend).toBe("iptables-nft");
    expect(decideFirewallBackend("auto", false, { ...all, available: ["nft", "iptables-legacy"] }).backend).toBe("nft");
    expect(decideFirewallBackend("auto", false, { ...all, available: ["iptables-legacy"] }).backend).toBe("iptables-legacy");
  });
  test("missing tools are an error naming them", () => {
    expect(() => decideFirewallBackend("auto", false, { ...all, available: [] })).toThrow(/no firewall tools found/);
    expect(() => decideFirewallBackend("iptables-legacy", false, { ...all, available: ["nft"] })).toThrow(
      "firewall backend iptables-legacy (FIREWALL_BACKEND=iptables-legacy) is not usable: iptables-legacy-save/iptables-legacy-restore not found (available: nft)",
    );
  });
});
