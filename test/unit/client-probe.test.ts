// The gateway probe and the gateway name lookup against small DNS responders on loopback (no root, no namespaces).
import { afterAll, describe, expect, test } from "bun:test";
import { createSocket, type Socket } from "node:dgram";
import { lookupA } from "../../src/sys/dns.ts";
import { probeDns, probeDnsUntil } from "../../src/sys/probe.ts";

const sockets: Socket[] = [];
afterAll(() => {
  for (const s of sockets) s.close();
});

/** A UDP responder; `answer` returns the datagrams to send back for each query. */
async function responder(answer: (q: Buffer) => Buffer[]): Promise<{ port: number; queries: Buffer[] }> {
  const s = createSocket("udp4");
  sockets.push(s);
  const queries: Buffer[] = [];
  s.on("message", (msg, rinfo) => {
    queries.push(msg);
    for (const a of answer(msg)) s.send(a, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  return { port: s.address().port, queries };
}

function replyTo(q: Buffer, rcode: number, id = q.readUInt16BE(0)): Buffer {
  const r = Buffer.from(q);
  r.writeUInt16BE(id, 0);
  r.writeUInt16BE(0x8180 | rcode, 2);
  return r;
}

describe("probeDns", () => {
  test("any rcode counts as alive (REFUSED here); the question is version.bind CH TXT", async () => {
    const srv = await responder((q) => [replyTo(q, 5)]);
    const r = await probeDns("127.0.0.1", { port: srv.port, timeoutMs: 2000 });
    expect(r).toMatchObject({ alive: true, rcode: "REFUSED" });
    expect(srv.queries[0]!.subarray(12).toString("latin1")).toContain("version");
  });

  test("garbage and answers with another id are ignored until the real answer arrives", async () => {
    const srv = await responder((q) => [Buffer.from([1, 2, 3]), replyTo(q, 0, q.readUInt16BE(0) ^ 0xffff), Buffer.from(q), replyTo(q, 0)]);
    const r = await probeDns("127.0.0.1", { port: srv.port, timeoutMs: 2000 });
    expect(r).toMatchObject({ alive: true, rcode: "NOERROR" });
  });

  test("only wrong answers: timeout", async () => {
    const srv = await responder((q) => [replyTo(q, 0, q.readUInt16BE(0) ^ 1)]);
    const r = await probeDns("127.0.0.1", { port: srv.port, timeoutMs: 150 });
    expect(r).toEqual({ alive: false, reason: "timeout", detail: `no DNS answer from 127.0.0.1:${srv.port} within 150 ms` });
  });

  test("nobody listening: an error (ICMP port unreachable), not a hang", async () => {
    const srv = await responder(() => []);
    const port = srv.port;
    sockets.pop()!.close();
    const r = await probeDns("127.0.0.1", { port, timeoutMs: 2000 });
    expect(r).toMatchObject({ alive: false, reason: "error" });
  });

  test("a connect() the kernel refuses at once (no route: vxlan0 just deleted) is an error, not a rejection", async () => {
    // Bun's udpSocket throws synchronously here; the broadcast address is refused (EACCES) without
    // SO_BROADCAST on any machine, as a missing route is (ENETUNREACH) in a pod without vxlan0.
    const r = await probeDns("255.255.255.255", { timeoutMs: 2000 });
    expect(r).toMatchObject({ alive: false, reason: "error" });
    expect((r as { detail: string }).detail).toContain("255.255.255.255:53");
    await expect(lookupA("gw.svc", "255.255.255.255", 2000)).rejects.toMatchObject({ code: expect.any(String) });
  });

  test("an aborted signal ends the probe at once", async () => {
    const srv = await responder(() => []);
    const ctl = new AbortController();
    const p = probeDns("127.0.0.1", { port: srv.port, timeoutMs: 5000, signal: ctl.signal });
    ctl.abort();
    expect(await p).toMatchObject({ alive: false, reason: "aborted" });
  });

  test("probeDnsUntil retries until the responder starts answering", async () => {
    let n = 0;
    const srv = await responder((q) => (++n >= 3 ? [replyTo(q, 0)] : []));
    const { result, attempts } = await probeDnsUntil("127.0.0.1", { port: srv.port, deadlineMs: 5000, firstTimeoutMs: 30 });
    expect(result.alive).toBe(true);
    expect(attempts).toBe(3);
  });

  test("probeDnsUntil gives up at the deadline", async () => {
    const srv = await responder(() => []);
    const { result, attempts } = await probeDnsUntil("127.0.0.1", { port: srv.port, deadlineMs: 200, firstTimeoutMs: 30, maxTimeoutMs: 60 });
    expect(result).toMatchObject({ alive: false, reason: "timeout" });
    expect(attempts).toBeGreaterThanOrEqual(3);
  });
});

/** An answer to an A query: the question echoed, then one A record per address (name by pointer to the question). */
function aReply(q: Buffer, rcode: number, addresses: string[], id = q.readUInt16BE(0)): Buffer {
  const head = Buffer.from(q);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(0x8180 | rcode, 2);
  head.writeUInt16BE(addresses.length, 6);
  const records = addresses.map((a) => Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, ...a.split(".").map(Number)]));
  return Buffer.concat([head, ...records]);
}

describe("lookupA", () => {
  test("asks exactly the name, type A class IN, and returns every address", async () => {
    const srv = await responder((q) => [aReply(q, 0, ["10.244.1.9", "10.244.1.10"])]);
    expect(await lookupA("gateway.pod-gateway.svc.cluster.local", "127.0.0.1", 2000, srv.port)).toEqual(["10.244.1.9", "10.244.1.10"]);
    const q = srv.queries[0]!;
    expect(q.subarray(12, -4).toString("latin1")).toBe("\x07gateway\x0bpod-gateway\x03svc\x07cluster\x05local\x00");
    expect([...q.subarray(-4)]).toEqual([0, 1, 0, 1]);
  });

  test("answers with another id or to another question are ignored; the right one is taken", async () => {
    const srv = await responder((q) => {
      const other = aReply(q, 0, ["9.9.9.9"]);
      other[13] = 0x78; // another name, same length
      return [aReply(q, 0, ["9.9.9.9"], q.readUInt16BE(0) ^ 1), other, aReply(q, 0, ["10.0.0.1"])];
    });
    expect(await lookupA("gw.svc", "127.0.0.1", 2000, srv.port)).toEqual(["10.0.0.1"]);
  });

  test("no A record: empty; NXDOMAIN, no answer, nobody listening: errors with node:dns's codes", async () => {
    const empty = await responder((q) => [aReply(q, 0, [])]);
    expect(await lookupA("gw.svc", "127.0.0.1", 2000, empty.port)).toEqual([]);
    const nx = await responder((q) => [aReply(q, 3, [])]);
    await expect(lookupA("gw.svc", "127.0.0.1", 2000, nx.port)).rejects.toMatchObject({ code: "ENOTFOUND" });
    const silent = await responder(() => []);
    await expect(lookupA("gw.svc", "127.0.0.1", 100, silent.port)).rejects.toMatchObject({ code: "ETIMEOUT" });
    const gone = await responder(() => []);
    sockets.pop()!.close();
    await expect(lookupA("gw.svc", "127.0.0.1", 2000, gone.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});
