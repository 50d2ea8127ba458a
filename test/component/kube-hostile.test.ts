// The Kubernetes API client against hostile answers (issue 12 §5, §6), over real TLS with the
// fake API server: bodies that are not Pods, redirects, endless and compressed bodies, watch lines
// without end, and service-account files that are not regular files. Every answer in
// test/fixtures/hostile/api/ is replayed through the compiled binary's `check-done`.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { createConsola } from "consola/basic";
import { KubeApiError } from "../../src/core/kube/failure.ts";
import { checkPodDone, watchUntilPodDone } from "../../src/sys/kube.ts";
import { binPath, REPO } from "../helpers/bin.ts";
import { loadFixture, recordingClock, setContainerState, terminated, writeServiceAccount, type Fault } from "../helpers/fake-kube.ts";
import { fakeKubeRig } from "../helpers/fake-kube-rig.ts";

setDefaultTimeout(60_000);

const kube = fakeKubeRig("pgw-kube-hostile-");
const setup = () => kube.setup("job-one-app");

async function checkDone(args: string[], env: Record<string, string>, timeoutMs = 30_000) {
  const p = Bun.spawn([binPath(), "check-done", ...args], { env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, out, err };
}

interface HostileAnswer {
  what: string;
  answer: Fault;
  exit: number;
  stderr: string;
}
const FIXTURES = join(REPO, "test", "fixtures", "hostile", "api");
const hostile = readdirSync(FIXTURES)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => [f, JSON.parse(readFileSync(join(FIXTURES, f), "utf8")) as HostileAnswer] as const);

describe("check-done against hostile API answers (test/fixtures/hostile/api)", () => {
  test("the fixtures are there", () => expect(hostile.length).toBeGreaterThanOrEqual(15));
  test.each(hostile)("%s", async (_file, fx) => {
    const s = setup();
    s.fake.fail("get", fx.answer);
    const r = await checkDone(["--serviceaccount-dir", s.saDir], s.env);
    expect({ what: fx.what, code: r.code, out: r.out }).toEqual({ what: fx.what, code: fx.exit, out: "" });
    expect(r.err).toContain(fx.stderr);
    // One line of error, no stack trace, no raw control characters from the server.
    expect(r.err).not.toContain("    at ");
    expect(r.err.replace(/\n$/, "")).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
  });
});

describe("the token never reaches the output", () => {
  test("refused, redirected, erroring, wrong CA, not a Pod: stderr never holds the token", async () => {
    const s = setup();
    const faults: Fault[] = [
      { status: 401 },
      { raw: { status: 302, headers: { location: "http://127.0.0.1:9/" }, body: "" } },
      { raw: { status: 500, body: JSON.stringify({ kind: "Status", code: 500, message: "boom" }) } },
      { raw: { body: '{"metadata":{}}' } },
    ];
    for (const f of faults) {
      s.fake.fail("get", f);
      const r = await checkDone(["--serviceaccount-dir", s.saDir], { ...s.env, LOG_LEVEL: "trace" });
      expect(r.code).not.toBe(0);
      expect(r.err).not.toContain(s.fake.token);
    }
    const wrongCa = writeServiceAccount(join(kube.work, `sa-wrong-ca-${kube.seq}`), { token: s.fake.token, ca: kube.certs.wrongCaPem, namespace: s.ns });
    const r = await checkDone(["--serviceaccount-dir", wrongCa], { ...s.env, LOG_LEVEL: "trace" });
    expect(r.code).toBe(5);
    expect(r.err).not.toContain(s.fake.token);
    // Every request carried it, and only as the bearer token.
    expect(s.fake.requests.every((q) => q.token === s.fake.token)).toBe(true);
  });
});

