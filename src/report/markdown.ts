import { coldStartLines, workloadDigests } from './text-detail.ts';
import type { Percentiles, RunSummary } from '../metrics/summary.ts';
import { BREAKDOWN_DIMENSIONS, type ReportDetail } from './model.ts';
import type { Reporter, RunReport } from './run-report.ts';

/** A table cell: `|` escaped, newlines flattened. */
export const mdCell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
const fmt = (v: number | null, digits = 1) => (v === null ? '—' : v.toFixed(digits));

/** The percentile rows every format shows, in order: label and the summary's key. */
export const PERCENTILE_ROWS: ReadonlyArray<readonly [string, keyof RunSummary]> = [
  ['latency (from send)', 'latencyMs'], ['latency (from schedule)', 'latencyFromScheduledMs'], ['TTFB', 'ttfbMs'],
  ['TTFT (from send)', 'ttftMs'], ['TTFT (from schedule)', 'ttftFromScheduledMs'], ['ITL (every gap)', 'itlMs'],
  ['TPOT', 'tpotMs'], ['send lateness', 'latenessMs'],
];

function percentileTable(s: RunSummary): string[] {
  const rows = ['| ms | p50 | p90 | p95 | p99 | p99.9 | max | n |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const [label, key] of PERCENTILE_ROWS) {
    const p = s[key] as Percentiles;
    rows.push(`| ${label} | ${[p.p50, p.p90, p.p95, p.p99, p.p999, p.max].map((v) => fmt(v)).join(' | ')} | ${p.count} |`);
  }
  return rows;
}

function verdictLines(s: RunSummary): string[] {
  const out: string[] = [];
  const h = s.replayerHealth;
  if (h && h.verdict !== 'ok') out.push(`> **${h.verdict === 'distorted' ? 'WARNING: the replayer itself distorted this run' : 'NOTE: the replayer itself may have shaped some figures'}**: ${mdCell(h.reasons.join('; '))}. ${mdCell(h.fix ?? '')}`, '');
  if (s.objectives) {
    const missed = s.objectives.filter((o) => !o.met);
    out.push(missed.length === 0 ? `**SLO met**: all ${s.objectives.length} objectives.` : `**SLO MISSED**: ${missed.map((o) => `\`${o.objective}\` (${o.value === null ? 'no value' : `${fmt(o.value)} ${o.unit}`}, limit ${o.limit} ${o.unit})`).join(', ')}.`, '');
  }
  if (h) out.push(`Replayer health **${h.verdict}** (its own floor): loop delay p99 ${fmt(h.loopDelayMs.p99, 2)} ms, send lateness p99 ${fmt(h.sendLatenessMs.p99, 2)} ms against a ${h.boundMs} ms bound.`, '');
  return out;
}

function breakdownTables(d: ReportDetail): string[] {
  const out: string[] = [];
  for (const dim of BREAKDOWN_DIMENSIONS) {
    const rows = d.breakdowns[dim];
    if (rows.length < 2 && dim !== 'route') continue;
    out.push('', `**By ${dim}**`, '', `| ${dim} | requests | errors | latency p50 | latency p99 | TTFT p50 | TTFT p99 | TPOT p50 |`, '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of rows) out.push(`| ${mdCell(r.key)} | ${r.requests} | ${r.errors} | ${fmt(r.latencyMs.p50)} | ${fmt(r.latencyMs.p99)} | ${fmt(r.ttftMs.p50)} | ${fmt(r.ttftMs.p99)} | ${fmt(r.tpotMs.p50)} |`);
  }
  return out;
}

/**
 * The report as Markdown, to paste in a pull-request comment: title, SLO verdict (each missed objective with its value
 * and limit), the replayer's own health, the percentile table, rates and goodput, errors, breakdowns and the digest.
 */
export const markdownReporter: Reporter = ({ summary: s, facts: f, detail }: RunReport) => {
  const lines = [`### tracewarp run \`${mdCell(f.runId)}\`: ${mdCell(f.tracePath)} (${mdCell(f.workload)}) against ${mdCell(f.target)}`, ''];
  if (detail && detail.runs.length > 1) lines.push(`Merged ${detail.runs.length} run files: ${detail.runs.map((r) => `\`${mdCell(r.runFile)}\` (${r.requests})`).join(', ')}.`, '');
  if (detail) for (const l of coldStartLines(detail.coldStart)) lines.push(mdCell(l), '');
  if (detail && workloadDigests(detail).length > 1) lines.push(`**Note:** these run files replayed ${workloadDigests(detail).length} different workloads; the figures pool them.`, '');
  lines.push(...verdictLines(s));
  lines.push(`${s.requests} requests, ${s.sent} sent, ${s.completed} completed, ${s.errors} errors in ${fmt(s.durationS)} s; rate target ${fmt(s.targetRate, 2)}, achieved ${fmt(s.achievedRate, 2)}, throughput ${fmt(s.throughput, 2)} req/s; ${fmt(s.totalOutputTokensPerSecond)} output tokens/s.`, '');
  if (s.goodput) lines.push(`Goodput (\`${mdCell(s.goodput.slo)}\`): ${s.goodput.met} of ${s.goodput.eligible} requests (${(s.goodput.fraction * 100).toFixed(1)} %), ${fmt(s.goodput.reqPerS, 2)} req/s.`, '');
  const errs = Object.entries(s.errorsByKind);
  if (errs.length > 0) lines.push(`Errors by kind: ${errs.map(([k, n]) => `${mdCell(k)} ${n}`).join(', ')}. Statuses: ${Object.entries(s.statuses).map(([k, n]) => `${k} ${n}`).join(', ') || '—'}.`, '');
  lines.push(...percentileTable(s));
  if (detail) lines.push(...breakdownTables(detail));
  if (f.digest && !f.interrupted) lines.push('', `Workload digest \`${f.digest.digest}\` (schedule \`${f.digest.schedule}\`), seed ${f.seed}.`);
  if (f.interrupted) lines.push('', '**INTERRUPTED**: the figures cover the requests scheduled before the stop.');
  return lines.join('\n');
};
