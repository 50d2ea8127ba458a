// The DHCP state machine, driven by hand: events in, actions out, time passed as numbers.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { MessageType, Opt, clientIdFromName, decodeMessage, encodeMessage, type DhcpMessage } from "../../src/core/dhcp/codec.ts";
import { DhcpMachine, leaseFromAck, type MachineAction, type MachineEvent } from "../../src/core/dhcp/machine.ts";
import type { Lease } from "../../src/core/dhcp/types.ts";
import { FakeServer, seededRandom } from "../fixtures/dhcp/fake-server.ts";

const MAC = "02:11:22:33:44:55";

function machine(random: () => number = () => 0.5, retry = {}) {
  return new DhcpMachine({ mac: MAC, clientId: clientIdFromName("pod-a"), hostname: "pod-a", random, retry });
}

const sends = (a: MachineAction[]) => a.filter((x): x is Extract<MachineAction, { type: "send" }> => x.type === "send");
const one = (a: MachineAction[]) => {
  const s = sends(a);
  expect(s.length).toBe(1);
  return s[0]!;
};
const find = <T extends MachineAction["type"]>(a: MachineAction[], type: T) => a.find((x) => x.type === type) as Extract<MachineAction, { type: T }> | undefined;

/** Run the machine's timer until it sends something or reports an outcome; returns the actions and the time. */
function fireTimer(m: DhcpMachine): { now: number; actions: MachineAction[] } {
  const now = m.timerAt!;
  expect(now).toBeDefined();
  return { now, actions: m.handle({ type: "timer", now }) };
}

/** discover → OFFER → REQUEST → ACK with a fake server; returns the bound lease. */
function bind(m: DhcpMachine, server: FakeServer, now = 0): Lease {
  const d = one(m.handle({ type: "discover", now, deadlineAt: now + 10_000 }));
  const offer = server.reply(d.message, d.from, d.to)!;
  const r = one(m.handle({ type: "packet", now: now + 1, message: offer }));
  const ack = server.reply(r.message, r.from, r.to)!;
  const b = find(m.handle({ type: "packet", now: now + 2, message: ack }), "bound")!;
  expect(b).toBeDefined();
  return b.lease;
}

