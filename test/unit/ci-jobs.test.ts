// Every slow test group (an npm script test:<name>) is run by one of CI's jobs in .ci/, and the
// landing job (.ci/run = .ci/setup + npm test) runs none of them: README says which job runs what.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/image/rootfs.ts";

const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
const jobs = readdirSync(join(REPO_ROOT, ".ci")).filter((f) => f.startsWith("run"));
const body = (job: string) => readFileSync(join(REPO_ROOT, ".ci", job), "utf8").split("\n").filter((l) => !l.trimStart().startsWith("#")).join("\n");

describe("CI jobs", () => {
  const slow = Object.keys(scripts).filter((s) => s.startsWith("test:"));

  test("each slow group is run by a job other than .ci/run, and README names that job", () => {
    expect(slow.length).toBeGreaterThan(0);
    const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
    for (const s of slow) {
      const by = jobs.filter((j) => j !== "run" && body(j).includes(`npm run ${s}`));
      expect({ s, by: by.length > 0 }).toEqual({ s, by: true });
      for (const j of by) expect(readme).toContain(`.ci/${j}`);
    }
  });

  test(".ci/run is setup + npm test only; every job is executable and starts with .ci/setup", () => {
    expect(body("run")).not.toMatch(/npm run test:/);
    expect(body("run")).toContain("npm test");
    for (const j of jobs) {
      expect(statSync(join(REPO_ROOT, ".ci", j)).mode & 0o111).not.toBe(0);
      expect(body(j)).toContain(".ci/setup");
    }
  });
});
