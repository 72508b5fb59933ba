import { featureStats } from '../metrics/exact.ts';
import { createRng } from '../rng.ts';
import { synthesizeWorkload, WorkloadDigest } from '../synth/workload.ts';
import { TraceReader } from '../trace/reader.ts';
import { workloadOf } from '../replay/run.ts';
import type { Arrival } from '../workload/types.ts';
import { meanRate } from '../workload/warp.ts';
import type { Output } from './output.ts';
import { stepsFor } from './workload.ts';

/** The transformed workload of a trace for a command line: the original and transformed arrivals. */
export function buildWorkload(reader: TraceReader, argv: readonly string[], seed: number, scenario?: string): { before: Arrival[]; after: Arrival[]; webSocketSessions: number } {
  return workloadOf(reader, stepsFor(reader, argv, scenario), seed);
}

/** p50/p90/p99/mean of a list (exact nearest rank, see {@link featureStats}), nulls when empty. */
function dist(values: number[]): { p50: number | null; p90: number | null; p99: number | null; mean: number | null } {
  const s = featureStats(values);
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return s ? { p50: r(s.p50), p90: r(s.p90), p99: r(s.p99), mean: r(s.mean) } : { p50: null, p90: null, p99: null, mean: null };
}

const gapsMs = (a: readonly Arrival[]) => a.slice(1).map((x, i) => (x.atUs - a[i]!.atUs) / 1000);

/** What `plan --json` prints (see the README). */
export interface PlanReport {
  trace: string;
  seed: number;
  requests: number;
  originalRequests: number;
  /** WebSocket sessions in the trace, which replay does not send (not counted in `originalRequests`). */
  webSocketSessionsSkipped: number;
  durationS: number;
  meanRate: number | null;
  digest: string;
  scheduleDigest: string;
  rateOverTime: Array<{ fromS: number; toS: number; rate: number }>;
  anomalies: Record<string, number>;
  clones: number;
  features: Record<string, { before: ReturnType<typeof dist>; after: ReturnType<typeof dist> }>;
}

/**
 * `tracewarp plan`: the transformed workload without sending anything — counts, duration, rate over time, feature
 * distributions before and after, and the digest of the schedule and of every synthesized body (the same digest
 * `replay` prints for the same trace, flags and seed).
 */
export function runPlan(tracePath: string, argv: readonly string[], opts: { seed: number; json?: boolean; scenario?: string }, out: Output): PlanReport {
  const reader = new TraceReader(tracePath);
  try {
    const { before, after, webSocketSessions } = buildWorkload(reader, argv, opts.seed, opts.scenario);
    const digest = new WorkloadDigest();
    const bytesAfter: number[] = [];
    for (const p of synthesizeWorkload(after, (seq) => reader.get(seq), createRng(opts.seed), digest)) bytesAfter.push(p.body?.length ?? 0);
    const d = digest.result();
    const span = after.length > 0 ? after[after.length - 1]!.atUs / 1e6 : 0;
    const bins = Math.max(1, Math.min(20, after.length - 1)); // a few requests do not fill 20 bins
    const width = span > 0 ? span / bins : 1;
    const counts = new Array<number>(bins).fill(0);
    for (const a of after) counts[Math.min(bins - 1, Math.floor(a.atUs / 1e6 / width))]!++;
    const num = (xs: Array<number | null>) => xs.filter((x): x is number => x !== null);
    const anomalies: Record<string, number> = {};
    for (const a of after) if (a.anomaly) anomalies[a.anomaly] = (anomalies[a.anomaly] ?? 0) + 1;
    const report: PlanReport = {
      trace: tracePath,
      seed: opts.seed,
      requests: after.length,
      originalRequests: before.length,
      durationS: Math.round(span * 1000) / 1000,
      meanRate: meanRate(after) === null ? null : Math.round(meanRate(after)! * 1000) / 1000,
      digest: d.digest,
      scheduleDigest: d.schedule,
      rateOverTime: span > 0 ? counts.map((c, i) => ({ fromS: Math.round(i * width * 1000) / 1000, toS: Math.round((i + 1) * width * 1000) / 1000, rate: Math.round((c / width) * 100) / 100 })) : [],
      anomalies,
      clones: after.filter((a) => a.clone > 0).length,
      webSocketSessionsSkipped: webSocketSessions,
      features: {
        promptTokens: { before: dist(num(before.map((a) => a.promptTokens))), after: dist(num(after.map((a) => a.promptTokens))) },
        outputTokens: { before: dist(num(before.map((a) => a.outputTokens))), after: dist(num(after.map((a) => a.outputTokens))) },
        requestBytes: { before: dist(before.map((a) => a.requestBytes)), after: dist(bytesAfter) },
        interArrivalMs: { before: dist(gapsMs(before)), after: dist(gapsMs(after)) },
      },
    };
    if (opts.json) out.out(JSON.stringify(report));
    else printPlan(report, out);
    return report;
  } finally {
    reader.close();
  }
}

function printPlan(r: PlanReport, out: Output): void {
  const f = (v: number | null) => (v === null ? '—' : String(Math.round(v * 10) / 10));
  out.out(`plan for ${r.trace} (seed ${r.seed}): ${r.requests} requests (${r.originalRequests} in the trace, ${r.clones} clones) over ${r.durationS.toFixed(1)} s, mean rate ${r.meanRate?.toFixed(2) ?? '—'} req/s`);
  out.out(`digest ${r.digest}  (schedule ${r.scheduleDigest})`);
  if (r.webSocketSessionsSkipped > 0) out.out(`${r.webSocketSessionsSkipped} WebSocket session(s) in the trace are left out: replay sends HTTP requests only`);
  if (Object.keys(r.anomalies).length > 0) out.out(`anomalies: ${Object.entries(r.anomalies).map(([k, n]) => `${k}=${n}`).join('  ')}`);
  const peak = Math.max(1, ...r.rateOverTime.map((b) => b.rate));
  out.out('rate over time (req/s):');
  const width = r.rateOverTime.length > 0 ? r.rateOverTime[0]!.toS - r.rateOverTime[0]!.fromS : 1;
  const digits = width >= 1 ? 1 : width >= 0.1 ? 2 : 3; // bins of a short workload stay readable
  for (const b of r.rateOverTime) out.out(`  ${b.fromS.toFixed(digits).padStart(8)}–${b.toS.toFixed(digits).padEnd(8)} s ${b.rate.toFixed(2).padStart(9)}  ${'█'.repeat(Math.round((b.rate / peak) * 40))}`);
  out.out(`  ${'feature'.padEnd(16)} ${'before p50/p90/p99/mean'.padEnd(34)} after p50/p90/p99/mean`);
  for (const [name, v] of Object.entries(r.features)) {
    const show = (d: { p50: number | null; p90: number | null; p99: number | null; mean: number | null }) => [d.p50, d.p90, d.p99, d.mean].map(f).join(' / ');
    out.out(`  ${name.padEnd(16)} ${show(v.before).padEnd(34)} ${show(v.after)}`);
  }
}
