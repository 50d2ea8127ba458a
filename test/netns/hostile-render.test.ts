// Settings stay data (issue 12, items 1 and 2): every setting, set to values holding each
// control character, quote, separator, comment and wildcard character of each output format,
// is either refused by validation at file:line, or renders to text that the real tools read
// back as exactly what was intended — iptables-restore then iptables-save, nft -f then nft -j,
// dnsmasq --test, ip -batch — all inside a throwaway network namespace. And each format's one
// escaping function is checked on its own against the real tool with the characters it quotes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dnsmasqValue, renderDnsmasqConfig } from "../../src/core/dnsmasq/render.ts";
import { formatIssue } from "../../src/core/errors.ts";
import { planFirewall } from "../../src/core/firewall/model.ts";
import { diffIptables, parseIptablesSave, quoteLikeSave, renderIptablesRestore } from "../../src/core/firewall/render-iptables.ts";
import { diffNft, nftString, parseNftTableJson, renderNftScript } from "../../src/core/firewall/render-nft.ts";
import { NFT_FAMILY, NFT_TABLE } from "../../src/core/firewall/names.ts";
import { renderResolvCopy, parseResolvConf } from "../../src/core/resolv.ts";
import { resolveConfig } from "../../src/core/settings/resolve.ts";
import { SETTING_KEYS } from "../../src/core/settings/schema.ts";
import type { SettingKey, Settings } from "../../src/core/settings/types.ts";
import { ProcessRunner, which } from "../../src/sys/exec.ts";
import { requireRoot } from "../helpers/bin.ts";

const REPO = join(import.meta.dir, "..", "..");
const DEFAULTS = readFileSync(join(REPO, "config/settings.sh"), "utf8");
const FILE = "/config/settings.sh";
const NS = `pgh12${Math.random().toString(36).slice(2, 8)}`;
const host = new ProcessRunner();
let dir = "";

/** A valid value for every key: the hostile character is put before, inside and after it. */
const BASE: Record<SettingKey, string> = {
  GATEWAY_NAME: "gw.example",
  K8S_DNS_IPS: "10.96.0.10",
  NOT_ROUTED_TO_GATEWAY_CIDRS: "10.0.0.0/8",
  VXLAN_ID: "42",
  VXLAN_PORT: "4789",
  VXLAN_IP_NETWORK: "172.16.0",
  VXLAN_GATEWAY_FIRST_DYNAMIC_IP: "20",
  VPN_INTERFACE: "tun0",
  VPN_BLOCK_OTHER_TRAFFIC: "true",
  VPN_TRAFFIC_PORT: "443",
  VPN_LOCAL_CIDRS: "192.168.0.0/16",
  DNS_LOCAL_CIDRS: "local",
  DNS_LOCAL_SERVER: "10.96.0.10",
  RESOLV_CONF_COPY: "/etc/resolv_copy.conf",
  CONNECTION_RETRY_COUNT: "3",
  GATEWAY_ENABLE_DNSSEC: "true",
  IPTABLES_NFT: "false",
  SNAT_IP: "10.8.0.2",
  VPN_INTERFACE_MTU: "1400",
  DHCP_LEASE_TIME: "12h",
  GATEWAY_LOG_QUERIES: "false",
  FIREWALL_BACKEND: "auto",
  CLIENT_PROBE_INTERVAL: "2",
  SIDECAR_EXIT_WHEN_POD_DONE: "auto",
  GATEWAY_WATCH_PORT: "4790",
  GATEWAY_METRICS_PORT: "9090",
  CLIENT_METRICS_PORT: "9091",
  METRICS_BIND_ADDRESS: "0.0.0.0",
};

/**
 * Every control character; the quotes, separators, comment and wildcard characters of dnsmasq.conf
 * (blank, '#', '"', '\', ','), iptables-restore (blank, '"', "'", '\', '!', '+', '#' at the
 * start), nft (quotes, '\', '*', ';', '{', '}', '#', '$', '@'), resolv.conf (blank, '#', ';') and
 * ip -batch ('#', quotes, blank); the rest of printable ASCII punctuation; and two non-ASCII ones.
 */
const HOSTILE: string[] = [
  ...Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)),
  "\x7f",
  ..." !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
  "é",
  "\u2028",
];

const shQuote = (v: string): string => `'${v.replaceAll("'", "'\\''")}'`;
const show = (s: string) => JSON.stringify(s);

async function inNs(argv: string[], input?: string, okCodes?: number[]) {
  return await host.run(["ip", "netns", "exec", NS, ...argv], { input, okCodes });
}

beforeAll(async () => {
  requireRoot();
  for (const tool of ["ip", "iptables-restore", "iptables-save", "nft", "dnsmasq"])
    if (!which(tool)) throw new Error(`this test needs ${tool} (Debian packages iproute2, iptables, nftables, dnsmasq-base)`);
  dir = mkdtempSync(join(tmpdir(), "pg-hostile-render-"));
  await host.run(["ip", "netns", "add", NS]);
});