describe("acquisition", () => {
  test("full exchange: DISCOVER → OFFER → REQUEST (50 + 54, same xid) → ACK → bound", () => {
    const m = machine();
    const server = new FakeServer();
    const a0 = m.handle({ type: "discover", now: 1000, deadlineAt: 11_000 });
    const d = one(a0);
    expect(m.state).toBe("selecting");
    expect(d.from).toBe("0.0.0.0");
    expect(d.to).toEqual({ kind: "broadcast" });
    expect(d.message).toMatchObject({ op: 1, htype: 1, hlen: 6, flags: 0, ciaddr: "0.0.0.0", secs: 0 });
    expect(d.message.options).toMatchObject({ messageType: MessageType.discover, hostname: "pod-a", clientId: clientIdFromName("pod-a") });
    expect(d.message.options.parameterRequestList).toEqual([1, 3, 6, 26, 51, 54, 58, 59]);
    expect(d.message.options.requestedAddress).toBeUndefined();
    expect(find(a0, "timer")).toEqual({ type: "timer", at: 1250 }); // random 0.5 → no jitter

    const offer = server.reply(d.message)!;
    const r = one(m.handle({ type: "packet", now: 1010, message: offer }));
    expect(m.state).toBe("requesting");
    expect(r.message.xid).toBe(d.message.xid);
    expect(r.message.ciaddr).toBe("0.0.0.0");
    expect(r.to).toEqual({ kind: "broadcast" });
    expect(r.message.options).toMatchObject({ messageType: MessageType.request, requestedAddress: "172.16.0.20", serverId: "172.16.0.1" });

    const ack = server.reply(r.message)!;
    const out = m.handle({ type: "packet", now: 1020, message: ack });
    expect(find(out, "bound")).toEqual({
      type: "bound",
      how: "selected",
      lease: {
        address: "172.16.0.20",
        prefixLength: 24,
        router: "172.16.0.1",
        dns: ["172.16.0.1"],
        serverId: "172.16.0.1",
        leaseSeconds: 3600,
        renewSeconds: 1800,
        rebindSeconds: 3150,
        obtainedAt: 1020,
      },
    });
    expect(m.state).toBe("bound");
    expect(m.timerAt).toBe(1020 + 1800_000); // T1
  });

  test("lost OFFERs: DISCOVER is retransmitted with doubling delays up to the cap, same xid, then fails at the deadline", () => {
    const m = machine(() => 0.5, { initialMs: 250, maxMs: 2000 });
    const first = one(m.handle({ type: "discover", now: 0, deadlineAt: 6000 }));
    const times: number[] = [0];
    for (;;) {
      const { now, actions } = fireTimer(m);
      const f = find(actions, "failed");
      if (f) {
        expect(now).toBe(6000);
        expect(f.step).toBe("discover");
        expect(f.reason).toBe(`no OFFER after ${times.length} DISCOVER(s) in 6000 ms`);
        break;
      }
      const s = one(actions);
      expect(s.message.xid).toBe(first.message.xid);
      expect(s.message.secs).toBe(Math.floor(now / 1000));
      times.push(now);
    }
    expect(times).toEqual([0, 250, 750, 1750, 3750, 5750]); // +250 +500 +1000 +2000 +2000
    expect(m.state).toBe("init");
    expect(m.timerAt).toBeUndefined();
  });

  test("jitter stays within ±25% and comes from the injected random source", () => {
    for (const [r, first] of [
      [0, 188], // 250 × 0.75 = 187.5
      [0.999999, 312], // 250 × ~1.25
    ] as const) {
      const m = machine(() => r);
      m.handle({ type: "discover", now: 0 });
      expect(m.timerAt).toBe(first);
    }
  });

  test("transaction ids come from the random source", () => {
    const a = one(machine(seededRandom(1)).handle({ type: "discover", now: 0 })).message.xid;
    const b = one(machine(seededRandom(1)).handle({ type: "discover", now: 0 })).message.xid;
    const c = one(machine(seededRandom(2)).handle({ type: "discover", now: 0 })).message.xid;
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });

  test("NAK → restart with a new xid at once; a second NAK backs off first", () => {
    let r = 0;
    const m = machine(() => [0.1, 0.5, 0.2, 0.5, 0.3, 0.5, 0.4, 0.5][r++ % 8]!); // xids vary, jitter stays 0
    const server = new FakeServer();
    server.requestMode = "nak";
    const d1 = one(m.handle({ type: "discover", now: 0, deadlineAt: 10_000 }));
    const r1 = one(m.handle({ type: "packet", now: 5, message: server.reply(d1.message)! }));
    const a = m.handle({ type: "packet", now: 10, message: server.reply(r1.message)! });
    const d2 = one(a);
    expect(d2.message.options.messageType).toBe(MessageType.discover);
    expect(d2.message.xid).not.toBe(d1.message.xid);
    expect(m.state).toBe("selecting");

    const r2 = one(m.handle({ type: "packet", now: 15, message: server.reply(d2.message)! }));
    const a2 = m.handle({ type: "packet", now: 20, message: server.reply(r2.message)! });
    expect(sends(a2)).toEqual([]); // no immediate DISCOVER this time
    expect(m.timerAt).toBe(20 + 250); // initial backoff (random 0.5: no jitter)
    server.requestMode = "ack";
    const { actions } = fireTimer(m);
    const d3 = one(actions);
    expect(d3.message.options.messageType).toBe(MessageType.discover);
    const r3 = one(m.handle({ type: "packet", now: 300, message: server.reply(d3.message)! }));
    expect(find(m.handle({ type: "packet", now: 301, message: server.reply(r3.message)! }), "bound")?.lease.address).toBe("172.16.0.20");
  });

  test("unanswered REQUESTs → back to DISCOVER after requestAttempts", () => {
    const m = machine(() => 0.5, { requestAttempts: 3 });
    const server = new FakeServer();
    const d = one(m.handle({ type: "discover", now: 0, deadlineAt: 60_000 }));
    one(m.handle({ type: "packet", now: 1, message: server.reply(d.message)! }));
    const kinds: number[] = [];
    for (let i = 0; i < 3; i++) kinds.push(one(fireTimer(m).actions).message.options.messageType!);
    expect(kinds).toEqual([MessageType.request, MessageType.request, MessageType.discover]);
    expect(m.state).toBe("selecting");
  });

  test("deadline while requesting names the step and the server", () => {
    const m = machine();
    const server = new FakeServer();
    const d = one(m.handle({ type: "discover", now: 0, deadlineAt: 700 }));
    one(m.handle({ type: "packet", now: 100, message: server.reply(d.message)! }));
    let f;
    while (!(f = find(fireTimer(m).actions, "failed")));
    expect(f.step).toBe("request");
    expect(f.reason).toMatch(/^no ACK from 172\.16\.0\.1 for 172\.16\.0\.20 after \d REQUEST\(s\) in 700 ms$/);
  });

  test("Rapid Commit (RFC 4039): DISCOVER carries option 80; an ACK with it binds from SELECTING in one round trip", () => {
    const m = machine();
    const server = new FakeServer();
    server.rapidCommit = true;
    const d = one(m.handle({ type: "discover", now: 0, deadlineAt: 10_000 }));
    expect(d.message.options.rapidCommit).toBe(true);
    const ack = server.reply(d.message)!;
    expect(ack.options).toMatchObject({ messageType: MessageType.ack, rapidCommit: true });
    // Through the codec, as it arrives.
    const out = m.handle({ type: "packet", now: 5, message: decodeMessage(encodeMessage(ack)) });
    expect(sends(out)).toEqual([]);
    expect(find(out, "bound")).toMatchObject({ how: "rapid commit", lease: { address: "172.16.0.20", serverId: "172.16.0.1", leaseSeconds: 3600, obtainedAt: 5 } });
    expect(m.state).toBe("bound");
    expect(m.timerAt).toBe(5 + 1800_000);
    expect(server.count(MessageType.request)).toBe(0);
  });

  test("Rapid Commit: a server without it OFFERs as usual; an ACK without option 80, or without a server id, is ignored while selecting", () => {
    const m = machine();
    const server = new FakeServer(); // rapidCommit off: like a dnsmasq without dhcp-rapid-commit
    const d = one(m.handle({ type: "discover", now: 0, deadlineAt: 10_000 }));
    const plain = server.answer(d.message, MessageType.ack, "172.16.0.20");
    expect(find(m.handle({ type: "packet", now: 1, message: plain }), "ignored")?.reason).toBe("ACK while selecting without Rapid Commit (option 80)");
    const noId = server.answer(d.message, MessageType.ack, "172.16.0.20");
    noId.options.rapidCommit = true;
    delete noId.options.serverId;
    expect(find(m.handle({ type: "packet", now: 2, message: noId }), "ignored")?.reason).toBe("Rapid Commit ACK without a server identifier (option 54)");
    const noLease = server.answer(d.message, MessageType.ack, "172.16.0.20");
    noLease.options.rapidCommit = true;
    delete noLease.options.leaseSeconds;
    expect(find(m.handle({ type: "packet", now: 3, message: noLease }), "ignored")?.reason).toBe("ACK without a lease time (option 51)");
    expect(m.state).toBe("selecting");
    const offer = server.reply(d.message)!;
    expect(offer.options.messageType).toBe(MessageType.offer);
    const r = one(m.handle({ type: "packet", now: 4, message: offer }));
    expect(m.state).toBe("requesting");
    expect(find(m.handle({ type: "packet", now: 5, message: server.reply(r.message)! }), "bound")?.how).toBe("selected");
  });

  test("Rapid Commit off (rapidCommit: false): no option 80 in DISCOVER, and a rapid ACK is not taken", () => {
    const m = new DhcpMachine({ mac: MAC, clientId: clientIdFromName("pod-a"), random: () => 0.5, rapidCommit: false });
    const server = new FakeServer();
    server.rapidCommit = true;
    const d = one(m.handle({ type: "discover", now: 0 }));
    expect(d.message.options.rapidCommit).toBeUndefined();
    expect(server.reply(d.message)!.options.messageType).toBe(MessageType.offer);
    const forged = server.answer(d.message, MessageType.ack, "172.16.0.20");
    forged.options.rapidCommit = true;
    expect(find(m.handle({ type: "packet", now: 1, message: forged }), "ignored")?.reason).toBe("ACK while selecting (Rapid Commit not asked for)");
    expect(m.state).toBe("selecting");
  });

  test("requestedAddress is a hint in the DISCOVER (option 50)", () => {
    const d = one(machine().handle({ type: "discover", now: 0, requestedAddress: "172.16.0.77" }));
    expect(d.message.options.requestedAddress).toBe("172.16.0.77");
  });

  test("INIT-REBOOT: REQUEST for the known address (50, no 54) → ACK; silence → DISCOVER with the hint; NAK → plain DISCOVER", () => {
    const server = new FakeServer();
    let m = machine();
    const r = one(m.handle({ type: "reboot", now: 0, address: "172.16.0.20", deadlineAt: 10_000 }));
    expect(m.state).toBe("rebooting");
    expect(r.message.options).toMatchObject({ messageType: MessageType.request, requestedAddress: "172.16.0.20" });
    expect(r.message.options.serverId).toBeUndefined();
    expect(r.message.ciaddr).toBe("0.0.0.0");
    expect(find(m.handle({ type: "packet", now: 5, message: server.reply(r.message)! }), "bound")?.how).toBe("rebooted");

    m = machine(() => 0.5, { rebootAttempts: 2 });
    one(m.handle({ type: "reboot", now: 0, address: "172.16.0.99", deadlineAt: 10_000 }));
    expect(one(fireTimer(m).actions).message.options.messageType).toBe(MessageType.request);
    const d = one(fireTimer(m).actions);
    expect(d.message.options).toMatchObject({ messageType: MessageType.discover, requestedAddress: "172.16.0.99" });

    m = machine();
    server.requestMode = "nak";
    const r2 = one(m.handle({ type: "reboot", now: 0, address: "172.16.0.99" }));
    const d2 = one(m.handle({ type: "packet", now: 5, message: server.reply(r2.message)! }));
    expect(d2.message.options.messageType).toBe(MessageType.discover);
    expect(d2.message.options.requestedAddress).toBeUndefined();
  });
});

