// The lab's real VPN as data: OpenVPN settings, the openssl commands that make a throwaway CA
// and certificates, the server's and client's config files, and what the client's up/down
// script writes into the gateway pod's resolv.conf. Pure: src/lab/openvpn.ts applies it.
//
// The VPN provider's server runs in the VPN exit namespace on LAB.vpnServerIp, which the
// gateway pod reaches the way a real pod reaches the internet: eth0 → node → the server. The
// client runs in the gateway pod's namespace as the VPN container would, creates the tun
// device named VPN_INTERFACE, and takes the server's pushes: the def1 routes, the gateway pod's
// tunnel address LAB.vpnGatewayIp, and a DNS server its up script writes to resolv.conf.
import { LAB } from "./types.ts";

export type VpnKind = "veth" | "openvpn";
export const VPN_KINDS: readonly VpnKind[] = ["veth", "openvpn"];

export interface OpenVpnSettings {
  /** Transport of the tunnel: UDP (OpenVPN's default) or TCP. */
  proto: "udp" | "tcp";
  /** The server's port (VPN_TRAFFIC_PORT must allow it when the kill switch is on). */
  port: number;
  /** The DNS server the server pushes (`dhcp-option DNS`). */
  pushDns: string;
  /** The client keeps its tun device across soft restarts (SIGUSR1, ping-restart). */
  persistTun: boolean;
}

export const DEFAULT_OPENVPN: OpenVpnSettings = { proto: "udp", port: 1194, pushDns: LAB.vpnDnsIp, persistTun: false };
/** TCP servers listen on 443 when no port is given (what providers do to pass firewalls). */
export const DEFAULT_TCP_PORT = 443;

/** The settings a lab uses: the defaults, with TCP defaulting to port 443. */
export function resolveOpenVpnSettings(o: Partial<OpenVpnSettings> = {}): OpenVpnSettings {
  const proto = o.proto ?? DEFAULT_OPENVPN.proto;
  return {
    proto,
    port: o.port ?? (proto === "tcp" ? DEFAULT_TCP_PORT : DEFAULT_OPENVPN.port),
    pushDns: o.pushDns ?? DEFAULT_OPENVPN.pushDns,
    persistTun: o.persistTun ?? DEFAULT_OPENVPN.persistTun,
  };
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** Every problem with the settings, or none. */
export function checkOpenVpnSettings(s: OpenVpnSettings): string[] {
  const problems: string[] = [];
  if (s.proto !== "udp" && s.proto !== "tcp") problems.push(`OpenVPN protocol must be udp or tcp, not ${JSON.stringify(s.proto)}`);
  if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) problems.push(`OpenVPN port must be an integer from 1 to 65535, not ${s.port}`);
  if (!IPV4.test(s.pushDns)) problems.push(`the pushed DNS server must be an IPv4 address, not ${JSON.stringify(s.pushDns)}`);
  if (typeof s.persistTun !== "boolean") problems.push("persistTun must be true or false");
  return problems;
}

// ---- files ----

/** Where a lab keeps its OpenVPN files: <runDir>/openvpn (certificates, configs, pid files). */
export function openVpnDir(runDir: string): string {
  return `${runDir}/openvpn`;
}

/**
 * The VPN container's own scratch directory (its saved copy of the original resolv.conf):
 * a container's filesystem, gone when the gateway pod is re-created.
 */
export function openVpnClientRunDir(runDir: string): string {
  return `${runDir}/openvpn/client-run`;
}

/** The common name the client certificate carries (and its client-config-dir file). */
export const CLIENT_CN = "gateway-pod";
export const SERVER_CN = "vpn-server";
/** The server's tun device in the VPN exit namespace (its own namespace: no clash with VPN_INTERFACE). */
export const SERVER_DEV = "ovpn0";

export interface OpenVpnFiles {
  dir: string;
  ca: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  ccd: string;
  serverConf: string;
  clientConf: string;
  serverPid: string;
  clientPid: string;
}

