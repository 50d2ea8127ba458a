// isIpv6Literal answers as node:net's isIP(s) === 6 (the resolver used node:net for it, which is
// the most expensive module a client-init loaded).
import { describe, expect, test } from "bun:test";
import { isIP } from "node:net";
import { isIpv6Literal } from "../../src/core/net/ipv6.ts";

describe("isIpv6Literal", () => {
  test.each([
    ["::", true], ["::1", true], ["fe80::1%eth0", true], ["::ffff:1.2.3.4", true], ["1:2:3:4:5:6:1.2.3.4", true],
    ["fe80::1%", false], ["1::2::3", false], ["gateway", false], ["1.2.3.4", false], ["[::1]", false], ["::1.2.3", false], ["12345::", false],
  ] as const)("%s → %p (as node:net says)", (s, want) => {
    expect(isIpv6Literal(s)).toBe(want);
    expect(isIP(s) === 6).toBe(want);
  });
  test("agrees with node:net on 50,000 random strings over the IPv6 alphabet", () => {
    let seed = 16;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    const alphabet = "0123456789abcdefABCDEF:.%";
    const wrong: string[] = [];
    for (let i = 0; i < 50_000; i++) {
      let s = "";
      for (let n = 2 + rnd(18); n > 0; n--) s += alphabet[rnd(alphabet.length)];
      if (i % 5 === 0) s = `${rnd(0x10000).toString(16)}::ffff:${[0, 0, 0, 0].map(() => rnd(300)).join(".")}`;
      if (isIpv6Literal(s) !== (isIP(s) === 6)) wrong.push(s);
    }
    expect(wrong).toEqual([]);
  });
});