afterAll(async () => {
  await host.run(["ip", "netns", "del", NS], { okCodes: [0, 1] });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The directive names of a dnsmasq configuration, in order (comments and blank lines dropped). */
function directives(conf: string): string[] {
  return conf
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.trimStart().startsWith("#"))
    .map((l) => l.split("=")[0]!.trim());
}

let confN = 0;
async function dnsmasqTest(conf: string): Promise<{ ok: boolean; out: string }> {
  const f = join(dir, `dnsmasq-${confN++}.conf`);
  writeFileSync(f, conf);
  const r = await host.run(["dnsmasq", "--test", "-C", f], { okCodes: [0, 1, 2, 3, 4, 5] });
  return { ok: r.code === 0, out: r.stdout + r.stderr };
}

/** Render everything the settings reach and check each text with its real tool. */
async function checkRendered(s: Settings, what: string): Promise<void> {
  // dnsmasq: the tool accepts it, and it holds exactly the directives a plain value gives
  const conf = renderDnsmasqConfig({ settings: s, nat: [], mtu: 1400, localServer: s.DNS_LOCAL_SERVER || "10.96.0.10", leaseFile: join(dir, "leases") });
  const t = await dnsmasqTest(conf);
  expect(t.ok, `${what}: dnsmasq --test: ${t.out}`).toBe(true);
  const names = directives(conf);
  expect(names.filter((n) => n === "resolv-file"), what).toEqual(["resolv-file"]);
  expect(new Set(names), what).toEqual(EXPECTED_DIRECTIVES(s));

  // firewall: applied with the real tools, read back, compared rule by rule with the plan
  const plan = planFirewall(s, [{ name: "web", octet: 5, ports: [{ proto: "tcp", port: 8080 }] }]);
  const before = parseIptablesSave((await inNs(["iptables-save"])).stdout);
  await inNs(["iptables-restore", "--noflush"], renderIptablesRestore(plan, 4, before));
  const save = parseIptablesSave((await inNs(["iptables-save"])).stdout);
  expect(diffIptables(plan, 4, save), `${what}: iptables`).toEqual([]);
  await inNs(["nft", "-f", "-"], renderNftScript(plan));
  const state = parseNftTableJson((await inNs(["nft", "-j", "list", "table", NFT_FAMILY, NFT_TABLE])).stdout);
  expect(diffNft(plan, state), `${what}: nft`).toEqual([]);

  // The interface name is a valid Linux interface name, taken by the kernel as given (the gateway
  // roles pass it over rtnetlink as an attribute; no ip -batch line is rendered any more)
  if (s.VPN_INTERFACE !== "") {
    // (veth, not dummy: the dummy module is not loaded on every test machine)
    try {
      await inNs(["ip", "link", "add", "name", s.VPN_INTERFACE, "type", "veth", "peer", "name", "pgh12peer"]);
    } catch (e) {
      throw new Error(`${what}: ip: ${(e as Error).message}`);
    }
    const links = JSON.parse((await inNs(["ip", "-j", "link", "show", "type", "veth"])).stdout) as { ifname: string }[];
    expect(links.map((l) => l.ifname).sort(), `${what}: ip`).toEqual([s.VPN_INTERFACE, "pgh12peer"].sort());
    await inNs(["ip", "link", "del", "dev", s.VPN_INTERFACE]);
  }
}

/** The directive names a configuration with these settings must have: those of the renderer's fixed lines. */
function EXPECTED_DIRECTIVES(s: Settings): Set<string> {
  const fixed = ["interface", "except-interface", "bind-dynamic", "user", "pid-file", "log-facility", "no-hosts", "resolv-file", "dhcp-range", "dhcp-option", "dhcp-authoritative", "no-ping", "dhcp-rapid-commit", "dhcp-leasefile"];
  if (s.DNS_LOCAL_CIDRS.length) fixed.push("server");
  if (s.GATEWAY_ENABLE_DNSSEC) fixed.push("dnssec", "trust-anchor");
  if (s.GATEWAY_LOG_QUERIES) fixed.push("log-queries");
  return new Set(fixed);
}

describe("every setting × every hostile character: refused at file:line, or read back exactly", () => {
  test(
    "all keys, all characters, three positions",
    async () => {
      let refused = 0;
      let accepted = 0;
      const acceptedKeys = new Set<string>();
      const seen = new Set<string>();
      for (const key of SETTING_KEYS) {
        const base = BASE[key];
        for (const c of HOSTILE) {
          for (const value of [c + base, base.slice(0, 1) + c + base.slice(1), base + c]) {
            const lines = Object.entries(BASE).map(([k, v]) => `${k}=${shQuote(k === key ? value : v)}`);
            const line = lines.findIndex((l) => l.startsWith(`${key}=`)) + 1;
            const r = resolveConfig({
              settings: [
                { file: "builtin:settings.sh", text: DEFAULTS, builtin: true },
                { file: FILE, text: lines.join("\n") + "\n" },
              ],
              nat: { file: "/config/nat.conf", text: "" },
              env: {},
            });
            const what = `${key}=${show(value)}`;
            if (!r.config) {
              // refused: at the line of this key in this file (a multi-line value starts there too)
              expect(r.issues.length, what).toBeGreaterThan(0);
              for (const i of r.issues) {
                expect(i.file, `${what}: ${formatIssue(i)}`).toBe(FILE);
                expect(i.line, `${what}: ${formatIssue(i)}`).toBe(line);
              }
              refused++;
              continue;
            }
            accepted++;
            const s = r.config.settings;
            // Render only what differs from what was already checked (most accepted values are trimmed to the base).
            const sig = JSON.stringify(s);
            if (seen.has(sig)) continue;
            seen.add(sig);
            acceptedKeys.add(key);
            await checkRendered(s, what);
          }
        }
      }
      console.log(`hostile values: ${refused} refused at file:line, ${accepted} accepted (${seen.size} distinct configurations rendered and read back)`);
      // Both outcomes happen: the strict keys refuse, the interface name keeps punctuation.
      expect(refused).toBeGreaterThan(1000);
      expect(accepted).toBeGreaterThan(50);
      expect(acceptedKeys.has("VPN_INTERFACE")).toBe(true);
    },
    600_000,
  );
});

describe("each format's one escaping function, against the real tool", () => {
  const strings = ['a b', 'a"b', "a'b", "a\\b", "a#b", "#ab", "a;b", "a,b", "a=b", "a{b}", "a$b", "a@b", "a!b", "-ab", "a*b", "a+b", "é", "", " "];

  test("dnsmasqValue: the path dnsmasq opens is exactly the value (conf-file with a bad line names its file)", async () => {
    for (const s of strings.filter((x) => x.trim() !== "")) {
      const d = join(dir, `dq${confN++}`);
      mkdirSync(d);
      const path = join(d, `x${s}y.conf`);
      writeFileSync(path, "no-such-option-h12a\n");
      const t = await dnsmasqTest(`conf-file=${dnsmasqValue(path)}\n`);
      // it read that very file (and found our bad line in it), not a path cut at a blank or '#'
      expect(t.ok, s).toBe(false);
      expect(t.out, s).toContain(`bad option at line 1 of ${path}`);
    }
    for (const c of ["\n", "\r", "\0", "\x1b", "\x7f"]) expect(() => dnsmasqValue(`/a${c}b`)).toThrow("control character");
  });

  test("quoteLikeSave: iptables-restore reads the comment back as exactly the value, in iptables-save's own form", async () => {
    for (const s of strings) {
      const rule = `-A PGH12A -m comment --comment ${quoteLikeSave(s)} -j ACCEPT`;
      await inNs(["iptables-restore", "--noflush"], `*filter\n:PGH12A - [0:0]\n-F PGH12A\n${rule}\nCOMMIT\n`);
      const save = (await inNs(["iptables-save", "-t", "filter"])).stdout;
      expect(save.split("\n").filter((l) => l.startsWith("-A PGH12A")), show(s)).toEqual([rule]);
    }
    for (const c of ["\n", "\r", "\0"]) expect(() => quoteLikeSave(`a${c}b`)).toThrow("control character");
  });

  test("nftString: nft reads the comment back as exactly the value; what it cannot quote is refused", async () => {
    for (const s of strings.filter((x) => !/["\\]/.test(x) && x !== "")) {
      await inNs(["nft", "-f", "-"], `table inet pgh12a\ndelete table inet pgh12a\ntable inet pgh12a {\n\tchain c {\n\t\taccept comment ${nftString(s)}\n\t}\n}\n`);
      const j = JSON.parse((await inNs(["nft", "-j", "list", "table", "inet", "pgh12a"])).stdout) as { nftables: { rule?: { comment?: string } }[] };
      expect(j.nftables.flatMap((o) => (o.rule ? [o.rule.comment] : [])), show(s)).toEqual([s]);
    }
    await inNs(["nft", "delete", "table", "inet", "pgh12a"]);
    for (const bad of ['a"b', "a\\b", "a\nb", "a\0b"]) expect(() => nftString(bad)).toThrow("cannot write");
  });

  test("renderResolvCopy: dnsmasq's upstreams read back as exactly the nameservers; a non-address is refused", () => {
    const text = renderResolvCopy(["10.0.0.1", "10.0.0.2"], "/etc/resolv.conf\nnameserver 6.6.6.6");
    expect(parseResolvConf(text).nameservers).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(() => renderResolvCopy(["10.0.0.1 6.6.6.6"], "/x")).toThrow();
    expect(() => renderResolvCopy(["10.0.0.1#x"], "/x")).toThrow();
  });
});
