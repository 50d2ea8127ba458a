// Per-role validation (issue 13 §1): one ConfigMap serves every routed pod, so the client roles
// refuse only what they read (and their own nat.conf entry) and warn about the rest at
// file:line; the gateway roles stay strict; `pod-gateway config` reports everything, each error
// with the roles it stops. The table of who reads what is printed in README.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { withStops } from "../../src/cli/config.ts";
import { formatIssue } from "../../src/core/errors.ts";
import { resolveConfig } from "../../src/core/settings/resolve.ts";
import { renderRoleTable, ROLES, SETTING_USERS, type Role } from "../../src/core/settings/roles.ts";
import { SETTING_KEYS } from "../../src/core/settings/schema.ts";

const REPO = join(import.meta.dir, "..", "..");
const DEFAULTS = readFileSync(join(REPO, "config/settings.sh"), "utf8");
const S = "/config/settings.sh";
const N = "/config/nat.conf";

function resolve(settings: string, nat: string, role?: Role, podName?: string) {
  return resolveConfig({
    settings: [
      { file: "builtin:settings.sh", text: DEFAULTS, builtin: true },
      { file: S, text: settings },
    ],
    nat: { file: N, text: nat },
    env: { gateway: "gw.example", K8S_DNS_ips: "10.96.0.10" },
    role,
    podName,
  });
}

describe("a gateway-only key", () => {
  const text = 'VXLAN_ID="43"\nVPN_INTERFACE="+"\nDHCP_LEASE_TIME="1m"\n';

  test("stops the gateway roles", () => {
    for (const role of ["gateway-init", "gateway-sidecar", undefined] as const) {
      const r = resolve(text, "", role);
      expect(r.config, String(role)).toBeUndefined();
      expect(r.issues.map((i) => [i.line, i.key])).toEqual([
        [2, "VPN_INTERFACE"],
        [3, "DHCP_LEASE_TIME"],
      ]);
    }
  });

  test("is a warning at file:line for the client roles, which keep what they read", () => {
    for (const role of ["client-init", "client-sidecar"] as const) {
      const r = resolve(text, "", role, "web-0");
      expect(r.issues).toEqual([]);
      expect(r.config!.settings.VXLAN_ID).toBe(43);
      expect(r.config!.settings.VPN_INTERFACE).toBe("tun0"); // the built-in default stands in
      expect(r.warnings).toContain(
        `${S}:2: VPN_INTERFACE: "+" is a wildcard ('+' and '*' match many interfaces); name the exact interface, for example tun0 or wg0 (the kill switch and its routes need one link) (ignored by ${role}, which does not read VPN_INTERFACE; the gateway roles refuse it)`,
      );
      expect(r.warnings.some((w) => w.startsWith(`${S}:3: DHCP_LEASE_TIME: `) && w.includes(`ignored by ${role}`))).toBe(true);
    }
  });

  test("a syntax error in a gateway-only assignment is a warning for clients too", () => {
    const r = resolve('SNAT_IP=$(hostname -i)\nVXLAN_ID="44"\n', "", "client-init", "web-0");
    expect(r.issues).toEqual([]);
    expect(r.config!.settings.VXLAN_ID).toBe(44);
    expect(r.warnings.some((w) => w.startsWith(`${S}:1:9: SNAT_IP: command substitution`) && w.includes("ignored by client-init"))).toBe(true);
    expect(resolve('SNAT_IP=$(hostname -i)\n', "", "gateway-init").issues).toHaveLength(1);
  });
});

