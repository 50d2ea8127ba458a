// Splices test/bench/results/latest.md into README.md between <!-- bench:start --> and
// <!-- bench:end --> (the Performance section is generated, never typed by hand), and renders
// test/bench/results/chart.svg (the picture the section leads with) from latest.json.
//   bun test/bench/readme.ts            write README.md and chart.svg
//   bun test/bench/readme.ts --check    exit 1 when README.md or chart.svg is not up to date
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderChart } from "./lib/chart.ts";
import { CHART_FILE } from "./lib/report.ts";

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
  const results = join(import.meta.dir, "results");
  const readmeFile = join(repo, "README.md");
  const mdFile = join(results, "latest.md");
  const chartFile = join(results, CHART_FILE);
  try {
    const readme = readFileSync(readmeFile, "utf8");
    const next = spliceReadme(readme, readFileSync(mdFile, "utf8"));
    const chart = renderChart(JSON.parse(readFileSync(join(results, "latest.json"), "utf8")));
    const chartNow = existsSync(chartFile) ? readFileSync(chartFile, "utf8") : "";
    if (process.argv.includes("--check")) {
      const stale = [next !== readme ? `README.md's Performance section differs from ${mdFile}` : "", chart !== chartNow ? `${chartFile} is not the chart of latest.json` : ""].filter(Boolean);
      if (stale.length) {
        process.stderr.write(`${stale.join("; ")}: run bun test/bench/readme.ts\n`);
        process.exit(1);
      }
      process.stderr.write("README.md's Performance section and its chart are up to date\n");
    } else {
      if (chart !== chartNow) writeFileSync(chartFile, chart);
      if (next === readme) process.stderr.write("README.md already up to date\n");
      else writeFileSync(readmeFile, next);
      process.stderr.write(`README.md: Performance section from ${mdFile}; ${chartFile} from latest.json\n`);
    }
  } catch (e) {
    process.stderr.write(`readme.ts: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
