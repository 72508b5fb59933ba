import { buildReport } from '../report/build.ts';
import { COLORS, type ChartData } from '../report/html-charts.ts';
import { chartSections, esc, fmt, htmlPage, table } from '../report/html.ts';
import type { SweepResult, SweepStep } from './run.ts';


/** The latest measurement of each load, by offered rate (the x of the load charts must ascend). */
function byOffered(r: SweepResult): SweepStep[] {
  const latest = new Map<number, SweepStep>();
  for (const s of r.steps) latest.set(s.load, s);
  return [...latest.values()].sort((a, b) => a.offeredRps - b.offeredRps);
}

/** The latency–throughput ("hockey stick") chart and throughput/goodput against the offered rate. */
export function sweepCharts(r: SweepResult): ChartData[] {
  const steps = byOffered(r);
  const x = steps.map((s) => s.offeredRps);
  const limits = r.steps[0]?.objectives.filter((o) => o.unit === 'ms').map((o) => o) ?? [];
  const charts: ChartData[] = [{
    id: 'hockey-stick', title: 'Latency against offered load', xLabel: 'offered req/s', kind: 'time', x,
    caption: `Latency p50 and p99 and TTFT p99 from the scheduled send, per step (its measured part), against the rate the schedule offered; ${limits.map((o) => `${o.objective}`).join(', ') || 'the SLO'} as the dashed line${limits.length > 1 ? 's' : ''}. Flat, then a knee, then the queue: the hockey stick.`,
    series: [
      { label: 'latency p50', values: steps.map((s) => s.latencyFromScheduledMs.p50), scale: 'ms', color: COLORS[0]! },
      { label: 'latency p99', values: steps.map((s) => s.latencyFromScheduledMs.p99), scale: 'ms', color: COLORS[1]! },
      { label: 'TTFT p99', values: steps.map((s) => s.ttftFromScheduledMs.p99), scale: 'ms', color: COLORS[3]! },
      ...limits.map((o, i) => ({ label: `limit ${o.objective}`, values: steps.map(() => o.limit), scale: 'ms', color: COLORS[4 + (i % 4)]!, dash: true })),
    ],
    scales: [{ id: 'ms', label: 'ms' }],
  }, {
    id: 'throughput', title: 'Throughput and goodput against offered load', xLabel: 'offered req/s', kind: 'time', x,
    caption: 'Completed requests per second and, with per-request objectives, goodput (requests that met them) per second; the dashed line is the offered rate: below it the server falls behind.',
    series: [
      { label: 'offered', values: x, scale: 'rps', color: '#888888', dash: true },
      { label: 'throughput', values: steps.map((s) => s.throughputRps), scale: 'rps', color: COLORS[2]! },
      ...(steps.some((s) => s.goodputFraction !== null) ? [{ label: 'goodput', values: steps.map((s) => (s.goodputFraction === null ? null : s.goodputFraction * s.throughputRps)), scale: 'rps', color: COLORS[0]! }] : []),
      { label: 'errors %', values: steps.map((s) => s.errorRate * 100), scale: 'pct', color: COLORS[1]! },
    ],
    scales: [{ id: 'rps', label: 'req/s' }, { id: 'pct', label: 'errors %' }],
  }];
  const timelines = stepTimelines(steps);
  if (timelines) charts.push(timelines);
  return charts;
}

/** Each step's per-second latency p99 on one chart (from the steps' run files, when they were kept). */
function stepTimelines(steps: SweepStep[]): ChartData | null {
  const kept = steps.filter((s) => s.runFile !== null);
  if (kept.length === 0) return null;
  const lines = kept.map((s) => ({ s, t: buildReport([s.runFile!]).detail!.timeline }));
  const n = Math.max(...lines.map((l) => l.t.tS.length));
  const x = Array.from({ length: n }, (_, i) => i * (lines[0]!.t.binS));
  return {
    id: 'steps', title: 'Each step over time', xLabel: 's', kind: 'time', x,
    caption: 'Latency p99 of the requests that completed in each second of each step (warm-up included, at the start): a line that keeps rising is a queue that never drained within the step.',
    series: lines.map((l, i) => ({ label: `${fmt(l.s.offeredRps)} req/s`, values: x.map((_, k) => l.t.latencyP99Ms[k] ?? null), scale: 'ms', color: COLORS[i % COLORS.length]! })),
    scales: [{ id: 'ms', label: 'ms' }],
  };
}

/** The sweep as one self-contained HTML page: the answer, the charts, the step table. */
export function sweepHtml(r: SweepResult): string {
  const charts = sweepCharts(r);
  const answer = r.capacityRps === null ? 'No load passed' : `Capacity ${fmt(r.capacityRps)} req/s (${esc(r.by)} ${r.capacityLoad})`;
  const rows = [...r.steps].sort((a, b) => a.load - b.load || a.index - b.index).map((s) => [String(s.index + 1), String(s.load), fmt(s.offeredRps), fmt(s.achievedRps), fmt(s.latencyFromScheduledMs.p50), fmt(s.latencyFromScheduledMs.p99), fmt(s.ttftFromScheduledMs.p99), fmt(s.errorRate * 100), fmt(s.latenessMs.p99), esc(s.state === 'fail' ? `FAIL ${s.objectives.filter((o) => !o.met).map((o) => o.objective).join(', ')}` : s.state), esc(s.note ?? '')]);
  const body = `<h1>tracewarp sweep: ${answer}</h1>
<p class="facts">by <code>${esc(r.by)}</code> against <code>${esc(r.slo)}</code>; ${r.steps.length} steps of ${r.warmupS} s warm-up (reported apart) + ${r.stepDurationS} s measured${r.baseRateRps ? `; the workload's own rate ${fmt(r.baseRateRps)} req/s` : ''}</p>
<div class="banner ${r.limitedBy === 'server' || r.limitedBy === 'range' ? 'ok' : r.limitedBy === 'replayer' ? 'warn' : 'bad'}">${esc(limitText(r))}</div>
<h2>The curve</h2>${chartSections(charts)}
<h2>Steps</h2>${table(['step', 'load', 'offered req/s', 'achieved req/s', 'p50 ms', 'p99 ms', 'TTFT p99 ms', 'errors %', 'lateness p99 ms', 'verdict', 'note'], rows)}`;
  return htmlPage(`tracewarp sweep ${r.slo}`, body, charts);
}

function limitText(r: SweepResult): string {
  if (r.limitedBy === 'server') return `Above it ${r.bindingObjective} failed first; the boundary is a ${r.boundary}.${r.kneeRps !== null ? ` Knee at ${fmt(r.kneeRps)} req/s.` : ''}`;
  if (r.limitedBy === 'replayer') return 'The replayer, not the server, was the limit: a step it could not keep on schedule ended the search.';
  if (r.limitedBy === 'range') return 'Every load measured passed: the capacity is above the range.';
  return 'The lowest load measured already missed the SLO.';
}
