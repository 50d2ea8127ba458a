// Reading what `podman save --format oci-archive` writes: the archive (a tar holding index.json,
// the manifest, the config and the layer blobs) and the layer tars inside it. Pure parsing over
// bytes; readOciArchive reads the file.
import { readFileSync } from "node:fs";

export interface TarEntry {
  /** Path without a leading "./" or "/", directories without a trailing "/". */
  path: string;
  type: "file" | "dir" | "symlink" | "hardlink" | "other";
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  /** Offset of the content in the tar. */
  offset: number;
}

function str(b: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return new TextDecoder().decode(b.subarray(off, end));
}

function octal(b: Uint8Array, off: number, len: number): number {
  // GNU base-256 for big numbers: high bit set on the first byte.
  if (b[off]! & 0x80) {
    let n = b[off]! & 0x7f;
    for (let i = 1; i < len; i++) n = n * 256 + b[off + i]!;
    return n;
  }
  const s = str(b, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

/** pax records: "<len> <key>=<value>\n", len counting bytes of the whole record. */
function parsePax(b: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < b.length) {
    let sp = off;
    while (sp < b.length && b[sp] !== 0x20) sp++;
    const len = parseInt(new TextDecoder().decode(b.subarray(off, sp)), 10);
    if (!(len > 0) || off + len > b.length) break;
    const kv = new TextDecoder().decode(b.subarray(sp + 1, off + len - 1));
    const eq = kv.indexOf("=");
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
    off += len;
  }
  return out;
}

function clean(p: string): string {
  return p.replace(/^\.?\/+/, "").replace(/\/+$/, "");
}

/** Lists a (ustar/pax/GNU) tar's entries. Pure. Throws on a truncated or corrupt header. */
export function parseTar(b: Uint8Array): TarEntry[] {
  const out: TarEntry[] = [];
  let off = 0;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  while (off + 512 <= b.length) {
    if (b.subarray(off, off + 512).every((x) => x === 0)) break;
    const sum = octal(b, off + 148, 8);
    let calc = 0;
    for (let i = 0; i < 512; i++) calc += i >= 148 && i < 156 ? 32 : b[off + i]!;
    if (sum !== calc) throw new Error(`tar header at byte ${off}: bad checksum`);
    const typeflag = String.fromCharCode(b[off + 156]!);
    const size = octal(b, off + 124, 12);
    const data = off + 512;
    const next = data + Math.ceil(size / 512) * 512;
    if (next > b.length) throw new Error(`tar entry at byte ${off}: truncated (size ${size})`);
    if (typeflag === "x") {
      pax = { ...pax, ...parsePax(b.subarray(data, data + size)) };
    } else if (typeflag === "g") {
      // global header: nothing we need
    } else if (typeflag === "L") {
      longName = str(b, data, size);
    } else if (typeflag === "K") {
      longLink = str(b, data, size);
    } else {
      const prefix = str(b, off + 345, 155);
      const name = pax.path ?? longName ?? (prefix ? `${prefix}/${str(b, off, 100)}` : str(b, off, 100));
      const type = typeflag === "0" || typeflag === "\0" || typeflag === "7" ? "file" : typeflag === "5" ? "dir" : typeflag === "2" ? "symlink" : typeflag === "1" ? "hardlink" : "other";
      out.push({
        path: clean(name),
        type,
        mode: octal(b, off + 100, 8) & 0o7777,
        uid: pax.uid ? Number(pax.uid) : octal(b, off + 108, 8),
        gid: pax.gid ? Number(pax.gid) : octal(b, off + 116, 8),
        size: pax.size ? Number(pax.size) : size,
        mtime: pax.mtime ? Math.floor(Number(pax.mtime)) : octal(b, off + 136, 12),
        linkname: pax.linkpath ?? longLink ?? str(b, off + 157, 100),
        offset: data,
      });
      pax = {};
      longName = undefined;
      longLink = undefined;
    }
    off = next;
  }
  return out;
}

export interface OciLayer {
  mediaType: string;
  /** Digest of the blob as stored (compressed or not). */
  digest: string;
  /** Size of the blob as stored. */
  size: number;
  /** The uncompressed layer tar. */
  tar: Uint8Array;
  /** Size of the layer tar compressed with gzip -6 (what a registry stores, near enough). */
  gzipSize: number;
  /** sha256 of the uncompressed tar (the config's diff_id). */
  diffId: string;
}

export interface OciImage {
  manifestDigest: string;
  manifest: { layers: { mediaType: string; digest: string; size: number }[]; config: { digest: string } };
  config: { architecture: string; os: string; created?: string; config?: { Env?: string[]; Cmd?: string[]; Entrypoint?: string[]; User?: string; Labels?: Record<string, string> }; rootfs: { diff_ids: string[] } };
  layers: OciLayer[];
}

const sha256 = (b: Uint8Array<ArrayBuffer>) => "sha256:" + new Bun.CryptoHasher("sha256").update(b).digest("hex");

/** Reads a single-image OCI archive. Pure over the archive's bytes. */
export function parseOciArchive(archive: Uint8Array<ArrayBuffer>): OciImage {
  const entries = parseTar(archive);
  const blob = (path: string): Uint8Array<ArrayBuffer> => {
    const e = entries.find((x) => x.path === path && x.type === "file");
    if (!e) throw new Error(`OCI archive: ${path} is missing`);
    return archive.subarray(e.offset, e.offset + e.size);
  };
  const byDigest = (d: string) => blob(`blobs/${d.replace(":", "/")}`);
  const index = JSON.parse(new TextDecoder().decode(blob("index.json"))) as { manifests: { digest: string }[] };
  if (index.manifests.length !== 1) throw new Error(`OCI archive: expected one manifest, found ${index.manifests.length}`);
  const manifestDigest = index.manifests[0]!.digest;
  const manifest = JSON.parse(new TextDecoder().decode(byDigest(manifestDigest))) as OciImage["manifest"];
  const config = JSON.parse(new TextDecoder().decode(byDigest(manifest.config.digest))) as OciImage["config"];
  const layers = manifest.layers.map((l) => {
    const stored = byDigest(l.digest);
    const gz = l.mediaType.endsWith("+gzip") || (stored[0] === 0x1f && stored[1] === 0x8b);
    const tar: Uint8Array<ArrayBuffer> = gz ? Bun.gunzipSync(stored as Uint8Array<ArrayBuffer>) : (stored as Uint8Array<ArrayBuffer>);
    return { mediaType: l.mediaType, digest: l.digest, size: l.size, tar, gzipSize: gz ? stored.length : Bun.gzipSync(tar, { level: 6 }).length, diffId: sha256(tar) };
  });
  return { manifestDigest, manifest, config, layers };
}

export function readOciArchive(file: string): OciImage {
  return parseOciArchive(new Uint8Array(readFileSync(file)));
}
