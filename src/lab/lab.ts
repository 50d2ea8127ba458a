// The lab: a Kubernetes-like network of network namespaces (see the map in src/lab/types.ts),
// built with iproute2, torn down completely, used by `pod-gateway lab` and by the tests.
//
// API (stable; other tests build on it):
//   createLab(opts?: LabOptions): Promise<Lab & { buildMs }>
//                                                    build a fresh lab (needs root, ip, dnsmasq, sysctl,
//                                                    sh, iptables or nft; nft for packetsSeen); same id ⇒ rebuilt
//   openLab(id?: string): Promise<Lab>               attach to a running lab (the only one when no id)
//   destroyLabById(id: string): Promise<void>        remove everything of a lab, also half-built ones
//   listLabs(): LabInfo[]                            labs found by namespace name or state dir
//   checkLabPrerequisites(): void                    throws LabPrerequisiteError naming what is missing
//   selfCommand(): string[]                          argv prefix that re-runs this program
//   startDaemon(lab, pod, name, argv, {env}?)        a long-running command that outlives this process
//   LAB                                              the address plan (src/lab/types.ts)
//   LAB6                                             the IPv6 plan of LabOptions.ipv6 (dual-stack pods; off by default)
//   lab.startContainer/restartContainer/container    the roles as a pod's containers, each with its
//                                                    own files, deleted when it restarts (below)
//   lab.openvpn()                                    the real VPN's controls (LabOptions.vpn "openvpn"):
//                                                    start/stop/signal server and client, waitConnected
// In tests prefer withLab() from test/netns/helpers.ts, which destroys the lab in afterAll.
//
// Worth knowing when writing tests against it:
// - With vpn "openvpn" there is no veth to the VPN exit: the client in the gateway pod reaches
//   the server (LAB.vpnServerIp) through eth0 and the node, and makes the tun device itself;
//   its up script rewrites the gateway's resolv.conf when it connects (src/lab/openvpn.ts).
// - The VPN link is up from the start (unless LabOptions.vpnLink says otherwise), with def1 routes: until gateway-init routes
//   VPN_LOCAL_CIDRS via eth0, the gateway pod reaches the cluster DNS only through the VPN
//   (i.e. not at all), as in a pod whose VPN container connected first.
// - exec()/spawn() do not add roleEnv(pod): pass { env: lab.roleEnv(pod) } to run a role. Its
//   run dir is then the pod's, shared like an emptyDir and kept across runs; startContainer()
//   gives a container its own (containerDir), and restartContainer() deletes it as the kubelet's
//   restart drops a container's filesystem: only the namespace, /etc/netns/<ns>/ and the config
//   dir survive.
// - The node's default route points at the leak host, so anything the node forwards that is
//   not for a pod or a service is counted there (packetsSeen("leak")); the internet host is
//   reachable only through the VPN exit, which routes back to 198.19.0.0/30 only (un-NATed
//   client sources get no answer).
// - The lab's daemons are orphans (see startDaemon): a `bun test` timeout does not kill them.
//
// What a lab owns: namespaces pgw-<id>-<pod>, /etc/netns/pgw-<id>-<pod>/ (resolv.conf of the
// gateway and client pods), /run/pod-gateway-lab/<id>/ (state.json, config/, logs/, scratch),
// and the processes inside its namespaces (cluster DNS, VPN DNS, echo services, whatever
// exec()/spawn() started). The host's own network namespace is never changed.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { PodGatewayError } from "../core/errors.ts";
import { ProcessRunner, which, type RunOptions, type RunResult } from "../sys/exec.ts";
import { log } from "../sys/log.ts";
import {
  NODE_BRIDGE,
  RUN_ROOT,
  STATE_VERSION,
  pickCliLabs,
  MAX_CLIENTS,
  checkContainer,
  checkVpnInterface,
  clientName,
  containerDir,
  gatewayIpFor,
  hasResolvConf,
  isValidLabId,
  labPods,
  makeLabId,
  nodePort,
  nsName,
  parseCounters,
  parseNsName,
  parseState,
  planGatewayEthVeth,
  planPodConfig,
  planSysctls,
  planVeths,
  planVpnLinkUpExit,
  planVpnLinkUpGateway,
  planVpnVeth,
  podIpOf,
  podRunDir,
  renderClusterDnsConf,
  renderClusterHosts,
  renderContainerEnv,
  renderCounters,
  renderResolvConf,
  renderRoleEnv,
  renderSettings,
  renderState,
  renderVpnDnsConf,
  runDirOf,
  vpnKindOf,
  type Cmd,
  type ContainerName,
  type LabState,
} from "./plan.ts";
import { describeMissing, readLabPrerequisites } from "./prereq.ts";
import { OpenVpnControl, writeOpenVpnFiles } from "./openvpn.ts";
import { checkOpenVpnSettings, openVpnClientRunDir, resolveOpenVpnSettings, VPN_KINDS, type VpnKind } from "./openvpn-plan.ts";
import { isAlive, killNamespaceProcesses, killPids, readNetnsNames } from "./procs.ts";
import { selfCommand } from "./self.ts";
import { LAB, LAB6, type EchoHits, type EchoHost, type LabContainer, type EchoReply, type Lab, type LabOptions, type PacketCount, type PodName, type ResolveResult, type VpnLinkState } from "./types.ts";

