import { compareSides, DEFAULT_METRICS, type Comparison, type MetricComparison } from '../compare/compare.ts';
import { brokenAllowances, parseMaxRegression } from '../compare/gate.ts';
import { readSide } from '../compare/sides.ts';
import { usageError } from '../errors.ts';
import type { ObjectiveResult } from '../metrics/objectives.ts';
import { parseSlo } from '../metrics/slo.ts';
import { summarize } from '../metrics/summary.ts';
import { readRunFile } from '../results/run-file.ts';
import type { Output } from './output.ts';

/** Options of `tracewarp compare`. */
export interface CompareCommandOptions {
  json?: boolean;
  /** `text` (default), `json` (= `json: true`) or `md` (a pull-request comment). */
  format?: string;
  seed?: number;
  maxRegression?: string;
  /** Run objectives judged on each run side (`p99<800ms,error_rate<1%`); exit 1 when the candidate misses one. */
  slo?: string;
}

/** The formats of `compare --format`. */
export const COMPARE_FORMATS = ['text', 'json', 'md'] as const;

/** The run objectives of `slo` judged on a run file (null for a trace side: it is the baseline as recorded). */
function objectivesOf(path: string, kind: string, slo: string): ObjectiveResult[] | null {
  if (kind !== 'run') return null;
  return summarize(readRunFile(path).results, parseSlo(slo)).objectives ?? [];
}

/**
 * `tracewarp compare BASE CANDIDATE`: each metric on both sides, the difference with its 95 % interval and a verdict;
 * with `--max-regression`, exit 1 when a metric got worse by more than allowed.
 */
export function runCompare(basePath: string, candidatePath: string, opts: CompareCommandOptions, out: Output): number {
  const format = opts.format ?? (opts.json ? 'json' : 'text');
  if (!(COMPARE_FORMATS as readonly string[]).includes(format)) usageError(`--format: '${format}' is not one of ${COMPARE_FORMATS.join(', ')}`);
  if (opts.json && format !== 'json') usageError(`--json and --format ${format} ask for two formats; give one`);
  if (opts.slo !== undefined) parseSlo(opts.slo);
  const allowances = opts.maxRegression !== undefined ? parseMaxRegression(opts.maxRegression) : [];
  const base = readSide(basePath);
  const candidate = readSide(candidatePath);
  const names = [...new Set([...DEFAULT_METRICS, ...allowances.map((a) => a.metric)])];
  const c = compareSides(base, candidate, names, opts.seed ?? 1);
  const broken = brokenAllowances(c, allowances);
  const objectives = opts.slo !== undefined ? { slo: opts.slo, base: objectivesOf(basePath, base.kind, opts.slo), candidate: objectivesOf(candidatePath, candidate.kind, opts.slo)! } : null;
  const sloMissed = objectives !== null && objectives.candidate.some((o) => !o.met);
  const gateLine = allowances.length === 0 ? null : broken.length === 0 ? `gate passed: no metric got worse by more than allowed (${allowances.map((a) => a.text).join(', ')})` : `gate FAILED: ${broken.map((b) => `${b.allowance} (got ${fmtDiff(b.diff)}${b.relative !== null ? `, ${pct(b.relative)}` : ''})`).join('; ')}`;
  if (format === 'json') out.out(JSON.stringify({ ...c, ...(allowances.length > 0 ? { gate: { allowances: allowances.map((a) => a.text), broken, passed: broken.length === 0 } } : {}), ...(objectives ? { objectives } : {}) }));
  else {
    out.out(format === 'md' ? comparisonMarkdown(c) : formatComparison(c));
    if (gateLine) out.out(format === 'md' ? `\n**${gateLine}**` : gateLine);
    if (objectives) out.out(objectivesText(objectives.candidate, objectives.base, format === 'md'));
  }
  return broken.length > 0 || sloMissed ? 1 : 0;
}

function objectivesText(candidate: ObjectiveResult[], base: ObjectiveResult[] | null, md: boolean): string {
  const v = (o: ObjectiveResult | undefined) => (o ? `${o.value === null ? '—' : `${o.value} ${o.unit}`} ${o.met ? 'met' : 'MISSED'}` : '—');
  const missed = candidate.filter((o) => !o.met).length;
  const head = missed === 0 ? `SLO met by the candidate: all ${candidate.length} objectives` : `SLO MISSED by the candidate: ${missed} of ${candidate.length} objectives`;
  if (md) return [`\n**${head}**`, '', '| objective | limit | base | candidate |', '| --- | --- | --- | --- |', ...candidate.map((o, i) => `| \`${o.objective}\` | ${o.limit} ${o.unit} | ${v(base?.[i])} | ${v(o)} |`)].join('\n');
  return [head, ...candidate.map((o, i) => `  ${o.objective.padEnd(22)} limit ${o.limit} ${o.unit}   base ${v(base?.[i])}   candidate ${v(o)}`)].join('\n');
}

const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
const fmtDiff = (x: number) => `${x >= 0 ? '+' : ''}${Math.round(x * 10) / 10}`;

function cell(m: MetricComparison, v: number | null): string {
  if (v === null) return '—';
  return m.metric === 'error_rate' ? `${(v * 100).toFixed(2)} %` : `${(Math.round(v * 10) / 10).toFixed(1)} ms`;
}

/** The comparison as Markdown (a pull-request comment): the sides, the method, and one table row per metric. */
export function comparisonMarkdown(c: Comparison): string {
  const lines = [
    `### tracewarp compare: \`${c.candidate.path}\` (candidate) vs \`${c.base.path}\` (base)`,
    '',
    `${c.pairing === 'paired' ? 'Paired: the same requests on both sides.' : 'Unpaired: different workloads, each side resampled on its own.'} Method: ${c.method}.`,
    '',
    '| metric | base | candidate | difference [95 % CI] | verdict |',
    '| --- | ---: | ---: | ---: | --- |',
  ];
  for (const m of c.metrics) {
    const diff = m.diff === null ? '—' : m.metric === 'error_rate' ? `${fmtDiff(m.diff * 100)} pts [${fmtDiff(m.ciLow! * 100)}, ${fmtDiff(m.ciHigh! * 100)}]` : `${fmtDiff(m.diff)} ms [${fmtDiff(m.ciLow!)}, ${fmtDiff(m.ciHigh!)}]${m.relative !== null ? ` ${pct(m.relative)}` : ''}`;
    const verdict = m.n === 0 ? 'no values' : m.verdict === 'worse' ? '**worse**' : m.verdict;
    lines.push(`| ${m.metric} | ${cell(m, m.base)} | ${cell(m, m.candidate)} | ${diff} | ${verdict} |`);
  }
  return lines.join('\n');
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
