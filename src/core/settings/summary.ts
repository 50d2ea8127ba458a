// Renders a resolved configuration for people: the one-screen summary roles log at start-up,
// and the full table and JSON that `pod-gateway config` prints. Pure.
import type { LoadedConfig } from "./resolve.ts";
import { sourceText } from "./resolve.ts";
import { SETTING_KEYS } from "./schema.ts";
import type { NatEntry, ResolvedConfig, SettingKey, Settings } from "./types.ts";

/** A setting's value as text, as it would be written in settings.sh (lists space-separated). */
export function renderValue(v: Settings[SettingKey]): string {
  if (v === undefined) return "";
  if (Array.isArray(v)) return v.join(" ");
  return String(v);
}

function renderPorts(e: NatEntry): string {
  return e.ports.map((p) => `${p.proto}:${p.port}`).join(",");
}

function list(v: readonly unknown[], none = "none"): string {
  return v.length ? v.join(" ") : none;
}

const isLoaded = (c: ResolvedConfig): c is LoadedConfig => "natFile" in c;

/**
 * About ten lines for a role's start-up log: what the pod will do, the files it came from, and
 * every value that differs from the built-in default with where it was set.
 */
export function summarizeConfig(cfg: ResolvedConfig): string[] {
  const s = cfg.settings;
  const net = s.VXLAN_IP_NETWORK;
  const first = s.VXLAN_GATEWAY_FIRST_DYNAMIC_IP;
  const lines: string[] = [];
  lines.push(`config files: ${cfg.files.join(", ")}`);
  lines.push(`gateway: ${s.GATEWAY_NAME || "(GATEWAY_NAME empty)"}; cluster DNS: ${list(s.K8S_DNS_IPS)}; not routed to gateway: ${list(s.NOT_ROUTED_TO_GATEWAY_CIDRS)}`);
  lines.push(
    `overlay: vxlan id ${s.VXLAN_ID} port ${s.VXLAN_PORT === 0 ? "0 (kernel default 8472)" : s.VXLAN_PORT}, ${net}.0/24, gateway ${net}.1, ` +
      `static ${net}.2-${first - 1}, DHCP ${net}.${first}-254 for ${s.DHCP_LEASE_TIME}` +
      (s.VPN_INTERFACE_MTU !== undefined ? `, MTU at most ${s.VPN_INTERFACE_MTU}` : ""),
  );
  lines.push(
    s.VPN_INTERFACE
      ? `vpn: ${s.VPN_INTERFACE}, kill switch ${s.VPN_BLOCK_OTHER_TRAFFIC ? "on" : "off"}, vpn ports ${list(s.VPN_TRAFFIC_PORT)}, local via eth0: ${list(s.VPN_LOCAL_CIDRS)}, ` +
          `${s.SNAT_IP ? `SNAT to ${s.SNAT_IP}` : "masquerade"}`
      : `vpn: none (plain NAT gateway, ${s.SNAT_IP ? `SNAT to ${s.SNAT_IP}` : "masquerade"})`,
  );
  lines.push(
    `dns: local domains ${list(s.DNS_LOCAL_CIDRS)} via ${s.DNS_LOCAL_SERVER || "the original resolv.conf"}, dnssec ${s.GATEWAY_ENABLE_DNSSEC ? "on" : "off"}, ` +
      `query log ${s.GATEWAY_LOG_QUERIES ? "on" : "off"}, resolv.conf copy ${s.RESOLV_CONF_COPY}`,
  );
  lines.push(`firewall: ${s.FIREWALL_BACKEND}${s.IPTABLES_NFT ? " (IPTABLES_NFT=yes)" : ""}`);
  lines.push(
    `client: probe every ${s.CLIENT_PROBE_INTERVAL}s, act after ${s.CONNECTION_RETRY_COUNT} failure${s.CONNECTION_RETRY_COUNT === 1 ? "" : "s"}, exit when pod done: ${s.SIDECAR_EXIT_WHEN_POD_DONE}`,
  );
  const natFile = isLoaded(cfg) ? cfg.natFile : undefined;
  lines.push(
    `nat: ${cfg.nat.length} static entr${cfg.nat.length === 1 ? "y" : "ies"}` +
      (cfg.nat.length ? ` (${cfg.nat.slice(0, 4).map((e) => `${e.name}=.${e.octet}${e.ports.length ? " " + renderPorts(e) : ""}`).join(", ")}${cfg.nat.length > 4 ? ", ..." : ""})` : "") +
      (natFile ? ` from ${natFile}` : ""),
  );
  const changed = SETTING_KEYS.filter((k) => cfg.sources[k] && cfg.sources[k].kind !== "default");
  if (changed.length) lines.push(`set by files: ${changed.map((k) => `${k} (${sourceText(cfg.sources[k])})`).join(", ")}`);
  if (cfg.warnings.length) lines.push(`${cfg.warnings.length} warning${cfg.warnings.length === 1 ? "" : "s"} (run pod-gateway config to see them)`);
  return lines;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd());
}

/** The human form of `pod-gateway config`: every setting with its source, then the nat entries. */
export function renderConfigTable(cfg: LoadedConfig): string[] {
  const out: string[] = [];
  out.push(`Settings (layers, later wins: ${cfg.files.filter((f) => f !== cfg.natFile).join(" < ")})`);
  const rows = [["KEY", "VALUE", "SOURCE"]];
  for (const k of SETTING_KEYS) {
    const v = renderValue(cfg.settings[k]);
    const exp = cfg.expansions[k];
    const from = exp?.length ? ` (from ${exp.map((e) => `$${e.name}${e.set ? "" : " unset"}`).join(", ")})` : "";
    rows.push([k, v === "" ? '""' : v, sourceText(cfg.sources[k]) + from]);
  }
  out.push(...table(rows).map((l) => "  " + l));
  out.push("");
  const net = cfg.settings.VXLAN_IP_NETWORK;
  if (cfg.nat.length === 0) out.push(`NAT entries: none (${cfg.natFile})`);
  else {
    out.push(`NAT entries (${cfg.natFile})`);
    const natRows = [["NAME", "ADDRESS", "PORTS", "LINE"]];
    for (const e of cfg.nat) natRows.push([e.name, `${net}.${e.octet}`, renderPorts(e) || "-", String(e.line)]);
    out.push(...table(natRows).map((l) => "  " + l));
  }
  if (cfg.warnings.length) out.push("", `${cfg.warnings.length} warning${cfg.warnings.length === 1 ? "" : "s"} (on stderr)`);
  return out;
}

/** The JSON form of `pod-gateway config --json`. */
export function renderConfigJson(cfg: LoadedConfig): string {
  const { sources, nat, files, warnings, expansions, natFile } = cfg;
  // Every key is present: an unset optional (VPN_INTERFACE_MTU) is null, not left out.
  const settings = Object.fromEntries(SETTING_KEYS.map((k) => [k, cfg.settings[k] ?? null]));
  return JSON.stringify({ settings, sources, nat, files, warnings, natFile, expansions }, null, 2) + "\n";
}
