/** Distribution of one feature. */
export interface FeatureStats { p50: number; p90: number; p99: number; max: number; mean: number; count: number }

/** Exact order statistics (nearest-rank) of a list of numbers; null when empty. */
export function featureStats(values: number[]): FeatureStats | null {
  if (values.length === 0) return null;
  const v = Float64Array.from(values).sort();
  const at = (p: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))]!;
  const sum = v.reduce((a, b) => a + b, 0);
  return { p50: at(50), p90: at(90), p99: at(99), max: v[v.length - 1]!, mean: Math.round((sum / v.length) * 1000) / 1000, count: v.length };
}
