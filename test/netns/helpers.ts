// Test wrapper over the lab: one fresh lab per describe block (or file), always torn down; and
// the two things every netns test does with the processes it starts (collect, waitFor).
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
import { checkLabPrerequisites, createLab, type Lab, type LabOptions } from "../../src/lab/lab.ts";

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
