// Which role uses which setting: the one table (printed in README by renderRoleTable) that
// decides what a bad value stops. The chart copies one ConfigMap into every routed namespace, so
// a key only the gateway reads must not take every routed pod down: the client roles validate
// what they use and report the rest as warnings; the gateway roles stay strict; `pod-gateway
// config` reports everything, each error with the roles it stops.
import type { ConfigIssue } from "../errors.ts";
import type { SettingKey } from "./types.ts";

export const ROLES = ["client-init", "client-sidecar", "gateway-init", "gateway-sidecar"] as const;
export type Role = (typeof ROLES)[number];

const CLIENT: readonly Role[] = ["client-init", "client-sidecar"];
const GATEWAY: readonly Role[] = ["gateway-init", "gateway-sidecar"];
const ALL: readonly Role[] = ROLES;

export const isClientRole = (r: Role): boolean => CLIENT.includes(r);

/**
 * The roles that read each setting. The client sidecar re-runs client-init's steps when it heals
 * the tunnel, so it reads everything client-init reads. VXLAN_GATEWAY_FIRST_DYNAMIC_IP is the
 * clients' too: a static nat.conf octet must lie below the DHCP range.
 */
export const SETTING_USERS: { readonly [K in SettingKey]: readonly Role[] } = {
  GATEWAY_NAME: CLIENT,
  K8S_DNS_IPS: CLIENT,
  NOT_ROUTED_TO_GATEWAY_CIDRS: CLIENT,
  VXLAN_ID: [...CLIENT, "gateway-init"],
  VXLAN_PORT: ALL,
  VXLAN_IP_NETWORK: ALL,
  VXLAN_GATEWAY_FIRST_DYNAMIC_IP: ALL,
  VPN_INTERFACE: GATEWAY,
  VPN_BLOCK_OTHER_TRAFFIC: GATEWAY,
  VPN_TRAFFIC_PORT: GATEWAY,
  VPN_LOCAL_CIDRS: GATEWAY,
  DNS_LOCAL_CIDRS: ["gateway-sidecar"],
  DNS_LOCAL_SERVER: ["gateway-sidecar"],
  RESOLV_CONF_COPY: ["gateway-sidecar"],
  CONNECTION_RETRY_COUNT: ["client-sidecar"],
  GATEWAY_ENABLE_DNSSEC: ["gateway-sidecar"],
  IPTABLES_NFT: GATEWAY,
  SNAT_IP: GATEWAY,
  VPN_INTERFACE_MTU: [...CLIENT, "gateway-init"],
  DHCP_LEASE_TIME: ["gateway-sidecar"],
  GATEWAY_LOG_QUERIES: ["gateway-sidecar"],
  FIREWALL_BACKEND: GATEWAY,
  CLIENT_PROBE_INTERVAL: ["client-sidecar"],
  SIDECAR_EXIT_WHEN_POD_DONE: ["client-sidecar"],
  // gateway-init opens it in the firewall, gateway-sidecar listens, client-sidecar connects.
  GATEWAY_WATCH_PORT: ["client-sidecar", "gateway-init", "gateway-sidecar"],
  GATEWAY_METRICS_PORT: ["gateway-sidecar"],
  CLIENT_METRICS_PORT: ["client-sidecar"],
  METRICS_BIND_ADDRESS: ["client-sidecar", "gateway-sidecar"],
};

function isKey(k: string): k is SettingKey {
  return Object.hasOwn(SETTING_USERS, k);
}

/** Whether `role` must refuse a bad value of `key` (gateway roles refuse every bad value). */
export function roleIsStrictAbout(role: Role, key: string): boolean {
  if (!isClientRole(role)) return true;
  return isKey(key) && SETTING_USERS[key].includes(role);
}

/**
 * What an issue stops, for `pod-gateway config`: the gateway roles always (they are strict); the
 * client roles when it is about a setting they read or a line that is no assignment at all (which
 * key it meant is unknown), not about a key no role reads; for a nat.conf line, the clients of
 * the pod it names only.
 */
export function stopsText(i: ConfigIssue, natLineName?: string): string {
  if (natLineName !== undefined)
    return natLineName === "" ? "gateway-init, gateway-sidecar" : `gateway-init, gateway-sidecar and the client roles of pod ${JSON.stringify(natLineName.slice(0, 63))}`;
  if (i.key === undefined) return "every role";
  const roles = ROLES.filter((r) => roleIsStrictAbout(r, i.key!)); // an unknown key: the gateway roles only
  return ROLES.every((r) => roles.includes(r)) ? "every role" : roles.join(", ");
}

/** The table for README: one row per setting, a mark per role that reads it. */
export function renderRoleTable(keys: readonly SettingKey[]): string {
  const head = `| Setting | ${ROLES.join(" | ")} |\n|---|${ROLES.map(() => ":-:").join("|")}|\n`;
  const rows = keys.map((k) => `| \`${k}\` | ${ROLES.map((r) => (SETTING_USERS[k].includes(r) ? "✓" : "")).join(" | ")} |`);
  const nat = `| \`nat.conf\` | own entry | own entry | ✓ | ✓ |`;
  return head + [...rows, nat].join("\n") + "\n";
}