describe("bodies are capped after decoding", () => {
  test("an endless 200 (plain and gzip) stops at 1 MiB: an API error, the stream closed, little read", async () => {
    for (const gzip of [false, true]) {
      const s = setup();
      s.fake.fail("get", { endless: "line", gzip });
      const e = await checkPodDone(s.cfg).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(KubeApiError);
      expect((e as KubeApiError).exitCode).toBe(5);
      expect((e as KubeApiError).message).toContain("pod body larger than the limit of 1048576 bytes");
      await s.fake.until(() => s.fake.endlessOpen === 0, "the endless body to be abandoned");
      // Socket buffers let a few MiB through, never gigabytes.
      expect(s.fake.endlessSent).toBeLessThan(64 * 1024 * 1024);
    }
  });

  test("a gzip bomb (a 64 KiB answer that decodes to 64 MiB) is refused at the limit", async () => {
    const s = setup();
    const bomb = '{"kind":"Pod","metadata":{"name":"' + "a".repeat(64 * 1024 * 1024);
    s.fake.fail("get", { raw: { body: bomb, gzip: true } });
    const e = await checkPodDone(s.cfg).catch((x: unknown) => x);
    expect((e as KubeApiError).message).toContain("pod body larger than the limit");
  });

  test("a pod just under the limit is read; just over is refused", async () => {
    const s = setup();
    const pod = setContainerState(loadFixture("job-one-app"), "backup", terminated(0));
    const base = JSON.stringify({ ...pod, metadata: { ...pod.metadata, annotations: { pad: "" } } });
    const fits = base.replace('"pad":""', `"pad":"${"x".repeat(1024 * 1024 - base.length)}"`);
    expect(fits.length).toBe(1024 * 1024);
    s.fake.fail("get", { raw: { body: fits } });
    expect(await checkPodDone(s.cfg)).toBe(true);
    s.fake.fail("get", { raw: { body: fits + " " } });
    expect(((await checkPodDone(s.cfg).catch((x: unknown) => x)) as Error).message).toContain("larger than the limit");
  });
});

describe("the watch stream", () => {
  const captureLog = () => {
    const lines: string[] = [];
    const logger = createConsola({ level: 5, reporters: [{ log: (o) => void lines.push(`${o.type}: ${o.args.map(String).join(" ")}`) }] });
    return { logger, lines };
  };

  for (const gzip of [false, true]) {
    test(`a line without end${gzip ? " (gzip)" : ""} is dropped at 1 MiB and the watch resumed`, async () => {
      const s = setup();
      const log = captureLog();
      s.fake.fail("watch", { endless: "line", gzip });
      const ctl = new AbortController();
      const wait = watchUntilPodDone({ cfg: s.cfg, clock: recordingClock(), log: log.logger, random: () => 1, signal: ctl.signal, timing: { requestTimeoutMs: 5000 } });
      await s.fake.until(() => s.fake.requestsOf("watch").length >= 2, "a second watch after the bad one");
      await s.fake.until(() => s.fake.endlessOpen === 0, "the endless stream to be abandoned");
      expect(s.fake.endlessSent).toBeLessThan(64 * 1024 * 1024);
      expect(log.lines.join("\n")).toContain("watch event line longer than the limit of 1048576 bytes");
      s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(0)));
      expect(await wait).toBe("done");
    });
  }

  test("a stream of blank lines that never ends is closed after timeoutSeconds plus the overrun, then resumed", async () => {
    const s = setup();
    s.fake.fail("watch", { endless: "blank-lines" });
    const wait = watchUntilPodDone({ cfg: s.cfg, clock: recordingClock(), log: captureLog().logger, random: () => 1, timing: { requestTimeoutMs: 5000, watchTimeoutSeconds: 1, watchOverrunMs: 500 } });
    await s.fake.until(() => s.fake.requestsOf("watch").length >= 2, "the watch to be resumed", 20_000);
    await s.fake.until(() => s.fake.endlessOpen === 0, "the endless stream to be abandoned");
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(0)));
    expect(await wait).toBe("done");
  });

  test("an event that is not a Pod never decides 'done'; it is a bad response and the wait goes on", async () => {
    const s = setup();
    const log = captureLog();
    const ctl = new AbortController();
    const wait = watchUntilPodDone({ cfg: s.cfg, clock: recordingClock(), log: log.logger, random: () => 1, signal: ctl.signal, timing: { requestTimeoutMs: 5000 } });
    await s.fake.until(() => s.fake.openWatches === 1, "the watch");
    s.fake.sendRaw(JSON.stringify({ type: "MODIFIED", object: { kind: "Pod", metadata: { name: s.name } } }));
    await s.fake.until(() => s.fake.requestsOf("watch").length >= 2, "a new watch after the bad event");
    expect(log.lines.join("\n")).toContain("not a Pod: pod.spec is undefined");
    ctl.abort();
    expect(await wait).toBe("aborted");
  });

  test("a redirect on the watch is never followed: retried with backoff", async () => {
    const s = setup();
    const log = captureLog();
    s.fake.fail("watch", { raw: { status: 302, headers: { location: "http://127.0.0.1:9/" }, body: "" } });
    const clock = recordingClock();
    const wait = watchUntilPodDone({ cfg: s.cfg, clock, log: log.logger, random: () => 1, timing: { requestTimeoutMs: 5000 } });
    await s.fake.until(() => s.fake.requestsOf("watch").length >= 2, "the retried watch");
    expect(log.lines.join("\n")).toContain("HTTP 302 redirect to http://127.0.0.1:9/: redirects are never followed");
    expect(clock.sleeps).toEqual([500]);
    s.fake.updatePod(s.ns, s.name, (p) => setContainerState(p, "backup", terminated(0)));
    expect(await wait).toBe("done");
  });
});

