// The command table: each command lives in its own small file, loaded only when used,
// so `pod-gateway version` does not pay for the lab or the DHCP client.
import type { CommandDef } from "citty";

type Lazy = () => Promise<CommandDef<any>>;

export const commands: Record<string, Lazy> = {
  "client-init": () => import("./client-init.ts").then((m) => m.default),
  "client-sidecar": () => import("./client-sidecar.ts").then((m) => m.default),
  "gateway-init": () => import("./gateway-init.ts").then((m) => m.default),
  "gateway-sidecar": () => import("./gateway-sidecar.ts").then((m) => m.default),
  "check-done": () => import("./check-done.ts").then((m) => m.default),
  config: () => import("./config.ts").then((m) => m.default),
  lab: () => import("./lab.ts").then((m) => m.default),
  install: () => import("./install.ts").then((m) => m.default),
  version: () => import("./version.ts").then((m) => m.default),
  health: () => import("./health.ts").then((m) => m.default),
  doctor: () => import("./doctor.ts").then((m) => m.default),
};

/**
 * Multi-call names: the Helm chart and the admission webhook run /bin/client_init.sh etc.
 * with no arguments; those paths are links to this binary.
 */
export const multiCallNames: Record<string, string> = {
  "client_init.sh": "client-init",
  "client_sidecar.sh": "client-sidecar",
  "gateway_init.sh": "gateway-init",
  "gateway_sidecar.sh": "gateway-sidecar",
};
