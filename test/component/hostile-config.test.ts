// Every hostile configuration input found so far (issue 12: by hand, by the netns renderer test,
// by the fuzzer) replayed through the compiled binary's `pod-gateway config`: the exit code and
// the message of test/fixtures/hostile/config/<case>/expect.json, within a timeout (a FIFO or
// /dev/zero used to hang it). Each expect.json also records which roles the error stops (for a
// client pod named "web"; a nat.conf line also stops the client roles of the pod it names), and
// that is checked by loading the configuration as each role would — loading only, no role runs.
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/core/errors.ts";
import type { Role } from "../../src/core/settings/roles.ts";
import { loadConfig } from "../../src/sys/config.ts";
import { binPath, REPO } from "../helpers/bin.ts";

const ROOT = join(REPO, "test/fixtures/hostile/config");
const ROLES = ["client-init", "client-sidecar", "gateway-init", "gateway-sidecar"];
const work = mkdtempSync(join(tmpdir(), "pg-hostile-cli-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Expect {
  exit: number;
  stderr: string[];
  stderrNot?: string[];
  stops: Role[];
  stopsAlsoClientsOf?: string;
  stopsWhy?: string;
  why: string;
  setup?: { fifo?: string; large?: string };
}

describe("hostile configuration fixtures through `pod-gateway config`", () => {
  const cases = readdirSync(ROOT).sort();
  test("there are fixtures, each with an expectation that names the roles it stops", () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
    for (const c of cases) {
      const e = JSON.parse(readFileSync(join(ROOT, c, "expect.json"), "utf8")) as Expect;
      expect(typeof e.why, c).toBe("string");
      for (const r of e.stops) expect(ROLES, c).toContain(r);
      if (e.exit !== 0) expect(e.stops.length, c).toBeGreaterThan(0);
    }
  });

  for (const c of cases)
    test(
      c,
      () => {
        const e = JSON.parse(readFileSync(join(ROOT, c, "expect.json"), "utf8")) as Expect;
        const dir = join(work, c);
        cpSync(join(ROOT, c), dir, { recursive: true, verbatimSymlinks: true });
        rmSync(join(dir, "expect.json"));
        if (e.setup?.fifo) Bun.spawnSync(["mkfifo", join(dir, e.setup.fifo)]);
        if (e.setup?.large) writeFileSync(join(dir, e.setup.large), "#".repeat(1024 * 1024) + "\n");
        expect(existsSync(dir)).toBe(true);
        const r = Bun.spawnSync([binPath(), "config", "--config-dir", dir], {
          cwd: work,
          env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
          stdout: "pipe",
          stderr: "pipe",
          timeout: 30_000,
          killSignal: "SIGKILL",
        });
        const stderr = r.stderr.toString();
        expect(r.exitCode, `${c}: ${stderr.slice(0, 2000)}`).toBe(e.exit);
        for (const m of e.stderr) expect(stderr, c).toContain(m.replaceAll("{dir}", dir));
        for (const m of e.stderrNot ?? []) expect(stderr, c).not.toContain(m);
        // bounded output whatever the input
        expect(stderr.length, c).toBeLessThan(20_000);
        // the roles `config` says it stops are the roles it stops (checked below)
        if (e.exit !== 0) {
          const says = e.stopsAlsoClientsOf
            ? `gateway-init, gateway-sidecar and the client roles of pod "${e.stopsAlsoClientsOf}"`
            : e.stops.length === ROLES.length
              ? "every role"
              : e.stops.join(", ");
          expect(stderr, c).toContain(`[stops ${says}]`);
        }

        // which roles it stops: load as each role would (client roles as pod "web")
        const stopped = (role: Role, podName: string): boolean => {
          try {
            loadConfig({ configDir: dir, defaultConfigDir: join(work, "none"), env: {}, role, podName, onWarning: () => {} });
            return false;
          } catch (err) {
            if (err instanceof ConfigError) return true;
            throw err;
          }
        };
        expect(ROLES.filter((role) => stopped(role as Role, "web")), c).toEqual(e.stops);
        if (e.stopsAlsoClientsOf) for (const role of ["client-init", "client-sidecar"] as const) expect(stopped(role, e.stopsAlsoClientsOf), `${c} ${role}`).toBe(true);
      },
      60_000,
    );
});
