import { nearestRank } from '../metrics/exact.ts';
import type { Rng } from '../rng.ts';

/**
 * The statistics of `compare` (issue 11): a percentile's difference between two sets of per-request values and its
 * 95 % confidence interval by the bootstrap (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13: the
 * percentile interval). Paired: requests are resampled as pairs (the same workload on both sides, request i against
 * request i), which removes the spread between requests from the difference. Unpaired: each side is resampled on its
 * own. Seeded: the same inputs and seed give the same interval.
 */

/** The q-quantile (0–1) of values, nearest rank, as `metrics/exact.ts` reports them. `values` is sorted in place. */
export function quantile(values: Float64Array, q: number): number {
  return nearestRank(values.sort(), q);
}

/** Resamples to draw: enough for a stable 95 % interval, fewer on very large runs (each one sorts every value). */
export function resamplesFor(n: number): number {
  return Math.max(200, Math.min(1000, Math.floor(20_000_000 / Math.max(1, n))));
}

/** A difference candidate − base with its interval. */
export interface Difference {
  base: number;
  candidate: number;
  diff: number;
  ciLow: number;
  ciHigh: number;
  resamples: number;
}

/** A statistic of a sample: a quantile (`q` 0–1) or the mean (`mean`, for rates of 0/1 values). It may reorder `values`. */
export type Statistic = number | 'mean';

function statistic(values: Float64Array, s: Statistic): number {
  if (s !== 'mean') return quantile(values, s);
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/**
 * The paired difference of a statistic: `base[i]` and `candidate[i]` are the same request on both sides.
 * @throws RangeError when the arrays differ in length or are empty.
 */
export function pairedDifference(base: Float64Array, candidate: Float64Array, q: Statistic, rng: Rng): Difference {
  if (base.length !== candidate.length || base.length === 0) throw new RangeError('paired values must be non-empty and of one length');
  const n = base.length;
  const b = new Float64Array(n);
  const c = new Float64Array(n);
  const diffs = new Float64Array(resamplesFor(n));
  for (let k = 0; k < diffs.length; k++) {
    for (let i = 0; i < n; i++) {
      const j = rng.int(n);
      b[i] = base[j]!;
      c[i] = candidate[j]!;
    }
    diffs[k] = statistic(c, q) - statistic(b, q);
  }
  return interval(statistic(Float64Array.from(base), q), statistic(Float64Array.from(candidate), q), diffs);
}

/** The unpaired difference of a statistic: two independent samples, each resampled on its own. */
export function unpairedDifference(base: Float64Array, candidate: Float64Array, q: Statistic, rng: Rng): Difference {
  if (base.length === 0 || candidate.length === 0) throw new RangeError('both sides need values');
  const b = new Float64Array(base.length);
  const c = new Float64Array(candidate.length);
  const diffs = new Float64Array(resamplesFor(Math.max(base.length, candidate.length)));
  for (let k = 0; k < diffs.length; k++) {
    for (let i = 0; i < b.length; i++) b[i] = base[rng.int(base.length)]!;
    for (let i = 0; i < c.length; i++) c[i] = candidate[rng.int(candidate.length)]!;
    diffs[k] = statistic(c, q) - statistic(b, q);
  }
  return interval(statistic(Float64Array.from(base), q), statistic(Float64Array.from(candidate), q), diffs);
}

function interval(base: number, candidate: number, diffs: Float64Array): Difference {
  diffs.sort();
  const at = (p: number) => diffs[Math.min(diffs.length - 1, Math.max(0, Math.floor(p * diffs.length)))]!;
  return { base, candidate, diff: candidate - base, ciLow: at(0.025), ciHigh: at(0.975), resamples: diffs.length };
}
