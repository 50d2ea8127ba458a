// Turns the bytes of a configuration file into text. Invalid UTF-8 is an error at line:column
// (a lenient decoder would silently put U+FFFD into an interface name or a path instead).
import type { ConfigIssue } from "../errors.ts";

export type Decoded = { ok: true; text: string } | { ok: false; issue: ConfigIssue };

const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function decodeConfigText(bytes: Uint8Array, file: string): Decoded {
  try {
    return { ok: true, text: strict.decode(bytes) };
  } catch {
    const at = firstInvalidUtf8(bytes);
    // Line and column as an editor shows them: lines counted by LF, columns in characters.
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at; i++)
      if (bytes[i] === 0x0a) {
        line++;
        lineStart = i + 1;
      }
    const column = strict.decode(bytes.subarray(lineStart, at)).length + 1;
    const hex = Array.from(bytes.subarray(at, Math.min(at + 4, bytes.length)), (b) => b.toString(16).padStart(2, "0")).join(" ");
    return { ok: false, issue: { file, line, column, message: `is not valid UTF-8 (bytes ${hex} at byte offset ${at}); save the file as UTF-8` } };
  }
}

/** Offset of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629). */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0; // no overlong forms
      if (c === 0xed) hi = 0x9f; // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f; // nothing above U+10FFFF
    } else return i;
    for (let k = 1; k <= need; k++) {
      const x = b[i + k];
      if (x === undefined || x < (k === 1 ? lo : 0x80) || x > (k === 1 ? hi : 0xbf)) return i;
    }
    i += need + 1;
  }
  return b.length;
}
