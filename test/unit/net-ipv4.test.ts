// One reader of IPv4 text: the settings, the DHCP and netlink codecs, the planners and the client
// roles all accept and refuse the same strings (leading zeros refused everywhere: inet_aton and
// iproute2 read "010" as octal).
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { isIPv4 as nodeIsIPv4 } from "node:net";
import { ipv4ToBytes } from "../../src/core/dhcp/codec.ts";
import { ipBytes } from "../../src/core/netlink/wire.ts";
import { checkIpv4, formatIpv4, formatPrefix4, ipv4Bytes, isIpv4, parseIpv4, parsePrefix4 } from "../../src/core/net/ipv4.ts";
import { parseCidr4, parseIPv4 } from "../../src/core/settings/values.ts";

const readers: Record<string, (s: string) => boolean> = {
  "net/ipv4 isIpv4": isIpv4,
  "settings parseIPv4": (s) => parseIPv4(s).ok,
  "settings parseCidr4 (bare address)": (s) => parseCidr4(s).ok,
  "net/ipv4 parsePrefix4": (s) => parsePrefix4(s) !== undefined,
  "dhcp ipv4ToBytes": (s) => {
    try {
      ipv4ToBytes(s);
      return true;
    } catch {
      return false;
    }
  },
  "netlink ipBytes (IPv4 text)": (s) => {
    try {
      return ipBytes(s).length === 4;
    } catch {
      return false;
    }
  },
};

describe("every reader agrees", () => {
  test.each(["10.0.0.010", "010.0.0.1", "1.2.3.00", "256.0.0.1", "1.2.3", "1.2.3.4.5", "1.2.3.-4", " 1.2.3.4", "1.2.3.4 ", "0x1.2.3.4", "", "1..2.3"])("%p is refused by all", (s) => {
    expect(Object.entries(readers).filter(([, r]) => r(s)).map(([n]) => n)).toEqual([]);
  });
  test.each(["0.0.0.0", "10.0.0.10", "255.255.255.255", "172.16.0.5", "100.64.0.1"])("%p is accepted by all", (s) => {
    expect(Object.entries(readers).filter(([, r]) => !r(s)).map(([n]) => n)).toEqual([]);
  });
  test("and with node:net on any dotted string of digits", () => {
    const octet = fc.oneof(fc.nat(300).map(String), fc.stringMatching(/^0[0-9]{1,2}$/));
    fc.assert(
      fc.property(fc.tuple(octet, octet, octet, octet), (o) => {
        const s = o.join(".");
        const want = nodeIsIPv4(s);
        for (const [name, r] of Object.entries(readers)) expect({ name, s, ok: r(s) }).toEqual({ name, s, ok: want });
      }),
      { numRuns: 2000 },
    );
  });
});

describe("values", () => {
  test("text ↔ number ↔ bytes", () => {
    expect(parseIpv4("172.16.0.5")).toBe(0xac100005);
    expect(formatIpv4(0xac100005)).toBe("172.16.0.5");
    expect([...ipv4Bytes("172.16.0.5")]).toEqual([172, 16, 0, 5]);
    expect(checkIpv4("1.2.3.04")).toEqual({ ok: false, why: "leading-zero" });
    expect(checkIpv4("1.2.3.400")).toEqual({ ok: false, why: "range" });
  });
  test("prefixes: host bits cleared, the length without leading zeros", () => {
    expect(formatPrefix4(parsePrefix4("10.1.2.3/8")!)).toBe("10.0.0.0/8");
    expect(parsePrefix4("10.0.0.0/08")).toBeUndefined();
    expect(parsePrefix4("10.0.0.0/33")).toBeUndefined();
    expect(parsePrefix4("default")).toEqual({ net: 0, len: 0 });
  });
});
