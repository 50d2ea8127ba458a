// Every program a role executes, by the name it runs it under (looked up on PATH). All else the
// roles do happens in-process: links, addresses, routes, rules and forwarding entries over
// rtnetlink, DHCP over a packet socket, DNS and the Kubernetes API over sockets. The image ships
// exactly these programs (config/image/rootfs.json; test/unit/image-rootfs.test.ts keeps the two in
// step) and the strace tests (test/netns/gateway-no-ip.test.ts, netlink-client.test.ts) check that
// a role executes nothing else.
import type { Family } from "./firewall/model.ts";

export type IptablesFlavour = "nft" | "legacy";

export interface IptablesTools {
  save: Record<Family, string>;
  restore: Record<Family, string>;
}

/** iptables' save/restore programs of one flavour (nf_tables or legacy), per family. */
export function iptablesTools(flavour: IptablesFlavour): IptablesTools {
  return {
    save: { 4: `iptables-${flavour}-save`, 6: `ip6tables-${flavour}-save` },
    restore: { 4: `iptables-${flavour}-restore`, 6: `ip6tables-${flavour}-restore` },
  };
}

/** nftables' command-line program (the nft firewall backend). */
export const NFT_PROGRAM = "nft";
/** The DHCP and DNS server the gateway sidecar supervises. */
export const DNSMASQ_PROGRAM = "dnsmasq";

function iptablesPrograms(): string[] {
  return (["nft", "legacy"] as const).flatMap((f) => {
    const t = iptablesTools(f);
    return [t.save[4], t.restore[4], t.save[6], t.restore[6]];
  });
}

/** Per role, the programs it may execute: the client roles none, the gateway roles the firewall's and dnsmasq. */
export const ROLE_PROGRAMS: { readonly client: readonly string[]; readonly gateway: readonly string[] } = {
  client: [],
  gateway: [...iptablesPrograms(), NFT_PROGRAM, DNSMASQ_PROGRAM],
};
