// Fuzzing the decoders of what arrives from outside (issue 12 §11): DHCP packets, Pod JSON, watch
// event lines and the API's Status objects. Random bytes and text, and structure-aware mutations
// of real objects (a field replaced by any JSON value, deleted, or shadowed by `__proto__`); each
// must give a typed result or the decoder's own error, never another exception. Small inputs run
// here (2,000 cases each, FUZZ_RUNS raises it); megabyte inputs run in a child process with a time
// and memory limit (test/helpers/fuzz.ts). The seed is printed; FUZZ_SEED replays it.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import fc from "fast-check";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeIpUdp } from "../../src/core/dhcp/codec.ts";
import { MAX_POD_BYTES } from "../../src/core/kube/watch.ts";
import { readHexFixture } from "../fixtures/dhcp/fake-server.ts";
import { loadFixture } from "../helpers/fake-kube.ts";
import { fuzz, fuzzIsolated, runIsolated } from "../helpers/fuzz.ts";
import { dhcpPacket, kubePod, kubeStatus, kubeWatchLine, kubeWatchStream } from "../helpers/fuzz-targets.ts";

setDefaultTimeout(120_000);

const TARGETS = join(import.meta.dir, "..", "helpers", "fuzz-targets.ts");
const target = (fn: string) => ({ module: TARGETS, fn });

// ---- structure-aware JSON mutations -----------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

type Mutation = { at: number; op: "replace"; value: Json } | { at: number; op: "delete" } | { at: number; op: "proto"; value: Json };

/** Every container (object or array) in the tree, with its keys, in a stable order. */
function containers(v: Json, out: (Json[] | { [k: string]: Json })[] = []): (Json[] | { [k: string]: Json })[] {
  if (v !== null && typeof v === "object") {
    out.push(v);
    for (const x of Array.isArray(v) ? v : Object.values(v)) containers(x, out);
  }
  return out;
}

function mutate(base: Json, muts: readonly Mutation[]): Json {
  const root = structuredClone(base);
  for (let m of muts) {
    // Values are copied in: a shared constant ({} or []) inserted twice could otherwise end up
    // inside itself, and the walk below would recurse forever (seen as a rare stack overflow).
    if ("value" in m) m = { ...m, value: structuredClone(m.value) };
    const all = containers(root);
    if (all.length === 0) break;
    const c = all[m.at % all.length]!;
    const keys = Array.isArray(c) ? c.map((_, i) => i) : Object.keys(c);
    if (m.op === "proto") {
      // JSON text with an own "__proto__" key (JSON.parse makes it an own property).
      if (!Array.isArray(c)) Object.defineProperty(c, "__proto__", { value: m.value, enumerable: true, configurable: true, writable: true });
      continue;
    }
    if (keys.length === 0) continue;
    const k = keys[(m.at >>> 8) % keys.length]!;
    if (m.op === "delete") {
      if (Array.isArray(c)) c.splice(k as number, 1);
      else delete c[k as string];
    } else if (Array.isArray(c)) c[k as number] = m.value;
    else c[k as string] = m.value;
  }
  return root;
}

const jsonValue = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json> },
  fc.constantFrom<Json>(null, "", 0, -1, 1.5, 1e308, "0", [], {}, [null], { name: 7 }, "Never", "Always", "Succeeded", "\u0000\u001b[2J\n", "Status", "Pod"),
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ at: fc.nat(), op: fc.constant("replace" as const), value: jsonValue }),
  fc.record({ at: fc.nat(), op: fc.constant("delete" as const) }),
  fc.record({ at: fc.nat(), op: fc.constant("proto" as const), value: jsonValue }),
);

const PODS = (["job-one-app", "job-two-apps", "job-native-sidecar"] as const).map((f) => loadFixture(f) as unknown as Json);
const STATUSES: Json[] = [
  { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: 'pods "x" is forbidden', reason: "Forbidden", details: { name: "x", kind: "pods" }, code: 403 },
  { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: "too old resource version: 1 (2)", reason: "Expired", code: 410 },
];

const mutatedPod = fc.tuple(fc.nat(PODS.length - 1), fc.array(mutation, { maxLength: 6 })).map(([i, m]) => mutate(PODS[i]!, m));
const mutatedStatus = fc.tuple(fc.nat(STATUSES.length - 1), fc.array(mutation, { maxLength: 4 })).map(([i, m]) => mutate(STATUSES[i]!, m));

