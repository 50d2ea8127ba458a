// The sizes report: its table from fixed numbers, and the committed measurement's shape.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { targets } from "../../build.ts";
import { REPO_ROOT } from "../../src/image/rootfs.ts";
import { renderSizesTable, type Sizes } from "../../src/image/sizes.ts";

const M = 1048576;

describe("renderSizesTable", () => {
  test("binaries against the floor of their own target, then the trees", () => {
    const s: Sizes = {
      bun: "1.4.5",
      measuredAt: "2026-01-01T00:00:00.000Z",
      gzipLevel: 6,
      floor: { "linux-x64": { bytes: 100 * M, gzip: 50 * M }, "linux-arm64": { bytes: 101 * M, gzip: 51 * M } },
      binaries: { "linux-x64": { bytes: 103 * M, gzip: 51.5 * M }, "linux-arm64": { bytes: 104 * M, gzip: 52.5 * M } },
      imageLayer: { arch: "amd64", files: 150, bytes: 116 * M, tarGzip: 55 * M, toolsAndLibrariesBytes: 12.5 * M },
      clientCopy: { files: 6, bytes: 108 * M, tarGzip: 52 * M },
    };
    expect(renderSizesTable(s)).toBe(
      [
        "| What | Size | gzip -6 | Over the Bun floor |",
        "|---|---:|---:|---:|",
        "| `pod-gateway-linux-x64` | 103.0 MiB | 51.5 MiB | +3.0 MiB (gzip +1.5 MiB) |",
        "| `pod-gateway-linux-arm64` | 104.0 MiB | 52.5 MiB | +3.0 MiB (gzip +1.5 MiB) |",
        "| hello world, linux-x64 (Bun runtime floor) | 100.0 MiB | 50.0 MiB | — |",
        "| hello world, linux-arm64 (Bun runtime floor) | 101.0 MiB | 51.0 MiB | — |",
        "| image layer on distroless (amd64): binary, tools, libraries, config (150 files) | 116.0 MiB | 55.0 MiB (tar) | — |",
        "| of which iptables, nft, dnsmasq and their libraries | 12.5 MiB | — | — |",
        "| copy-into-your-image tree: binary, libraries incl. glibc (6 files) | 108.0 MiB | 52.0 MiB (tar) | — |",
      ].join("\n"),
    );
  });
});

describe("test/bench/results/sizes.json (written by bun src/image/sizes.ts)", () => {
  const s = JSON.parse(readFileSync(join(REPO_ROOT, "test/bench/results/sizes.json"), "utf8")) as Sizes;
  test("covers every build target, each above its runtime floor", () => {
    expect(Object.keys(s.binaries).sort()).toEqual(Object.keys(targets).sort());
    for (const t of Object.keys(targets)) {
      expect(s.binaries[t]!.bytes).toBeGreaterThan(s.floor[t]!.bytes);
      expect(s.binaries[t]!.gzip).toBeLessThan(s.binaries[t]!.bytes);
    }
  });
  test("the image layer holds the binary plus the tools", () => {
    expect(s.imageLayer.bytes).toBeGreaterThan(s.binaries["linux-x64"]!.bytes);
    expect(s.imageLayer.toolsAndLibrariesBytes).toBeGreaterThan(0);
    expect(s.clientCopy.bytes).toBeLessThan(s.imageLayer.bytes);
  });
});
