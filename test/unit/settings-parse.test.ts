// The settings.sh reader: every accepted syntax, the chart's file, the shipped defaults with
// the webhook's environment, a corpus of bad inputs with exact locations, and property tests
// for the chart's quoting style.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { formatIssue } from "../../src/core/errors.ts";
import { parseSettings, type ParseScope } from "../../src/core/settings/parse.ts";

const REPO = join(import.meta.dir, "..", "..");
const F = "s.sh";
/** The accepted-syntax cases, also replayed through dash and bash below. */
const ACCEPTED: [string, string][] = [];

/** key=value pairs of a text that must parse without issues. */
function values(text: string, scope: ParseScope = {}): [string, string][] {
  const r = parseSettings(text, F, scope);
  expect(r.issues.map(formatIssue)).toEqual([]);
  return r.assignments.map((a) => [a.key, a.value]);
}

describe("accepted syntax", () => {
  const env = { E: "e", EMPTY: "", SP: "a b" };
  const cases: [string, string, [string, string][]][] = [
    ["bare value", "A=x", [["A", "x"]]],
    ["double quotes", 'A="x y"', [["A", "x y"]]],
    ["single quotes keep $ and backslash", "A='x $y \\n'", [["A", "x $y \\n"]]],
    ["export", "export A=x", [["A", "x"]]],
    ["export of a bare name assigns nothing", "export A", []],
    ["export of several", "export A=1 B B=2", [["A", "1"], ["B", "2"]]],
    ["empty value", "A=", [["A", ""]]],
    ["empty double quotes", 'A=""', [["A", ""]]],
    ["empty single quotes", "A=''", [["A", ""]]],
    ["concatenation", `A="a"'b'c"d"`, [["A", "abcd"]]],
    ["escaped space", "A=a\\ b", [["A", "a b"]]],
    ["unquoted backslash takes any char", "A=a\\nb\\$c", [["A", "anb$c"]]],
    ["dq escapes \\\"", 'A="a\\"b"', [["A", 'a"b']]],
    ["dq escapes \\\\", 'A="a\\\\b"', [["A", "a\\b"]]],
    ["dq escapes \\$ and \\`", 'A="\\$x\\`"', [["A", "$x`"]]],
    ["dq keeps other backslashes", 'A="a\\nb\\ c"', [["A", "a\\nb\\ c"]]],
    ["trailing comment", "A=x # comment", [["A", "x"]]],
    ["trailing comment after quotes", 'A="x y"   # comment', [["A", "x y"]]],
    ["'#' inside a word is literal", "A=x#y", [["A", "x#y"]]],
    ["'#' right after '=' is literal", "A=#x", [["A", "#x"]]],
    ["leading blanks", "  \tA=x", [["A", "x"]]],
    ["two assignments on a line", "A=1 B=2", [["A", "1"], ["B", "2"]]],
    ["later line sees earlier key", "A=1\nB=$A", [["A", "1"], ["B", "1"]]],
    ["same line sees earlier key", "A=1 B=$A", [["A", "1"], ["B", "1"]]],
    ["$NAME from env", "A=$E", [["A", "e"]]],
    ["${NAME}", "A=${E}x", [["A", "ex"]]],
    ["$NAME takes the longest name", "A=$Ex", [["A", ""]]],
    ["$NAME stops at a dot", "A=$E.x", [["A", "e.x"]]],
    ["expansion inside dq", 'A="[$E]"', [["A", "[e]"]]],
    ["expansion keeps spaces (no word splitting)", "A=$SP", [["A", "a b"]]],
    ["unset expands to empty", "A=$UNSET", [["A", ""]]],
    [":- on unset", "A=${U:-d}", [["A", "d"]]],
    [":- on set", "A=${E:-d}", [["A", "e"]]],
    [":- on empty", "A=${EMPTY:-d}", [["A", "d"]]],
    ["- on empty keeps empty", "A=${EMPTY-d}", [["A", ""]]],
    ["- on unset", "A=${U-d}", [["A", "d"]]],
    [":+ on set", "A=${E:+w}", [["A", "w"]]],
    [":+ on unset", "A=${U:+w}", [["A", ""]]],
    ["+ on empty", "A=${EMPTY+w}", [["A", "w"]]],
    ["default word with spaces in dq", 'A="${U:-a b}"', [["A", "a b"]]],
    ["quoted default word", 'A=${U:-"a b"}', [["A", "a b"]]],
    ["single-quoted default word", "A=${U:-'x  y'}", [["A", "x  y"]]],
    ["nested expansion in default", "A=${U:-${E}-$E}", [["A", "e-e"]]],
    ["default from an earlier key", "K=k\nA=${U:-$K}", [["K", "k"], ["A", "k"]]],
    ["keys shadow the environment", "E=mine\nA=$E", [["E", "mine"], ["A", "mine"]]],
    ["lone $ is literal", 'A=a$ B="$" C=$/x', [["A", "a$"], ["B", "$"], ["C", "$/x"]]],
    ["$' inside dq is literal", `A="$'"`, [["A", "$'"]]],
    ["dq spanning lines", 'A="one\ntwo"\nB=2', [["A", "one\ntwo"], ["B", "2"]]],
    ["sq spanning lines", "A='one\ntwo'", [["A", "one\ntwo"]]],
    ["backslash-newline joins a word", "A=abc\\\ndef", [["A", "abcdef"]]],
    ["backslash-newline inside dq", 'A="abc\\\ndef"', [["A", "abcdef"]]],
    ["backslash-newline between words", "A=1 \\\n  B=2", [["A", "1"], ["B", "2"]]],
    ["glob and brace characters are literal", "A=x* B=[x] C={a,b} D=a:b", [["A", "x*"], ["B", "[x]"], ["C", "{a,b}"], ["D", "a:b"]]],
    ["quoted tilde", 'A="~/x" B=a~', [["A", "~/x"], ["B", "a~"]]],
    ["unicode", 'A="héllo ✓ 🚀"', [["A", "héllo ✓ 🚀"]]],
    ["shebang, comments, blank lines", "#!/bin/sh\n\n# c\n   # indented\nA=1\n\n", [["A", "1"]]],
    ["no final newline", "A=1", [["A", "1"]]],
    ["export followed by a comment", "export # nothing", []],
  ];
  for (const [name, text, expected] of cases) test(name, () => expect(values(text, { env })).toEqual(expected));
  ACCEPTED.push(...cases.map(([name, text]) => [name, text] as [string, string]));

  test("line and column of each assignment", () => {
    const r = parseSettings("# c\n  A=1\nexport B=2 C=3\n", F);
    expect(r.assignments.map((a) => [a.key, a.line, a.column, a.exported])).toEqual([
      ["A", 2, 3, false],
      ["B", 3, 8, true],
      ["C", 3, 12, true],
    ]);
  });

  test("expansions are recorded with where they came from", () => {
    const r = parseSettings('K=1\nA="$K $E $U ${V:-x}"', F, { env: { E: "e" } });
    expect(r.assignments[1]!.refs).toEqual([
      { name: "K", from: "key" },
      { name: "E", from: "env" },
      { name: "U", from: "unset" },
      { name: "V", from: "unset", op: ":-" },
    ]);
  });

  test("keys of lower layers are in scope and shadow the environment", () => {
    expect(values('VPN_LOCAL_CIDRS="$VPN_LOCAL_CIDRS 172.20.0.0/16"', { vars: { VPN_LOCAL_CIDRS: "10.0.0.0/8" }, env: { VPN_LOCAL_CIDRS: "env" } })).toEqual([
      ["VPN_LOCAL_CIDRS", "10.0.0.0/8 172.20.0.0/16"],
    ]);
  });

  test("CRLF line endings are read as LF, with one warning", () => {
    const r = parseSettings('#!/bin/sh\r\nA=1\r\nB="x y"\r\nC=z # c\r\n', F);
    expect(r.issues).toEqual([]);
    expect(r.assignments.map((a) => [a.key, a.value])).toEqual([["A", "1"], ["B", "x y"], ["C", "z"]]);
    expect(r.warnings.map(formatIssue)).toEqual(["s.sh:1:10: Windows line endings (CRLF): read as plain newlines"]);
  });

  test("a byte-order mark is skipped", () => {
    expect(values("\uFEFF#!/bin/sh\nA=1")).toEqual([["A", "1"]]);
  });

  test("setting a key twice warns, building on it does not", () => {
    const r = parseSettings('A=1\nB=1\nA=2\nB="$B 2"', F);
    expect(r.warnings.map(formatIssue)).toEqual(["s.sh:3:1: A is set again (first at line 1); the later value wins"]);
  });
});

