// Nothing but the binary: the client roles talk to the kernel over rtnetlink in-process and run
// no program. (1) client-init and client-sidecar under `strace -f -e trace=execve` execute
// nothing but the binary itself — the sidecar through a renewal and a full re-initialisation (its
// vxlan0 deleted), the paths that change the network. (2) Both roles run from a root holding only
// the binary, libc and the loader (no `ip`, no shell), mounted as a container runtime would.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Subprocess } from "bun";
import { which } from "../../src/sys/exec.ts";
import type { Lab, PodName } from "../../src/lab/types.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { collect, waitFor, withLab } from "./helpers.ts";

const t = withLab({ clients: 2, extraSettings: "DHCP_LEASE_TIME=2m\n" });

let work = "";
let bin = "";
let strace = "";
const procs: Subprocess[] = [];
const mounts: string[] = [];

function sh(argv: string[], what: string): string {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${what}: ${argv.join(" ")} exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

beforeAll(() => {
  requireRoot();
  bin = binPath();
  const s = which("strace");
  if (!s) throw new Error("`strace` is missing: apt-get install strace");
  strace = s;
  work = mkdtempSync(join(tmpdir(), "pgw-nl-client-"));
});

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  for (const m of [...mounts].reverse()) Bun.spawnSync(["umount", "-l", m]);
  // never delete through a mount that is still there (the lab's config directory is bound in)
  const still = readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => work && (l.split(" ")[4] ?? "").startsWith(work));
  if (work && !still) rmSync(work, { recursive: true, force: true });
});

async function startGateway(lab: Lab): Promise<void> {
  await lab.exec("gateway", [bin, "gateway-init"], { env: lab.roleEnv("gateway"), what: "gateway-init" });
  const proc = lab.spawn("gateway", [bin, "gateway-sidecar", "--run-dir", join(lab.runDir, "gw")], { env: lab.roleEnv("gateway") });
  procs.push(proc);
  const out = collect(proc);
  await waitFor("the gateway's dnsmasq", () => out.text().includes("dnsmasq running") || proc.exitCode !== null, 15_000);
  if (proc.exitCode !== null) throw new Error(`gateway-sidecar exited ${proc.exitCode}:\n${out.text()}`);
}

/** The execve calls in an `strace -f -o` file: "pid execve("path", ...) = 0". */
function execs(file: string): string[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => /\bexecve\(/.test(l) && !/resumed>/.test(l))
    .map((l) => /execve\("([^"]*)"/.exec(l)?.[1] ?? l);
}