export { LAB, LAB6, selfCommand };
export type { Lab, LabOptions, PodName };

const logger = () => log().withTag("lab");

/** The machine lacks something the lab needs; the message says what and how to install it. */
export class LabPrerequisiteError extends PodGatewayError {
  override name = "LabPrerequisiteError";
}

/** A lab step failed; the message names the step and the object. */
export class LabError extends PodGatewayError {
  override name = "LabError";
}

export function checkLabPrerequisites(opts: Pick<LabOptions, "vpn"> = {}): void {
  const why = describeMissing(readLabPrerequisites());
  if (why) throw new LabPrerequisiteError(why);
  if (opts.vpn === "openvpn") {
    const missing = ["openvpn", "openssl"].filter((t) => !which(t));
    if (missing.length)
      throw new LabPrerequisiteError(`the lab cannot run OpenVPN: missing ${missing.join(", ")}. Install with: apt-get install -y --no-install-recommends ${missing.join(" ")}`);
    if (!existsSync("/dev/net/tun")) throw new LabPrerequisiteError("the lab cannot run OpenVPN: /dev/net/tun is missing (load the tun module, or give the container the device)");
  }
}

// ---- small effects ----

const host = new ProcessRunner();

/** One `ip -batch` process for many commands, in a namespace or (ns undefined) the host's. */
async function ipBatch(ns: string | undefined, cmds: readonly Cmd[], what: string): Promise<void> {
  if (cmds.length === 0) return;
  const argv = ns ? ["ip", "-n", ns, "-batch", "-"] : ["ip", "-batch", "-"];
  await host.run(argv, { input: cmds.map((c) => c.join(" ")).join("\n") + "\n", what });
}

async function sysctls(ns: string, settings: string[]): Promise<void> {
  await host.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", ...settings], { what: `setting sysctls in ${ns}` });
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function poll<T>(what: string, ms: number, check: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new LabError(`${what}: still not done after ${ms} ms`);
    await Bun.sleep(5);
  }
}

// ---- listing and teardown (work from names alone, so they also clean up half-built labs) ----

export interface LabInfo {
  id: string;
  namespaces: string[];
  state?: LabState;
  /** Why state.json could not be read (missing: the lab was half-built or is being built). */
  stateError?: string;
}

/** The state.json of a lab (throws when missing or unreadable). */
export function readLabState(id: string): LabState {
  const file = join(runDirOf(id), "state.json");
  return parseState(readFileSync(file, "utf8"), file);
}

export function listLabs(): LabInfo[] {
  const byId = new Map<string, LabInfo>();
  const get = (id: string) => byId.get(id) ?? (byId.set(id, { id, namespaces: [] }), byId.get(id)!);
  for (const n of readNetnsNames()) {
    const p = parseNsName(n);
    if (p) get(p.id).namespaces.push(n);
  }
  let dirs: string[] = [];
  try {
    dirs = readdirSync(RUN_ROOT);
  } catch {}
  for (const d of dirs) if (isValidLabId(d)) get(d);
  for (const info of byId.values()) {
    info.namespaces.sort();
    try {
      info.state = readLabState(info.id);
    } catch (e) {
      info.stateError = (e as NodeJS.ErrnoException).code === "ENOENT" ? "no state.json" : (e as Error).message;
    }
  }
  return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
}

function etcNetnsDirs(id: string): string[] {
  let entries: string[] = [];
  try {
    entries = readdirSync("/etc/netns");
  } catch {
    return [];
  }
  return entries.filter((e) => parseNsName(e)?.id === id).map((e) => join("/etc/netns", e));
}

/**
 * Remove every trace of lab `id`: processes in its namespaces, the namespaces (and with them
 * every link), /etc/netns entries and the run dir. Nothing there is success.
 */
export async function destroyLabById(id: string): Promise<void> {
  if (!isValidLabId(id)) throw new LabError(`destroying lab ${JSON.stringify(id)}: not a lab id`);
  const t0 = performance.now();
  const namespaces = readNetnsNames().filter((n) => parseNsName(n)?.id === id);
  const survivors = await killNamespaceProcesses(namespaces);
  const problems: string[] = [];
  if (survivors.length) problems.push(`processes ${survivors.join(", ")} survived SIGKILL`);
  if (namespaces.length) {
    // -force: keep going after a namespace that vanished meanwhile; checked below instead.
    await host.run(["ip", "-force", "-batch", "-"], {
      input: namespaces.map((n) => `netns del ${n}`).join("\n") + "\n",
      okCodes: [1],
      what: `deleting namespaces of lab ${id}`,
    });
    const left = readNetnsNames().filter((n) => parseNsName(n)?.id === id);
    if (left.length) problems.push(`namespaces ${left.join(", ")} could not be deleted`);
  }
  for (const d of etcNetnsDirs(id)) rmSync(d, { recursive: true, force: true });
  rmSync(runDirOf(id), { recursive: true, force: true });
  if (problems.length) throw new LabError(`destroying lab ${id}: ${problems.join("; ")}`);
  logger().debug(`lab ${id} destroyed in ${Math.round(performance.now() - t0)} ms`);
}

