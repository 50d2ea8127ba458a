// The roles run from exactly the files the image holds. src/image/assemble.ts (the script the
// Dockerfile runs) builds the image's root filesystem from this machine's Debian packages, with
// the distroless base emulated (glibc at its package paths, /etc/passwd, /tmp); each pod of the
// lab gets its own copy, mounted the way a container runtime and the kubelet would (/proc, a
// /dev with the standard device nodes, /etc/resolv.conf, /etc/hosts, /etc/hostname and the
// ConfigMap at /config), and the roles run through `ip netns exec <pod> chroot <root>` by
// their drop-in names. No shell, ping, dig, udhcpc or python exists inside, and no iproute2 (`ip`,
// `bridge`): the roles talk rtnetlink in-process. A second tree holds only the binary and its
// libraries (the binary copied into an image someone already has) and runs the client roles.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { which } from "../../src/sys/exec.ts";
import { isElfFile } from "../../src/image/rootfs-elf.ts";
import { hostArch, readRootfsManifest, REPO_ROOT } from "../../src/image/rootfs.ts";
import type { Lab, PodName } from "../../src/lab/types.ts";
import { binPath, requireRoot } from "../helpers/bin.ts";
import { collect, LAB, waitFor, withLab } from "./helpers.ts";

// The PATH distroless images set (and the kubelet passes on).
const IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const arch = hostArch();
/** What the internet's echo service reports for traffic NATed out of the gateway's VPN link ("ip:port"). */
const viaVpn = new RegExp(`^${LAB.vpnGatewayIp.replaceAll(".", "\\.")}:\\d+$`);
const manifest = readRootfsManifest();

const t = withLab({ clients: 2 });

let work = "";
let bin = "";
let tools: { ip: string; chroot: string; mount: string; umount: string; mknod: string };
/** Mount points we made, innermost last; unmounted in reverse order. */
const mounts: string[] = [];
const procs: Subprocess[] = [];
const roots: Record<"gateway" | "client" | "copy", string> = { gateway: "", client: "", copy: "" };
const listings: Record<string, string> = {};

function need(name: string): string {
  const p = which(name);
  if (!p) throw new Error(`\`${name}\` is missing on this machine (it is part of coreutils/util-linux/iproute2)`);
  return p;
}

function sh(argv: string[], what: string): string {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${what}: ${argv.join(" ")} exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

let exitHook = false;
function mount(args: string[], target: string): void {
  sh([tools.mount, ...args, target], `mounting ${target}`);
  mounts.push(target);
  if (!exitHook) {
    exitHook = true;
    // If the run dies before afterAll (a timeout kill), detach whatever is still mounted; the
    // files stay, so nothing is ever deleted through a mount.
    process.once("exit", () => {
      for (const m of [...mounts].reverse()) if (mountedUnder(m).length) Bun.spawnSync([tools.umount, "-l", m]);
    });
  }
}

/** Assembles a tree with the Dockerfile's script (plus --with-base: the test has no base image). */
function assemble(out: string, profile: "image" | "client-copy"): string {
  const argv = [process.execPath, join(REPO_ROOT, "src/image/assemble.ts"), "--sysroot", "/", "--arch", arch.name, "--binary", bin, "--out", out, "--profile", profile];
  if (profile === "image") argv.push("--with-base");
  return sh(argv, `assembling the ${profile} root filesystem`);
}

/**
 * What a container runtime and the kubelet add to an image's files: /proc, a small /dev
 * (runc's default device nodes on a tmpfs, not the host's /dev), the pod's resolv.conf, hosts
 * and hostname files, and the chart's ConfigMap at /config.
 */
function startContainer(root: string, pod: string, resolvConf: string, configDir: string): void {
  mkdirSync(join(root, "proc"), { recursive: true });
  mount(["-t", "proc", "proc"], join(root, "proc"));
  mkdirSync(join(root, "dev"), { recursive: true });
  mount(["-t", "tmpfs", "-o", "mode=755,nosuid,size=64k", "tmpfs"], join(root, "dev"));
  for (const [name, major, minor] of [["null", 1, 3], ["zero", 1, 5], ["full", 1, 7], ["random", 1, 8], ["urandom", 1, 9], ["tty", 5, 0]] as const) {
    sh([tools.mknod, "-m", "666", join(root, "dev", name), "c", String(major), String(minor)], `creating /dev/${name}`);
  }
  for (const [name, target] of [["fd", "/proc/self/fd"], ["stdin", "/proc/self/fd/0"], ["stdout", "/proc/self/fd/1"], ["stderr", "/proc/self/fd/2"]]) {
    symlinkSync(target!, join(root, "dev", name!));
  }
  mkdirSync(join(root, "etc"), { recursive: true });
  const podFiles = join(work, `${pod}-files`);
  mkdirSync(podFiles, { recursive: true });
  writeFileSync(join(podFiles, "hosts"), `127.0.0.1\tlocalhost\n${t.lab.podIp(pod as PodName)}\t${pod}\n`);
  writeFileSync(join(podFiles, "hostname"), `${pod}\n`);
  for (const [name, source] of [["resolv.conf", resolvConf], ["hosts", join(podFiles, "hosts")], ["hostname", join(podFiles, "hostname")]] as const) {
    writeFileSync(join(root, "etc", name), ""); // the mount point, as the runtime creates it
    mount(["--bind", source], join(root, "etc", name));
  }
  mkdirSync(join(root, "config"), { recursive: true });
  mount(["--bind", configDir], join(root, "config"));
}

function mountedUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m === dir || m.startsWith(dir + "/"));
}

