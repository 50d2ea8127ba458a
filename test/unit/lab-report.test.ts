// The lab's pure parts, without root: the demo report and how role exits are read, the
// status and `lab up` texts, and the plan (names, addresses, ip commands, files, nft counters,
// prerequisites message, state file).
import { describe, expect, test } from "bun:test";
import {
  checkContainer,
  checkVpnInterface,
  clientIp,
  containerDir,
  gatewayIpFor,
  makeLabId,
  nsName,
  parseCounters,
  parseNsName,
  parseState,
  pickCliLabs,
  planPodConfig,
  planSysctls,
  planVeths,
  renderClusterHosts,
  renderContainerEnv,
  renderRoleEnv,
  renderSettings,
  renderState,
  type LabState,
} from "../../src/lab/plan.ts";
import { describeMissing } from "../../src/lab/prereq.ts";
import { classifyRoleExit, demoExitCode, renderDemoReport, renderLabMap, renderStatus, type StepResult } from "../../src/lab/report.ts";
import { LAB } from "../../src/lab/types.ts";
import { loadConfig } from "../../src/sys/config.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const state: LabState = {
  version: 1,
  id: "abc123",
  clients: 2,
  vpnInterface: "tun0",
  gatewayGeneration: 0,
  vpnLink: "up",
  configDir: "/run/pod-gateway-lab/abc123/config",
  runDir: "/run/pod-gateway-lab/abc123",
  createdAt: "2026-01-01T00:00:00.000Z",
};

describe("demo report", () => {
  test("a role's exit: 0 is ok, NotImplementedError is 'not implemented yet', anything else failed with its last line", () => {
    expect(classifyRoleExit(0, "[debug] lots of output\n")).toEqual({ status: "ok", detail: "exit 0" });
    expect(classifyRoleExit(1, "[error] gateway-init is not implemented yet\n")).toEqual({ status: "not-implemented", detail: "not implemented yet" });
    expect(classifyRoleExit(2, "[info] reading /config\n[error] invalid configuration: nat.conf:3: bad octet\n\n")).toEqual({
      status: "failed",
      detail: "exit 2: [error] invalid configuration: nat.conf:3: bad octet",
    });
    expect(classifyRoleExit(137, "")).toEqual({ status: "failed", detail: "exit 137" });
  });

  test("the demo passes only when every step passed", () => {
    expect(demoExitCode([{ name: "a", status: "ok" }])).toBe(0);
    expect(demoExitCode([{ name: "a", status: "ok" }, { name: "b", status: "not-implemented" }])).toBe(1);
    expect(demoExitCode([{ name: "a", status: "ok" }, { name: "b", status: "skipped" }])).toBe(1);
    expect(demoExitCode([{ name: "a", status: "failed" }])).toBe(1);
    expect(demoExitCode([])).toBe(1);
  });

  test("report: one line per step with time and result, then a verdict", () => {
    const steps: StepResult[] = [
      { name: "lab up", status: "ok", ms: 412.4, detail: "lab abc123: 2 client pod(s)" },
      { name: "gateway-init", status: "not-implemented", ms: 61, detail: "not implemented yet" },
      { name: "gateway-sidecar", status: "skipped", detail: "needs gateway-init" },
      { name: "client-0: client-init", status: "failed", ms: 1520, detail: "exit 1: boom" },
      { name: "lab down", status: "ok", ms: 80 },
    ];
    expect(renderDemoReport({ labId: "abc123", steps, kept: false })).toBe(
      [
        "pod-gateway lab demo (lab abc123)",
        "",
        "  step                     time  result",
        "  lab up                 412 ms  ok — lab abc123: 2 client pod(s)",
        "  gateway-init            61 ms  not implemented yet",
        "  gateway-sidecar             -  skipped — needs gateway-init",
        "  client-0: client-init  1.52 s  FAILED — exit 1: boom",
        "  lab down                80 ms  ok",
        "",
        "something is broken: 2 ok, 1 failed, 1 not implemented yet, 1 skipped.",
        "The lab was torn down.",
        "",
      ].join("\n"),
    );
    const incomplete = renderDemoReport({ labId: "x", steps: [steps[0]!, steps[1]!], kept: true });
    expect(incomplete).toContain("incomplete: 1 ok, 0 failed, 1 not implemented yet, 0 skipped.");
    expect(incomplete).toContain("The lab is still up: pod-gateway lab status; pod-gateway lab down --id x");
    expect(renderDemoReport({ labId: "x", steps: [steps[0]!], kept: false })).toContain("everything works: 1 ok");
  });
});

