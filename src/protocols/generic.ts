import { DEFAULT_KEPT_PARAMS } from '../anonymize/policy.ts';
import { FREE_LAYOUT, LLM_LAYOUT } from '../anonymize/keys.ts';
import { isLlmApiRoute } from './routes.ts';
import { describeJson, type DescribeOptions } from '../anonymize/skeleton.ts';
import { synthesizeJson } from '../synth/json.ts';
import type { RawStrings } from '../synth/text.ts';
import type { ProtocolId, TraceRecord } from '../types.ts';
import { baseDescription, fillRoute, isJsonType, sentContentType, seededBytes, type ExtractContext, type ProtocolAdapter, type RequestDescription, type SynthesizedRequest, type SynthRngs } from './adapter.ts';

const ownParams = new WeakMap<ReadonlySet<string>, ReadonlySet<string>>();
/** The parameters a policy keeps beyond the LLM defaults (computed once per policy). */
function policyOwnParams(all: ReadonlySet<string>): ReadonlySet<string> {
  let own = ownParams.get(all);
  if (!own) ownParams.set(all, (own = new Set([...all].filter((p) => !DEFAULT_KEPT_PARAMS.includes(p)))));
  return own;
}

/** Parses a body as JSON (UTF-8, a leading BOM allowed), or returns undefined. */
export function parseJson(body: Buffer): unknown {
  try {
    const text = body.toString('utf8');
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return undefined;
  }
}

/**
 * The description of a parsed JSON body: skeleton + sizes + kept params (plus the adapter's `keep` keys). The default
 * load parameters (`max_tokens`, `temperature`, …) are an LLM API's, so only LLM adapters keep them (they pass
 * `params`); on any other route only the parameters a policy names itself are kept.
 */
export function describeJsonBody(protocol: ProtocolId, ctx: ExtractContext, parsed: unknown, opts?: DescribeOptions): RequestDescription {
  const d = describeJson(parsed, {
    params: policyOwnParams(ctx.policy.params), objectKeys: ctx.policy.objectKeys, keepKeys: ctx.policy.keys, fingerprinter: ctx.fingerprinter, ...opts,
  });
  const out = baseDescription(protocol, { kind: 'json', contentType: ctx.mediaType, skeleton: d.skeleton });
  out.params = d.params;
  out.features = { sizes: d.sizes };
  return out;
}

/** Rebuilds a JSON body from a record's skeleton, sizes and params; `stringAt` may supply strings by path. */
export function synthesizeJsonBody(r: TraceRecord, rngs: SynthRngs, stringAt?: (path: string, length: number) => string | undefined): unknown {
  if (!r.shape.skeleton) throw new Error(`record ${r.seq} has no JSON skeleton`);
  return synthesizeJson(r.shape.skeleton, r.features.sizes ?? [], r.params, rngs.rng, stringAt);
}

/** A request with a JSON body and the recorded content type; strings given as bytes (`raw`) are put in as they are. */
export function jsonRequest(r: TraceRecord, rngs: SynthRngs, value: unknown, raw?: RawStrings): SynthesizedRequest {
  return { method: r.method, path: fillRoute(r.route, rngs.rng), headers: { 'content-type': sentContentType(r.shape.contentType, 'application/json') }, body: raw ? raw.encode(value) : Buffer.from(JSON.stringify(value)) };
}

/** Any JSON body: structure and lengths only (DESIGN decision 2). */
export const genericJson: ProtocolAdapter = {
  id: 'generic-json',
  detect: (_m, _r, mt) => isJsonType(mt),
  extract(ctx) {
    const parsed = ctx.complete ? parseJson(ctx.body) : undefined;
    // An LLM API without an adapter of its own keeps its protocol's keys; any other JSON none.
    return parsed === undefined ? null : describeJsonBody('generic-json', ctx, parsed, { layout: isLlmApiRoute(ctx.route) ? LLM_LAYOUT : FREE_LAYOUT });
  },
  synthesize: (r, rngs) => jsonRequest(r, rngs, synthesizeJsonBody(r, rngs)),
};

/**
 * Bodies that are not described further (binary, text, or unparseable): length and content type only; replayed as
 * seeded bytes of the same length and content type.
 */
export function opaqueRequest(r: TraceRecord, rngs: SynthRngs): SynthesizedRequest {
  const headers: Record<string, string> = {};
  if (r.shape.contentType) headers['content-type'] = sentContentType(r.shape.contentType, 'application/octet-stream');
  const path = fillRoute(r.route, rngs.rng);
  if (r.shape.kind === 'none') return { method: r.method, path, headers, body: null };
  return { method: r.method, path, headers, body: seededBytes(r.requestBytes, rngs.rng, r.shape.kind === 'unparseable') };
}
