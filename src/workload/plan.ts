import { TracewarpError } from '../errors.ts';
import { createRng } from '../rng.ts';
import { checkRoutes, type RouteCheck } from '../synth/target.ts';
import type { TraceReader } from '../trace/reader.ts';
import { transform, type Step } from './pipeline.ts';
import { filterArrivals, type Selector } from './select.ts';
import type { Arrival } from './types.ts';

/** What selects and shapes a workload: everything that changes what `replay` sends, and so its digest. */
export interface WorkloadOptions {
  /** Transformations in order (see `workload/pipeline.ts`). */
  steps: readonly Step[];
  seed: number;
  /** Keep only the first N requests of the transformed workload. */
  limit?: number;
  /** Keep only recorded requests matching one of these (before any transformation). */
  only?: readonly Selector[];
  /** Leave out recorded requests matching any of these (before any transformation). */
  exclude?: readonly Selector[];
  /** Send every request to this model (parameter and path). */
  model?: string;
  /** Path rewrites, see `SynthOptions.pathMap`. */
  pathMap?: ReadonlyArray<readonly [string, string]>;
}

/** A planned workload: the recorded arrivals it came from and the arrivals to send. */
export interface PlannedWorkload {
  /** The trace's requests that passed the filters, as recorded. */
  before: Arrival[];
  /** The workload to send, in schedule order. */
  after: Arrival[];
  /** Requests in the trace (HTTP only). */
  traceRequests: number;
  /** Requests the filters left out. */
  excluded: number;
  webSocketSessions: number;
  /** The routes of `after` against the model and path mapping. */
  routes: RouteCheck;
  /** Records the trace reader refused (over a cap, malformed) and left out, and one line saying why the first was. */
  refusedRecords: number;
  refusedSummary: string | null;
}

/**
 * Plans a workload from a trace (`plan` and `replay` share it, so a plan's digest is the replay's): filters the
 * recorded requests, applies the transformations (seeded), cuts to `limit`, and checks the routes against the mapping.
 * @throws TracewarpError `TW_USAGE` when a transformation cannot apply to this trace.
 */
export function planWorkload(reader: TraceReader, opts: WorkloadOptions): PlannedWorkload {
  const all = reader.arrivals();
  const refusedRecords = reader.skipped;
  const refusedSummary = reader.skippedSummary();
  if (all.length === 0 && refusedRecords > 0) throw new TracewarpError('TW_TRACE_CORRUPT', `no record of the trace can be used (${refusedRecords} refused); the first: ${reader.refused[0]!.message}`);
  const { kept: before, excluded } = filterArrivals(all, opts.only ?? [], opts.exclude ?? []);
  let after: Arrival[];
  try {
    after = transform(before, opts.steps, createRng(opts.seed).child('workload'));
  } catch (err) {
    // A transformation that cannot apply to this trace (e.g. --rate on one arrival) is a usage problem.
    if (err instanceof RangeError) throw new TracewarpError('TW_USAGE', err.message);
    throw err;
  }
  if (opts.limit !== undefined) after = after.slice(0, opts.limit);
  const counts = new Map<string, number>();
  for (const a of after) counts.set(a.route, (counts.get(a.route) ?? 0) + 1);
  return { before, after, traceRequests: all.length, excluded, webSocketSessions: reader.webSocketSessions(), routes: checkRoutes(counts, opts), refusedRecords, refusedSummary };
}

/**
 * The error for a workload whose paths name a model the trace could not keep (`{model}`/`{version}`): sent as they
 * are, every one would fail. `routes` lists them with their request counts; the CLI adds which flags map them.
 */
export class UnmappedRoutesError extends TracewarpError {
  constructor(readonly routes: RouteCheck['unmapped']) {
    const n = routes.reduce((a, r) => a + r.requests, 0);
    const list = routes.slice(0, 3).map((r) => `${r.route} ×${r.requests}`).join(', ');
    super('TW_USAGE', `${n} request${n === 1 ? '' : 's'} of this workload ha${n === 1 ? 's a path' : 've paths'} whose model or version the trace does not keep (${list}${routes.length > 3 ? ', …' : ''}): name the target's model, or map these paths to the target's`);
  }
}
