// iptables rendering (golden text, in the exact form iptables-save prints), save parsing,
// jump placement and verification diffs.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { planBlockingFirewall, planFirewall, type FirewallNatEntry, type FirewallPlan, type FirewallSettings } from "../../src/core/firewall/model.ts";
import {
  chainsOf,
  diffIptables,
  hasForeignIptablesRules,
  hasOurIptablesChains,
  parseIptablesSave,
  planIptablesChains,
  quoteLikeSave,
  renderIptablesRestore,
  renderIptablesRule,
} from "../../src/core/firewall/render-iptables.ts";
import { testSettings } from "../helpers/settings.ts";

const base: FirewallSettings = testSettings({ VPN_LOCAL_CIDRS: ["10.0.0.0/8"], SNAT_IP: "198.19.0.2" });
const web: FirewallNatEntry = { name: "web", octet: 10, ports: [{ proto: "tcp", port: 8080 }] };

const GOLDEN_V4 = `*filter
:POD-GATEWAY-INPUT - [0:0]
:POD-GATEWAY-FORWARD - [0:0]
:POD-GATEWAY-OUTPUT - [0:0]
-F POD-GATEWAY-INPUT
-F POD-GATEWAY-FORWARD
-F POD-GATEWAY-OUTPUT
-A POD-GATEWAY-INPUT -i eth0 -p udp -m udp --dport 8472 -m comment --comment "vxlan from client pods" -j ACCEPT
-A POD-GATEWAY-INPUT -i vxlan0 -p udp -m udp --dport 67 -m comment --comment "dhcp from clients" -j ACCEPT
-A POD-GATEWAY-INPUT -i vxlan0 -p udp -m udp --dport 53 -m comment --comment "dns from clients" -j ACCEPT
-A POD-GATEWAY-INPUT -i vxlan0 -p tcp -m tcp --dport 53 -m comment --comment "dns from clients" -j ACCEPT
-A POD-GATEWAY-INPUT -i vxlan0 -p icmp -m icmp --icmp-type 8 -m comment --comment "ping from clients" -j ACCEPT
-A POD-GATEWAY-INPUT -i vxlan0 -p tcp -m tcp --dport 4790 -m comment --comment "watch from clients" -j ACCEPT
-A POD-GATEWAY-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "replies to the gateway" -j ACCEPT
-A POD-GATEWAY-FORWARD -o vxlan0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "replies to clients" -j ACCEPT
-A POD-GATEWAY-FORWARD -d 172.16.0.10/32 -i tun0 -o vxlan0 -p tcp -m tcp --dport 8080 -m conntrack --ctstate DNAT -m comment --comment "port forward web tcp/8080" -j ACCEPT
-A POD-GATEWAY-FORWARD -i tun0 -m comment --comment "nothing else in from the vpn" -j REJECT --reject-with icmp-port-unreachable
-A POD-GATEWAY-FORWARD -o tun0 -m comment --comment "out through the vpn" -j ACCEPT
-A POD-GATEWAY-FORWARD -d 10.0.0.0/8 -m comment --comment "to VPN_LOCAL_CIDRS" -j ACCEPT
-A POD-GATEWAY-FORWARD -m comment --comment "kill switch" -j DROP
-A POD-GATEWAY-OUTPUT -o lo -m comment --comment loopback -j ACCEPT
-A POD-GATEWAY-OUTPUT -o tun0 -m comment --comment "out through the vpn" -j ACCEPT
-A POD-GATEWAY-OUTPUT -o vxlan0 -m comment --comment "to clients" -j ACCEPT
-A POD-GATEWAY-OUTPUT -o eth0 -p udp -m udp --dport 8472 -m comment --comment "vxlan to client pods" -j ACCEPT
-A POD-GATEWAY-OUTPUT -o eth0 -m conntrack --ctstate ESTABLISHED --ctdir REPLY -m comment --comment "replies to connections opened to the gateway" -j ACCEPT
-A POD-GATEWAY-OUTPUT -d 10.0.0.0/8 -m comment --comment "to VPN_LOCAL_CIDRS" -j ACCEPT
-A POD-GATEWAY-OUTPUT -p udp -m udp --dport 443 -m comment --comment "vpn transport" -j ACCEPT
-A POD-GATEWAY-OUTPUT -p tcp -m tcp --dport 443 -m comment --comment "vpn transport" -j ACCEPT
-A POD-GATEWAY-OUTPUT -o eth0 -m limit --limit 10/sec -m comment --comment "drop report" -j NFLOG --nflog-group 4201
-A POD-GATEWAY-OUTPUT -m comment --comment "kill switch" -j DROP
-I INPUT 1 -j POD-GATEWAY-INPUT
-I FORWARD 1 -j POD-GATEWAY-FORWARD
-I OUTPUT 1 -j POD-GATEWAY-OUTPUT
COMMIT
*nat
:POD-GATEWAY-PREROUTING - [0:0]
:POD-GATEWAY-POSTROUTING - [0:0]
-F POD-GATEWAY-PREROUTING
-F POD-GATEWAY-POSTROUTING
-A POD-GATEWAY-PREROUTING -i tun0 -p tcp -m tcp --dport 8080 -m comment --comment "port forward web tcp/8080" -j DNAT --to-destination 172.16.0.10:8080
-A POD-GATEWAY-POSTROUTING -s 172.16.0.0/24 -o tun0 -m comment --comment "snat out of the vpn" -j SNAT --to-source 198.19.0.2
-A POD-GATEWAY-POSTROUTING -s 172.16.0.0/24 ! -o vxlan0 -m comment --comment "masquerade the overlay" -j MASQUERADE
-I PREROUTING 1 -j POD-GATEWAY-PREROUTING
-I POSTROUTING 1 -j POD-GATEWAY-POSTROUTING
COMMIT
*mangle
:POD-GATEWAY-FORWARD - [0:0]
-F POD-GATEWAY-FORWARD
-A POD-GATEWAY-FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -m comment --comment "clamp mss to path mtu" -j TCPMSS --clamp-mss-to-pmtu
-I FORWARD 1 -j POD-GATEWAY-FORWARD
COMMIT
`;

