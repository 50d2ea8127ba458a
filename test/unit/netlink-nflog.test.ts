// nfnetlink_log: the configuration requests, the packet decoder (fixtures are messages the kernel
// sent for the NFLOG rule of a throwaway namespace: udp and tcp to 203.0.113.5, udp to
// 2001:db8:1::5, an MLD report with its hop-by-hop header) and the drop report (issue 13 §5).
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  decodeIpHeader,
  decodeNflogPacket,
  describeDestination,
  newDropReportState,
  nflogBindRequest,
  nflogModeRequest,
  nflogPfRequest,
  NFULNL_CFG_CMD_PF_BIND,
  planDropReport,
  recordDrops,
  type LoggedPacket,
} from "../../src/core/netlink/nflog.ts";
import { decodeMessages, encodeMessage, NetlinkDecodeError } from "../../src/core/netlink/wire.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const one = (s: string) => decodeMessages(hex(s))[0]!;

const UDP4 = "6000000000040000000000000000000002001069080001000800030005000a0000000000080005000000000308000b000000000008000e0000000000220009004500001ea3e04000401150de0a090002cb007105ea3eca6c000a462c780a0000";
const TCP4 = "7c00000000040000000000000000000002001069080001000800030005000a0000000000080005000000000308000b000000000008000e0000000000400009004500003cb5da400040063ed10a090002cb007105ecbc01bb76d3b55900000000a002faf0463f0000020405b40402080a146ff60e000000000103030a";
const UDP6 = "740000000004000000000000000000000a0010690800010086dd030005000a0000000000080005000000000308000b000000000008000e000000000036000900600f5504000a114020010db800000000000000000000000220010db8000100000000000000000005d29c04aa000a5b95790a0000";
const MLD6 = "980000000004000000000000000000000a0010690800010086dd030005000a0000000000080005000000000308000200000000d4640009006000000000380001fe8000000000000048f005fffe449fe5ff0200000000000000000000000000163a000502000001008f00e1a90000000204000000ff0200000000000000000001ff00000204000000ff0200000000000000000001ff449fe5";
const DONE = "1400000003000000000000000000000000001069";

describe("nfnetlink_log requests", () => {
  test("byte goldens: type (ULOG << 8) | CONFIG, request+ack, nfgenmsg with the group big-endian, one attribute", () => {
    const enc = (r: { type: number; flags: number; body: Uint8Array }) => Buffer.from(encodeMessage({ type: r.type, flags: r.flags, seq: 1, pid: 0 }, r.body)).toString("hex");
    // len 24, type 0x0401, flags 5, seq 1, pid 0 | family AF_INET, v0, res_id 0 | attr len 5 type 1 (CMD) = 3 (PF_BIND), padded
    expect(enc(nflogPfRequest(NFULNL_CFG_CMD_PF_BIND, 4))).toBe("1c000000010405000100000000000000" + "02000000" + "0500010003000000");
    expect(enc(nflogPfRequest(NFULNL_CFG_CMD_PF_BIND, 6))).toBe("1c000000010405000100000000000000" + "0a000000" + "0500010003000000");
    // BIND (1) of group 4201 = 0x1069, AF_UNSPEC
    expect(enc(nflogBindRequest(4201))).toBe("1c000000010405000100000000000000" + "00001069" + "0500010001000000");
    // MODE: attr len 10 type 2: copy_range 96 (be32), copy_mode 2 (packet), pad
    expect(enc(nflogModeRequest(4201))).toBe("20000000010405000100000000000000" + "00001069" + "0a000200000000600200" + "0000");
  });
});

describe("decodeNflogPacket (captured from the kernel)", () => {
  test("IPv4 udp and tcp: destination, protocol, port, group, output device", () => {
    expect(decodeNflogPacket(one(UDP4))).toEqual({ group: 4201, family: 4, dst: "203.0.113.5", proto: "udp", port: 51820, outIndex: 3 });
    expect(decodeNflogPacket(one(TCP4))).toEqual({ group: 4201, family: 4, dst: "203.0.113.5", proto: "tcp", port: 443, outIndex: 3 });
  });
  test("IPv6 udp; an MLD report through its hop-by-hop header is icmpv6", () => {
    expect(decodeNflogPacket(one(UDP6))).toEqual({ group: 4201, family: 6, dst: "2001:db8:1::5", proto: "udp", port: 1194, outIndex: 3 });
    expect(decodeNflogPacket(one(MLD6))).toEqual({ group: 4201, family: 6, dst: "ff02::16", proto: "icmpv6", outIndex: 3 });
  });
  test("the end of a batch (NLMSG_DONE) and other messages are not packets", () => {
    expect(decodeNflogPacket(one(DONE))).toBeUndefined();
    const m = one(UDP4);
    expect(decodeNflogPacket({ ...m, header: { ...m.header, type: 0x0401 } })).toBeUndefined();
  });
  test("a payload cut short or not IP: no packet; malformed attributes: a decode error", () => {
    expect(decodeIpHeader(hex("4500001e"))).toBeUndefined();
    expect(decodeIpHeader(hex("00".repeat(40)))).toBeUndefined();
    // An IPv4 header whose copy ends before the ports: the protocol without a port.
    expect(decodeIpHeader(hex("4500001ea3e04000401150de0a090002cb007105"))).toEqual({ family: 4, dst: "203.0.113.5", proto: "udp" });
    // A later fragment (offset 185) has no ports.
    expect(decodeIpHeader(hex("4500001ea3e000b9401150de0a090002cb007105ea3eca6c"))).toEqual({ family: 4, dst: "203.0.113.5", proto: "udp" });
    const m = one(UDP4);
    expect(() => decodeNflogPacket({ ...m, payload: m.payload.subarray(0, 3) })).toThrow(NetlinkDecodeError);
    const bad = m.payload.slice();
    bad[4] = 0xff; // first attribute's length past the end
    expect(() => decodeNflogPacket({ ...m, payload: bad })).toThrow(NetlinkDecodeError);
  });
});

