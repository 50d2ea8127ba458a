// Native nftables: the script (golden), the port forwards as sets, the comment tags, and the
// comparison of a table read back with `nft -j` (CAPTURED: nft 1.0.6's listing after applying
// the script for `base` with web and mail, each rule's expressions cut down to their kind, the
// only part of them the parser reads).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { planFirewall, type FirewallNatEntry, type FirewallSettings } from "../../src/core/firewall/model.ts";
import { diffNft, nftComment, parseNftTableJson, planNftTable, renderNftRule, renderNftScript, renderNftStatement } from "../../src/core/firewall/render-nft.ts";
import { testSettings } from "../helpers/settings.ts";

const base: FirewallSettings = testSettings({ VPN_LOCAL_CIDRS: ["10.0.0.0/8"], SNAT_IP: "198.19.0.2" });
const web: FirewallNatEntry = { name: "web", octet: 10, ports: [{ proto: "tcp", port: 8080 }] };
const web2: FirewallNatEntry = { name: "web", octet: 10, ports: [{ proto: "tcp", port: 8080 }, { proto: "udp", port: 8081 }] };
const mail: FirewallNatEntry = { name: "mail", octet: 11, ports: [{ proto: "tcp", port: 25 }] };

const GOLDEN = `table inet pod_gateway
delete table inet pod_gateway
table inet pod_gateway {
	set pf_fwd_tcp {
		type ipv4_addr . inet_service
		elements = { 172.16.0.10 . 8080 }
	}

	map pf_dnat_tcp {
		type inet_service : ipv4_addr
		elements = { 8080 : 172.16.0.10 }
	}

	chain input {
		type filter hook input priority filter - 10; policy accept;
		iifname "eth0" udp dport 8472 accept comment "vxlan from client pods #9400e5dc"
		meta nfproto ipv4 iifname "vxlan0" udp dport 67 accept comment "dhcp from clients #aa5a6c0e"
		meta nfproto ipv4 iifname "vxlan0" udp dport 53 accept comment "dns from clients #d6955a4f"
		meta nfproto ipv4 iifname "vxlan0" tcp dport 53 accept comment "dns from clients #6f0409b3"
		meta nfproto ipv4 iifname "vxlan0" icmp type echo-request accept comment "ping from clients #636d2a67"
		meta nfproto ipv4 iifname "vxlan0" tcp dport 4790 accept comment "watch from clients #6ad5ca47"
		ct state established,related accept comment "replies to the gateway #8ec0115e"
	}

	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		meta nfproto ipv4 tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu comment "clamp mss to path mtu #9c80e8dd"
		meta nfproto ipv6 iifname "vxlan0" counter drop comment "no ipv6 from the overlay #2555c29e"
		meta nfproto ipv6 oifname "vxlan0" counter drop comment "no ipv6 to the overlay #8fde2ca0"
		meta nfproto ipv4 oifname "vxlan0" ct state established,related accept comment "replies to clients #48cc03ac"
		iifname "tun0" oifname "vxlan0" ip daddr . tcp dport @pf_fwd_tcp ct status dnat accept comment "port forwards tcp #ada332d7"
		iifname "tun0" reject comment "nothing else in from the vpn #7e81664e"
		oifname "tun0" accept comment "out through the vpn #0af9eedf"
		ip daddr 10.0.0.0/8 accept comment "to VPN_LOCAL_CIDRS #0417d5bf"
		counter drop comment "kill switch #46516870"
	}

	chain output {
		type filter hook output priority filter - 10; policy accept;
		oifname "lo" accept comment "loopback #25e425fb"
		oifname "tun0" accept comment "out through the vpn #0af9eedf"
		oifname "vxlan0" accept comment "to clients #82eaa451"
		oifname "eth0" udp dport 8472 accept comment "vxlan to client pods #a543c9ba"
		oifname "eth0" ct state established ct direction reply accept comment "replies to connections opened to the gateway #5307fc7d"
		meta nfproto ipv6 oifname "eth0" icmpv6 type nd-router-solicit ip6 hoplimit 255 accept comment "ipv6 router solicitation on eth0 #31628d3f"
		meta nfproto ipv6 oifname "eth0" icmpv6 type nd-router-advert ip6 hoplimit 255 accept comment "ipv6 router advertisement on eth0 #8bbab888"
		meta nfproto ipv6 oifname "eth0" icmpv6 type nd-neighbor-solicit ip6 hoplimit 255 accept comment "ipv6 neighbour solicitation on eth0 #eeaad5ec"
		meta nfproto ipv6 oifname "eth0" icmpv6 type nd-neighbor-advert ip6 hoplimit 255 accept comment "ipv6 neighbour advertisement on eth0 #94dbf38d"
		meta nfproto ipv6 oifname "eth0" icmpv6 type mld2-listener-report ip6 hoplimit 1 accept comment "ipv6 mldv2 report on eth0 #7a28989f"
		ip daddr 10.0.0.0/8 accept comment "to VPN_LOCAL_CIDRS #0417d5bf"
		udp dport 443 accept comment "vpn transport #510a878a"
		tcp dport 443 accept comment "vpn transport #de144f16"
		oifname "eth0" limit rate 10/second log group 4201 comment "drop report #708a0d00"
		counter drop comment "kill switch #46516870"
	}

	chain prerouting {
		type nat hook prerouting priority dstnat - 10; policy accept;
		meta nfproto ipv4 iifname "tun0" dnat ip to tcp dport map @pf_dnat_tcp comment "port forwards tcp #af1ba1c4"
	}

	chain postrouting {
		type nat hook postrouting priority srcnat - 10; policy accept;
		oifname "tun0" ip saddr 172.16.0.0/24 snat ip to 198.19.0.2 comment "snat out of the vpn #8b40c85c"
		oifname != "vxlan0" ip saddr 172.16.0.0/24 masquerade comment "masquerade the overlay #eb18ee74"
	}
}
`;