describe("status and map", () => {
  test("status of a healthy lab and of a half-built one", () => {
    const text = renderStatus([
      {
        id: "abc123",
        state,
        namespaces: [
          { name: "pgw-abc123-node", present: true, addresses: ["br0 198.18.0.1/24"], processes: ["12 dnsmasq -k"] },
          { name: "pgw-abc123-vpn", present: false, addresses: [], processes: [] },
        ],
        strays: ["pgw-abc123-client-7"],
        dns: { ok: true, detail: `${LAB.gatewayName} → 198.18.0.2` },
      },
      { id: "zz9", stateError: "no state.json", namespaces: [{ name: "pgw-zz9-node", present: true, addresses: [], processes: [] }], strays: [] },
    ]);
    expect(text).toBe(
      [
        "lab abc123: 2 client(s), gateway 198.18.0.2, VPN link tun0 up, since 2026-01-01T00:00:00.000Z",
        "  pgw-abc123-node: br0 198.18.0.1/24",
        "    processes: 12 dnsmasq -k",
        "  pgw-abc123-vpn: MISSING",
        "  pgw-abc123-client-7: present (not in the lab's state)",
        `  cluster DNS: answers — ${LAB.gatewayName} → 198.18.0.2`,
        "lab zz9: no state.json — half-built or crashed; remove it with: pod-gateway lab down --id zz9",
        "  pgw-zz9-node: no addresses",
        "",
      ].join("\n"),
    );
    expect(renderStatus([])).toContain("no lab is running");
  });

  test("the map printed by lab up names every namespace and address", () => {
    const map = renderLabMap({ ...state, gatewayGeneration: 1, vpnLink: "down" }, 321);
    expect(map).toStartWith("lab abc123 is up (built in 321 ms)\n");
    for (const p of ["node", "vpn", "internet", "leak", "gateway", "client-0", "client-1"]) expect(map).toContain(`pgw-abc123-${p}`);
    expect(map).toContain("198.18.0.3 on eth0; tun0 198.19.0.2 (VPN link down)");
    expect(map).toContain("198.18.0.11 on eth0");
  });
});

