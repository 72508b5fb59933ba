import { describeJson } from '../anonymize/skeleton.ts';
import type { Rng } from '../rng.ts';
import { synthesizeJson } from '../synth/json.ts';
import type { Features, Params, ProtocolId, RequestShape, TraceRecord } from '../types.ts';
import { extractOpenAIRequest, openaiProtocol, openaiStringAt } from './openai.ts';

/** The anonymized description of a request body plus the load features read from it. */
export interface RequestDescription {
  protocol: ProtocolId;
  shape: RequestShape;
  params: Params;
  features: Features;
  promptTokens: number | null;
  messageCount: number | null;
  model: string | null;
  maxTokens: number | null;
  /** The client asked for a streamed answer (`"stream": true`). */
  wantsStream: boolean;
}

/** Media type without parameters, lower case (`application/json; charset=utf-8` → `application/json`). */
export function mediaType(contentType: string | undefined | null): string | null {
  if (!contentType) return null;
  return contentType.split(';')[0]!.trim().toLowerCase() || null;
}

function isJsonType(mt: string | null): boolean {
  return mt === 'application/json' || (mt !== null && mt.endsWith('+json'));
}

/**
 * Describes a request by structure and load features, never keeping a value (DESIGN decision 2). A body that does not
 * parse as the JSON it claims to be (or is cut off by the capture limit) is `unparseable` with its length and content
 * type only; non-JSON bodies are `binary`.
 */
export function describeRequest(method: string, route: string, contentType: string | undefined, body: Buffer | null, complete: boolean): RequestDescription {
  const mt = mediaType(contentType);
  const base: RequestDescription = {
    protocol: 'other', shape: { kind: 'none', contentType: mt, skeleton: null }, params: {}, features: {},
    promptTokens: null, messageCount: null, model: null, maxTokens: null, wantsStream: false,
  };
  if (!body || body.length === 0) return base;
  const oai = openaiProtocol(method, route);
  if (!isJsonType(mt) && !oai) return { ...base, shape: { kind: 'binary', contentType: mt, skeleton: null } };
  let parsed: unknown;
  try {
    if (!complete) throw new Error('body beyond capture limit');
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { ...base, shape: { kind: 'unparseable', contentType: mt, skeleton: null } };
  }
  const d = describeJson(parsed);
  const out: RequestDescription = {
    ...base,
    protocol: 'generic-json',
    shape: { kind: 'json', contentType: mt, skeleton: d.skeleton },
    params: d.params,
    features: { sizes: d.sizes },
  };
  if (oai && parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
    const f = extractOpenAIRequest(oai, parsed as Record<string, unknown>);
    out.protocol = oai;
    out.features.messageTokens = f.messageTokens;
    out.promptTokens = f.promptTokens;
    out.messageCount = f.messageCount;
    out.model = f.model;
    out.maxTokens = f.maxTokens;
    out.wantsStream = f.stream;
  }
  return out;
}

/** A request ready to send. */
export interface SynthesizedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | null;
}

/**
 * Builds a request with the recorded shape (DESIGN decision 3): same structure, strings and arrays of the recorded
 * lengths, chat messages with the recorded token counts, kept parameters verbatim, `max_tokens` = the recorded output
 * length when known. Seeded: same record and rng state → same bytes. Unparseable and binary bodies become seeded bytes
 * of the recorded length and content type.
 */
export function synthesizeRequest(r: TraceRecord, rng: Rng, blockRng: Rng): SynthesizedRequest {
  const headers: Record<string, string> = {};
  const path = r.route.replace(/\{[a-z0-9]+\}/g, () => String(1000 + rng.int(9000)));
  const s = r.shape;
  if (s.kind === 'none') return { method: r.method, path, headers, body: null };
  if (s.contentType) headers['content-type'] = s.contentType;
  if (s.kind !== 'json' || !s.skeleton) {
    const body = Buffer.alloc(r.requestBytes);
    for (let i = 0; i < body.length; i++) body[i] = s.kind === 'unparseable' ? 0x61 + rng.int(26) : rng.int(256);
    return { method: r.method, path, headers, body };
  }
  const isOpenAI = r.protocol === 'openai-chat' || r.protocol === 'openai-completions';
  const stringAt = isOpenAI ? openaiStringAt(r.protocol, r.features, rng, blockRng) : undefined;
  const value = synthesizeJson(s.skeleton, r.features.sizes ?? [], r.params, rng, stringAt);
  if (isOpenAI && r.outputTokens !== null && value && typeof value === 'object') {
    // Ask for the recorded output length: the trace's max_tokens was the client's limit, the output the real length.
    const v = value as Record<string, unknown>;
    if ('max_completion_tokens' in v) v.max_completion_tokens = Math.max(1, r.outputTokens);
    else v.max_tokens = Math.max(1, r.outputTokens);
  }
  return { method: r.method, path, headers, body: Buffer.from(JSON.stringify(value)) };
}