const CAPTURED = `{"nftables":[
{"metainfo":{"version":"1.0.6","release_name":"Lester Gooch #5","json_schema_version":1}},
{"table":{"family":"inet","name":"pod_gateway","handle":17}},
{"set":{"family":"inet","name":"pf_fwd_tcp","table":"pod_gateway","type":["ipv4_addr","inet_service"],"handle":6,"elem":[{"concat":["172.16.0.11",25]},{"concat":["172.16.0.10",8080]}]}},
{"set":{"family":"inet","name":"pf_fwd_udp","table":"pod_gateway","type":["ipv4_addr","inet_service"],"handle":7,"elem":[{"concat":["172.16.0.10",8081]}]}},
{"map":{"family":"inet","name":"pf_dnat_tcp","table":"pod_gateway","type":"inet_service","handle":8,"map":"ipv4_addr","elem":[[25,"172.16.0.11"],[8080,"172.16.0.10"]]}},
{"map":{"family":"inet","name":"pf_dnat_udp","table":"pod_gateway","type":"inet_service","handle":9,"map":"ipv4_addr","elem":[[8081,"172.16.0.10"]]}},
{"chain":{"family":"inet","table":"pod_gateway","name":"input","handle":1,"type":"filter","hook":"input","prio":-10,"policy":"accept"}},
{"chain":{"family":"inet","table":"pod_gateway","name":"forward","handle":2,"type":"filter","hook":"forward","prio":-10,"policy":"accept"}},
{"chain":{"family":"inet","table":"pod_gateway","name":"output","handle":3,"type":"filter","hook":"output","prio":-10,"policy":"accept"}},
{"chain":{"family":"inet","table":"pod_gateway","name":"prerouting","handle":4,"type":"nat","hook":"prerouting","prio":-110,"policy":"accept"}},
{"chain":{"family":"inet","table":"pod_gateway","name":"postrouting","handle":5,"type":"nat","hook":"postrouting","prio":90,"policy":"accept"}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"input","handle":10,"comment":"vxlan from client pods #9400e5dc","expr":[{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"input","handle":11,"comment":"dhcp from clients #aa5a6c0e","expr":[{"match":null},{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"input","handle":12,"comment":"dns from clients #d6955a4f","expr":[{"match":null},{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"input","handle":13,"comment":"dns from clients #6f0409b3","expr":[{"match":null},{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"input","handle":14,"comment":"ping from clients #636d2a67","expr":[{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"input","handle":45,"comment":"watch from clients #6ad5ca47","expr":[{"match":null},{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"input","handle":15,"comment":"replies to the gateway #8ec0115e","expr":[{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"forward","handle":16,"comment":"clamp mss to path mtu #9c80e8dd","expr":[{"match":null},{"match":null},{"mangle":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"forward","handle":17,"comment":"no ipv6 from the overlay #2555c29e","expr":[{"match":null},{"match":null},{"counter":null},{"drop":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"forward","handle":18,"comment":"no ipv6 to the overlay #8fde2ca0","expr":[{"match":null},{"match":null},{"counter":null},{"drop":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"forward","handle":19,"comment":"replies to clients #48cc03ac","expr":[{"match":null},{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"forward","handle":20,"comment":"port forwards tcp #ada332d7","expr":[{"match":null},{"match":null},{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"forward","handle":21,"comment":"port forwards udp #bd5680ef","expr":[{"match":null},{"match":null},{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"forward","handle":22,"comment":"nothing else in from the vpn #7e81664e","expr":[{"match":null},{"reject":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"forward","handle":23,"comment":"out through the vpn #0af9eedf","expr":[{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"forward","handle":24,"comment":"to VPN_LOCAL_CIDRS #0417d5bf","expr":[{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"forward","handle":25,"comment":"kill switch #46516870","expr":[{"counter":null},{"drop":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":26,"comment":"loopback #25e425fb","expr":[{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":27,"comment":"out through the vpn #0af9eedf","expr":[{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":28,"comment":"to clients #82eaa451","expr":[{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":29,"comment":"vxlan to client pods #a543c9ba","expr":[{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":30,"comment":"replies to connections opened to the gateway #5307fc7d","expr":[{"match":null},{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":40,"comment":"ipv6 router solicitation on eth0 #31628d3f","expr":[{"match":null},{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":41,"comment":"ipv6 router advertisement on eth0 #8bbab888","expr":[{"match":null},{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":42,"comment":"ipv6 neighbour solicitation on eth0 #eeaad5ec","expr":[{"match":null},{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":43,"comment":"ipv6 neighbour advertisement on eth0 #94dbf38d","expr":[{"match":null},{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":44,"comment":"ipv6 mldv2 report on eth0 #7a28989f","expr":[{"match":null},{"match":null},{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":31,"comment":"to VPN_LOCAL_CIDRS #0417d5bf","expr":[{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":32,"comment":"vpn transport #510a878a","expr":[{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":33,"comment":"vpn transport #de144f16","expr":[{"match":null},{"accept":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":39,"comment":"drop report #708a0d00","expr":[{"match":null},{"limit":null},{"log":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"output","handle":34,"comment":"kill switch #46516870","expr":[{"counter":null},{"drop":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"prerouting","handle":35,"comment":"port forwards tcp #af1ba1c4","expr":[{"match":null},{"match":null},{"dnat":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"prerouting","handle":36,"comment":"port forwards udp #7ce13a40","expr":[{"match":null},{"match":null},{"dnat":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"postrouting","handle":37,"comment":"snat out of the vpn #8b40c85c","expr":[{"match":null},{"match":null},{"snat":null}]}},
{"rule":{"family":"inet","table":"pod_gateway","chain":"postrouting","handle":38,"comment":"masquerade the overlay #eb18ee74","expr":[{"match":null},{"match":null},{"masquerade":null}]}}
]}`;

