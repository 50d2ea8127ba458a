// Reads nat.conf: static overlay addresses and port forwards, one pod per line:
//   <pod name> <host octet> [proto:port[,proto:port...]] ...   # comment
// As in the reference (which reads a line with `read NAME IP PORTS` and splits PORTS on commas),
// ports may be separated by commas and/or spaces, and empty items between commas are skipped. Every problem is reported with file, line and
// column. nat.conf is not merged across layers: the caller passes the one file that wins.
import type { ConfigIssue } from "../errors.ts";
import type { NatEntry } from "../settings/types.ts";
import { MAX_EXCERPT_CHARS } from "../settings/limits.ts";
import { isIPv4, parseInteger, show as showValue } from "../settings/values.ts";

/** A short excerpt of offending text: never a whole line of a file mounted here by mistake. */
const show = (s: string): string => showValue(s, MAX_EXCERPT_CHARS);

export interface NatContext {
  /** VXLAN_GATEWAY_FIRST_DYNAMIC_IP; undefined when the settings are invalid (then only 2..254 is checked). */
  firstDynamic?: number;
  /** Where VXLAN_GATEWAY_FIRST_DYNAMIC_IP was set, for messages ("/config/settings.sh:7", "default"). */
  firstDynamicFrom?: string;
}

export interface NatParse {
  entries: NatEntry[];
  issues: ConfigIssue[];
  warnings: ConfigIssue[];
}

interface Token {
  text: string;
  column: number;
}

/** Pod names: hostnames (RFC 1123 labels, dot-separated); compared without regard to case. */
const NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** The line without its comment: '#' starts one at the start of a word, as in sh. */
function stripComment(line: string): string {
  const m = /(^|[\s])#/.exec(line);
  return m ? line.slice(0, m.index + m[1]!.length) : line;
}

function tokens(text: string, re: RegExp, from = 0): Token[] {
  const out: Token[] = [];
  re.lastIndex = from;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push({ text: m[0], column: m.index + 1 });
  return out;
}

export function parseNatConf(text: string, file: string, ctx: NatContext = {}): NatParse {
  const entries: NatEntry[] = [];
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const byName = new Map<string, NatEntry>();
  const byOctet = new Map<number, NatEntry>();
  const byPort = new Map<string, NatEntry>();
  const maxOctet = ctx.firstDynamic !== undefined ? ctx.firstDynamic - 1 : 254;
  const err = (line: number, column: number, message: string): void => void issues.push({ file, line, column, message });

  const lines = text.replace(/^\uFEFF/, "").split("\n");
  lines.forEach((rawLine, index) => {
    const lineNo = index + 1;
    const line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine;
    const content = stripComment(line);
    const [nameTok, octetTok] = tokens(content, /\S+/g) as [Token | undefined, Token | undefined];
    if (!nameTok) return;
    // After the octet: proto:port items separated by commas and/or blanks (the reference turned
    // commas into spaces and split on blanks, so empty items were harmless there, and are here).
    const portToks = octetTok ? tokens(content, /[^\s,]+/g, octetTok.column - 1 + octetTok.text.length) : [];
    let okLine = true;

    if (nameTok.text.length <= 253 && !NAME_RE.test(nameTok.text) && NAME_RE.test(nameTok.text.replaceAll("_", "-"))) {
      // The reference took any word; an underscore only means the entry can never match a pod.
      warnings.push({ file, line: lineNo, column: nameTok.column, message: `${show(nameTok.text)} contains '_', which pod names cannot: this entry never matches a pod (its octet stays reserved)` });
    } else if (nameTok.text.length > 253 || !NAME_RE.test(nameTok.text)) {
      err(lineNo, nameTok.column, `${show(nameTok.text)} is not a pod name (letters, digits, '-' and '.')`);
      okLine = false;
    }
    let octet: number | undefined;
    if (!octetTok) {
      err(lineNo, nameTok.column + nameTok.text.length, `missing host octet after ${show(nameTok.text)} (line format: name octet [proto:port,...])`);
      okLine = false;
    } else {
      octet = parseOctet(octetTok, lineNo, maxOctet, ctx, err);
      if (octet === undefined) okLine = false;
    }

    const ports: NatEntry["ports"] = [];
    const seen = new Set<string>(); // a Set: a line may hold a great many items
    for (const tok of portToks) {
      const p = parsePortItem(tok.text);
      if (typeof p === "string") {
        err(lineNo, tok.column, p);
        okLine = false;
      } else if (seen.has(`${p.proto}:${p.port}`)) {
        warnings.push({ file, line: lineNo, column: tok.column, message: `${p.proto}:${p.port} is listed twice for ${nameTok.text}; using it once` });
      } else {
        seen.add(`${p.proto}:${p.port}`);
        ports.push(p);
      }
    }
    if (!okLine || octet === undefined) return;

    const entry: NatEntry = { name: nameTok.text, octet, ports, file, line: lineNo };
    let dup = false;
    const sameName = byName.get(nameTok.text.toLowerCase());
    if (sameName) {
      err(lineNo, nameTok.column, `duplicate name ${show(nameTok.text)} (first at line ${sameName.line})`);
      dup = true;
    }
    const sameOctet = byOctet.get(octet);
    if (sameOctet) {
      err(lineNo, octetTok!.column, `octet ${octet} is already given to ${show(sameOctet.name)} (line ${sameOctet.line})`);
      dup = true;
    }
    for (const p of ports) {
      const other = byPort.get(`${p.proto}:${p.port}`);
      if (other) {
        err(lineNo, portToks[0]!.column, `${p.proto}:${p.port} is already forwarded to ${show(other.name)} (line ${other.line}); a port can reach one pod only`);
        dup = true;
      }
    }
    if (dup) return;
    byName.set(entry.name.toLowerCase(), entry);
    byOctet.set(octet, entry);
    for (const p of ports) byPort.set(`${p.proto}:${p.port}`, entry);
    entries.push(entry);
  });
  return { entries, issues, warnings };
}

