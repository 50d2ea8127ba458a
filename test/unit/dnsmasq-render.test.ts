// The gateway's dnsmasq configuration (golden) and the shipped DNSSEC trust anchors.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { which } from "../../src/sys/exec.ts";
import { dhcpRange, renderDnsmasqConfig, renderLocalServer, type DnsmasqInputs } from "../../src/core/dnsmasq/render.ts";
import { parseTrustAnchors, renderTrustAnchor, ROOT_TRUST_ANCHORS } from "../../src/core/dnsmasq/trust-anchors.ts";
import { testSettings } from "../helpers/settings.ts";

const inputs: DnsmasqInputs = {
  settings: testSettings({ VXLAN_IP_NETWORK: "172.16.0", VXLAN_GATEWAY_FIRST_DYNAMIC_IP: 20, DHCP_LEASE_TIME: "12h", DNS_LOCAL_CIDRS: ["local"] }),
  nat: [{ name: "web", octet: 10 }],
  mtu: 1450,
  localServer: "10.96.0.10",
  leaseFile: "/run/pod-gateway/dnsmasq.leases",
};

const GOLDEN = `# Written by pod-gateway gateway-sidecar at start-up; do not edit (settings.sh is the source).

# Serve the overlay only. Never lo: a VPN client's own resolver (gluetun's on 127.0.0.1:53)
# may be the upstream in resolv.conf, and listening there would make dnsmasq its own upstream.
interface=vxlan0
except-interface=lo
bind-dynamic
# Run as root: works with capabilities dropped to NET_ADMIN/NET_RAW/NET_BIND_SERVICE
# (no SETUID/SETGID to change user) and reads files under private runtime directories.
user=root
pid-file=
log-facility=-
no-hosts

# DNS: upstreams from the copy of /etc/resolv.conf the sidecar keeps in sync.
resolv-file=/etc/resolv_copy.conf
# Cluster-local names go to the cluster DNS, not through the VPN.
server=/local/10.96.0.10

# DNSSEC validation with the root trust anchors shipped in the binary.
dnssec
trust-anchor=.,20326,8,2,E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D
trust-anchor=.,38696,8,2,683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16

# DHCP on vxlan0: .20-.254 (lower octets are nat.conf's static addresses).
dhcp-range=172.16.0.20,172.16.0.254,255.255.255.0,12h
dhcp-option=option:router,172.16.0.1
dhcp-option=option:dns-server,172.16.0.1
dhcp-option=option:mtu,1450
# The only DHCP server on the overlay: answer clients whose lease it forgot (after a restart) at once.
dhcp-authoritative
# Offer without first pinging the address (that costs 3 s per new client); the range is ours alone.
no-ping
# A DISCOVER asking for Rapid Commit (RFC 4039; pod-gateway's client does) gets the ACK at once: one round trip.
dhcp-rapid-commit
dhcp-leasefile=/run/pod-gateway/dnsmasq.leases
`;

const lines = (text: string) => text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));

