// nat.conf: accepted lines, rejected lines with file:line:column, duplicates, and which entry a
// pod gets (exact name, then its workload, then the reference's first-dash rule with a warning).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { formatIssue } from "../../src/core/errors.ts";
import { matchNatEntry, workloadCandidates } from "../../src/core/natconf/match.ts";
import { parseNatConf } from "../../src/core/natconf/parse.ts";
import type { NatEntry } from "../../src/core/settings/types.ts";

const REPO = join(import.meta.dir, "..", "..");
const F = "/config/nat.conf";
const ctx = { firstDynamic: 20, firstDynamicFrom: "default" };

function entries(text: string) {
  const r = parseNatConf(text, F, ctx);
  expect(r.issues.map(formatIssue)).toEqual([]);
  return r.entries.map((e) => [e.name, e.octet, e.ports.map((p) => `${p.proto}:${p.port}`).join(","), e.line]);
}

describe("accepted lines", () => {
  test("the chart's nat.conf", () => {
    expect(entries(readFileSync(join(REPO, "test/fixtures/config-chart/nat.conf"), "utf8"))).toEqual([
      ["transmission", 10, "tcp:51413,udp:51413", 2],
      ["qbittorrent", 11, "tcp:6881,udp:6881", 3],
      ["sonarr", 12, "", 4],
    ]);
  });

  test("the shipped nat.conf has no entries", () => {
    expect(entries(readFileSync(join(REPO, "config/nat.conf"), "utf8"))).toEqual([]);
  });

  test("comments, blank lines, tabs, spaces and commas between ports, case of protocols, CRLF", () => {
    const text = ["# header", "", "  a\t2   tcp:80 , udp:53  # web and dns", "b 3 TCP:443,,udp:443,", "c.example 19", "d 4 tcp:1\r", ""].join("\n");
    expect(entries(text)).toEqual([
      ["a", 2, "tcp:80,udp:53", 3],
      ["b", 3, "tcp:443,udp:443", 4],
      ["c.example", 19, "", 5],
      ["d", 4, "tcp:1", 6],
    ]);
    // "e#1": '#' inside a word is not a comment, and '#' is not allowed in a pod name
    expect(parseNatConf("e#1 5", F, ctx).issues.map(formatIssue)).toEqual([`${F}:1:1: "e#1" is not a pod name (letters, digits, '-' and '.')`]);
  });

  test("the same port twice for one pod is kept once, with a warning", () => {
    const r = parseNatConf("a 2 tcp:80,tcp:80", F, ctx);
    expect(r.issues).toEqual([]);
    expect(r.entries[0]!.ports).toEqual([{ proto: "tcp", port: 80 }]);
    expect(r.warnings.map(formatIssue)).toEqual([`${F}:1:12: tcp:80 is listed twice for a; using it once`]);
  });

  test("without valid settings, octets are checked against 2..254 only", () => {
    expect(parseNatConf("a 200", F, {}).issues).toEqual([]);
    expect(parseNatConf("a 255", F, {}).issues.map(formatIssue)).toEqual([`${F}:1:3: octet 255 is out of range 2..254`]);
  });
});

describe("rejected lines: file:line:column and why", () => {
  const corpus: [string, string, string][] = [
    ["web", "1:4", 'missing host octet after "web"'],
    ["web ten", "1:5", 'host octet "ten" is not a whole number'],
    ["web 0", "1:5", "octet 0 is reserved (the network address); static octets are 2..19"],
    ["web 1", "1:5", "octet 1 is reserved (the gateway)"],
    ["web 20", "1:5", "octet 20 is in the DHCP range: static octets must be below VXLAN_GATEWAY_FIRST_DYNAMIC_IP=20 (set at default), so 2..19"],
    ["web 300", "1:5", "out of range 0..255"],
    ["web 010", "1:5", "leading zero"],
    ["web 172.16.0.5", "1:5", "write only the host octet inside VXLAN_IP_NETWORK (for example 5)"],
    ["web 5 tcp:80,sctp:9", "1:14", 'protocol "sctp" is not tcp or udp'],
    ["web 5 tcp:0", "1:7", "port 0 is out of range 1..65535"],
    ["web 5 udp:65536", "1:7", "port 65536 is out of range"],
    ["web 5 tcp:", "1:7", "port is empty"],
    ["web 5 80", "1:7", "expected proto:port (for example tcp:80)"],
    ["web 5 tcp:1000-2000", "1:7", "port ranges are not supported"],
    ["web 5 tcp:http", "1:7", "is not a whole number"],
    ["-web 5", "1:1", "is not a pod name"],
    ["web_1! 5", "1:1", "is not a pod name"],
    ["a 2\nb 3\na 4", "3:1", 'duplicate name "a" (first at line 1)'],
    ["a 2\nB 3\nb 4", "3:1", 'duplicate name "b" (first at line 2)'],
    ["a 2\nb 2", "2:3", 'octet 2 is already given to "a" (line 1)'],
    ["a 2 tcp:80\nb 3 udp:80,tcp:80", "2:5", 'tcp:80 is already forwarded to "a" (line 1)'],
  ];
  for (const [text, loc, fragment] of corpus)
    test(JSON.stringify(text), () => {
      const r = parseNatConf(text, F, ctx);
      expect(r.issues).toHaveLength(1);
      const msg = formatIssue(r.issues[0]!);
      expect(msg.startsWith(`${F}:${loc}: `)).toBe(true);
      expect(msg).toContain(fragment);
    });

  test("an underscore (the reference took any word) is a warning: the entry is kept, it can never match a pod", () => {
    const r = parseNatConf("my_app 5 tcp:80\n", F, ctx);
    expect(r.issues).toEqual([]);
    expect(r.entries.map((e) => e.name)).toEqual(["my_app"]);
    expect(r.warnings.map(formatIssue)).toEqual([`${F}:1:1: "my_app" contains '_', which pod names cannot: this entry never matches a pod (its octet stays reserved)`]);
  });

  test("every bad line is reported, good lines are kept", () => {
    const r = parseNatConf(["ok1 2 tcp:80", "bad 1", "ok2 3", "bad2 4 xyz:1", "ok3 5"].join("\n"), F, ctx);
    expect(r.issues.map((i) => `${i.line}:${i.column}`)).toEqual(["2:5", "4:8"]);
    expect(r.entries.map((e) => e.name)).toEqual(["ok1", "ok2", "ok3"]);
  });
});

