// Issue 11 §6, the gateway says goodbye: a client-sidecar (compiled binary, PATH without `ip`)
// holds a watch connection to the gateway-sidecar's GATEWAY_WATCH_PORT through the tunnel. When
// the gateway-sidecar gets SIGTERM it closes that connection before it stops dnsmasq, and the
// client must notice by the watch (its "closed the watch connection" line, before any failed
// probe of the leaving gateway), then watch the next gateway-sidecar once that answers.
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { collect, startGateway, waitFor, withClientDropIns, withLab } from "./helpers.ts";

const t = withLab({ clients: 1 });

const c = withClientDropIns("watch");
const procs: Subprocess[] = [];
let gwRun = 0;

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
});

/** gateway-sidecar (gateway-init already ran) until its dnsmasq runs. */
const startGatewaySidecar = () => startGateway(t.lab, c.bin, `watch-gw${gwRun++}`, { init: false, track: procs, everyMs: 10 });

describe("client-sidecar watches the gateway (issue 11 §6)", () => {
  test("a SIGTERMed gateway-sidecar says goodbye through the watch; the client watches the next one", async () => {
    const lab = t.lab;
    await lab.exec("gateway", [c.bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init" });
    const gw = await startGatewaySidecar();
    const init = await lab.exec("client-0", c.role("client_init.sh"), { env: lab.roleEnv("client-0"), okCodes: [1, 2, 3] });
    if (init.code !== 0) throw new Error(`client-init failed (${init.code}):\n${init.stderr}`);
    // The client's configuration: the lab's with a long probe interval, so that no probe could
    // notice the departure within the test's waits.
    const clientConfig = join(c.dir, "client-config");
    cpSync(lab.configDir, clientConfig, { recursive: true });
    writeFileSync(join(clientConfig, "settings.sh"), `${readFileSync(join(clientConfig, "settings.sh"), "utf8")}\nCLIENT_PROBE_INTERVAL=30\n`);
    const side = lab.spawn("client-0", c.role("client_sidecar.sh"), { env: { ...lab.roleEnv("client-0"), POD_GATEWAY_CONFIG_DIR: clientConfig } });
    procs.push(side);
    const out = collect(side);
    const detail = () => `client-sidecar:\n${out.text()}\ngateway-sidecar:\n${gw.out.text()}`;
    await waitFor("the client to watch the gateway", () => out.text().includes("for its goodbye on TCP port") || side.exitCode !== null, 10_000, { detail });
    expect(side.exitCode).toBeNull();

    gw.proc.kill("SIGTERM");
    await waitFor("the client to hear the goodbye", () => out.text().includes("closed the watch connection"), 5_000, { everyMs: 10, detail });
    const text = out.text();
    const goodbye = text.indexOf("closed the watch connection");
    const firstFailure = text.indexOf("did not answer");
    // noticed by the watch, not by a probe's timeout
    expect(firstFailure === -1 || firstFailure > goodbye).toBe(true);
    expect(text).toContain("it is leaving; probing every 250 ms");
    await gw.proc.exited;

    // The next gateway-sidecar (a restarted container, same pod): once it answers, watched again.
    const next = await startGatewaySidecar();
    await waitFor("the client to watch the new gateway-sidecar", () => /answers and is watched again [0-9.]+ s after its goodbye/.test(out.text()), 10_000, {
      everyMs: 20,
      detail: () => `client-sidecar:\n${out.text()}\ngateway-sidecar:\n${next.out.text()}`,
    });
    expect(out.text().split("for its goodbye on TCP port").length - 1).toBe(2);
    expect(side.exitCode).toBeNull();
  }, 60_000);
});