/**
 * Start a long-running command in a pod as a daemon: through `sh -c 'cmd &'`, so it is
 * orphaned at once and no parent holds it — `bun test` (which kills the children still running
 * when a test times out) cannot take it down, and a `lab demo --keep` can exit and leave it
 * running. Output is appended to <runDir>/logs/<name>.log; destroy() finds it by namespace.
 * Returns its pid (watch it with isAlive from src/lab/procs.ts).
 */
export async function startDaemon(lab: Lab, pod: PodName, name: string, argv: readonly string[], opts: { env?: Record<string, string> } = {}): Promise<{ pid: number; logFile: string }> {
  const logFile = join(lab.runDir, "logs", `${name}.log`);
  const script = '"$@" </dev/null >>"$0" 2>&1 & echo $!';
  const r = await lab.exec(pod, ["sh", "-c", script, logFile, ...argv], { env: opts.env, what: `starting ${name} in ${lab.ns(pod)}` });
  const pid = Number(r.stdout.trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new LabError(`starting ${name} in ${lab.ns(pod)}: no pid (got ${JSON.stringify(r.stdout)})`);
  return { pid, logFile };
}

// ---- containers ----

/** A role run as a container; restarted in place by RealLab.restartContainer. */
class RunContainer implements LabContainer {
  proc!: Subprocess<"ignore", "pipe", "pipe">;
  restarts = 0;
  private current = "";
  private previous = "";

  constructor(
    readonly pod: PodName,
    readonly name: ContainerName,
    readonly argv: readonly string[],
    readonly env: Record<string, string>,
  ) {}

  get exitCode(): number | null {
    return this.proc.exitCode;
  }

  /** Take over a new run's process; the last run's output becomes "previous". */
  attach(proc: Subprocess<"ignore", "pipe", "pipe">): void {
    if (this.proc) {
      this.previous += `${this.current}--- restarted ---\n`;
      this.current = "";
      this.restarts++;
    }
    this.proc = proc;
    const pump = async (s: ReadableStream<Uint8Array>) => {
      const dec = new TextDecoder();
      for await (const chunk of s) if (this.proc === proc) this.current += dec.decode(chunk, { stream: true });
    };
    this.drained = Promise.all([pump(proc.stdout), pump(proc.stderr)]).then(
      () => {},
      () => {},
    );
  }

  /** Resolves when the current run's output has been read to its end. */
  drained: Promise<void> = Promise.resolve();

  output(): string {
    return this.current;
  }

  allOutput(): string {
    return this.previous + this.current;
  }
}

const isInit = (c: ContainerName) => c.endsWith("-init");

/** SIGKILL to a process group, then wait (bounded) until none of it is left. */
async function killGroup(pgid: number): Promise<void> {
  const alive = () => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(-pgid, "SIGKILL");
  await poll(`ending process group ${pgid}`, 5000, () => (alive() ? undefined : true));
}

// ---- the lab ----

class RealLab implements Lab {
  readonly clients: string[];
  /** Processes started by spawn(), with their pod: killed by group, whether or not they joined the namespace yet. */
  private readonly children = new Map<Subprocess, PodName>();
  private destroyed = false;
  private readonly nftPath = which("nft");
  private vpnControl: OpenVpnControl | undefined;
  /** Milliseconds createLab took (for `lab up` and the benchmarks). */
  buildMs = 0;
  /** Containers started by startContainer, by "<pod>/<container>" (this process only). */
  private readonly containers = new Map<string, RunContainer>();

  constructor(private state: LabState) {
    this.clients = Array.from({ length: state.clients }, (_, i) => clientName(i));
  }

  get id() {
    return this.state.id;
  }
  get configDir() {
    return this.state.configDir;
  }
  get runDir() {
    return this.state.runDir;
  }
  get vpnInterface() {
    return this.state.vpnInterface;
  }
  get vpnKind(): VpnKind {
    return vpnKindOf(this.state);
  }

  openvpn(): OpenVpnControl {
    if (this.vpnKind !== "openvpn" || !this.state.openvpn) throw new LabError(`lab ${this.id} runs the ${this.vpnKind} VPN stand-in, not OpenVPN (LabOptions.vpn "openvpn", lab up --vpn openvpn)`);
    this.vpnControl ??= new OpenVpnControl(
      { runDir: this.runDir, vpnInterface: this.vpnInterface, ns: (p) => this.ns(p), startDaemon: (pod, name, argv) => startDaemon(this, pod, name, argv), exec: (pod, argv) => this.exec(pod, argv),
        saveSettings: (o) => {
          this.state = { ...this.state, openvpn: o };
          this.saveState();
        },
      },
      this.state.openvpn,
    );
    return this.vpnControl;
  }

  ns(pod: PodName): string {
    return nsName(this.state.id, pod);
  }

  gatewayPodIp(): string {
    return gatewayIpFor(this.state.gatewayGeneration);
  }

  podIp(pod: PodName): string {
    return podIpOf(this.state, pod);
  }

  roleEnv(pod: PodName): Record<string, string> {
    return renderRoleEnv(pod, this.state.configDir, this.state.runDir);
  }

  vpnLinkState(): VpnLinkState {
    return this.state.vpnLink;
  }

  exec(pod: PodName, argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
    return new ProcessRunner(["ip", "netns", "exec", this.ns(pod)]).run(argv, opts);
  }

  spawn(pod: PodName, argv: readonly string[], opts: { env?: Record<string, string> } = {}): Subprocess<"ignore", "pipe", "pipe"> {
    const full = ["ip", "netns", "exec", this.ns(pod), ...argv];
    logger().debug(`spawn ${full.join(" ")}`);
    // Own process group: destroy() can end it with everything it started.
    const p = Bun.spawn(full, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...opts.env }, detached: true });
    this.children.set(p, pod);
    void p.exited.then(() => this.children.delete(p));
    return p;
  }

  containerDir(pod: PodName, container: ContainerName): string {
    const why = checkContainer(pod, container);
    if (why) throw new LabError(why);
    return containerDir(this.runDir, pod, container);
  }

  containerEnv(pod: PodName, container: ContainerName): Record<string, string> {
    const why = checkContainer(pod, container);
    if (why) throw new LabError(why);
    return renderContainerEnv(pod, container, this.configDir, this.runDir);
  }

  container(pod: PodName, container: ContainerName): LabContainer | undefined {
    return this.containers.get(`${pod}/${container}`);
  }

  async startContainer(pod: PodName, container: ContainerName, argv: readonly string[], opts: { env?: Record<string, string> } = {}): Promise<LabContainer> {
    const key = `${pod}/${container}`;
    const old = this.containers.get(key);
    if (old && old.exitCode === null && old.proc.signalCode === null) throw new LabError(`starting ${key}: it is running (pid ${old.proc.pid}); restart it with restartContainer`);
    const c = new RunContainer(pod, container, argv, { ...this.containerEnv(pod, container), ...opts.env });
    this.containers.set(key, c);
    await this.run(c);
    return c;
  }

  async restartContainer(pod: PodName, container: ContainerName, opts: { signal?: "SIGTERM" | "SIGKILL"; graceMs?: number } = {}): Promise<LabContainer> {
    const key = `${pod}/${container}`;
    const c = this.containers.get(key);
    if (!c) throw new LabError(`restarting ${key}: it was never started (startContainer)`);
    const p = c.proc;
    if (p.exitCode === null && p.signalCode === null) {
      // The kubelet signals the container's main process; when it has gone (or the grace period
      // is over) the container's other processes (dnsmasq) die with it: the whole group, here.
      p.kill(opts.signal ?? "SIGTERM");
      const timer = setTimeout(() => killGroup(p.pid), opts.graceMs ?? 5000);
      await p.exited;
      clearTimeout(timer);
    }
    await killGroup(p.pid);
    await this.run(c);
    return c;
  }

  /** A container's run: its dir made empty, its process started (and for an init container, waited for). */
  private async run(c: RunContainer): Promise<void> {
    const dir = containerDir(this.runDir, c.pod, c.name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    c.attach(this.spawn(c.pod, c.argv, { env: c.env }));
    if (isInit(c.name)) await Promise.all([c.proc.exited, c.drained]);
  }

  resolvConfPath(pod: PodName): string {
    if (!hasResolvConf(pod)) throw new LabError(`${pod} has no resolv.conf of its own (only the gateway and client pods do)`);
    return join("/etc/netns", this.ns(pod), "resolv.conf");
  }

  async writeResolvConf(pod: PodName, text: string): Promise<void> {
    // writeFileSync truncates and rewrites the same inode, which is what processes that got
    // the file bind-mounted by `ip netns exec` see (a rename would leave them the old file).
    writeFileSync(this.resolvConfPath(pod), text);
  }

  async echoHits(h: EchoHost): Promise<EchoHits> {
    const file = join(this.runDir, h, "echo.json");
    try {
      return JSON.parse(readFileSync(file, "utf8")) as EchoHits;
    } catch (e) {
      throw new LabError(`reading echo counters of ${h} (${file}): ${(e as Error).message}`);
    }
  }

  async packetsSeen(h: EchoHost): Promise<PacketCount> {
    if (!this.nftPath) throw new LabError(`counting packets on ${h}: nft is missing (apt-get install -y nftables)`);
    const r = await this.exec(h, ["nft", "-j", "list", "table", "inet", "pgw_lab"], { what: `reading packet counters of ${h}` });
    return parseCounters(r.stdout);
  }

  async echoFrom(pod: PodName, target: EchoHost | string, proto: "tcp" | "udp", opts: { port?: number; timeoutMs?: number } = {}): Promise<EchoReply> {
    const ip = target === "internet" ? LAB.internetIp : target === "leak" ? LAB.leakHostIp : target;
    const port = opts.port ?? (proto === "tcp" ? LAB.echoTcpPort : LAB.echoUdpPort);
    const r = await this.exec(pod, [...selfCommand(), "lab", "probe", `--${proto}`, `${ip}:${port}`, "--timeout", String(opts.timeoutMs ?? 2000), "--json"], {
      okCodes: [1],
      what: `probing ${ip}:${port}/${proto} from ${pod}`,
    });
    return parseJsonLine<EchoReply>(r, `probe from ${pod}`);
  }

  async resolve(pod: PodName, name: string, opts: { server?: string; timeoutMs?: number; expect?: string } = {}): Promise<ResolveResult> {
    const argv = [...selfCommand(), "lab", "resolve", name, "--timeout", String(opts.timeoutMs ?? 2000), "--json"];
    if (opts.server) argv.push("--server", opts.server);
    if (opts.expect) argv.push("--expect", opts.expect);
    const r = await this.exec(pod, argv, { okCodes: [1], what: `resolving ${name} in ${pod}` });
    return parseJsonLine<ResolveResult>(r, `resolve in ${pod}`);
  }

  // ---- building ----

  async build(opts: LabOptions): Promise<void> {
    const t0 = performance.now();
    const step = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
      const s = performance.now();
      const v = await f();
      logger().debug(`lab ${this.id}: ${what} (${Math.round(performance.now() - s)} ms)`);
      return v;
    };
    const st = this.state;
    const pods = labPods(st);
    for (const d of ["config", "node", "internet", "leak", "gateway", "logs", ...this.clients]) mkdirSync(join(st.runDir, d), { recursive: true });
    this.saveState();
    if (!opts.configDir) {
      writeFileSync(
        join(st.configDir, "settings.sh"),
        renderSettings({ id: st.id, vpnInterface: st.vpnInterface, runDir: st.runDir, extra: opts.extraSettings, vpnTrafficPort: st.openvpn?.port }),
      );
      writeFileSync(join(st.configDir, "nat.conf"), opts.natConf ?? "");
    }
    // The certificates (a few openssl processes) are made while the namespaces are built.
    const certs = st.openvpn ? step("OpenVPN certificates", () => writeOpenVpnFiles(st.runDir, st.openvpn!, st.vpnInterface)) : undefined;
    certs?.catch(() => {}); // awaited below; a failure before that point must not go unhandled
    await step("namespaces", () => ipBatch(undefined, pods.map((p) => ["netns", "add", this.ns(p)]), `creating namespaces of lab ${this.id}`));
    for (const p of pods) {
      if (!hasResolvConf(p)) continue;
      mkdirSync(join("/etc/netns", this.ns(p)), { recursive: true });
      writeFileSync(this.resolvConfPath(p), renderResolvConf(p));
    }
    await step("sysctls", () => Promise.all(pods.map((p) => sysctls(this.ns(p), planSysctls(p, st.ipv6)))));
    await step("links", () => ipBatch(undefined, planVeths(st), `creating the links of lab ${this.id}`));
    await step("addresses and routes", () => Promise.all(pods.map((p) => ipBatch(this.ns(p), planPodConfig(st, p), `configuring ${this.ns(p)}`))));
    if (this.nftPath) {
      await step("packet counters", () =>
        Promise.all((["internet", "leak"] as const).map((h) => this.exec(h, ["nft", "-f", "-"], { input: renderCounters(), what: `adding packet counters on ${h}` }))),
      );
    }
    await step("services", () => this.startServices());
    if (certs) {
      await certs;
      await step("OpenVPN server and client", () => this.startOpenVpn(st.vpnLink));
    }
    this.buildMs = Math.round(performance.now() - t0);
    logger().debug(`lab ${this.id} built in ${this.buildMs} ms`);
  }

  private async startServices(): Promise<void> {
    const node = join(this.runDir, "node");
    const inet = join(this.runDir, "internet");
    writeFileSync(join(node, "hosts"), renderClusterHosts(this.gatewayPodIp()));
    writeFileSync(join(node, "dnsmasq.conf"), renderClusterDnsConf(node));
    writeFileSync(join(inet, "dnsmasq.conf"), renderVpnDnsConf(inet));
    const self = selfCommand();
    const echo = (h: EchoHost) =>
      startDaemon(this, h, `echo-${h}`, [...self, "lab", "echo", "--tcp", String(LAB.echoTcpPort), "--udp", String(LAB.echoUdpPort), "--state", join(this.runDir, h, "echo.json")]);
    const dns = (pod: PodName, dir: string, name: string) => startDaemon(this, pod, name, ["dnsmasq", "-k", `--conf-file=${dir}/dnsmasq.conf`]);

    const started = await Promise.all([dns("node", node, "cluster-dns"), dns("internet", inet, "vpn-dns"), echo("internet"), echo("leak")]);
    const names = ["cluster DNS (node)", "VPN DNS (internet)", "echo service (internet)", "echo service (leak)"];
    const daemons = started.map((d, i) => ({ ...d, what: names[i]! }));
    // A daemon that exits during start-up fails the build with its log, instead of a timeout.
    let settled = false;
    const died = (async () => {
      while (!settled) {
        for (const d of daemons) if (!isAlive(d.pid)) throw new LabError(`starting the ${d.what}: it exited before it was ready:\n${tail(d.logFile)}`);
        await Bun.sleep(20);
      }
    })();
    died.catch(() => {}); // observed only through the race below
    const ready = Promise.all([
      ...(["internet", "leak"] as const).map((h) => poll(`starting the echo service on ${h}`, 10_000, () => (existsSync(join(this.runDir, h, "echo.json")) ? true : undefined))),
      this.verifyClusterDns(this.gatewayPodIp()),
      this.resolve("internet", LAB.internetName, { server: LAB.vpnDnsIp, expect: LAB.internetIp, timeoutMs: 5000 }).then((r) => {
        if (!r.ok) throw new LabError(`checking the VPN DNS on ${LAB.vpnDnsIp}: ${r.error}`);
      }),
    ]);
    ready.catch(() => {}); // when a daemon died first, the race below already reported it
    try {
      await Promise.race([ready, died]);
    } finally {
      settled = true;
    }
  }

  /** The server (when not running), then the client unless the link is to be "deleted"; waits until connected. */
  private async startOpenVpn(link: VpnLinkState): Promise<void> {
    const vpn = this.openvpn();
    if (!vpn.running("server")) await vpn.start("server");
    if (link === "deleted") return;
    const n = vpn.connections();
    await vpn.start("client");
    await vpn.waitConnected(n);
    if (link === "down") await ipBatch(this.ns("gateway"), [["link", "set", this.vpnInterface, "down"]], `taking the VPN link ${this.vpnInterface} down`);
  }

  /** Ask the cluster DNS (from the node) until it answers the gateway name with `ip`. */
  private async verifyClusterDns(ip: string): Promise<void> {
    const r = await this.resolve("node", LAB.gatewayName, { server: LAB.clusterDnsIp, expect: ip, timeoutMs: 5000 });
    if (!r.ok) throw new LabError(`checking the cluster DNS on ${LAB.clusterDnsIp}: ${r.error}\n${tail(join(this.runDir, "logs", "cluster-dns.log"))}`);
  }

  private saveState(): void {
    writeFileSync(join(this.state.runDir, "state.json"), renderState(this.state));
  }

  // ---- changing a running lab ----

  async recreateGateway(opts: { sameIp?: boolean; unpublished?: boolean } = {}): Promise<string> {
    const st = this.state;
    const gw = this.ns("gateway");
    // `ip netns exec` joins the namespace a moment after spawn() returns: a scan of the
    // namespace alone could miss a process spawned just before.
    await this.killChildren("gateway");
    const survivors = await killNamespaceProcesses([gw]);
    if (survivors.length) throw new LabError(`re-creating the gateway: processes ${survivors.join(", ")} in ${gw} survived SIGKILL`);
    // Delete the links first: that is synchronous, whereas a deleted namespace's links are
    // cleaned up later by the kernel, and their peers' names in node/vpn are reused at once.
    const del: Cmd[] = [["link", "del", "eth0"]];
    if (st.vpnLink !== "deleted" && this.vpnKind === "veth") del.push(["link", "del", st.vpnInterface]);
    await host.run(["ip", "-n", gw, "-force", "-batch", "-"], { input: del.map((c) => c.join(" ")).join("\n") + "\n", okCodes: [1], what: `deleting the links of ${gw}` });
    await ipBatch(undefined, [["netns", "del", gw], ["netns", "add", gw]], `re-creating namespace ${gw}`);
    // The generation names the pod IP: a pod re-created at the same IP keeps it.
    this.state = { ...st, gatewayGeneration: st.gatewayGeneration + (opts.sameIp ? 0 : 1) };
    const next = this.state;
    this.saveState();
    // A new pod starts with an empty /run: nothing of the old pod's state (saved resolv.conf,
    // dnsmasq leases) survives, unlike a container restart.
    const podDir = podRunDir(this.runDir, "gateway");
    rmSync(podDir, { recursive: true, force: true });
    mkdirSync(podDir, { recursive: true });
    await this.writeResolvConf("gateway", renderResolvConf("gateway"));
    await sysctls(gw, planSysctls("gateway", st.ipv6));
    const veth = this.vpnKind === "veth";
    const veths: Cmd[] = [planGatewayEthVeth(next)];
    if (next.vpnLink !== "deleted" && veth) veths.push(planVpnVeth(next));
    await ipBatch(undefined, veths, `creating the links of ${gw}`);
    await Promise.all([
      ipBatch(gw, planPodConfig(next, "gateway"), `configuring ${gw}`),
      ipBatch(this.ns("node"), [["link", "set", nodePort("gateway"), "master", NODE_BRIDGE, "up"]], `attaching the new gateway to ${NODE_BRIDGE}`),
      next.vpnLink === "deleted" || !veth ? Promise.resolve() : ipBatch(this.ns("vpn"), planVpnLinkUpExit(), "configuring the VPN exit's end of the VPN link"),
    ]);
    if (!opts.unpublished) await this.updateClusterDns();
    if (!veth) {
      // A new pod's VPN container: nothing of the old one's files, connected again from scratch.
      rmSync(openVpnClientRunDir(this.runDir), { recursive: true, force: true });
      mkdirSync(openVpnClientRunDir(this.runDir), { recursive: true });
      await this.startOpenVpn(next.vpnLink);
    }
    return this.gatewayPodIp();
  }

  async publishGateway(): Promise<void> {
    await this.updateClusterDns();
  }

  /** Point the gateway name at the current gateway IP: rewrite the hosts file, SIGHUP, verify. */
  private async updateClusterDns(): Promise<void> {
    const dir = join(this.runDir, "node");
    writeFileSync(join(dir, "hosts"), renderClusterHosts(this.gatewayPodIp()));
    const pid = Number(readFileSync(join(dir, "dnsmasq.pid"), "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 1 || !isAlive(pid)) throw new LabError(`updating the cluster DNS: dnsmasq (pid file ${dir}/dnsmasq.pid) is not running`);
    process.kill(pid, "SIGHUP"); // dnsmasq re-reads addn-hosts and clears its cache
    await this.verifyClusterDns(this.gatewayPodIp());
  }

  async setVpnLink(want: VpnLinkState): Promise<void> {
    if (this.vpnKind === "openvpn") return this.setOpenVpnLink(want);
    const st = this.state;
    const gw = this.ns("gateway");
    const dev = st.vpnInterface;
    if (want === "deleted") {
      if (st.vpnLink !== "deleted") await ipBatch(gw, [["link", "del", dev]], `deleting the VPN link ${dev}`);
    } else {
      if (st.vpnLink === "deleted") {
        await ipBatch(undefined, [planVpnVeth(st)], `adding the VPN link ${dev}`);
        await ipBatch(this.ns("vpn"), planVpnLinkUpExit(), "configuring the VPN exit's end of the VPN link");
      }
      if (want === "up") await ipBatch(gw, planVpnLinkUpGateway(st), `bringing the VPN link ${dev} up`);
      else await ipBatch(gw, [["addr", "replace", `${LAB.vpnGatewayIp}/30`, "dev", dev], ["link", "set", dev, "down"]], `taking the VPN link ${dev} down`);
    }
    this.state = { ...st, vpnLink: want };
    this.saveState();
  }

  private async setOpenVpnLink(want: VpnLinkState): Promise<void> {
    const vpn = this.openvpn();
    const dev = this.vpnInterface;
    if (want === "deleted") {
      await vpn.stop("client", "SIGTERM");
      await vpn.waitLinkGone();
    } else if (want === "down") {
      if (!vpn.running("client")) await this.startOpenVpn("down");
      else await ipBatch(this.ns("gateway"), [["link", "set", dev, "down"]], `taking the VPN link ${dev} down`);
    } else if (this.state.vpnLink !== "up" || !vpn.running("client")) {
      // A downed tun device keeps no routes and OpenVPN does not put them back: reconnect.
      await vpn.stop("client", "SIGTERM");
      await this.startOpenVpn("up");
    }
    this.state = { ...this.state, vpnLink: want };
    this.saveState();
  }

  /** SIGTERM then SIGKILL to the process groups of spawn()ed children (of one pod, or all). */
  private async killChildren(pod?: PodName): Promise<void> {
    const groups = [...this.children].filter(([, p]) => pod === undefined || p === pod).map(([c]) => c.pid);
    const signalGroups = (sig: NodeJS.Signals) => {
      for (const pgid of groups) {
        try {
          process.kill(-pgid, sig);
        } catch {}
      }
    };
    signalGroups("SIGTERM");
    await killPids(groups.filter(isAlive), 1000);
    signalGroups("SIGKILL"); // anything the leaders started and left behind in their groups
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await this.killChildren();
    await destroyLabById(this.id);
    this.destroyed = true;
  }
}

function parseJsonLine<T>(r: RunResult, what: string): T {
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new LabError(`${what}: expected a JSON answer, got ${JSON.stringify(r.stdout.trim())} (exit ${r.code}) ${r.stderr.trim()}`);
  }
}