const GOLDEN_V6 = `*filter
:POD-GATEWAY-INPUT - [0:0]
:POD-GATEWAY-FORWARD - [0:0]
:POD-GATEWAY-OUTPUT - [0:0]
-F POD-GATEWAY-INPUT
-F POD-GATEWAY-FORWARD
-F POD-GATEWAY-OUTPUT
-A POD-GATEWAY-INPUT -i eth0 -p udp -m udp --dport 8472 -m comment --comment "vxlan from client pods" -j ACCEPT
-A POD-GATEWAY-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "replies to the gateway" -j ACCEPT
-A POD-GATEWAY-FORWARD -i vxlan0 -m comment --comment "no ipv6 from the overlay" -j DROP
-A POD-GATEWAY-FORWARD -o vxlan0 -m comment --comment "no ipv6 to the overlay" -j DROP
-A POD-GATEWAY-FORWARD -i tun0 -m comment --comment "nothing else in from the vpn" -j REJECT --reject-with icmp6-port-unreachable
-A POD-GATEWAY-FORWARD -o tun0 -m comment --comment "out through the vpn" -j ACCEPT
-A POD-GATEWAY-FORWARD -m comment --comment "kill switch" -j DROP
-A POD-GATEWAY-OUTPUT -o lo -m comment --comment loopback -j ACCEPT
-A POD-GATEWAY-OUTPUT -o tun0 -m comment --comment "out through the vpn" -j ACCEPT
-A POD-GATEWAY-OUTPUT -o vxlan0 -m comment --comment "to clients" -j ACCEPT
-A POD-GATEWAY-OUTPUT -o eth0 -p udp -m udp --dport 8472 -m comment --comment "vxlan to client pods" -j ACCEPT
-A POD-GATEWAY-OUTPUT -o eth0 -m conntrack --ctstate ESTABLISHED --ctdir REPLY -m comment --comment "replies to connections opened to the gateway" -j ACCEPT
-A POD-GATEWAY-OUTPUT -o eth0 -p ipv6-icmp -m icmp6 --icmpv6-type 133 -m hl --hl-eq 255 -m comment --comment "ipv6 router solicitation on eth0" -j ACCEPT
-A POD-GATEWAY-OUTPUT -o eth0 -p ipv6-icmp -m icmp6 --icmpv6-type 134 -m hl --hl-eq 255 -m comment --comment "ipv6 router advertisement on eth0" -j ACCEPT
-A POD-GATEWAY-OUTPUT -o eth0 -p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255 -m comment --comment "ipv6 neighbour solicitation on eth0" -j ACCEPT
-A POD-GATEWAY-OUTPUT -o eth0 -p ipv6-icmp -m icmp6 --icmpv6-type 136 -m hl --hl-eq 255 -m comment --comment "ipv6 neighbour advertisement on eth0" -j ACCEPT
-A POD-GATEWAY-OUTPUT -o eth0 -p ipv6-icmp -m icmp6 --icmpv6-type 143 -m hl --hl-eq 1 -m comment --comment "ipv6 mldv2 report on eth0" -j ACCEPT
-A POD-GATEWAY-OUTPUT -p udp -m udp --dport 443 -m comment --comment "vpn transport" -j ACCEPT
-A POD-GATEWAY-OUTPUT -p tcp -m tcp --dport 443 -m comment --comment "vpn transport" -j ACCEPT
-A POD-GATEWAY-OUTPUT -o eth0 -m limit --limit 10/sec -m comment --comment "drop report" -j NFLOG --nflog-group 4201
-A POD-GATEWAY-OUTPUT -m comment --comment "kill switch" -j DROP
-I INPUT 1 -j POD-GATEWAY-INPUT
-I FORWARD 1 -j POD-GATEWAY-FORWARD
-I OUTPUT 1 -j POD-GATEWAY-OUTPUT
COMMIT
`;

