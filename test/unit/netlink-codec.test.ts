// The rtnetlink codec against annotated bytes (the kernel's struct layouts, little-endian), plus
// round trips of every message kind. iproute2's own requests are compared in
// netlink-iproute2.test.ts.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as C from "../../src/core/netlink/constants.ts";
import { decodeAddr, decodeLink, decodeNeigh, decodeRoute, decodeRule, encodeAddr, encodeLink, encodeNeigh, encodeRoute, encodeRule } from "../../src/core/netlink/messages.ts";
import { decodeAttrs, decodeError, decodeMessages, encodeMessage, NetlinkDecodeError } from "../../src/core/netlink/wire.ts";
import { formatIpv6, parseIpv6 } from "../../src/core/net/ipv6.ts";

/** "1c 00 00 00  # comment" lines → bytes. */
function hex(s: string): Uint8Array {
  return Uint8Array.from(
    s
      .split("\n")
      .map((l) => l.replace(/#.*/, ""))
      .join(" ")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map((h) => parseInt(h, 16)),
  );
}

describe("nlmsghdr", () => {
  test("encodes length, type, flags, seq, port id; pads to 4 bytes", () => {
    const m = encodeMessage({ type: C.RTM_GETLINK, flags: C.NLM_F_REQUEST | C.NLM_F_DUMP, seq: 0x01020304, pid: 0 }, Uint8Array.of(1, 2, 3));
    expect(m).toEqual(
      hex(`
        13 00 00 00   # nlmsg_len 19 (16 + 3; the padding is not counted)
        12 00         # nlmsg_type RTM_GETLINK (18)
        01 03         # nlmsg_flags REQUEST | DUMP (0x301)
        04 03 02 01   # nlmsg_seq
        00 00 00 00   # nlmsg_pid
        01 02 03 00   # body + 1 byte padding
      `),
    );
  });

  test("splits a datagram holding several messages", () => {
    const buf = hex(`
      14 00 00 00  10 00 02 00  07 00 00 00  00 00 00 00   # RTM_NEWLINK, MULTI, seq 7
      aa bb cc dd                                          # 4 payload bytes
      14 00 00 00  03 00 02 00  07 00 00 00  00 00 00 00   # NLMSG_DONE, MULTI, seq 7
      00 00 00 00                                          # int error 0
    `);
    const ms = decodeMessages(buf);
    expect(ms.map((m) => [m.header.type, m.header.flags, m.header.seq, [...m.payload]])).toEqual([
      [C.RTM_NEWLINK, C.NLM_F_MULTI, 7, [0xaa, 0xbb, 0xcc, 0xdd]],
      [C.NLMSG_DONE, C.NLM_F_MULTI, 7, [0, 0, 0, 0]],
    ]);
  });

  test("a length that overruns the datagram is an error, not a crash", () => {
    expect(() => decodeMessages(hex("ff 00 00 00 10 00 00 00 00 00 00 00 00 00 00 00"))).toThrow(NetlinkDecodeError);
    expect(() => decodeMessages(hex("04 00 00 00 10 00 00 00 00 00 00 00 00 00 00 00"))).toThrow(NetlinkDecodeError);
  });
});

describe("nlmsgerr", () => {
  test("an ACK is errno 0", () => {
    const [m] = decodeMessages(
      hex(`
        24 00 00 00  02 00 00 01  05 00 00 00  ab 00 00 00   # NLMSG_ERROR, flags CAPPED (0x100), seq 5
        00 00 00 00                                          # error 0: ACK
        20 00 00 00  10 00 05 00  05 00 00 00  00 00 00 00   # the request's header only (capped)
      `),
    );
    expect(decodeError(m!)).toEqual({ errno: 0, request: { type: C.RTM_NEWLINK, flags: 5, seq: 5, pid: 0 } });
  });

  test("an error with the extended ACK message and offset", () => {
    const [m] = decodeMessages(
      hex(`
        4c 00 00 00  02 00 00 03  09 00 00 00  ab 00 00 00   # NLMSG_ERROR (76 bytes), flags CAPPED|ACK_TLVS (0x300)
        9b ff ff ff                                          # error -101 (ENETUNREACH)
        3c 00 00 00  18 00 05 06  09 00 00 00  00 00 00 00   # request header: RTM_NEWROUTE
        1d 00 01 00                                          # NLMSGERR_ATTR_MSG, 29 bytes
        4e 65 78 74 68 6f 70 20 68 61 73 20 69 6e 76 61 6c 69 64 20 67 61 74 65   # "Nexthop has invalid gate"
        00 00 00 00                                          # NUL + 3 bytes padding
        08 00 02 00  24 00 00 00                             # NLMSGERR_ATTR_OFFS 36
      `),
    );
    const e = decodeError(m!);
    expect(e.errno).toBe(101);
    expect(e.message).toBe("Nexthop has invalid gate");
    expect(e.offset).toBe(36);
  });
});

describe("attributes", () => {
  test("nested and flagged types are decoded without the flag bits", () => {
    const attrs = decodeAttrs(
      hex(`
        08 00 01 80  2a 00 00 00   # type 1 | NLA_F_NESTED, 4 bytes of data
        05 00 07 00  00 00 00 00   # type 7, one byte (0), 3 bytes padding
      `),
    );
    expect(attrs.map((a) => [a.type, a.nested, a.data.length])).toEqual([
      [1, true, 4],
      [7, false, 1],
    ]);
  });
  test("a truncated attribute is an error", () => {
    expect(() => decodeAttrs(hex("0c 00 01 00 00 00"))).toThrow(NetlinkDecodeError);
  });
});

describe("messages from the kernel", () => {
  test("RTM_NEWLINK of a vxlan (abridged: the attributes we read)", () => {
    const link = decodeLink(
      hex(`
        00 00 01 00  04 00 00 00  43 10 01 00  00 00 00 00   # ifinfomsg: AF_UNSPEC, ARPHRD_ETHER, index 4, UP|BROADCAST|RUNNING|MULTICAST|LOWER_UP
        0b 00 03 00  76 78 6c 61 6e 30 00 00                 # IFLA_IFNAME "vxlan0"
        08 00 04 00  78 05 00 00                             # IFLA_MTU 1400
        0a 00 01 00  02 00 00 00 00 01 00 00                 # IFLA_ADDRESS 02:00:00:00:00:01
        34 00 12 00                                          # IFLA_LINKINFO (52)
          09 00 01 00  76 78 6c 61 6e 00 00 00               #   IFLA_INFO_KIND "vxlan" (no NUL) + padding
          24 00 02 00                                        #   IFLA_INFO_DATA (36)
            08 00 01 00  2a 00 00 00                         #     IFLA_VXLAN_ID 42
            08 00 02 00  0a 00 00 02                         #     IFLA_VXLAN_GROUP 10.0.0.2
            08 00 03 00  03 00 00 00                         #     IFLA_VXLAN_LINK 3
            05 00 07 00  00 00 00 00                         #     IFLA_VXLAN_LEARNING 0
      `),
    );
    expect(link).toEqual({ family: 0, type: 1, index: 4, flags: 0x11043, change: 0, name: "vxlan0", mtu: 1400, address: "02:00:00:00:00:01", kind: "vxlan", vxlan: { id: 42, remote: "10.0.0.2", link: 3, learning: false } });
  });

  test("RTM_NEWADDR with lifetimes in IFA_CACHEINFO", () => {
    const a = decodeAddr(
      hex(`
        02 18 00 00  04 00 00 00                 # ifaddrmsg: AF_INET, /24, flags 0, scope universe, index 4
        08 00 01 00  ac 10 00 05                 # IFA_ADDRESS 172.16.0.5
        08 00 02 00  ac 10 00 05                 # IFA_LOCAL 172.16.0.5
        14 00 06 00                              # IFA_CACHEINFO
          08 07 00 00                            #   ifa_prefered 1800
          10 0e 00 00                            #   ifa_valid 3600
          64 00 00 00  c8 00 00 00               #   cstamp 100, tstamp 200
      `),
    );
    expect(a).toEqual({ family: 2, prefixlen: 24, flags: 0, scope: 0, index: 4, address: "172.16.0.5", local: "172.16.0.5", cacheinfo: { preferred: 1800, valid: 3600, created: 100, updated: 200 } });
  });

  test("RTM_NEWROUTE in a table above 255 (RTA_TABLE) with a next hop", () => {
    const r = decodeRoute(
      hex(`
        02 0c 00 00  fc c9 00 01  00 00 00 00    # rtmsg: AF_INET, /12, table 252 (RT_TABLE_COMPAT), proto 201, universe, unicast
        08 00 0f 00  e8 03 00 00                 # RTA_TABLE 1000
        08 00 01 00  0a 60 00 00                 # RTA_DST 10.96.0.0
        08 00 05 00  0a 00 00 fe                 # RTA_GATEWAY 10.0.0.254
        08 00 04 00  03 00 00 00                 # RTA_OIF 3
      `),
    );
    expect(r).toEqual({ family: 2, dstLen: 12, srcLen: 0, tos: 0, table: 252, protocol: 201, scope: 0, type: 1, flags: 0, tableId: 1000, dst: "10.96.0.0", gateway: "10.0.0.254", oif: 3 });
  });

  test("an AF_BRIDGE forwarding entry of a vxlan (the all-zero flood entry)", () => {
    const n = decodeNeigh(
      hex(`
        07 00 00 00  04 00 00 00  82 00 02 01    # ndmsg: AF_BRIDGE, index 4, NUD_PERMANENT|NUD_NOARP, NTF_SELF, type 1
        0a 00 02 00  00 00 00 00 00 00 00 00     # NDA_LLADDR 00:00:00:00:00:00
        08 00 01 00  0a 00 00 02                 # NDA_DST 10.0.0.2
        08 00 08 00  03 00 00 00                 # NDA_IFINDEX 3
      `),
    );
    expect(n).toEqual({ family: 7, index: 4, state: 0x82, flags: 2, type: 1, lladdr: "00:00:00:00:00:00", dst: "10.0.0.2", ifindex: 3 });
  });
});

describe("round trips", () => {
  const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join("."));
  const u8 = fc.nat(255);
  const u32 = fc.nat(0xffffffff);

  test("routes", () => {
    fc.assert(
      fc.property(u8, u8, u8, u8, u32, fc.option(ipv4, { nil: undefined }), fc.option(ipv4, { nil: undefined }), fc.option(u32, { nil: undefined }), (len, table, proto, type, flags, dst, gw, prio) => {
        const m = { family: 2, dstLen: len % 33, srcLen: 0, tos: 0, table, protocol: proto, scope: 0, type, flags, ...(dst ? { dst } : {}), ...(gw ? { gateway: gw } : {}), ...(prio !== undefined ? { priority: prio } : {}) };
        expect(decodeRoute(encodeRoute(m))).toEqual(m);
      }),
    );
  });

  test("addresses", () => {
    fc.assert(
      fc.property(ipv4, fc.nat(32), u32, u32, (local, prefixlen, valid, preferred) => {
        const m = { family: 2, prefixlen, flags: 0, scope: 0, index: 7, local, address: local, cacheinfo: { valid, preferred, created: 0, updated: 0 } };
        expect(decodeAddr(encodeAddr(m))).toEqual(m);
      }),
    );
  });

  test("rules", () => {
    fc.assert(
      fc.property(u32, u8, fc.option(fc.stringMatching(/^[a-z][a-z0-9]{0,14}$/), { nil: undefined }), fc.option(ipv4, { nil: undefined }), (priority, table, iif, src) => {
        const m = { family: 2, dstLen: 0, srcLen: src ? 16 : 0, tos: 0, table, action: 1, flags: 0, priority, ...(iif ? { iifname: iif } : {}), ...(src ? { src } : {}) };
        expect(decodeRule(encodeRule(m))).toEqual(m);
      }),
    );
  });

  test("links with vxlan data", () => {
    fc.assert(
      fc.property(fc.nat(0xffffff), fc.nat(0xffff), fc.boolean(), ipv4, fc.integer({ min: 68, max: 9000 }), (id, port, learning, remote, mtu) => {
        const m = { family: 0, type: 0, index: 0, flags: 1, change: 1, name: "vxlan0", mtu, kind: "vxlan", vxlan: { id, port, learning, remote, link: 3 } };
        expect(decodeLink(encodeLink(m))).toEqual(m);
      }),
    );
  });

  test("neighbours", () => {
    const m = { family: 7, index: 4, state: 0x80, flags: 2, type: 0, lladdr: "02:aa:bb:cc:dd:ee", dst: "10.1.2.3", vni: 42, port: 4789, ifindex: 3, master: 9 };
    expect(decodeNeigh(encodeNeigh(m))).toEqual(m);
  });
});

describe("IPv6 text", () => {
  test.each([
    ["::", "::"],
    ["fe80::1", "fe80::1"],
    ["2606:4700:4700:0:0:0:0:1111", "2606:4700:4700::1111"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["2001:DB8::", "2001:db8::"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"],
  ])("%s → %s", (text, canonical) => {
    expect(formatIpv6(parseIpv6(text)!)).toBe(canonical);
  });
  test.each(["", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "g::1", "1:2:3:4:5:6:7", "::1.2.3.4"])("rejects %p", (text) => {
    expect(parseIpv6(text)).toBeUndefined();
  });
});