/** Text damage on top: cut, insert a character, or both. */
const damagedText = (text: fc.Arbitrary<string>) =>
  fc.tuple(text, fc.option(fc.nat()), fc.option(fc.tuple(fc.nat(), fc.constantFrom("{", "}", "[", "]", '"', ",", ":", "\\", "\u0000", "\n", "\ud800", "é")))).map(([t, cut, ins]) => {
    let s = cut === null ? t : t.slice(0, cut % (t.length + 1));
    if (ins) {
      const at = ins[0] % (s.length + 1);
      s = s.slice(0, at) + ins[1] + s.slice(at);
    }
    return s;
  });

const eventType = fc.constantFrom("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR", "SYNC", "");
const watchLine = fc.oneof(
  fc.tuple(eventType, fc.oneof(mutatedPod, mutatedStatus)).map(([type, object]) => JSON.stringify({ type, object })),
  fc.tuple(eventType, jsonValue).map(([type, object]) => JSON.stringify({ type, object })),
);
const anyText = fc.oneof(fc.string({ unit: "binary", maxLength: 200 }), fc.string({ unit: fc.constantFrom(..."{}[]\":,0123456789truefalsnl \\\n"), maxLength: 200 }));

// ---- in-process: 2,000 cases each ---------------------------------------------------------------

describe("fuzz: Pod bodies", () => {
  test("mutated real pods: a Pod whose decision never throws, or an error value", () => {
    fuzz("Pod JSON (structure-aware)", damagedText(mutatedPod.map((p) => JSON.stringify(p))), (body) => void kubePod(body));
  });
  test("random text", () => {
    fuzz("Pod JSON (random text)", anyText, (body) => void kubePod(body));
  });
  test("the mutations do reach both outcomes (the fuzzer is not only testing the JSON parser)", () => {
    const outcomes = fc.sample(mutatedPod.map((p) => kubePod(JSON.stringify(p))), { numRuns: 300, seed: 1 });
    expect(outcomes.some((o) => o.startsWith("pod:"))).toBe(true);
    expect(outcomes.some((o) => o.startsWith("error: not a Pod"))).toBe(true);
  });
});

describe("fuzz: watch event lines and Status objects", () => {
  test("watch lines around mutated pods and Statuses", () => {
    fuzz("watch lines (structure-aware)", damagedText(watchLine), (line) => void kubeWatchLine(line));
  });
  test("random text as a watch line", () => {
    fuzz("watch lines (random text)", anyText, (line) => void kubeWatchLine(line));
  });
  test("Status bodies: mutated real ones and random text", () => {
    fuzz("Status (structure-aware)", damagedText(mutatedStatus.map((s) => JSON.stringify(s))), (body) => void kubeStatus(body));
    fuzz("Status (random text)", anyText, (body) => void kubeStatus(body));
  });
  test("a byte stream cut anywhere: bounded lines, each decoded", () => {
    const stream = fc.array(fc.oneof(watchLine, fc.string({ unit: "binary", maxLength: 40 })), { maxLength: 6 }).chain((lines) => {
      const bytes = new TextEncoder().encode(lines.join("\n") + "\n");
      return fc.array(fc.nat(bytes.length), { maxLength: 6 }).map((cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const chunks: Uint8Array[] = [];
        let prev = 0;
        for (const p of [...points, bytes.length]) {
          chunks.push(bytes.subarray(prev, p));
          prev = p;
        }
        return chunks;
      });
    });
    fuzz("watch byte stream", stream, (chunks) => void kubeWatchStream(chunks));
  });
});

describe("fuzz: DHCP packets", () => {
  const captured = [readHexFixture("dnsmasq-ack.hex"), readHexFixture("dnsmasq-offer.hex")];
  test("captured packets with bytes changed, cut or extended: a message, a lease or a DecodeError", () => {
    const packet = fc
      .tuple(fc.nat(captured.length - 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 24 }), fc.option(fc.nat()), fc.uint8Array({ maxLength: 64 }))
      .map(([i, flips, cut, tail]) => {
        const base = captured[i]!;
        const b = new Uint8Array(base.length + tail.length);
        b.set(base);
        b.set(tail, base.length);
        for (const [at, v] of flips) b[at % b.length] = v;
        return cut === null ? b : b.subarray(0, cut % (b.length + 1));
      });
    fuzz("DHCP (structure-aware)", packet, (b) => void dhcpPacket(b));
  });
  test("random bytes", () => {
    fuzz("DHCP (random bytes)", fc.uint8Array({ maxLength: 1500 }), (b) => void dhcpPacket(b));
  });
});

