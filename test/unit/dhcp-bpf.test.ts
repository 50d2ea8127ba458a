// The packet socket's BPF filter, run through a small interpreter: only DHCP replies to port 68 pass.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { DHCP_REPLY_FILTER, encodeBpfProgram, runBpf } from "../../src/core/dhcp/bpf.ts";
import { decodeIpUdp, encodeIpUdp, encodeMessage, decodeMessage } from "../../src/core/dhcp/codec.ts";
import { readHexFixture } from "../fixtures/dhcp/fake-server.ts";

const ack = readHexFixture("dnsmasq-ack.hex");
const pass = (b: Uint8Array) => runBpf(DHCP_REPLY_FILTER, b) > 0;

describe("DHCP reply filter", () => {
  test("a real dnsmasq OFFER and ACK pass", () => {
    expect(pass(ack)).toBe(true);
    expect(pass(readHexFixture("dnsmasq-offer.hex"))).toBe(true);
  });

  test("our own outgoing REQUEST (op 1, to port 67) is dropped", () => {
    const m = decodeMessage(decodeIpUdp(ack).payload);
    m.op = 1;
    const req = encodeIpUdp({ src: "0.0.0.0", dst: "255.255.255.255", srcPort: 68, dstPort: 67, payload: encodeMessage(m) });
    expect(pass(req)).toBe(false);
    // Same payload to port 68 but op 1 (another client's message echoed): dropped too.
    expect(pass(encodeIpUdp({ src: "0.0.0.0", dst: "255.255.255.255", srcPort: 67, dstPort: 68, payload: encodeMessage(m) }))).toBe(false);
  });

  test("other protocols, ports, fragments and truncated packets are dropped", () => {
    const tcp = ack.slice();
    tcp[9] = 6;
    const dns = ack.slice();
    dns[22] = 0;
    dns[23] = 53;
    const frag = ack.slice();
    frag[6] = 0x20; // more fragments
    const offset = ack.slice();
    offset[7] = 1; // fragment offset 8
    for (const b of [tcp, dns, frag, offset, ack.subarray(0, 20), ack.subarray(0, 28), new Uint8Array(0)]) expect(pass(b)).toBe(false);
  });

  test("an IPv4 header with options still finds the UDP port and op", () => {
    const b = new Uint8Array(ack.length + 4);
    b.set(ack.subarray(0, 20));
    b.set(Uint8Array.of(1, 1, 1, 0), 20);
    b.set(ack.subarray(20), 24);
    b[0] = 0x46;
    expect(pass(b)).toBe(true);
  });

  test("agrees with the decoder on random packets", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), fc.boolean(), (junk, dhcpish) => {
        let b: Uint8Array = junk;
        if (dhcpish) {
          // Mostly-valid UDP to 68 with a random first payload byte: exercises the op check.
          b = encodeIpUdp({ src: "172.16.0.1", dst: "172.16.0.9", srcPort: 67, dstPort: 68, payload: junk });
        }
        let expected = false;
        try {
          const d = decodeIpUdp(b);
          expected = d.dstPort === 68 && d.payload.length > 0 && d.payload[0] === 2;
        } catch {}
        // The filter checks less than the decoder (no length checks), so it may pass what the
        // decoder refuses; it must never drop what the decoder accepts as a reply.
        if (expected) expect(pass(b)).toBe(true);
        if (dhcpish) expect(pass(b)).toBe(junk.length > 0 && junk[0] === 2);
      }),
      { numRuns: 1000 },
    );
  });

  test("encodes as struct sock_filter (8 bytes each, little-endian)", () => {
    const b = encodeBpfProgram(DHCP_REPLY_FILTER);
    expect(b.length).toBe(DHCP_REPLY_FILTER.length * 8);
    expect(Buffer.from(b.subarray(0, 16)).toString("hex")).toBe("3000" + "00" + "00" + "09000000" + "1500" + "00" + "08" + "11000000");
  });
});
