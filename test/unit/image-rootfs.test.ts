// The root filesystem manifest and the assembler's plan: the shipped manifest is consistent with
// the binary's drop-in names, plans against this machine's Debian packages and against a small
// merged-/usr sysroot built here (absolute links resolve inside it, never on the host).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { multiCallNames } from "../../src/cli/commands.ts";
import { ROLE_PROGRAMS } from "../../src/core/programs.ts";
import { readElf } from "../../src/image/rootfs-elf.ts";
import {
  ARCHES, applyRootfsPlan, hostArch, parseArch, parseDpkgStatus, parseRootfsManifest, readRootfsManifest, readRootfsPlan,
  renderRootfsListing, resolveInRoot, REPO_ROOT, type RootfsPlan,
} from "../../src/image/rootfs.ts";

const arch = hostArch();
const manifest = readRootfsManifest();
// A glibc program of this machine stands in for the compiled binary: the plan only reads its
// ELF header, and unit tests must not depend on dist/. (iproute2's ip: the lab needs it on the
// machine; the image itself no longer ships it.)
const fakeBinary = "/usr/bin/ip";

const paths = (p: RootfsPlan) => p.entries.map((e) => e.path);
const entry = (p: RootfsPlan, path: string) => p.entries.find((e) => e.path === path);

describe("the shipped manifest", () => {
  test("its links are exactly the binary's multi-call names, pointing at the binary", () => {
    expect(Object.keys(manifest.links).map((p) => basename(p)).sort()).toEqual(Object.keys(multiCallNames).sort());
    for (const [p, t] of Object.entries(manifest.links)) {
      expect(p.startsWith("/bin/")).toBe(true);
      expect(t).toBe(manifest.binary);
    }
    expect(manifest.binary).toBe("/usr/local/bin/pod-gateway");
  });

  test("configuration lands in /default_config and /config from the repository's config/", () => {
    expect(manifest.files).toEqual({
      "/default_config/settings.sh": "config/settings.sh",
      "/default_config/nat.conf": "config/nat.conf",
      "/config/settings.sh": "config/settings.sh",
      "/config/nat.conf": "config/nat.conf",
    });
    for (const s of Object.values(manifest.files)) expect(existsSync(join(REPO_ROOT, s))).toBe(true);
  });

  test("every program it ships is executed by the roles it is tagged with, and every program a role executes is shipped", () => {
    // ROLE_PROGRAMS (src/core/programs.ts) holds the names the role code runs; the strace tests
    // check that a role executes nothing else. A program is run under its file name or an alias.
    const names = (p: (typeof manifest.programs)[number]) => [basename(p.path), ...p.aliases];
    const notRun = manifest.programs.filter((p) => !p.roles.every((r) => names(p).some((n) => ROLE_PROGRAMS[r].includes(n))));
    expect(notRun.map((p) => `${p.path} (${p.roles.join(", ")})`)).toEqual([]);
    for (const role of ["client", "gateway"] as const) {
      const shipped = manifest.programs.filter((p) => p.roles.includes(role)).flatMap(names);
      expect({ role, missing: ROLE_PROGRAMS[role].filter((n) => !shipped.includes(n)) }).toEqual({ role, missing: [] });
    }
    // The roles talk rtnetlink in-process: no iproute2 (ip, bridge), and the client roles run nothing.
    expect(ROLE_PROGRAMS.client).toEqual([]);
    expect(manifest.programs.filter((p) => p.roles.includes("client"))).toEqual([]);
    expect(manifest.programs.flatMap(names).filter((n) => /^(ip|bridge|tc|ss)$/.test(n))).toEqual([]);
    expect(manifest.debian.packages).not.toContain("iproute2");
    for (const t of ["iptables-nft-restore", "iptables-legacy-save", "ip6tables-nft-restore", "nft", "dnsmasq"]) expect(manifest.programs.flatMap(names)).toContain(t);
    expect(manifest.profiles.image!.roles.sort()).toEqual(["client", "gateway"]);
    expect(manifest.profiles["client-copy"]).toEqual({ roles: ["client"], links: false, files: false, selfContained: true });
  });

  test("the base image is distroless on the same Debian release as the tools", () => {
    expect(manifest.base.image).toBe("gcr.io/distroless/base-debian12");
    expect(manifest.debian.release).toBe("bookworm"); // Debian 12
    expect(manifest.base.packages).toEqual(["libc6"]);
  });
});

