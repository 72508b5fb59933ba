import { isFingerprintedModel } from '../anonymize/model-id.ts';
import type { SynthOptions } from '../protocols/adapter.ts';
import { hasNamedSegment, hasUnknownModel, mapModelPositions, modelIdsOf, withModel } from '../protocols/routes.ts';
import type { TraceRecord } from '../types.ts';

/** The options that say where a recorded request goes on the target. */
export type TargetMapping = Pick<SynthOptions, 'model' | 'pathMap' | 'modelMap' | 'placeholderSegments'>;

/**
 * A recorded route as it is sent: the longest matching `pathMap` prefix replaced (a mapped path is taken as given),
 * else each model position mapped by `modelMap` (its recorded id → the target's), the others set to `model` when one
 * is given; with `placeholderSegments`, a segment the trace kept as `{seg:<fp>}` is sent as `seg-<fp>`. `{id}`
 * placeholders are filled later, by synthesis.
 */
export function routeForTarget(route: string, opts: TargetMapping = {}): string {
  let best: readonly [string, string] | null = null;
  for (const m of opts.pathMap ?? []) if (mapsRoute(m[0], route) && (!best || m[0].length > best[0].length)) best = m;
  if (best) return best[1] + route.slice(best[0].length);
  let sent = opts.modelMap?.length ? mapModelPositions(route, (id) => opts.modelMap!.find(([from]) => from === id)?.[1]) : route;
  if (opts.model !== undefined) sent = withModel(sent, opts.model);
  return opts.placeholderSegments ? sent.replace(/\{seg:([0-9a-f]{8})\}/g, 'seg-$1') : sent;
}

/** The model a request's body names on the target: the model map's, else `--model`'s, else as recorded. */
export function modelForTarget(model: string, opts: TargetMapping): string {
  return opts.modelMap?.find(([from]) => from === model)?.[1] ?? opts.model ?? model;
}

/** Whether a path map's FROM applies to a route: the route is FROM, or begins with FROM followed by `/` or `:`. */
function mapsRoute(from: string, route: string): boolean {
  return route.startsWith(from) && (route.length === from.length || route[from.length] === '/' || route[from.length] === ':');
}

/** The record as it is sent to the target: `model` (parameter and path) and path rewrites applied. Pure. */
export function recordForTarget(r: TraceRecord, opts: TargetMapping = {}): TraceRecord {
  const route = routeForTarget(r.route, opts);
  const recorded = r.params.model;
  const model = typeof recorded === 'string' ? modelForTarget(recorded, opts) : opts.model;
  const params = model !== undefined && 'model' in r.params && model !== recorded ? { ...r.params, model } : r.params;
  if (route === r.route && params === r.params) return r;
  return { ...r, route, params, model: typeof params.model === 'string' ? params.model : opts.model ?? r.model };
}

/** What a workload's routes need before they can be sent: see {@link checkRoutes}. */
export interface RouteCheck {
  /** Path maps (their FROM) that no route of the workload matched: most likely a typo. */
  unusedPathMaps: string[];
  /** Routes (as recorded) whose model or version the trace could not keep, with their request counts: they cannot be sent as they are. */
  unmapped: Array<{ route: string; requests: number }>;
  /** Routes (as sent) with `{id}` segments, sent with seeded placeholder numbers, with their request counts. */
  placeholders: Array<{ route: string; requests: number }>;
  /** Model ids (as recorded) with a fingerprinted part that no mapping names, with their request counts. */
  unmappedModels: Array<{ model: string; requests: number }>;
  /** Model maps (their FROM) that no request's model matched. */
  unusedModelMaps: string[];
}

/**
 * Checks the routes of a workload (each recorded route with its request count) against the mapping: which still have
 * a `{model}`/`{version}` position (they would be sent to a model that does not exist) and which carry `{id}`
 * placeholders. Called before anything is sent.
 */
export function checkRoutes(routes: ReadonlyMap<string, number>, opts: TargetMapping = {}, models: ReadonlyMap<string, number> = new Map()): RouteCheck {
  const out: RouteCheck = { unmapped: [], placeholders: [], unusedPathMaps: [], unmappedModels: [], unusedModelMaps: [] };
  out.unusedPathMaps = (opts.pathMap ?? []).map(([from]) => from).filter((from) => ![...routes.keys()].some((route) => mapsRoute(from, route)));
  const pathModels = [...routes.keys()].flatMap(modelIdsOf);
  out.unusedModelMaps = (opts.modelMap ?? []).map(([from]) => from).filter((from) => !models.has(from) && !pathModels.includes(from));
  for (const [model, requests] of models) if (isFingerprintedModel(modelForTarget(model, opts))) out.unmappedModels.push({ model, requests });
  for (const [route, requests] of routes) {
    const sent = routeForTarget(route, opts);
    if (hasUnknownModel(sent) || hasNamedSegment(sent)) out.unmapped.push({ route, requests });
    else if (sent.includes('{id}')) out.placeholders.push({ route: sent, requests });
  }
  return out;
}

/**
 * Parses `--model-map FROM=TO` values: FROM a model id as `inspect` lists it (public, or with a `{model:…}` token),
 * TO the target's name for it. @throws Error naming the value when it has no `=` or a side is empty.
 */
export function parseModelMap(values: readonly string[]): Array<[string, string]> {
  return values.map((v) => {
    // The token itself holds no `=`; the first `=` after it splits.
    const eq = v.indexOf('=', v.lastIndexOf('}') + 1);
    const from = eq > 0 ? v.slice(0, eq) : '';
    const to = eq > 0 ? v.slice(eq + 1) : '';
    if (from === '' || to === '' || /\s/.test(to)) throw new Error(`a model map is FROM=TO, a model id as 'tracewarp inspect' lists it and the target's name, e.g. '{model:3fa2b1c0}=llama-3-8b'; got '${v}'`);
    return [from, to];
  });
}

/**
 * Parses `--path-map FROM=TO` values: FROM a recorded route or route prefix as `inspect` lists it (it may hold `{id}`,
 * `{model}`), TO the path to send instead. @throws Error naming the value when it has no `=` or a side is not a path.
 */
export function parsePathMap(values: readonly string[]): Array<[string, string]> {
  return values.map((v) => {
    const eq = v.indexOf('=');
    const from = eq > 0 ? v.slice(0, eq) : '';
    const to = eq > 0 ? v.slice(eq + 1) : '';
    if (!from.startsWith('/') || !to.startsWith('/')) throw new Error(`a path map is FROM=TO, two paths that begin with '/', e.g. '/v2/models/{model}=/v2/models/resnet50'; got '${v}'`);
    // TO is sent as it is: only characters a URL path (and query) may hold, RFC 3986 (`%`-encode anything else).
    if (!/^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/{}]*(\?[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*)?$/.test(to)) throw new Error(`'${to}' is not a path that can be sent (spaces and other characters must be %-encoded); in '${v}'`);
    return [from.replace(/\/+$/, '') || '/', to.replace(/\/+$/, '') || '/'];
  });
}