/** The environment of a role's container: the chart's/webhook's variables and the image's PATH, nothing of ours. */
function containerEnv(lab: Lab, pod: PodName): Record<string, string> {
  // The lab points POD_GATEWAY_CONFIG_DIR, POD_GATEWAY_RUN_DIR ... at host paths; the chart and
  // the webhook set none of them, and the image's defaults (/config, /run/pod-gateway) are what we prove.
  const env = Object.fromEntries(Object.entries(lab.roleEnv(pod)).filter(([k]) => !k.startsWith("POD_GATEWAY_")));
  return { ...env, PATH: IMAGE_PATH };
}

function inContainer(lab: Lab, pod: PodName, root: string, argv: string[]): string[] {
  return [tools.ip, "netns", "exec", lab.ns(pod), tools.chroot, root, ...argv];
}

async function run(lab: Lab, pod: PodName, root: string, argv: string[], opts: { stdin?: string } = {}) {
  const p = Bun.spawn(inContainer(lab, pod, root, argv), {
    env: containerEnv(lab, pod),
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/** A long-running role; its output is collected so the pipe never fills. */
function start(lab: Lab, pod: PodName, root: string, argv: string[]): { proc: Subprocess; text: () => string } {
  const proc = Bun.spawn(inContainer(lab, pod, root, argv), { env: containerEnv(lab, pod), stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true });
  procs.push(proc);
  return { proc, text: collect(proc).text };
}

async function stop(p: { proc: Subprocess; text: () => string }, what: string): Promise<number> {
  p.proc.kill("SIGTERM");
  const code = await Promise.race([p.proc.exited, Bun.sleep(10_000).then(() => "timeout" as const)]);
  if (code === "timeout") {
    p.proc.kill("SIGKILL");
    throw new Error(`${what} did not exit within 10 s of SIGTERM:\n${p.text()}`);
  }
  return code;
}

beforeAll(() => {
  requireRoot();
  bin = binPath();
  tools = { ip: need("ip"), chroot: need("chroot"), mount: need("mount"), umount: need("umount"), mknod: need("mknod") };
  const lab = t.lab;
  work = mkdtempSync(join(tmpdir(), "pgw-rootfs-"));
  // Each container has its own root filesystem (the gateway's two containers share one here,
  // as nothing of one is visible to the other in a way the roles rely on).
  roots.gateway = join(work, "gateway-root");
  roots.client = join(work, "client-root");
  roots.copy = join(work, "copy-root");
  listings.image = assemble(roots.gateway, "image");
  assemble(roots.client, "image");
  listings.copy = assemble(roots.copy, "client-copy");

  // The chart's ConfigMap: the lab's settings, except that paths the lab points into its run
  // dir on the host go back to the image's defaults (they are inside the container's root now).
  const config = join(work, "config");
  mkdirSync(config);
  const settings = readFileSync(join(lab.configDir, "settings.sh"), "utf8");
  writeFileSync(join(config, "settings.sh"), `${settings}\n# inside the image: its own default paths\nRESOLV_CONF_COPY="/etc/resolv_copy.conf"\n`);
  writeFileSync(join(config, "nat.conf"), existsSync(join(lab.configDir, "nat.conf")) ? readFileSync(join(lab.configDir, "nat.conf")) : "");

  startContainer(roots.gateway, "gateway", lab.resolvConfPath("gateway"), config);
  startContainer(roots.client, "client-0", lab.resolvConfPath("client-0"), config);
  startContainer(roots.copy, "client-1", lab.resolvConfPath("client-1"), config);
}, 60_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => Promise.race([p.exited, Bun.sleep(3000)])));
  const failed: string[] = [];
  for (const m of mounts.reverse()) {
    const r = Bun.spawnSync([tools.umount, m], { stderr: "pipe" });
    if (r.exitCode !== 0 && Bun.spawnSync([tools.umount, "-l", m]).exitCode !== 0) failed.push(`${m}: ${r.stderr.toString().trim()}`);
  }
  // Never delete through a mount (the ConfigMap, the pod's resolv.conf): only a tree with nothing mounted in it.
  if (work) {
    const left = mountedUnder(work);
    if (left.length) failed.push(`still mounted, left ${work} in place: ${left.join(", ")}`);
    else rmSync(work, { recursive: true, force: true });
  }
  if (failed.length) throw new Error(`cleaning up the container roots:\n${failed.join("\n")}`);
}, 30_000);