// ---- bad inputs found, kept: test/fixtures/hostile/dhcp ------------------------------------------

describe("hostile DHCP packets (test/fixtures/hostile/dhcp): each gives exactly its recorded outcome", () => {
  const dir = join(import.meta.dir, "..", "fixtures", "hostile", "dhcp");
  const fixtures = readdirSync(dir).filter((f) => f.endsWith(".json")).sort().map((f) => [f, JSON.parse(readFileSync(join(dir, f), "utf8")) as { what: string; hex: string; outcome: string }] as const);
  test("the fixtures are there", () => expect(fixtures.length).toBeGreaterThanOrEqual(8));
  test.each(fixtures)("%s", (_f, fx) => {
    expect(dhcpPacket(Uint8Array.from(Buffer.from(fx.hex, "hex")))).toBe(fx.outcome);
  });
  test("and in a limited child process, so a regression that hangs or blows up fails instead of sticking", async () => {
    const r = await runIsolated(target("dhcpPacket"), fixtures.map(([, fx]) => Uint8Array.from(Buffer.from(fx.hex, "hex"))), { caseTimeoutMs: 10_000 });
    expect(r.outcomes.map((o) => (o.ok ? o.value : o))).toEqual(fixtures.map(([, fx]) => fx.outcome));
  }, 60_000);
});

// ---- isolated: megabyte inputs in a child with a time and memory limit ---------------------------

describe("fuzz, isolated: large and pathological inputs stay within time and memory", () => {
  const HEAVY = { runs: 24, scale: 1 / 50, caseTimeoutMs: 20_000, memoryMb: 768 } as const;

  test("Pod bodies up to the 1 MiB limit: huge strings, arrays, nesting", async () => {
    const big = fc.oneof(
      fc.nat(MAX_POD_BYTES - 8).map((n) => "[".repeat(n) + "]".repeat(n)).map((s) => s.slice(0, MAX_POD_BYTES)),
      fc.nat(MAX_POD_BYTES / 16).map((n) => JSON.stringify({ metadata: {}, spec: { containers: Array.from({ length: n }, (_, i) => ({ name: `c${i}` })) }, status: { containerStatuses: Array.from({ length: n }, (_, i) => ({ name: `c${i}`, state: { running: {} } })) } })),
      fc.nat(MAX_POD_BYTES - 100).map((n) => JSON.stringify({ metadata: { name: "x".repeat(n) }, spec: { containers: [{ name: "a" }] }, status: {} })),
      fc.nat(MAX_POD_BYTES / 8).map((n) => '{"metadata":{' + Array.from({ length: n }, (_, i) => `"k${i}":0`).join(",") + "}}"),
    );
    const r = await fuzzIsolated("Pod JSON (1 MiB inputs)", big, target("kubePod"), HEAVY);
    expect(r.outcomes.length).toBeGreaterThan(0);
  }, 300_000);

  test("watch lines up to 1 MiB and DHCP packets up to 64 KiB of repeated options", async () => {
    const line = fc.nat(MAX_POD_BYTES / 16).map((n) =>
      JSON.stringify({ type: "MODIFIED", object: { metadata: {}, spec: { containers: Array.from({ length: n }, (_, i) => ({ name: `c${i}` })) }, status: { phase: "Running" } } }),
    );
    await fuzzIsolated("watch lines (1 MiB inputs)", line, target("kubeWatchLine"), HEAVY);
    // RFC 3396: repeated instances of one option are concatenated; 21,000 of them must not be quadratic.
    const packet = fc.tuple(fc.integer({ min: 1, max: 254 }), fc.integer({ min: 0, max: 3 }), fc.nat(65535 - 240)).map(([code, len, size]) => {
      const b = new Uint8Array(240 + size);
      b.set(captured0().subarray(0, 240));
      for (let i = 240; i + 2 + len <= b.length; i += 2 + len) {
        b[i] = code;
        b[i + 1] = len;
      }
      return b;
    });
    await fuzzIsolated("DHCP (64 KiB of repeated options)", packet, target("dhcpPacket"), HEAVY);
  }, 300_000);
});

function captured0(): Uint8Array {
  return decodeIpUdp(readHexFixture("dnsmasq-ack.hex")).payload;
}
