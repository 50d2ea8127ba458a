import { defineCommand } from "citty";
import { NotImplementedError } from "../core/errors.ts";

export default defineCommand({
  meta: { name: "client-sidecar", description: "client-sidecar (not implemented yet)" },
  run() {
    throw new NotImplementedError("client-sidecar is not implemented yet");
  },
});
