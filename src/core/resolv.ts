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

/**
 * The one way a value reaches the resolv.conf copy: as one word of a line. resolv.conf has no
 * quoting — blanks separate words, '#' and ';' start comments, a newline ends the line — so a
 * value holding any of them cannot be written and is refused.
 */
export function resolvWord(value: string): string {
  if (value === "" || /[\s#;\x00-\x1f\x7f]/.test(value)) throw new Error(`cannot write ${JSON.stringify(value)} into a resolv.conf: not one word`);
  return value;
}

/** The copy dnsmasq reads (resolv-file): IPv4 nameservers only. */
export function renderResolvCopy(ipv4: readonly string[], source: string): string {
  // The source path is only mentioned in the comment: control characters become '?' there.
  const head = `# Written by pod-gateway from ${source.replace(/[\x00-\x1f\x7f]/g, "?")}: IPv4 nameservers only (rewritten when it changes)\n`;
  return (
    head +
    ipv4
      .map((a) => {
        if (!isIPv4(a)) throw new Error(`nameserver ${JSON.stringify(a)} is not an IPv4 address`);
        return `nameserver ${resolvWord(a)}\n`;
      })
      .join("")
  );
}