export function validateLabOptions(opts: LabOptions): string[] {
  const problems: string[] = [];
  const clients = opts.clients ?? 1;
  if (!Number.isInteger(clients) || clients < 0 || clients > MAX_CLIENTS) problems.push(`clients must be an integer from 0 to ${MAX_CLIENTS}, not ${clients}`);
  if (opts.id !== undefined && !isValidLabId(opts.id)) problems.push(`id ${JSON.stringify(opts.id)} must be 1-16 lowercase letters or digits`);
  const vpnProblem = checkVpnInterface(opts.vpnInterface ?? "tun0");
  if (vpnProblem) problems.push(vpnProblem);
  if (opts.vpnLink !== undefined && !["up", "down", "deleted"].includes(opts.vpnLink)) problems.push(`vpnLink must be up, down or deleted, not ${JSON.stringify(opts.vpnLink)}`);
  if (opts.vpn !== undefined && !VPN_KINDS.includes(opts.vpn)) problems.push(`vpn must be one of ${VPN_KINDS.join(", ")}, not ${JSON.stringify(opts.vpn)}`);
  if (opts.openvpn !== undefined && opts.vpn !== "openvpn") problems.push(`OpenVPN settings need vpn "openvpn" (the lab's VPN is ${opts.vpn ?? "veth"})`);
  if (opts.vpn === "openvpn") problems.push(...checkOpenVpnSettings(resolveOpenVpnSettings(opts.openvpn)));
  return problems;
}