describe("plan", () => {
  test("namespace names carry the id and round-trip; other names are not the lab's", () => {
    expect(nsName("abc123", "client-12")).toBe("pgw-abc123-client-12");
    expect(parseNsName("pgw-abc123-client-12")).toEqual({ id: "abc123", pod: "client-12" });
    expect(parseNsName("pgw-abc123-gateway")).toEqual({ id: "abc123", pod: "gateway" });
    for (const n of ["pgw-abc123-other", "pgwx-a-node", "pgw--node", "pgw-ABC-node", "cni-1234"]) expect(parseNsName(n)).toBeUndefined();
  });

  test("lab ids are six lowercase alphanumerics from the injected random source", () => {
    expect(makeLabId(() => 0)).toBe("aaaaaa");
    expect(makeLabId(() => 0.9999999)).toBe("999999");
    let i = 0;
    const seq = [0, 25 / 36, 26 / 36, 35 / 36, 0.5, 0.1];
    expect(makeLabId(() => seq[i++]!)).toMatch(/^az09[a-z0-9]{2}$/);
  });

  test("gateway addresses never collide with clients'", () => {
    const gw = Array.from({ length: 53 }, (_, g) => gatewayIpFor(g));
    expect(gw.slice(0, 9)).toEqual(["198.18.0.2", "198.18.0.3", "198.18.0.4", "198.18.0.5", "198.18.0.6", "198.18.0.7", "198.18.0.8", "198.18.0.9", "198.18.0.210"]);
    expect(new Set(gw).size).toBe(gw.length);
    const clients = Array.from({ length: 200 }, (_, i) => clientIp(i));
    expect(clients.filter((c) => gw.includes(c))).toEqual([]);
    expect(clientIp(0)).toBe(LAB.firstClientIp);
    expect(clientIp(199)).toBe("198.18.0.209");
    expect(() => clientIp(200)).toThrow();
    expect(gatewayIpFor(52)).toBe("198.18.0.254");
    expect(() => gatewayIpFor(53)).toThrow(/no address left/);
  });

  test("a client pod: lo up, its address on eth0, default via the node", () => {
    expect(planPodConfig(state, "client-1")).toEqual([
      ["link", "set", "lo", "up"],
      ["addr", "add", "198.18.0.11/24", "dev", "eth0"],
      ["link", "set", "eth0", "up"],
      ["route", "add", "default", "via", "198.18.0.1"],
    ]);
  });

  test("the gateway gets def1 routes via the VPN link only while it is up", () => {
    const up = planPodConfig(state, "gateway").map((c) => c.join(" "));
    expect(up).toContain("route replace 0.0.0.0/1 via 198.19.0.1 dev tun0");
    expect(up).toContain("route replace 128.0.0.0/1 via 198.19.0.1 dev tun0");
    expect(up).toContain("route add default via 198.18.0.1");
    const down = planPodConfig({ ...state, vpnLink: "down" }, "gateway").map((c) => c.join(" "));
    expect(down.filter((c) => c.includes("/1"))).toEqual([]);
    const deleted = planPodConfig({ ...state, vpnLink: "deleted", gatewayGeneration: 2 }, "gateway").map((c) => c.join(" "));
    expect(deleted.some((c) => c.includes("tun0"))).toBe(false);
    expect(deleted).toContain("addr add 198.18.0.4/24 dev eth0");
  });

  test("veth pairs go straight into their namespaces; the VPN link is absent when deleted", () => {
    const v = planVeths({ ...state, vpnInterface: "wg0" }).map((c) => c.join(" "));
    expect(v).toContain("link add wg0 netns pgw-abc123-gateway type veth peer name veth-gw netns pgw-abc123-vpn");
    expect(v).toContain("link add eth0 netns pgw-abc123-client-1 type veth peer name veth-c1 netns pgw-abc123-node");
    expect(v).toHaveLength(6);
    expect(planVeths({ ...state, vpnLink: "deleted" })).toHaveLength(5);
    for (const c of v) expect(c).toMatch(/ netns pgw-abc123-\S+ type veth peer name \S+ netns pgw-abc123-/);
  });

  test("routers forward, pods start with forwarding off, DAD is off everywhere", () => {
    expect(planSysctls("node")).toContain("net.ipv4.ip_forward=1");
    expect(planSysctls("vpn")).toContain("net.ipv4.ip_forward=1");
    expect(planSysctls("gateway")).toContain("net.ipv4.ip_forward=0");
    expect(planSysctls("leak")).toContain("net.ipv4.ip_forward=0");
    for (const p of ["node", "gateway", "client-0", "internet"] as const) expect(planSysctls(p)).toContain("net.ipv6.conf.default.accept_dad=0");
  });

  test("settings.sh keeps everything in the lab and appends the test's extras", () => {
    const s = renderSettings({ id: "abc123", vpnInterface: "wg0", runDir: "/run/pod-gateway-lab/abc123", extra: "VPN_BLOCK_OTHER_TRAFFIC=false\n" });
    expect(s).toContain('NOT_ROUTED_TO_GATEWAY_CIDRS="198.18.0.0/16"\n');
    expect(s).toContain('VPN_LOCAL_CIDRS="198.18.0.0/16"\n');
    expect(s).toContain('VPN_INTERFACE="wg0"\n');
    expect(s).toContain('RESOLV_CONF_COPY="${POD_GATEWAY_RUN_DIR:-/run/pod-gateway-lab/abc123/gateway}/resolv_copy.conf"\n');
    expect(s).toContain('VPN_TRAFFIC_PORT="443"\n');
    expect(s.indexOf("VPN_BLOCK_OTHER_TRAFFIC=false")).toBeGreaterThan(s.indexOf("RESOLV_CONF_COPY"));
    expect(s).not.toContain("/etc/");
  });

  test("the cluster hosts file follows the gateway", () => {
    expect(renderClusterHosts("198.18.0.5").split("\n")[0]).toBe(`198.18.0.5 ${LAB.gatewayName}`);
    expect(renderClusterHosts("198.18.0.5")).toContain(`${LAB.apiServerIp} ${LAB.apiServerName}`);
  });

  test("role environment as the webhook (clients) and the chart (gateway) give it", () => {
    expect(renderRoleEnv("client-3", "/cfg", "/run/lab")).toEqual({
      POD_GATEWAY_CONFIG_DIR: "/cfg",
      POD_GATEWAY_RUN_DIR: "/run/lab/client-3",
      KUBERNETES_SERVICE_HOST: LAB.apiServerIp,
      KUBERNETES_SERVICE_PORT: "443",
      K8S_DNS_ips: LAB.clusterDnsIp,
      LOG_LEVEL: "debug",
      gateway: LAB.gatewayName,
      DNS_ips: LAB.clusterDnsIp,
      DNS: "172.16.0.1",
      POD_NAME: "client-3",
      POD_NAMESPACE: "default",
      CONTAINER_NAME: "gateway-sidecar",
    });
    expect(renderRoleEnv("gateway", "/cfg", "/run/lab")).toMatchObject({ POD_NAME: "gateway", POD_NAMESPACE: "pod-gateway", POD_GATEWAY_RUN_DIR: "/run/lab/gateway" });
    expect(renderRoleEnv("gateway", "/cfg", "/run/lab").gateway).toBeUndefined();
    expect(renderRoleEnv("leak", "/cfg", "/run/lab")).toEqual({});
  });

  test("nft counters are read from `nft -j list table` (fixture from nftables 1.0.6)", () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: "1.0.6", json_schema_version: 1 } },
        { table: { family: "inet", name: "pgw_lab", handle: 1 } },
        { counter: { family: "inet", name: "ipv4", table: "pgw_lab", handle: 2, packets: 7, bytes: 560 } },
        { counter: { family: "inet", name: "ipv6", table: "pgw_lab", handle: 3, packets: 1, bytes: 80 } },
        { set: { family: "inet", name: "sources4", table: "pgw_lab", type: "ipv4_addr", handle: 4, size: 65535, elem: ["198.18.0.10", "192.0.2.1"] } },
      ],
    });
    expect(parseCounters(json)).toEqual({ packets: 8, bytes: 640, sources: ["192.0.2.1", "198.18.0.10"] });
    expect(() => parseCounters(JSON.stringify({ nftables: [] }))).toThrow(/no counters/);
  });

  test("VPN interface names are checked like the kernel would", () => {
    expect(checkVpnInterface("tun0")).toBeUndefined();
    expect(checkVpnInterface("wg-vpn.0")).toBeUndefined();
    expect(checkVpnInterface("a-very-long-name0")).toMatch(/1-15/);
    expect(checkVpnInterface("eth0")).toMatch(/taken/);
    expect(checkVpnInterface("tun 0")).toBeDefined();
  });

  test("commands without --id only pick labs that `lab up` built", () => {
    const labs = [
      { id: "t1", state: { createdBy: "library" } },
      { id: "u1", state: { createdBy: "lab up" } },
      { id: "h1" },
      { id: "d1", state: { createdBy: "lab demo" } },
      { id: "o1", state: {} },
    ];
    expect(pickCliLabs(labs)).toEqual({ mine: ["u1"], others: ["t1", "h1", "d1", "o1"] });
    expect(pickCliLabs([{ id: "t1", state: { createdBy: "library" } }]).mine).toEqual([]);
  });

  test("state file round-trips and rejects what it cannot trust", () => {
    expect(parseState(renderState(state), "s.json")).toEqual(state);
    expect(() => parseState("{", "s.json")).toThrow(/reading lab state s.json/);
    expect(() => parseState(JSON.stringify({ ...state, version: 9 }), "s.json")).toThrow(/version 9/);
    expect(() => parseState(JSON.stringify({ ...state, vpnLink: "sideways" }), "s.json")).toThrow(/vpnLink/);
    expect(() => parseState(JSON.stringify({ ...state, id: "../x" }), "s.json")).toThrow(/bad id/);
  });
});