describe("parseRootfsManifest", () => {
  const good = readFileSync(join(REPO_ROOT, "config/image/rootfs.json"), "utf8");
  test("accepts the shipped file", () => {
    expect(parseRootfsManifest(good).programs.length).toBeGreaterThan(3);
  });
  test("reports every problem at once, each with where it is", () => {
    const bad = JSON.parse(good);
    bad.programs[0].path = "usr/sbin/xtables-nft-multi"; // relative
    bad.programs[1].roles = ["router"]; // unknown role
    bad.links["/bin/x/../y"] = "/usr/local/bin/pod-gateway"; // not normalized
    bad.profiles.image.links = "yes";
    let msg = "";
    try {
      parseRootfsManifest(JSON.stringify(bad), "m.json");
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain("m.json: 4 problems");
    expect(msg).toContain('programs[0].path: must be a normalized absolute path (got "usr/sbin/xtables-nft-multi")');
    expect(msg).toContain('programs[1].roles: unknown role "router"');
    expect(msg).toContain("links./bin/x/../y: must be a normalized absolute path");
    expect(msg).toContain("profiles.image.links: must be true or false");
  });
  test("two entries writing one path are refused", () => {
    const bad = JSON.parse(good);
    bad.files["/usr/sbin/xtables-nft-multi"] = "config/nat.conf";
    expect(() => parseRootfsManifest(JSON.stringify(bad))).toThrow("files./usr/sbin/xtables-nft-multi: path /usr/sbin/xtables-nft-multi is also written by programs[0]");
  });
  test("invalid JSON names the file", () => {
    expect(() => parseRootfsManifest("{", "x.json")).toThrow(/^x\.json: not valid JSON/);
  });
});

describe("helpers", () => {
  test("parseArch accepts Docker, Node and uname spellings", () => {
    expect(parseArch("amd64")).toBe(ARCHES.amd64);
    expect(parseArch("x64")).toBe(ARCHES.amd64);
    expect(parseArch("x86_64")).toBe(ARCHES.amd64);
    expect(parseArch("aarch64")).toBe(ARCHES.arm64);
    expect(() => parseArch("riscv64")).toThrow('unknown architecture "riscv64"');
  });
  test("parseDpkgStatus keeps only installed packages, by name and name:arch", () => {
    const m = parseDpkgStatus(
      "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\nPackage: b\nStatus: deinstall ok config-files\nArchitecture: amd64\n\nPackage: c\nStatus: install ok installed\nArchitecture: all\nDescription: x\n more\n",
    );
    expect([...m.keys()].sort()).toEqual(["a", "a:amd64", "c"]);
    expect(m.get("a")).toEqual({ arch: "amd64", version: "1" });
  });
});

describe("resolveInRoot", () => {
  let root = "";
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "pgw-resolve-"));
    mkdirSync(join(root, "usr/lib/x"), { recursive: true });
    writeFileSync(join(root, "usr/lib/x/real.so.1.2"), "x");
    symlinkSync("usr/lib", join(root, "lib")); // relative, like merged /usr
    symlinkSync("/usr/lib/x/real.so.1.2", join(root, "usr/lib/x/abs.so.1")); // absolute: means the root's /usr
    symlinkSync("../x/real.so.1.2", join(root, "usr/lib/x/rel.so.1"));
    symlinkSync("/../../../../usr/lib/x/real.so.1.2", join(root, "usr/lib/x/climb.so"));
    symlinkSync("loop2", join(root, "usr/lib/x/loop1"));
    symlinkSync("loop1", join(root, "usr/lib/x/loop2"));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  test("follows relative and absolute links inside the root", () => {
    expect(resolveInRoot(root, "/lib/x/abs.so.1")).toBe("/usr/lib/x/real.so.1.2");
    expect(resolveInRoot(root, "/lib/x/rel.so.1")).toBe("/usr/lib/x/real.so.1.2");
    expect(resolveInRoot(root, "/lib/./x/../x/real.so.1.2")).toBe("/usr/lib/x/real.so.1.2");
  });
  test("cannot climb out of the root with ..", () => {
    expect(resolveInRoot(root, "/lib/x/climb.so")).toBe("/usr/lib/x/real.so.1.2");
  });
  test("missing paths are undefined; loops are an error", () => {
    expect(resolveInRoot(root, "/lib/x/none.so")).toBeUndefined();
    expect(() => resolveInRoot(root, "/lib/x/loop1")).toThrow("too many levels of symbolic links");
  });
});

