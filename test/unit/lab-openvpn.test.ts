// The lab's OpenVPN plan (pure) and the client's up/down script (on temporary files).
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkArgs, type ArgSpec } from "../../src/cli/args.ts";
import { parseVpnArgs } from "../../src/cli/lab/common.ts";
import openVpnDns from "../../src/cli/lab/openvpn-dns.ts";
import { dnsScriptArgv, runOpenVpnDnsScript } from "../../src/lab/openvpn.ts";
import {
  checkOpenVpnSettings,
  openVpnFiles,
  ovpnCommand,
  ovpnLine,
  parseForeignOptions,
  planCertificates,
  renderClientCcd,
  renderClientConf,
  renderServerConf,
  renderVpnResolvConf,
  resolveOpenVpnSettings,
} from "../../src/lab/openvpn-plan.ts";
import { parseState, planPodConfig, planVeths, renderSettings, renderState, STATE_VERSION, type LabState } from "../../src/lab/plan.ts";

const files = openVpnFiles("/run/pod-gateway-lab/abc");

describe("OpenVPN settings", () => {
  test("defaults: UDP 1194, the VPN's DNS pushed, no persist-tun; TCP defaults to 443", () => {
    expect(resolveOpenVpnSettings()).toEqual({ proto: "udp", port: 1194, pushDns: "203.0.113.10", persistTun: false });
    expect(resolveOpenVpnSettings({ proto: "tcp" })).toMatchObject({ proto: "tcp", port: 443 });
    expect(resolveOpenVpnSettings({ proto: "tcp", port: 8443 }).port).toBe(8443);
  });

  test("every problem is named", () => {
    expect(checkOpenVpnSettings({ proto: "sctp" as "udp", port: 0, pushDns: "dns.example", persistTun: false })).toEqual([
      'OpenVPN protocol must be udp or tcp, not "sctp"',
      "OpenVPN port must be an integer from 1 to 65535, not 0",
      'the pushed DNS server must be an IPv4 address, not "dns.example"',
    ]);
    expect(checkOpenVpnSettings(resolveOpenVpnSettings())).toEqual([]);
  });

  test("lab up/demo arguments: --vpn veth|openvpn, --vpn-proto and --vpn-port only with openvpn", () => {
    expect(parseVpnArgs({})).toEqual({});
    expect(parseVpnArgs({ vpn: "openvpn" })).toEqual({ vpn: "openvpn", openvpn: {} });
    expect(parseVpnArgs({ vpn: "openvpn", "vpn-proto": "tcp", "vpn-port": "443" })).toEqual({ vpn: "openvpn", openvpn: { proto: "tcp", port: 443 } });
    expect(() => parseVpnArgs({ vpn: "wireguard" })).toThrow("--vpn must be veth or openvpn");
    expect(() => parseVpnArgs({ "vpn-proto": "tcp" })).toThrow("need --vpn openvpn");
    expect(() => parseVpnArgs({ vpn: "openvpn", "vpn-proto": "icmp" })).toThrow("--vpn-proto must be udp or tcp");
    expect(() => parseVpnArgs({ vpn: "openvpn", "vpn-port": "70000" })).toThrow("--vpn-port must be an integer from 1 to 65535");
  });
});

