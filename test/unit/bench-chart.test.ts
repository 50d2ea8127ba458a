// The README chart (test/bench/lib/chart.ts): rows picked from a bench run, bars on a log scale,
// labels escaped, and the SVG a well-formed document.
import { describe, expect, test } from "bun:test";
import { chartRows, formatMs, logDomain, parseReferenceMs, renderChart, renderChartSvg, xmlText } from "../bench/lib/chart.ts";
import { summarize, type Figure, type GroupResult } from "../bench/lib/stats.ts";

const fig = (key: string, ours: number, extra: Partial<Figure> = {}): Figure => ({ key, label: key, unit: "ms", ours: summarize([ours]), ...extra });
const group = (id: GroupResult["id"], figures: Figure[], error?: string): GroupResult => ({ id, title: id, figures, facts: [], notes: [], durationMs: 0, ...(error ? { error } : {}) });
const base = (ms: number, label = "floor") => ({ label, summary: summarize([ms]) });

const run = {
  groups: [
    group("client", [
      fig("client.dhcp", 60, { reference: "3.2 s median", baseline: base(24, "hello world") }),
      fig("client.static", 50, { reference: "~0.07 s", baseline: base(24, "hello world") }),
      fig("client.cpu.dhcp", 40, { baseline: base(80) }),
    ]),
    group("recovery", [fig("recovery.move", 729, { reference: "18 s median (14–23 s)", baseline: base(25) })]),
    group("gateway", [
      fig("gateway.iptables-nft.0.first", 133, { baseline: base(194) }),
      fig("gateway.nft.0.first", 128, { baseline: base(194) }),
      fig("gateway.iptables-nft.1000.first", 506, { baseline: base(25549) }),
    ]),
    group("footprint", [fig("footprint.client.rss", 49, { unit: "MB" })]),
  ],
};

describe("parseReferenceMs", () => {
  test.each([
    ["3.2 s median", 3200],
    ["~0.07 s", 70],
    ["18 s median (14–23 s)", 18000],
    ["3.2 s, 2× the rules after a restart", 3200],
    ["250 ms", 250],
  ] as const)("%s → %d ms", (t, ms) => expect(parseReferenceMs(t)).toBeCloseTo(ms, 6));
  test("no duration → undefined", () => {
    expect(parseReferenceMs(undefined)).toBeUndefined();
    expect(parseReferenceMs("~5 MB (bash + sleep)")).toBeUndefined();
    expect(parseReferenceMs("")).toBeUndefined();
  });
});

describe("chartRows", () => {
  test("route, heal and gateway rows: ours, reference scripts, floor; missing groups and figures left out", () => {
    expect(chartRows(run)).toEqual([
      { label: "Route a pod (client-init, DHCP)", bars: [{ kind: "ours", ms: 60 }, { kind: "reference", ms: 3200 }, { kind: "floor", ms: 24 }] },
      { label: "Route a pod (client-init, static)", bars: [{ kind: "ours", ms: 50 }, { kind: "reference", ms: 70 }, { kind: "floor", ms: 24 }] },
      { label: "Heal: gateway pod moved", bars: [{ kind: "ours", ms: 729 }, { kind: "reference", ms: 18000 }, { kind: "floor", ms: 25 }] },
      { label: "Gateway init, 0 port forwards", bars: [{ kind: "ours", ms: 133 }, { kind: "reference", ms: 194 }] },
      { label: "Gateway init, 1000 port forwards", bars: [{ kind: "ours", ms: 506 }, { kind: "reference", ms: 25549 }] },
    ]);
  });
  test("a failed group contributes nothing", () => {
    expect(chartRows({ groups: [group("client", [fig("client.dhcp", 60)], "lab failed")] })).toEqual([]);
  });
});

describe("renderChartSvg", () => {
  const svg = renderChart(run);
  const bars = [...svg.matchAll(/<rect x="(\d+(?:\.\d+)?)" y="\d+(?:\.\d+)?" width="(\d+(?:\.\d+)?)" height="11" fill="[^"]+"><title>([^<]*)<\/title>/g)].map((m) => ({ x: Number(m[1]), w: Number(m[2]), title: m[3]! }));
  test("one bar per value, each titled with its series and value", () => {
    expect(bars.map((b) => b.title)).toEqual([
      "pod-gateway: 60 ms", "reference scripts: 3.2 s", "floor (same run): 24 ms",
      "pod-gateway: 50 ms", "reference scripts: 70 ms", "floor (same run): 24 ms",
      "pod-gateway: 729 ms", "reference scripts: 18 s", "floor (same run): 25 ms",
      "pod-gateway: 133 ms", "reference scripts: 194 ms",
      "pod-gateway: 506 ms", "reference scripts: 26 s",
    ]);
  });
  test("bar lengths are on a log scale: equal ratios, equal differences in length", () => {
    // domain 10 ms – 100 s (4 decades over the plot width): length = (log10(ms) - 1) / 4 * plot width
    const len = (title: string) => bars.find((b) => b.title === title)!.w;
    const decade = (len("reference scripts: 3.2 s") - len("pod-gateway: 60 ms")) / Math.log10(3200 / 60);
    expect(decade).toBeGreaterThan(50);
    expect((len("reference scripts: 18 s") - len("pod-gateway: 729 ms")) / Math.log10(18000 / 729)).toBeCloseTo(decade, 0);
    expect((len("pod-gateway: 50 ms") - len("floor (same run): 24 ms")) / Math.log10(50 / 24)).toBeCloseTo(decade, 0);
    expect(new Set(bars.map((b) => b.x)).size).toBe(1); // every bar starts at the axis
  });
  test("decade grid 10 ms … 100 s, title and legend", () => {
    expect(logDomain([24, 25549])).toEqual([10, 100000]);
    expect([...svg.matchAll(/text-anchor="middle" fill="#555">([^<]+)</g)].map((m) => m[1])).toEqual(["10 ms", "100 ms", "1 s", "10 s", "100 s"]);
    expect(svg).toContain(">pod-gateway</text>");
    expect(svg).toContain(">reference scripts</text>");
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  });
  test("well-formed: every element closed, labels escaped", () => {
    const doc = renderChartSvg([{ label: `a <b> & "c"`, bars: [{ kind: "ours", ms: 5 }] }], "t & <u>");
    expect(doc).toContain("a &lt;b&gt; &amp; &quot;c&quot;");
    expect(doc).toContain("t &amp; &lt;u&gt;");
    const stack: string[] = [];
    for (const m of doc.matchAll(/<(\/?)([a-z]+)[^>]*?(\/?)>/g)) {
      if (m[3]) continue;
      if (m[1]) expect(stack.pop()).toBe(m[2]);
      else stack.push(m[2]!);
    }
    expect(stack).toEqual([]);
  });
  test("pure: the same run renders the same bytes; nothing to draw is an error", () => {
    expect(renderChart(run)).toBe(svg);
    expect(() => renderChartSvg([], "t")).toThrow(/no figures/);
  });
  test("formatMs", () => {
    expect([formatMs(5.25), formatMs(60), formatMs(1000), formatMs(3200), formatMs(25549)]).toEqual(["5.3 ms", "60 ms", "1 s", "3.2 s", "26 s"]);
    expect(xmlText("<&>")).toBe("&lt;&amp;&gt;");
  });
});
