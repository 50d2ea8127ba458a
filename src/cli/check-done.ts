import { defineCommand } from "citty";
import { NotImplementedError } from "../core/errors.ts";

export default defineCommand({
  meta: { name: "check-done", description: "check-done (not implemented yet)" },
  run() {
    throw new NotImplementedError("check-done is not implemented yet");
  },
});
