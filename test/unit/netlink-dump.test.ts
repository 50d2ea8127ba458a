// The dump protocol (src/sys/netlink.ts runDump) over canned datagrams: parts of our sequence
// number only, NLMSG_DONE ends it, a failed dump is an error naming it, and NLM_F_DUMP_INTR starts
// the dump over — a bounded number of times.
import { describe, expect, test } from "bun:test";
import * as C from "../../src/core/netlink/constants.ts";
import { decodeMessages, encodeMessage, type NlMessage } from "../../src/core/netlink/wire.ts";
import { DUMP_INTR_RETRIES, NetlinkError, runDump } from "../../src/sys/netlink.ts";

const msg = (type: number, seq: number, flags: number, body: number[] = [1, 2, 3, 4]): NlMessage => decodeMessages(encodeMessage({ type, flags, seq, pid: 0 }, Uint8Array.from(body)))[0]!;
const done = (seq: number, flags = C.NLM_F_MULTI, error = 0) => msg(C.NLMSG_DONE, seq, flags, [error & 255, (error >> 8) & 255, (error >> 16) & 255, (error >> 24) & 255]);

/** A transport answering each send with the datagrams of the next round. */
function transport(rounds: ((seq: number) => NlMessage[][])[]) {
  let seq = 100;
  let queue: NlMessage[][] = [];
  let sent = 0;
  return {
    get sent() {
      return sent;
    },
    send: () => {
      seq++;
      queue = rounds[Math.min(sent, rounds.length - 1)]!(seq);
      sent++;
      return seq;
    },
    receive: () => queue.shift(),
  };
}

describe("runDump", () => {
  test("collects the parts of our sequence number up to NLMSG_DONE, across datagrams", () => {
    const t = transport([(s) => [[msg(C.RTM_NEWLINK, s - 1, C.NLM_F_MULTI), msg(C.RTM_NEWLINK, s, C.NLM_F_MULTI)], [msg(C.RTM_NEWLINK, s, C.NLM_F_MULTI), done(s)]]]);
    const out = runDump(t.send, t.receive, "listing links");
    expect(out.map((m) => m.header.seq)).toEqual([101, 101]);
    expect(t.sent).toBe(1);
  });

  test("NLM_F_DUMP_INTR: the dump starts over, and the clean second one is returned", () => {
    const t = transport([
      (s) => [[msg(C.RTM_NEWROUTE, s, C.NLM_F_MULTI), msg(C.RTM_NEWROUTE, s, C.NLM_F_MULTI | C.NLM_F_DUMP_INTR)], [done(s, C.NLM_F_MULTI | C.NLM_F_DUMP_INTR)]],
      (s) => [[msg(C.RTM_NEWROUTE, s, C.NLM_F_MULTI, [9, 9, 9, 9]), done(s)]],
    ]);
    const out = runDump(t.send, t.receive, "listing routes");
    expect(t.sent).toBe(2);
    expect(out.map((m) => [...m.payload])).toEqual([[9, 9, 9, 9]]);
  });

  test("interrupted every time: an error after a bounded number of tries", () => {
    const t = transport([(s) => [[msg(C.RTM_NEWROUTE, s, C.NLM_F_MULTI | C.NLM_F_DUMP_INTR), done(s)]]]);
    expect(() => runDump(t.send, t.receive, "listing routes")).toThrow(`listing routes: the dump was interrupted by changes ${DUMP_INTR_RETRIES} times in a row (EAGAIN)`);
    expect(t.sent).toBe(DUMP_INTR_RETRIES);
  });

  test("a dump that fails part-way (negative NLMSG_DONE) or is refused (NLMSG_ERROR) names the dump and errno", () => {
    const failing = transport([(s) => [[done(s, C.NLM_F_MULTI, -22)]]]);
    expect(() => runDump(failing.send, failing.receive, "listing rules")).toThrow(NetlinkError);
    const refused = transport([(s) => [[msg(C.NLMSG_ERROR, s, 0, [0xff, 0xff, 0xff, 0xff, ...new Array(16).fill(0)])]]]);
    try {
      runDump(refused.send, refused.receive, "listing rules");
      throw new Error("no error");
    } catch (e) {
      expect(e).toBeInstanceOf(NetlinkError);
      expect((e as NetlinkError).code).toBe("EPERM");
      expect((e as Error).message).toStartWith("listing rules: Operation not permitted (EPERM)");
    }
  });

  test("no answer: a timeout error, never a hang", () => {
    const silent = { send: () => 1, receive: () => undefined };
    expect(() => runDump(silent.send, silent.receive, "listing links")).toThrow("listing links: the kernel did not finish the dump (ETIMEDOUT)");
  });
});