describe("config files", () => {
  test("one escaping function: words with blanks, quotes, backslashes or comment marks are quoted", () => {
    expect(ovpnLine("push", "redirect-gateway def1")).toBe('push "redirect-gateway def1"');
    expect(ovpnLine("ca", "/a/b.crt")).toBe("ca /a/b.crt");
    expect(ovpnLine("x", 'a"b\\c')).toBe('x "a\\"b\\\\c"');
    expect(ovpnLine("x", "#not-a-comment", "")).toBe('x "#not-a-comment" ""');
  });

  test("a script command refuses words OpenVPN would split", () => {
    expect(ovpnCommand(["/bin/pod-gateway", "lab", "openvpn-dns"])).toBe("/bin/pod-gateway lab openvpn-dns");
    expect(() => ovpnCommand(["/my dir/pod-gateway"])).toThrow("holds a blank");
  });

  test("the server: TLS, the stand-in's /30 with a fixed client address, def1 and DNS pushed, short keepalives", () => {
    const conf = renderServerConf(resolveOpenVpnSettings(), files);
    for (const line of [
      "mode server",
      "tls-server",
      "proto udp4",
      "local 198.51.100.1",
      "port 1194",
      "ifconfig 198.19.0.1 255.255.255.252",
      "client-config-dir /run/pod-gateway-lab/abc/openvpn/ccd",
      "ccd-exclusive",
      'push "route-gateway 198.19.0.1"',
      'push "redirect-gateway def1"',
      'push "dhcp-option DNS 203.0.113.10"',
      "keepalive 1 4",
      "explicit-exit-notify 1",
      "dh none",
    ])
      expect(conf.split("\n")).toContain(line);
    const tcp = renderServerConf(resolveOpenVpnSettings({ proto: "tcp", pushDns: "198.18.3.53" }), files).split("\n");
    expect(tcp).toContain("proto tcp4-server");
    expect(tcp).toContain("port 443");
    expect(tcp).toContain('push "dhcp-option DNS 198.18.3.53"');
    expect(tcp).not.toContain("explicit-exit-notify 1"); // UDP only: over TCP the closed connection tells the client
    expect(renderClientCcd()).toBe("ifconfig-push 198.19.0.2 255.255.255.252\n");
  });

  test("the client: the server's address and port, the DNS script on up and down, persist-tun when asked", () => {
    const p = { dev: "tun0", dnsScript: ["/bin/pgw", "lab", "openvpn-dns", "--save-dir", "/x"] };
    const conf = renderClientConf(resolveOpenVpnSettings(), files, p).split("\n");
    for (const line of ["client", "dev tun0", "proto udp4", "remote 198.51.100.1 1194", "remote-cert-tls server", "script-security 2", 'up "/bin/pgw lab openvpn-dns --save-dir /x"', 'down "/bin/pgw lab openvpn-dns --save-dir /x"'])
      expect(conf).toContain(line);
    expect(conf).not.toContain("persist-tun");
    expect(renderClientConf(resolveOpenVpnSettings({ persistTun: true, proto: "tcp" }), files, p).split("\n")).toEqual(expect.arrayContaining(["persist-tun", "proto tcp4-client", "remote 198.51.100.1 443"]));
  });

  test("certificates: an EC CA, then server and client signed by it with the key usages remote-cert-tls checks", () => {
    const c = planCertificates(files);
    expect(c.ca).toEqual(expect.arrayContaining(["-x509", "ec_paramgen_curve:prime256v1", "basicConstraints=critical,CA:TRUE"]));
    expect(c.leaves).toHaveLength(2);
    expect(c.leaves[0]).toEqual(expect.arrayContaining(["-CA", files.ca, "-CAkey", files.caKey, "extendedKeyUsage=serverAuth", "/CN=vpn-server"]));
    expect(c.leaves[1]).toEqual(expect.arrayContaining(["extendedKeyUsage=clientAuth", "/CN=gateway-pod", files.clientKey, files.clientCert]));
  });
});

describe("the client's DNS script", () => {
  test("its command line passes the strict argument check with the arguments OpenVPN appends", () => {
    const argv = dnsScriptArgv("/run/pod-gateway-lab/abc");
    const own = argv.slice(argv.indexOf("openvpn-dns") + 1);
    const defs = openVpnDns.args as Record<string, ArgSpec>;
    expect(checkArgs(defs, [...own, "tun0", "1500", "0", "198.19.0.2", "255.255.255.252", "init"])).toEqual([]);
    // Without the `--` the command ends in, OpenVPN's arguments are arguments too many.
    expect(checkArgs(defs, [...own.slice(0, -1), "tun0", "1500", "init"])).toHaveLength(3);
  });

  test("pushed options in the order of their numbers; only well-formed DNS and DOMAIN options", () => {
    const env = {
      foreign_option_2: "dhcp-option DNS 10.64.0.1",
      foreign_option_1: "dhcp-option DNS 203.0.113.10",
      foreign_option_10: "dhcp-option DOMAIN vpn.example",
      foreign_option_3: "dhcp-option DNS6 fd00::53",
      foreign_option_4: "dhcp-option DNS not-an-address",
      foreign_option_5: "route-gateway 198.19.0.1",
      foreign_option_x: "dhcp-option DNS 192.0.2.1",
      script_type: "up",
    };
    const d = parseForeignOptions(env);
    expect(d).toEqual({ servers: ["203.0.113.10", "10.64.0.1"], domains: ["vpn.example"] });
    expect(renderVpnResolvConf(d, "tun0")).toBe("# written by the OpenVPN client's up script (tun0)\nsearch vpn.example\nnameserver 203.0.113.10\nnameserver 10.64.0.1\n");
  });

  test("up saves the original once and rewrites the file in place; down writes the original back in place", () => {
    const dir = mkdtempSync(join(tmpdir(), "pgw-ovpn-dns-"));
    const resolv = join(dir, "resolv.conf");
    const saveDir = join(dir, "save");
    const original = "search default.svc.cluster.local\nnameserver 198.18.1.10\n";
    writeFileSync(resolv, original);
    const ino = statSync(resolv).ino;
    const up = { script_type: "up", dev: "tun0", foreign_option_1: "dhcp-option DNS 203.0.113.10" };
    expect(runOpenVpnDnsScript(up, { resolvConf: resolv, saveDir })).toBe("up (tun0): resolv.conf → 203.0.113.10");
    expect(readFileSync(resolv, "utf8")).toContain("nameserver 203.0.113.10");
    expect(statSync(resolv).ino).toBe(ino);
    // A second up (a restart with persist-tun runs no down) keeps the first original.
    runOpenVpnDnsScript({ ...up, foreign_option_1: "dhcp-option DNS 10.64.0.1" }, { resolvConf: resolv, saveDir });
    expect(readFileSync(join(saveDir, "resolv.conf.original"), "utf8")).toBe(original);
    expect(runOpenVpnDnsScript({ script_type: "down", dev: "tun0" }, { resolvConf: resolv, saveDir })).toBe("down (tun0): resolv.conf restored");
    expect(readFileSync(resolv, "utf8")).toBe(original);
    expect(statSync(resolv).ino).toBe(ino);
    expect(existsSync(join(saveDir, "resolv.conf.original"))).toBe(false);
    // Down with nothing saved, and up with nothing pushed, leave the file alone.
    expect(runOpenVpnDnsScript({ script_type: "down" }, { resolvConf: resolv, saveDir })).toContain("no saved resolv.conf");
    expect(runOpenVpnDnsScript({ script_type: "up" }, { resolvConf: resolv, saveDir })).toContain("pushed no DNS server");
    expect(readFileSync(resolv, "utf8")).toBe(original);
    expect(() => runOpenVpnDnsScript({ script_type: "route-up" }, { resolvConf: resolv, saveDir })).toThrow("script_type is \"route-up\"");
  });
});