describe("the image's root filesystem", () => {
  test("holds no shell and none of the scripts' helpers, and only the ELF programs the manifest lists", () => {
    const found: string[] = [];
    const elfs: string[] = [];
    const walk = (d: string, rel: string) => {
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        const r = `${rel}/${name}`;
        if (["/proc", "/dev", "/config", "/etc/resolv.conf", "/etc/hosts", "/etc/hostname"].includes(r)) continue; // mounted, not the image's
        const st = lstatSync(p);
        if (st.isDirectory()) walk(p, r);
        else {
          if (/^(sh|bash|dash|ash|busybox|ping|dig|nslookup|udhcpc|python[0-9.]*|perl|apt|apt-get|dpkg)$/.test(name)) found.push(r);
          if (st.isFile() && st.mode & 0o111 && !/\.so(\.|$)/.test(name) && isElfFile(p)) elfs.push(r);
        }
      }
    };
    walk(roots.gateway, "");
    expect(found).toEqual([]);
    // (The loader and libraries are shared objects: named *.so*, not counted here.)
    const programs = [manifest.binary, ...manifest.programs.map((p) => p.path)];
    expect(elfs.sort()).toEqual(programs.sort());
    // The drop-in names are links to the binary.
    for (const n of ["client_init.sh", "client_sidecar.sh", "gateway_init.sh", "gateway_sidecar.sh"]) {
      expect(listings.image).toContain(`/bin/${n} -> /usr/local/bin/pod-gateway`);
    }
  });

  test("inside: version, the shipped defaults merged with /config, iptables (both), nft and dnsmasq work; ip and bridge are not there", async () => {
    const lab = t.lab;
    const root = roots.gateway;
    const v = await run(lab, "gateway", root, ["/usr/local/bin/pod-gateway", "version"]);
    expect(v).toMatchObject({ code: 0, stdout: expect.stringMatching(/^pod-gateway \d+\.\d+\.\d+/) });

    const cfg = await run(lab, "gateway", root, ["/usr/local/bin/pod-gateway", "config", "--json"]);
    expect(cfg.code).toBe(0);
    const j = JSON.parse(cfg.stdout) as { settings: Record<string, unknown>; files: unknown };
    expect(j.settings.RESOLV_CONF_COPY).toBe("/etc/resolv_copy.conf");
    expect(j.settings.VPN_INTERFACE).toBe(lab.vpnInterface);
    expect(JSON.stringify(j.files)).toContain("/default_config/settings.sh");

    // No iproute2 inside (exit 127: chroot found no such program); the roles need none (below).
    for (const tool of ["ip", "bridge"]) {
      const r = await run(lab, "gateway", root, [tool, "-j", "link", "show"]);
      expect({ tool, code: r.code }).toEqual({ tool, code: 127 });
    }

    const rules = [
      "*filter", ":PGW-TEST - [0:0]", "-A PGW-TEST -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
      "-A PGW-TEST -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu", "-A PGW-TEST -m comment --comment probe -j REJECT", "COMMIT",
      "*nat", ":PGW-NAT - [0:0]", "-A PGW-NAT -o tun0 -j MASQUERADE", "-A PGW-NAT -p udp --dport 51413 -j DNAT --to-destination 172.16.0.5:51413", "COMMIT", "",
    ].join("\n");
    for (const tool of ["iptables-restore", "iptables-nft-restore", "iptables-legacy-restore"]) {
      const r = await run(lab, "gateway", root, [tool, "--test"], { stdin: rules });
      expect({ tool, code: r.code, err: r.stderr }).toEqual({ tool, code: 0, err: "" });
    }
    const nftScript = 'table inet pgw_probe {\n chain f {\n  type filter hook forward priority 0; policy accept;\n  ct state established,related accept\n  oifname "tun0" counter accept\n }\n}\n';
    const nft = await run(lab, "gateway", root, ["nft", "-c", "-f", "-"], { stdin: nftScript });
    expect({ code: nft.code, err: nft.stderr }).toEqual({ code: 0, err: "" });
    const dns = await run(lab, "gateway", root, ["dnsmasq", "--test"]);
    expect(dns.code).toBe(0);
    expect(dns.stderr + dns.stdout).toContain("syntax check OK");
  }, 30_000);

  test("it really is the tree: a shell is not found inside", async () => {
    const r = await run(t.lab, "gateway", roots.gateway, ["/bin/sh", "-c", "true"]);
    expect(r.code).toBe(127); // chroot: failed to run command '/bin/sh': No such file or directory
  });
});

