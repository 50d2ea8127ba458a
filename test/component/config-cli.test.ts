// `pod-gateway config` through the compiled binary: JSON and table output for the chart's
// files, exit code 2 with file:line messages for bad ones, warnings on stderr only.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { binPath, REPO } from "../helpers/bin.ts";

const FIXTURES = join(REPO, "test/fixtures");
// Run from an empty dir: nothing there can influence the binary.
const cwd = mkdtempSync(join(tmpdir(), "pg-config-cli-"));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string> = {}) {
  let bin: string;
  try {
    bin = binPath();
  } catch (e) {
    throw new Error(`${(e as Error).message} — run \`node_modules/.bin/bun build.ts\` first`);
  }
  const r = Bun.spawnSync([bin, ...args], { cwd, env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe("pod-gateway config", () => {
  test("--json for the chart's files", () => {
    const r = run(["config", "--config-dir", join(FIXTURES, "config-chart"), "--json"], { K8S_DNS_ips: "10.96.0.99" });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j)).toEqual(["settings", "sources", "nat", "files", "warnings", "natFile", "expansions"]);
    expect(j.settings).toMatchObject({
      GATEWAY_NAME: "pod-gateway.vpn-gateway.svc.cluster.local",
      K8S_DNS_IPS: ["10.96.0.10"],
      VXLAN_ID: 43,
      VXLAN_PORT: 4789,
      VPN_INTERFACE: "wg0",
      VPN_BLOCK_OTHER_TRAFFIC: true,
      VPN_INTERFACE_MTU: 1420,
      DHCP_LEASE_TIME: "12h",
    });
    expect(j.sources.VXLAN_ID).toEqual({ kind: "file", file: join(FIXTURES, "config-chart/settings.sh"), line: 16 });
    expect(j.sources.DHCP_LEASE_TIME).toEqual({ kind: "default" });
    expect(j.nat).toEqual([
      { name: "transmission", octet: 10, ports: [{ proto: "tcp", port: 51413 }, { proto: "udp", port: 51413 }], file: join(FIXTURES, "config-chart/nat.conf"), line: 2 },
      { name: "qbittorrent", octet: 11, ports: [{ proto: "tcp", port: 6881 }, { proto: "udp", port: 6881 }], file: join(FIXTURES, "config-chart/nat.conf"), line: 3 },
      { name: "sonarr", octet: 12, ports: [], file: join(FIXTURES, "config-chart/nat.conf"), line: 4 },
    ]);
    expect(j.files).toContain(join(FIXTURES, "config-chart/settings.sh"));
    expect(j.warnings).toEqual([]);
  });

  test("the table, with the defaults and $gateway from the environment", () => {
    const r = run(["config", "--config-dir", join(cwd, "absent")], { gateway: "gw.vpn.svc.cluster.local" });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}GATEWAY_NAME +gw\.vpn\.svc\.cluster\.local +default \(from \$gateway\)$/m);
    expect(r.stdout).toMatch(/^ {2}VXLAN_ID +42 +default$/m);
    expect(r.stdout).toContain("NAT entries: none (builtin:nat.conf)");
    // stdout is for the result; the warning about the missing dir goes to stderr
    expect(r.stderr).toContain(`${join(cwd, "absent")}: config dir does not exist or is not a directory; using the defaults`);
    expect(r.stdout).not.toContain("does not exist");
  });

  test("POD_GATEWAY_CONFIG_DIR selects the config dir", () => {
    const r = run(["config", "--json"], { POD_GATEWAY_CONFIG_DIR: join(FIXTURES, "config-handwritten"), K8S_DNS_ips: "10.96.0.10" });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.settings.VXLAN_IP_NETWORK).toBe("10.242.0");
    expect(j.nat.map((e: { name: string }) => e.name)).toEqual(["plex"]);
  });

  test("bad files: exit 2, every problem with file:line on stderr, nothing on stdout", () => {
    const dir = join(FIXTURES, "config-bad");
    const r = run(["config", "--config-dir", dir, "--json"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("invalid configuration (4 problems)");
    expect(r.stderr).toContain(`${dir}/settings.sh:3:15: GATEWAY_NAME: command substitution $(...) is not supported`);
    expect(r.stderr).toContain(`${dir}/settings.sh:4: VXLAN_ID: 0 is out of range 1..16777215`);
    expect(r.stderr).toContain(`${dir}/settings.sh:5:28: VPN_LOCAL_CIDRS: unexpected "192.168.0.0/16"`);
    expect(r.stderr).toContain(`${dir}/nat.conf:1:14: octet 25 is in the DHCP range`);
    expect(r.stderr).toContain(`${dir}/settings.sh:6: VXLAN_IP_NETWRK: unknown setting, ignored; did you mean VXLAN_IP_NETWORK?`);
  });

  test("LOG_FORMAT=json makes warnings and errors JSON lines", () => {
    const r = run(["config", "--config-dir", join(FIXTURES, "config-bad")], { LOG_FORMAT: "json" });
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.level)).toEqual(["warn", "error"]);
    expect(lines[0].msg).toContain("VXLAN_IP_NETWRK");
  });

  test("--help names the options", () => {
    const r = run(["config", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).toContain("--config-dir");
    expect(r.stdout + r.stderr).toContain("--json");
  });
});
