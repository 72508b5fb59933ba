import { TracewarpError } from '../errors.ts';
import { createRng } from '../rng.ts';
import { pairedDifference, unpairedDifference, type Statistic } from './bootstrap.ts';
import type { RequestFigures, Side } from './sides.ts';

/** A metric `compare` reports: a percentile of a per-request figure, or the error rate. */
export interface CompareMetric {
  /** As named in `--max-regression`: `latency_p99` (also `p99`), `ttft_p95`, `error_rate`. */
  name: string;
  figure: keyof Omit<RequestFigures, 'failed'> | 'failed';
  stat: Statistic;
}

/** The metrics compared by default: latency, TTFT, TTFB and TPOT percentiles, and the error rate. */
export const DEFAULT_METRICS: readonly string[] = ['latency_p50', 'latency_p90', 'latency_p99', 'ttft_p50', 'ttft_p90', 'ttft_p99', 'ttfb_p50', 'tpot_p50', 'tpot_p90', 'error_rate'];

/**
 * Differences smaller than this share of the baseline, or than {@link MIN_ABSOLUTE_EFFECT_MS}, are not called better or
 * worse: a shared machine's timers and scheduling move a 20 ms figure by a few milliseconds between identical runs.
 */
export const MIN_RELATIVE_EFFECT = 0.05;
/** The smallest time difference called better or worse, ms. */
export const MIN_ABSOLUTE_EFFECT_MS = 5;
/** The same for the error rate, in absolute terms (half a percentage point). */
export const MIN_ERROR_RATE_EFFECT = 0.005;

/** @throws TracewarpError `TW_USAGE` for an unknown metric name. */
export function metricNamed(name: string): CompareMetric {
  if (name === 'error_rate') return { name, figure: 'failed', stat: 'mean' };
  const m = /^(?:(latency|e2e|ttft|ttfb|tpot)_)?p(\d{1,2}(?:\.\d)?)$/.exec(name);
  if (!m) throw new TracewarpError('TW_USAGE', `unknown metric '${name}' (known: [latency_|ttft_|ttfb_|tpot_]pNN, e.g. p99, ttft_p95; error_rate)`);
  const figure = ({ latency: 'latencyMs', e2e: 'latencyMs', ttft: 'ttftMs', ttfb: 'ttfbMs', tpot: 'tpotMs' } as const)[(m[1] ?? 'latency') as 'latency'];
  return { name: `${m[1] === 'e2e' || !m[1] ? 'latency' : m[1]}_p${m[2]}`, figure, stat: Number(m[2]) / 100 };
}

export type Verdict = 'better' | 'worse' | 'no significant difference' | 'too few requests';

/** One metric compared. Times in ms; the error rate as a fraction. */
export interface MetricComparison {
  metric: string;
  base: number | null;
  candidate: number | null;
  diff: number | null;
  ciLow: number | null;
  ciHigh: number | null;
  /** diff / base. */
  relative: number | null;
  verdict: Verdict;
  /** Values (or pairs) the figures are over. */
  n: number;
}

/** What `compare` found. */
export interface Comparison {
  base: { kind: Side['kind']; path: string };
  candidate: { kind: Side['kind']; path: string };
  /** `paired`: the same requests on both sides (one workload digest, or a trace and a run of it), else `unpaired`. */
  pairing: 'paired' | 'unpaired';
  /** How the intervals were computed, in words. */
  method: string;
  seed: number;
  metrics: MetricComparison[];
}

/** How two sides pair: request by request (the same digest; a trace and a run of it), or not at all. */
function pairingOf(base: Side, candidate: Side): { prefix: 'run:' | 'trace:' | null } {
  if (base.kind === 'run' && candidate.kind === 'run') return { prefix: base.digest !== null && base.digest === candidate.digest ? 'run:' : null };
  return { prefix: 'trace:' };
}

function values(side: Side, keys: readonly string[], m: CompareMetric): Array<number | null> {
  return keys.map((k) => {
    const f = side.requests.get(k);
    if (!f) return null;
    return m.figure === 'failed' ? (f.failed ? 1 : 0) : f[m.figure];
  });
}

