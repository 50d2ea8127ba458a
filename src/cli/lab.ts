// `pod-gateway lab`: the namespace lab for trying the roles on one machine (see src/lab/lab.ts).
// Each subcommand lives in src/cli/lab/<name>.ts and is loaded only when used.
import { defineCommand } from "citty";

export default defineCommand({
  meta: { name: "lab", description: "A Kubernetes-like network of network namespaces to try pod-gateway in (needs root)" },
  subCommands: {
    up: () => import("./lab/up.ts").then((m) => m.default),
    down: () => import("./lab/down.ts").then((m) => m.default),
    status: () => import("./lab/status.ts").then((m) => m.default),
    exec: () => import("./lab/exec.ts").then((m) => m.default),
    demo: () => import("./lab/demo.ts").then((m) => m.default),
    // Hidden helpers run inside the lab's namespaces by the lab itself.
    echo: () => import("./lab/echo.ts").then((m) => m.default),
    probe: () => import("./lab/probe.ts").then((m) => m.default),
    resolve: () => import("./lab/resolve.ts").then((m) => m.default),
    "openvpn-dns": () => import("./lab/openvpn-dns.ts").then((m) => m.default),
    get: () => import("./lab/get.ts").then((m) => m.default),
  },
});