/**
 * Build a fresh lab. An existing lab with the same id is destroyed first (so `up` twice
 * converges to one lab). If any step fails, everything built so far is removed and the error
 * is thrown.
 */
export async function createLab(opts: LabOptions = {}): Promise<Lab & { buildMs: number }> {
  checkLabPrerequisites(opts);
  const problems = validateLabOptions(opts);
  if (problems.length) throw new LabError(`creating a lab: ${problems.join("; ")}`);
  const id = opts.id ?? makeLabId(Math.random);
  if (listLabs().some((l) => l.id === id)) {
    logger().info(`lab ${id} exists: tearing it down to build it again`);
    await destroyLabById(id);
  }
  const runDir = runDirOf(id);
  const state: LabState = {
    version: STATE_VERSION,
    id,
    clients: opts.clients ?? 1,
    vpnInterface: opts.vpnInterface ?? "tun0",
    gatewayGeneration: 0,
    vpnLink: opts.vpnLink ?? "up",
    configDir: opts.configDir ?? join(runDir, "config"),
    runDir,
    createdAt: new Date().toISOString(),
    createdBy: opts.createdBy ?? "library",
    ...(opts.vpn === "openvpn" ? { vpn: "openvpn" as const, openvpn: resolveOpenVpnSettings(opts.openvpn) } : {}),
    ...(opts.ipv6 ? { ipv6: true } : {}),
  };
  const lab = new RealLab(state);
  try {
    await lab.build(opts);
  } catch (e) {
    await destroyLabById(id).catch((e2) => logger().error(`cleaning up after a failed build: ${(e2 as Error).message}`));
    throw e;
  }
  return lab;
}

