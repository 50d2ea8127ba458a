// Splices test/bench/results/latest.md into README.md between <!-- bench:start --> and
// <!-- bench:end --> (the Performance section is generated, never typed by hand).
//   bun test/bench/readme.ts            write README.md
//   bun test/bench/readme.ts --check    exit 1 when README.md is not up to date
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const START = "<!-- bench:start -->";
export const END = "<!-- bench:end -->";

/** README text with everything between the markers replaced by `section`. Pure; throws on bad markers. */
export function spliceReadme(readme: string, section: string): string {
  const count = (m: string) => readme.split(m).length - 1;
  if (count(START) !== 1 || count(END) !== 1) throw new Error(`README.md must hold ${START} and ${END} exactly once each (found ${count(START)} and ${count(END)})`);
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (b < a) throw new Error(`README.md has ${END} before ${START}`);
  return readme.slice(0, a + START.length) + "\n" + section.trim() + "\n" + readme.slice(b);
}

if (import.meta.main) {
  const repo = join(import.meta.dir, "..", "..");
  const readmeFile = join(repo, "README.md");
  const mdFile = join(import.meta.dir, "results", "latest.md");
  try {
    const readme = readFileSync(readmeFile, "utf8");
    const next = spliceReadme(readme, readFileSync(mdFile, "utf8"));
    if (process.argv.includes("--check")) {
      if (next !== readme) {
        process.stderr.write(`README.md's Performance section differs from ${mdFile}: run bun test/bench/readme.ts\n`);
        process.exit(1);
      }
      process.stderr.write("README.md's Performance section is up to date\n");
    } else if (next === readme) process.stderr.write("README.md already up to date\n");
    else {
      writeFileSync(readmeFile, next);
      process.stderr.write(`README.md: Performance section replaced from ${mdFile}\n`);
    }
  } catch (e) {
    process.stderr.write(`readme.ts: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
