// Argument definitions shared by several commands.

export const configDirArg = {
  "config-dir": {
    type: "string",
    description: "Directory holding settings.sh and nat.conf (default: $POD_GATEWAY_CONFIG_DIR or /config)",
    valueHint: "DIR",
  },
} as const;

export const allowHostNetworkArg = {
  "allow-host-network": {
    type: "boolean",
    description: "Change network state even when this does not look like a pod, container or separate network namespace",
    default: false,
  },
} as const;

export const roleArgs = { ...configDirArg, ...allowHostNetworkArg } as const;
