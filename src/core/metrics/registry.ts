// A small metrics registry and its Prometheus text exposition (format 0.0.4). Pure: values are
// set by the caller, render() turns them into text. Every label value and help text passes through
// one escaping function each; names are checked once, when a metric is registered.
//
// Conventions (prometheus.io/docs/practices/naming): the pod_gateway_ prefix, base units
// (seconds, bytes), counters end in _total, a timestamp is a gauge in seconds since the epoch.

export type Labels = Readonly<Record<string, string>>;
export type MetricType = "counter" | "gauge" | "histogram";

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Label values: backslash, double quote and line feed are escaped (the format's only rule). */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === "\\" ? "\\\\" : c === '"' ? '\\"' : "\\n"));
}

/** HELP text: backslash and line feed are escaped (quotes are not). */
export function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === "\\" ? "\\\\" : "\\n"));
}

/** Go's strconv-style float text as Prometheus reads it: +Inf, -Inf, NaN, integers without ".0". */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function renderLabels(l: Labels, extra?: [string, string]): string {
  const parts = Object.keys(l)
    .sort()
    .map((k) => `${k}="${escapeLabelValue(l[k]!)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

const keyOf = (l: Labels): string => JSON.stringify(Object.keys(l).sort().map((k) => [k, l[k]]));

interface Family {
  name: string;
  help: string;
  type: MetricType;
  labelNames: readonly string[];
  buckets?: readonly number[];
  series: Map<string, { labels: Labels; value: number; counts?: number[]; sum?: number; count?: number }>;
}

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();

  private register(name: string, help: string, type: MetricType, labelNames: readonly string[], buckets?: readonly number[]): Family {
    if (!NAME.test(name)) throw new Error(`metric name ${JSON.stringify(name)} is not valid`);
    if (type === "counter" && !name.endsWith("_total")) throw new Error(`counter ${name} must end in _total`);
    for (const l of labelNames) if (!LABEL.test(l) || l.startsWith("__") || l === "le") throw new Error(`label name ${JSON.stringify(l)} of ${name} is not valid`);
    if (this.families.has(name)) throw new Error(`metric ${name} is registered twice`);
    const f: Family = { name, help, type, labelNames, buckets, series: new Map() };
    this.families.set(name, f);
    return f;
  }

  private series(f: Family, labels: Labels) {
    const names = Object.keys(labels);
    if (names.length !== f.labelNames.length || names.some((n) => !f.labelNames.includes(n))) throw new Error(`${f.name} takes labels ${f.labelNames.join(",") || "(none)"}, got ${names.join(",") || "(none)"}`);
    const k = keyOf(labels);
    let s = f.series.get(k);
    if (!s) {
      s = { labels: { ...labels }, value: 0, ...(f.buckets ? { counts: f.buckets.map(() => 0), sum: 0, count: 0 } : {}) };
      f.series.set(k, s);
    }
    return s;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []) {
    const f = this.register(name, help, "counter", labelNames);
    if (labelNames.length === 0) this.series(f, {});
    return {
      inc: (by = 1, labels: Labels = {}) => {
        if (!(by >= 0)) throw new Error(`${name}: a counter only goes up (got ${by})`);
        this.series(f, labels).value += by;
      },
      /** For a count kept elsewhere (it never goes down while the process lives). */
      set: (v: number, labels: Labels = {}) => {
        this.series(f, labels).value = v;
      },
      get: (labels: Labels = {}) => f.series.get(keyOf(labels))?.value ?? 0,
    };
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []) {
    const f = this.register(name, help, "gauge", labelNames);
    return {
      set: (v: number, labels: Labels = {}) => {
        this.series(f, labels).value = v;
      },
      /** Remove a series (a lease that is gone has no expiry). */
      clear: (labels: Labels = {}) => {
        f.series.delete(keyOf(labels));
      },
      get: (labels: Labels = {}) => f.series.get(keyOf(labels))?.value,
    };
  }

  /** `buckets`: upper bounds, ascending; +Inf is added. */
  histogram(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []) {
    for (let i = 1; i < buckets.length; i++) if (!(buckets[i]! > buckets[i - 1]!)) throw new Error(`${name}: buckets must ascend`);
    const f = this.register(name, help, "histogram", labelNames, buckets);
    if (labelNames.length === 0) this.series(f, {});
    return {
      observe: (v: number, labels: Labels = {}) => {
        const s = this.series(f, labels);
        for (let i = 0; i < buckets.length; i++) if (v <= buckets[i]!) s.counts![i]!++;
        s.sum! += v;
        s.count!++;
      },
      count: (labels: Labels = {}) => f.series.get(keyOf(labels))?.count ?? 0,
    };
  }

  /** The text exposition format, families in registration order, series sorted by labels. */
  render(): string {
    const out: string[] = [];
    for (const f of this.families.values()) {
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
      const series = [...f.series.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, s]) => s);
      for (const s of series) {
        if (f.type !== "histogram") {
          out.push(`${f.name}${renderLabels(s.labels)} ${formatValue(s.value)}`);
          continue;
        }
        f.buckets!.forEach((b, i) => out.push(`${f.name}_bucket${renderLabels(s.labels, ["le", formatValue(b)])} ${s.counts![i]}`));
        out.push(`${f.name}_bucket${renderLabels(s.labels, ["le", "+Inf"])} ${s.count}`);
        out.push(`${f.name}_sum${renderLabels(s.labels)} ${formatValue(s.sum!)}`);
        out.push(`${f.name}_count${renderLabels(s.labels)} ${s.count}`);
      }
    }
    return out.join("\n") + "\n";
  }
}

export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