/** What iptables-save prints after our restore went in (plus optional foreign lines per built-in chain). */
function saveAfter(plan: FirewallPlan, family: 4 | 6, foreign: Record<string, string[]> = {}): string {
  const out = ["# Generated by iptables-save v1.8.9 (nf_tables) on Thu Nov 26 07:45:58 2026"];
  const chains = planIptablesChains(plan, family);
  const tables = [...new Set([...chains.keys()].map((c) => c.table))];
  for (const t of tables) {
    out.push(`*${t}`, ":INPUT ACCEPT [12:345]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]");
    const mine = [...chains.entries()].filter(([c]) => c.table === t);
    for (const [c] of mine) out.push(`:${c.chain} - [0:0]`);
    for (const [c] of mine) out.push(`-A ${c.builtin} -j ${c.chain}`, ...(foreign[`${t}/${c.builtin}`] ?? []).map((r) => `-A ${c.builtin} ${r}`));
    for (const [c, rules] of mine) for (const r of rules) out.push(`-A ${c.chain} ${r}`);
    out.push("COMMIT", "# Completed on Thu Nov 26 07:45:58 2026");
  }
  return out.join("\n") + "\n";
}

describe("renderIptablesRestore", () => {
  test("golden: IPv4 on a pod with no rules yet (filter first, jumps inserted at position 1)", () => {
    expect(renderIptablesRestore(planFirewall(base, [web]), 4, undefined)).toBe(GOLDEN_V4);
  });

  test("golden: IPv6 has only the filter table", () => {
    expect(renderIptablesRestore(planFirewall(base, [web]), 6, parseIptablesSave(""))).toBe(GOLDEN_V6);
  });

  test("a re-run over our own rules only refills our chains: no jump is added or removed", () => {
    const plan = planFirewall(base, [web]);
    const text = renderIptablesRestore(plan, 4, parseIptablesSave(saveAfter(plan, 4)));
    expect(text).not.toMatch(/^-[ID] /m);
    expect(text).toBe(GOLDEN_V4.split("\n").filter((l) => !/^-I /.test(l)).join("\n"));
  });

  test("a jump pushed down by someone else's rule is moved back to position 1", () => {
    const save = parseIptablesSave(`*filter
:INPUT DROP [0:0]
:POD-GATEWAY-INPUT - [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -j POD-GATEWAY-INPUT
COMMIT
`);
    const text = renderIptablesRestore(planFirewall(base, []), 4, save);
    // The foreign rule stays where it is; our jump is taken out and put back first.
    expect(text.split("\n").filter((l) => /^-[ADI] INPUT /.test(l))).toEqual(["-D INPUT -j POD-GATEWAY-INPUT", "-I INPUT 1 -j POD-GATEWAY-INPUT"]);
  });

  test("duplicate jumps (the reference's habit) are all removed and one is inserted", () => {
    const save = parseIptablesSave("*nat\n-A POSTROUTING -j POD-GATEWAY-POSTROUTING\n-A POSTROUTING -j MASQUERADE\n-A POSTROUTING -j POD-GATEWAY-POSTROUTING\nCOMMIT\n");
    const text = renderIptablesRestore(planFirewall(base, []), 4, save);
    const nat = text.slice(text.indexOf("*nat"), text.indexOf("*mangle"));
    expect(nat.split("\n").filter((l) => /^-[ADI] POSTROUTING /.test(l))).toEqual([
      "-D POSTROUTING -j POD-GATEWAY-POSTROUTING",
      "-D POSTROUTING -j POD-GATEWAY-POSTROUTING",
      "-I POSTROUTING 1 -j POD-GATEWAY-POSTROUTING",
    ]);
  });

  test("IPv6 ND and MLD accepts (issue 13 §6) in the form ip6tables-save prints; never in IPv4, and blocking keeps them", () => {
    const nd = planFirewall(base, []).rules.filter((r) => r.match.proto === "icmpv6");
    expect(nd.map((r) => renderIptablesRule(r, 6))).toEqual([
      '-o eth0 -p ipv6-icmp -m icmp6 --icmpv6-type 133 -m hl --hl-eq 255 -m comment --comment "ipv6 router solicitation on eth0" -j ACCEPT',
      '-o eth0 -p ipv6-icmp -m icmp6 --icmpv6-type 134 -m hl --hl-eq 255 -m comment --comment "ipv6 router advertisement on eth0" -j ACCEPT',
      '-o eth0 -p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255 -m comment --comment "ipv6 neighbour solicitation on eth0" -j ACCEPT',
      '-o eth0 -p ipv6-icmp -m icmp6 --icmpv6-type 136 -m hl --hl-eq 255 -m comment --comment "ipv6 neighbour advertisement on eth0" -j ACCEPT',
      '-o eth0 -p ipv6-icmp -m icmp6 --icmpv6-type 143 -m hl --hl-eq 1 -m comment --comment "ipv6 mldv2 report on eth0" -j ACCEPT',
    ]);
    expect(() => renderIptablesRule(nd[0]!, 4)).toThrow(/icmpv6 rules are IPv6 only/);
    expect(renderIptablesRestore(planFirewall(base, []), 4, undefined)).not.toContain("icmp6");
    const blocking = renderIptablesRestore(planBlockingFirewall(base), 6, undefined);
    expect(blocking.split("\n").filter((l) => l.includes("--icmpv6-type"))).toHaveLength(5);
  });

  test("every one of our chains is always declared, even when the settings leave it empty", () => {
    const text = renderIptablesRestore(planFirewall({ ...base, VPN_INTERFACE: "", VPN_BLOCK_OTHER_TRAFFIC: false }, []), 4, undefined);
    for (const c of chainsOf(4)) expect(text).toContain(`:${c.chain} - [0:0]`);
    expect(text).not.toContain("-A POD-GATEWAY-OUTPUT");
  });
});

