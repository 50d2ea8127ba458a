// Native nftables: the script (golden), and verification of a table read back with `nft -j`
// (fixture captured from nft 1.0.6 after applying exactly the golden script).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { planFirewall, type FirewallNatEntry, type FirewallSettings } from "../../src/core/firewall/model.ts";
import { diffNft, parseNftTableJson, renderNftRule, renderNftScript } from "../../src/core/firewall/render-nft.ts";
import { testSettings } from "../helpers/settings.ts";

const base: FirewallSettings = testSettings({ VPN_LOCAL_CIDRS: ["10.0.0.0/8"], SNAT_IP: "198.19.0.2" });
const web: FirewallNatEntry = { name: "web", octet: 10, ports: [{ proto: "tcp", port: 8080 }] };
const captured = readFileSync(join(import.meta.dir, "../fixtures/gateway/nft-list-table.json"), "utf8");

const GOLDEN = `table inet pod_gateway
delete table inet pod_gateway
table inet pod_gateway {
	chain input {
		type filter hook input priority filter - 10; policy accept;
		iifname "eth0" udp dport 8472 accept comment "vxlan from client pods"
		meta nfproto ipv4 iifname "vxlan0" udp dport 67 accept comment "dhcp from clients"
		meta nfproto ipv4 iifname "vxlan0" udp dport 53 accept comment "dns from clients"
		meta nfproto ipv4 iifname "vxlan0" tcp dport 53 accept comment "dns from clients"
		meta nfproto ipv4 iifname "vxlan0" icmp type echo-request accept comment "ping from clients"
		ct state established,related accept comment "replies to the gateway"
	}

	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		meta nfproto ipv4 tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu comment "clamp mss to path mtu"
		meta nfproto ipv6 iifname "vxlan0" counter drop comment "no ipv6 from the overlay"
		meta nfproto ipv6 oifname "vxlan0" counter drop comment "no ipv6 to the overlay"
		meta nfproto ipv4 oifname "vxlan0" ct state established,related accept comment "replies to clients"
		iifname "tun0" oifname "vxlan0" ip daddr 172.16.0.10 tcp dport 8080 ct status dnat accept comment "port forward web tcp/8080"
		iifname "tun0" reject comment "nothing else in from the vpn"
		oifname "tun0" accept comment "out through the vpn"
		ip daddr 10.0.0.0/8 accept comment "to VPN_LOCAL_CIDRS"
		counter drop comment "kill switch"
	}

	chain output {
		type filter hook output priority filter - 10; policy accept;
		oifname "lo" accept comment "loopback"
		oifname "tun0" accept comment "out through the vpn"
		oifname "vxlan0" accept comment "to clients"
		oifname "eth0" udp dport 8472 accept comment "vxlan to client pods"
		oifname "eth0" ct state established ct direction reply accept comment "replies to connections opened to the gateway"
		ip daddr 10.0.0.0/8 accept comment "to VPN_LOCAL_CIDRS"
		udp dport 443 accept comment "vpn transport"
		tcp dport 443 accept comment "vpn transport"
		counter drop comment "kill switch"
	}

	chain prerouting {
		type nat hook prerouting priority dstnat - 10; policy accept;
		meta nfproto ipv4 iifname "tun0" tcp dport 8080 dnat ip to 172.16.0.10:8080 comment "port forward web tcp/8080"
	}

	chain postrouting {
		type nat hook postrouting priority srcnat - 10; policy accept;
		oifname "tun0" ip saddr 172.16.0.0/24 snat ip to 198.19.0.2 comment "snat out of the vpn"
		oifname != "vxlan0" ip saddr 172.16.0.0/24 masquerade comment "masquerade the overlay"
	}
}
`;

describe("renderNftScript", () => {
  test("golden: one transaction that creates, deletes and re-creates our table whole", () => {
    expect(renderNftScript(planFirewall(base, [web]))).toBe(GOLDEN);
  });

  test("kill switch off and no VPN: every chain still exists, none drops", () => {
    const text = renderNftScript(planFirewall({ ...base, VPN_INTERFACE: "", VPN_BLOCK_OTHER_TRAFFIC: false }, [web]));
    for (const c of ["input", "forward", "output", "prerouting", "postrouting"]) expect(text).toContain(`\tchain ${c} {`);
    expect(text.split("\n").filter((l) => l.includes("drop")).every((l) => l.includes("ipv6"))).toBe(true);
    expect(text).not.toContain("dnat");
  });

  test("rules touching only one family say so unless an address implies it", () => {
    const p = planFirewall({ ...base, VPN_LOCAL_CIDRS: ["fd00::/8"] }, []);
    const v6 = p.rules.filter((r) => r.match.dst === "fd00::/8").map(renderNftRule);
    expect(v6).toEqual(['ip6 daddr fd00::/8 accept comment "to VPN_LOCAL_CIDRS"', 'ip6 daddr fd00::/8 accept comment "to VPN_LOCAL_CIDRS"']);
  });
});

describe("parseNftTableJson / diffNft", () => {
  const plan = planFirewall(base, [web]);

  test("the table nft printed after applying the golden script matches the plan", () => {
    const state = parseNftTableJson(captured);
    expect([...state.keys()]).toEqual(["input", "forward", "output", "prerouting", "postrouting"]);
    expect(state.get("forward")!.rules.map((r) => r.verdict)).toEqual(["mangle", "drop", "drop", "accept", "accept", "reject", "accept", "accept", "drop"]);
    expect(state.get("postrouting")).toMatchObject({ type: "nat", hook: "postrouting", prio: 90, policy: "accept" });
    expect(diffNft(plan, state)).toEqual([]);
  });

  test("a missing table, a deleted rule, a different plan, a chain with another priority", () => {
    expect(diffNft(plan, undefined)).toEqual(["nft table inet pod_gateway: missing"]);
    const state = parseNftTableJson(captured);
    state.get("output")!.rules.pop();
    expect(diffNft(plan, state)).toEqual([
      'nft table inet pod_gateway: chain output has 8 rules, expected 9 (first difference at rule 9: none instead of drop "kill switch")',
    ]);
    const other = planFirewall({ ...base, VPN_BLOCK_OTHER_TRAFFIC: false }, [web]);
    expect(diffNft(other, parseNftTableJson(captured)).map((l) => l.slice(0, 60))).toEqual([
      "nft table inet pod_gateway: chain forward has 9 rules, expec",
      "nft table inet pod_gateway: chain output has 9 rules, expect",
    ]);
    const prio = parseNftTableJson(captured.replace('"hook":"input","prio":-10', '"hook":"input","prio":0'));
    expect(diffNft(plan, prio)).toEqual(["nft table inet pod_gateway: chain input is type filter hook input priority 0 policy accept, expected filter input -10 accept"]);
  });

  test("an empty listing (table exists, chains gone) reports each chain", () => {
    expect(diffNft(plan, parseNftTableJson('{"nftables":[{"metainfo":{}},{"table":{"family":"inet","name":"pod_gateway"}}]}'))).toHaveLength(5);
  });
});