let gwSidecar: ReturnType<typeof start> | undefined;

describe("the roles from the image, in the lab", () => {
  let clientSidecar: ReturnType<typeof start> | undefined;

  test("gateway_init.sh, then gateway_sidecar.sh with its dnsmasq", async () => {
    const lab = t.lab;
    const init = await run(lab, "gateway", roots.gateway, ["/bin/gateway_init.sh"]);
    if (init.code !== 0) throw new Error(`gateway_init.sh exited ${init.code}:\n${init.stderr}`);
    // It made the tunnel with no `ip` in its root: read back with the host's ip in the pod's namespace.
    const vx = Bun.spawnSync([tools.ip, "-n", lab.ns("gateway"), "-j", "-d", "link", "show", "vxlan0"], { stdout: "pipe", stderr: "pipe" });
    expect({ code: vx.exitCode, err: vx.stderr.toString() }).toEqual({ code: 0, err: "" });
    expect((JSON.parse(vx.stdout.toString()) as { linkinfo?: { info_kind?: string } }[])[0]?.linkinfo?.info_kind).toBe("vxlan");
    gwSidecar = start(lab, "gateway", roots.gateway, ["/bin/gateway_sidecar.sh"]);
    await waitFor("the gateway's dnsmasq", () => gwSidecar!.text().includes("dnsmasq running") || gwSidecar!.proc.exitCode !== null, 15_000, { everyMs: 100, detail: () => gwSidecar!.text() });
    if (gwSidecar.proc.exitCode !== null) throw new Error(`gateway_sidecar.sh exited ${gwSidecar.proc.exitCode}:\n${gwSidecar.text()}`);
    // Its state is inside the container's root: the resolv.conf copy and dnsmasq's run dir.
    expect(existsSync(join(roots.gateway, "etc/resolv_copy.conf"))).toBe(true);
    expect(existsSync(join(roots.gateway, "run/pod-gateway/dnsmasq.conf"))).toBe(true);
  }, 30_000);

  test("client_init.sh: a DHCP lease through the tunnel, and the internet sees the gateway's VPN-side address", async () => {
    const lab = t.lab;
    const r = await run(lab, "client-0", roots.client, ["/bin/client_init.sh"]);
    if (r.code !== 0) throw new Error(`client_init.sh exited ${r.code}:\n${r.stderr}`);
    expect(r.stderr).toContain("Gateway ready and reachable");
    const echo = await lab.echoFrom("client-0", "internet", "tcp", { timeoutMs: 5000 });
    expect(echo).toEqual({ ok: true, source: expect.stringMatching(viaVpn) });
  }, 30_000);

  test("client_sidecar.sh watches the gateway and exits 0 on SIGTERM, shortening its lease (the pod is not known done, issue 13 §7)", async () => {
    const lab = t.lab;
    clientSidecar = start(lab, "client-0", roots.client, ["/bin/client_sidecar.sh"]);
    await waitFor("the client sidecar to watch the gateway", () => clientSidecar!.text().includes("watching gateway") || clientSidecar!.proc.exitCode !== null, 10_000, { everyMs: 100, detail: () => clientSidecar!.text() });
    expect(clientSidecar.proc.exitCode).toBeNull();
    expect(await stop(clientSidecar, "client_sidecar.sh")).toBe(0);
    expect(clientSidecar.text()).toContain("shortened it to 120 s");
  }, 30_000);
});