describe("the lab's shape with OpenVPN", () => {
  const shape = { id: "abc", clients: 1, vpnInterface: "tun0", gatewayGeneration: 0, vpnLink: "up" as const, vpn: "openvpn" as const, openvpn: resolveOpenVpnSettings() };

  test("no veth for the VPN link; the node reaches the server's network; the gateway pod gets no VPN link from the lab", () => {
    const veths = planVeths(shape).map((c) => c.join(" "));
    expect(veths.some((c) => c.startsWith("link add tun0 "))).toBe(false);
    expect(veths).toContain("link add veth-vpn netns pgw-abc-node type veth peer name uplink0 netns pgw-abc-vpn");
    expect(planPodConfig(shape, "gateway").map((c) => c.join(" ")).join("\n")).not.toContain("tun0");
    expect(planPodConfig(shape, "vpn").map((c) => c.join(" "))).toEqual(expect.arrayContaining(["addr add 198.51.100.1/24 dev uplink0", "route add 198.18.0.0/16 via 198.51.100.254"]));
    expect(planPodConfig(shape, "node").map((c) => c.join(" "))).toContain("addr add 198.51.100.254/24 dev veth-vpn");
    // The veth lab is unchanged by all this.
    const veth = planVeths({ ...shape, vpn: "veth" }).map((c) => c.join(" "));
    expect(veth.some((c) => c.startsWith("link add tun0 "))).toBe(true);
    expect(veth.some((c) => c.includes("veth-vpn"))).toBe(false);
  });

  test("VPN_TRAFFIC_PORT follows the server's port", () => {
    expect(renderSettings({ id: "abc", vpnInterface: "tun0", runDir: "/r", vpnTrafficPort: 1194 })).toContain('VPN_TRAFFIC_PORT="1194"\n');
    expect(renderSettings({ id: "abc", vpnInterface: "tun0", runDir: "/r" })).toContain('VPN_TRAFFIC_PORT="443"\n');
  });

  test("state: the VPN kind and settings round-trip; older states (no vpn) read as veth; bad ones are refused", () => {
    const st: LabState = { ...shape, version: STATE_VERSION, configDir: "/c", runDir: "/r", createdAt: "2026-01-01T00:00:00Z" };
    expect(parseState(renderState(st), "s.json")).toEqual(st);
    const { vpn: _v, openvpn: _o, ...old } = st;
    expect(parseState(renderState(old as LabState), "s.json").vpn).toBeUndefined();
    expect(() => parseState(JSON.stringify({ ...st, vpn: "ipsec" }), "s.json")).toThrow("bad vpn");
    expect(() => parseState(JSON.stringify({ ...st, openvpn: { ...st.openvpn, port: -1 } }), "s.json")).toThrow("bad openvpn settings");
  });
});
