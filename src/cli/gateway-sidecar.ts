import { defineCommand } from "citty";
import { NotImplementedError } from "../core/errors.ts";

export default defineCommand({
  meta: { name: "gateway-sidecar", description: "gateway-sidecar (not implemented yet)" },
  run() {
    throw new NotImplementedError("gateway-sidecar is not implemented yet");
  },
});
