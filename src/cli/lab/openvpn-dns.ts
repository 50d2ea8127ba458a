// lab openvpn-dns (hidden): the lab's OpenVPN client runs this as its up and down script; it
// rewrites the gateway pod's resolv.conf in place from the DNS servers the server pushed.
import { defineCommand } from "citty";
import { runOpenVpnDnsScript } from "../../lab/openvpn.ts";

export default defineCommand({
  meta: { name: "openvpn-dns", description: "OpenVPN up/down script of the lab: pushed DNS servers into resolv.conf, in place", hidden: true },
  args: {
    "save-dir": { type: "string", description: "Where the original resolv.conf is kept while the tunnel is up", valueHint: "DIR", required: true },
    "resolv-conf": { type: "string", description: "The file to rewrite (default /etc/resolv.conf)", valueHint: "FILE" },
  },
  async run({ args }) {
    // OpenVPN appends its own arguments (device, MTU, addresses, init|restart) after the `--` the
    // command ends in (lab/openvpn.ts dnsScriptArgv); they are not needed.
    const msg = runOpenVpnDnsScript(process.env, { resolvConf: args["resolv-conf"] ?? "/etc/resolv.conf", saveDir: args["save-dir"] });
    process.stderr.write(`openvpn-dns: ${msg}\n`);
  },
});
