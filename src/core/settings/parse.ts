// Reads a settings.sh as data: the part of POSIX sh assignment syntax that real files use (the
// Helm chart's `KEY="value"` lines, hand-written files with export and single quotes), with
// $VAR / ${VAR} / ${VAR:-word} expanded from a scope. Nothing is ever executed: every construct
// outside that subset is an error at file:line:column, and all errors of a file are reported.
//
// Accepted, with sh's meaning:
//   #!/bin/sh and # comments (a '#' starts a comment only at the start of a word), blank lines
//   KEY=value  KEY="value"  KEY='value'  export KEY=value  export KEY  A=1 B=2 (several per line)
//   concatenation KEY="a"'b'c, backslash escapes (unquoted: any char; in "...": \$ \` \" \\ and
//   newline), backslash-newline continuation, quoted strings spanning lines
//   $NAME ${NAME} ${NAME:-word} ${NAME-word} ${NAME:+word} ${NAME+word}
// Expansion looks up keys assigned earlier (this file, then lower layers) before the environment;
// an unset name expands to "" as in sh and is recorded so the caller can warn about it.
//
// Bounded for any input: one pass over the text (every lookup is a Map or a binary search), each
// expanded value and the file's total capped (limits.ts), ${...} nesting capped, and names are
// looked up in Maps and own properties only, so `__proto__` or `constructor` is just a name.
import type { ConfigIssue } from "../errors.ts";
import { MAX_EXCERPT_CHARS, MAX_EXPANDED_TOTAL_CHARS, MAX_EXPANSION_DEPTH, MAX_VALUE_CHARS } from "./limits.ts";
import { show } from "./values.ts";

export interface ExpansionRef {
  name: string;
  /** Where the value came from: a key set earlier (in this or a lower layer), the environment, or unset. */
  from: "key" | "env" | "unset";
  /** The `${NAME<op>word}` operator when there was one (":-", "-", ":+", "+"). */
  op?: string;
}

export interface Assignment {
  key: string;
  value: string;
  file: string;
  line: number;
  column: number;
  exported: boolean;
  /** Expansions that produced the value, in order. */
  refs: ExpansionRef[];
}

export interface SettingsParse {
  assignments: Assignment[];
  issues: ConfigIssue[];
  warnings: ConfigIssue[];
}

export interface ParseScope {
  /** The process environment (e.g. `gateway`, `K8S_DNS_ips` from the admission webhook). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Keys already set by lower layers; they shadow the environment, as in a sourced script. */
  vars?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
}

/** A short quoted excerpt of offending text for a message (never a whole line of a mounted secret). */
const excerpt = (s: string): string => show(s, MAX_EXCERPT_CHARS);

/** The value of `name` in the environment: own properties only (`__proto__` is not inherited). */
function envValue(env: ParseScope["env"], name: string): string | undefined {
  if (!env || !Object.hasOwn(env, name)) return undefined;
  const v = env[name];
  return typeof v === "string" ? v : undefined;
}

/** A parse failure at `at`; parsing resumes at the end of the line holding `resume` (default `at`). */
class Fail {
  constructor(
    readonly at: number,
    readonly message: string,
    readonly resume?: number,
    readonly key?: string,
  ) {}
}

const KEYWORDS = new Set(["if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac", "in", "function", "select", "time", "{", "}", "!", "[[", "]]"]);
const META = new Set([";", "&", "|", "<", ">", "(", ")"]);
const QUOTE_HINT = " (quote the value if it is meant literally)";

/** A key for a message: long names (a hostile file's) are cut. */
function shortKey(name: string): string {
  return name.length > 40 ? name.slice(0, 37) + "..." : name;
}

const isNameStart = (c: string | undefined): boolean => c !== undefined && /[A-Za-z_]/.test(c);
const isNameChar = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9_]/.test(c);

export function parseSettings(text: string, file: string, scope: ParseScope = {}): SettingsParse {
  return new Parser(text, file, scope).run();
}