describe("service-account files: only regular files, read at most a limit (issue 12 §5)", () => {
  const mkfifo = (path: string) => {
    const r = Bun.spawnSync(["mkfifo", path], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`mkfifo ${path}: ${r.stderr.toString()}`);
  };

  test("a FIFO as token or ca.crt: configuration error (exit 2) naming it, no hang", async () => {
    const s = setup();
    for (const file of ["token", "ca.crt"]) {
      const dir = join(kube.work, `sa-fifo-${file}-${kube.seq}`);
      writeServiceAccount(dir, { token: s.fake.token, ca: kube.certs.caPem, namespace: s.ns });
      rmSync(join(dir, file));
      mkfifo(join(dir, file));
      const r = await checkDone(["--serviceaccount-dir", dir], s.env, 15_000);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`${dir}/${file}: is a FIFO, not a regular file`);
    }
  });

  test("a token linked to /dev/zero or a directory is refused; a huge token is refused before the request", async () => {
    const s = setup();
    const zero = join(kube.work, `sa-zero-${kube.seq}`);
    writeServiceAccount(zero, { ca: kube.certs.caPem, namespace: s.ns });
    symlinkSync("/dev/zero", join(zero, "token"));
    const r1 = await checkDone(["--serviceaccount-dir", zero], s.env, 15_000);
    expect(r1.code).toBe(2);
    expect(r1.err).toContain(`${zero}/token: is a character device, not a regular file`);

    const dirTok = join(kube.work, `sa-dir-${kube.seq}`);
    writeServiceAccount(dirTok, { ca: kube.certs.caPem, namespace: s.ns });
    mkdirSync(join(dirTok, "token"));
    expect((await checkDone(["--serviceaccount-dir", dirTok], s.env)).err).toContain("token: is a directory, not a regular file");

    const big = join(kube.work, `sa-big-${kube.seq}`);
    writeServiceAccount(big, { token: "x".repeat(64 * 1024 + 1), ca: kube.certs.caPem, namespace: s.ns });
    const r3 = await checkDone(["--serviceaccount-dir", big], s.env);
    expect(r3.code).toBe(2);
    expect(r3.err).toContain("token: is larger than the limit of 65536 bytes");
    expect(s.fake.requests).toHaveLength(0);
  });

  test("the token replaced by a FIFO between requests: that request fails (exit 5), never hangs", async () => {
    const s = setup();
    expect(await checkPodDone(s.cfg)).toBe(false);
    rmSync(join(s.saDir, "token"));
    mkfifo(join(s.saDir, "token"));
    const e = await checkPodDone(s.cfg).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(KubeApiError);
    expect((e as Error).message).toContain("token is a FIFO, not a regular file");
  });
});
