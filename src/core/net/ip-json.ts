// Types for the parts of `ip -j` output we read, plus small pure helpers over them.
// iproute2 prints JSON with these field names (see ip-link(8), ip-route(8)).

export interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  operstate: string;
  address?: string;
  link?: string; // lower device name (e.g. "eth0" for vxlan0), when in the same namespace
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}

export interface IpAddrInfo {
  family: "inet" | "inet6";
  local: string;
  prefixlen: number;
  scope?: string;
}

export interface IpAddr extends IpLink {
  addr_info: IpAddrInfo[];
}

export interface IpRoute {
  dst: string; // "default" or "a.b.c.d/n" or "a.b.c.d"
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  flags?: string[];
  table?: string;
  type?: string;
}

export interface IpRule {
  priority: number;
  src?: string;
  table?: string;
  // iproute2 prints this key (not "suppress_prefixlength") in `ip -j rule`
  suppress_prefixlen?: number;
}

/** `ip -j` prints nothing (not "[]") for some empty listings; treat that as an empty array. */
export function parseIpJson<T>(text: string): T[] {
  const t = text.trim();
  if (t === "") return [];
  const v = JSON.parse(t) as unknown;
  return Array.isArray(v) ? (v as T[]) : [];
}

/** Normalise a route destination: ip prints host routes without /32. */
export function routeDst(r: IpRoute): string {
  if (r.dst === "default") return "default";
  return r.dst.includes("/") ? r.dst : r.dst.includes(":") ? `${r.dst}/128` : `${r.dst}/32`;
}
