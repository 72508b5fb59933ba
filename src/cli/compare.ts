import { compareSides, DEFAULT_METRICS, type Comparison, type MetricComparison } from '../compare/compare.ts';
import { brokenAllowances, parseMaxRegression } from '../compare/gate.ts';
import { readSide } from '../compare/sides.ts';
import type { Output } from './output.ts';

/** Options of `tracewarp compare`. */
export interface CompareCommandOptions {
  json?: boolean;
  seed?: number;
  maxRegression?: string;
}

/**
 * `tracewarp compare BASE CANDIDATE`: each metric on both sides, the difference with its 95 % interval and a verdict;
 * with `--max-regression`, exit 1 when a metric got worse by more than allowed.
 */
export function runCompare(basePath: string, candidatePath: string, opts: CompareCommandOptions, out: Output): number {
  const allowances = opts.maxRegression !== undefined ? parseMaxRegression(opts.maxRegression) : [];
  const base = readSide(basePath);
  const candidate = readSide(candidatePath);
  const names = [...new Set([...DEFAULT_METRICS, ...allowances.map((a) => a.metric)])];
  const c = compareSides(base, candidate, names, opts.seed ?? 1);
  const broken = brokenAllowances(c, allowances);
  if (opts.json) out.out(JSON.stringify({ ...c, ...(allowances.length > 0 ? { gate: { allowances: allowances.map((a) => a.text), broken, passed: broken.length === 0 } } : {}) }));
  else {
    out.out(formatComparison(c));
    if (allowances.length > 0) out.out(broken.length === 0 ? `gate passed: no metric got worse by more than allowed (${allowances.map((a) => a.text).join(', ')})` : `gate FAILED: ${broken.map((b) => `${b.allowance} (got ${fmtDiff(b.diff)}${b.relative !== null ? `, ${pct(b.relative)}` : ''})`).join('; ')}`);
  }
  return broken.length > 0 ? 1 : 0;
}

const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
const fmtDiff = (x: number) => `${x >= 0 ? '+' : ''}${Math.round(x * 10) / 10}`;

function cell(m: MetricComparison, v: number | null): string {
  if (v === null) return '—';
  return m.metric === 'error_rate' ? `${(v * 100).toFixed(2)} %` : `${(Math.round(v * 10) / 10).toFixed(1)} ms`;
}

/** The comparison as a table a person reads. */
export function formatComparison(c: Comparison): string {
  const lines = [
    `compare ${c.base.kind} ${c.base.path} (base) with ${c.candidate.kind} ${c.candidate.path} (candidate)`,
    c.pairing === 'paired' ? 'paired: the same requests on both sides' : 'unpaired: the two sides are different workloads (different digests), so each is resampled on its own',
    `method: ${c.method}`,
    `  ${'metric'.padEnd(14)} ${'base'.padStart(12)} ${'candidate'.padStart(12)} ${'difference [95 % CI]'.padStart(34)}  verdict`,
  ];
  for (const m of c.metrics) {
    const diff = m.diff === null ? '—' : `${m.metric === 'error_rate' ? `${fmtDiff(m.diff * 100)} pts` : `${fmtDiff(m.diff)} ms`} [${m.metric === 'error_rate' ? `${fmtDiff(m.ciLow! * 100)}, ${fmtDiff(m.ciHigh! * 100)}` : `${fmtDiff(m.ciLow!)}, ${fmtDiff(m.ciHigh!)}`}]${m.relative !== null && m.metric !== 'error_rate' ? ` ${pct(m.relative)}` : ''}`;
    lines.push(`  ${m.metric.padEnd(14)} ${cell(m, m.base).padStart(12)} ${cell(m, m.candidate).padStart(12)} ${diff.padStart(34)}  ${m.n === 0 ? 'no values' : m.verdict}`);
  }
  return lines.join('\n');
}
