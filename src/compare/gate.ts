import { TracewarpError } from '../errors.ts';
import { parseDurationUs } from '../units.ts';
import { metricNamed, type Comparison } from './compare.ts';

/** One allowance of `--max-regression`: how much worse a metric may get, relative to the base or in absolute terms. */
export interface Allowance {
  text: string;
  metric: string;
  /** Allowed increase as a share of the base (`+10%` → 0.1); for `error_rate`, absolute (`+1%` → 0.01). */
  relative?: number;
  /** Allowed increase in ms (`+50ms`). */
  absoluteMs?: number;
}

/**
 * Parses `--max-regression 'p99:+10%,ttft_p95:+50ms,error_rate:+1%'`.
 * @throws TracewarpError `TW_USAGE` listing every problem.
 */
export function parseMaxRegression(text: string): Allowance[] {
  const errors: string[] = [];
  const out: Allowance[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-z0-9_.]+)\s*:\s*\+?\s*(.+)$/.exec(part);
    try {
      if (!m) throw new Error(`'${part}': expected METRIC:+LIMIT, e.g. p99:+10% or ttft_p95:+50ms`);
      const metric = metricNamed(m[1]!).name;
      const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(m[2]!);
      if (pct) out.push({ text: part, metric, relative: Number(pct[1]) / 100 });
      else if (metric === 'error_rate') throw new Error(`'${part}': error_rate takes percentage points, e.g. error_rate:+1%`);
      else if (!/[a-zµ]\s*$/i.test(m[2]!)) throw new Error(`'${part}': give a unit (ms, s) or %, e.g. ${m[1]}:+50ms`);
      else out.push({ text: part, metric, absoluteMs: parseDurationUs(m[2]!) / 1000 });
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length > 0 || out.length === 0) throw new TracewarpError('TW_USAGE', `--max-regression: ${errors.join('; ') || 'empty'}`);
  return out;
}

/**
 * The allowances a comparison breaks: a metric worse by more than its allowance with 95 % confidence — the lower end
 * of the difference's interval is over the allowance (a difference inside the noise never fails the gate) — and with
 * enough values to judge it (a p99 of 30 requests is not judged).
 */
export function brokenAllowances(c: Comparison, allowances: readonly Allowance[]): Array<{ allowance: string; diff: number; relative: number | null }> {
  const broken: Array<{ allowance: string; diff: number; relative: number | null }> = [];
  for (const a of allowances) {
    const m = c.metrics.find((x) => x.metric === a.metric);
    if (!m || m.verdict === 'too few requests' || m.ciLow === null || m.base === null || m.diff === null) continue;
    const allowed = a.absoluteMs ?? (a.metric === 'error_rate' ? a.relative! : a.relative! * m.base);
    const over = m.ciLow > allowed;
    if (over) broken.push({ allowance: a.text, diff: m.diff, relative: m.relative });
  }
  return broken;
}