describe("what is ignored", () => {
  function selecting() {
    const m = machine();
    const d = one(m.handle({ type: "discover", now: 0 }));
    return { m, d, server: new FakeServer() };
  }

  test("wrong xid", () => {
    const { m, d, server } = selecting();
    const offer = server.reply(d.message)!;
    offer.xid = (offer.xid + 1) >>> 0;
    const a = m.handle({ type: "packet", now: 1, message: offer });
    expect(find(a, "ignored")?.reason).toMatch(/^OFFER: xid 0x[0-9a-f]{8} is not ours/);
    expect(sends(a)).toEqual([]);
    expect(m.state).toBe("selecting");
  });

  test("another client's chaddr, a request (op 1), no message type, an ACK while selecting", () => {
    const { m, d, server } = selecting();
    const other = server.reply(d.message)!;
    other.chaddr[5] = 0x56;
    const req: DhcpMessage = { ...server.reply(d.message)!, op: 1 };
    const bootp = server.reply(d.message)!;
    delete bootp.options.messageType;
    const ack = server.answer(d.message, MessageType.ack, "172.16.0.20");
    for (const msg of [other, req, bootp, ack]) {
      const a = m.handle({ type: "packet", now: 1, message: msg });
      expect(a.map((x) => x.type)).toEqual(["ignored"]);
    }
    expect(m.state).toBe("selecting");
  });

  test("an OFFER without server id or address", () => {
    const { m, d, server } = selecting();
    const o1 = server.reply(d.message)!;
    delete o1.options.serverId;
    const o2 = server.reply(d.message)!;
    o2.yiaddr = "0.0.0.0";
    for (const o of [o1, o2]) expect(find(m.handle({ type: "packet", now: 1, message: o }), "ignored")).toBeDefined();
    expect(m.state).toBe("selecting");
  });

  test("an ACK from a server we did not request from", () => {
    const { m, d, server } = selecting();
    const r = one(m.handle({ type: "packet", now: 1, message: server.reply(d.message)! }));
    const other = new FakeServer();
    other.serverId = "172.16.0.2";
    const ack = other.answer(r.message, MessageType.ack, "172.16.0.20");
    expect(find(m.handle({ type: "packet", now: 2, message: ack }), "ignored")?.reason).toBe("ACK from 172.16.0.2, we requested from 172.16.0.1");
    expect(m.state).toBe("requesting");
  });

  test("an ACK without lease time is not a lease", () => {
    const { m, d, server } = selecting();
    const r = one(m.handle({ type: "packet", now: 1, message: server.reply(d.message)! }));
    const ack = server.reply(r.message)!;
    delete ack.options.leaseSeconds;
    expect(find(m.handle({ type: "packet", now: 2, message: ack }), "ignored")?.reason).toBe("ACK without a lease time (option 51)");
  });

  test("an early timer, a timer with none set, packets while bound", () => {
    const { m, d, server } = selecting();
    expect(find(m.handle({ type: "timer", now: 10 }), "ignored")?.reason).toMatch(/timer early/);
    const fresh = machine();
    expect(find(fresh.handle({ type: "timer", now: 10 }), "ignored")?.reason).toBe("timer with none set");
    const r = one(m.handle({ type: "packet", now: 1, message: server.reply(d.message)! }));
    const ack = server.reply(r.message)!;
    m.handle({ type: "packet", now: 2, message: ack });
    expect(find(m.handle({ type: "packet", now: 3, message: ack }), "ignored")?.reason).toBe("ACK while bound");
  });
});