/** A table made by an earlier version (one rule per port forward, comments without tags). */
const EARLIER = readFileSync(join(import.meta.dir, "../fixtures/gateway/nft-list-table.json"), "utf8");

describe("renderNftScript", () => {
  test("golden: one transaction that creates, deletes and re-creates our table whole; port forwards as sets", () => {
    expect(renderNftScript(planFirewall(base, [web]))).toBe(GOLDEN);
  });

  test("kill switch off and no VPN: every chain still exists, none drops, no sets", () => {
    const text = renderNftScript(planFirewall({ ...base, VPN_INTERFACE: "", VPN_BLOCK_OTHER_TRAFFIC: false }, [web]));
    for (const c of ["input", "forward", "output", "prerouting", "postrouting"]) expect(text).toContain(`\tchain ${c} {`);
    expect(text.split("\n").filter((l) => l.includes("drop")).every((l) => l.includes("ipv6"))).toBe(true);
    expect(text).not.toContain("dnat");
    expect(text).not.toMatch(/\t(set|map) /);
  });

  test("rules touching only one family say so unless an address implies it", () => {
    const p = planFirewall({ ...base, VPN_LOCAL_CIDRS: ["fd00::/8"] }, []);
    const v6 = p.rules.filter((r) => r.match.dst === "fd00::/8").map(renderNftRule);
    expect(v6).toEqual(['ip6 daddr fd00::/8 accept comment "to VPN_LOCAL_CIDRS #21e64fa2"', 'ip6 daddr fd00::/8 accept comment "to VPN_LOCAL_CIDRS #21e64fa2"']);
  });

  test("IPv6 ND and MLD accepts (issue 13 §6): by the type names nft lists, with the hop limit; an ICMPv6 type without a name here is refused", () => {
    const nd = planFirewall(base, []).rules.filter((r) => r.match.proto === "icmpv6").map(renderNftStatement);
    expect(nd).toEqual([
      'meta nfproto ipv6 oifname "eth0" icmpv6 type nd-router-solicit ip6 hoplimit 255 accept',
      'meta nfproto ipv6 oifname "eth0" icmpv6 type nd-router-advert ip6 hoplimit 255 accept',
      'meta nfproto ipv6 oifname "eth0" icmpv6 type nd-neighbor-solicit ip6 hoplimit 255 accept',
      'meta nfproto ipv6 oifname "eth0" icmpv6 type nd-neighbor-advert ip6 hoplimit 255 accept',
      'meta nfproto ipv6 oifname "eth0" icmpv6 type mld2-listener-report ip6 hoplimit 1 accept',
    ]);
    const odd = { ...planFirewall(base, []).rules.find((r) => r.match.proto === "icmpv6")! };
    expect(() => renderNftStatement({ ...odd, match: { ...odd.match, icmpv6Type: 128 } })).toThrow(/ICMPv6 type 128 has no nft name/);
    expect(() => renderNftStatement({ ...odd, match: { ...odd.match, hopLimit: 256 } })).toThrow(/not a one-byte value/);
  });
});

