// `bun test/bench/config-parse.ts`: how long reading and validating a 1 MiB settings.sh and
// nat.conf takes (issue 12: "1 MiB of distinct keys parses in ≤ 1 s"). Pure code, no root, no
// lab: each shape is resolved 5 times in this process and the median printed. Not part of
// `npm run bench` (whose groups measure the binary in the lab); run it after touching the parsers.
import { resolveConfig } from "../../src/core/settings/resolve.ts";
import { MAX_CONFIG_FILE_BYTES } from "../../src/core/settings/limits.ts";

const fill = (unit: (i: number) => string): string => {
  let s = "";
  for (let i = 0; ; i++) {
    const u = unit(i);
    if (s.length + u.length > MAX_CONFIG_FILE_BYTES) return s;
    s += u;
  }
};

const SHAPES: Record<string, { settings: string; nat: string }> = {
  "distinct keys (KEY_n=value_n)": { settings: fill((i) => `KEY_${i}=value_${i}\n`), nat: "" },
  "one line of quoted assignments": { settings: fill((i) => `K${i}='v' `), nat: "" },
  "every line an error": { settings: fill((i) => `A=$(x) '${i}'\n`), nat: "" },
  "nat.conf lines (mostly duplicates)": { settings: "", nat: fill((i) => `pod${i} ${2 + (i % 17)} tcp:${1 + (i % 65535)}\n`) },
};

for (const [name, s] of Object.entries(SHAPES)) {
  const times: number[] = [];
  for (let k = 0; k < 5; k++) {
    const t0 = performance.now();
    resolveConfig({ settings: [{ file: "s.sh", text: s.settings }], nat: { file: "nat.conf", text: s.nat }, env: {} });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const bytes = (s.settings.length + s.nat.length) / 1024;
  console.log(`${name.padEnd(40)} ${bytes.toFixed(0).padStart(5)} KiB  median ${times[2]!.toFixed(0).padStart(5)} ms  (min ${times[0]!.toFixed(0)}, max ${times[4]!.toFixed(0)})`);
}
