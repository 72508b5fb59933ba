import type { ReplayTraceOptions } from '../replay/run.ts';
import { writeFileSync } from 'node:fs';
import { TracewarpError } from '../errors.ts';
import { parseSlo } from '../metrics/slo.ts';
import { sweepConfig, type SweepBy } from '../sweep/config.ts';
import { sweepHtml } from '../sweep/html.ts';
import { runSweep, type SweepResult, type SweepStep } from '../sweep/run.ts';
import { TraceReader } from '../trace/reader.ts';
import type { Output } from './output.ts';
import { stepsFor } from './workload.ts';

/** What `tracewarp sweep` takes (argv is read again for the transformation flags, in order). */
export interface SweepCommandOptions {
  target: string;
  slo: string;
  by: SweepBy;
  speeds?: number[];
  search?: boolean;
  precision?: number;
  start?: number;
  stepDurationUs?: number;
  warmupUs?: number;
  seed: number;
  out?: string;
  /** Write the HTML report here. */
  html?: string;
  json?: boolean;
  quiet?: boolean;
  argv: readonly string[];
  scenario?: string;
  scrape?: string[];
  scrapeIntervalMs?: number;
  headers?: Record<string, string>;
  maxInFlight?: number;
  workers?: number | 'auto';
  /** `--sessions`, `--think-time`, `--history`, as `replay` takes them. */
  sessions?: ReplayTraceOptions['sessions'];
  thinkTime?: ReplayTraceOptions['thinkTime'];
  history?: ReplayTraceOptions['history'];
}

