import { defineCommand } from "citty";
import { NotImplementedError } from "../core/errors.ts";

export default defineCommand({
  meta: { name: "gateway-init", description: "gateway-init (not implemented yet)" },
  run() {
    throw new NotImplementedError("gateway-init is not implemented yet");
  },
});
