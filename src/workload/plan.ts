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
  /** Model renames, see `SynthOptions.modelMap`. */
  modelMap?: ReadonlyArray<readonly [string, string]>;
  /** See `SynthOptions.placeholderSegments`. */
  placeholderSegments?: boolean;
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
  /**
   * Routes (as recorded) of model servers whose request keys are the model's own input names (TorchServe JSON, TF
   * Serving instances) and which the trace keeps as tokens: a server that checks its inputs rejects them.
   */
  tokenInputs: Array<{ route: string; requests: number }>;
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
  const models = new Map<string, number>();
  for (const a of after) {
    counts.set(a.route, (counts.get(a.route) ?? 0) + 1);
    if (a.model !== null) models.set(a.model, (models.get(a.model) ?? 0) + 1);
  }
  return { before, after, traceRequests: all.length, excluded, webSocketSessions: reader.webSocketSessions(), routes: checkRoutes(counts, opts, models), tokenInputs: tokenInputs(reader, after), refusedRecords, refusedSummary };
}

/** Protocols whose JSON keys name a model's inputs (the handler's or the signature's), not the protocol's. */
const MODEL_INPUT_KEYS = new Set(['torchserve', 'tf-serving']);

/** See {@link PlannedWorkload.tokenInputs}: one record read per route. */
function tokenInputs(reader: TraceReader, arrivals: readonly Arrival[]): PlannedWorkload['tokenInputs'] {
  const byRoute = new Map<string, { requests: number; tokens: boolean }>();
  for (const a of arrivals) {
    if (!MODEL_INPUT_KEYS.has(a.protocol)) continue;
    let e = byRoute.get(a.route);
    if (!e) byRoute.set(a.route, (e = { requests: 0, tokens: JSON.stringify(reader.get(a.seq).shape.skeleton ?? null).includes('"{k:') }));
    e.requests++;
  }
  return [...byRoute].filter(([, e]) => e.tokens).map(([route, e]) => ({ route, requests: e.requests }));
}

/**
 * The error for a workload whose paths name a model the trace could not keep (`{model}`/`{version}`): sent as they
 * are, every one would fail. `routes` lists them with their request counts; the CLI adds which flags map them.
 */
export class UnmappedRoutesError extends TracewarpError {
  constructor(readonly routes: RouteCheck['unmapped'], readonly models: RouteCheck['unmappedModels'] = []) {
    super('TW_USAGE', unmappedMessage(routes, models));
  }
}

function unmappedMessage(routes: RouteCheck['unmapped'], models: RouteCheck['unmappedModels']): string {
  const parts: string[] = [];
  const count = (xs: Array<{ requests: number }>) => xs.reduce((a, r) => a + r.requests, 0);
  if (routes.length > 0) {
    const n = count(routes);
    const list = routes.slice(0, 3).map((r) => `${r.route} ×${r.requests}`).join(', ');
    parts.push(`${n} request${n === 1 ? '' : 's'} of this workload ha${n === 1 ? 's a path' : 've paths'} whose model, version or names the trace keeps only as fingerprints (${list}${routes.length > 3 ? ', …' : ''})`);
  }
  if (models.length > 0) {
    const n = count(models);
    const list = models.slice(0, 3).map((m) => `${m.model} ×${m.requests}`).join(', ');
    parts.push(`${n} request${n === 1 ? '' : 's'} name${n === 1 ? 's' : ''} a model the trace keeps only as a fingerprint (${list}${models.length > 3 ? ', …' : ''})`);
  }
  return `${parts.join('; ')}: name the target's model, or map these to the target's names`;
}
