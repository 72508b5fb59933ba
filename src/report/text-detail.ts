import { QUEUE_DEPTH_METRIC } from '../scrape/prometheus.ts';
import type { Percentiles } from '../metrics/summary.ts';
import { type ColdStart, type PhaseFigures, BREAKDOWN_DIMENSIONS, type BreakdownRow, type ReportDetail, type ScrapeSeries, type Timeline } from './model.ts';

/** Rows of the text time view at most: consecutive timeline bins are added up to fit. */
export const TEXT_TIMELINE_ROWS = 30;

const fmt = (v: number | null, digits = 1): string => (v === null ? '—' : v.toFixed(digits));
const p = (x: Percentiles) => `p50 ${fmt(x.p50).padStart(8)} p99 ${fmt(x.p99).padStart(8)}`;

function breakdownLines(name: string, rows: readonly BreakdownRow[]): string[] {
  const width = Math.min(48, Math.max(...rows.map((r) => r.key.length)));
  const lines = [`by ${name}:${' '.repeat(Math.max(1, width - name.length))}  requests  errors   latency (ms, from send)        TTFT (ms)`];
  for (const r of rows) {
    const key = r.key.length > width ? `${r.key.slice(0, width - 1)}…` : r.key.padEnd(width);
    lines.push(`  ${key} ${String(r.requests).padStart(8)} ${String(r.errors).padStart(7)}   ${p(r.latencyMs)}   ${r.ttftMs.count > 0 ? p(r.ttftMs) : '—'}`);
  }
  return lines;
}

/** The distinct workload digests of a report's run files (a run without one, e.g. interrupted, counts as `none`). */
export function workloadDigests(d: ReportDetail): string[] {
  return [...new Set(d.runs.map((r) => r.digest ?? 'none'))];
}

/** The scraped gauge a reader most wants next to the timeline: the server's queue (waiting requests), if scraped. */
export function queueSeries(scrape: readonly ScrapeSeries[]): ScrapeSeries | null {
  return scrape.find((s) => QUEUE_DEPTH_METRIC.test(s.name)) ?? null;
}

/** The last scraped value at or before `tS` (null before the first). */
function valueAt(s: ScrapeSeries, tS: number): number | null {
  let v: number | null = null;
  for (let i = 0; i < s.tS.length && s.tS[i]! <= tS; i++) v = s.values[i]!;
  return v;
}

function timeLines(t: Timeline, scrape: readonly ScrapeSeries[]): string[] {
  const n = t.tS.length;
  if (n === 0 || t.scheduled.every((x) => x === 0)) return [];
  const per = Math.ceil(n / TEXT_TIMELINE_ROWS);
  const widthS = per * t.binS;
  const queue = queueSeries(scrape);
  const rows: Array<{ from: number; done: number; errors: number; inFlight: number; p99: number | null; queue: number | null }> = [];
  for (let i = 0; i < n; i += per) {
    const sl = (a: number[]) => a.slice(i, i + per);
    const p99s = t.latencyP99Ms.slice(i, i + per).filter((x): x is number => x !== null);
    rows.push({
      from: t.tS[i]!, done: sl(t.completed).reduce((a, b) => a + b, 0) / widthS, errors: sl(t.errors).reduce((a, b) => a + b, 0),
      inFlight: Math.max(...sl(t.inFlight)), p99: p99s.length ? Math.max(...p99s) : null, queue: queue ? valueAt(queue, t.tS[i]! + widthS) : null,
    });
  }
  const peak = Math.max(1e-9, ...rows.map((r) => r.done));
  const lines = [`over time (${widthS} s per row; completed req/s as bars; latency p99 is the worst second's):`];
  lines.push(`  ${'from s'.padStart(7)} ${'req/s'.padStart(8)} ${'in flight'.padStart(9)} ${'p99 ms'.padStart(9)} ${'errors'.padStart(6)}${queue ? ` ${'queue'.padStart(6)}` : ''}`);
  for (const r of rows) {
    lines.push(`  ${String(r.from).padStart(7)} ${r.done.toFixed(2).padStart(8)} ${String(r.inFlight).padStart(9)} ${fmt(r.p99).padStart(9)} ${String(r.errors).padStart(6)}${queue ? ` ${fmt(r.queue, 0).padStart(6)}` : ''}  ${'█'.repeat(Math.round((r.done / peak) * 30))}`);
  }
  if (queue) lines.push(`  queue: ${queue.name} scraped from ${queue.source} (the server's own count of waiting requests)`);
  return lines;
}

