// The picture at the head of README's Performance section: time to route a pod, time to heal,
// gateway init at 0/50/200/1000 port forwards — ours, the reference scripts and the floor as
// horizontal bars on a log scale. Rendered from the bench results (latest.json) alone. Pure.
import type { BenchResults } from "./report.ts";
import type { Figure, GroupResult } from "./stats.ts";

export type BarKind = "ours" | "reference" | "floor";
export interface ChartBar {
  kind: BarKind;
  ms: number;
}
export interface ChartRow {
  label: string;
  bars: ChartBar[];
}

/**
 * The first duration in a reference text, in ms: "3.2 s median" → 3200, "~0.07 s" → 70,
 * "18 s median (14–23 s)" → 18000, "250 ms" → 250. Undefined when it names none.
 */
export function parseReferenceMs(text: string | undefined): number | undefined {
  const m = text ? /(\d+(?:\.\d+)?)\s*(ms|s)\b/.exec(text) : null;
  if (!m) return undefined;
  const v = Number(m[1]) * (m[2] === "s" ? 1000 : 1);
  return v > 0 ? v : undefined;
}

const figureOf = (groups: readonly GroupResult[], key: string): Figure | undefined =>
  groups.flatMap((g) => (g.error ? [] : g.figures)).find((f) => f.key === key && f.unit === "ms");

function bars(parts: [BarKind, number | undefined][]): ChartBar[] {
  return parts.filter((p): p is [BarKind, number] => p[1] !== undefined && Number.isFinite(p[1]) && p[1] > 0).map(([kind, ms]) => ({ kind, ms }));
}

/**
 * The chart's rows from a bench run. Route and heal: ours, the reference scripts (their measured
 * figure from the issue, as text in the result) and the floor (the baseline of the same run).
 * Gateway init: ours (first run, iptables-nft: the reference's own tool) against the reference
 * approach measured in the same run (one iptables process per rule). Rows without data are left out.
 */
export function chartRows(r: Pick<BenchResults, "groups">): ChartRow[] {
  const rows: ChartRow[] = [];
  const routeOrHeal: [string, string][] = [
    ["client.dhcp", "Route a pod (client-init, DHCP)"],
    ["client.static", "Route a pod (client-init, static)"],
    ["recovery.move", "Heal: gateway pod moved"],
    ["recovery.outage", "Heal: after a 30 s outage"],
  ];
  for (const [key, label] of routeOrHeal) {
    const f = figureOf(r.groups, key);
    if (!f) continue;
    const b = bars([["ours", f.ours.median], ["reference", parseReferenceMs(f.reference)], ["floor", f.baseline?.summary.median]]);
    rows.push({ label, bars: b });
  }
  for (const n of [0, 50, 200, 1000]) {
    const f = figureOf(r.groups, `gateway.iptables-nft.${n}.first`);
    if (!f) continue;
    rows.push({ label: `Gateway init, ${n} port forwards`, bars: bars([["ours", f.ours.median], ["reference", f.baseline?.summary.median]]) });
  }
  return rows.filter((row) => row.bars.length > 0);
}

/** XML text escaping for labels (the one escaping function of this format). */
export function xmlText(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** "85 ms", "1.2 s", "25 s". */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  const s = ms / 1000;
  return `${s < 10 ? s.toFixed(1).replace(/\.0$/, "") : Math.round(s)} s`;
}

const COLOURS: Record<BarKind, string> = { ours: "#2b6cb0", reference: "#c05621", floor: "#a0aec0" };
const LEGEND: Record<BarKind, string> = { ours: "pod-gateway", reference: "reference scripts", floor: "floor (same run)" };

export interface Layout {
  width: number;
  labelWidth: number;
  barHeight: number;
  /** Log-scale domain in ms, decades; computed from the data when absent. */
  domain?: [number, number];
}
const DEFAULT_LAYOUT: Layout = { width: 760, labelWidth: 220, barHeight: 11 };

/** Decade bounds around every value: [10^floor(log10 min), 10^ceil(log10 max)]. */
export function logDomain(values: readonly number[]): [number, number] {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const a = 10 ** Math.floor(Math.log10(lo));
  let b = 10 ** Math.ceil(Math.log10(hi));
  if (b <= a) b = a * 10;
  return [a, b];
}

/** The chart as an SVG document. Pure: same rows and layout, same bytes. */
export function renderChartSvg(rows: readonly ChartRow[], title: string, layout: Partial<Layout> = {}): string {
  const L = { ...DEFAULT_LAYOUT, ...layout };
  const values = rows.flatMap((r) => r.bars.map((b) => b.ms));
  if (values.length === 0) throw new Error("chart: no figures to draw");
  const [lo, hi] = L.domain ?? logDomain(values);
  const x0 = L.labelWidth;
  const x1 = L.width - 70; // room for the value printed after the longest bar
  const x = (ms: number) => x0 + ((Math.log10(ms) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (x1 - x0);
  const top = 56;
  const gap = 10;
  const rowHeight = (r: ChartRow) => r.bars.length * (L.barHeight + 2) + gap;
  const height = top + rows.reduce((n, r) => n + rowHeight(r), 0) + 30;
  const out: string[] = [];
  const r1 = (n: number) => Math.round(n * 10) / 10;
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${height}" viewBox="0 0 ${L.width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${L.width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="18" font-size="13" font-weight="bold">${xmlText(title)}</text>`,
  );
  // legend
  let lx = 10;
  for (const k of ["ours", "reference", "floor"] as const) {
    out.push(`<rect x="${lx}" y="28" width="10" height="10" fill="${COLOURS[k]}"/>`, `<text x="${lx + 14}" y="37">${xmlText(LEGEND[k])}</text>`);
    lx += 24 + LEGEND[k].length * 6;
  }
  out.push(`<text x="${L.width - 10}" y="37" text-anchor="end" fill="#555">log scale; median of the run</text>`);
  // decade grid lines and their labels
  const bottom = height - 26;
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    const gx = r1(x(d));
    out.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${bottom}" stroke="#ddd"/>`, `<text x="${gx}" y="${bottom + 14}" text-anchor="middle" fill="#555">${xmlText(formatMs(d))}</text>`);
  }
  let y = top;
  for (const row of rows) {
    const h = rowHeight(row) - gap;
    out.push(`<text x="${x0 - 8}" y="${r1(y + h / 2 + 4)}" text-anchor="end">${xmlText(row.label)}</text>`);
    for (const b of row.bars) {
      const w = Math.max(1, x(b.ms) - x0);
      out.push(
        `<rect x="${x0}" y="${y}" width="${r1(w)}" height="${L.barHeight}" fill="${COLOURS[b.kind]}"><title>${xmlText(`${LEGEND[b.kind]}: ${formatMs(b.ms)}`)}</title></rect>`,
        `<text x="${r1(x0 + w + 4)}" y="${y + L.barHeight - 2}" font-size="10" fill="#333">${xmlText(formatMs(b.ms))}</text>`,
      );
      y += L.barHeight + 2;
    }
    y += gap;
  }
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

export const CHART_TITLE = "Time to route a pod, to heal, and gateway init against port forwards";

/** The README chart of a bench run. */
export function renderChart(r: Pick<BenchResults, "groups">): string {
  return renderChartSvg(chartRows(r), CHART_TITLE);
}
