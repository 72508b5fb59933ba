import type { Fingerprinter } from '../anonymize/fingerprint.ts';
import { DEFAULT_POLICY, type CompiledPolicy } from '../anonymize/policy.ts';
import { storedMediaType } from '../anonymize/media-type.ts';
import { usageError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import type { PromptLead } from '../synth/history.ts';
import type { BlockTextCache } from '../synth/text.ts';
import type { ProtocolId, TraceRecord } from '../types.ts';
import { baseDescription, mediaType, type ExtractContext, type ProtocolAdapter, type RequestDescription, type SynthesizedRequest, type SynthOptions } from './adapter.ts';
import { formUrlencoded, multipart } from './form.ts';
import { genericJson, opaqueRequest } from './generic.ts';
import { kserveGenerate } from './kserve-generate.ts';
import { kserveV2 } from './kserve-v2.ts';
import { ollama } from './ollama.ts';
import { tgi } from './tgi.ts';
import { openaiChat, openaiCompletions, openaiEmbeddings } from './openai.ts';
import { tfServing } from './tf-serving.ts';
import { torchServe } from './torchserve.ts';
import { PROTOCOL_IDS } from './ids.ts';

export { mediaType, type RequestDescription, type SynthesizedRequest } from './adapter.ts';

/** Every adapter, in detection order: route-specific protocols first, then body formats, then generic JSON. */
export const ADAPTERS: readonly ProtocolAdapter[] = [openaiChat, openaiCompletions, openaiEmbeddings, kserveGenerate, kserveV2, ollama, tgi, tfServing, torchServe, multipart, formUrlencoded, genericJson];

export { PROTOCOL_IDS };
if (ADAPTERS.map((a) => a.id).join() !== PROTOCOL_IDS.join()) throw new Error('protocols/ids.ts does not list the adapters of protocols/index.ts');

/** The adapter for an id. @throws TracewarpError `TW_USAGE` naming the known ids. */
export function adapterById(id: string): ProtocolAdapter {
  const a = adapterFor(id);
  if (!a) usageError(`unknown protocol '${id}' (known: ${PROTOCOL_IDS.join(', ')})`);
  return a;
}

/** Options of {@link describeRequest}. */
export interface DescribeRequestOptions {
  /** Request headers (lower-case names), for framing such as the KServe binary extension; never stored. */
  headers?: Record<string, string | string[] | undefined>;
  /** The body's full length when `body` holds only the captured prefix. Default `body.length`. */
  totalBytes?: number;
  fingerprinter?: Fingerprinter | null;
  /** Use this adapter instead of detecting one (`record --protocol`). */
  protocol?: ProtocolId;
  /** The anonymization policy. Default: the built-in one. */
  policy?: CompiledPolicy;
  /** Give chat requests their message-prefix fingerprints (`RequestDescription.messagePrefixes`). Default false. */
  messagePrefixes?: boolean;
}

/**
 * Describes a request by structure and load features, never keeping a value (DESIGN decision 2). The adapter is
 * chosen by route and content type (or forced); a body it cannot parse is `unparseable` with length and content type
 * only; a body no adapter understands is `binary` (length and content type).
 */
export async function describeRequest(method: string, route: string, contentType: string | undefined, body: Buffer | null, complete: boolean, opts: DescribeRequestOptions = {}): Promise<RequestDescription> {
  const d = await describeBody(method, route, contentType, body, complete, opts);
  // Adapters detect by the media type as sent; the trace keeps only its registered form (never a vendor's name).
  d.shape = { ...d.shape, contentType: storedMediaType(d.shape.contentType) };
  return d;
}

async function describeBody(method: string, route: string, contentType: string | undefined, body: Buffer | null, complete: boolean, opts: DescribeRequestOptions): Promise<RequestDescription> {
  const mt = mediaType(contentType);
  if (!body || body.length === 0) return baseDescription('other', { kind: 'none', contentType: mt, skeleton: null });
  const headers = opts.headers ?? {};
  const adapter = opts.protocol ? adapterById(opts.protocol) : ADAPTERS.find((a) => a.detect(method, route, mt, headers));
  if (!adapter) return baseDescription('other', { kind: 'binary', contentType: mt, skeleton: null });
  const ctx: ExtractContext = { method, route, mediaType: mt, contentType: contentType ?? null, headers, body, totalBytes: opts.totalBytes ?? body.length, complete, fingerprinter: opts.fingerprinter ?? null, policy: opts.policy ?? DEFAULT_POLICY, messagePrefixes: opts.messagePrefixes };
  let d: RequestDescription | null = null;
  try {
    d = await adapter.extract(ctx);
  } catch {
    d = null;
  }
  return d ?? baseDescription(adapter.id === 'generic-json' ? 'other' : adapter.id, { kind: 'unparseable', contentType: mt, skeleton: null });
}

/**
 * Builds a request with the recorded shape (DESIGN decision 3) through the record's protocol adapter. Seeded: the same
 * record and streams give the same bytes. `shared` is one stream for the whole replay (fingerprint-keyed content).
 */
export function synthesizeRequest(r: TraceRecord, rng: Rng, shared: Rng, opts?: SynthOptions, blocks?: BlockTextCache, lead?: PromptLead): SynthesizedRequest {
  const rngs = { rng, shared, blocks, lead };
  const adapter = adapterFor(r.protocol);
  const s = r.shape.kind === 'none' || r.shape.kind === 'unparseable' || !adapter || (r.shape.kind === 'binary' && r.protocol === 'other')
    ? opaqueRequest(r, rngs)
    : adapter.synthesize(r, rngs, opts);
  return withKeptHeadersAndQuery(s, r);
}

/** Framing headers the synthesizer sets itself; a recorded value never overrides them. */
const OWN_HEADERS = new Set(['content-type', 'content-length', 'transfer-encoding', 'host', 'connection', 'inference-header-content-length']);

/** Adds the header and query values the policy kept (e.g. `accept`, `api-version`) to a synthesized request. */
function withKeptHeadersAndQuery(s: SynthesizedRequest, r: TraceRecord): SynthesizedRequest {
  for (const [name, value] of r.features.headers ?? []) if (value !== null && !OWN_HEADERS.has(name)) s.headers[name] = value;
  const kept = (r.features.query ?? []).filter(([, v]) => v !== null) as Array<[string, string]>;
  // A path mapped to one with a query of its own gets the kept values after it.
  if (kept.length > 0) s.path += (s.path.includes('?') ? '&' : '?') + new URLSearchParams(kept).toString();
  return s;
}

/** The adapter of a protocol id, or undefined (`other`, `websocket`, or an id this build does not know). */
export function adapterFor(protocol: string): ProtocolAdapter | undefined {
  return BY_ID.get(protocol);
}
const BY_ID: ReadonlyMap<string, ProtocolAdapter> = new Map(ADAPTERS.map((a) => [a.id, a]));

/** True for the protocols whose answers carry generated tokens (TTFT, ITL, output tokens). */
export function isGenerative(protocol: string): boolean {
  return adapterFor(protocol)?.generative === true;
}

/** The adapter that reads answers of a protocol, if it reads any. */
export function responseReader(protocol: ProtocolId): ProtocolAdapter['extractResponse'] {
  return adapterFor(protocol)?.extractResponse;
}
