import { defineCommand } from "citty";
import { NotImplementedError } from "../core/errors.ts";

export default defineCommand({
  meta: { name: "client-init", description: "client-init (not implemented yet)" },
  run() {
    throw new NotImplementedError("client-init is not implemented yet");
  },
});