describe("lease upkeep", () => {
  const T1 = 1800_000;
  const T2 = 3150_000;
  const LEASE = 3600_000;

  test("T1 → RENEWING: unicast REQUEST with ciaddr, no 50/54 → renewed", () => {
    const m = machine();
    const server = new FakeServer();
    const lease = bind(m, server, 0);
    const { now, actions } = fireTimer(m);
    expect(now).toBe(2 + T1);
    const r = one(actions);
    expect(m.state).toBe("renewing");
    expect(r.from).toBe(lease.address);
    expect(r.to).toEqual({ kind: "unicast", ip: "172.16.0.1" });
    expect(r.message.ciaddr).toBe(lease.address);
    expect(r.message.options.requestedAddress).toBeUndefined();
    expect(r.message.options.serverId).toBeUndefined();
    const b = find(m.handle({ type: "packet", now: now + 3, message: server.reply(r.message, r.from, r.to)! }), "bound")!;
    expect(b.how).toBe("renewed");
    expect(b.lease.obtainedAt).toBe(now + 3);
    expect(m.timerAt).toBe(now + 3 + T1);
  });

  test("no answer to unicast → retransmissions until T2 → REBINDING broadcast → rebound", () => {
    const m = machine(() => 0.5, { renewMaxMs: 60_000 });
    const server = new FakeServer();
    bind(m, server, 0);
    server.ignoreUnicast = true;
    const renewSends: number[] = [];
    let rebind: Extract<MachineAction, { type: "send" }> | undefined;
    for (;;) {
      const { now, actions } = fireTimer(m);
      const s = one(actions);
      if (s.to.kind === "broadcast") {
        expect(now).toBe(2 + T2);
        rebind = s;
        break;
      }
      renewSends.push(now);
      expect(server.reply(s.message, s.from, s.to)).toBeUndefined();
    }
    // 250, 500, ... doubling, then every 60 s: never more often than the cap once it is reached.
    const gaps = renewSends.slice(1).map((t, i) => t - renewSends[i]!);
    expect(gaps.slice(0, 4)).toEqual([250, 500, 1000, 2000]);
    expect(Math.max(...gaps)).toBe(60_000);
    expect(m.state).toBe("rebinding");
    expect(rebind.from).toBe("172.16.0.20");
    expect(rebind.message.ciaddr).toBe("172.16.0.20");
    const b = find(m.handle({ type: "packet", now: 2 + T2 + 5, message: server.reply(rebind.message, rebind.from, rebind.to)! }), "bound")!;
    expect(b.how).toBe("rebound");
    expect(m.state).toBe("bound");
  });

  test("silence until expiry → lost, state init, no timer", () => {
    const m = machine();
    const server = new FakeServer();
    const lease = bind(m, server, 0);
    let lost;
    let guard = 0;
    while (!lost) {
      const { now, actions } = fireTimer(m);
      lost = find(actions, "lost");
      if (lost) expect(now).toBe(2 + LEASE);
      expect(guard++).toBeLessThan(500);
    }
    expect(lost.lease).toEqual(lease);
    expect(lost.reason).toBe("lease on 172.16.0.20 expired");
    expect(m.state).toBe("init");
    expect(m.lease).toBeUndefined();
    expect(m.timerAt).toBeUndefined();
  });

  test("NAK while renewing → lost at once", () => {
    const m = machine();
    const server = new FakeServer();
    bind(m, server, 0);
    const r = one(fireTimer(m).actions);
    server.requestMode = "nak";
    const a = m.handle({ type: "packet", now: T1 + 10, message: server.reply(r.message, r.from, r.to)! });
    expect(find(a, "lost")?.reason).toBe("server 172.16.0.1 refused to renew 172.16.0.20 (NAK)");
    expect(m.state).toBe("init");
  });

  test("release: RELEASE unicast to the server with ciaddr and 54, then nothing", () => {
    const m = machine();
    const server = new FakeServer();
    const lease = bind(m, server, 0);
    const a = m.handle({ type: "release", now: 100 });
    const s = one(a);
    expect(s.from).toBe(lease.address);
    expect(s.to).toEqual({ kind: "unicast", ip: "172.16.0.1" });
    expect(s.message.ciaddr).toBe(lease.address);
    expect(s.message.options).toMatchObject({ messageType: MessageType.release, serverId: "172.16.0.1", clientId: clientIdFromName("pod-a") });
    expect(find(a, "timer")).toEqual({ type: "timer", at: undefined });
    expect(m.state).toBe("released");
    expect(find(m.handle({ type: "release", now: 101 }), "ignored")).toBeDefined();
    expect(find(m.handle({ type: "timer", now: T1 }), "ignored")).toBeDefined();
  });

  test("one-shot renew with a deadline: fails back to bound and keeps the lease", () => {
    const m = machine();
    const server = new FakeServer();
    const lease = bind(m, server, 0);
    server.requestMode = "silent";
    one(m.handle({ type: "renew", now: 1000, deadlineAt: 3000 }));
    let f;
    while (!(f = find(fireTimer(m).actions, "failed")));
    expect(f.step).toBe("renew");
    expect(f.reason).toMatch(/^no ACK from 172\.16\.0\.1 after \d REQUEST\(s\) for 172\.16\.0\.20 in 2000 ms$/);
    expect(m.state).toBe("bound");
    expect(m.lease).toEqual(lease);
    expect(m.timerAt).toBe(lease.obtainedAt + T1);
  });

  test("one-shot renew asking for a lease time: option 51 in that REQUEST and its retransmissions only", () => {
    const m = machine();
    const server = new FakeServer();
    bind(m, server, 0);
    server.requestMode = "silent";
    const r = one(m.handle({ type: "renew", now: 1000, deadlineAt: 30_000, leaseSeconds: 120 }));
    expect(r.message.ciaddr).toBe("172.16.0.20");
    expect(r.to).toEqual({ kind: "unicast", ip: "172.16.0.1" });
    expect(decodeMessage(encodeMessage(r.message)).options.leaseSeconds).toBe(120);
    expect(one(fireTimer(m).actions).message.options.leaseSeconds).toBe(120);
    let f;
    while (!(f = find(fireTimer(m).actions, "failed")));
    // The next renewal (T1, or a plain renew event) asks for nothing.
    const again = one(m.handle({ type: "renew", now: 40_000, deadlineAt: 42_000 }));
    expect(again.message.options.leaseSeconds).toBeUndefined();
  });

  test("bind: adopting a lease sets T1; an expired one is lost at once; an infinite one sets no timer", () => {
    const base: Lease = { address: "172.16.0.30", prefixLength: 24, dns: [], serverId: "172.16.0.1", leaseSeconds: 120, renewSeconds: 60, rebindSeconds: 105, obtainedAt: 1000 };
    let m = machine();
    m.handle({ type: "bind", now: 1000, lease: base });
    expect(m.timerAt).toBe(61_000);
    m = machine();
    expect(find(m.handle({ type: "bind", now: 200_000, lease: base }), "lost")).toBeDefined();
    m = machine();
    m.handle({ type: "bind", now: 0, lease: { ...base, leaseSeconds: 0xffffffff, renewSeconds: 0xffffffff, rebindSeconds: 0xffffffff } });
    expect(m.state).toBe("bound");
    expect(m.timerAt).toBeUndefined();
  });

  test("leaseFromAck: T1/T2 default to 0.5 and 0.875 and are clamped to T1 ≤ T2 ≤ lease", () => {
    const server = new FakeServer();
    const req = one(machine().handle({ type: "discover", now: 0 })).message;
    const ack = server.answer(req, MessageType.ack, "172.16.0.20");
    expect(leaseFromAck(ack, 0)).toMatchObject({ leaseSeconds: 3600, renewSeconds: 1800, rebindSeconds: 3150 });
    ack.options.renewalSeconds = 5000;
    ack.options.rebindingSeconds = 4000;
    expect(leaseFromAck(ack, 0)).toMatchObject({ renewSeconds: 3600, rebindSeconds: 3600 });
    ack.options.subnetMask = "255.0.255.0";
    expect(leaseFromAck(ack, 0)).toBe("ACK with a non-contiguous subnet mask 255.0.255.0");
  });
});

