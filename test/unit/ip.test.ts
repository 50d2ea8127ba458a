// The `ip` wrapper: a batch that ip stopped part-way names the command it stopped at.
import { describe, expect, test } from "bun:test";
import { CommandError } from "../../src/core/errors.ts";
import type { RunOptions, RunResult } from "../../src/sys/exec.ts";
import { Ip, IpBatchError } from "../../src/sys/ip.ts";

/** A runner that answers `ip -batch -` as iproute2 6.1 does when its third line fails (captured). */
function failingAt(line: number, kernel: string) {
  const inputs: string[] = [];
  return {
    inputs,
    run: async (argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> => {
      inputs.push(opts.input ?? "");
      throw new CommandError(argv, 1, `${kernel}\nCommand failed -:${line}\n`, opts.what);
    },
  };
}

describe("Ip.batch", () => {
  const cmds = [["link", "set", "lo", "up"], ["route", "add", "10.0.0.0/8", "dev", "lo"], ["route", "add", "10.0.0.0/8", "dev", "lo"]];

  test("one process, one command per line", async () => {
    const calls: { argv: readonly string[]; input?: string }[] = [];
    await new Ip({ run: async (argv, o) => (calls.push({ argv, input: o?.input }), { code: 0, stdout: "", stderr: "" }) }).batch(cmds, "adding routes");
    expect(calls).toEqual([{ argv: ["ip", "-batch", "-"], input: "link set lo up\nroute add 10.0.0.0/8 dev lo\nroute add 10.0.0.0/8 dev lo\n" }]);
  });

  test("a failure names the operation, the command ip stopped at and the kernel's answer", async () => {
    const e = await new Ip(failingAt(3, "RTNETLINK answers: File exists")).batch(cmds, "adding routes").catch((x) => x);
    expect(e).toBeInstanceOf(IpBatchError);
    expect(e.message).toBe("adding routes: ip route add 10.0.0.0/8 dev lo failed: RTNETLINK answers: File exists");
    expect(e.index).toBe(2);
    expect(e.detail).toBe("RTNETLINK answers: File exists");
    expect(e.cause).toBeInstanceOf(CommandError);
  });

  test("a failure that names no line (ip could not start, a line out of range) stays the command's error", async () => {
    const runner = { run: async (argv: readonly string[]): Promise<RunResult> => { throw new CommandError(argv, null, "ENOENT"); } };
    await expect(new Ip(runner).batch(cmds)).rejects.toBeInstanceOf(CommandError);
    await expect(new Ip(failingAt(9, "RTNETLINK answers: File exists")).batch(cmds)).rejects.not.toBeInstanceOf(IpBatchError);
  });

  test("arguments with whitespace are refused before anything runs", async () => {
    const r = failingAt(1, "");
    await expect(new Ip(r).batch([["link", "set", "my dev", "up"]])).rejects.toThrow('ip batch argument "my dev" cannot be passed as one word');
    // ip -batch cuts a line at '#', splits at a newline, reads a leading quote as quoting
    for (const bad of ["tun#0", "a\nlink del eth0", '"eth0', "'eth0", "", "a\u0000b"])
      await expect(new Ip(r).batch([["link", "set", "dev", bad, "up"]])).rejects.toThrow("cannot be passed as one word");
    expect(r.inputs).toEqual([]);
  });
});