describe("property: any valid table reads back", () => {
  test("random names, octets and ports", () => {
    const name = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/);
    const port = fc.record({ proto: fc.constantFrom("tcp" as const, "udp" as const), port: fc.integer({ min: 1, max: 65535 }) });
    const table = fc.uniqueArray(fc.tuple(name, fc.integer({ min: 2, max: 19 }), fc.uniqueArray(port, { selector: (p) => `${p.proto}:${p.port}`, maxLength: 4 })), {
      selector: ([n]) => n,
      maxLength: 18,
    });
    fc.assert(
      fc.property(table, (rows) => {
        const seenOctet = new Set<number>();
        const seenPort = new Set<string>();
        const good = rows.filter(([, o, ps]) => {
          if (seenOctet.has(o) || ps.some((p) => seenPort.has(`${p.proto}:${p.port}`))) return false;
          seenOctet.add(o);
          for (const p of ps) seenPort.add(`${p.proto}:${p.port}`);
          return true;
        });
        const text = good.map(([n, o, ps]) => `${n} ${o} ${ps.map((p) => `${p.proto}:${p.port}`).join(",")}`.trimEnd()).join("\n");
        const r = parseNatConf(text, F, ctx);
        expect(r.issues).toEqual([]);
        expect(r.entries.map((e) => [e.name, e.octet, e.ports])).toEqual(good.map(([n, o, ps]) => [n, o, ps]));
      }),
      { numRuns: 200 },
    );
  });
});

describe("matchNatEntry", () => {
  const mk = (name: string, octet: number, line: number): NatEntry => ({ name, octet, ports: [], file: F, line });
  const table = [mk("my", 2, 1), mk("my-app", 3, 2), mk("web", 4, 3), mk("db", 5, 4), mk("nightly", 6, 5), mk("agent", 7, 6), mk("exact-pod-x2x4z", 8, 7), mk("Upper", 9, 8)];
  const cases: [string, string | undefined, string | undefined][] = [
    ["my-app", "my-app", "exact"],
    ["exact-pod-x2x4z", "exact-pod-x2x4z", "exact"],
    ["upper", "Upper", "exact"],
    ["my-app-7d9f8b6c4d-x2x4z", "my-app", "workload"], // Deployment
    ["my-app-0", "my-app", "workload"], // StatefulSet
    ["db-12", "db", "workload"],
    ["agent-k8x2z", "agent", "workload"], // DaemonSet
    ["nightly-28912345-bq7xz", "nightly", "workload"], // CronJob
    ["my-other-7d9f8b6c4d-x2x4z", "my", "prefix"], // only the reference's rule matches
    ["my-app2", "my", "prefix"],
    ["web-proxy", "web", "prefix"], // "proxy" has vowels: not a generated suffix
    ["nothing-here", undefined, undefined],
    ["standalone", undefined, undefined],
  ];
  for (const [pod, name, how] of cases)
    test(`${pod} → ${name ?? "none"}`, () => {
      const m = matchNatEntry(table, pod);
      expect(m?.entry.name).toBe(name as never);
      expect(m?.how).toBe(how as never);
      if (how === "prefix") expect(m!.warning).toContain(`matches pod "${pod}" only by the text before its first dash`);
      else expect(m?.warning).toBeUndefined();
    });

  test("the Deployment wins over its ReplicaSet, both over the prefix", () => {
    const rs = matchNatEntry([mk("api", 2, 1), mk("api-5c6b7f9d8", 3, 2)], "api-5c6b7f9d8-abcde".replace("abcde", "bcdfg"));
    expect(rs).toMatchObject({ how: "workload", matched: "api" });
    const onlyRs = matchNatEntry([mk("api-5c6b7f9d8", 3, 2), mk("x", 4, 3)], "api-5c6b7f9d8-bcdfg");
    expect(onlyRs).toMatchObject({ how: "workload", matched: "api-5c6b7f9d8" });
  });

  test("workload candidates", () => {
    expect(workloadCandidates("my-app-7d9f8b6c4d-x2x4z")).toEqual(["my-app", "my-app-7d9f8b6c4d"]);
    expect(workloadCandidates("nightly-28912345-bq7xz")).toEqual(["nightly", "nightly-28912345"]);
    expect(workloadCandidates("redis-2")).toEqual(["redis"]);
    expect(workloadCandidates("plain")).toEqual([]);
  });
});