function parseOctet(
  tok: Token,
  line: number,
  maxOctet: number,
  ctx: NatContext,
  err: (line: number, column: number, message: string) => void,
): number | undefined {
  if (isIPv4(tok.text)) {
    err(line, tok.column, `${show(tok.text)}: write only the host octet inside VXLAN_IP_NETWORK (for example ${tok.text.split(".")[3]})`);
    return undefined;
  }
  const n = parseInteger(tok.text, 0, 255);
  if (!n.ok) {
    err(line, tok.column, `host octet ${n.error}`);
    return undefined;
  }
  const o = n.value;
  if (o === 0 || o === 1) {
    err(line, tok.column, `octet ${o} is reserved (${o === 0 ? "the network address" : "the gateway"}); static octets are 2..${maxOctet}`);
    return undefined;
  }
  if (o > maxOctet) {
    const why =
      ctx.firstDynamic !== undefined
        ? `is in the DHCP range: static octets must be below VXLAN_GATEWAY_FIRST_DYNAMIC_IP=${ctx.firstDynamic}${ctx.firstDynamicFrom ? ` (set at ${ctx.firstDynamicFrom})` : ""}, so 2..${maxOctet}`
        : `is out of range 2..254`;
    err(line, tok.column, `octet ${o} ${why}`);
    return undefined;
  }
  return o;
}

/** "tcp:80" → {proto, port}; a message saying what is wrong otherwise. */
function parsePortItem(item: string): NatEntry["ports"][number] | string {
  const colon = item.indexOf(":");
  if (colon < 0) return `expected proto:port (for example tcp:${/^[0-9]{1,5}$/.test(item) ? item : "80"}), found ${show(item)}`;
  const proto = item.slice(0, colon).toLowerCase();
  const portText = item.slice(colon + 1);
  if (proto !== "tcp" && proto !== "udp") return `protocol ${show(item.slice(0, colon))} is not tcp or udp`;
  if (/^[0-9]+[-:][0-9]+$/.test(portText)) return `${show(item)}: port ranges are not supported; list each port`;
  const p = parseInteger(portText, 1, 65535);
  if (!p.ok) return `port ${p.error}`;
  return { proto, port: p.value };
}