describe("port forwards as sets", () => {
  test("200 entries with a tcp and a udp port each: four rules and 200 elements per set, whatever the count", () => {
    const nat = Array.from({ length: 200 }, (_, i): FirewallNatEntry => ({ name: `p${i}`, octet: 2 + (i % 250), ports: [{ proto: "tcp", port: 10000 + i }, { proto: "udp", port: 10000 + i }] }));
    const plan = planFirewall(base, nat);
    const t = planNftTable(plan);
    const forwards = t.chains.flatMap((c) => c.rules).filter((r) => r.comment.startsWith("port forwards"));
    expect(forwards.map((r) => r.statement)).toEqual([
      'iifname "tun0" oifname "vxlan0" ip daddr . tcp dport @pf_fwd_tcp ct status dnat accept',
      'iifname "tun0" oifname "vxlan0" ip daddr . udp dport @pf_fwd_udp ct status dnat accept',
      'meta nfproto ipv4 iifname "tun0" dnat ip to tcp dport map @pf_dnat_tcp',
      'meta nfproto ipv4 iifname "tun0" dnat ip to udp dport map @pf_dnat_udp',
    ]);
    expect(t.sets.map((s) => [s.name, s.kind, s.type, s.elements.length])).toEqual([
      ["pf_fwd_tcp", "set", "ipv4_addr . inet_service", 200],
      ["pf_fwd_udp", "set", "ipv4_addr . inet_service", 200],
      ["pf_dnat_tcp", "map", "inet_service : ipv4_addr", 200],
      ["pf_dnat_udp", "map", "inet_service : ipv4_addr", 200],
    ]);
    expect(t.sets[2]!.elements[3]).toBe("10003 : 172.16.0.5");
    expect(t.sets[0]!.elements[3]).toBe("172.16.0.5 . 10003");
    expect(plan.rules.filter((r) => r.purpose === "port-forward")).toHaveLength(800);
    expect(t.chains.reduce((n, c) => n + c.rules.length, 0)).toBe(plan.rules.length - 800 + 4);
  });

  test("the group rule sits where the first port forward was: after the replies, before the VPN reject", () => {
    const forward = planNftTable(planFirewall(base, [web2, mail])).chains.find((c) => c.def.name === "forward")!;
    expect(forward.rules.map((r) => r.comment.replace(/ #[0-9a-f]{8}$/, ""))).toEqual([
      "clamp mss to path mtu", "no ipv6 from the overlay", "no ipv6 to the overlay", "replies to clients",
      "port forwards tcp", "port forwards udp", "nothing else in from the vpn", "out through the vpn", "to VPN_LOCAL_CIDRS", "kill switch",
    ]);
  });

  test("a port given twice keeps its first target, as iptables' first match would", () => {
    const t = planNftTable(planFirewall(base, [web, { name: "other", octet: 12, ports: [{ proto: "tcp", port: 8080 }] }]));
    expect(t.sets.find((s) => s.name === "pf_dnat_tcp")!.elements).toEqual(["8080 : 172.16.0.10"]);
    expect(t.sets.find((s) => s.name === "pf_fwd_tcp")!.elements).toEqual(["172.16.0.10 . 8080", "172.16.0.12 . 8080"]);
  });

  test("a port-forward rule of another shape is refused, not rendered differently from iptables", () => {
    const p = planFirewall(base, [web]);
    const dnat = p.rules.find((r) => r.target.kind === "dnat")!;
    const odd = { ...p, rules: p.rules.map((r) => (r === dnat ? { ...r, target: { kind: "dnat" as const, to: "172.16.0.10", port: 80 } } : r)) };
    expect(() => renderNftScript(odd)).toThrow("port forward rule of an unexpected shape: meta nfproto ipv4 iifname \"tun0\" tcp dport 8080 dnat ip to 172.16.0.10:80");
  });
});

describe("comment tags", () => {
  test("the tag is the rule's statements' hash: same statements, same tag; other statements, another", () => {
    expect(nftComment("vpn transport", "udp dport 443 accept")).toBe("vpn transport #510a878a");
    expect(nftComment("vpn transport", "udp dport 444 accept")).not.toBe("vpn transport #510a878a");
    expect(nftComment("x".repeat(300), "accept")).toHaveLength(128);
  });
});

describe("parseNftTableJson / diffNft", () => {
  const plan = planFirewall(base, [web2, mail]);

  test("the table nft printed after applying the script matches the plan", () => {
    const state = parseNftTableJson(CAPTURED);
    expect([...state.chains.keys()]).toEqual(["input", "forward", "output", "prerouting", "postrouting"]);
    expect(state.chains.get("forward")!.rules.map((r) => r.verdict)).toEqual(["mangle", "drop", "drop", "accept", "accept", "accept", "reject", "accept", "accept", "drop"]);
    expect(state.chains.get("postrouting")).toMatchObject({ type: "nat", hook: "postrouting", prio: 90, policy: "accept" });
    expect(state.sets.get("pf_dnat_tcp")).toEqual({ kind: "map", type: "inet_service : ipv4_addr", elements: ["25 : 172.16.0.11", "8080 : 172.16.0.10"] });
    expect(state.sets.get("pf_fwd_tcp")).toEqual({ kind: "set", type: "ipv4_addr . inet_service", elements: ["172.16.0.11 . 25", "172.16.0.10 . 8080"] });
    expect(state.flags).toEqual([]);
    expect(state.others).toEqual([]);
    expect(diffNft(plan, state)).toEqual([]);
  });

  test("a missing table, a deleted rule, a chain with another priority, a dormant table", () => {
    expect(diffNft(plan, undefined)).toEqual(["nft table inet pod_gateway: missing"]);
    const state = parseNftTableJson(CAPTURED);
    state.chains.get("output")!.rules.pop();
    expect(diffNft(plan, state)).toEqual([
      'nft table inet pod_gateway: chain output has 14 rules, expected 15 (first difference at rule 15: none instead of drop "kill switch #46516870")',
    ]);
    const prio = parseNftTableJson(CAPTURED.replace('"hook":"input","prio":-10', '"hook":"input","prio":0'));
    expect(diffNft(plan, prio)).toEqual(["nft table inet pod_gateway: chain input is type filter hook input priority 0 policy accept, expected filter input -10 accept"]);
    const dormant = parseNftTableJson(CAPTURED.replace(/("name":"pod_gateway","handle":\d+)\}/, '$1,"flags":["dormant"]}'));
    expect(diffNft(plan, dormant)).toEqual(["nft table inet pod_gateway: flags dormant (expected none)"]);
    const counter = parseNftTableJson(CAPTURED.replace("\n]}", ',\n{"counter":{"family":"inet","name":"c","table":"pod_gateway","handle":30,"packets":0,"bytes":0}}\n]}'));
    expect(diffNft(plan, counter)).toEqual(["nft table inet pod_gateway: unexpected counter c"]);
  });

  test("a plan that differs only in a value (VPN_TRAFFIC_PORT) differs from the table: the tags see it", () => {
    const other = planFirewall({ ...base, VPN_TRAFFIC_PORT: [444] }, [web2, mail]);
    expect(diffNft(other, parseNftTableJson(CAPTURED))).toEqual([
      'nft table inet pod_gateway: chain output rule 12 is accept "vpn transport #510a878a", expected accept "vpn transport #a188c899"',
    ]);
  });

  test("a changed, a missing and an extra port forward show in the sets' elements", () => {
    const moved = planFirewall(base, [web2, { ...mail, octet: 12 }]);
    expect(diffNft(moved, parseNftTableJson(CAPTURED))).toEqual([
      "nft table inet pod_gateway: set pf_fwd_tcp has 2 elements, expected 2 (1 missing, first 172.16.0.12 . 25; 1 unexpected, first 172.16.0.11 . 25)",
      "nft table inet pod_gateway: map pf_dnat_tcp has 2 elements, expected 2 (1 missing, first 25 : 172.16.0.12; 1 unexpected, first 25 : 172.16.0.11)",
    ]);
    const fewer = planFirewall(base, [web2]);
    expect(diffNft(fewer, parseNftTableJson(CAPTURED))).toEqual([
      "nft table inet pod_gateway: set pf_fwd_tcp has 2 elements, expected 1 (1 unexpected, first 172.16.0.11 . 25)",
      "nft table inet pod_gateway: map pf_dnat_tcp has 2 elements, expected 1 (1 unexpected, first 25 : 172.16.0.11)",
    ]);
    const none = planFirewall(base, []);
    expect(diffNft(none, parseNftTableJson(CAPTURED))).toContain("nft table inet pod_gateway: unexpected map pf_dnat_udp");
  });

  test("a table made by an earlier version (a rule per port forward, no tags) differs: it is replaced", () => {
    const d = diffNft(planFirewall(base, [web]), parseNftTableJson(EARLIER));
    // (It also had no watch port rule: GATEWAY_WATCH_PORT came later.)
    expect(d[0]).toStartWith('nft table inet pod_gateway: chain input has 6 rules, expected 7 (first difference at rule 1: accept "vxlan from client pods" instead of accept "vxlan from client pods #');
    expect(d).toContain("nft table inet pod_gateway: set pf_fwd_tcp missing");
  });

  test("an empty listing (table exists, chains gone) reports each chain", () => {
    expect(diffNft(plan, parseNftTableJson('{"nftables":[{"metainfo":{}},{"table":{"family":"inet","name":"pod_gateway"}}]}'))).toHaveLength(9);
  });
});
