// `pod-gateway check-done`: one GET of our pod, the same decision the client sidecar uses.
// For operators debugging RBAC and for exec probes.
import { defineCommand } from "citty";
import { pickServiceAccountDir } from "../core/kube/config.ts";
import { checkPodDone, readInClusterConfig } from "../sys/kube.ts";
import { writeStdout } from "../sys/output.ts";

export default defineCommand({
  meta: {
    name: "check-done",
    description:
      "Ask the Kubernetes API whether every other container of this pod has finished; prints true or false. " +
      "Exit codes: 0 true, 1 false, 2 configuration problem (KUBERNETES_SERVICE_HOST/_PORT unset, token, ca.crt or namespace missing), " +
      "4 refused by the API (401/403: RBAC missing, see config/kubernetes/rbac.yaml), " +
      "5 API not reachable or erroring (network, TLS verification, timeout, 404, 5xx, malformed answer). " +
      "Uses POD_NAME/POD_NAMESPACE (else the hostname and the token's namespace) and POD_GATEWAY_CONTAINER_NAME (else CONTAINER_NAME when it names a container of the pod, else gateway-sidecar).",
  },
  args: {
    "serviceaccount-dir": {
      type: "string",
      description: "Service-account directory with token, ca.crt and namespace (default: $POD_GATEWAY_SERVICEACCOUNT_DIR or /var/run/secrets/kubernetes.io/serviceaccount)",
      valueHint: "DIR",
    },
  },
  async run({ args }) {
    const saDir = pickServiceAccountDir(args["serviceaccount-dir"], process.env);
    const cfg = readInClusterConfig({ saDir });
    // Errors are thrown: main.ts logs them and exits with their code (2, 4 or 5).
    const done = await checkPodDone(cfg);
    writeStdout(`${done}\n`);
    return done ? 0 : 1;
  },
});