describe("parseIptablesSave", () => {
  test("tables, policies, user chains and rules in order; comments and counters ignored", () => {
    const s = parseIptablesSave(`# Generated by iptables-save v1.8.9 on Thu Nov 26 07:45:58 2026
*filter
:INPUT DROP [10:2000]
:FORWARD ACCEPT [0:0]
:MINE - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -j MINE
-A MINE -p tcp -m tcp --dport 22 -m comment --comment "ssh in" -j ACCEPT
COMMIT
# Completed on Thu Nov 26 07:45:58 2026
*nat
:POSTROUTING ACCEPT [0:0]
COMMIT
`);
    expect([...s.keys()]).toEqual(["filter", "nat"]);
    expect([...s.get("filter")!.chains]).toEqual([["INPUT", "DROP"], ["FORWARD", "ACCEPT"], ["MINE", "-"]]);
    expect(s.get("filter")!.rules.get("INPUT")).toEqual(["-i lo -j ACCEPT", "-j MINE"]);
    expect(s.get("filter")!.rules.get("MINE")).toEqual(['-p tcp -m tcp --dport 22 -m comment --comment "ssh in" -j ACCEPT']);
    expect(s.get("nat")!.rules.size).toBe(0);
  });

  test("ours, foreign, neither", () => {
    const plan = planFirewall(base, []);
    const ours = parseIptablesSave(saveAfter(plan, 4).replace(/:FORWARD DROP/g, ":FORWARD ACCEPT"));
    expect(hasOurIptablesChains(ours)).toBe(true);
    expect(hasForeignIptablesRules(ours)).toBe(false);
    expect(hasForeignIptablesRules(parseIptablesSave("*filter\n:INPUT DROP [0:0]\nCOMMIT\n"))).toBe(true);
    expect(hasForeignIptablesRules(parseIptablesSave("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n"))).toBe(true);
    expect(hasForeignIptablesRules(parseIptablesSave("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"))).toBe(false);
    expect(hasOurIptablesChains(parseIptablesSave(""))).toBe(false);
  });
});

