// The non-blocking log queue (src/core/log-queue.ts) against a fake reader that takes what it
// has room for: order kept across partial writes, bounded, dropped lines counted and announced
// once the queue drained, everything handed over at exit.
import { describe, expect, test } from "bun:test";
import { LogQueue, type WriteResult } from "../../src/core/log-queue.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A reader with `room` bytes free until read() empties it. */
function reader(room: number) {
  let got = "";
  let free = room;
  return {
    write(b: Uint8Array): WriteResult {
      if (free === 0) return "again";
      const n = Math.min(free, b.length);
      got += dec.decode(b.subarray(0, n));
      free -= n;
      return n;
    },
    read(more = Infinity) {
      free = more;
    },
    get text() {
      return got;
    },
  };
}

const notice = (n: number) => enc.encode(`dropped ${n}\n`);
const line = (s: string) => enc.encode(s + "\n");

describe("LogQueue", () => {
  test("a reader with room takes each line at once: nothing waits", () => {
    const r = reader(Infinity);
    const q = new LogQueue(r.write, notice, 100);
    expect(q.push(line("a"))).toBe(false);
    expect(q.push(line("b"))).toBe(false);
    expect(r.text).toBe("a\nb\n");
    expect(q.pending).toBe(0);
  });

  test("a full reader: lines wait in order, a partly written line goes on where it stopped", () => {
    const r = reader(3);
    const q = new LogQueue(r.write, notice, 100);
    expect(q.push(line("hello"))).toBe(true); // "hel" taken, "lo\n" waits
    expect(q.push(line("world"))).toBe(true);
    expect(r.text).toBe("hel");
    expect(q.pending).toBe(9);
    expect(q.flush()).toBe(true); // still no room
    r.read();
    expect(q.flush()).toBe(false);
    expect(r.text).toBe("hello\nworld\n");
    expect(q.pending).toBe(0);
  });

  test("bounded: whole lines beyond the bound are dropped, counted, and announced after the queue drained", () => {
    const r = reader(0);
    const q = new LogQueue(r.write, notice, 10);
    q.push(line("1234")); // 5 bytes wait
    q.push(line("5678")); // 10
    q.push(line("9")); // would be 12: dropped
    q.push(line("abc")); // dropped
    expect(q.pending).toBe(10);
    expect(q.dropped).toBe(2);
    r.read();
    expect(q.flush()).toBe(false);
    expect(r.text).toBe("1234\n5678\ndropped 2\n");
    expect(q.dropped).toBe(0);
    // after the notice, lines go straight through again
    expect(q.push(line("x"))).toBe(false);
    expect(r.text.endsWith("dropped 2\nx\n")).toBe(true);
  });

  test("a line pushed while drops await their notice waits behind them (never ahead of the queue)", () => {
    const r = reader(0);
    const q = new LogQueue(r.write, notice, 16);
    q.push(line("1234")); // 5
    q.push(line("abcdefghij")); // 16
    q.push(line("5")); // dropped
    r.read(16);
    // room for the two lines only: the queue drains, the notice waits, then "later" must follow it
    expect(q.flush()).toBe(true);
    q.push(line("later"));
    r.read();
    while (q.flush());
    expect(r.text).toBe("1234\nabcdefghij\ndropped 1\nlater\n");
  });

  test("drain hands over what waits and the notice, in order", () => {
    const r = reader(0);
    const q = new LogQueue(r.write, notice, 6);
    q.push(line("ab"));
    q.push(line("cd"));
    q.push(line("efgh")); // dropped
    const out: string[] = [];
    q.drain((b) => out.push(dec.decode(b)));
    expect(out.join("")).toBe("ab\ncd\ndropped 1\n");
    expect(q.pending).toBe(0);
  });
});