const f1 = (x: number | null) => (x === null ? '—' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const unitOf = (by: SweepBy) => (by === 'speed' ? '×' : by === 'amplify' ? '× requests' : ' req/s');

function verdict(s: SweepStep): string {
  if (s.state === 'pass') return 'pass';
  if (s.state === 'fail') return `FAIL ${s.objectives.filter((o) => !o.met).map((o) => o.objective).join(', ')}`;
  return s.state === 'tool' ? 'not counted: replayer distorted' : 'not judged: too few requests';
}

/** One line per step, as it ends (stderr). */
export function stepLine(r: Pick<SweepResult, 'by'>, s: SweepStep): string {
  return `sweep: step ${s.index + 1}${s.remeasure ? ' (again)' : ''}: ${r.by} ${s.load}${unitOf(r.by)} — offered ${f1(s.offeredRps)} req/s, `
    + `p99 ${f1(s.latencyFromScheduledMs.p99)} ms from schedule, lateness p99 ${f1(s.latenessMs.p99)} ms → ${verdict(s)}`;
}

/** The step table and the answer, as a person reads them. */
export function formatSweep(r: SweepResult): string {
  const lines = [`sweep by ${r.by} against the SLO ${r.slo}: ${r.steps.length} steps of ${r.warmupS} s warm-up (reported apart) + ${r.stepDurationS} s measured`];
  lines.push('  step       load  offered  achieved  p50 ms  p99 ms  TTFT p99  err %  late p99  verdict');
  const sorted = [...r.steps].sort((a, b) => a.load - b.load || a.index - b.index);
  for (const s of sorted) {
    lines.push(`  ${String(s.index + 1).padStart(4)} ${String(s.load).padStart(10)} ${f1(s.offeredRps).padStart(8)} ${f1(s.achievedRps).padStart(9)} ${f1(s.latencyFromScheduledMs.p50).padStart(7)} ${f1(s.latencyFromScheduledMs.p99).padStart(7)} ${f1(s.ttftFromScheduledMs.p99).padStart(9)} ${(s.errorRate * 100).toFixed(1).padStart(6)} ${f1(s.latenessMs.p99).padStart(9)}  ${verdict(s)}`);
  }
  for (const s of sorted) if (s.note) lines.push(`  step ${s.index + 1}: ${s.note}`);
  lines.push('  (req/s offered by the schedule and achieved by the sends; latency and TTFT from the scheduled send; warm-up excluded)');
  if (r.capacityLoad === null && r.limitedBy === 'replayer') lines.push('capacity: not measured — the replayer could not keep even the first step on schedule (see the step\'s note); replay from a machine with more cores, or with --workers');
  else if (r.capacityLoad === null) lines.push(`capacity: none — the lowest load measured (${Math.min(...r.steps.map((s) => s.load))}${unitOf(r.by)}) already missed the SLO`);
  else lines.push(`capacity: ${f1(r.capacityRps)} req/s (${r.by} ${r.capacityLoad}${unitOf(r.by)}${r.baseRateRps && r.by !== 'rate' ? ` of the workload's ${f1(r.baseRateRps)} req/s` : ''})`);
  if (r.limitedBy === 'server') lines.push(`above it: ${r.bindingObjective} failed first; the boundary is a ${r.boundary}${r.boundary === 'cliff' ? ' (the figure jumps: a queue builds)' : ' (the figure grows with the load)'}${r.precision ? `; found to ${r.precision * 100} %` : ''}`);
  if (r.limitedBy === 'replayer' && r.capacityLoad !== null) lines.push('above it: the replayer, not the server, was the limit (a step it could not keep on schedule); the capacity is at least this — replay from a machine with more cores or with --workers');
  if (r.limitedBy === 'range') lines.push('every load measured passed: the capacity is above the range (give higher --speeds, or --search)');
  for (const m of r.remeasured) lines.push(`measured twice: ${r.by} ${m.load}: ${m.states.join(' then ')}, latency p99 ${m.latencyP99Ms.map(f1).join(' / ')} ms (the spread between identical steps)`);
  if (r.nonMonotone) lines.push('NOTE a higher load passed where a lower one failed, measured twice: the server is not monotone in load here (noise, caches, or autoscaling)');
  if (r.kneeLoad !== null) lines.push(`knee: ${f1(r.kneeRps)} req/s (${r.by} ${r.kneeLoad}): the highest load whose median latency stays within 1.5× the lightest step's`);
  return lines.join('\n');
}

/**
 * `tracewarp sweep`: the capacity of the target for the recorded workload. Exit code 0 when a load passed, 1 when
 * none did.
 * @throws TracewarpError `TW_USAGE` for a bad configuration or SLO.
 */
export async function runSweepCommand(tracePath: string, opts: SweepCommandOptions, out: Output): Promise<{ code: number; result: SweepResult }> {
  let slo;
  try {
    slo = parseSlo(opts.slo);
  } catch (err) {
    throw new TracewarpError('TW_USAGE', `--slo: ${(err as Error).message}`);
  }
  const reader = new TraceReader(tracePath);
  let steps;
  try {
    steps = stepsFor(reader, opts.argv, opts.scenario);
  } finally {
    reader.close();
  }
  const config = sweepConfig({
    by: opts.by, loads: opts.speeds ? [...opts.speeds].sort((a, b) => a - b) : null, search: opts.search ?? !opts.speeds,
    ...(opts.precision !== undefined ? { precision: opts.precision } : {}), start: opts.start ?? null,
    ...(opts.stepDurationUs !== undefined ? { stepDurationUs: opts.stepDurationUs } : {}),
    ...(opts.warmupUs !== undefined ? { warmupUs: opts.warmupUs } : {}),
  });
  const result = await runSweep({
    trace: tracePath, target: opts.target, slo, sloText: opts.slo, config, steps, seed: opts.seed, outDir: opts.out ?? null,
    ...(opts.scrape?.length ? { scrape: { urls: opts.scrape, intervalMs: opts.scrapeIntervalMs ?? 500 } } : {}),
    replay: { headers: opts.headers, maxInFlight: opts.maxInFlight, workers: opts.workers ?? 'auto', failFast: true, sessions: opts.sessions, thinkTime: opts.thinkTime, history: opts.history },
    onStepStart: (i, load, again) => { if (!opts.quiet) out.err(`sweep: step ${i + 1}${again ? ' (again: measured twice before it is believed)' : ''}: ${opts.by} ${load}${unitOf(opts.by)} …`); },
    onStep: (s) => { if (!opts.quiet) out.err(stepLine({ by: opts.by }, s)); },
  });
  if (opts.html) {
    writeFileSync(opts.html, sweepHtml(result));
    if (!opts.quiet) out.err(`sweep: HTML report written to ${opts.html}`);
  }
  if (opts.json) out.out(JSON.stringify(result));
  else out.out(formatSweep(result));
  return { code: result.capacityLoad === null ? 1 : 0, result };
}