describe("robustness", () => {
  test("any sequence of events: no throw, timers never in the past of the event, bound ⇔ lease", () => {
    const ev = fc.oneof(
      fc.constant<"timer">("timer"),
      fc.constant<"reply">("reply"),
      fc.constant<"junk">("junk"),
      fc.constant<"renew">("renew"),
      fc.constant<"release">("release"),
      fc.constant<"discover">("discover"),
      fc.constant<"nakmode">("nakmode"),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(ev, fc.integer({ min: 0, max: 5000 })), { maxLength: 60 }), fc.integer(), fc.uint8Array({ minLength: 240, maxLength: 300 }), (evs, seed, junk) => {
        const m = machine(seededRandom(seed));
        const server = new FakeServer();
        let now = 0;
        let lastSend: Extract<MachineAction, { type: "send" }> | undefined;
        const apply = (e: MachineEvent) => {
          const out = m.handle(e);
          for (const a of out) {
            if (a.type === "send") {
              lastSend = a;
              // What goes out must encode and decode to itself.
              expect(decodeMessage(encodeMessage(a.message))).toEqual(a.message);
            }
            // A timer in the past only happens when a packet arrived after the exchange's
            // deadline: it must fire at once and fail the exchange.
            if (a.type === "timer" && a.at !== undefined && a.at < e.now) overdue = true;
          }
          expect(m.state === "bound" || m.state === "renewing" || m.state === "rebinding").toBe(m.lease !== undefined);
          if (overdue) {
            overdue = false;
            expect(find(m.handle({ type: "timer", now: e.now }), "failed")).toBeDefined();
          }
        };
        let overdue = false;
        apply({ type: "discover", now, deadlineAt: 20_000 });
        for (const [kind, dt] of evs) {
          now += dt;
          switch (kind) {
            case "timer":
              if (m.timerAt !== undefined) now = Math.max(now, m.timerAt);
              apply({ type: "timer", now });
              break;
            case "reply": {
              const r = lastSend && server.reply(lastSend.message, lastSend.from, lastSend.to);
              if (r) apply({ type: "packet", now, message: r });
              break;
            }
            case "junk": {
              const j = junk.slice();
              j.set([2, 1, 6], 0);
              try {
                apply({ type: "packet", now, message: decodeMessage(j) });
              } catch (e) {
                if ((e as Error).name !== "DecodeError") throw e;
              }
              break;
            }
            case "renew":
              apply({ type: "renew", now, deadlineAt: now + 2000 });
              break;
            case "release":
              apply({ type: "release", now });
              break;
            case "discover":
              apply({ type: "discover", now, deadlineAt: now + 5000 });
              break;
            case "nakmode":
              server.requestMode = server.requestMode === "ack" ? "nak" : "ack";
              break;
          }
        }
      }),
      {
        numRuns: 300,
        examples: [
          [[["discover", 0], ["junk", 2107], ["reply", 2894]], 0, new Uint8Array(240)], // a reply after the deadline
          [[["reply", 0], ["reply", 0], ["timer", 0], ["renew", 0], ["timer", 2000]], 0, new Uint8Array(240)], // a one-shot renew failing past T1
        ],
      },
    );
  });

  test("the fixed option order: message type first", () => {
    const d = one(machine().handle({ type: "discover", now: 0 }));
    expect(encodeMessage(d.message)[240]).toBe(Opt.messageType);
  });
});
