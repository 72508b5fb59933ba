import { TracewarpError } from '../errors.ts';
import { describeFailure, type ReplayErrorKind, type TimeoutDetail } from '../error-kinds.ts';
import type { RequestClasses } from '../results/collector.ts';
import type { FailFastVerdict } from '../results/fail-fast.ts';
import { modelForTarget, routeForTarget, type TargetMapping } from '../synth/target.ts';
import { TraceReader } from '../trace/reader.ts';
import type { Step } from '../workload/pipeline.ts';
import { planWorkload, UnmappedRoutesError, type PlannedWorkload } from '../workload/plan.ts';
import type { Arrival } from '../workload/types.ts';
import type { ReplayTraceOptions } from './run.ts';
import { targetAddress } from './target-check.ts';
import { templatedTensorRoutes, tensorNamesFromTarget } from './tensor-names.ts';

// What a replay settles before its clock starts: the workload it will send (refused when it cannot be sent), the
// names the target must supply, its timeouts, and the sentence a fail-fast stop says. `replay/run.ts` runs the rest.

/** The transformed workload of a trace: the original and transformed arrivals. */
export function workloadOf(reader: TraceReader, steps: readonly Step[], seed: number): { before: Arrival[]; after: Arrival[]; webSocketSessions: number } {
  const { before, after, webSocketSessions } = planWorkload(reader, { steps, seed });
  return { before, after, webSocketSessions };
}

export function planReplay(opts: ReplayTraceOptions): { arrivals: Arrival[]; webSocketSessions: number } {
  const reader = new TraceReader(opts.trace);
  let w: PlannedWorkload;
  try {
    w = planWorkload(reader, { steps: opts.steps ?? [], seed: opts.seed ?? 1, limit: opts.limit, only: opts.only, exclude: opts.exclude, model: opts.model, pathMap: opts.pathMap, modelMap: opts.modelMap, placeholderSegments: opts.placeholderSegments });
  } finally {
    reader.close();
  }
  const { after: arrivals, webSocketSessions } = w;
  if (arrivals.length === 0) {
    throw new TracewarpError('TW_USAGE', webSocketSessions > 0 && w.traceRequests === 0
      ? `the workload is empty: the trace holds only WebSocket sessions (${webSocketSessions}), and replay sends HTTP requests only`
      : w.excluded > 0 && w.excluded === w.traceRequests
        ? `the workload is empty: the filters left out all ${w.excluded} requests of the trace`
        : `the workload is empty: the trace has no requests, or the transformations selected none (see 'tracewarp plan')`);
  }
  // Before anything is sent: a path to a model the trace did not keep would fail on every request.
  if (w.routes.unmapped.length > 0 || w.routes.unmappedModels.length > 0) throw new UnmappedRoutesError(w.routes.unmapped, w.routes.unmappedModels);
  opts.onPlanned?.(w);
  return { arrivals, webSocketSessions };
}

/** A duration in ms as people read it: `120 s`, `30 min`, `500 ms`. */
export function humanMs(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms >= 1000) return `${Math.round(ms / 100) / 10} s`;
  return `${ms} ms`;
}

/** A timeout option in ms: 0 for none, else positive. @throws TracewarpError `TW_USAGE` otherwise. */
export function timeoutMs(name: string, v: number | undefined, dflt: number): number {
  const ms = v ?? dflt;
  if (!(ms >= 0 && Number.isFinite(ms))) throw new TracewarpError('TW_USAGE', `${name} must be ≥ 0 ms (0 for none), got ${v}`);
  return ms;
}

/** The sentence of a fail-fast stop: how many failed, how, and what that most likely means. */
export function failFastMessage(v: FailFastVerdict, target: string, runFile: string | null, limits: Partial<Record<TimeoutDetail, string>>): string {
  const causes = Object.entries(v.causes).flatMap(([kind, byDetail]) => Object.entries(byDetail).map(([detail, n]) => ({ kind, detail, n })));
  causes.sort((a, b) => b.n - a.n);
  const list = causes.map((c) => `${c.kind}${c.detail ? ` (${c.detail})` : ''} ×${c.n}`).join(', ');
  const top = causes[0]!;
  const why = describeFailure({ kind: top.kind as ReplayErrorKind, detail: top.detail || null }, targetAddress(target), limits);
  const what = causes.length > 1 ? ` (${list})` : '';
  return `stopped early: the first ${v.failed} request${v.failed === 1 ? '' : 's'} all failed before any HTTP answer came back${what}: ${why.replace(/[.?!]$/, '')}. `
    + `${runFile ? `${runFile} keeps the results so far` : 'nothing was kept'}`;
}

/**
 * Input tensor names the trace did not keep, from the target's model metadata (as a real client takes them); a route
 * whose metadata gives none is said, and its requests carry placeholder names.
 */
export async function namesOfTemplatedTensors(opts: ReplayTraceOptions, arrivals: readonly Arrival[]): Promise<Record<string, Record<number, string>> | undefined> {
  const reader = new TraceReader(opts.trace);
  let routes: Map<string, number[]>;
  try {
    routes = templatedTensorRoutes(reader, arrivals, opts);
  } finally {
    reader.close();
  }
  if (routes.size === 0) return undefined;
  const { names, missing } = await tensorNamesFromTarget(opts.target, routes, opts.headers);
  for (const m of missing) opts.onNotice?.(`input tensor names the trace does not keep are sent as placeholders: ${m}`);
  return names;
}

/**
 * What each request of the workload is, as sent: `METHOD route` (the templated route after the target mapping), the
 * model and the protocol, as distinct keys and an index per request (results carry them for breakdowns).
 */
export function requestClasses(arrivals: readonly Arrival[], opts: TargetMapping): RequestClasses {
  const keys: RequestClasses['keys'] = [];
  const seen = new Map<string, number>();
  const ofIndex = arrivals.map((a) => {
    const route = `${a.method ?? 'POST'} ${routeForTarget(a.route, opts)}`;
    const model = a.model === null ? opts.model ?? null : modelForTarget(a.model, opts);
    const id = JSON.stringify([route, model, a.protocol]);
    let k = seen.get(id);
    if (k === undefined) {
      k = keys.push([route, model, a.protocol]) - 1;
      seen.set(id, k);
    }
    return k;
  });
  return { keys, ofIndex };
}
