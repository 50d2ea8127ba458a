// Test wrapper over the lab: one fresh lab per describe block (or file), always torn down; the
// two things every netns test does with the processes it starts (collect, waitFor); the client
// roles under their drop-in names with nothing else on PATH (withClientDropIns); and a gateway
// started as the chart starts it (startGateway).
//
//   import { withLab } from "./helpers.ts";
//   const t = withLab({ clients: 2, extraSettings: "VPN_BLOCK_OTHER_TRAFFIC=true" });
//   test("...", async () => { const r = await t.lab.exec("client-0", ["ip", "route"]); ... });
//
// beforeAll builds the lab (failing every test with a clear message when the machine is not
// root or lacks ip/dnsmasq/sysctl/iptables-or-nft); afterAll destroys it even when tests
// failed or timed out; a process exit before afterAll still removes the namespaces.
//
// The VPN: `withLab({ vpn: "openvpn" })` runs a real OpenVPN server and client (see
// src/lab/openvpn.ts); a file that does not choose runs against the veth stand-in, or against
// the kind named by POD_GATEWAY_LAB_VPN (veth|openvpn), so a whole file can be run against the
// real VPN: POD_GATEWAY_LAB_VPN=openvpn bun test test/netns/gateway-roles.test.ts
import { afterAll, beforeAll } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { checkLabPrerequisites, createLab, type Lab, type LabOptions } from "../../src/lab/lab.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";

export { LAB, selfCommand } from "../../src/lab/lab.ts";

export interface LabFixture {
  /** The lab; only valid inside tests (after beforeAll). */
  readonly lab: Lab;
}

const live = new Set<string>();
let exitHookInstalled = false;

/** Last resort when the test process exits without afterAll: synchronous, best effort. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const id of live) spawnSync(process.execPath, [`${import.meta.dir}/../../src/main.ts`, "lab", "down", "--id", id], { stdio: "ignore" });
  });
}

/** The VPN kind a lab gets when its file does not choose (POD_GATEWAY_LAB_VPN, default veth). */
export function defaultVpnKind(): NonNullable<LabOptions["vpn"]> {
  const v = process.env.POD_GATEWAY_LAB_VPN ?? "veth";
  if (v !== "veth" && v !== "openvpn") throw new Error(`POD_GATEWAY_LAB_VPN must be veth or openvpn, not ${JSON.stringify(v)}`);
  return v;
}

export function withLab(opts: LabOptions = {}, timeouts: { buildMs?: number; destroyMs?: number } = {}): LabFixture {
  let lab: Lab | undefined;
  beforeAll(async () => {
    opts = { ...opts, vpn: opts.vpn ?? defaultVpnKind() };
    checkLabPrerequisites(opts);
    installExitHook();
    lab = await createLab(opts);
    live.add(lab.id);
  }, timeouts.buildMs ?? 60_000);
  afterAll(async () => {
    if (!lab) return;
    await lab.destroy();
    live.delete(lab.id);
  }, timeouts.destroyMs ?? 30_000);
  return {
    get lab(): Lab {
      if (!lab) throw new Error("the lab is not built (its beforeAll failed, see the first error)");
      return lab;
    },
  };
}

/** Keeps reading a child's output (a full pipe would block it) and lets tests look at it. */
export function collect(p: { stdout: ReadableStream<Uint8Array>; stderr: ReadableStream<Uint8Array> }): { text: () => string } {
  let buf = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of s) buf += dec.decode(chunk, { stream: true });
  };
  void pump(p.stdout);
  void pump(p.stderr);
  return { text: () => buf };
}

/**
 * Wait until cond() holds, checking every `everyMs` (default 50) and once more at the end. The
 * bound only keeps a broken test from hanging: it is not a timing assertion. `detail` (a log,
 * say) is added to the error.
 */
export async function waitFor(
  what: string,
  cond: () => Promise<boolean> | boolean,
  timeoutMs: number,
  opts: { everyMs?: number; detail?: () => string } = {},
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (true) {
    if (await cond()) return;
    if (Date.now() > end) {
      const detail = opts.detail?.() ?? "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? `\n${detail}` : ""}`);
    }
    await Bun.sleep(opts.everyMs ?? 50);
  }
}

export interface ClientDropIns {
  /** The compiled binary; only valid inside tests (after beforeAll). */
  readonly bin: string;
  /** The directory holding the drop-in names; only valid inside tests. */
  readonly dir: string;
  /** A role's argv: env(1) gives it a PATH holding nothing but the drop-ins (`ip netns exec` itself still needs the test's PATH). */
  role(name: "client_init.sh" | "client_sidecar.sh"): string[];
}

/**
 * The client roles as the chart and the webhook start them: the compiled binary under its
 * drop-in names in a directory of their own, run with that directory as their whole PATH, so a
 * role that tried to run a program (`ip`) would fail. beforeAll (root only) creates the
 * directory, afterAll removes it.
 */
export function withClientDropIns(tag: string): ClientDropIns {
  let bin = "";
  let dir = "";
  const ready = (v: string) => {
    if (!v) throw new Error("the client drop-ins are not set up (their beforeAll failed, see the first error)");
    return v;
  };
  beforeAll(() => {
    requireRoot();
    bin = binPath();
    dir = mkdtempSync(join(tmpdir(), `pgw-${tag}-`));
    symlinkSync(bin, join(dir, "client_init.sh"));
    symlinkSync(bin, join(dir, "client_sidecar.sh"));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return {
    get bin() {
      return ready(bin);
    },
    get dir() {
      return ready(dir);
    },
    role: (name) => ["/usr/bin/env", `PATH=${ready(dir)}`, join(ready(dir), name)],
  };
}

export interface GatewayStart {
  /** The gateway's role environment (default: lab.roleEnv("gateway")). */
  env?: Record<string, string>;
  /** Run gateway-init first (default true). */
  init?: boolean;
  /** Where the started process is registered for the file's cleanup, before anything is awaited. */
  track?: Subprocess[];
  /** Bound on the wait for dnsmasq (default 15 s) and how often it is checked. */
  timeoutMs?: number;
  everyMs?: number;
}

/**
 * gateway-init (unless `init: false`), then gateway-sidecar with its run directory under the
 * lab's, until its dnsmasq runs. A sidecar that exits first fails the start with its log.
 */
export async function startGateway(
  lab: Lab,
  bin: string,
  runName: string,
  opts: GatewayStart = {},
): Promise<{ proc: Subprocess<"ignore", "pipe", "pipe">; out: { text: () => string } }> {
  const env = opts.env ?? lab.roleEnv("gateway");
  if (opts.init ?? true) await lab.exec("gateway", [bin, "gateway-init"], { env, what: "gateway-init" });
  const proc = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, runName)], { env });
  opts.track?.push(proc);
  const out = collect(proc);
  await waitFor("the gateway's dnsmasq", () => out.text().includes("dnsmasq running") || proc.exitCode !== null, opts.timeoutMs ?? 15_000, { everyMs: opts.everyMs });
  if (proc.exitCode !== null) throw new Error(`gateway-sidecar exited ${proc.exitCode}:\n${out.text()}`);
  return { proc, out };
}
