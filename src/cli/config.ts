import { defineCommand } from "citty";
import { NotImplementedError } from "../core/errors.ts";

export default defineCommand({
  meta: { name: "config", description: "config (not implemented yet)" },
  run() {
    throw new NotImplementedError("config is not implemented yet");
  },
});