export function openVpnFiles(runDir: string): OpenVpnFiles {
  const dir = openVpnDir(runDir);
  return {
    dir,
    ca: `${dir}/ca.crt`,
    caKey: `${dir}/ca.key`,
    serverCert: `${dir}/server.crt`,
    serverKey: `${dir}/server.key`,
    clientCert: `${dir}/client.crt`,
    clientKey: `${dir}/client.key`,
    ccd: `${dir}/ccd`,
    serverConf: `${dir}/server.conf`,
    clientConf: `${dir}/client.conf`,
    serverPid: `${dir}/server.pid`,
    clientPid: `${dir}/client.pid`,
  };
}

// ---- certificates (openssl, EC P-256: a key takes a millisecond, RSA would take a second) ----

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/**
 * Step 1: the throwaway CA (self-signed, valid two days). Step 2, in parallel: one key and
 * certificate each for server and client, signed by the CA in the same `openssl req` call
 * (OpenSSL 3's `req -x509 -CA`). The extended key usages are what `remote-cert-tls` checks.
 */
export function planCertificates(f: OpenVpnFiles): { ca: string[]; leaves: string[][] } {
  const ca = ["openssl", "req", "-x509", ...EC, "-keyout", f.caKey, "-out", f.ca, "-days", "2", "-subj", "/CN=pod-gateway lab CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"];
  const leaf = (cn: string, key: string, cert: string, eku: string) => [
    "openssl", "req", "-x509", ...EC, "-keyout", key, "-out", cert, "-days", "2", "-subj", `/CN=${cn}`, "-CA", f.ca, "-CAkey", f.caKey,
    "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "keyUsage=critical,digitalSignature", "-addext", `extendedKeyUsage=${eku}`,
  ];
  return {
    ca,
    leaves: [leaf(SERVER_CN, f.serverKey, f.serverCert, "serverAuth"), leaf(CLIENT_CN, f.clientKey, f.clientCert, "clientAuth")],
  };
}

// ---- config files ----

/**
 * One config line: a directive and its parameters, each quoted when it holds anything OpenVPN's
 * parser would split or interpret (blanks, quotes, backslashes, comment marks). The one
 * escaping function every line goes through.
 */