/** Compares two sides on each metric with a seeded bootstrap (see `compare/bootstrap.ts`). */
export function compareSides(base: Side, candidate: Side, metricNames: readonly string[], seed: number): Comparison {
  const { prefix } = pairingOf(base, candidate);
  const rng = createRng(seed).child('compare');
  const ownKeys = (s: Side, p: string) => [...s.requests.keys()].filter((k) => k.startsWith(p));
  // Paired: the requests both sides hold; unpaired: each side's own (a run by result, a trace by record).
  const keys = prefix ? ownKeys(base, prefix).filter((k) => candidate.requests.has(k)) : [];
  const baseKeys = prefix ? keys : ownKeys(base, base.kind === 'run' ? 'run:' : 'trace:');
  const candidateKeys = prefix ? keys : ownKeys(candidate, candidate.kind === 'run' ? 'run:' : 'trace:');
  const metrics = metricNames.map((name) => {
    const m = metricNamed(name);
    const bv = values(base, baseKeys, m);
    const cv = values(candidate, candidateKeys, m);
    // Paired, a request counts where both sides have the figure; unpaired, each side's figures on their own.
    const both = prefix ? keys.map((_, i) => i).filter((i) => bv[i] !== null && cv[i] !== null) : null;
    const b = both ? both.map((i) => bv[i]!) : bv.filter((v): v is number => v !== null);
    const c = both ? both.map((i) => cv[i]!) : cv.filter((v): v is number => v !== null);
    return judge(m, b, c, prefix !== null, rng.child(m.name));
  });
  return {
    base: { kind: base.kind, path: base.path }, candidate: { kind: candidate.kind, path: candidate.path },
    pairing: prefix ? 'paired' : 'unpaired',
    method: `${prefix ? 'paired' : 'unpaired'} bootstrap over requests (percentile interval, 95 %, up to 1000 resamples, seed ${seed}); differences under ${MIN_RELATIVE_EFFECT * 100} % of the baseline or ${MIN_ABSOLUTE_EFFECT_MS} ms (error rate: ${MIN_ERROR_RATE_EFFECT * 100} points) are not called, nor a quantile with fewer than 10 values beyond it`,
    seed,
    metrics,
  };
}

/**
 * Values a quantile needs before it is judged: ten beyond it on each side (p50: 20, p90: 100, p99: 1,000). With fewer,
 * a p99 is the largest value or two, and a run's luck decides it.
 */
export function valuesToJudge(stat: Statistic): number {
  return stat === 'mean' ? 1 : Math.ceil(10 / Math.min(stat, 1 - stat));
}

function judge(m: CompareMetric, b: number[], c: number[], paired: boolean, rng: ReturnType<typeof createRng>): MetricComparison {
  if (b.length === 0 || c.length === 0) return { metric: m.name, base: null, candidate: null, diff: null, ciLow: null, ciHigh: null, relative: null, verdict: 'too few requests', n: 0 };
  const d = (paired ? pairedDifference : unpairedDifference)(Float64Array.from(b), Float64Array.from(c), m.stat, rng);
  const relative = d.base !== 0 ? d.diff / d.base : null;
  const big = m.figure === 'failed' ? Math.abs(d.diff) >= MIN_ERROR_RATE_EFFECT : Math.abs(d.diff) >= MIN_ABSOLUTE_EFFECT_MS && (relative === null || Math.abs(relative) >= MIN_RELATIVE_EFFECT);
  const enough = Math.min(b.length, c.length) >= valuesToJudge(m.stat);
  const verdict: Verdict = !enough ? 'too few requests' : big && d.ciLow > 0 ? 'worse' : big && d.ciHigh < 0 ? 'better' : 'no significant difference';
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return { metric: m.name, base: r3(d.base), candidate: r3(d.candidate), diff: r3(d.diff), ciLow: r3(d.ciLow), ciHigh: r3(d.ciHigh), relative: relative === null ? null : r3(relative), verdict, n: paired ? b.length : Math.min(b.length, c.length) };
}