describe("decodeNflogPacket on hostile bytes", () => {
  test("property: any bytes after a packet header decode or throw NetlinkDecodeError, nothing else", () => {
    const head = one(UDP4);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          const p = decodeNflogPacket({ header: head.header, payload: bytes });
          if (p) expect(["tcp", "udp", "icmp", "icmpv6", "sctp", "fragment"].includes(p.proto) || p.proto.startsWith("proto ")).toBe(true);
        } catch (e) {
          expect(e).toBeInstanceOf(NetlinkDecodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });
  test("property: any IP header bytes give a result or undefined, never an exception", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => void decodeIpHeader(bytes)), { numRuns: 2000 });
  });
});

const pkt = (dst: string, proto: string, port?: number): LoggedPacket => ({ group: 4201, family: 4, dst, proto, ...(port !== undefined ? { port } : {}) });

describe("planDropReport", () => {
  test("the first drops at once, naming address, protocol and port, with the VPN_TRAFFIC_PORT hint", () => {
    const s = newDropReportState();
    expect(planDropReport(s, 0, "eth0")).toBeUndefined();
    recordDrops(s, [pkt("203.0.113.5", "udp", 51820), pkt("203.0.113.5", "udp", 51820), pkt("203.0.113.5", "udp", 51820)]);
    expect(planDropReport(s, 1000, "eth0")).toBe(
      "the kill switch dropped 3 packets to 203.0.113.5 udp/51820 on eth0 — if that is your VPN server, add 51820 to VPN_TRAFFIC_PORT",
    );
    expect(planDropReport(s, 1001, "eth0")).toBeUndefined();
  });
  test("at most once a minute; counts since the last report; the destination dropped most first", () => {
    const s = newDropReportState();
    recordDrops(s, [pkt("203.0.113.5", "tcp", 443)]);
    expect(planDropReport(s, 0, "eth0")).toBe("the kill switch dropped 1 packet to 203.0.113.5 tcp/443 on eth0 — if that is your VPN server, add 443 to VPN_TRAFFIC_PORT");
    recordDrops(s, [pkt("198.51.100.1", "icmp"), pkt("203.0.113.5", "udp", 1194), pkt("203.0.113.5", "udp", 1194)]);
    expect(planDropReport(s, 30_000, "eth0")).toBeUndefined();
    expect(planDropReport(s, 59_999, "eth0")).toBeUndefined();
    expect(planDropReport(s, 60_000, "eth0")).toBe(
      "the kill switch dropped 2 packets to 203.0.113.5 udp/1194 on eth0 (and 1 packet to 1 other destination) — if that is your VPN server, add 1194 to VPN_TRAFFIC_PORT",
    );
    expect(s.pending.size).toBe(0);
    expect(planDropReport(s, 200_000, "eth0")).toBeUndefined();
  });
  test("a tcp or udp destination takes the line before other protocols, even dropped less (the ICMP errors a stale VPN session draws)", () => {
    const s = newDropReportState();
    // What an OpenVPN client with a wrong VPN_TRAFFIC_PORT produced in the lab in one poll: the
    // gateway's port unreachable to the server's packets for the old session, and its own hello.
    recordDrops(s, [pkt("198.51.100.1", "icmp"), pkt("198.51.100.1", "icmp"), pkt("198.51.100.1", "udp", 1194)]);
    expect(planDropReport(s, 0, "eth0")).toBe(
      "the kill switch dropped 1 packet to 198.51.100.1 udp/1194 on eth0 (and 2 packets to 1 other destination) — if that is your VPN server, add 1194 to VPN_TRAFFIC_PORT",
    );
  });
  test("multicast, broadcast and link-local destinations (router solicitations, MLD) never take the report", () => {
    const s = newDropReportState();
    const mld = decodeNflogPacket(one(MLD6))!;
    recordDrops(s, [mld, { ...mld, dst: "fe80::1" }, pkt("224.0.0.22", "proto 2"), pkt("255.255.255.255", "udp", 67), pkt("169.254.169.254", "tcp", 80)]);
    expect(planDropReport(s, 0, "eth0")).toBeUndefined();
    recordDrops(s, [pkt("203.0.113.5", "udp", 51820), mld]);
    expect(planDropReport(s, 1, "eth0")).toBe("the kill switch dropped 1 packet to 203.0.113.5 udp/51820 on eth0 — if that is your VPN server, add 51820 to VPN_TRAFFIC_PORT");
  });

  test("no port hint for protocols without ports", () => {
    const s = newDropReportState();
    recordDrops(s, [pkt("198.51.100.1", "icmp")]);
    expect(planDropReport(s, 0, "eth0")).toBe("the kill switch dropped 1 packet to 198.51.100.1 icmp on eth0");
    expect(describeDestination({ group: 1, family: 6, dst: "2001:db8::1", proto: "tcp", port: 80 })).toBe("2001:db8::1 tcp/80");
  });
  test("memory is bounded: past 1000 destinations in a minute the rest are counted together", () => {
    const s = newDropReportState();
    const many = Array.from({ length: 5000 }, (_, i) => pkt(`10.${i >> 8}.${i & 255}.1`, "udp", 1));
    recordDrops(s, many);
    expect(s.pending.size).toBe(1001);
    const text = planDropReport(s, 0, "eth0")!;
    // A named destination leads; the others bucket is counted, never named.
    expect(text).toStartWith("the kill switch dropped 1 packet to 10.0.0.1 udp/1 on eth0 (and 4999 packets to more than 999 other destinations)");
  });
});
