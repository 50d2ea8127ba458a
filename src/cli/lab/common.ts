// Pieces shared by the lab subcommands.
import { PodGatewayError } from "../../core/errors.ts";
import { parseDecimal } from "../../core/settings/values.ts";
import type { LabOptions } from "../../lab/types.ts";

export const idArg = {
  id: { type: "string", description: "Lab id (default: the only lab running)", valueHint: "ID" },
} as const;

/**
 * A lab subcommand that ends with a given exit code and a reason throws this; main.ts logs the
 * message and exits with the code (a plain numeric return, as check-done uses, would say nothing).
 */
export class ExitStatus extends PodGatewayError {
  override name = "ExitStatus";
  constructor(override readonly exitCode: number, message: string) {
    super(message);
  }
}

/** --vpn, --vpn-proto, --vpn-port of `lab up` and `lab demo`. */
export const vpnArgs = {
  vpn: { type: "string", description: "The VPN: veth (a stand-in link, default) or openvpn (a real OpenVPN server and client)", valueHint: "veth|openvpn" },
  "vpn-proto": { type: "string", description: "OpenVPN transport: udp (default) or tcp", valueHint: "udp|tcp" },
  "vpn-port": { type: "string", description: "OpenVPN server port (default 1194 for udp, 443 for tcp)", valueHint: "PORT" },
} as const;

/** The lab options those arguments ask for; exits 2 on anything else. */
export function parseVpnArgs(args: { vpn?: string; "vpn-proto"?: string; "vpn-port"?: string }): Pick<LabOptions, "vpn" | "openvpn"> {
  const vpn = args.vpn ?? "veth";
  if (vpn !== "veth" && vpn !== "openvpn") throw new ExitStatus(2, `--vpn must be veth or openvpn, not ${JSON.stringify(vpn)}`);
  const proto = args["vpn-proto"];
  if (proto !== undefined && proto !== "udp" && proto !== "tcp") throw new ExitStatus(2, `--vpn-proto must be udp or tcp, not ${JSON.stringify(proto)}`);
  const port = parseIntArg("vpn-port", args["vpn-port"], 1, 65535);
  if (vpn === "veth") {
    if (proto !== undefined || port !== undefined) throw new ExitStatus(2, "--vpn-proto and --vpn-port need --vpn openvpn");
    return {};
  }
  return { vpn, openvpn: { ...(proto ? { proto } : {}), ...(port !== undefined ? { port } : {}) } };
}

/** A whole-number flag, in the one number syntax of every numeric setting and flag (parseDecimal). */
export function parseIntArg(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const r = parseDecimal(value, min, max);
  if (!r.ok) throw new ExitStatus(2, `--${name} must be an integer from ${min} to ${max}: ${r.error}`);
  return r.value;
}

/** "host:port" → parts; exits 2 on anything else. */
export function parseHostPort(name: string, value: string): { host: string; port: number } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new ExitStatus(2, `--${name} must be IPv4:port, not ${JSON.stringify(value)}`);
  return { host: m[1]!, port: Number(m[2]) };
}