describe("readRootfsPlan against this machine's packages", () => {
  test("image profile: the tools, their libraries, plugins, links, configuration; glibc left to the base", () => {
    const plan = readRootfsPlan({ manifest, sysroot: "/", arch, profile: "image", binary: fakeBinary });
    const ps = paths(plan);
    for (const p of ["/usr/local/bin/pod-gateway", "/usr/sbin/nft", "/usr/sbin/dnsmasq", "/usr/sbin/xtables-nft-multi", "/bin/client_init.sh", "/config/settings.sh", "/default_config/nat.conf", "/run"]) {
      expect(ps).toContain(p);
    }
    expect(ps.filter((p) => /\/(ip|bridge)$/.test(p))).toEqual([]);
    expect(entry(plan, "/usr/sbin/iptables")).toEqual({ kind: "symlink", path: "/usr/sbin/iptables", target: "xtables-nft-multi", why: "multi-call name of xtables-nft-multi" });
    expect(entry(plan, "/usr/sbin/iptables-legacy-restore")).toMatchObject({ kind: "symlink", target: "xtables-legacy-multi" });
    expect(entry(plan, "/bin/gateway_sidecar.sh")).toMatchObject({ kind: "symlink", target: "/usr/local/bin/pod-gateway" });
    // Libraries found through DT_NEEDED, named by what programs ask for.
    expect(entry(plan, `/usr/lib/${arch.triplet}/libmnl.so.0`)).toMatchObject({ kind: "file" });
    expect(entry(plan, `/usr/lib/${arch.triplet}/libnftables.so.1`)).toMatchObject({ kind: "file" });
    // iptables' extensions (dlopen'ed) and what they need.
    expect(ps).toContain(`/usr/lib/${arch.triplet}/xtables/libxt_conntrack.so`);
    expect(ps).toContain(`/usr/lib/${arch.triplet}/xtables/libxt_MASQUERADE.so`);
    // glibc is the base image's: not in the layer, no loader, no /etc.
    const libc = plan.libraries.find((l) => l.name === "libc.so.6")!;
    expect(libc.fromBase).toBe(true);
    expect(libc.path).toBeUndefined();
    expect(ps.some((p) => basename(p) === "libc.so.6" || p === arch.loader || p.startsWith("/etc/") || p === "/tmp")).toBe(false);
    // Nothing a shell script would need.
    expect(ps.some((p) => /\/(sh|bash|dash|busybox|ping|dig|udhcpc|python3?)$/.test(p))).toBe(false);
  });

  test("every program file in the plan is one a role executes (under its name or an alias's)", () => {
    const plan = readRootfsPlan({ manifest, sysroot: "/", arch, profile: "image", binary: fakeBinary });
    const libDir = `/usr/lib/${arch.triplet}/`;
    const programs = plan.entries.filter((e) => e.kind === "file" && e.mode & 0o111 && !e.path.startsWith(libDir) && e.path !== arch.loader && e.path !== manifest.binary);
    const run = new Set([...ROLE_PROGRAMS.client, ...ROLE_PROGRAMS.gateway]);
    const notRun = programs.filter((f) => {
      const dir = f.path.slice(0, f.path.lastIndexOf("/"));
      const aliases = plan.entries.filter((e) => e.kind === "symlink" && e.target === basename(f.path) && e.path.startsWith(dir + "/")).map((e) => basename(e.path));
      return ![basename(f.path), ...aliases].some((n) => run.has(n));
    });
    expect(programs.length).toBeGreaterThan(0);
    expect(notRun.map((e) => e.path)).toEqual([]);
  });

  test("every Debian package the manifest installs provides one of its programs (none is there for nothing)", () => {
    const sources = new Set(manifest.programs.map((p) => resolveInRoot("/", p.source.replaceAll("{triplet}", arch.triplet))));
    const idle = manifest.debian.packages.filter((pkg) => {
      const list = [`/var/lib/dpkg/info/${pkg}:${arch.name}.list`, `/var/lib/dpkg/info/${pkg}.list`].find((f) => existsSync(f));
      if (!list) throw new Error(`Debian package ${pkg} is not installed on this machine (apt-get install ${pkg})`);
      return !readFileSync(list, "utf8").split("\n").some((f) => f && sources.has(resolveInRoot("/", f)));
    });
    expect(idle).toEqual([]);
  });

  test("every ELF file in the plan is this architecture's and every library it needs is planned or the base's", () => {
    const plan = readRootfsPlan({ manifest, sysroot: "/", arch, profile: "image", binary: fakeBinary });
    const planned = new Set(plan.entries.map((e) => basename(e.path)));
    const base = new Set(plan.libraries.filter((l) => l.fromBase).map((l) => l.name));
    for (const e of plan.entries) {
      if (e.kind !== "file" || e.path.startsWith("/config") || e.path.startsWith("/default_config")) continue;
      const elf = readElf(e.source);
      expect(elf.machine).toBe(arch.machine);
      for (const n of elf.needed) if (n !== basename(arch.loader)) expect(planned.has(n) || base.has(n)).toBe(true);
    }
  });

  test("with the base emulated: glibc at its package paths, the loader, /etc/passwd, /tmp", () => {
    const plan = readRootfsPlan({ manifest, sysroot: "/", arch, profile: "image", binary: fakeBinary, withBase: true });
    expect(entry(plan, `/lib/${arch.triplet}/libc.so.6`)).toMatchObject({ kind: "file" });
    expect(entry(plan, arch.loader)).toMatchObject({ kind: "file", why: "dynamic loader (PT_INTERP)" });
    expect(entry(plan, "/etc/passwd")).toMatchObject({ kind: "text" });
    expect(entry(plan, "/tmp")).toEqual({ kind: "dir", path: "/tmp", mode: 0o1777 });
  });

  test("client-copy profile: the binary and every library down to glibc and the loader, nothing else (no program)", () => {
    const plan = readRootfsPlan({ manifest, sysroot: "/", arch, profile: "client-copy", binary: fakeBinary });
    const files = plan.entries.filter((e) => e.kind === "file").map((e) => e.path);
    const progs = files.filter((p) => !p.startsWith(`/usr/lib/${arch.triplet}/`) && p !== arch.loader);
    expect(progs).toEqual(["/usr/local/bin/pod-gateway"]);
    expect(files).toContain(`/usr/lib/${arch.triplet}/libc.so.6`);
    expect(files).toContain(arch.loader);
    expect(plan.entries.some((e) => e.kind === "symlink" || e.kind === "text")).toBe(false);
    expect(renderRootfsListing(plan)).toContain(`/usr/local/bin/pod-gateway (0755) pod-gateway`);
    // Every library is one the binary needs (directly or through another library).
    expect(plan.libraries.every((l) => l.neededBy.every((w) => w === manifest.binary || plan.libraries.some((o) => o.name === w)))).toBe(true);
  });

  test("a binary of another architecture is refused, naming both", () => {
    expect(() => readRootfsPlan({ manifest, sysroot: "/", arch: arch.name === "amd64" ? ARCHES.arm64 : ARCHES.amd64, profile: "image", binary: fakeBinary })).toThrow(
      /pod-gateway binary \(\/usr\/bin\/ip\) is (x86-64|aarch64) 64-bit, not (aarch64|x86-64)/,
    );
  });
  test("an unknown profile and a missing binary are named", () => {
    expect(() => readRootfsPlan({ manifest, sysroot: "/", arch, profile: "full", binary: fakeBinary })).toThrow('unknown root filesystem profile "full" (have: image, client-copy)');
    expect(() => readRootfsPlan({ manifest, sysroot: "/", arch, profile: "image", binary: "/nonexistent/pod-gateway" })).toThrow("compiled binary /nonexistent/pod-gateway does not exist");
  });
});

