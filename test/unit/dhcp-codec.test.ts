// The DHCP codec against annotated golden bytes, real dnsmasq captures, round-trip properties
// and fuzzing (nothing but DecodeError may escape the decoders).
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  DecodeError,
  MessageType,
  Opt,
  bytesToMac,
  chaddrMac,
  clientIdFromMac,
  clientIdFromName,
  decodeIpUdp,
  decodeMessage,
  encodeIpUdp,
  encodeMessage,
  internetChecksum,
  maskToPrefixLength,
  prefixLengthToMask,
  type DhcpMessage,
  type DhcpOptions,
} from "../../src/core/dhcp/codec.ts";
import { leaseFromAck } from "../../src/core/dhcp/machine.ts";
import { readHexFixture } from "../fixtures/dhcp/fake-server.ts";

const hex = (parts: string[]) => Uint8Array.from(Buffer.from(parts.join(""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function chaddr(mac: string): Uint8Array {
  const b = new Uint8Array(16);
  b.set(Buffer.from(mac.replaceAll(":", ""), "hex"));
  return b;
}

// A DISCOVER as our client sends it, field by field (RFC 2131 §2 figure 1, RFC 2132 options).
const GOLDEN_DISCOVER = hex([
  "01", //                      op: BOOTREQUEST
  "01", //                      htype: Ethernet (10Mb)
  "06", //                      hlen: 6-byte MAC
  "00", //                      hops
  "12345678", //                xid
  "0003", //                    secs: 3 s since we started
  "0000", //                    flags: broadcast bit OFF, so the server unicasts the OFFER to our MAC
  "00000000", //                ciaddr: none yet
  "00000000", //                yiaddr
  "00000000", //                siaddr
  "00000000", //                giaddr
  "021122334455" + "00".repeat(10), // chaddr: our MAC, then 10 bytes of padding
  "00".repeat(64), //           sname: empty
  "00".repeat(128), //          file: empty
  "63825363", //                magic cookie 99.130.83.99
  "35" + "01" + "01", //        option 53 (message type), length 1: DISCOVER
  "3d" + "06" + "00" + "706f642d61", // option 61 (client id), length 6: type 0 + "pod-a"
  "0c" + "05" + "706f642d61", // option 12 (host name), length 5: "pod-a"
  "37" + "08" + "0103061a33363a3b", // option 55 (request list), length 8: 1 3 6 26 51 54 58 59
  "ff", //                      option 255: end
  "00".repeat(31), //           zero padding up to the 300 bytes of a classic BOOTP packet
]);

const DISCOVER: DhcpMessage = {
  op: 1,
  htype: 1,
  hlen: 6,
  hops: 0,
  xid: 0x12345678,
  secs: 3,
  flags: 0,
  ciaddr: "0.0.0.0",
  yiaddr: "0.0.0.0",
  siaddr: "0.0.0.0",
  giaddr: "0.0.0.0",
  chaddr: chaddr("02:11:22:33:44:55"),
  sname: "",
  file: "",
  options: {
    messageType: MessageType.discover,
    clientId: clientIdFromName("pod-a"),
    hostname: "pod-a",
    parameterRequestList: [1, 3, 6, 26, 51, 54, 58, 59],
    raw: [],
  },
};

// An ACK as dnsmasq orders its options, with a few extras (two DNS servers, MTU, domain).
const GOLDEN_ACK = hex([
  "02", //                      op: BOOTREPLY
  "01", //                      htype: Ethernet
  "06", //                      hlen
  "00", //                      hops
  "cafef00d", //                xid (echoes the client's)
  "0000", //                    secs
  "0000", //                    flags
  "00000000", //                ciaddr
  "ac100017", //                yiaddr: 172.16.0.23, the address we get
  "ac100001", //                siaddr: 172.16.0.1 (next server)
  "00000000", //                giaddr: no relay
  "021122334455" + "00".repeat(10), // chaddr
  "00".repeat(64), //           sname
  "00".repeat(128), //          file
  "63825363", //                magic cookie
  "35" + "01" + "05", //        53 message type: ACK
  "36" + "04" + "ac100001", //  54 server identifier: 172.16.0.1
  "33" + "04" + "00000e10", //  51 lease time: 3600 s
  "3a" + "04" + "00000708", //  58 T1: 1800 s
  "3b" + "04" + "00000c4e", //  59 T2: 3150 s
  "01" + "04" + "ffffff00", //  1 subnet mask: 255.255.255.0
  "1c" + "04" + "ac1000ff", //  28 broadcast address (not typed: kept raw)
  "03" + "04" + "ac100001", //  3 router: 172.16.0.1
  "06" + "08" + "ac100001" + "08080808", // 6 DNS: 172.16.0.1, 8.8.8.8
  "1a" + "02" + "05aa", //      26 interface MTU: 1450
  "0f" + "0d" + "636c75737465722e6c6f63616c", // 15 domain name "cluster.local" (raw)
  "ff", //                      end
]);

describe("golden bytes", () => {
  test("DISCOVER encodes to the annotated bytes and decodes back", () => {
    expect(GOLDEN_DISCOVER.length).toBe(300);
    expect(toHex(encodeMessage(DISCOVER))).toBe(toHex(GOLDEN_DISCOVER));
    expect(decodeMessage(GOLDEN_DISCOVER)).toEqual(DISCOVER);
  });

  test("ACK decodes field by field", () => {
    const m = decodeMessage(GOLDEN_ACK);
    expect(m.op).toBe(2);
    expect(m.xid).toBe(0xcafef00d);
    expect(m.yiaddr).toBe("172.16.0.23");
    expect(m.siaddr).toBe("172.16.0.1");
    expect(chaddrMac(m)).toBe("02:11:22:33:44:55");
    expect(m.options).toEqual({
      messageType: MessageType.ack,
      serverId: "172.16.0.1",
      leaseSeconds: 3600,
      renewalSeconds: 1800,
      rebindingSeconds: 3150,
      subnetMask: "255.255.255.0",
      routers: ["172.16.0.1"],
      dnsServers: ["172.16.0.1", "8.8.8.8"],
      mtu: 1450,
      raw: [
        { code: 28, data: Uint8Array.of(172, 16, 0, 255) },
        { code: 15, data: new TextEncoder().encode("cluster.local") },
      ],
    });
    // Re-encoding (our option order) decodes to the same message.
    expect(decodeMessage(encodeMessage(m))).toEqual(m);
  });

  test("ACK becomes the Lease the roles use", () => {
    expect(leaseFromAck(decodeMessage(GOLDEN_ACK), 5000)).toEqual({
      address: "172.16.0.23",
      prefixLength: 24,
      router: "172.16.0.1",
      dns: ["172.16.0.1", "8.8.8.8"],
      serverId: "172.16.0.1",
      leaseSeconds: 3600,
      renewSeconds: 1800,
      rebindSeconds: 3150,
      mtu: 1450,
      obtainedAt: 5000,
    });
  });
});

describe("real dnsmasq replies (test/fixtures/dhcp, captured on this machine)", () => {
  for (const [file, type] of [
    ["dnsmasq-offer.hex", MessageType.offer],
    ["dnsmasq-ack.hex", MessageType.ack],
  ] as const) {
    test(file, () => {
      const ip = decodeIpUdp(readHexFixture(file));
      expect(ip).toMatchObject({ src: "172.16.0.1", dst: "172.16.0.168", srcPort: 67, dstPort: 68 });
      const m = decodeMessage(ip.payload);
      expect(m.op).toBe(2);
      expect(m.xid).toBe(0xa26e7911);
      expect(m.flags).toBe(0);
      expect(m.yiaddr).toBe("172.16.0.168");
      expect(chaddrMac(m)).toBe("02:11:22:33:44:55");
      expect(m.options.messageType).toBe(type);
      expect(m.options.raw).toEqual([{ code: 28, data: Uint8Array.of(172, 16, 0, 255) }]);
      const lease = leaseFromAck(m, 0);
      expect(lease).toEqual({
        address: "172.16.0.168",
        prefixLength: 24,
        router: "172.16.0.1",
        dns: ["172.16.0.1"],
        serverId: "172.16.0.1",
        leaseSeconds: 43200,
        renewSeconds: 21600,
        rebindSeconds: 37800,
        obtainedAt: 0,
      });
    });
  }

  test("the captured UDP checksum is partial (offload), and decodeIpUdp does not care", () => {
    const b = readHexFixture("dnsmasq-ack.hex");
    const udpLen = (b[24]! << 8) | b[25]!;
    const pseudo = new Uint8Array(12 + udpLen);
    pseudo.set(b.subarray(12, 20));
    pseudo[9] = 17;
    pseudo[10] = udpLen >> 8;
    pseudo[11] = udpLen & 255;
    pseudo.set(b.subarray(20, 20 + udpLen), 12);
    expect(internetChecksum(pseudo)).not.toBe(0); // a verifying decoder would drop this reply
    expect(() => decodeIpUdp(b)).not.toThrow();
  });
});

describe("options", () => {
  const base = () => decodeMessage(GOLDEN_DISCOVER);
  const withOptions = (opts: string) => {
    const b = new Uint8Array(240 + opts.length / 2);
    b.set(GOLDEN_DISCOVER.subarray(0, 240));
    b.set(Buffer.from(opts, "hex"), 240);
    return b;
  };

  test("long options are split at 255 bytes and joined again (RFC 3396)", () => {
    const m = base();
    const big = Uint8Array.from({ length: 600 }, (_, i) => i & 255);
    m.options.raw = [{ code: 224, data: big }];
    const bytes = encodeMessage(m);
    // 224 appears three times: 255 + 255 + 90 bytes.
    expect(toHex(bytes)).toContain("e0ff0001");
    expect(decodeMessage(bytes).options.raw).toEqual([{ code: 224, data: big }]);
  });

  test("pad bytes are skipped and a missing END is tolerated", () => {
    const m = decodeMessage(withOptions("0000350102" + "00" + "3604ac100001"));
    expect(m.options.messageType).toBe(MessageType.offer);
    expect(m.options.serverId).toBe("172.16.0.1");
  });

  test("Rapid Commit (80) is an empty option: encoded as 50 00, decoded to true; absent stays undefined", () => {
    const m = base();
    m.options.rapidCommit = true;
    const bytes = encodeMessage(m);
    expect(toHex(bytes.subarray(240))).toContain("5000");
    expect(decodeMessage(bytes).options.rapidCommit).toBe(true);
    expect(decodeMessage(bytes).options.raw).toEqual([]);
    expect(decodeMessage(withOptions("350105ff")).options.rapidCommit).toBeUndefined();
    expect(decodeMessage(withOptions("3501055000ff")).options).toMatchObject({ messageType: MessageType.ack, rapidCommit: true });
  });

  test("options after END are ignored", () => {
    expect(decodeMessage(withOptions("350102ff3604ac100001")).options.serverId).toBeUndefined();
  });

  test("option overload (52) reads options from file and sname", () => {
    const b = withOptions("3401033501050000ff");
    b.set(Buffer.from("3604ac100001ff", "hex"), 108); // file: server id
    b.set(Buffer.from("330400000e10ff", "hex"), 44); // sname: lease time
    const m = decodeMessage(b);
    expect(m.options.messageType).toBe(MessageType.ack);
    expect(m.options.serverId).toBe("172.16.0.1");
    expect(m.options.leaseSeconds).toBe(3600);
    expect(m.file).toBe("");
    expect(m.sname).toBe("");
    expect(m.options.raw).toEqual([]);
  });

  test.each([
    ["option running past the end", "3504ac10"],
    ["option without length byte", "35"],
    ["subnet mask of 3 bytes", "0103ffffff"],
    ["router list not a multiple of 4", "0306ac100001ac10"],
    ["empty DNS list", "0600"],
    ["message type of 2 bytes", "35020101"],
    ["lease time of 2 bytes", "33020e10"],
    ["MTU of 1 byte", "1a0105"],
    ["overload of 2 bytes", "34020101"],
    ["rapid commit with a byte", "500101"],
  ])("%s → DecodeError", (_name, opts) => {
    expect(() => decodeMessage(withOptions(opts))).toThrow(DecodeError);
  });

  test("short packets and a wrong cookie are DecodeErrors", () => {
    expect(() => decodeMessage(GOLDEN_DISCOVER.subarray(0, 239))).toThrow(DecodeError);
    const bad = GOLDEN_DISCOVER.slice();
    bad[236] = 0;
    expect(() => decodeMessage(bad)).toThrow(/magic cookie/);
  });

  test("client ids: pod name (type 0) and MAC (type 1)", () => {
    expect(toHex(clientIdFromName("pod-a"))).toBe("00706f642d61");
    expect(toHex(clientIdFromMac("02:11:22:33:44:55"))).toBe("01021122334455");
  });

  test("masks and prefix lengths", () => {
    for (let p = 0; p <= 32; p++) expect(maskToPrefixLength(prefixLengthToMask(p))).toBe(p);
    expect(maskToPrefixLength("255.0.255.0")).toBeUndefined();
  });
});

describe("IPv4 + UDP headers", () => {
  test("checksums are valid on send and the fields round-trip", () => {
    const payload = encodeMessage(DISCOVER);
    const b = encodeIpUdp({ src: "0.0.0.0", dst: "255.255.255.255", srcPort: 68, dstPort: 67, payload }, { id: 7 });
    expect(toHex(b.subarray(0, 20))).toBe(
      [
        "45", //       version 4, header 5 words
        "10", //       DSCP: low delay
        "0148", //     total length 328 = 20 + 8 + 300
        "0007", //     identification
        "0000", //     no fragmentation
        "40", //       TTL 64
        "11", //       protocol UDP
        toHex(b.subarray(10, 12)), // header checksum (verified below)
        "00000000", // source 0.0.0.0
        "ffffffff", // destination 255.255.255.255
      ].join(""),
    );
    expect(internetChecksum(b.subarray(0, 20))).toBe(0);
    expect(toHex(b.subarray(20, 26))).toBe("0044" + "0043" + "0134"); // 68 → 67, length 308
    // UDP checksum over pseudo-header + datagram sums to zero when correct.
    const pseudo = new Uint8Array(12 + 308);
    pseudo.set(b.subarray(12, 20));
    pseudo[9] = 17;
    pseudo[10] = 308 >> 8;
    pseudo[11] = 308 & 255;
    pseudo.set(b.subarray(20), 12);
    expect(internetChecksum(pseudo)).toBe(0);
    expect(decodeIpUdp(b)).toEqual({ src: "0.0.0.0", dst: "255.255.255.255", srcPort: 68, dstPort: 67, payload });
  });

  test("IPv4 options (IHL > 5) are skipped", () => {
    const b = encodeIpUdp({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 67, dstPort: 68, payload: Uint8Array.of(1, 2, 3) });
    const withOpts = new Uint8Array(b.length + 4);
    withOpts.set(b.subarray(0, 20));
    withOpts.set(Uint8Array.of(1, 1, 1, 0), 20); // NOP NOP NOP EOL
    withOpts.set(b.subarray(20), 24);
    withOpts[0] = 0x46;
    withOpts[3] = withOpts.length & 255;
    expect(decodeIpUdp(withOpts).payload).toEqual(Uint8Array.of(1, 2, 3));
  });

  test.each([
    ["IPv6", (b: Uint8Array) => void (b[0] = 0x60)],
    ["TCP", (b: Uint8Array) => void (b[9] = 6)],
    ["fragment", (b: Uint8Array) => void (b[6] = 0x20)],
    ["IHL below 5", (b: Uint8Array) => void (b[0] = 0x44)],
    ["total length beyond the buffer", (b: Uint8Array) => void (b[2] = 0xff)],
    ["UDP length beyond the packet", (b: Uint8Array) => void (b[24] = 0xff)],
    ["UDP length below 8", (b: Uint8Array) => void ((b[24] = 0), (b[25] = 7))],
  ])("%s → DecodeError", (_n, mutate) => {
    const b = encodeIpUdp({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 67, dstPort: 68, payload: new Uint8Array(10) });
    mutate(b);
    expect(() => decodeIpUdp(b)).toThrow(DecodeError);
  });
});

// ----------------------------------------------------------------------------------------------
// Properties.

const ipArb = fc.ipV4();
const textArb = (maxBytes: number) =>
  fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789-._ ÄéΩ"), maxLength: Math.floor(maxBytes / 2) });
const bytesArb = (max: number) => fc.uint8Array({ maxLength: max });
const TYPED = new Set([0, 1, 3, 6, 12, 26, 50, 51, 52, 53, 54, 55, 58, 59, 61, 80, 255]);
const rawArb = fc.uniqueArray(
  fc.record({ code: fc.integer({ min: 1, max: 254 }).filter((c) => !TYPED.has(c)), data: bytesArb(600) }),
  { selector: (r) => r.code, maxLength: 5 },
);
const u32 = fc.integer({ min: 0, max: 0xffffffff });

const optionsArb: fc.Arbitrary<DhcpOptions> = fc
  .record(
    {
      subnetMask: ipArb,
      routers: fc.array(ipArb, { minLength: 1, maxLength: 3 }),
      dnsServers: fc.array(ipArb, { minLength: 1, maxLength: 70 }), // > 255 bytes: split and joined
      hostname: textArb(200),
      mtu: fc.integer({ min: 0, max: 0xffff }),
      requestedAddress: ipArb,
      leaseSeconds: u32,
      messageType: fc.integer({ min: 1, max: 8 }),
      serverId: ipArb,
      parameterRequestList: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 300 }),
      renewalSeconds: u32,
      rebindingSeconds: u32,
      clientId: bytesArb(300),
      rapidCommit: fc.constant(true),
    },
    { requiredKeys: [] },
  )
  .chain((typed) => rawArb.map((raw) => ({ ...typed, raw })));

const messageArb: fc.Arbitrary<DhcpMessage> = fc.record({
  op: fc.integer({ min: 0, max: 255 }),
  htype: fc.integer({ min: 0, max: 255 }),
  hlen: fc.integer({ min: 0, max: 255 }),
  hops: fc.integer({ min: 0, max: 255 }),
  xid: u32,
  secs: fc.integer({ min: 0, max: 0xffff }),
  flags: fc.integer({ min: 0, max: 0xffff }),
  ciaddr: ipArb,
  yiaddr: ipArb,
  siaddr: ipArb,
  giaddr: ipArb,
  chaddr: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  sname: textArb(63),
  file: textArb(127),
  options: optionsArb,
});

describe("properties", () => {
  test("decode(encode(m)) == m", () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        expect(decodeMessage(encodeMessage(m))).toEqual(m);
      }),
      { numRuns: 400 },
    );
  });

  test("encode(decode(b)) re-decodes to the same message for any decodable b", () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const once = decodeMessage(encodeMessage(m));
        expect(toHex(encodeMessage(once))).toBe(toHex(encodeMessage(m)));
      }),
      { numRuns: 200 },
    );
  });

  test("IPv4/UDP: decode(encode(d)) == d and the header checksum verifies", () => {
    fc.assert(
      fc.property(ipArb, ipArb, fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), bytesArb(1500), (src, dst, sp, dp, payload) => {
        const b = encodeIpUdp({ src, dst, srcPort: sp, dstPort: dp, payload });
        expect(internetChecksum(b.subarray(0, 20))).toBe(0);
        expect(decodeIpUdp(b)).toEqual({ src, dst, srcPort: sp, dstPort: dp, payload });
      }),
      { numRuns: 200 },
    );
  });

  test("chaddr MAC text round-trips", () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), (b) => void expect(Buffer.from(bytesToMac(b).replaceAll(":", ""), "hex")).toEqual(Buffer.from(b))));
  });
});