class Parser {
  private i = 0;
  private readonly n: number;
  private readonly lineStarts: number[] = [0];
  private readonly vars: Map<string, string>;
  /** The latest assignment of each key (for "set again" warnings without a scan). */
  private readonly lastOf = new Map<string, Assignment>();
  /** Keys the current statement assigned and their values before it, to undo it on an error. */
  private undo: [string, string | undefined, Assignment | undefined][] = [];
  /** Characters of all values so far (MAX_EXPANDED_TOTAL_CHARS). */
  private total = 0;
  /** ${...} nesting depth right now (MAX_EXPANSION_DEPTH). */
  private depth = 0;
  private readonly out: SettingsParse = { assignments: [], issues: [], warnings: [] };
  /** Opening offset of the latest quoted string of this statement that spanned lines (for unterminated-quote hints). */
  private lastMultiline: number | undefined;

  constructor(
    private readonly src: string,
    private readonly file: string,
    private readonly scope: ParseScope,
  ) {
    this.n = src.length;
    for (let k = 0; k < src.length; k++) if (src[k] === "\n") this.lineStarts.push(k + 1);
    const v = scope.vars;
    this.vars = v instanceof Map ? new Map(v) : new Map(Object.entries((v ?? {}) as Record<string, string>));
  }

  run(): SettingsParse {
    const crlf = this.src.indexOf("\r\n");
    if (crlf >= 0) this.warn(crlf, "Windows line endings (CRLF): read as plain newlines");
    if (this.src.startsWith("\uFEFF")) this.i = 1;
    while (this.i < this.n) {
      this.skipBlanks();
      if (this.i >= this.n) break;
      if (this.isEol(this.i)) {
        this.i = this.afterEol(this.i);
        continue;
      }
      if (this.src[this.i] === "#") {
        this.i = this.eolOf(this.i);
        continue;
      }
      const mark = this.out.assignments.length;
      this.undo = [];
      this.depth = 0;
      try {
        this.statement();
      } catch (e) {
        if (!(e instanceof Fail)) throw e;
        // A statement with an error assigns nothing, even the parts before the error.
        for (const a of this.out.assignments.slice(mark)) this.total -= a.value.length;
        this.out.assignments.length = mark;
        for (const [k, before, last] of this.undo.reverse()) {
          if (before === undefined) this.vars.delete(k);
          else this.vars.set(k, before);
          if (last === undefined) this.lastOf.delete(k);
          else this.lastOf.set(k, last);
        }
        this.error(e.at, e.message, e.key);
        this.i = this.skipRest(e.resume ?? e.at);
      }
    }
    return this.out;
  }

  // ---- positions ----------------------------------------------------------------------------

