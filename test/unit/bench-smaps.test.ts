// The footprint group's reading of /proc/<pid>/smaps: resident pages of one file's mappings.
import { expect, test } from "bun:test";
import { parseSmapsFileRss } from "../bench/lib/proc.ts";

const smaps = `00400000-00600000 r--p 00000000 08:01 1234                               /opt/pod-gateway
Size:               2048 kB
Rss:                1024 kB
Pss:                 512 kB
00600000-00a00000 r-xp 00200000 08:01 1234                               /opt/pod-gateway
Size:               4096 kB
Rss:                2048 kB
7f0000000000-7f0000100000 rw-p 00000000 00:00 0
Size:               1024 kB
Rss:                 900 kB
7f0000200000-7f0000300000 r-xp 00000000 08:01 99                         /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 600 kB
7f0000400000-7f0000500000 r--p 00000000 08:01 1234                       /opt/pod-gateway (deleted)
Rss:                 512 kB
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
Rss:                  12 kB
`;

test("sums Rss of the file's mappings only (a replaced file's too), in MB", () => {
  expect(parseSmapsFileRss(smaps, "/opt/pod-gateway")).toBe((1024 + 2048 + 512) / 1024);
  expect(parseSmapsFileRss(smaps, "/usr/lib/x86_64-linux-gnu/libc.so.6")).toBe(600 / 1024);
  expect(parseSmapsFileRss(smaps, "/opt/pod")).toBe(0);
});
