// Removing our firewall objects from a backend no longer chosen: only our jumps and chains are
// named, per table, jumps first (a chain still referenced cannot be deleted).
import { describe, expect, test } from "bun:test";
import { renderIptablesRemoval } from "../../src/core/firewall/remove.ts";
import { parseIptablesSave } from "../../src/core/firewall/render-iptables.ts";

const SAVE = `*mangle
:FORWARD ACCEPT [0:0]
:POD-GATEWAY-FORWARD - [0:0]
-A FORWARD -j POD-GATEWAY-FORWARD
-A POD-GATEWAY-FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POD-GATEWAY-INPUT - [0:0]
:POD-GATEWAY-FORWARD - [0:0]
:POD-GATEWAY-OUTPUT - [0:0]
:VPN-CLIENT - [0:0]
-A INPUT -j POD-GATEWAY-INPUT
-A INPUT -i tun0 -j VPN-CLIENT
-A INPUT -j POD-GATEWAY-INPUT
-A FORWARD -j POD-GATEWAY-FORWARD
-A POD-GATEWAY-FORWARD -o tun0 -j ACCEPT
-A VPN-CLIENT -j ACCEPT
COMMIT
`;

describe("renderIptablesRemoval", () => {
  test("every jump to ours deleted (duplicates too), then our chains flushed and deleted; others' rules and chains untouched", () => {
    expect(renderIptablesRemoval(parseIptablesSave(SAVE), 4)).toBe(
      [
        "*filter",
        "-D INPUT -j POD-GATEWAY-INPUT",
        "-D INPUT -j POD-GATEWAY-INPUT",
        "-D FORWARD -j POD-GATEWAY-FORWARD",
        "-F POD-GATEWAY-INPUT",
        "-F POD-GATEWAY-FORWARD",
        "-F POD-GATEWAY-OUTPUT",
        "-X POD-GATEWAY-INPUT",
        "-X POD-GATEWAY-FORWARD",
        "-X POD-GATEWAY-OUTPUT",
        "COMMIT",
        "*mangle",
        "-D FORWARD -j POD-GATEWAY-FORWARD",
        "-F POD-GATEWAY-FORWARD",
        "-X POD-GATEWAY-FORWARD",
        "COMMIT",
        "",
      ].join("\n"),
    );
  });

  test("IPv6 has no nat or mangle chains of ours; a save without ours renders nothing", () => {
    expect(renderIptablesRemoval(parseIptablesSave(SAVE), 6)).not.toContain("*mangle");
    expect(renderIptablesRemoval(parseIptablesSave("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i tun0 -j ACCEPT\nCOMMIT\n"), 4)).toBeUndefined();
  });
});