describe("prerequisites", () => {
  const all = { ip: "/usr/sbin/ip", dnsmasq: "/usr/sbin/dnsmasq", sysctl: "/usr/sbin/sysctl", sh: "/bin/sh", iptables: undefined, nft: "/usr/sbin/nft" };
  test("nothing missing: no message; one firewall tool is enough", () => {
    expect(describeMissing({ root: true, tools: all })).toBeUndefined();
    expect(describeMissing({ root: true, tools: { ...all, nft: undefined, iptables: "/usr/sbin/iptables" } })).toBeUndefined();
  });
  test("names everything missing and the apt-get command", () => {
    expect(describeMissing({ root: true, tools: { ...all, dnsmasq: undefined, nft: undefined } })).toBe(
      "the lab cannot start: missing dnsmasq (package dnsmasq-base); iptables or nft (packages iptables, nftables). " +
        "Install with: apt-get install -y --no-install-recommends dnsmasq-base iptables nftables",
    );
    const notRoot = describeMissing({ root: false, tools: { ...all, ip: undefined } })!;
    expect(notRoot).toContain("root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN: run it with sudo)");
    expect(notRoot).toContain("ip (package iproute2)");
    expect(notRoot).toEndWith("sudo apt-get install -y --no-install-recommends iproute2");
    const offPath = describeMissing({ root: true, tools: { ...all, ip: undefined }, offPath: { ip: "/usr/sbin/ip" } });
    expect(offPath).toBe("the lab cannot start: missing ip on PATH (it is installed as /usr/sbin/ip: add /usr/sbin to PATH)");
    expect(describeMissing({ root: false, tools: all })).toBe("the lab cannot start: missing root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN: run it with sudo)");
  });
});