/**
 * The text report's detail: a breakdown table for each dimension with more than one value (route always), and the
 * time view (per-interval bars of completed req/s with in flight, latency p99, errors and the scraped queue).
 */
export function formatDetail(d: ReportDetail): string {
  const lines: string[] = [];
  if (d.runs.length > 1) lines.push(`merged ${d.runs.length} run files: ${d.runs.map((r) => `${r.runFile} (${r.requests})`).join(', ')}`);
  const digests = workloadDigests(d);
  if (digests.length > 1) lines.push(`NOTE these run files replayed ${digests.length} different workloads (digests ${digests.join(', ')}): the figures pool them`);
  lines.push(...coldStartLines(d.coldStart));
  for (const dim of BREAKDOWN_DIMENSIONS) {
    const rows = d.breakdowns[dim];
    if (dim === 'label' || (rows.length < 2 && dim !== 'route')) continue; // labels: summary's `by anomaly label`
    if (dim === 'turn' && rows.every((r) => r.key === 'on its own')) continue;
    lines.push(...breakdownLines(dim, rows));
  }
  lines.push(...timeLines(d.timeline, d.scrape));
  for (const h of d.scrapeHealth) {
    lines.push(`scraped ${h.source}: ${h.scrapes} scrapes${h.failures > 0 ? `, ${h.failures} FAILED (last: ${h.lastError})` : ''}${h.droppedSeries > 0 ? `, ${h.droppedSeries} series over the caps not kept` : ''}`);
  }
  return lines.join('\n');
}

/**
 * The timeline as CSV (`report --format csv`): one row per bin, `t_s` then the {@link Timeline} columns, then one
 * column per scraped series (its last value in the bin), named `name{labels}`.
 */
export function timelineCsv(d: ReportDetail): string {
  const t = d.timeline;
  const series = d.scrape;
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const head = ['t_s', 'scheduled', 'sent', 'completed', 'errors', 'in_flight', ...(t.sessionsInFlight ? ['sessions_in_flight'] : []), 'latency_p50_ms', 'latency_p99_ms', 'ttft_p50_ms', 'ttft_p99_ms', 'output_tokens',
    ...series.map((s) => `${s.name}${Object.keys(s.labels).length ? `{${Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(',')}}` : ''}`)];
  const cell = (v: number | null) => (v === null ? '' : String(v));
  const rows = t.tS.map((tS, i) => [tS, t.scheduled[i]!, t.sent[i]!, t.completed[i]!, t.errors[i]!, t.inFlight[i]!, ...(t.sessionsInFlight ? [t.sessionsInFlight[i]!] : []), t.latencyP50Ms[i]!, t.latencyP99Ms[i]!, t.ttftP50Ms[i]!, t.ttftP99Ms[i]!, t.outputTokens[i]!,
    ...series.map((s) => valueAt(s, tS + t.binS - 1e-9))].map(cell).join(','));
  return [head.map(quote).join(','), ...rows].join('\n');
}

const phase = (p: PhaseFigures) => `latency p50 ${ms(p.latencyP50Ms)} / p99 ${ms(p.latencyP99Ms)} ms, TTFT p50 ${ms(p.ttftP50Ms)} / p99 ${ms(p.ttftP99Ms)} ms${p.errors ? `, ${p.errors} errors` : ''} (n=${p.requests})`;
const ms = (v: number | null) => (v === null ? '—' : v.toFixed(1));

/** The cold-start lines: the first requests and the warm-up next to the steady state (from the scheduled send). */
export function coldStartLines(c: ColdStart | undefined): string[] {
  if (!c || c.first.requests === 0) return [];
  const lines = [`cold start (from the scheduled send): first ${c.firstN} requests ${phase(c.first)}; ${c.warmup ? 'after the warm-up' : 'the rest'} ${phase(c.steady)}`];
  if (c.warmup) lines.push(`warm-up: the first ${c.warmupS} s (${c.excludedRequests} requests) are left out of every figure above and of the SLO; they had ${phase(c.warmup)}`);
  return lines;
}
