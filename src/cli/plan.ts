import { featureStats } from '../metrics/exact.ts';
import { createRng } from '../rng.ts';
import { historySpecs, planSessions } from '../sessions/schedule.ts';
import { synthesizeWorkload, WorkloadDigest } from '../synth/workload.ts';
import { TraceReader } from '../trace/reader.ts';
import type { RouteCheck } from '../synth/target.ts';
import { planWorkload, type PlannedWorkload, type WorkloadOptions } from '../workload/plan.ts';
import type { Selector } from '../workload/select.ts';
import type { Arrival } from '../workload/types.ts';
import { meanRate } from '../workload/warp.ts';
import type { Output } from './output.ts';
import { stepsFor } from './workload.ts';

/** What `plan` takes besides the transformation flags: the same selection and addressing options as `replay`. */
export interface PlanCommandOptions extends Omit<WorkloadOptions, 'steps' | 'seed' | 'only' | 'exclude'> {
  seed: number;
  json?: boolean;
  scenario?: string;
  only?: Selector[];
  exclude?: Selector[];
  outputLength?: 'recorded' | 'as-sent';
  forceOutputLength?: boolean;
  /** `--history`: follow-up turns' prompts as `replay` would send them (the digest depends on it). Default `recorded`. */
  history?: 'recorded' | 'none';
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
  /** Recorded requests the filters (`--only`, `--exclude`) left out. */
  excluded: number;
  /** Records the reader refused (over a cap, malformed), and why the first was. */
  refusedRecords: number;
  refusedFirst: string | null;
  /** Routes whose model the trace does not keep (replay refuses them unmapped), and routes sent with `{id}` placeholders. */
  routes: RouteCheck;
  /** Model-server routes whose input names the trace keeps as tokens (see `PlannedWorkload.tokenInputs`). */
  tokenInputs: PlannedWorkload['tokenInputs'];
  /** WebSocket sessions in the trace, which replay does not send (not counted in `originalRequests`). */
  webSocketSessionsSkipped: number;
  durationS: number;
  meanRate: number | null;
  digest: string;
  scheduleDigest: string;
  rateOverTime: Array<{ fromS: number; toS: number; rate: number }>;
  anomalies: Record<string, number>;
  clones: number;
  /** Sessions in the transformed workload and their follow-up turns (which wait for a parent in a closed replay); null without. */
  sessions: { sessions: number; followUps: number } | null;
  features: Record<string, { before: ReturnType<typeof dist>; after: ReturnType<typeof dist> }>;
}

/**
 * `tracewarp plan`: the transformed workload without sending anything — counts, duration, rate over time, feature
 * distributions before and after, and the digest of the schedule and of every synthesized body (the same digest
 * `replay` prints for the same trace, flags and seed).
 */
export function runPlan(tracePath: string, argv: readonly string[], opts: PlanCommandOptions, out: Output): PlanReport {
  const reader = new TraceReader(tracePath);
  try {
    const w = planWorkload(reader, { ...opts, steps: stepsFor(reader, argv, opts.scenario) });
    const { before, after, webSocketSessions } = w;
    const digest = new WorkloadDigest();
    const bytesAfter: number[] = [];
    const synth = { model: opts.model, pathMap: opts.pathMap, modelMap: opts.modelMap, placeholderSegments: opts.placeholderSegments, outputLength: opts.outputLength, forceOutputLength: opts.forceOutputLength };
    const sessions = planSessions(after);
    const histories = sessions && (opts.history ?? 'recorded') === 'recorded' ? historySpecs(after, sessions) : undefined;
    for (const p of synthesizeWorkload(after, (seq) => reader.get(seq), createRng(opts.seed), digest, synth, undefined, histories)) bytesAfter.push(p.body?.length ?? 0);
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
      sessions: sessions ? { sessions: sessions.sessions, followUps: sessions.followUps } : null,
      trace: tracePath,
      seed: opts.seed,
      requests: after.length,
      originalRequests: w.traceRequests,
      excluded: w.excluded,
      refusedRecords: w.refusedRecords,
      refusedFirst: reader.refused[0]?.message ?? null,
      routes: w.routes,
      tokenInputs: w.tokenInputs,
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
    // On stderr in both modes, so --json's stdout stays one object.
    if (w.refusedRecords > 0) out.err(`note: ${w.refusedSummary}`);
    if (opts.json) out.out(JSON.stringify(report));
    else printPlan(report, out);
    return report;
  } finally {
    reader.close();
  }
}

/** The note for a model-server route whose input names the trace keeps as tokens. */
export function tokenInputsNote(t: { route: string; requests: number }): string {
  return `${t.requests} request${t.requests === 1 ? '' : 's'} to ${t.route} name${t.requests === 1 ? 's' : ''} the model's inputs by keys the trace keeps as fingerprints; they are sent as other keys of the same length, which a server that checks its inputs rejects (record with a policy that keeps the names: body.keepKeys)`;
}

/** What a route the trace kept only in part needs, and which flags give it. */
export function unmappedHint(route: string): string {
  const model = route.includes('{model');
  const seg = route.includes('{seg:');
  const needs = [model ? 'model' : '', route.includes('{version}') ? 'version' : '', seg ? 'path names' : ''].filter(Boolean).join(' and ');
  const flags = [model ? '--model NAME or --model-map' : '', seg ? '--placeholder-segments' : ''].filter(Boolean);
  return `whose ${needs} the trace keeps only as fingerprints (replay needs ${[...flags, `--path-map '${route}=PATH'`].join(', or ')})`;
}

function printPlan(r: PlanReport, out: Output): void {
  const f = (v: number | null) => (v === null ? '—' : String(Math.round(v * 10) / 10));
  out.out(`plan for ${r.trace} (seed ${r.seed}): ${r.requests} requests (${r.originalRequests} in the trace, ${r.clones} clones) over ${r.durationS.toFixed(1)} s, mean rate ${r.meanRate?.toFixed(2) ?? '—'} req/s`);
  out.out(`digest ${r.digest}  (schedule ${r.scheduleDigest})`);
  if (r.sessions) out.out(`sessions: ${r.sessions.sessions} with ${r.sessions.followUps} follow-up turns (a closed replay sends each after its parent's answer and think time; the schedule shows when they were recorded)`);
  if (r.excluded > 0) out.out(`the filters leave out ${r.excluded} of the trace's requests`);
  for (const from of r.routes.unusedPathMaps) out.out(`warning: --path-map '${from}=…' matches no route of this workload`);
  for (const u of r.routes.unmapped) out.out(`cannot replay as it is: ${u.requests} requests to ${u.route}, ${unmappedHint(u.route)}`);
  for (const m of r.routes.unmappedModels) out.out(`cannot replay as it is: ${m.requests} requests name the model ${m.model}, which the trace keeps only as a fingerprint (replay needs --model NAME or --model-map '${m.model}=NAME')`);
  for (const from of r.routes.unusedModelMaps) out.out(`warning: --model-map '${from}=…' matches no model of this workload`);
  for (const t of r.tokenInputs) out.out(`note: ${tokenInputsNote(t)}`);
  for (const p of r.routes.placeholders) out.out(`placeholders: ${p.requests} requests to ${p.route} are sent with seeded ids in place of {id} (map with --path-map)`);
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
