// Thin wrapper over the `ip` command: reads state as JSON, applies changes either one by
// one or as one `ip -batch` process (one fork for many changes).
import { parseIpJson, type IpAddr, type IpLink, type IpRoute, type IpRule } from "../core/net/ip-json.ts";
import type { Runner } from "./exec.ts";

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

  /** Every link with its details (-d) and addresses. */
  addrs(): Promise<IpAddr[]> {
    return this.json<IpAddr>(["-d", "addr", "show"]);
  }

  routes(family: 4 | 6 = 4, table = "main"): Promise<IpRoute[]> {
    return this.json<IpRoute>([`-${family}`, "route", "show", "table", table]);
  }

  rules(family: 4 | 6 = 4): Promise<IpRule[]> {
    return this.json<IpRule>([`-${family}`, "rule", "show"]);
  }

  /**
   * Apply many commands in one process. Each command is an argument array; `ip -batch`
   * reads one command per line, split on whitespace, so arguments must not contain spaces.
   */
  async batch(cmds: readonly (readonly string[])[], what = "applying network changes"): Promise<void> {
    if (cmds.length === 0) return;
    for (const c of cmds) for (const a of c) if (/\s/.test(a) || a === "") throw new Error(`ip batch argument ${JSON.stringify(a)} is empty or has whitespace`);
    await this.runner.run([this.bin, "-batch", "-"], { input: cmds.map((c) => c.join(" ")).join("\n") + "\n", what });
  }
}