// ----------------------------------------------------------------------------------------------
// Fuzzing: whatever arrives, the decoders return or throw DecodeError, and terminate.

function onlyDecodeErrors(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
  }
}

const realAck = decodeIpUdp(readHexFixture("dnsmasq-ack.hex")).payload;

describe("fuzz", () => {
  test("random bytes", () => {
    fc.assert(
      fc.property(bytesArb(2000), (b) => {
        onlyDecodeErrors(() => decodeMessage(b));
        onlyDecodeErrors(() => decodeIpUdp(b));
      }),
      { numRuns: 2000 },
    );
  });

  test("random option areas behind a valid header (exercises the option walker)", () => {
    fc.assert(
      fc.property(bytesArb(600), fc.integer({ min: 0, max: 3 }), (opts, overload) => {
        const b = new Uint8Array(240 + 3 + opts.length);
        b.set(GOLDEN_ACK.subarray(0, 240));
        b.set([Opt.overload, 1, overload], 240);
        b.set(opts, 243);
        // Random sname/file contents too, read as options when overloaded.
        b.set(opts.subarray(0, Math.min(opts.length, 192)), 44);
        onlyDecodeErrors(() => decodeMessage(b));
      }),
      { numRuns: 3000 },
    );
  });

  test("every truncation of real and golden packets", () => {
    for (const full of [realAck, GOLDEN_ACK, GOLDEN_DISCOVER, readHexFixture("dnsmasq-offer.hex")]) {
      for (let n = 0; n <= full.length; n++) {
        onlyDecodeErrors(() => decodeMessage(full.subarray(0, n)));
        onlyDecodeErrors(() => decodeIpUdp(full.subarray(0, n)));
      }
    }
  });

  test("random byte flips in a real ACK", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(realAck.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 20 }), (flips) => {
        const b = realAck.slice();
        for (const [i, v] of flips) b[i] = v;
        onlyDecodeErrors(() => {
          const m = decodeMessage(b);
          leaseFromAck(m, 0); // must not throw either
        });
      }),
      { numRuns: 2000 },
    );
  });

  test("non-Uint8Array input is a DecodeError, not a TypeError", () => {
    expect(() => decodeMessage("nope" as unknown as Uint8Array)).toThrow(DecodeError);
    expect(() => decodeIpUdp(null as unknown as Uint8Array)).toThrow(DecodeError);
  });
});
