// What the gateway sidecar tells operators: its metrics, and the status its probe reads. Pure: the
// sidecar and its telemetry (src/sys/gateway-telemetry.ts) report what they saw, with the time.
import type { GatewayStatus } from "../health.ts";
import { DUPLICATES_METRIC } from "../gateway/duplicates.ts";
import { MetricsRegistry } from "./registry.ts";

export interface GatewayMonitorConfig {
  /** The firewall check interval: the sidecar's loop. */
  intervalMs: number;
  /** Addresses DHCP can hand out (.VXLAN_GATEWAY_FIRST_DYNAMIC_IP to .254). */
  poolSize: number;
  version: string;
  commit: string;
}

export type MonitorNote = { level: "info" | "warn"; text: string };

/** One line of dnsmasq's lease file: "<expiry> <mac> <ip> <hostname> <client-id>". */
export interface DnsmasqLease {
  expiry: number;
  mac: string;
  ip: string;
  clientId: string;
}

/** dnsmasq's lease file; lines that do not look like leases (the "duid" line of DHCPv6) are skipped. */
export function parseDnsmasqLeases(text: string): DnsmasqLease[] {
  const out: DnsmasqLease[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !/^\d+$/.test(f[0]!) || !/^\d+\.\d+\.\d+\.\d+$/.test(f[2]!)) continue;
    out.push({ expiry: Number(f[0]), mac: f[1]!.toLowerCase(), ip: f[2]!, clientId: f[4] ?? "*" });
  }
  return out;
}

/** The kill switch's drop counts by protocol: these values and no others (a label must stay bounded). */
export const DROP_PROTOCOLS = ["tcp", "udp", "icmp", "icmpv6", "other"] as const;

/** The protocol label of a logged packet (its `proto`: "tcp", "udp", "icmp", "icmpv6", "sctp", "proto N"). */
export function dropProtocol(proto: string): (typeof DROP_PROTOCOLS)[number] {
  return (DROP_PROTOCOLS as readonly string[]).includes(proto) && proto !== "other" ? (proto as (typeof DROP_PROTOCOLS)[number]) : "other";
}

/** The number of addresses DHCP hands out: .first to .254. */
export function dhcpPoolSize(firstDynamic: number): number {
  return Math.max(0, 254 - firstDynamic + 1);
}

export class GatewayMonitor {
  readonly registry = new MetricsRegistry();
  private lastTickAt: number;
  private firewallOk: boolean | undefined;
  private firewallDetail = "";
  private dnsmasqRunning = false;
  private vpnUp: boolean | undefined;
  private readonly seen = new Set<string>();

  private readonly m = {
    build: this.registry.gauge("pod_gateway_build_info", "The running pod-gateway: version and commit (value 1).", ["version", "commit", "role"]),
    dnsmasqUp: this.registry.gauge("pod_gateway_gateway_dnsmasq_up", "1 while the supervised dnsmasq runs."),
    leases: this.registry.gauge("pod_gateway_gateway_dhcp_leases", "DHCP leases in dnsmasq's lease file."),
    pool: this.registry.gauge("pod_gateway_gateway_dhcp_pool_size", "Addresses the DHCP range can hand out."),
    clients: this.registry.gauge("pod_gateway_gateway_clients_seen", "Distinct clients (by MAC) that held a lease since the sidecar started."),
    fwVerified: this.registry.gauge("pod_gateway_gateway_firewall_verified", "1 when the last firewall check found our rules in place (after re-asserting them if needed)."),
    fwChecks: this.registry.counter("pod_gateway_gateway_firewall_checks_total", "Firewall checks."),
    fwReasserts: this.registry.counter("pod_gateway_gateway_firewall_reasserts_total", "Times the firewall was found changed by someone else and re-asserted."),
    fwFailures: this.registry.counter("pod_gateway_gateway_firewall_failures_total", "Firewall checks or re-assertions that failed, or left the rules different."),
    vpnUp: this.registry.gauge("pod_gateway_gateway_vpn_interface_up", "1 when the VPN interface exists and is up (IFF_UP and carrier)."),
    upstream: this.registry.counter("pod_gateway_gateway_upstream_dns_changes_total", "Changes of the upstream DNS servers (the VPN client rewrote resolv.conf)."),
    upstreamServers: this.registry.gauge("pod_gateway_gateway_upstream_dns_servers", "Upstream DNS servers dnsmasq forwards to."),
    drops: this.registry.counter(
      "pod_gateway_gateway_killswitch_drops_total",
      "Packets the kill switch dropped on eth0, by protocol, as its NFLOG rule logged them (at most 10 a second are logged: a lower bound). Absent with the kill switch off.",
      ["protocol"],
    ),
    duplicates: this.registry.gauge(
      DUPLICATES_METRIC,
      "Overlay addresses (kind=address) or MACs (kind=mac) seen behind two or more pod IPs within the last minute: two live pods share one overlay identity.",
      ["kind"],
    ),
    watch: this.registry.gauge(
      "pod_gateway_gateway_watch_connections",
      "Client sidecars' connections held on GATEWAY_WATCH_PORT (ended first when the sidecar stops). Absent when the port is 0 or could not be bound.",
    ),
    dropLogLost: this.registry.counter("pod_gateway_gateway_killswitch_drop_log_overruns_total", "Times the kernel dropped drop-log messages the sidecar did not read in time (ENOBUFS). Absent with the kill switch off."),
  };
  private dropCounter: { lost: number; packets?: number; last?: { text: string; atMs: number } } | undefined;