  private loc(offset: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - this.lineStarts[lo]! + 1 };
  }

  private where(offset: number): string {
    const l = this.loc(offset);
    return `${l.line}:${l.column}`;
  }

  private error(at: number, message: string, key?: string): void {
    this.out.issues.push({ file: this.file, ...this.loc(at), ...(key ? { key: shortKey(key) } : {}), message });
  }

  private warn(at: number, message: string): void {
    this.out.warnings.push({ file: this.file, ...this.loc(at), message });
  }

  /** An unquoted line end: LF, CRLF (files edited on Windows), or the end of the text. */
  private isEol(k: number): boolean {
    return k >= this.n || this.src[k] === "\n" || (this.src[k] === "\r" && this.src[k + 1] === "\n");
  }

  private afterEol(k: number): number {
    if (k >= this.n) return k;
    return this.src[k] === "\r" ? k + 2 : k + 1;
  }

  /** Offset of the line end at or after k ("\n", or the "\r" of "\r\n"; n at the end). */
  private eolOf(k: number): number {
    // indexOf, not a loop over isEol: comments are most of settings.sh, and a client-init reads
    // the defaults' and the ConfigMap's before anything else happens (start-up time).
    if (k >= this.n) return k;
    const nl = this.src.indexOf("\n", k);
    if (nl < 0) return this.n;
    return nl > k && this.src[nl - 1] === "\r" ? nl - 1 : nl;
  }

  /** Backslash-newline (a line continuation) at k: its length, else 0. */
  private continuation(k: number): number {
    if (this.src[k] !== "\\") return 0;
    if (this.src[k + 1] === "\n") return 2;
    if (this.src[k + 1] === "\r" && this.src[k + 2] === "\n") return 3;
    return 0;
  }

  private skipBlanks(): void {
    for (;;) {
      const c = this.src[this.i];
      if (c === " " || c === "\t") this.i++;
      else if (this.continuation(this.i)) this.i += this.continuation(this.i);
      else return;
    }
  }

  /**
   * After an error: the end of the statement that holds offset k, stepping over quoted strings
   * that close (so a quote spanning lines does not produce a cascade of errors).
   */
  private skipRest(k: number): number {
    while (!this.isEol(k)) {
      const c = this.src[k];
      if (c === "\\") k += 2;
      else if (c === "'" || c === '"') {
        const close = c === "'" ? this.src.indexOf("'", k + 1) : this.dqClose(k + 1);
        if (close < 0) return this.eolOf(k);
        k = close + 1;
      } else k++;
    }
    return k;
  }

  /** Offset of the quote closing a double-quoted string whose content starts at k, or -1. */
  private dqClose(k: number): number {
    while (k < this.n) {
      const c = this.src[k];
      if (c === "\\") k += 2;
      else if (c === '"') return k;
      else k++;
    }
    return -1;
  }

  private nameEnd(k: number): number {
    if (!isNameStart(this.src[k])) return k;
    k++;
    while (isNameChar(this.src[k])) k++;
    return k;
  }

  private atWordEnd(k: number): boolean {
    const c = this.src[k];
    return this.isEol(k) || c === " " || c === "\t";
  }

  /** The raw text of the word at k (up to a blank, line end or operator), for messages. */
  private rawWord(k: number): string {
    let e = k;
    while (!this.atWordEnd(e) && !META.has(this.src[e]!)) e++;
    return this.src.slice(k, e);
  }

  // ---- statements ---------------------------------------------------------------------------

  private statement(): void {
    this.lastMultiline = undefined; // hints only point within the statement that failed
    let exported = false;
    const start = this.i;
    if (this.src.startsWith("export", start) && this.atWordEnd(start + 6)) {
      exported = true;
      this.i = start + 6;
      this.skipBlanks();
      if (this.src[this.i] === "-") throw new Fail(this.i, `export options like ${excerpt(this.rawWord(this.i))} are not supported; write export KEY=value`);
    }
    let previous: { key: string; valueStart: number; valueEnd: number } | undefined;
    for (;;) {
      if (this.isEol(this.i)) return;
      if (this.src[this.i] === "#") {
        this.i = this.eolOf(this.i);
        return;
      }
      previous = this.word(previous, exported);
      this.skipBlanks();
    }
  }

  /** One word of a statement: an assignment, a bare name after `export`, or an error. */
  private word(
    previous: { key: string; valueStart: number; valueEnd: number } | undefined,
    exported: boolean,
  ): { key: string; valueStart: number; valueEnd: number } | undefined {
    const ws = this.i;
    const ne = this.nameEnd(ws);
    const name = this.src.slice(ws, ne);
    if (ne > ws && this.src[ne] === "=") {
      this.i = ne + 1;
      const valueStart = this.i;
      const { value, refs } = this.value(name);
      this.total += value.length;
      if (this.total > MAX_EXPANDED_TOTAL_CHARS)
        throw new Fail(ws, `the values of this file add up to more than ${MAX_EXPANDED_TOTAL_CHARS} characters after expansion`, undefined, name);
      const at = this.loc(ws);
      this.noteRedefinition(name, refs, ws);
      const a: Assignment = { key: name, value, file: this.file, line: at.line, column: at.column, exported, refs };
      this.undo.push([name, this.vars.get(name), this.lastOf.get(name)]);
      this.vars.set(name, value);
      this.lastOf.set(name, a);
      this.out.assignments.push(a);
      return { key: name, valueStart, valueEnd: this.i };
    }
    if (exported && ne > ws && this.atWordEnd(ne)) {
      this.i = ne; // `export KEY`: marks a variable for export; changes no value
      return previous;
    }
    throw this.notAnAssignment(ws, ne, previous, exported);
  }

  private noteRedefinition(key: string, refs: ExpansionRef[], at: number): void {
    const earlier = this.lastOf.get(key);
    // `KEY="$KEY more"` builds on the earlier value on purpose; anything else overwrites it.
    if (earlier && !refs.some((r) => r.name === key))
      this.warn(at, `${shortKey(key)} is set again (first at line ${earlier.line}); the later value wins`);
  }

  private notAnAssignment(
    ws: number,
    ne: number,
    previous: { key: string; valueStart: number; valueEnd: number } | undefined,
    exported: boolean,
  ): Fail {
    const src = this.src;
    const c = src[ws]!;
    if (META.has(c)) return new Fail(ws, this.describeMeta(ws, false));
    const raw = this.rawWord(ws);
    const name = src.slice(ws, ne);
    const first = previous === undefined && !exported;
    if (first && KEYWORDS.has(raw)) return new Fail(ws, `shell syntax '${raw}' is not supported: settings.sh is read as data, only KEY=value lines`);
    if (first && (raw === "." || raw === "source")) return new Fail(ws, `'${raw}' (reading another file) is not supported: settings.sh is read as data`);
    if (ne > ws) {
      let k = ne;
      while (src[k] === " " || src[k] === "\t") k++;
      if (k > ne && src[k] === "=") return new Fail(ne, `no spaces are allowed around '=' (write ${shortKey(name)}=value)`, undefined, name);
      if (src[ne] === "(") return new Fail(ne, `function definitions are not supported: settings.sh is read as data`);
      if (src.startsWith("+=", ne)) return new Fail(ne, `'+=' is not supported; write ${shortKey(name)}="$${shortKey(name)} more"`);
      if (src[ne] === "[") return new Fail(ne, `arrays are not supported; write a space-separated list in quotes`);
    }
    const eq = raw.indexOf("=");
    if (eq === 0) return new Fail(ws, `missing variable name before '='`);
    if (eq > 0) return new Fail(ws, `invalid variable name ${excerpt(raw.slice(0, eq))} (letters, digits and '_', not starting with a digit)`);
    if (previous) {
      const emptyBefore = previous.valueStart === previous.valueEnd;
      if (emptyBefore)
        return new Fail(ws, `unexpected ${excerpt(raw)} after '${shortKey(previous.key)}=': no spaces are allowed after '=' (quote values that contain spaces)`, undefined, previous.key);
      const hashEnd = src[previous.valueEnd - 1] === "#";
      return new Fail(
        ws,
        `unexpected ${excerpt(raw)} after the value: quote values that contain spaces (${shortKey(previous.key)}="a b")` +
          (hashEnd ? "; a '#' starts a comment only after a space" : ""),
        undefined,
        previous.key,
      );
    }
    if (exported) return new Fail(ws, `expected KEY=value after export, found ${excerpt(raw)}`);
    return new Fail(ws, `expected KEY=value, found ${excerpt(raw)}: commands are not run, settings.sh is read as data`);
  }

  private describeMeta(k: number, inValue: boolean): string {
    const two = this.src.slice(k, k + 2);
    const hint = inValue ? QUOTE_HINT : "";
    if (two === "&&" || two === "||") return `'${two}' is not supported: settings.sh is read as data${hint}`;
    if (two === ">>" || two === "<<") return `redirection '${two}' is not supported${hint}`;
    switch (this.src[k]) {
      case ";":
        return `';' (several commands on a line) is not supported; put each assignment on its own line${hint}`;
      case "&":
        return `'&' (background job) is not supported${hint}`;
      case "|":
        return `pipe '|' is not supported${hint}`;
      case "<":
      case ">":
        return `redirection '${this.src[k]}' is not supported${hint}`;
      case "(":
        return inValue && k > 0 && this.src[k - 1] === "=" ? `arrays are not supported; write a space-separated list in quotes` : `'(' (subshell) is not supported${hint}`;
      default:
        return `unexpected '${this.src[k]}'${hint}`;
    }
  }

  // ---- words --------------------------------------------------------------------------------

  /** An unquoted assignment value: quoted parts, escapes and expansions, up to a blank or line end. */
  private value(key: string): { value: string; refs: ExpansionRef[] } {
    const start = this.i;
    let value = "";
    const refs: ExpansionRef[] = [];
    try {
      for (;;) {
        const k = this.i;
        const cont = this.continuation(k);
        if (cont) {
          this.i += cont; // backslash-newline disappears, even inside a word
          continue;
        }
        if (this.atWordEnd(k)) break;
        const c = this.src[k]!;
        if (c === '"') value = this.capped(value + this.doubleQuoted(refs), k);
        else if (c === "'") value = this.capped(value + this.singleQuoted(), k);
        else if (c === "\\") {
          // the only unquoted backslash cases left: before a character (taken literally) or at EOF
          if (k + 1 >= this.n) value += "\\";
          else value += this.src[k + 1];
          this.i = k + (k + 1 >= this.n ? 1 : 2);
        } else if (c === "$") value = this.capped(value + this.dollar("unquoted", refs), k);
        else if (c === "`") throw new Fail(k, "command substitution with backticks is not supported: settings.sh is read as data, never run");
        else if (META.has(c)) throw new Fail(k, this.describeMeta(k, true));
        else if (c === "~" && (k === start || this.src[k - 1] === ":"))
          throw new Fail(k, "tilde expansion is not supported; write the full path or quote the '~'");
        else {
          value += c;
          this.i++;
        }
      }
    } catch (e) {
      if (e instanceof Fail) throw new Fail(e.at, e.message, e.resume, key);
      throw e;
    }
    if (value.length > MAX_VALUE_CHARS) throw new Fail(start, `the value is longer than ${MAX_VALUE_CHARS} characters`, undefined, key);
    return { value, refs };
  }

  /** `value` if it is within MAX_VALUE_CHARS; else the error, at the part that made it too long. */
  private capped(value: string, at: number): string {
    if (value.length > MAX_VALUE_CHARS) throw new Fail(at, `the value is longer than ${MAX_VALUE_CHARS} characters after expansion`);
    return value;
  }

  private singleQuoted(): string {
    const open = this.i;
    const close = this.src.indexOf("'", open + 1);
    if (close < 0) throw new Fail(open, `unterminated single quote (no closing ')${this.multilineHint(open)}`, this.eolOf(open));
    this.noteMultiline(open, close);
    this.i = close + 1;
    return this.src.slice(open + 1, close);
  }

  private doubleQuoted(refs: ExpansionRef[]): string {
    const open = this.i;
    this.i++;
    let value = "";
    try {
      for (;;) {
        const k = this.i;
        if (k >= this.n) throw new Fail(open, `unterminated double quote (no closing ")${this.multilineHint(open)}`, this.eolOf(open));
        const c = this.src[k]!;
        if (c === '"') {
          this.noteMultiline(open, k);
          this.i = k + 1;
          return value;
        }
        if (c === "\\") value += this.dqEscape();
        else if (c === "$") value = this.capped(value + this.dollar("double", refs), k);
        else if (c === "`") throw new Fail(k, "command substitution with backticks is not supported: settings.sh is read as data, never run");
        else {
          value += c;
          this.i++;
        }
      }
    } catch (e) {
      if (e instanceof Fail && e.resume === undefined) {
        // Resume after this string's closing quote, so its remaining lines are not read as statements.
        const close = this.dqClose(e.at + 1);
        throw new Fail(e.at, e.message, close < 0 ? this.eolOf(open) : close + 1);
      }
      throw e;
    }
  }

  /** A backslash inside double quotes: only \$ \` \" \\ and \newline are escapes (POSIX 2.2.3). */
  private dqEscape(): string {
    const k = this.i;
    const cont = this.continuation(k);
    if (cont) {
      this.i += cont;
      return "";
    }
    const next = this.src[k + 1];
    if (next === "$" || next === "`" || next === '"' || next === "\\") {
      this.i += 2;
      return next;
    }
    this.i += 1;
    return "\\";
  }

  private noteMultiline(open: number, close: number): void {
    // By line number, not by searching for a newline: a search from `open` would scan to the end
    // of a long single-line file for every quoted string in it.
    if (this.loc(close).line !== this.loc(open).line) this.lastMultiline = open;
  }

  private multilineHint(open: number): string {
    const m = this.lastMultiline;
    if (m === undefined || m === open) return "";
    const lines = this.loc(this.dqOrSqClose(m)).line - this.loc(m).line + 1;
    return `; the quoted string opened at ${this.where(m)} spans ${lines} lines: is its closing quote missing?`;
  }

  private dqOrSqClose(open: number): number {
    return this.src[open] === "'" ? this.src.indexOf("'", open + 1) : this.dqClose(open + 1);
  }

  private lookup(name: string): { value: string | undefined; from: ExpansionRef["from"] } {
    const k = this.vars.get(name);
    if (k !== undefined) return { value: k, from: "key" };
    const e = envValue(this.scope.env, name);
    if (e !== undefined) return { value: e, from: "env" };
    return { value: undefined, from: "unset" };
  }

  /** A '$' in an unquoted value, a double-quoted string or a ${...} word. */
  private dollar(ctx: "unquoted" | "double", refs: ExpansionRef[]): string {
    const d = this.i;
    const nx = this.src[d + 1];
    if (nx === "{") return this.braced(ctx, refs);
    if (nx === "(") {
      if (this.src[d + 2] === "(") throw new Fail(d, "arithmetic expansion $((...)) is not supported: settings.sh is read as data");
      throw new Fail(d, "command substitution $(...) is not supported: settings.sh is read as data, never run");
    }
    if (isNameStart(nx)) {
      const end = this.nameEnd(d + 1);
      const name = this.src.slice(d + 1, end);
      this.i = end;
      const v = this.lookup(name);
      refs.push({ name, from: v.from });
      return v.value ?? "";
    }
    if (nx !== undefined && /[0-9@*#?$!-]/.test(nx)) throw new Fail(d, `special parameter $${nx} is not supported (only named variables)`);
    if (ctx === "unquoted" && nx === "'") throw new Fail(d, "$'...' (ANSI-C quoting) is not supported; use single or double quotes");
    if (ctx === "unquoted" && nx === '"') throw new Fail(d, `$"..." (locale translation) is not supported; drop the '$'`);
    this.i = d + 1; // a '$' before anything else is a plain '$', as in sh
    return "$";
  }

  private braced(ctx: "unquoted" | "double", refs: ExpansionRef[]): string {
    const d = this.i;
    if (this.depth >= MAX_EXPANSION_DEPTH) throw new Fail(d, `\${...} nested more than ${MAX_EXPANSION_DEPTH} deep`, this.eolOf(d));
    this.depth++;
    try {
      return this.bracedAt(d, ctx, refs);
    } finally {
      this.depth--;
    }
  }

  private bracedAt(d: number, ctx: "unquoted" | "double", refs: ExpansionRef[]): string {
    let k = d + 2;
    const c0 = this.src[k];
    if (c0 === "#" && this.src[k + 1] !== "}") throw new Fail(d, "${#NAME} (length) is not supported");
    if (c0 === "!") throw new Fail(d, "${!NAME} (indirection) is not supported");
    const end = this.nameEnd(k);
    if (end === k) {
      if (c0 !== undefined && /[0-9@*#?$!-]/.test(c0)) throw new Fail(d, `special parameter \${${c0}} is not supported (only named variables)`);
      if (c0 === "}") throw new Fail(d, "empty ${} (bad substitution)");
      if (this.isEol(k) && k >= this.n) throw new Fail(d, "unterminated ${ (no closing })", this.eolOf(d));
      throw new Fail(d, `bad substitution: expected a variable name after '\${'`);
    }
    const name = this.src.slice(k, end);
    k = end;
    const c = this.src[k];
    if (c === "}") {
      this.i = k + 1;
      const v = this.lookup(name);
      refs.push({ name, from: v.from });
      return v.value ?? "";
    }
    let op: string;
    if (c === ":" && (this.src[k + 1] === "-" || this.src[k + 1] === "+")) op = this.src.slice(k, k + 2);
    else if (c === "-" || c === "+") op = c;
    else if ((c === ":" && (this.src[k + 1] === "=" || this.src[k + 1] === "?")) || c === "=" || c === "?") {
      const o = c === ":" ? this.src.slice(k, k + 2) : c;
      throw new Fail(d, `\${${shortKey(name)}${o}...} is not supported (it assigns or aborts); use \${${shortKey(name)}:-default}`);
    } else if (c === "%" || c === "#" || c === "/" || c === "^" || c === "," || c === ":" || c === "@")
      throw new Fail(d, `\${${shortKey(name)}${c}...} (pattern, substring or case operations) is not supported; only \${NAME:-default} and \${NAME:+word}`);
    else if (k >= this.n || this.isEol(k)) throw new Fail(d, `unterminated \${${shortKey(name)} (no closing })`, this.eolOf(d));
    else throw new Fail(d, `bad substitution: unexpected ${excerpt(c ?? "")} after \${${shortKey(name)}`);
    this.i = k + op.length;
    const wordRefs: ExpansionRef[] = [];
    const word = this.braceWord(ctx, d, wordRefs);
    const v = this.lookup(name);
    const set = v.value !== undefined;
    const nonEmpty = set && v.value !== "";
    const useWord = op === ":-" ? !nonEmpty : op === "-" ? !set : op === ":+" ? nonEmpty : set;
    refs.push({ name, from: v.from, op });
    if (op === ":-" || op === "-") {
      if (!useWord) return v.value!;
      refs.push(...wordRefs);
      return word;
    }
    if (!useWord) return "";
    refs.push(...wordRefs);
    return word;
  }

  /** The word of ${NAME<op>word}, up to the unquoted '}' closing the expansion opened at d. */
  private braceWord(ctx: "unquoted" | "double", d: number, refs: ExpansionRef[]): string {
    let value = "";
    for (;;) {
      const k = this.i;
      if (k >= this.n) throw new Fail(d, "unterminated ${ (no closing })", this.eolOf(d));
      const c = this.src[k]!;
      if (c === "}") {
        this.i = k + 1;
        return value;
      }
      if (c === "\\") {
        if (ctx === "double") value += this.dqEscape();
        else {
          const cont = this.continuation(k);
          if (cont) this.i += cont;
          else {
            value += this.src[k + 1] ?? "\\";
            this.i = Math.min(k + 2, this.n);
          }
        }
      } else if (c === '"') value = this.capped(value + this.doubleQuoted(refs), k);
      else if (c === "'" && ctx === "unquoted") value += this.singleQuoted();
      else if (c === "$") value = this.capped(value + this.dollar(ctx, refs), k);
      else if (c === "`") throw new Fail(k, "command substitution with backticks is not supported: settings.sh is read as data, never run");
      else {
        value += c;
        this.i++;
      }
    }
  }
}
