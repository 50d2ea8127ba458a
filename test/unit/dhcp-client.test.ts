// The DHCP driver (acquire/renew/release) with a fake server and a manual clock: retransmission
// and deadlines are checked without waiting.
import { describe, expect, test } from "bun:test";
import { MessageType } from "../../src/core/dhcp/codec.ts";
import type { Lease } from "../../src/core/dhcp/types.ts";
import type { DhcpClient } from "../../src/roles/client-init.ts";
import { DhcpError, acquireLease, releaseLease, renewLease, systemDhcpClient } from "../../src/sys/dhcp-client.ts";
import type { DhcpTransport } from "../../src/sys/dhcp-socket.ts";
import { FakeServer, FakeTransport, ManualClock, seededRandom } from "../fixtures/dhcp/fake-server.ts";

const ID = { ifname: "vxlan0", mac: "02:11:22:33:44:55", clientId: "pod-a", hostname: "pod-a" };

function setup(start = 1_000_000) {
  const clock = new ManualClock(start);
  const server = new FakeServer(clock);
  const transport = new FakeTransport(server, clock);
  return { clock, server, transport, random: seededRandom(7) };
}

describe("acquireLease / renewLease / releaseLease", () => {
  test("acquires through the transport and closes it", async () => {
    const { clock, server, transport, random } = setup();
    const lease = await acquireLease({ ...ID, clock, random, transport });
    expect(lease).toMatchObject({ address: "172.16.0.20", prefixLength: 24, serverId: "172.16.0.1", leaseSeconds: 3600, obtainedAt: 1_000_000 });
    expect(server.received.map((r) => r.message.options.messageType)).toEqual([MessageType.discover, MessageType.request]);
    expect(transport.closed).toBe(true);
  });

  test("a lost OFFER is retransmitted", async () => {
    const { clock, server, transport, random } = setup();
    server.dropNext = 2;
    const p = acquireLease({ ...ID, clock, random, transport });
    await clock.advance(2000);
    const lease = await p;
    expect(lease.address).toBe("172.16.0.20");
    expect(server.count(MessageType.discover)).toBe(3);
    const [a, b, c] = server.received.map((r) => r.at);
    expect(b! - a!).toBeGreaterThanOrEqual(188); // 250 ms ± 25 %
    expect(b! - a!).toBeLessThanOrEqual(313);
    expect(c! - b!).toBeGreaterThanOrEqual(375); // 500 ms ± 25 %
    expect(c! - b!).toBeLessThanOrEqual(625);
  });

  test("no server: rejects after the deadline naming the interface and step", async () => {
    const { clock, server, transport, random } = setup();
    server.dropNext = Infinity;
    const p = acquireLease({ ...ID, clock, random, transport, deadlineMs: 3000 });
    let settled = false;
    p.catch(() => {}).finally(() => (settled = true));
    await clock.advance(2999);
    expect(settled).toBe(false);
    await clock.advance(1);
    const err = await p.catch((e) => e);
    expect(err).toBeInstanceOf(DhcpError);
    expect(err.step).toBe("discover");
    expect(err.message).toMatch(/^DHCP on vxlan0: discover: no OFFER after \d+ DISCOVER\(s\) in 3000 ms$/);
    expect(transport.closed).toBe(true);
  });

  test("abort signal cancels", async () => {
    const { clock, server, transport, random } = setup();
    server.dropNext = Infinity;
    const ac = new AbortController();
    const p = acquireLease({ ...ID, clock, random, transport, signal: ac.signal });
    await clock.advance(100);
    ac.abort();
    const err = await p.catch((e) => e);
    expect(err.message).toBe("DHCP on vxlan0: discover: cancelled");
  });

  test("INIT-REBOOT when asked, DISCOVER with a hint otherwise", async () => {
    let s = setup();
    await acquireLease({ ...ID, clock: s.clock, random: s.random, transport: s.transport, requestedAddress: "172.16.0.20", initReboot: true });
    expect(s.server.received.map((r) => [r.message.options.messageType, r.message.options.requestedAddress])).toEqual([[MessageType.request, "172.16.0.20"]]);
    s = setup();
    await acquireLease({ ...ID, clock: s.clock, random: s.random, transport: s.transport, requestedAddress: "172.16.0.20" });
    expect(s.server.received[0]!.message.options).toMatchObject({ messageType: MessageType.discover, requestedAddress: "172.16.0.20" });
  });

  test("renew: unicast to the server; rebind: broadcast; NAK rejects", async () => {
    const { clock, server, transport, random } = setup();
    const lease = await acquireLease({ ...ID, clock, random, transport });
    await clock.advance(5000);
    const t2 = new FakeTransport(server, clock);
    const renewed = await renewLease(lease, { ...ID, clock, random, transport: t2 });
    expect(renewed.obtainedAt).toBe(lease.obtainedAt + 5000);
    expect(server.received.at(-1)).toMatchObject({ from: lease.address, to: { kind: "unicast", ip: "172.16.0.1" } });
    expect(server.received.at(-1)!.message.ciaddr).toBe(lease.address);
    expect(t2.closed).toBe(true);

    await renewLease(lease, { ...ID, clock, random, transport: new FakeTransport(server, clock), broadcast: true });
    expect(server.received.at(-1)!.to).toEqual({ kind: "broadcast" });

    server.requestMode = "nak";
    const err = await renewLease(lease, { ...ID, clock, random, transport: new FakeTransport(server, clock) }).catch((e) => e);
    expect(err.message).toBe("DHCP on vxlan0: renew: server 172.16.0.1 refused to renew 172.16.0.20 (NAK)");
  });

  test("renew with no answer fails at its deadline", async () => {
    const { clock, server, transport, random } = setup();
    const lease = await acquireLease({ ...ID, clock, random, transport });
    server.requestMode = "silent";
    const p = renewLease(lease, { ...ID, clock, random, transport: new FakeTransport(server, clock), deadlineMs: 1500 }).catch((e) => e);
    await clock.advance(1500);
    expect((await p).message).toMatch(/^DHCP on vxlan0: renew: no ACK from 172\.16\.0\.1 after \d REQUEST\(s\) for 172\.16\.0\.20 in 1500 ms$/);
  });

  test("release sends one RELEASE and reports send errors", async () => {
    const { clock, server, transport, random } = setup();
    const lease = await acquireLease({ ...ID, clock, random, transport });
    await releaseLease(lease, { ...ID, clock, transport: new FakeTransport(server, clock) });
    expect(server.received.at(-1)).toMatchObject({ from: lease.address, to: { kind: "unicast", ip: "172.16.0.1" } });
    expect(server.received.at(-1)!.message.options.messageType).toBe(MessageType.release);
    const broken: DhcpTransport = {
      send: async () => {
        throw new Error("Network is unreachable");
      },
      receive: async () => undefined,
      close: () => {},
    };
    const err = await releaseLease(lease, { ...ID, clock, transport: broken }).catch((e) => e);
    expect(err).toBeInstanceOf(DhcpError);
    expect(err.message).toBe("DHCP on vxlan0: release: releasing 172.16.0.20 to 172.16.0.1: Network is unreachable");
  });
});

test("systemDhcpClient is the client roles' DhcpClient (checked by the typecheck)", () => {
  const c: DhcpClient = systemDhcpClient;
  expect(Object.keys(c).sort()).toEqual(["acquire", "release", "renew"]);
});