  constructor(
    readonly cfg: GatewayMonitorConfig,
    now: number,
  ) {
    this.lastTickAt = now;
    this.m.build.set(1, { version: cfg.version, commit: cfg.commit, role: "gateway-sidecar" });
    this.m.pool.set(cfg.poolSize);
    this.m.dnsmasqUp.set(0);
    this.m.leases.set(0);
    this.m.clients.set(0);
    this.m.fwVerified.set(0);
    for (const kind of ["address", "mac"]) this.m.duplicates.set(0, { kind });
  }

  duplicates(counts: { address: number; mac: number }): void {
    this.m.duplicates.set(counts.address, { kind: "address" });
    this.m.duplicates.set(counts.mac, { kind: "mac" });
  }

  /**
   * One firewall check: `problems` found by the check, whether it re-asserted, what was left after
   * (or the error). The loop's tick.
   */
  firewallChecked(now: number, r: { problems: readonly string[]; reasserted: boolean; left: readonly string[]; error?: string }): MonitorNote | undefined {
    this.lastTickAt = now;
    this.m.fwChecks.inc();
    if (r.reasserted) this.m.fwReasserts.inc();
    const ok = r.error === undefined && (r.reasserted ? r.left.length === 0 : r.problems.length === 0);
    if (!ok) this.m.fwFailures.inc();
    const was = this.firewallOk;
    this.firewallOk = ok;
    this.firewallDetail = r.error ?? (r.reasserted ? r.left : r.problems).join("; ");
    this.m.fwVerified.set(ok ? 1 : 0);
    if (was === ok) return undefined;
    return ok
      ? { level: "info", text: `firewall verified (pod_gateway_gateway_firewall_verified 1)` }
      : { level: "warn", text: `firewall not verified: ${this.firewallDetail} (pod_gateway_gateway_firewall_verified 0)` };
  }

  dnsmasq(running: boolean): void {
    this.dnsmasqRunning = running;
    this.m.dnsmasqUp.set(running ? 1 : 0);
  }

  /** The kill switch's drop report runs: its drop counts start at 0 (else they stay absent). */
  dropReport(counter: { lost: number; packets?: number; last?: { text: string; atMs: number } }): void {
    this.dropCounter = counter;
    for (const protocol of DROP_PROTOCOLS) this.m.drops.inc(0, { protocol });
    this.m.dropLogLost.set(counter.lost);
  }

  /** Packets the kill switch's NFLOG rule logged, counted by protocol (a bounded label: DROP_PROTOCOLS). */
  killSwitchDropped(packets: readonly { proto: string }[]): void {
    for (const p of packets) this.m.drops.inc(1, { protocol: dropProtocol(p.proto) });
    if (this.dropCounter) this.m.dropLogLost.set(this.dropCounter.lost);
  }

  /** Watch connections held now (only while the watch port listens). */
  watchConnections(held: number): void {
    this.m.watch.set(held);
  }

  /** Before a scrape: counts kept outside the monitor. */
  refresh(): void {
    if (this.dropCounter) this.m.dropLogLost.set(this.dropCounter.lost);
  }

  upstreamChanged(servers: readonly string[], initial = false): void {
    if (!initial) this.m.upstream.inc();
    this.m.upstreamServers.set(servers.length);
  }

  /** The VPN interface's state (undefined: it does not exist); a note when it changes. */
  vpnLink(name: string, up: boolean): MonitorNote | undefined {
    const was = this.vpnUp;
    this.vpnUp = up;
    this.m.vpnUp.set(up ? 1 : 0);
    if (was === up) return undefined;
    if (was === undefined && up) return { level: "info", text: `VPN link ${name} up (pod_gateway_gateway_vpn_interface_up 1)` };
    return up ? { level: "info", text: `VPN link ${name} up (pod_gateway_gateway_vpn_interface_up 1)` } : { level: "warn", text: `VPN link ${name} down (pod_gateway_gateway_vpn_interface_up 0)` };
  }

  leases(now: number, leases: readonly DnsmasqLease[]): void {
    // An expiry of 0 means an infinite lease.
    const live = leases.filter((l) => l.expiry === 0 || l.expiry * 1000 > now);
    this.m.leases.set(live.length);
    for (const l of live) this.seen.add(l.mac);
    this.m.clients.set(this.seen.size);
  }

  status(now: number, version: string, dns?: { ok: boolean; detail: string }): GatewayStatus {
    return {
      role: "gateway-sidecar",
      version,
      tickAgeMs: Math.max(0, now - this.lastTickAt),
      intervalMs: this.cfg.intervalMs,
      dnsmasqRunning: this.dnsmasqRunning,
      firewallVerified: this.firewallOk,
      firewallDetail: this.firewallDetail,
      ...(this.dropCounter ? { drops: dropStatus(this.dropCounter, now) } : {}),
      ...(dns ? { dns } : {}),
    };
  }
}

/** The drop report's counts as the status socket carries them (the age from the same clock). */
function dropStatus(c: { packets?: number; last?: { text: string; atMs: number } }, now: number): NonNullable<GatewayStatus["drops"]> {
  return { packets: c.packets ?? 0, ...(c.last ? { last: { text: c.last.text, ageMs: Math.max(0, now - c.last.atMs) } } : {}) };
}
