// core/path.ts stands in for node:path on the roles' start-up path: it must agree with it.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { posix } from "node:path";
import { basenamePath, joinPath, normalizePath, resolvePath } from "../../src/core/path.ts";

const segment = fc.constantFrom("", ".", "..", "a", "b", "config", "settings.sh", "x.y", "...");
const pathText = fc.tuple(fc.boolean(), fc.array(segment, { maxLength: 6 }), fc.boolean()).map(([abs, segs, trail]) => (abs ? "/" : "") + segs.join("/") + (trail ? "/" : ""));

describe("core/path against node:path (posix)", () => {
  test("examples", () => {
    expect(joinPath("/config", "settings.sh")).toBe("/config/settings.sh");
    expect(joinPath("/config/", "nat.conf")).toBe("/config/nat.conf");
    expect(joinPath("./cfg", "x")).toBe("cfg/x");
    expect(basenamePath("/bin/client_init.sh")).toBe("client_init.sh");
    expect(resolvePath("cfg/../cfg/", "/work")).toBe("/work/cfg");
  });

  test("property: normalize, join, basename and resolve give what node:path gives", () => {
    fc.assert(
      fc.property(pathText, pathText, (a, b) => {
        expect(normalizePath(a)).toBe(posix.normalize(a));
        expect(joinPath(a, b)).toBe(posix.join(a, b));
        expect(basenamePath(a)).toBe(posix.basename(a));
        expect(resolvePath(a, "/w/d")).toBe(posix.resolve("/w/d", a));
      }),
      { numRuns: 3000 },
    );
  });
});