describe("containers (issue 11 §4)", () => {
  test("each container has its own run dir, and the resolv.conf copy follows it; the pod's own env keeps the pod's dir", () => {
    const runDir = "/run/pod-gateway-lab/abc123";
    const dir = mkdtempSync(join(tmpdir(), "lab-containers-"));
    try {
      writeFileSync(join(dir, "settings.sh"), renderSettings({ id: "abc123", vpnInterface: "tun0", runDir }));
      const copyWith = (env: Record<string, string>) => loadConfig({ configDir: dir, defaultConfigDir: join(dir, "none"), env, role: "gateway-sidecar", onWarning: () => {} }).settings.RESOLV_CONF_COPY;
      const sidecar = renderContainerEnv("gateway", "gateway-sidecar", dir, runDir);
      expect(sidecar.POD_GATEWAY_RUN_DIR).toBe(containerDir(runDir, "gateway", "gateway-sidecar"));
      expect(copyWith(sidecar)).toBe(`${runDir}/gateway/containers/gateway-sidecar/resolv_copy.conf`);
      expect(copyWith(renderContainerEnv("gateway", "gateway-init", dir, runDir))).toBe(`${runDir}/gateway/containers/gateway-init/resolv_copy.conf`);
      expect(copyWith(renderRoleEnv("gateway", dir, runDir))).toBe(`${runDir}/gateway/resolv_copy.conf`);
      expect(copyWith({})).toBe(`${runDir}/gateway/resolv_copy.conf`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("only the gateway and client pods have containers, and only their own", () => {
    expect(checkContainer("gateway", "gateway-sidecar")).toBeUndefined();
    expect(checkContainer("client-3", "client-init")).toBeUndefined();
    expect(checkContainer("gateway", "client-init")).toBe('gateway has no container "client-init" (it has gateway-init, gateway-sidecar)');
    expect(checkContainer("node", "gateway-init")).toBe("node is not a pod with containers (only the gateway and client pods are)");
  });
});