describe("renderDnsmasqConfig", () => {
  test("golden: the shipped defaults", () => {
    expect(renderDnsmasqConfig(inputs)).toBe(GOLDEN);
  });

  test("DNSSEC off: no dnssec and no anchors; query logging only when asked", () => {
    const off = lines(renderDnsmasqConfig({ ...inputs, settings: { ...inputs.settings, GATEWAY_ENABLE_DNSSEC: false } }));
    expect(off.some((l) => l.startsWith("dnssec") || l.startsWith("trust-anchor"))).toBe(false);
    expect(off).not.toContain("log-queries");
    const logged = lines(renderDnsmasqConfig({ ...inputs, settings: { ...inputs.settings, GATEWAY_LOG_QUERIES: true } }));
    expect(logged).toContain("log-queries");
  });

  test("range .FIRST_DYNAMIC_IP to .254 (never the broadcast .255), lease time and MTU from the inputs", () => {
    const t = lines(renderDnsmasqConfig({ ...inputs, mtu: 1370, settings: { ...inputs.settings, VXLAN_IP_NETWORK: "10.250.3", VXLAN_GATEWAY_FIRST_DYNAMIC_IP: 100, DHCP_LEASE_TIME: "infinite" } }));
    expect(t).toContain("dhcp-range=10.250.3.100,10.250.3.254,255.255.255.0,infinite");
    expect(t).toContain("dhcp-option=option:router,10.250.3.1");
    expect(t).toContain("dhcp-option=option:mtu,1370");
    expect(dhcpRange("172.16.0", 2)).toEqual({ first: "172.16.0.2", last: "172.16.0.254" });
  });

  test("several local domains (dots trimmed), a reverse zone given as a CIDR", () => {
    const t = lines(renderDnsmasqConfig({ ...inputs, settings: { ...inputs.settings, DNS_LOCAL_CIDRS: [".cluster.local", "svc.", "10.0.0.0/8"] } }));
    expect(t.filter((l) => l.includes("server="))).toEqual(["server=/cluster.local/10.96.0.10", "server=/svc/10.96.0.10", "rev-server=10.0.0.0/8,10.96.0.10"]);
    expect(renderLocalServer("local", "1.2.3.4")).toBe("server=/local/1.2.3.4");
  });

  test("no cluster DNS known: local domains are left out (with a comment saying so)", () => {
    const text = renderDnsmasqConfig({ ...inputs, localServer: undefined });
    expect(lines(text).some((l) => l.startsWith("server="))).toBe(false);
    expect(text).toContain("# DNS_LOCAL_CIDRS (local) ignored: no cluster DNS server known.");
  });

  test("a static octet inside the DHCP range is refused (it would be handed out twice)", () => {
    expect(() => renderDnsmasqConfig({ ...inputs, nat: [{ name: "web", octet: 10 }, { name: "db", octet: 20 }] })).toThrow(
      "nat.conf octets 20 (db) lie in the DHCP range 172.16.0.20-172.16.0.254",
    );
  });

  test("user drop-ins (/etc/dnsmasq.d) are read last, *.conf only; none without a directory", () => {
    const conf = renderDnsmasqConfig({ ...inputs, dropInDir: "/etc/dnsmasq.d" });
    expect(conf.trimEnd().split("\n").at(-1)).toBe("conf-dir=/etc/dnsmasq.d,*.conf");
    expect(renderDnsmasqConfig(inputs)).not.toContain("conf-dir");
  });

  test("only vxlan0 is served; never lo; no pid file; logs to stderr", () => {
    const t = lines(renderDnsmasqConfig(inputs));
    expect(t.filter((l) => l.startsWith("interface=") || l.startsWith("except-interface="))).toEqual(["interface=vxlan0", "except-interface=lo"]);
    expect(t).toContain("pid-file=");
    expect(t).toContain("log-facility=-");
    expect(t).toContain("no-ping");
    expect(t).toContain("dhcp-authoritative");
  });
});

describe("root trust anchors", () => {
  test("the shipped file holds the IANA root KSK DS records 20326 and 38696 (algorithm 8, SHA-256)", () => {
    expect(ROOT_TRUST_ANCHORS.map((a) => [a.domain, a.keyTag, a.algorithm, a.digestType])).toEqual([
      [".", 20326, 8, 2],
      [".", 38696, 8, 2],
    ]);
    expect(ROOT_TRUST_ANCHORS[0]!.digest).toBe("E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D");
    expect(ROOT_TRUST_ANCHORS[1]!.digest).toBe("683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16");
  });

  test("parse and render round-trip; malformed lines and wrong digest lengths are rejected", () => {
    for (const a of ROOT_TRUST_ANCHORS) expect(parseTrustAnchors(renderTrustAnchor(a))).toEqual([a]);
    expect(() => parseTrustAnchors("trust-anchor=.,1,8,2,ABCD")).toThrow(/2-byte digest/);
    expect(() => parseTrustAnchors("server=1.1.1.1")).toThrow(/not a trust-anchor= line/);
    expect(parseTrustAnchors("# only a comment\n\n")).toEqual([]);
  });
});

describe("the real dnsmasq accepts what we render", () => {
  const dir = mkdtempSync(join(tmpdir(), "pgw-dnsmasq-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  test.each([
    ["shipped defaults (DNSSEC with the embedded anchors)", inputs],
    ["everything on", { ...inputs, settings: { ...inputs.settings, GATEWAY_LOG_QUERIES: true, DNS_LOCAL_CIDRS: ["local", "10.0.0.0/8"] } }],
    ["everything off", { ...inputs, localServer: undefined, settings: { ...inputs.settings, GATEWAY_ENABLE_DNSSEC: false, DNS_LOCAL_CIDRS: [] } }],
  ])("dnsmasq --test: %s", (_name, i) => {
    const dnsmasq = which("dnsmasq");
    if (!dnsmasq) throw new Error("dnsmasq is missing: apt-get install dnsmasq-base");
    const conf = join(dir, "dnsmasq.conf");
    writeFileSync(conf, renderDnsmasqConfig({ ...i, leaseFile: join(dir, "leases") }));
    const r = Bun.spawnSync([dnsmasq, "--test", `--conf-file=${conf}`], { stderr: "pipe", stdout: "pipe" });
    expect(`${r.stdout.toString()}${r.stderr.toString()}`.trim()).toBe("dnsmasq: syntax check OK.");
    expect(r.exitCode).toBe(0);
  });
});
