import { parseDurationUs } from '../units.ts';
import type { Percentiles, RunSummary } from './summary.ts';

/**
 * Run-level objectives, the gates of `--slo` (issue 11): a percentile of a latency, the error rate, goodput or
 * throughput against a limit — `p99<800ms`, `ttft_p95<500ms`, `tpot_p50<40ms`, `error_rate<1%`, `goodput>95%`,
 * `throughput>20/s`. Latencies are measured from the scheduled send (what a user arriving on schedule felt, so a
 * replayer that fell behind cannot hide it); `tpot`, `itl` and `ttfb` as their summary figures are.
 */
export interface Objective {
  /** As written, e.g. `ttft_p95<500ms`. */
  text: string;
  metric: ObjectiveMetric;
  /** The percentile for latency metrics (`p50` … `max`). */
  stat?: keyof Omit<Percentiles, 'count'>;
  op: '<' | '<=' | '>' | '>=';
  /** The limit: ms for latencies, a fraction (0–1) for rates, req/s for throughput. */
  limit: number;
}

export type ObjectiveMetric = 'latency' | 'ttft' | 'tpot' | 'itl' | 'ttfb' | 'lateness' | 'error_rate' | 'goodput' | 'throughput';

/** An objective judged on a run: its value (null when the run has none, which misses it) and whether it was met. */
export interface ObjectiveResult {
  objective: string;
  value: number | null;
  limit: number;
  /** `ms`, `%` (value and limit as percentages) or `req/s`. */
  unit: 'ms' | '%' | 'req/s';
  met: boolean;
}

const STATS: Record<string, Objective['stat']> = { p50: 'p50', p90: 'p90', p95: 'p95', p99: 'p99', 'p99.9': 'p999', p999: 'p999', max: 'max' };
const LATENCIES = new Set(['latency', 'e2e', 'ttft', 'tpot', 'itl', 'ttfb', 'lateness']);

/**
 * Parses one run-level objective, or returns null when `part` is not one (a per-request objective such as
 * `ttft<500ms` is `metrics/slo.ts`'s). @throws Error naming the problem when it is one but malformed.
 */
export function parseObjective(part: string): Objective | null {
  const m = /^([a-z_0-9.]+?)\s*(<=|>=|<|>)\s*(.+)$/.exec(part);
  if (!m) return null;
  const [, name, op, value] = m as unknown as [string, string, Objective['op'], string];
  const pct = /^(?:([a-z][a-z0-9]*)_)?(p\d+(?:\.\d)?|max)$/.exec(name);
  if (pct) {
    const metric = pct[1] ?? 'latency';
    const stat = STATS[pct[2]!];
    if (!LATENCIES.has(metric) || !stat) throw new Error(`'${part}': a percentile objective is [METRIC_]p50|p90|p95|p99|p99.9|max with METRIC one of latency, ttft, tpot, itl, ttfb, lateness (e.g. ttft_p95<500ms)`);
    if (!/[a-zµ]\s*$/i.test(value)) throw new Error(`'${part}': give the unit (ms or s), e.g. ${name}${op}500ms`);
    return { text: part, metric: metric === 'e2e' ? 'latency' : (metric as ObjectiveMetric), stat, op, limit: parseDurationUs(value) / 1000 };
  }
  if (name === 'error_rate' || name === 'goodput') {
    const p = /^(\d+(?:\.\d+)?)\s*%$/.exec(value);
    if (!p || Number(p[1]) > 100) throw new Error(`'${part}': ${name} takes a percentage from 0 to 100, e.g. ${name}${op}${name === 'goodput' ? '95' : '1'}%`);
    return { text: part, metric: name, op, limit: Number(p[1]) / 100 };
  }
  if (name === 'throughput') {
    const r = /^(\d+(?:\.\d+)?)\s*\/s$/.exec(value);
    if (!r) throw new Error(`'${part}': throughput takes completed requests per second, e.g. throughput${op}20/s`);
    return { text: part, metric: 'throughput', op, limit: Number(r[1]) };
  }
  return null;
}

/** The summary figure a latency objective reads (from the scheduled send where the summary has one). */
function latencyOf(s: RunSummary, metric: ObjectiveMetric): Percentiles {
  switch (metric) {
    case 'ttft': return s.ttftFromScheduledMs;
    case 'tpot': return s.tpotMs;
    case 'itl': return s.itlMs;
    case 'ttfb': return s.ttfbMs;
    case 'lateness': return s.latenessMs;
    default: return s.latencyFromScheduledMs;
  }
}

const holds = (value: number, op: Objective['op'], limit: number) => (op === '<' ? value < limit : op === '<=' ? value <= limit : op === '>' ? value > limit : value >= limit);

/**
 * Judges objectives on a run. The error rate is over the requests that had not failed when recorded (as goodput is):
 * a request that did not complete — a transport error, no answer, or an HTTP status ≥ 400 — is an error.
 */
export function judgeObjectives(objectives: readonly Objective[], s: RunSummary, requests: { eligible: number; failed: number }): ObjectiveResult[] {
  return objectives.map((o) => {
    let value: number | null;
    let unit: ObjectiveResult['unit'] = 'ms';
    let limit = o.limit;
    if (o.stat) value = latencyOf(s, o.metric)[o.stat];
    else if (o.metric === 'throughput') {
      value = s.throughput;
      unit = 'req/s';
    } else {
      unit = '%';
      limit = o.limit * 100;
      if (o.metric === 'goodput') value = s.goodput ? s.goodput.fraction * 100 : null;
      else {
        value = requests.eligible > 0 ? Math.round((requests.failed / requests.eligible) * 100_000) / 1000 : null;
      }
    }
    return { objective: o.text, value, limit, unit, met: value !== null && holds(value, o.op, limit) };
  });
}