describe("agrees with real shells (dash and bash source the same text)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pg-parse-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;

  /** Final value of each key after `. file` in a real shell, with exactly `env` as environment. */
  function shellValues(shell: string, text: string, keys: string[], env: Record<string, string>): Record<string, string> {
    if (!existsSync(shell)) throw new Error(`${shell} is missing: install it (apt-get install ${shell.split("/").pop()}) to run this test`);
    const file = join(dir, `s${n++}.sh`);
    writeFileSync(file, text);
    const script = '. "$1" >/dev/null 2>&1; shift; for k in "$@"; do eval "v=\\${$k}"; printf "%s\\0" "$v"; done';
    const r = Bun.spawnSync([shell, "-c", script, "sh", file, ...keys], { env: { PATH: "/usr/bin:/bin", ...env } });
    if (r.exitCode !== 0) throw new Error(`${shell} failed on ${JSON.stringify(text)}: ${r.stderr.toString()}`);
    const vals = r.stdout.toString().split("\0");
    return Object.fromEntries(keys.map((k, i) => [k, vals[i]!]));
  }

  function ours(text: string, env: Record<string, string>): Record<string, string> {
    const r = parseSettings(text, F, { env });
    expect(r.issues).toEqual([]);
    return Object.fromEntries(r.assignments.map((a) => [a.key, a.value]));
  }

  const env = { E: "e", EMPTY: "", SP: "a b" };
  for (const [name, text] of ACCEPTED) {
    test(name, () => {
      const mine = ours(text, env);
      const keys = Object.keys(mine);
      if (keys.length === 0) return;
      expect(shellValues("/usr/bin/dash", text, keys, env)).toEqual(mine);
      expect(shellValues("/usr/bin/bash", text, keys, env)).toEqual(mine);
    });
  }

  test("random strings in the chart's quoting: dash reads what we read", () => {
    const chartQuote = (s: string): string => '"' + s.replace(/[\\"$`]/g, (c) => "\\" + c) + '"';
    // No NUL (a shell variable cannot hold one), whole code points (the file is UTF-8).
    const str = fc.oneof(fc.string({ unit: "grapheme", maxLength: 30 }), fc.string({ unit: fc.constantFrom(..."\\\"'$`#{}()\n\t ;|&<>~=ab"), maxLength: 30 }));
    fc.assert(
      fc.property(str, str, (a, b) => {
        const text = `A=${chartQuote(a)}\nB='${b.replaceAll("'", "'\\''")}'\nC="$A"$B\n`;
        const mine = ours(text, {});
        expect(mine).toEqual({ A: a, B: b, C: a + b });
        expect(shellValues("/usr/bin/dash", text, ["A", "B", "C"], {})).toEqual(mine);
      }),
      { numRuns: 60 },
    );
  });
});

describe("real files", () => {
  test("the Helm chart's rendered settings.sh", () => {
    const text = readFileSync(join(REPO, "test/fixtures/config-chart/settings.sh"), "utf8");
    const r = parseSettings(text, "/config/settings.sh");
    expect(r.issues).toEqual([]);
    expect(r.warnings).toEqual([]);
    const keys = r.assignments.map((a) => a.key);
    expect(keys).toEqual([...keys].sort());
    const byKey = Object.fromEntries(r.assignments.map((a) => [a.key, a.value]));
    expect(byKey).toMatchObject({
      GATEWAY_NAME: "pod-gateway.vpn-gateway.svc.cluster.local",
      VPN_BLOCK_OTHER_TRAFFIC: "true",
      VXLAN_ID: "43",
      SNAT_IP: "",
      NOT_ROUTED_TO_GATEWAY_CIDRS: "10.0.0.0/8 192.168.0.0/16",
    });
    expect(r.assignments.find((a) => a.key === "DNS_LOCAL_CIDRS")).toMatchObject({ line: 3, column: 1, file: "/config/settings.sh" });
  });

  test("the shipped defaults with the webhook's environment ($gateway, $K8S_DNS_ips)", () => {
    const text = readFileSync(join(REPO, "config/settings.sh"), "utf8");
    const r = parseSettings(text, "builtin:settings.sh", { env: { gateway: "pod-gateway.vpn.svc.cluster.local", K8S_DNS_ips: "10.96.0.10 fd00:10:96::a" } });
    expect(r.issues).toEqual([]);
    expect(r.warnings).toEqual([]);
    const byKey = Object.fromEntries(r.assignments.map((a) => [a.key, a.value]));
    expect(byKey).toMatchObject({
      GATEWAY_NAME: "pod-gateway.vpn.svc.cluster.local",
      K8S_DNS_IPS: "10.96.0.10 fd00:10:96::a",
      NOT_ROUTED_TO_GATEWAY_CIDRS: "",
      VXLAN_ID: "42",
      VXLAN_PORT: "0",
      VXLAN_IP_NETWORK: "172.16.0",
      VXLAN_GATEWAY_FIRST_DYNAMIC_IP: "20",
      VPN_INTERFACE: "tun0",
      VPN_BLOCK_OTHER_TRAFFIC: "true",
      VPN_TRAFFIC_PORT: "443",
      VPN_LOCAL_CIDRS: "10.0.0.0/8 192.168.0.0/16",
      DNS_LOCAL_CIDRS: "local",
      DNS_LOCAL_SERVER: "",
      RESOLV_CONF_COPY: "/etc/resolv_copy.conf",
      CONNECTION_RETRY_COUNT: "1",
      GATEWAY_ENABLE_DNSSEC: "true",
      IPTABLES_NFT: "no",
      SNAT_IP: "",
      VPN_INTERFACE_MTU: "",
    });
    expect(r.assignments.find((a) => a.key === "GATEWAY_NAME")!.refs).toEqual([{ name: "gateway", from: "env" }]);
  });

  test("the hand-written fixture", () => {
    const text = readFileSync(join(REPO, "test/fixtures/config-handwritten/settings.sh"), "utf8");
    const r = parseSettings(text, "h.sh", { env: { K8S_DNS_ips: "10.96.0.10", CLUSTER_DNS: "10.96.0.10" }, vars: { VPN_LOCAL_CIDRS: "10.0.0.0/8" } });
    expect(r.issues).toEqual([]);
    expect(Object.fromEntries(r.assignments.map((a) => [a.key, a.value]))).toEqual({
      VPN_INTERFACE: "tun0",
      VPN_BLOCK_OTHER_TRAFFIC: "yes",
      VPN_TRAFFIC_PORT: "1194, 443",
      VPN_LOCAL_CIDRS: "10.0.0.0/8 172.20.0.0/16",
      GATEWAY_NAME: "pod-gateway.vpn.svc.cluster.local",
      K8S_DNS_IPS: "10.96.0.10",
      DNS_LOCAL_SERVER: "10.96.0.10",
      VXLAN_IP_NETWORK: "10.242.0",
      CLIENT_PROBE_INTERVAL: "0.5",
      SIDECAR_EXIT_WHEN_POD_DONE: "true",
    });
  });
});

describe("rejected input: exact location and message", () => {
  // [text, "line:column", message fragment]
  const corpus: [string, string, string][] = [
    ["A=$(ls)", "1:3", "command substitution $(...) is not supported"],
    ["A=`ls`", "1:3", "backticks is not supported"],
    ['A="x$(ls)"', "1:5", "command substitution"],
    ['A="x`ls`"', "1:5", "backticks"],
    ["A=$((1+2))", "1:3", "arithmetic expansion"],
    ['if [ -n "$X" ]; then A=1; fi', "1:1", "shell syntax 'if' is not supported"],
    ["for x in 1 2; do A=$x; done", "1:1", "shell syntax 'for'"],
    ["while true; do :; done", "1:1", "shell syntax 'while'"],
    ["case $A in", "1:1", "shell syntax 'case'"],
    ["{ A=1; }", "1:1", "shell syntax '{'"],
    ["f() { A=1; }", "1:2", "function definitions are not supported"],
    ["A=1 | tee x", "1:5", "pipe '|'"],
    ["A=1 > /tmp/x", "1:5", "redirection '>'"],
    ["A=x<y", "1:4", "redirection '<'"],
    ["A=1; B=2", "1:4", "';' (several commands on a line)"],
    ["A=1 && B=2", "1:5", "'&&' is not supported"],
    ["A=1 || B=2", "1:5", "'||' is not supported"],
    ["A=1 &", "1:5", "'&' (background job)"],
    ['A="abc', "1:3", 'unterminated double quote (no closing ")'],
    ["A='abc", "1:3", "unterminated single quote"],
    ["1A=x", "1:1", 'invalid variable name "1A"'],
    ["MY-KEY=x", "1:1", 'invalid variable name "MY-KEY"'],
    ["=x", "1:1", "missing variable name before '='"],
    ["A = 1", "1:2", "A: no spaces are allowed around '=' (write A=value)"],
    ["A =1", "1:2", "no spaces are allowed around '='"],
    ["A= 1", "1:4", "A: unexpected \"1\" after 'A=': no spaces are allowed after '='"],
    ["A=a b", "1:5", 'A: unexpected "b" after the value: quote values that contain spaces (A="a b")'],
    ["VPN_LOCAL_CIDRS=10.0.0.0/8 192.168.0.0/16", "1:28", 'unexpected "192.168.0.0/16"'],
    ['A="x"# comment', "1:8", "a '#' starts a comment only after a space"],
    ["echo hello", "1:1", 'expected KEY=value, found "echo": commands are not run'],
    ["[ -f x ] && A=1", "1:1", 'expected KEY=value, found "["'],
    ["source /etc/x", "1:1", "'source' (reading another file) is not supported"],
    [". /etc/x", "1:1", "'.' (reading another file)"],
    ["A=${B:=x}", "1:3", "${B:=...} is not supported (it assigns or aborts)"],
    ["A=${B:?x}", "1:3", "${B:?...} is not supported"],
    ["A=${B=x}", "1:3", "${B=...} is not supported"],
    ["A=${#B}", "1:3", "${#NAME} (length) is not supported"],
    ["A=${B%x}", "1:3", "(pattern, substring or case operations)"],
    ["A=${B:1:2}", "1:3", "(pattern, substring or case operations)"],
    ["A=${!B}", "1:3", "(indirection)"],
    ["A=${}", "1:3", "empty ${}"],
    ["A=${B", "1:3", "unterminated ${B"],
    ["A=${B:-x", "1:3", "unterminated ${"],
    ["A=$1", "1:3", "special parameter $1"],
    ['A="$@"', "1:4", "special parameter $@"],
    ["A=${1}", "1:3", "special parameter ${1}"],
    ["A=$'x'", "1:3", "ANSI-C quoting"],
    ['A=$"x"', "1:3", "locale translation"],
    ["A=(a b)", "1:3", "arrays are not supported"],
    ["A+=x", "1:2", "'+=' is not supported"],
    ["A[0]=x", "1:2", "arrays are not supported"],
    ["export -n A", "1:8", "export options"],
    ["A=~/x", "1:3", "tilde expansion"],
    ["A=/a:~/x", "1:6", "tilde expansion"],
    ['A="x" B', "1:7", 'unexpected "B" after the value'],
    ["export A=1 2B=3", "1:12", 'invalid variable name "2B"'],
    ['A="${B:-`x`}"', "1:9", "backticks"],
    ["A=1\nB=2\n  C=$(x)", "3:5", "command substitution"],
    ["A=1\r\nB=`x`\r\n", "2:3", "backticks"],
  ];
  for (const [text, loc, fragment] of corpus) {
    test(JSON.stringify(text), () => {
      const r = parseSettings(text, "bad.sh");
      expect(r.issues).toHaveLength(1);
      const msg = formatIssue(r.issues[0]!);
      expect(msg.startsWith(`bad.sh:${loc}: `)).toBe(true);
      expect(msg).toContain(fragment);
      // a statement with an error assigns nothing
      expect(r.assignments.filter((a) => a.line === Number(loc.split(":")[0]))).toEqual([]);
    });
  }

  test(`the corpus has at least 30 cases (${corpus.length})`, () => expect(corpus.length).toBeGreaterThanOrEqual(30));

  test("every error of a file is reported at once, and good lines still parse", () => {
    const text = ["#!/bin/sh", "A=1", "B=$(hostname)", "C = 3", "D=ok", "if true; then", "E=`x`", 'F="multi', 'line $(x)"', "G=ok", "H='open"].join("\n");
    const r = parseSettings(text, "/config/settings.sh");
    expect(r.issues.map(formatIssue)).toEqual([
      "/config/settings.sh:3:3: B: command substitution $(...) is not supported: settings.sh is read as data, never run",
      "/config/settings.sh:4:2: C: no spaces are allowed around '=' (write C=value)",
      "/config/settings.sh:6:1: shell syntax 'if' is not supported: settings.sh is read as data, only KEY=value lines",
      "/config/settings.sh:7:3: E: command substitution with backticks is not supported: settings.sh is read as data, never run",
      "/config/settings.sh:9:6: F: command substitution $(...) is not supported: settings.sh is read as data, never run",
      "/config/settings.sh:11:3: H: unterminated single quote (no closing ')",
    ]);
    expect(r.assignments.map((a) => a.key)).toEqual(["A", "D", "G"]);
  });

  test("an unterminated quote points back at a string that spans lines", () => {
    const r = parseSettings('A="abc\nB="def"\nC=1\n', F);
    expect(r.issues.map(formatIssue)).toEqual([
      's.sh:2:7: A: unterminated double quote (no closing "); the quoted string opened at 1:3 spans 2 lines: is its closing quote missing?',
    ]);
    expect(r.assignments.map((a) => a.key)).toEqual(["C"]);
    // a finished multi-line string of an earlier statement is not blamed
    const r2 = parseSettings('A="one\ntwo"\nB="x\n', F);
    expect(r2.issues.map(formatIssue)).toEqual(['s.sh:3:3: B: unterminated double quote (no closing ")']);
  });

  test("nothing is ever executed", () => {
    const marker = `/tmp/pod-gateway-parse-test-${process.pid}`;
    const r = parseSettings(`A=$(touch ${marker})\nB=\`touch ${marker}\`\ntouch ${marker}`, F);
    expect(r.issues).toHaveLength(3);
    expect(existsSync(marker)).toBe(false);
  });
});

describe("properties", () => {
  // The chart writes KEY="{{ value }}" with \ " $ ` escaped by a backslash.
  const chartQuote = (s: string): string => '"' + s.replace(/[\\"$`]/g, (c) => "\\" + c) + '"';
  const anyString = fc.oneof(fc.string({ unit: "binary", maxLength: 60 }), fc.string({ unit: fc.constantFrom(..."\\\"'$`#{}()\n\r\t ;|&<>~=:-+ab"), maxLength: 40 }));

  test("any string in the chart's double-quote style reads back unchanged", () => {
    fc.assert(
      fc.property(anyString, (s) => {
        const r = parseSettings(`#!/bin/sh\n# Generated by pod-gateway\nKEY=${chartQuote(s)}\nNEXT="1"\n`, F);
        expect(r.issues).toEqual([]);
        expect(r.assignments.map((a) => [a.key, a.value])).toEqual([["KEY", s], ["NEXT", "1"]]);
      }),
      { numRuns: 400 },
    );
  });

  test("any string without ' in single quotes reads back unchanged", () => {
    fc.assert(
      fc.property(anyString.map((s) => s.replaceAll("'", "")), (s) => {
        const r = parseSettings(`KEY='${s}' # c\n`, F);
        expect(r.issues).toEqual([]);
        expect(r.assignments.map((a) => a.value)).toEqual([s]);
      }),
      { numRuns: 300 },
    );
  });

  test("any string in sh's single-quote style ('\\'' for a quote) reads back unchanged", () => {
    fc.assert(
      fc.property(anyString, (s) => {
        const r = parseSettings(`export KEY='${s.replaceAll("'", "'\\''")}'`, F);
        expect(r.issues).toEqual([]);
        expect(r.assignments.map((a) => a.value)).toEqual([s]);
      }),
      { numRuns: 300 },
    );
  });

  test("a chart-rendered file of any keys and values reads back in order", () => {
    const key = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,20}$/);
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(key, anyString), { selector: ([k]) => k, maxLength: 12 }), (pairs) => {
        const sorted = [...pairs].sort(([a], [b]) => (a < b ? -1 : 1));
        const text = ["#!/bin/sh", "# Generated by pod-gateway", ...sorted.map(([k, v]) => `${k}=${chartQuote(v)}`)].join("\n") + "\n";
        const r = parseSettings(text, F);
        expect(r.issues).toEqual([]);
        expect(r.assignments.map((a) => [a.key, a.value])).toEqual(sorted);
        // each assignment starts on its own line, after any newlines inside earlier values
        const lines: number[] = [];
        let line = 3;
        for (const [, v] of sorted) {
          lines.push(line);
          line += 1 + (v.match(/\n/g)?.length ?? 0);
        }
        expect(r.assignments.map((a) => a.line)).toEqual(lines);
      }),
      { numRuns: 200 },
    );
  });

  test("any input gives a result (never throws) with locations inside the text", () => {
    const shellish = fc.string({ unit: fc.constantFrom(..."AB_=$'\"`\\#{}()[]:-+?%! \t\n\r;|&<>~x1."), maxLength: 80 });
    fc.assert(
      fc.property(shellish, (text) => {
        const r = parseSettings(text, F, { env: { A: "a" } });
        const lines = text.split("\n");
        for (const i of [...r.issues, ...r.warnings]) {
          expect(i.line).toBeGreaterThanOrEqual(1);
          expect(i.line!).toBeLessThanOrEqual(lines.length);
          expect(i.column).toBeGreaterThanOrEqual(1);
          expect(i.column!).toBeLessThanOrEqual(lines[i.line! - 1]!.length + 1);
        }
        for (const a of r.assignments) expect(/^[A-Za-z_][A-Za-z0-9_]*$/.test(a.key)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});
