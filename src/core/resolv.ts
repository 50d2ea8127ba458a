// resolv.conf: parsing (tolerant: a VPN client may write anything) and the copy dnsmasq reads.
// Pure; the sidecar reads and writes the files.
import { isIPv4 } from "./settings/values.ts";

export interface ResolvConf {
  /** Every nameserver line's address, as written (IPv4 and IPv6). */
  nameservers: string[];
  /** The IPv4 nameservers, in order, without duplicates: the ones dnsmasq is given. */
  ipv4: string[];
  search: string[];
  /** Lines that were skipped, with why (IPv6 servers, garbage), for a debug log. */
  skipped: { line: number; text: string; why: string }[];
}

export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], ipv4: [], search: [], skipped: [] };
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/[#;].*$/, "").trim();
    if (line === "") return;
    const [key = "", ...rest] = line.split(/\s+/);
    if (key === "nameserver") {
      const addr = rest[0];
      if (!addr || rest.length > 1) return void out.skipped.push({ line: i + 1, text: raw, why: "malformed nameserver line" });
      out.nameservers.push(addr);
      // dnsmasq only reaches IPv4 upstreams here: the gateway's IPv6 path would bypass the
      // IPv4 kill switch design, and an IPv6 scope id (fe80::1%eth0) is meaningless to clients.
      if (isIPv4(addr)) {
        if (!out.ipv4.includes(addr)) out.ipv4.push(addr);
      } else out.skipped.push({ line: i + 1, text: raw, why: addr.includes(":") ? "IPv6 nameserver" : "not an IP address" });
    } else if (key === "search" || key === "domain") {
      out.search = rest;
    } else if (key !== "options" && key !== "sortlist") {
      out.skipped.push({ line: i + 1, text: raw, why: `unknown keyword ${key}` });
    }
  });
  return out;
}

/** The copy dnsmasq reads (resolv-file): IPv4 nameservers only. */
export function renderResolvCopy(ipv4: readonly string[], source: string): string {
  const head = `# Written by pod-gateway from ${source}: IPv4 nameservers only (rewritten when it changes)\n`;
  return head + ipv4.map((a) => `nameserver ${a}\n`).join("");
}
