// Our rtnetlink requests against iproute2's. test/fixtures/netlink/*.strace hold what `ip` and
// `bridge` (iproute2 6.1) sent for each operation (captured by test/fixtures/netlink/capture.sh in
// a throwaway namespace: lo=1, veth1=2, veth0=3, vxlan0=4). For each, our request must decode to
// the same typed message and carry the same nlmsg type and flags; sequence number and port id are
// masked. Where we deliberately send something else, the case lists the fields and the attributes
// (iproute2-only) — and the test checks that they really differ, so the lists stay true.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as C from "../../src/core/netlink/constants.ts";
import { decodeAddr, decodeLink, decodeNeigh, decodeRoute, decodeRule } from "../../src/core/netlink/messages.ts";
import * as R from "../../src/core/netlink/requests.ts";
import { attrTypes, decodeMessages, encodeMessage, type NlMessage } from "../../src/core/netlink/wire.ts";

const DIR = join(import.meta.dir, "../fixtures/netlink");
const VETH0 = 3;
const VXLAN0 = 4;

/** Every buffer sent, in order, from strace's hex dumps ("-e write="). */
function capturedBuffers(name: string): Uint8Array[] {
  const out: number[][] = [];
  for (const line of readFileSync(join(DIR, `${name}.strace`), "utf8").split("\n")) {
    if (/^(sendmsg|sendto)\(/.test(line)) out.push([]);
    else if (line.startsWith(" | ") && out.length > 0) {
      // " | 00000  28 00 00 00 12 00 01 03  8f 2c ...  (ascii) |": the hex is columns 10..58
      for (const h of line.slice(10, 59).trim().split(/\s+/)) if (/^[0-9a-f]{2}$/.test(h)) out.at(-1)!.push(parseInt(h, 16));
    }
  }
  return out.map((b) => Uint8Array.from(b));
}

/** The first message of each buffer (iproute2 pads some dump requests to a fixed-size buffer). */
function capturedMessages(name: string): NlMessage[] {
  return capturedBuffers(name).map((b) => {
    const len = new DataView(b.buffer).getUint32(0, true);
    return decodeMessages(b.subarray(0, len))[0]!;
  });
}

const BODY_LEN: Record<string, number> = { link: C.IFINFOMSG_LEN, addr: C.IFADDRMSG_LEN, route: C.RTMSG_LEN, rule: C.FIB_RULE_HDR_LEN, neigh: C.NDMSG_LEN };
const DECODE: Record<string, (p: Uint8Array) => object> = { link: decodeLink, addr: decodeAddr, route: decodeRoute, rule: decodeRule, neigh: decodeNeigh };

interface Case {
  fixture: string;
  /** Which captured message is the operation: the last one of this type (or the first). */
  type: number;
  first?: boolean;
  /** We ask for an ACK where iproute2 does not (why). */
  weAck?: string;
  kind: keyof typeof DECODE;
  ours: R.NlRequest;
  /** Typed fields where we differ from iproute2 on purpose, with why. */
  fieldsDiffer?: Record<string, string>;
  /** Attribute types iproute2 sends and we do not. */
  iproute2Adds?: Record<number, string>;
  /** Attribute types we send and iproute2 does not. */
  weAdd?: Record<number, string>;
}

const CASES: Case[] = [
  {
    fixture: "link-dump", type: C.RTM_GETLINK, kind: "link", ours: R.linkDumpRequest(),
    fieldsDiffer: { family: "ip asks AF_PACKET (17); AF_UNSPEC lists the same links", extMask: "we skip statistics and VF info (RTEXT_FILTER_SKIP_STATS) instead of asking for VFs" },
  },
  // (ip then asks for the veth peer by index, to print "veth0@veth1")
  { fixture: "link-get", type: C.RTM_GETLINK, first: true, kind: "link", ours: R.linkGetRequest("veth0") },
  {
    fixture: "link-add-vxlan", type: C.RTM_NEWLINK, kind: "link",
    ours: R.vxlanCreateRequest({ name: "vxlan0", mac: "02:00:00:00:00:01", mtu: 1400, vni: 42, dev: VETH0, port: 4789, remote: "10.0.0.2", local: "10.0.0.1", learning: false }),
  },
  { fixture: "link-set-up", type: C.RTM_NEWLINK, kind: "link", ours: R.linkSetRequest(VXLAN0, { up: true }) },
  { fixture: "link-set-mtu", type: C.RTM_NEWLINK, kind: "link", ours: R.linkSetRequest(VXLAN0, { mtu: 1300 }) },
  { fixture: "link-set-mac", type: C.RTM_NEWLINK, kind: "link", ours: R.linkSetRequest(VXLAN0, { mac: "02:00:00:00:00:02" }) },
  { fixture: "link-set-vxlan-remote", type: C.RTM_NEWLINK, kind: "link", ours: R.vxlanSetRemoteRequest(VXLAN0, "10.0.0.3") },
  { fixture: "link-del", type: C.RTM_DELLINK, kind: "link", ours: R.linkDeleteRequest(VXLAN0) },
  { fixture: "addr-add", type: C.RTM_NEWADDR, kind: "addr", ours: R.addrRequest("add", { family: 4, index: VXLAN0, local: "172.16.0.5", prefixlen: 24, valid: 3600, preferred: 1800 }) },
  { fixture: "addr-replace", type: C.RTM_NEWADDR, kind: "addr", ours: R.addrRequest("replace", { family: 4, index: VXLAN0, local: "172.16.0.5", prefixlen: 24, valid: "forever", preferred: "forever" }) },
  { fixture: "addr-del", type: C.RTM_DELADDR, kind: "addr", ours: R.addrRequest("delete", { family: 4, index: VXLAN0, local: "172.16.0.5", prefixlen: 24 }) },
  { fixture: "addr-dump", type: C.RTM_GETADDR, kind: "addr", ours: R.addrDumpRequest(4) },
  {
    fixture: "route-add", type: C.RTM_NEWROUTE, kind: "route",
    ours: R.routeRequest("add", { family: 4, dst: "10.96.0.0/12", via: "10.0.0.254", oif: VETH0, protocol: 201, metric: 5, table: 100 }),
  },
  {
    fixture: "route-add-onlink", type: C.RTM_NEWROUTE, kind: "route",
    ours: R.routeRequest("add", { family: 4, dst: "10.97.0.0/16", via: "10.9.9.9", oif: VETH0, onlink: true, protocol: 201 }),
  },
  {
    fixture: "route-replace-default", type: C.RTM_NEWROUTE, kind: "route",
    ours: R.routeRequest("replace", { family: 4, dst: "default", via: "172.16.0.1", oif: VXLAN0, protocol: 201 }),
  },
  {
    fixture: "route-add-unreachable", type: C.RTM_NEWROUTE, kind: "route",
    ours: R.routeRequest("add", { family: 4, dst: "default", type: "unreachable", table: 100, metric: 1000, protocol: 201 }),
  },
  {
    fixture: "route-del", type: C.RTM_DELROUTE, kind: "route",
    ours: R.routeRequest("delete", { family: 4, dst: "10.96.0.0/12", via: "10.0.0.254", oif: VETH0, protocol: 201, metric: 5, table: 100 }),
  },
  {
    // what client-init does to every IPv6 default route (the protocol and metric as read)
    fixture: "route-del-v6-default", type: C.RTM_DELROUTE, kind: "route",
    ours: R.routeRequest("delete", { family: 6, dst: "default", via: "fe80::1", oif: VETH0, protocol: 9, metric: 1024 }),
    fieldsDiffer: { dst: "ip writes IPv6 \"default\" as RTA_DST ::/0; a zero-length prefix needs no address" },
    iproute2Adds: { [C.RTA_DST]: "RTA_DST :: (see dst)" },
  },
  {
    fixture: "route-get-v6", type: C.RTM_GETROUTE, kind: "route", ours: R.routeGetRequest("2606:4700:4700::1111", 6),
    fieldsDiffer: { flags: "we ask for RTM_F_LOOKUP_TABLE for IPv6 too (ip sets it only for IPv4); the answer is the same route" },
  },
  { fixture: "route-dump", type: C.RTM_GETROUTE, kind: "route", ours: R.routeDumpRequest(undefined) },
  { fixture: "route-get", type: C.RTM_GETROUTE, kind: "route", ours: R.routeGetRequest("1.1.1.1", 4) },
  { fixture: "rule-add-iif", type: C.RTM_NEWRULE, kind: "rule", ours: R.ruleRequest("add", { family: 4, priority: 50, iif: "vxlan0", table: 100 }) },
  { fixture: "rule-add-from", type: C.RTM_NEWRULE, kind: "rule", ours: R.ruleRequest("add", { family: 4, priority: 60, from: "10.1.0.0/16", table: C.RT_TABLE_MAIN }) },
  { fixture: "rule-del", type: C.RTM_DELRULE, kind: "rule", ours: R.ruleRequest("delete", { family: 4, priority: 50, iif: "vxlan0", table: 100 }) },
  { fixture: "rule-dump", type: C.RTM_GETRULE, kind: "rule", ours: R.ruleDumpRequest(4) },
  { fixture: "fdb-dump", type: C.RTM_GETNEIGH, kind: "neigh", ours: R.fdbDumpRequest(VXLAN0) },
  {
    fixture: "neigh-flush", type: C.RTM_DELNEIGH, kind: "neigh", ours: R.neighDeleteRequest(4, VXLAN0, "172.16.0.9"),
    weAck: "ip fires the deletes and dumps again to see what is left; we want each answer (ENOENT: already gone)",
    fieldsDiffer: { state: "ip echoes the dumped entry's state; the kernel deletes by address and device", type: "likewise (RTN_UNICAST)", lladdr: "likewise" },
    iproute2Adds: { [C.NDA_LLADDR]: "NDA_LLADDR (echoed)", [C.NDA_PROBES]: "NDA_PROBES (echoed)", [C.NDA_CACHEINFO]: "NDA_CACHEINFO (echoed)" },
  },
  {
    fixture: "neigh-flush-dump", type: C.RTM_GETNEIGH, kind: "neigh", ours: R.neighDumpRequest(4, VXLAN0),
    fieldsDiffer: { family: "ip dumps every family (AF_UNSPEC) and skips IPv6 itself; we ask for IPv4 only" },
  },
];

function pick(c: Case): NlMessage {
  const fixture = c.fixture === "neigh-flush-dump" ? "neigh-flush" : c.fixture;
  const all = capturedMessages(fixture).filter((m) => m.header.type === c.type);
  const m = c.fixture === "neigh-flush-dump" || c.first ? all[0] : all.at(-1);
  if (!m) throw new Error(`${fixture}.strace has no message of type ${C.RTM_NAMES[c.type]}`);
  return m;
}

describe("our requests decode like iproute2's", () => {
  for (const c of CASES) {
    test(c.fixture, () => {
      const theirs = pick(c);
      const ours = decodeMessages(encodeMessage({ type: c.ours.type, flags: c.ours.flags, seq: 0, pid: 0 }, c.ours.body))[0]!;
      // header: type and flags (seq and port id masked)
      expect(ours.header.type).toBe(theirs.header.type);
      expect(ours.header.flags.toString(16)).toBe((theirs.header.flags | (c.weAck ? C.NLM_F_ACK : 0)).toString(16));
      if (c.weAck) expect(theirs.header.flags & C.NLM_F_ACK).toBe(0);
      const decode = DECODE[c.kind]!;
      const a = { ...decode(theirs.payload) } as Record<string, unknown>;
      const b = { ...decode(ours.payload) } as Record<string, unknown>;
      for (const f of Object.keys(c.fieldsDiffer ?? {})) {
        expect({ field: f, differs: JSON.stringify(a[f]) !== JSON.stringify(b[f]) }).toEqual({ field: f, differs: true });
        delete a[f];
        delete b[f];
      }
      expect(b).toEqual(a);
      // attributes by type: what only one side sends is listed in the case
      const fixed = BODY_LEN[c.kind]!;
      const ta = new Set(attrTypes(theirs, fixed));
      const tb = new Set(attrTypes(ours, fixed));
      expect([...ta].filter((t) => !tb.has(t)).sort()).toEqual(Object.keys(c.iproute2Adds ?? {}).map(Number).sort());
      expect([...tb].filter((t) => !ta.has(t)).sort()).toEqual(Object.keys(c.weAdd ?? {}).map(Number).sort());
    });
  }
});

// `ip ntable change` has no typed decoder here (we only ever send it): compared byte for byte.
test("neigh-retrans: ip ntable change name arp_cache dev vxlan0 retrans 250", () => {
  const theirs = capturedMessages("neigh-retrans").find((m) => m.header.type === C.RTM_SETNEIGHTBL);
  if (!theirs) throw new Error("neigh-retrans.strace has no RTM_SETNEIGHTBL message");
  const r = R.neighRetransRequest(VXLAN0, 250);
  const ours = decodeMessages(encodeMessage({ type: r.type, flags: r.flags, seq: 0, pid: 0 }, r.body))[0]!;
  expect(ours.header.type).toBe(theirs.header.type);
  // ip also sets NLM_F_REPLACE, which RTM_SETNEIGHTBL ignores
  expect(theirs.header.flags).toBe(ours.header.flags | C.NLM_F_REPLACE);
  // struct ndtmsg's family: ip leaves AF_UNSPEC (the kernel finds the table by its name), we say
  // AF_INET; everything after it (name "arp_cache", NDTA_PARMS {ifindex 4, retrans 250 ms as u64}) is the same
  expect([theirs.payload[0], ours.payload[0]]).toEqual([0, C.AF_INET]);
  expect([...ours.payload.subarray(1)]).toEqual([...theirs.payload.subarray(1)]);
});

test("every captured fixture is covered by a case", () => {
  const { readdirSync } = require("node:fs") as typeof import("node:fs");
  const fixtures = readdirSync(DIR).filter((f) => f.endsWith(".strace")).map((f) => f.replace(/\.strace$/, ""));
  const covered = new Set([...CASES.map((c) => (c.fixture === "neigh-flush-dump" ? "neigh-flush" : c.fixture)), "neigh-retrans"]);
  expect(fixtures.filter((f) => !covered.has(f))).toEqual([]);
});
