// Thin wrapper over the `ip` command: reads state as JSON, applies many changes as one
// `ip -batch` process (one fork for many changes, and the read back in the same process when
// asked), and names the command a batch stopped at.
import { CommandError, PodGatewayError } from "../core/errors.ts";
import { parseIpJson, type IpLink } from "../core/net/ip-json.ts";
import type { Runner } from "./exec.ts";

/** `ip -batch` stopped at a command: which one (its index in the batch) and what the kernel said. */
export class IpBatchError extends PodGatewayError {
  override name = "IpBatchError";
  constructor(
    readonly index: number,
    readonly command: readonly string[],
    readonly detail: string,
    what: string,
    options?: { cause?: unknown },
  ) {
    super(`${what}: ip ${command.join(" ")} failed: ${detail}`, options);
  }
}

/**
 * The one way arguments reach `ip -batch`: one command per line, words separated by blanks.
 * iproute2 (getcmdline, makeargs) cuts the line at any '#', splits on blanks, and takes a word
 * that starts with a quote up to the next such quote; nothing can be escaped. So an argument
 * that is empty, holds a blank, a control character or '#', or starts with a quote cannot be
 * passed as one argument: refused (validation keeps such values out of the settings).
 */
export function ipBatchLine(args: readonly string[]): string {
  for (const a of args)
    if (a === "" || /[\s#\x00-\x1f\x7f]/.test(a) || a.startsWith('"') || a.startsWith("'"))
      throw new Error(`ip batch argument ${JSON.stringify(a)} cannot be passed as one word (empty, blank, control character, '#' or a leading quote)`);
  return args.join(" ");
}

export class Ip {
  constructor(readonly runner: Runner, readonly bin = "ip") {}

  async json<T>(args: readonly string[]): Promise<T[]> {
    const r = await this.runner.run([this.bin, "-j", ...args], { what: `reading ${args.join(" ")}` });
    return parseIpJson<T>(r.stdout);
  }

  links(): Promise<IpLink[]> {
    return this.json<IpLink>(["-d", "link", "show"]);
  }

  async link(name: string): Promise<IpLink | undefined> {
    return (await this.links()).find((l) => l.ifname === name);
  }

  /**
   * Apply many commands in one process. Each command is an argument array; `ip -batch`
   * reads one command per line, split on whitespace, so arguments must not contain spaces.
   * ip stops at the first command that fails and says "Command failed -:<line>" after the
   * kernel's answer: that becomes an IpBatchError naming the command.
   */
  async batch(cmds: readonly (readonly string[])[], what = "applying network changes"): Promise<void> {
    if (cmds.length === 0) return;
    await this.runBatch([], cmds, what);
  }

  /**
   * Apply `cmds`, then run `reads` (show commands) in the same `ip -j -d -batch -` process: the
   * reads see the state the commands left (a read back without a second process). Returns
   * stdout: the commands print nothing, each read one JSON array on a line of its own. A failure
   * stops the batch; IpBatchError's index counts the commands, then the reads.
   */
  async batchRead(cmds: readonly (readonly string[])[], reads: readonly (readonly string[])[], what: string): Promise<string> {
    return (await this.runBatch(["-j", "-d"], [...cmds, ...reads], what)).stdout;
  }

  private async runBatch(flags: readonly string[], cmds: readonly (readonly string[])[], what: string) {
    try {
      return await this.runner.run([this.bin, ...flags, "-batch", "-"], { input: cmds.map(ipBatchLine).join("\n") + "\n", what });
    } catch (e) {
      const m = e instanceof CommandError ? /^Command failed -:(\d+)\s*$/m.exec(e.stderr) : null;
      const cmd = m ? cmds[Number(m[1]) - 1] : undefined;
      if (!m || !cmd) throw e;
      const detail = (e as CommandError).stderr.slice(0, m.index).trim() || "no error message";
      throw new IpBatchError(Number(m[1]) - 1, cmd, detail, what, { cause: e });
    }
  }
}
