// How the DHCP packet transport waits for a reply (src/sys/dhcp-socket.ts ReceiveWait): the first
// exchange blocks in the kernel 2 ms at a time; a renewal in a sidecar's background sleeps on a
// timer between non-blocking polls, so 200 sidecars renewing together do not keep 2 cores awake.
import { describe, expect, test } from "bun:test";
import { DHCP_CLIENT_PORT, DHCP_SERVER_PORT, encodeIpUdp } from "../../src/core/dhcp/codec.ts";
import { BACKGROUND_RECEIVE, BLOCKING_RECEIVE, PacketTransport, planReceiveStep } from "../../src/sys/dhcp-socket.ts";

describe("planReceiveStep", () => {
  test("blocking: at most pollMs in the kernel, never past the end", () => {
    expect(planReceiveStep({ kind: "block", pollMs: 2 }, 100)).toEqual({ kind: "block", ms: 2 });
    expect(planReceiveStep({ kind: "block", pollMs: 2 }, 0.5)).toEqual({ kind: "block", ms: 0.5 });
  });
  test("sleeping: a timer of idleMs (at least 1 ms), never past the end", () => {
    expect(planReceiveStep({ kind: "sleep", idleMs: 50 }, 5000)).toEqual({ kind: "sleep", ms: 50 });
    expect(planReceiveStep({ kind: "sleep", idleMs: 50 }, 20)).toEqual({ kind: "sleep", ms: 20 });
    expect(planReceiveStep({ kind: "sleep", idleMs: 0 }, 20)).toEqual({ kind: "sleep", ms: 1 });
  });
  test("the wait is over: nothing more", () => {
    expect(planReceiveStep(BLOCKING_RECEIVE, 0)).toBeUndefined();
    expect(planReceiveStep(BACKGROUND_RECEIVE, -3)).toBeUndefined();
    expect(planReceiveStep(BACKGROUND_RECEIVE, NaN)).toBeUndefined();
  });
  test("the first exchange blocks; a background renewal sleeps, at most 20 looks a second", () => {
    expect(BLOCKING_RECEIVE.kind).toBe("block");
    expect(BACKGROUND_RECEIVE.kind).toBe("sleep");
    expect(BACKGROUND_RECEIVE.kind === "sleep" && BACKGROUND_RECEIVE.idleMs).toBeGreaterThanOrEqual(50);
  });
});

/** A packet socket whose queue the test fills; counts the calls. */
class FakeSocket {
  queue: Uint8Array[] = [];
  recvCalls = 0;
  recvWithinCalls = 0;
  send(): void {}
  recv(): Uint8Array | undefined {
    this.recvCalls++;
    return this.queue.shift();
  }
  recvWithin(ms: number): Uint8Array | undefined {
    this.recvWithinCalls++;
    Bun.sleepSync(ms);
    return this.queue.shift();
  }
  close(): void {}
}

const reply = (payload: Uint8Array) => encodeIpUdp({ src: "172.16.0.1", dst: "172.16.0.50", srcPort: DHCP_SERVER_PORT, dstPort: DHCP_CLIENT_PORT, payload });

describe("PacketTransport.receive", () => {
  test("sleeping: never blocks in the kernel, and takes a reply that arrives during the wait", async () => {
    const sock = new FakeSocket();
    const t = new PacketTransport(sock, { kind: "sleep", idleMs: 10 });
    setTimeout(() => sock.queue.push(reply(new Uint8Array([1, 2, 3]))), 25);
    const got = await t.receive(2000);
    expect(got).toEqual(new Uint8Array([1, 2, 3]));
    expect(sock.recvWithinCalls).toBe(0);
    expect(sock.recvCalls).toBeGreaterThan(1);
  });
  test("sleeping: undefined once the wait is over, a handful of looks (not one per 2 ms)", async () => {
    const sock = new FakeSocket();
    const t = new PacketTransport(sock, { kind: "sleep", idleMs: 50 });
    expect(await t.receive(120)).toBeUndefined();
    expect(sock.recvWithinCalls).toBe(0);
    // 120 ms at 50 ms a look: 3 looks and the last drain; 2 ms polls would make ~60.
    expect(sock.recvCalls).toBeLessThanOrEqual(5);
  });
  test("sleeping: the abort cuts the timer short", async () => {
    const sock = new FakeSocket();
    const t = new PacketTransport(sock, { kind: "sleep", idleMs: 60_000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 10);
    expect(await t.receive(120_000, ac.signal)).toBeUndefined();
  });
  test("blocking (the default): waits in the kernel", async () => {
    const sock = new FakeSocket();
    const t = new PacketTransport(sock);
    expect(await t.receive(10)).toBeUndefined();
    expect(sock.recvWithinCalls).toBeGreaterThan(0);
  });
  test("packets other than a reply to port 68 are skipped", async () => {
    const sock = new FakeSocket();
    sock.queue.push(encodeIpUdp({ src: "172.16.0.1", dst: "172.16.0.50", srcPort: 53, dstPort: DHCP_CLIENT_PORT, payload: new Uint8Array([9]) }), reply(new Uint8Array([7])));
    const t = new PacketTransport(sock, BACKGROUND_RECEIVE);
    expect(await t.receive(1000)).toEqual(new Uint8Array([7]));
  });
});
