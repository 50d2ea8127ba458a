// POSIX path joining as node:path does it, for the few places on a role's start-up path that need
// it (config files, the multi-call name): node:path is a module of its own that a Bun process
// compiles from source when first imported, a few ms of CPU and ~2 MB of the binary's pages in
// every client pod. Pure; checked against node:path's posix functions in test/unit/path.test.ts.

/** path.posix.normalize. */
export function normalizePath(p: string): string {
  if (p === "") return ".";
  const absolute = p.startsWith("/");
  const trailing = p.endsWith("/");
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
      continue;
    }
    out.push(seg);
  }
  let s = out.join("/");
  if (absolute) return "/" + s + (trailing && s !== "" ? "/" : "");
  if (s === "") s = ".";
  return trailing ? s + "/" : s;
}

/** path.posix.join. */
export function joinPath(...parts: string[]): string {
  const joined = parts.filter((x) => x !== "").join("/");
  return joined === "" ? "." : normalizePath(joined);
}

/** path.posix.resolve(p) with the working directory given (absolute, no trailing slash except for "/"). */
export function resolvePath(p: string, cwd: string): string {
  const abs = normalizePath(p.startsWith("/") ? p : `${cwd}/${p}`);
  return abs.length > 1 && abs.endsWith("/") ? abs.slice(0, -1) : abs;
}

/** path.posix.basename (without the extension argument). */
export function basenamePath(p: string): string {
  let end = p.length;
  while (end > 1 && p[end - 1] === "/") end--;
  const s = p.slice(0, end);
  if (s === "/") return "";
  return s.slice(s.lastIndexOf("/") + 1);
}