export function ovpnLine(...words: string[]): string {
  return words.map((w) => (w !== "" && /^[^\s"'\\#;]+$/.test(w) ? w : `"${w.replace(/[\\"]/g, (c) => `\\${c}`)}"`)).join(" ");
}

/**
 * A command OpenVPN runs (`up`, `down`): it splits the string itself, so words with blanks or
 * quotes cannot be passed safely — refuse them instead of guessing.
 */
export function ovpnCommand(argv: readonly string[]): string {
  for (const a of argv) if (a === "" || /[\s"'\\]/.test(a)) throw new Error(`OpenVPN script argument ${JSON.stringify(a)} holds a blank, quote or backslash`);
  return argv.join(" ");
}

/** The mask of a prefix length (OpenVPN's `ifconfig` wants dotted masks). */
function mask(bits: number): string {
  const m = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join(".");
}

const TUNNEL_BITS = Number(LAB.vpnCidr.split("/")[1]);

/**
 * The provider's server: TLS mode, one client (the gateway pod) with a fixed tunnel address
 * from its client-config-dir file, so the /30 the stand-in uses holds server and client.
 * Short keepalives so a dead peer is noticed in seconds (the tests wait for ping-restart).
 */
export function renderServerConf(s: OpenVpnSettings, f: OpenVpnFiles): string {
  const lines = [
    "# pod-gateway lab: the VPN provider's OpenVPN server (VPN exit namespace)",
    ovpnLine("mode", "server"),
    ovpnLine("tls-server"),
    ovpnLine("proto", s.proto === "udp" ? "udp4" : "tcp4-server"),
    ovpnLine("local", LAB.vpnServerIp),
    ovpnLine("port", String(s.port)),
    ovpnLine("dev", SERVER_DEV),
    ovpnLine("dev-type", "tun"),
    ovpnLine("topology", "subnet"),
    ovpnLine("ifconfig", LAB.vpnExitIp, mask(TUNNEL_BITS)),
    ovpnLine("client-config-dir", f.ccd),
    ovpnLine("ccd-exclusive"),
    ovpnLine("ca", f.ca),
    ovpnLine("cert", f.serverCert),
    ovpnLine("key", f.serverKey),
    ovpnLine("dh", "none"),
    ovpnLine("push", "topology subnet"),
    ovpnLine("push", `route-gateway ${LAB.vpnExitIp}`),
    ovpnLine("push", "redirect-gateway def1"),
    ovpnLine("push", `dhcp-option DNS ${s.pushDns}`),
    ovpnLine("keepalive", "1", "4"),
    ...(s.proto === "udp" ? [ovpnLine("explicit-exit-notify", "1")] : []),
    ovpnLine("writepid", f.serverPid),
    ovpnLine("verb", "3"),
    ovpnLine("machine-readable-output"),
    "",
  ];
  return lines.join("\n");
}

/** The client-config-dir entry that gives the gateway pod its tunnel address. */
export function renderClientCcd(): string {
  return ovpnLine("ifconfig-push", LAB.vpnGatewayIp, mask(TUNNEL_BITS)) + "\n";
}

/**
 * The gateway pod's client, as a VPN container runs it: pulls routes and DNS, runs the DNS
 * script on up and down (script-security 2), retries every second.
 */
export function renderClientConf(s: OpenVpnSettings, f: OpenVpnFiles, p: { dev: string; dnsScript: readonly string[] }): string {
  const script = ovpnCommand(p.dnsScript);
  const lines = [
    "# pod-gateway lab: the gateway pod's OpenVPN client (gateway namespace)",
    ovpnLine("client"),
    ovpnLine("dev", p.dev),
    ovpnLine("dev-type", "tun"),
    ovpnLine("proto", s.proto === "udp" ? "udp4" : "tcp4-client"),
    ovpnLine("remote", LAB.vpnServerIp, String(s.port)),
    ovpnLine("nobind"),
    ovpnLine("ca", f.ca),
    ovpnLine("cert", f.clientCert),
    ovpnLine("key", f.clientKey),
    ovpnLine("remote-cert-tls", "server"),
    ovpnLine("connect-retry", "1", "1"),
    ...(s.proto === "tcp" ? [ovpnLine("server-poll-timeout", "4")] : []),
    ovpnLine("script-security", "2"),
    ovpnLine("up", script),
    ovpnLine("down", script),
    ...(s.persistTun ? [ovpnLine("persist-tun")] : []),
    ovpnLine("writepid", f.clientPid),
    ovpnLine("verb", "3"),
    ovpnLine("machine-readable-output"),
    "",
  ];
  return lines.join("\n");
}

// ---- the client's DNS script (what update-resolv-conf does, without resolvconf) ----

export interface PushedDns {
  servers: string[];
  domains: string[];
}

/**
 * The DNS options the server pushed, from the environment OpenVPN gives its scripts:
 * `foreign_option_<n>=dhcp-option DNS 203.0.113.10`, `... DOMAIN example.test`, in order of n.
 */
export function parseForeignOptions(env: Readonly<Record<string, string | undefined>>): PushedDns {
  const opts: [number, string][] = [];
  for (const [k, v] of Object.entries(env)) {
    const m = /^foreign_option_(\d+)$/.exec(k);
    if (m && v !== undefined) opts.push([Number(m[1]), v]);
  }
  opts.sort((a, b) => a[0] - b[0]);
  const out: PushedDns = { servers: [], domains: [] };
  for (const [, v] of opts) {
    const w = v.trim().split(/\s+/);
    if (w[0] !== "dhcp-option" || w.length !== 3) continue;
    if (w[1] === "DNS" && IPV4.test(w[2]!)) out.servers.push(w[2]!);
    else if ((w[1] === "DOMAIN" || w[1] === "DOMAIN-SEARCH") && /^[A-Za-z0-9.-]{1,253}$/.test(w[2]!)) out.domains.push(w[2]!);
  }
  return out;
}

/** resolv.conf while the tunnel is up: the pushed servers (and domains), nothing of the cluster's. */
export function renderVpnResolvConf(d: PushedDns, dev: string): string {
  const lines = [`# written by the OpenVPN client's up script (${dev})`];
  if (d.domains.length) lines.push(`search ${d.domains.join(" ")}`);
  for (const s of d.servers) lines.push(`nameserver ${s}`);
  return lines.join("\n") + "\n";
}
