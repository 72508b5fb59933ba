import { imageSize } from 'image-size';
import type { Fingerprinter } from '../anonymize/fingerprint.ts';
import type { CompiledPolicy } from '../anonymize/policy.ts';
import type { Rng } from '../rng.ts';
import type { ImageInfo } from '../synth/image.ts';
import type { PromptLead } from '../synth/history.ts';
import type { BlockTextCache } from '../synth/text.ts';
import type { StreamReader } from './streams.ts';
import type { Features, Params, ProtocolId, RequestShape, TraceRecord } from '../types.ts';

/** What an adapter gets to describe one request. Values are read here and never leave the adapter. */
export interface ExtractContext {
  method: string;
  /** Templated route (no query). */
  route: string;
  /** Media type of the request (no parameters, lower case), or null. */
  mediaType: string | null;
  /** The raw `content-type` header (multipart needs its boundary). */
  contentType: string | null;
  /** Request headers (lower-case names); read for protocol framing only, never stored. */
  headers: Record<string, string | string[] | undefined>;
  /** The captured body (up to the capture limit). */
  body: Buffer;
  /** The body's full length in bytes. */
  totalBytes: number;
  /** False when the body was longer than the capture limit (only its length is known then). */
  complete: boolean;
  /** Also give chat requests their message-prefix fingerprints (session inference is on). Default false. */
  messagePrefixes?: boolean;
  /** Keyed prompt fingerprints, when the recorder has a key. */
  fingerprinter: Fingerprinter | null;
  /** The anonymization policy in force. */
  policy: CompiledPolicy;
}

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
  /**
   * Chat requests: chained keyed fingerprints at each message's end (`Fingerprinter.messagePrefixes`), for finding
   * sessions while recording. Evidence for the recorder only: never part of the record.
   */
  messagePrefixes?: string[];
}

/** A request ready to send. */
export interface SynthesizedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | null;
}

/** Options of synthesis that are not in the trace. */
export interface SynthOptions {
  /**
   * LLM requests also ask for exactly the recorded output length: `min_tokens` = `max_tokens` and `ignore_eos: true`
   * (vLLM's sampling parameters; servers that do not know them may reject or ignore them).
   */
  forceOutputLength?: boolean;
  /** Send every request to this model: the `model` parameter and the path's model positions (`replay --model`). */
  model?: string;
  /**
   * Path rewrites (`replay --path-map FROM=TO`), applied to the recorded route before synthesis: a route that is FROM
   * or begins with FROM followed by `/` or `:` has that prefix replaced by TO; the longest FROM wins.
   */
  pathMap?: ReadonlyArray<readonly [string, string]>;
  /**
   * Model renames (`replay --model-map FROM=TO`): a request whose model (body or path) is FROM, as the trace keeps it
   * (a `{model:…}` token where the trace fingerprinted part of it), is sent to TO. Before `model`.
   */
  modelMap?: ReadonlyArray<readonly [string, string]>;
  /** Send path segments the trace kept as `{seg:<fp>}` as the placeholder `seg-<fp>` (`replay --placeholder-segments`). */
  placeholderSegments?: boolean;
  /**
   * How long LLM answers are asked to be (`replay --output-length`): `recorded` (default) asks for the recorded output
   * length (`max_tokens` = the tokens the answer had), so the server does the same work as when it was recorded;
   * `as-sent` keeps the client's own limit as it was recorded (or none), so the target model's own output lengths load it.
   */
  outputLength?: 'recorded' | 'as-sent';
  /**
   * A request whose recorded client gave up (`client_aborted`) is cut as long after its send as that client waited
   * (default true); false replays it whole (`replay --no-client-aborts`).
   */
  clientAborts?: boolean;
  /**
   * Input tensor names the trace did not keep, by route (as sent) and input position, taken from the target's model
   * metadata before the replay (`replay/tensor-names.ts`).
   */
  tensorNames?: Record<string, Record<number, string>>;
}

