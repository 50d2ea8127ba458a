// The DNSSEC root trust anchors shipped in the binary (config/dnssec/root-anchors.txt).
import rootAnchorsText from "../../../config/dnssec/root-anchors.txt";

export interface TrustAnchor {
  domain: string;
  keyTag: number;
  algorithm: number;
  digestType: number;
  digest: string;
}

/** Parse `trust-anchor=<domain>,<key tag>,<algorithm>,<digest type>,<digest>` lines; throws on anything else. */
export function parseTrustAnchors(text: string): TrustAnchor[] {
  const out: TrustAnchor[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const m = /^trust-anchor=([^,\s]+),(\d+),(\d+),(\d+),([0-9A-Fa-f]+)$/.exec(line);
    if (!m) throw new Error(`root-anchors.txt:${i + 1}: not a trust-anchor= line: ${line}`);
    const digestType = Number(m[4]);
    const digest = m[5]!.toUpperCase();
    // SHA-1 (1) is 20 bytes, SHA-256 (2) 32, SHA-384 (4) 48.
    const len = { 1: 40, 2: 64, 4: 96 }[digestType];
    if (len === undefined || digest.length !== len) throw new Error(`root-anchors.txt:${i + 1}: digest type ${digestType} with a ${digest.length / 2}-byte digest`);
    out.push({ domain: m[1]!, keyTag: Number(m[2]), algorithm: Number(m[3]), digestType, digest });
  });
  return out;
}

export const ROOT_TRUST_ANCHORS: readonly TrustAnchor[] = parseTrustAnchors(rootAnchorsText);

export function renderTrustAnchor(a: TrustAnchor): string {
  return `trust-anchor=${a.domain},${a.keyTag},${a.algorithm},${a.digestType},${a.digest}`;
}
