// Summaries of repeated measurements and the result model the report renders. Pure.
//
// Every figure is a median with its min and max over n runs, set against a baseline measured
// in the same run (the machine is shared and noisy: the ratio is what carries over).

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  /** Every sample, in the order measured (JSON keeps them; the tables show median/min/max). */
  samples: number[];
}

/** Median (mean of the middle two for an even count), min and max. Throws on no samples. */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error("summarizing no samples");
  for (const s of samples) if (!Number.isFinite(s)) throw new Error(`summarizing a non-finite sample (${s})`);
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { n: samples.length, median, min: sorted[0]!, max: sorted[sorted.length - 1]!, samples: [...samples] };
}

export type Unit = "ms" | "s" | "MB" | "Mbit/s" | "count";

/** A target from issue 8, e.g. "ours ≤ 150 ms". `value` is in the figure's unit. */
export interface Target {
  op: "<=" | ">=" | "==";
  value: number;
  /** How it reads in the table when the plain number is not enough ("flat: growth ≤ 1 MB"). */
  text?: string;
}

export interface Figure {
  /** Stable key for JSON consumers, e.g. "client.dhcp". */
  key: string;
  label: string;
  unit: Unit;
  ours: Summary;
  baseline?: { label: string; summary: Summary };
  target?: Target;
  /** What the reference bash scripts measured (from issue 8 / REFERENCE.md), as text. */
  reference?: string;
  note?: string;
}

export interface GroupResult {
  id: GroupId;
  title: string;
  figures: Figure[];
  /**
   * Tables that show this group's figures more compactly than one row per figure (the figures
   * stay in the JSON). Cells are final text.
   */
  tables?: { title?: string; head: string[]; rows: string[][] }[];
  /** Facts that are not distributions: process counts, rules before/after, fragment counters. */
  facts: { label: string; value: string }[];
  notes: string[];
  durationMs: number;
  error?: string;
  /** Anything else worth keeping in the JSON (raw per-run data). */
  data?: Record<string, unknown>;
}

export const GROUPS = ["client", "recovery", "scale", "gateway", "footprint", "datapath", "openvpn"] as const;
export type GroupId = (typeof GROUPS)[number];

export function ratio(f: Figure): number | undefined {
  if (!f.baseline || f.baseline.summary.median === 0) return undefined;
  return f.ours.median / f.baseline.summary.median;
}

export function meetsTarget(f: Figure): boolean | undefined {
  const t = f.target;
  if (!t) return undefined;
  const v = f.ours.median;
  return t.op === "<=" ? v <= t.value : t.op === ">=" ? v >= t.value : v === t.value;
}