describe("diffIptables", () => {
  const plan = planFirewall(base, [web]);
  test("exactly our rules: no differences", () => {
    expect(diffIptables(plan, 4, parseIptablesSave(saveAfter(plan, 4)))).toEqual([]);
    expect(diffIptables(plan, 6, parseIptablesSave(saveAfter(plan, 6)))).toEqual([]);
  });
  test("an empty save: every chain and jump missing", () => {
    const d = diffIptables(plan, 4, parseIptablesSave(""));
    expect(d).toContain("iptables filter POD-GATEWAY-INPUT: chain missing");
    expect(d).toContain("iptables mangle FORWARD: no jump to POD-GATEWAY-FORWARD");
    expect(d).toHaveLength(12);
  });
  test("a flushed INPUT (foreign `iptables -F INPUT`) is reported as a missing jump", () => {
    const text = saveAfter(plan, 4).replace("-A INPUT -j POD-GATEWAY-INPUT\n", "");
    expect(diffIptables(plan, 4, parseIptablesSave(text))).toEqual(["iptables filter INPUT: no jump to POD-GATEWAY-INPUT"]);
  });
  test("a rule inserted before our jump, a duplicate jump, a changed rule, a missing rule", () => {
    const pushed = parseIptablesSave(saveAfter(plan, 4).replace("-A INPUT -j POD-GATEWAY-INPUT\n", "-A INPUT -j DROP\n-A INPUT -j POD-GATEWAY-INPUT\n"));
    expect(diffIptables(plan, 4, pushed)).toEqual(["iptables filter INPUT: jump to POD-GATEWAY-INPUT is rule 2, expected rule 1"]);
    const twice = parseIptablesSave(saveAfter(plan, 4, { "filter/INPUT": ["-j POD-GATEWAY-INPUT"] }));
    expect(diffIptables(plan, 4, twice)).toEqual(["iptables filter INPUT: 2 jumps to POD-GATEWAY-INPUT, expected exactly one"]);
    const changed = parseIptablesSave(saveAfter(plan, 4).replace("--dport 443 -m comment", "--dport 444 -m comment"));
    expect(diffIptables(plan, 4, changed)[0]).toStartWith('iptables filter POD-GATEWAY-OUTPUT: rule 7 is "-p udp -m udp --dport 444');
    const fewer = parseIptablesSave(saveAfter(plan, 4).replace(/-A POD-GATEWAY-OUTPUT -m comment --comment "kill switch" -j DROP\n/, ""));
    expect(diffIptables(plan, 4, fewer)).toEqual([
      'iptables filter POD-GATEWAY-OUTPUT: 9 rules, expected 10 (first difference at rule 10: none instead of -m comment --comment "kill switch" -j DROP)',
    ]);
  });
});

describe("property: for any settings, the state a restore leaves verifies clean and needs no jump changes", () => {
  const octet = fc.integer({ min: 2, max: 19 });
  const ifname = fc.constantFrom("", "tun0", "wg0", "tun1");
  const cidr = fc.tuple(fc.integer({ min: 1, max: 223 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 8, max: 32 })).map(([a, b, l]) => `${a}.${b}.0.0/${l}`);
  const settings = fc.record({
    VXLAN_IP_NETWORK: fc.tuple(fc.integer({ min: 1, max: 223 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })).map((t) => t.join(".")),
    VXLAN_PORT: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 65535 })),
    VPN_INTERFACE: ifname,
    VPN_BLOCK_OTHER_TRAFFIC: fc.boolean(),
    VPN_TRAFFIC_PORT: fc.array(fc.integer({ min: 1, max: 65535 }), { maxLength: 3 }),
    VPN_LOCAL_CIDRS: fc.array(cidr, { maxLength: 3 }),
    SNAT_IP: fc.constantFrom("", "198.19.0.2"),
    GATEWAY_WATCH_PORT: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 65535 })),
  });
  const nat = fc.array(
    fc.record({ name: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), octet, ports: fc.array(fc.record({ proto: fc.constantFrom("tcp" as const, "udp" as const), port: fc.integer({ min: 1, max: 65535 }) }), { maxLength: 3 }) }),
    { maxLength: 4 },
  );
  test("holds", () => {
    fc.assert(
      fc.property(settings, nat, (s, n) => {
        const plan = planFirewall(s, n);
        for (const family of [4, 6] as const) {
          const save = parseIptablesSave(saveAfter(plan, family));
          expect(diffIptables(plan, family, save)).toEqual([]);
          expect(renderIptablesRestore(plan, family, save)).not.toMatch(/^-[ID] /m);
        }
      }),
      { numRuns: 200 },
    );
  });
});

test("quoteLikeSave: bare only for [A-Za-z0-9_-]", () => {
  expect(quoteLikeSave("loopback")).toBe("loopback");
  expect(quoteLikeSave("kill-switch_2")).toBe("kill-switch_2");
  expect(quoteLikeSave("kill switch")).toBe('"kill switch"');
  expect(quoteLikeSave("a/b")).toBe('"a/b"');
});