/** The pid strace runs the role as (its only child). */
function tracee(stracePid: number): number {
  const kids = readFileSync(`/proc/${stracePid}/task/${stracePid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
  if (kids.length !== 1) throw new Error(`strace ${stracePid} has children ${JSON.stringify(kids)}`);
  return Number(kids[0]);
}

describe("the client roles execute no program", () => {
  test("gateway up", async () => {
    await startGateway(t.lab);
  }, 30_000);

  test("client-init (DHCP) under strace: one execve, the binary's own", async () => {
    const lab = t.lab;
    const log = join(work, "init.strace");
    const r = await lab.exec("client-0", [strace, "-f", "-qq", "-e", "trace=execve", "-o", log, bin, "client-init"], { env: lab.roleEnv("client-0"), okCodes: [1, 2, 3] });
    if (r.code !== 0) throw new Error(`client-init exited ${r.code}:\n${r.stderr}`);
    expect(r.stderr).toContain("Gateway ready and reachable");
    expect(execs(log)).toEqual([bin]);
  }, 30_000);

  test("client-sidecar under strace, through a renewal and a re-initialisation: one execve", async () => {
    const lab = t.lab;
    const log = join(work, "sidecar.strace");
    const p = lab.spawn("client-0", [strace, "-f", "-qq", "-e", "trace=execve", "-o", log, bin, "client-sidecar"], { env: { ...lab.roleEnv("client-0"), CLIENT_PROBE_INTERVAL: "1" } });
    procs.push(p);
    const out = collect(p);
    await waitFor("the sidecar to watch the gateway", () => out.text().includes("watching gateway") || p.exitCode !== null, 15_000, { detail: out.text });
    const pid = tracee(p.pid);
    process.kill(pid, "SIGUSR1");
    await waitFor("a renewal", () => /renewing the DHCP lease of .* now, as asked/.test(out.text()) && /DHCP lease of .* renewed/.test(out.text()), 15_000, { detail: out.text });
    await lab.exec("client-0", ["ip", "link", "del", "vxlan0"]);
    await waitFor("the tunnel to be re-initialised", () => out.text().includes("tunnel re-initialised"), 30_000, { detail: out.text });
    process.kill(pid, "SIGTERM");
    expect(await p.exited).toBe(0);
    // SIGTERM without the pod known done: the lease is shortened (a DHCP exchange), not released (issue 13 §7).
    expect(out.text()).toContain("shortened it to 120 s");
    expect(execs(log)).toEqual([bin]);
  }, 60_000);
});

/** Every shared library the binary loads, and the loader, from ldd. */
function libraries(file: string): string[] {
  return sh(["ldd", file], "listing the binary's libraries")
    .split("\n")
    .map((l) => /(\/\S+)\s+\(0x/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined);
}

function mount(args: string[], target: string): void {
  sh(["mount", ...args, target], `mounting ${target}`);
  mounts.push(target);
}

describe("the client roles run from a root holding only the binary and libc", () => {
  let root = "";

  test("the root: pod-gateway, libc and the loader; /proc and /dev as a runtime mounts them; the config", () => {
    const lab = t.lab;
    root = join(work, "root");
    const files = ["/usr/local/bin/pod-gateway", ...libraries(bin)];
    mkdirSync(join(root, "usr/local/bin"), { recursive: true });
    copyFileSync(bin, join(root, "usr/local/bin/pod-gateway"));
    for (const lib of libraries(bin)) {
      mkdirSync(join(root, dirname(lib)), { recursive: true });
      copyFileSync(lib, join(root, lib));
    }
    // Debian's merged /usr: /lib64 → usr/lib64 in a real root; here the loader's own path.
    mkdirSync(join(root, "proc"));
    mount(["-t", "proc", "proc"], join(root, "proc"));
    mkdirSync(join(root, "dev"));
    mount(["-t", "tmpfs", "-o", "mode=755,size=64k", "tmpfs"], join(root, "dev"));
    for (const [name, minor] of [["null", 3], ["zero", 5], ["random", 8], ["urandom", 9]] as const) sh(["mknod", "-m", "666", join(root, "dev", name), "c", "1", String(minor)], `creating /dev/${name}`);
    // The configuration at the path the lab's environment names (a ConfigMap mount in a pod).
    const env = lab.roleEnv("client-1");
    for (const d of [env.POD_GATEWAY_CONFIG_DIR!, env.POD_GATEWAY_RUN_DIR!]) {
      mkdirSync(d, { recursive: true });
      mkdirSync(join(root, d), { recursive: true });
      mount(["--bind", d], join(root, d));
    }
    const listed: string[] = [];
    const walk = (d: string, rel: string) => {
      for (const name of readdirSync(d, { withFileTypes: true })) {
        const r = `${rel}/${name.name}`;
        if (["/proc", "/dev", env.POD_GATEWAY_CONFIG_DIR, env.POD_GATEWAY_RUN_DIR].includes(r)) continue;
        if (name.isDirectory()) walk(join(d, name.name), r);
        else listed.push(r);
      }
    };
    walk(root, "");
    expect(listed.sort()).toEqual(files.sort());
    expect(listed.some((f) => /\/(ip|sh|busybox)$/.test(f))).toBe(false);
  });

  // absolute paths: the PATH given to the role (the root's) is also what spawn looks these up in
  const inRoot = (lab: Lab, pod: PodName, argv: string[]) => [which("ip")!, "netns", "exec", lab.ns(pod), which("chroot")!, root, ...argv];
  const rootEnv = (lab: Lab, pod: PodName) => ({ ...lab.roleEnv(pod), PATH: "/usr/local/bin" });

  test("client-init and client-sidecar run from it and route the pod", async () => {
    const lab = t.lab;
    const init = Bun.spawn(inRoot(lab, "client-1", ["/usr/local/bin/pod-gateway", "client-init"]), { env: rootEnv(lab, "client-1"), stdout: "pipe", stderr: "pipe" });
    const [stderr, code] = await Promise.all([new Response(init.stderr).text(), init.exited]);
    if (code !== 0) throw new Error(`client-init exited ${code}:\n${stderr}`);
    expect(stderr).toContain("Gateway ready and reachable");
    const routes = JSON.parse(sh(["ip", "-n", lab.ns("client-1"), "-j", "route", "show", "default"], "reading routes")) as { dev: string }[];
    expect(routes.map((r) => r.dev)).toEqual(["vxlan0"]);

    const side = Bun.spawn(inRoot(lab, "client-1", ["/usr/local/bin/pod-gateway", "client-sidecar"]), { env: rootEnv(lab, "client-1"), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    procs.push(side);
    const out = collect(side);
    await waitFor("the sidecar to watch the gateway", () => out.text().includes("watching gateway") || side.exitCode !== null, 15_000, { detail: out.text });
    // repair path: vxlan0 gone, re-created from inside the root
    await lab.exec("client-1", ["ip", "link", "del", "vxlan0"]);
    await waitFor("the tunnel to be re-initialised", () => out.text().includes("tunnel re-initialised") || side.exitCode !== null, 30_000, { detail: out.text });
    side.kill("SIGTERM");
    expect(await side.exited).toBe(0);
    // SIGTERM without the pod known done: the lease is shortened (a DHCP exchange), not released (issue 13 §7).
    expect(out.text()).toContain("shortened it to 120 s");
  }, 60_000);
});