describe("what the client reads stays strict", () => {
  test("a bad value of a key clients read stops them", () => {
    for (const [line, key] of [
      ['GATEWAY_NAME="not a name"', "GATEWAY_NAME"],
      ['VXLAN_IP_NETWORK="172.16.0.0"', "VXLAN_IP_NETWORK"],
      ['NOT_ROUTED_TO_GATEWAY_CIDRS="0.0.0.0/0"', "NOT_ROUTED_TO_GATEWAY_CIDRS"],
    ] as const) {
      const r = resolve(line + "\n", "", "client-init", "web-0");
      expect(r.issues.map((i) => i.key), line).toEqual([key]);
    }
  });

  test("the sidecar's own keys stop the sidecar, not client-init", () => {
    expect(resolve('CLIENT_PROBE_INTERVAL="0x10"\n', "", "client-sidecar", "web-0").issues.map((i) => i.key)).toEqual(["CLIENT_PROBE_INTERVAL"]);
    expect(resolve('CLIENT_PROBE_INTERVAL="0x10"\n', "", "client-init", "web-0").config).toBeDefined();
  });

  test("a line that assigns no key (which key was meant is unknown) stops every role", () => {
    for (const role of ROLES) expect(resolve("if true; then X=1; fi\n", "", role, "web-0").issues, role).toHaveLength(1);
  });
});

describe("nat.conf: a client reads its own entry", () => {
  const nat = "web 5 tcp:80\nother-pod x6\nbroken 1\nqueue 7 tcp:80\n";

  test("lines for other pods are warnings for a client, errors for the gateway", () => {
    const c = resolve("", nat, "client-init", "web");
    expect(c.issues).toEqual([]);
    expect(c.config!.nat.map((e) => e.name)).toEqual(["web"]);
    expect(c.warnings.filter((w) => w.startsWith(N)).map((w) => w.split(": ")[0])).toEqual([`${N}:2:11`, `${N}:3:8`, `${N}:4:9`]);
    expect(c.warnings[0]).toContain('(a line for another pod: client-init of pod "web" ignores it; the gateway roles refuse it)');
    expect(resolve("", nat, "gateway-init").issues.map((i) => i.line)).toEqual([2, 3, 4]);
  });

  test("a bad own entry stops the client (matched by workload name too)", () => {
    expect(resolve("", nat, "client-init", "broken").issues.map(formatIssue)).toEqual([`${N}:3:8: octet 1 is reserved (the gateway); static octets are 2..19`]);
    expect(resolve("", "web-proxy 1\n", "client-sidecar", "web-proxy-7d9f8b6c4d-x2x4z").issues.map((i) => i.line)).toEqual([1]);
  });

  test("the own entry's octet must be unique, also when the other line is the one refused", () => {
    const r = resolve("", "web 5\ndb 5\n", "client-init", "web");
    expect(r.issues.map(formatIssue)).toEqual([`${N}:2: octet 5 is also "web"'s (line 1), this pod's entry: two pods would share one address`]);
    // and for the pod of the second line, its own line is refused
    expect(resolve("", "web 5\ndb 5\n", "client-init", "db").issues.map((i) => i.line)).toEqual([2]);
    // other pods' duplicates do not stop this one
    expect(resolve("", "web 5\ndb 6\nx 6\n", "client-init", "web").issues).toEqual([]);
  });
});

describe("the table and `pod-gateway config`", () => {
  test("every setting has its readers; README prints the table", () => {
    for (const k of SETTING_KEYS) expect(SETTING_USERS[k].length, k).toBeGreaterThan(0);
    const readme = readFileSync(join(REPO, "README.md"), "utf8");
    expect(readme).toContain(renderRoleTable(SETTING_KEYS));
  });

  test("each error says which roles it stops", () => {
    const r = resolve('VPN_INTERFACE="+"\nGATEWAY_NAME="a b"\nCLIENT_PROBE_INTERVAL="0"\nif x\nFOO=$(x)\n', "web 1\n");
    const lines = withStops(r.issues, (f) => f === N, () => new Map([[1, "web"]])).map(formatIssue);
    expect(lines.map((l) => l.slice(l.lastIndexOf("["))).sort()).toEqual(
      [
        "[stops gateway-init, gateway-sidecar]",
        "[stops gateway-init, gateway-sidecar]",
        "[stops client-init, client-sidecar, gateway-init, gateway-sidecar]".replace("client-init, client-sidecar, gateway-init, gateway-sidecar", "every role"),
        "[stops client-sidecar, gateway-init, gateway-sidecar]",
        "[stops every role]",
        '[stops gateway-init, gateway-sidecar and the client roles of pod "web"]',
      ].sort(),
    );
  });
});
