import { defineCommand } from "citty";
import { NotImplementedError } from "../core/errors.ts";

export default defineCommand({
  meta: { name: "lab", description: "lab (not implemented yet)" },
  run() {
    throw new NotImplementedError("lab is not implemented yet");
  },
});
