// installInto (issue 12 §9): never writes through a symlink planted at a temporary or final
// name, and checks every name before writing anything.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { installInto } from "../../src/cli/install.ts";
import { UsageError } from "../../src/core/errors.ts";

let root = "";
let dir = "";
let source = "";
let victim = "";
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "pgw-install-unit-"));
  dir = join(root, "target");
  mkdirSync(dir);
  source = join(root, "binary");
  writeFileSync(source, "#!binary\n" + "x".repeat(3 * 1024 * 1024));
  victim = join(root, "victim");
  writeFileSync(victim, "precious");
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const names = ["pod-gateway", "client_init.sh", "client_sidecar.sh", "gateway_init.sh", "gateway_sidecar.sh"];

describe("installInto", () => {
  test("copies (mode 0755) and links; leaves no temporary files", () => {
    const r = installInto(dir, { source, links: true });
    expect(r.installed).toBe(join(dir, "pod-gateway"));
    expect(readFileSync(join(dir, "pod-gateway")).equals(readFileSync(source))).toBe(true);
    expect(statSync(join(dir, "pod-gateway")).mode & 0o777).toBe(0o755);
    for (const n of names.slice(1)) expect(readlinkSync(join(dir, n))).toBe("pod-gateway");
    expect(readdirSync(dir).sort()).toEqual([...names].sort());
    // Again: links already right are left alone.
    expect(installInto(dir, { source, links: true }).linked).toEqual([]);
  });

  test("symlinks planted at the temporary names are never written through: another name is used", () => {
    let n = 0;
    const randomName = () => `guess${n++ % 4}`; // the first guesses of each name are taken
    for (const base of names) {
      symlinkSync(victim, join(dir, `.${base}.tmp-guess0`));
      symlinkSync(join(root, "dangling"), join(dir, `.${base}.tmp-guess1`));
    }
    installInto(dir, { source, links: true, randomName });
    expect(readFileSync(victim, "utf8")).toBe("precious");
    expect(existsSync(join(root, "dangling"))).toBe(false);
    expect(readFileSync(join(dir, "pod-gateway")).equals(readFileSync(source))).toBe(true);
    for (const n of names.slice(1)) expect(readlinkSync(join(dir, n))).toBe("pod-gateway");
  });

  test("symlinks planted at the final names are replaced, their targets untouched", () => {
    for (const n of names) symlinkSync(victim, join(dir, n));
    mkdirSync(join(root, "elsewhere"));
    rmSync(join(dir, "client_init.sh"));
    symlinkSync(join(root, "elsewhere"), join(dir, "client_init.sh")); // a link to a directory
    installInto(dir, { source, links: true });
    expect(readFileSync(victim, "utf8")).toBe("precious");
    expect(readdirSync(join(root, "elsewhere"))).toEqual([]);
    expect(lstatSync(join(dir, "pod-gateway")).isFile()).toBe(true);
    for (const n of names.slice(1)) expect(readlinkSync(join(dir, n))).toBe("pod-gateway");
  });

  test("a directory where a link goes: a usage error naming it, and nothing written", () => {
    mkdirSync(join(dir, "gateway_init.sh"));
    const e = (() => {
      try {
        installInto(dir, { source, links: true });
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toBe(`install: nothing was written: ${join(dir, "gateway_init.sh")} is a directory; remove it or choose another DIR`);
    expect(readdirSync(dir)).toEqual(["gateway_init.sh"]);
    // Without links, that directory is not in the way.
    installInto(dir, { source, links: false });
    expect(readdirSync(dir).sort()).toEqual(["gateway_init.sh", "pod-gateway"]);
  });

  test("every temporary name taken: an error, nothing left behind", () => {
    symlinkSync(victim, join(dir, ".pod-gateway.tmp-same"));
    expect(() => installInto(dir, { source, links: false, randomName: () => "same" })).toThrow("temporary names in a row were taken");
    expect(readdirSync(dir)).toEqual([".pod-gateway.tmp-same"]);
    expect(readFileSync(victim, "utf8")).toBe("precious");
  });
});
