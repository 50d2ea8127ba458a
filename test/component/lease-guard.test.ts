// The gateway sidecar's guard loop (src/sys/lease-guard.ts) against a fake vxlan0 and a real child
// standing in for dnsmasq: the hosts file it writes, and a SIGHUP only once the child catches it.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HOLD_LINE, LeaseGuard } from "../../src/core/gateway/leases.ts";
import { catchesSighup, startLeaseGuard } from "../../src/sys/lease-guard.ts";
import { createLogger } from "../../src/sys/log.ts";

const dirs: string[] = [];
const kids: { kill(): void }[] = [];
afterEach(() => {
  for (const k of kids.splice(0)) k.kill();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function until(what: string, f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

describe("startLeaseGuard", () => {
  test("catchesSighup: false for a process with the default action, true once it traps SIGHUP", async () => {
    const plain = Bun.spawn(["sleep", "30"]);
    kids.push(plain);
    const trapping = Bun.spawn(["bash", "-c", "trap 'echo hup' HUP; while :; do sleep 0.05; done"]);
    kids.push(trapping);
    await until("bash to install its trap", () => catchesSighup(trapping.pid));
    expect(catchesSighup(plain.pid)).toBe(false);
    expect(catchesSighup(999_999_999)).toBe(false);
  });

  test("writes the hold, then the reservation of a client seen on vxlan0, SIGHUPs the child each time, and ends the hold after the quiet time", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lease-guard-"));
    dirs.push(dir);
    const hostsFile = join(dir, "dnsmasq.hosts");
    const leaseFile = join(dir, "dnsmasq.leases");
    const hups = join(dir, "hups");
    writeFileSync(hups, "");
    const child = Bun.spawn(["bash", "-c", `trap 'echo x >> ${hups}' HUP; while :; do sleep 0.05; done`]);
    kids.push(child);
    await until("bash to install its trap", () => catchesSighup(child.pid));
    const guard = new LeaseGuard({ network: "172.16.0", firstDynamic: 20, quietSeconds: 0.5, maxHoldSeconds: 3, learnSeconds: 60 });
    writeFileSync(hostsFile, guard.initialHosts());
    let neighbours: { dst: string; lladdr?: string; state?: string[] }[] = [];
    const lines: string[] = [];
    const run = startLeaseGuard({
      guard,
      net: { neighbours: async () => neighbours, fdb: async () => neighbours.map((n) => ({ mac: n.lladdr!, dst: "10.244.0.9" })) },
      hostsFile,
      leaseFile,
      pid: child.pid,
      log: createLogger({ LOG_LEVEL: "3" }, (l) => lines.push(l)),
    });
    try {
      await Bun.sleep(300);
      expect(readFileSync(hostsFile, "utf8")).toBe(`${HOLD_LINE}\n`); // nobody yet: held, nothing to re-read
      neighbours = [{ dst: "172.16.0.21", lladdr: "02:00:00:00:00:21", state: ["STALE"] }];
      await until("the reservation", () => readFileSync(hostsFile, "utf8") === `02:00:00:00:00:21,172.16.0.21\n${HOLD_LINE}\n`);
      await until("the hold to end", () => readFileSync(hostsFile, "utf8") === "02:00:00:00:00:21,172.16.0.21\n");
      await until("two SIGHUPs", () => readFileSync(hups, "utf8") === "x\nx\n");
      expect(lines.join("\n")).toContain("offering addresses now");
      // The client renewed: dnsmasq's lease file holds it, the reservation goes.
      writeFileSync(leaseFile, "1700000000 02:00:00:00:00:21 172.16.0.21 * *\n");
      await until("the reservation to go", () => readFileSync(hostsFile, "utf8") === "");
      await until("a third SIGHUP", () => readFileSync(hups, "utf8") === "x\nx\nx\n");
    } finally {
      run.stop();
      await run.done;
    }
  });
});