/**
 * The lab a command without --id means: the only one built by `lab up`. Labs of tests and
 * demos are never picked implicitly (a `lab down` must not pull a running test's lab away).
 */
export function defaultLabId(): string {
  const { mine, others } = pickCliLabs(listLabs());
  const note = others.length ? ` (other labs, of tests or demos or half-built: ${others.join(", ")}; name one with --id)` : "";
  if (mine.length === 0) throw new LabError(`no lab started with \`pod-gateway lab up\` is running${note}`);
  if (mine.length > 1) throw new LabError(`several labs started with \`lab up\` are running (${mine.join(", ")}): pass --id`);
  return mine[0]!;
}

/** Attach to a running lab (built by another process, e.g. `lab up`). Without id: see defaultLabId. */
export async function openLab(id?: string): Promise<Lab> {
  id ??= defaultLabId();
  if (!isValidLabId(id)) throw new LabError(`opening lab ${JSON.stringify(id)}: not a lab id`);
  let state: LabState;
  try {
    state = readLabState(id);
  } catch (e) {
    const known = listLabs().some((l) => l.id === id);
    throw new LabError(
      known
        ? `lab ${id} has no readable state (${(e as Error).message}); it may be half-built: remove it with pod-gateway lab down --id ${id}`
        : `no lab with id ${id} (pod-gateway lab status lists them)`,
    );
  }
  return new RealLab(state);
}