describe("the binary copied into an existing image: only pod-gateway and its libraries", () => {
  test("the tree holds nothing else", () => {
    const files: string[] = [];
    const walk = (d: string, rel: string) => {
      for (const name of readdirSync(d)) {
        const r = `${rel}/${name}`;
        if (["/proc", "/dev", "/config", "/etc"].includes(r)) continue; // mounted by the runtime/kubelet
        const st = lstatSync(join(d, name));
        if (st.isDirectory()) walk(join(d, name), r);
        else files.push(r);
      }
    };
    walk(roots.copy, "");
    const other = files.filter((f) => !f.startsWith(`/usr/lib/${arch.triplet}/`) && f !== arch.loader);
    expect(other.sort()).toEqual(["/usr/local/bin/pod-gateway"]);
  });

  test("client-init and client-sidecar run from it", async () => {
    const lab = t.lab;
    const r = await run(lab, "client-1", roots.copy, ["/usr/local/bin/pod-gateway", "client-init"]);
    if (r.code !== 0) throw new Error(`client-init exited ${r.code}:\n${r.stderr}`);
    expect(r.stderr).toContain("Gateway ready and reachable");
    expect(await lab.echoFrom("client-1", "internet", "udp", { timeoutMs: 5000 })).toEqual({ ok: true, source: expect.stringMatching(viaVpn) });
    const side = start(lab, "client-1", roots.copy, ["/usr/local/bin/pod-gateway", "client-sidecar"]);
    await waitFor("the client sidecar to watch the gateway", () => side.text().includes("watching gateway") || side.proc.exitCode !== null, 10_000, { everyMs: 100, detail: () => side.text() });
    expect(side.proc.exitCode).toBeNull();
    expect(await stop(side, "client-sidecar")).toBe(0);
    // No program is there (no ip, no gateway tools): the client roles never needed one.
    for (const tool of ["ip", "iptables"]) {
      const r = await run(lab, "client-1", roots.copy, [tool, tool === "ip" ? "link" : "-S"]);
      expect({ tool, code: r.code }).toEqual({ tool, code: 127 });
    }
  }, 40_000);
});

describe("shutdown", () => {
  test("gateway_sidecar.sh (kept running for the copy case) exits 0 on SIGTERM", async () => {
    if (!gwSidecar) throw new Error("the gateway sidecar never started (see the first failure)");
    expect(gwSidecar.proc.exitCode).toBeNull();
    expect(await stop(gwSidecar, "gateway_sidecar.sh")).toBe(0);
  }, 15_000);
});
