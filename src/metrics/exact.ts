/** Distribution of one feature. */
export interface FeatureStats { p50: number; p90: number; p99: number; max: number; mean: number; count: number }

/** The q-quantile (0–1) of sorted values, nearest rank: the smallest value with at least q of them at or below it. */
export function nearestRank(sorted: ArrayLike<number>, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Exact order statistics (nearest-rank) of a list of numbers; null when empty. */
export function featureStats(values: number[]): FeatureStats | null {
  if (values.length === 0) return null;
  const v = Float64Array.from(values).sort();
  const at = (p: number) => nearestRank(v, p / 100);
  const sum = v.reduce((a, b) => a + b, 0);
  return { p50: at(50), p90: at(90), p99: at(99), max: v[v.length - 1]!, mean: Math.round((sum / v.length) * 1000) / 1000, count: v.length };
}
