// The lab's real VPN, running: certificates made at lab start, the OpenVPN server in the VPN
// exit namespace and the client in the gateway pod's namespace, both lab daemons (orphans,
// found and killed by namespace like every other lab process: src/lab/procs.ts), watched by
// their pid files. Also the client's up/down script (`pod-gateway lab openvpn-dns`).
// What they are made of is planned in src/lab/openvpn-plan.ts.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PodGatewayError } from "../core/errors.ts";
import { ProcessRunner } from "../sys/exec.ts";
import {
  checkOpenVpnSettings,
  CLIENT_CN,
  openVpnClientRunDir,
  openVpnFiles,
  parseForeignOptions,
  planCertificates,
  renderClientCcd,
  renderClientConf,
  renderServerConf,
  renderVpnResolvConf,
  type OpenVpnFiles,
  type OpenVpnSettings,
} from "./openvpn-plan.ts";
import { isAlive, killPids } from "./procs.ts";
import { selfCommand } from "./self.ts";
import type { PodName } from "./types.ts";

export class OpenVpnError extends PodGatewayError {
  override name = "OpenVpnError";
}

/** What the OpenVPN controls need from the lab they run in. */
export interface OpenVpnHost {
  readonly runDir: string;
  readonly vpnInterface: string;
  ns(pod: PodName): string;
  startDaemon(pod: PodName, name: string, argv: readonly string[]): Promise<{ pid: number; logFile: string }>;
  exec(pod: PodName, argv: readonly string[]): Promise<{ stdout: string }>;
  /** Record changed settings where later commands find them (the lab's state file). */
  saveSettings(s: OpenVpnSettings): void;
}

const host = new ProcessRunner();

/** The certificates, the client-config-dir entry and both config files (server, client). */
export async function writeOpenVpnFiles(runDir: string, s: OpenVpnSettings, dev: string): Promise<OpenVpnFiles> {
  const f = openVpnFiles(runDir);
  mkdirSync(f.ccd, { recursive: true });
  mkdirSync(openVpnClientRunDir(runDir), { recursive: true });
  const certs = planCertificates(f);
  await host.run(certs.ca, { what: "making the lab's throwaway CA (openssl)" });
  await Promise.all(certs.leaves.map((argv) => host.run(argv, { what: `making a certificate (${argv[argv.indexOf("-subj") + 1]})` })));
  writeFileSync(join(f.ccd, CLIENT_CN), renderClientCcd());
  writeOpenVpnConfigs(runDir, s, dev);
  return f;
}

/**
 * The DNS script the client runs on up and down (this program's hidden `lab openvpn-dns`). It ends
 * in `--`: OpenVPN appends its own arguments (device, MTU, addresses, init|restart), which the
 * strict argument check would otherwise refuse as unexpected.
 */
export function dnsScriptArgv(runDir: string): string[] {
  return [...selfCommand(), "lab", "openvpn-dns", "--save-dir", openVpnClientRunDir(runDir), "--"];
}

export function writeOpenVpnConfigs(runDir: string, s: OpenVpnSettings, dev: string): void {
  const f = openVpnFiles(runDir);
  writeFileSync(f.serverConf, renderServerConf(s, f));
  writeFileSync(f.clientConf, renderClientConf(s, f, { dev, dnsScript: dnsScriptArgv(runDir) }));
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const CONNECTED = "Initialization Sequence Completed";

function countLines(file: string, needle: string): number {
  try {
    return readFileSync(file, "utf8").split("\n").filter((l) => l.includes(needle)).length;
  } catch {
    return 0;
  }
}

function tail(file: string, n = 12): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-n).join("\n");
  } catch {
    return "(no log)";
  }
}

type Side = "server" | "client";

/**
 * Start, stop, signal and watch the two OpenVPN processes of a lab. Every method works from
 * the files in the lab's run dir, so a later `lab` command (another process) controls the
 * same daemons.
 */
export class OpenVpnControl {
  readonly files: OpenVpnFiles;
  constructor(private readonly lab: OpenVpnHost, private current: OpenVpnSettings) {
    this.files = openVpnFiles(lab.runDir);
  }

  get settings(): OpenVpnSettings {
    return this.current;
  }

  /**
   * Change settings (persist-tun, the pushed DNS, ...): both config files are rewritten and
   * take effect when that side starts again (or, for the server, on SIGHUP).
   */
  configure(change: Partial<OpenVpnSettings>): void {
    const next = { ...this.current, ...change };
    const problems = checkOpenVpnSettings(next);
    if (problems.length) throw new OpenVpnError(`changing the lab's OpenVPN settings: ${problems.join("; ")}`);
    this.current = next;
    writeOpenVpnConfigs(this.lab.runDir, next, this.lab.vpnInterface);
    this.lab.saveSettings(next);
  }

  logFile(side: Side): string {
    return join(this.lab.runDir, "logs", `openvpn-${side}.log`);
  }