/** Seeded streams a synthesizer draws from. */
export interface SynthRngs {
  /** This request's own stream. */
  rng: Rng;
  /** Shared by every request of a replay: content keyed by fingerprints / block ids comes from here. */
  shared: Rng;
  /** Texts of shared prefix blocks already synthesized (one per synthesis thread); none: every block is made anew. */
  blocks?: BlockTextCache;
  /** A follow-up turn of a session: its prompt begins with the text its session sent and was answered so far. */
  lead?: PromptLead;
}

/**
 * One inference protocol: how to recognise it, describe a request of it without keeping values, and rebuild a request
 * of the same shape. `detect` sees only method, route, media type and headers.
 */
export interface ProtocolAdapter {
  readonly id: ProtocolId;
  detect(method: string, route: string, mediaType: string | null, headers: ExtractContext['headers']): boolean;
  /** @returns null when the body does not parse as this protocol (the caller then records it as unparseable). */
  extract(ctx: ExtractContext): RequestDescription | null | Promise<RequestDescription | null>;
  synthesize(record: TraceRecord, rngs: SynthRngs, opts?: SynthOptions): SynthesizedRequest;
  /** Features of a complete JSON answer (e.g. output tokens, output tensor shapes), merged into the record. */
  extractResponse?(body: unknown): Partial<Pick<TraceRecord, 'outputTokens'>> & { features?: Features };
  /** True for protocols whose answers carry generated tokens (TTFT, ITL, output tokens are measured). */
  readonly generative?: boolean;
  /** A reader for one streamed answer of this protocol (SSE or NDJSON events); absent: any known LLM event shape. */
  streamReader?(): StreamReader;
}

/** Media type without parameters, lower case (`application/json; charset=utf-8` → `application/json`). */
export function mediaType(contentType: string | undefined | null): string | null {
  if (!contentType) return null;
  return contentType.split(';')[0]!.trim().toLowerCase() || null;
}

/**
 * The content type a replay sends for a recorded one: as recorded, or — where the trace kept only a vendor-less form
 * with a `*` (`application/vnd.*+json`, `image/*`) — the structured suffix's own type (`application/json`), else
 * `fallback`.
 */
export function sentContentType(recorded: string | null, fallback: string): string {
  if (recorded === null) return fallback;
  if (!recorded.includes('*')) return recorded;
  const suffix = /\+([a-z0-9-]+)$/.exec(recorded)?.[1];
  return suffix === 'json' || suffix === 'xml' ? `application/${suffix}` : fallback;
}

/** True for `application/json` and `*+json`. */
export function isJsonType(mt: string | null): boolean {
  return mt === 'application/json' || (mt !== null && mt.endsWith('+json'));
}

/** An empty description for a protocol. */
export function baseDescription(protocol: ProtocolId, shape: RequestShape): RequestDescription {
  return { protocol, shape, params: {}, features: {}, promptTokens: null, messageCount: null, model: null, maxTokens: null, wantsStream: false };
}

/** Format and dimensions of an encoded image (via `image-size`), or null when the bytes are not an image it knows. */
export function imageInfo(bytes: Uint8Array): ImageInfo | null {
  try {
    const d = imageSize(bytes);
    if (!d.width || !d.height || !d.type) return null;
    return { format: d.type, width: d.width, height: d.height, bytes: bytes.length };
  } catch {
    return null;
  }
}

/** Image info of a `data:image/...;base64,` URL, or null. */
export function dataUrlImage(url: string): ImageInfo | null {
  const m = /^data:image\/[a-z0-9.+-]+;base64,/i.exec(url);
  if (!m) return null;
  return imageInfo(Buffer.from(url.slice(m[0].length), 'base64'));
}

/**
 * Fills a route template's `{id}` segments with seeded numbers (stable placeholders: the same seed gives the same
 * path). Model and version positions are never filled: they are kept as recorded or mapped before synthesis.
 */
export function fillRoute(route: string, rng: Rng): string {
  return route.replace(/\{id\}/g, () => String(1000 + rng.int(9000)));
}

/** Seeded bytes: printable letters for text-like bodies, any byte otherwise. */
export function seededBytes(length: number, rng: Rng, text = false): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = text ? 0x61 + rng.int(26) : rng.int(256);
  return b;
}