describe("readRootfsPlan against a small merged-/usr sysroot", () => {
  let sys = "";
  let out = "";
  const lib = `usr/lib/${arch.triplet}`;
  const status = (pkgs: string[]) => pkgs.map((p) => `Package: ${p}\nStatus: install ok installed\nArchitecture: ${arch.name}\nVersion: 1\n`).join("\n");

  beforeAll(() => {
    sys = mkdtempSync(join(tmpdir(), "pgw-sysroot-"));
    out = mkdtempSync(join(tmpdir(), "pgw-tree-"));
    rmSync(out, { recursive: true });
    mkdirSync(join(sys, "usr/bin"), { recursive: true });
    mkdirSync(join(sys, lib), { recursive: true });
    mkdirSync(join(sys, "usr/lib64"), { recursive: true });
    mkdirSync(join(sys, "var/lib/dpkg/info"), { recursive: true });
    symlinkSync("usr/bin", join(sys, "bin"));
    symlinkSync("usr/lib", join(sys, "lib"));
    symlinkSync("usr/lib64", join(sys, "lib64"));
    // The stand-in binary's libraries, each under a versioned name behind an ABSOLUTE link, the
    // way Debian ships them: if the link were followed on the host instead of in the sysroot, the
    // versioned name (which the host does not have) would be missing and the plan would fail.
    const seen = new Set<string>();
    const want = [...readElf(fakeBinary).needed];
    while (want.length) {
      const n = want.shift()!;
      if (seen.has(n) || n === basename(arch.loader)) continue;
      seen.add(n);
      copyFileSync(`/lib/${arch.triplet}/${n}`, join(sys, lib, `${n}.999-test`));
      symlinkSync(`/${lib}/${n}.999-test`, join(sys, lib, n));
      want.push(...readElf(`/lib/${arch.triplet}/${n}`).needed);
    }
    copyFileSync(arch.loader, join(sys, lib, basename(arch.loader)));
    symlinkSync(`/${lib}/${basename(arch.loader)}`, join(sys, arch.loader.slice(1)));
    writeFileSync(join(sys, "var/lib/dpkg/status"), status([...manifest.debian.packages, "libc6"]));
    writeFileSync(join(sys, `var/lib/dpkg/info/libc6:${arch.name}.list`), `/.\n/lib/${arch.triplet}/libc.so.6\n/lib/${arch.triplet}/libm.so.6\n${arch.loader}\n`);
  });
  afterAll(() => {
    rmSync(sys, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });

  test("plans from the sysroot's files, not the host's, and writes a tree of real directories", () => {
    const plan = readRootfsPlan({ manifest, sysroot: sys, arch, profile: "client-copy", binary: fakeBinary });
    for (const e of plan.entries) if (e.kind === "file" && e.path !== "/usr/local/bin/pod-gateway") expect(e.source.startsWith(sys + "/")).toBe(true);
    expect(entry(plan, `/usr/lib/${arch.triplet}/libmnl.so.0`)).toMatchObject({ source: join(sys, lib, "libmnl.so.0.999-test") });
    applyRootfsPlan(plan, out);
    expect(lstatSync(join(out, "usr/local/bin/pod-gateway")).isFile()).toBe(true);
    expect(statSync(join(out, "usr/local/bin/pod-gateway")).mode & 0o777).toBe(0o755);
    expect(statSync(join(out, lib, "libmnl.so.0")).mode & 0o777).toBe(0o755);
    expect(lstatSync(join(out, arch.loader.slice(1))).isFile()).toBe(true);
    // Every directory on the way is a real directory (the Dockerfile merges the tree into the base's).
    for (const d of ["usr", "usr/lib", lib, "usr/local/bin", arch.loader.slice(1, arch.loader.lastIndexOf("/"))]) {
      expect(lstatSync(join(out, d)).isDirectory()).toBe(true);
    }
    expect(() => applyRootfsPlan(plan, out)).toThrow(`writing the root filesystem: ${out} is not empty`);
  });

  test("the image profile needs the gateway's packages' programs: a missing one is named", () => {
    expect(() => readRootfsPlan({ manifest, sysroot: sys, arch, profile: "image", binary: fakeBinary })).toThrow(`program /usr/sbin/xtables-nft-multi not found in sysroot ${sys}`);
  });

  test("a missing library is named with who needs it", () => {
    const gone = join(sys, lib, "libmnl.so.0");
    const target = readlinkSync(gone);
    rmSync(gone);
    try {
      expect(() => readRootfsPlan({ manifest, sysroot: sys, arch, profile: "client-copy", binary: fakeBinary })).toThrow(/library libmnl\.so\.0 \(needed by \/usr\/local\/bin\/pod-gateway\) not found in sysroot/);
    } finally {
      symlinkSync(target, gone);
    }
  });

  test("missing Debian packages are named with the apt-get line", () => {
    const st = join(sys, "var/lib/dpkg/status");
    const saved = readFileSync(st, "utf8");
    writeFileSync(st, status(["iptables", "libc6"]));
    try {
      expect(() => readRootfsPlan({ manifest, sysroot: sys, arch, profile: "client-copy", binary: fakeBinary })).toThrow(
        `Debian packages missing in sysroot ${sys}: nftables, dnsmasq-base (apt-get install --no-install-recommends nftables dnsmasq-base)`,
      );
    } finally {
      writeFileSync(st, saved);
    }
  });
});