  /**
   * The running process of one side: the pid in its pid file, if that process is alive and is
   * still our openvpn with our config (a stale pid file must never get another process killed).
   */
  pid(side: Side): number | undefined {
    const pid = readPid(side === "server" ? this.files.serverPid : this.files.clientPid);
    if (pid === undefined || !isAlive(pid)) return undefined;
    const conf = side === "server" ? this.files.serverConf : this.files.clientConf;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      return argv.some((a) => a.endsWith("openvpn")) && argv.includes(conf) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  running(side: Side): boolean {
    return this.pid(side) !== undefined;
  }

  /** How many times the client completed a connection so far (pass to waitConnected). */
  connections(): number {
    return countLines(this.logFile("client"), CONNECTED);
  }

  async start(side: Side): Promise<void> {
    if (this.running(side)) throw new OpenVpnError(`starting the OpenVPN ${side}: it is already running (pid ${this.pid(side)})`);
    const pidFile = side === "server" ? this.files.serverPid : this.files.clientPid;
    rmSync(pidFile, { force: true });
    const pod: PodName = side === "server" ? "vpn" : "gateway";
    const conf = side === "server" ? this.files.serverConf : this.files.clientConf;
    const d = await this.lab.startDaemon(pod, `openvpn-${side}`, ["openvpn", "--config", conf]);
    // openvpn writes its pid file once its options are read: wait for it (or for its death).
    const deadline = Date.now() + 10_000;
    while (readPid(pidFile) === undefined) {
      if (!isAlive(d.pid)) throw new OpenVpnError(`starting the OpenVPN ${side} in ${this.lab.ns(pod)}: it exited:\n${tail(d.logFile)}`);
      if (Date.now() > deadline) throw new OpenVpnError(`starting the OpenVPN ${side}: no pid file ${pidFile} after 10 s:\n${tail(d.logFile)}`);
      await Bun.sleep(10);
    }
  }

  /**
   * Stop one side: SIGTERM lets it close cleanly (the client runs its down script and deletes
   * its tun device; the UDP server tells the client it exits), SIGKILL leaves everything as it
   * was, as a crash or an OOM kill does. Returns once the process is gone.
   */
  async stop(side: Side, sig: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const pid = this.pid(side);
    if (pid === undefined) return;
    if (sig === "SIGKILL") process.kill(pid, "SIGKILL");
    const left = await killPids([pid], sig === "SIGKILL" ? 0 : 5000);
    // A killed process can take seconds to finish exiting: closing its tun device waits for the
    // kernel's rtnl lock, which other labs' namespace churn holds (seen at load 160 on 2 cores).
    for (const deadline = Date.now() + 15_000; left.length && isAlive(pid) && Date.now() < deadline; ) await Bun.sleep(20);
    if (left.length && isAlive(pid)) throw new OpenVpnError(`stopping the OpenVPN ${side}: pid ${pid} still there 15 s after SIGKILL`);
  }

  /** SIGUSR1: a soft restart (reconnect; the tun device stays only with persist-tun). SIGHUP: a hard restart. */
  signal(side: Side, sig: "SIGUSR1" | "SIGHUP"): void {
    const pid = this.pid(side);
    if (pid === undefined) throw new OpenVpnError(`signalling the OpenVPN ${side}: it is not running`);
    process.kill(pid, sig);
  }

  /**
   * Wait until the client has completed a connection after `after` (a value of connections())
   * and its def1 routes are in the gateway pod's main table.
   */
  async waitConnected(after: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const dev = this.lab.vpnInterface;
    for (;;) {
      if (this.connections() > after) {
        const r = await this.lab.exec("gateway", ["ip", "-j", "route", "show"]);
        const routes = JSON.parse(r.stdout || "[]") as { dst: string; dev?: string }[];
        const has = (dst: string) => routes.some((x) => x.dst === dst && x.dev === dev);
        if (has("0.0.0.0/1") && has("128.0.0.0/1")) return;
      }
      if (Date.now() > deadline) {
        throw new OpenVpnError(
          `the OpenVPN client did not connect within ${timeoutMs} ms (connections so far: ${this.connections()}, waiting for more than ${after}):\n` +
            `client:\n${tail(this.logFile("client"))}\nserver:\n${tail(this.logFile("server"))}`,
        );
      }
      await Bun.sleep(20);
    }
  }

  /** Wait until the client's tun device is gone from the gateway pod. */
  async waitLinkGone(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.lab.exec("gateway", ["ip", "-j", "link", "show"]);
      if (!(JSON.parse(r.stdout || "[]") as { ifname: string }[]).some((l) => l.ifname === this.lab.vpnInterface)) return;
      if (Date.now() > deadline) throw new OpenVpnError(`the OpenVPN client's ${this.lab.vpnInterface} is still there after ${timeoutMs} ms`);
      await Bun.sleep(20);
    }
  }
}

// ---- the client's up/down script ----

/**
 * Run as OpenVPN's `up` and `down` command in the gateway pod. Up: save the pod's resolv.conf
 * once (in the VPN container's own directory), then write the pushed servers into it. Down:
 * write the saved original back. Both write in place (truncate and write the same inode), as
 * the common update-resolv-conf scripts must in a pod, where /etc/resolv.conf is a bind mount
 * that a rename cannot replace.
 */
export function runOpenVpnDnsScript(env: Readonly<Record<string, string | undefined>>, p: { resolvConf: string; saveDir: string }): string {
  const type = env.script_type;
  const dev = env.dev ?? "?";
  const saved = join(p.saveDir, "resolv.conf.original");
  if (type === "up") {
    const pushed = parseForeignOptions(env);
    if (pushed.servers.length === 0) return `up (${dev}): the server pushed no DNS server; resolv.conf left as it is`;
    mkdirSync(p.saveDir, { recursive: true });
    if (!existsSync(saved)) writeFileSync(saved, readFileSync(p.resolvConf));
    writeFileSync(p.resolvConf, renderVpnResolvConf(pushed, dev));
    return `up (${dev}): resolv.conf → ${pushed.servers.join(", ")}`;
  }
  if (type === "down") {
    if (!existsSync(saved)) return `down (${dev}): no saved resolv.conf; left as it is`;
    writeFileSync(p.resolvConf, readFileSync(saved));
    rmSync(saved);
    return `down (${dev}): resolv.conf restored`;
  }
  throw new OpenVpnError(`lab openvpn-dns runs as OpenVPN's up/down script: script_type is ${JSON.stringify(type)}, not up or down`);
}
