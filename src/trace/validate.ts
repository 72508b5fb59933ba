import { PROTOCOL_IDS } from '../protocols/ids.ts';
import type { Features, Params, RequestShape, TraceRecord } from '../types.ts';

/**
 * A trace is untrusted input: traces travel between teams, and every size and offset in one drives an allocation or a
 * wait somewhere (a prompt of `messageTokens` tokens, a string of `sizes[k]` characters, a uniform array of
 * `sizes[k]` elements, `binaryBytes` of tensor data, a send `offset_us` after the start). This module states the caps
 * a record must keep and checks a record against them **as it is read**, before anything is built from it, so a
 * hostile or damaged record is refused with a sentence saying what is wrong instead of exhausting memory, hanging a
 * replay or throwing from deep inside synthesis.
 *
 * Every cap is one named constant here. A record over a cap is refused whole (the reader counts it and reads on, or
 * throws in strict mode); the trace's meta and tables are checked when it is opened and refuse the whole trace.
 */

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------------------
// Caps
// ---------------------------------------------------------------------------------------------------------------------

/**
 * Prompt tokens per request: `prompt_tokens`, each `messageTokens` entry and their sum (2,000,000). Above the largest
 * context windows served today (1–2M tokens), so no real request is refused; a prompt this long synthesizes in well
 * under a second into about 20 MB.
 */
export const MAX_PROMPT_TOKENS = 2_000_000;

/** Output tokens per request (`output_tokens`, 2,000,000): no server generates more than its context window. */
export const MAX_OUTPUT_TOKENS = 2_000_000;

/**
 * `max_tokens` as the client sent it (0 … 2³¹ − 1): the int32 range servers parse it into. It is passed on, never
 * allocated from.
 */
export const MAX_MAX_TOKENS = 2 ** 31 - 1;

/**
 * Bytes per request body (256 MiB): `request_bytes` (an opaque body is replayed as that many seeded bytes),
 * `binaryBytes` (KServe binary tensor data), each part of a form and their sum, an image's encoded size, and the bytes
 * of a request's input tensors (elements × datatype size). The same as the synthesis threads' default budget of bodies
 * made ahead (`synth/pool.ts`): a larger body would fill it on its own.
 */
export const MAX_REQUEST_BYTES = 256 * MiB;

/**
 * Bytes synthesized for one request, estimated from the record before anything is built (256 MiB): JSON strings and
 * values, prompt text (at most {@link MAX_BYTES_PER_TOKEN} bytes a token), images (4 bytes a pixel: the working
 * buffer), binary tensor data and parts. The same budget as {@link MAX_REQUEST_BYTES}.
 */
export const MAX_SYNTH_BYTES = 256 * MiB;

/** Longest synthesized prompt token in bytes (a space and at most 9 letters, see `synth/text.ts`), for the estimate. */
export const MAX_BYTES_PER_TOKEN = 10;

/**
 * Bytes per response (`response_bytes`, `eventsCapturedBytes`: 1 TiB). Answers are never synthesized; the cap keeps
 * sums of them exact in doubles.
 */
export const MAX_RESPONSE_BYTES = 2 ** 40;

/**
 * Messages (chat) or prompts/inputs (completions, embeddings) per request: `message_count` and the length of
 * `messageTokens` (100,000; OpenAI accepts 2,048 embedding inputs, long agent conversations hold a few thousand
 * messages).
 */
export const MAX_MESSAGES = 100_000;

/**
 * Characters of JSON strings synthesized for one request (32 Mi): each `sizes` entry of a string, and their sum with
 * every uniform array's repetitions. Twice the recorder's default capture bound (16 MiB, `--max-capture-bytes`): with
 * default settings no recorded JSON body holds more. Synthesizing 32 Mi characters takes about 5 s in a synthesis
 * thread on the reference machine.
 */
export const MAX_STRING_CHARS = 32 * MiB;

/**
 * JSON values synthesized for one request (4,194,304 = 2²²): each uniform array's length (`sizes` entry), and every
 * value of the body counted with its repetitions (a 1×3×1024×1024 tensor sent as JSON is 3.1M values). Measured here: 4M
 * values synthesize in about 1 s into 37 MB of JSON, with about 300 MB of transient memory; 16M took 10 s and 900 MB.
 */
export const MAX_JSON_VALUES = 4_194_304;

/** Depth of a request skeleton (256 levels): far deeper than any inference API body; keeps synthesis's recursion shallow. */
export const MAX_SKELETON_DEPTH = 256;

/**
 * Nodes of one request skeleton (1,000,000), and entries of a record's `sizes`: a uniform array is one node whatever
 * its length, so only bodies with a million distinct members reach it.
 */
export const MAX_SKELETON_NODES = 1_000_000;

/**
 * Longest span of a trace, and of any duration in it (366 days in µs = 31,622,400,000,000): every `offset_us`,
 * `ttfb_us`, `ttft_us`, `latency_us`, stream event offset and WebSocket timing is at most this. Public production traces
 * span a week (Azure LLM 2023/2024) to a few months (BurstGPT); a year keeps them all, and with it a replay never waits
 * for an arrival decades away. Integer µs this size are exact in doubles (below 2⁵³ by a factor of 280).
 */
export const MAX_SPAN_US = 366 * 24 * 3600 * 1_000_000;

/** Events of one streamed answer (4,000,000): one per generated token ({@link MAX_OUTPUT_TOKENS}) and as many others (role, usage, keep-alives). */
export const MAX_EVENTS = 4_000_000;

/** Pixels on an image's side (65,535): the most JPEG and GIF can encode (WebP: 16,383). Synthesis clamps to 16,384 × 2,441 anyway. */
export const MAX_IMAGE_SIDE_PX = 65_535;

/** Entries of one request's list features: images, parts, input and output tensors (100,000). */
export const MAX_LIST_ITEMS = 100_000;

/** Dimensions of one tensor shape (64; the Open Inference Protocol sets none, real models use up to 8). */
export const MAX_TENSOR_DIMS = 64;

/** Largest tensor dimension (2³¹ − 1, the range the recorder keeps); -1 (a dynamic dimension) is allowed too. */
export const MAX_TENSOR_DIM = 2 ** 31 - 1;

/**
 * Kept header and query entries per request (256 each): a header name at most {@link MAX_NAME_CHARS}, a query name and
 * any value at most {@link MAX_HEADER_VALUE_CHARS}.
 */
export const MAX_HEADERS = 256;

/** Characters of a kept header or query value (8,192: the request-line/header limit of common servers). */
export const MAX_HEADER_VALUE_CHARS = 8192;

/** Characters of a route (8,192: the longest request line common servers accept). */
export const MAX_ROUTE_CHARS = 8192;

/**
 * Characters of a name-like string (1,024): a model, a kept string parameter, an object key or literal of a skeleton,
 * a tensor name or datatype, an image format, a content type, a part name, a fingerprint, a `meta` text.
 */
export const MAX_NAME_CHARS = 1024;

/** Kept parameter entries per request (10,000) and elements of one kept array parameter (1,024). */
export const MAX_PARAMS = 10_000;
export const MAX_PARAM_ARRAY = 1024;

/**
 * Bytes of one stored blob (shape, features, event offsets: 16 MiB; params: 1 MiB), checked with SQLite's
 * `octet_length` before the blob is read at all: a MessagePack blob decodes to at most about 8× its size in memory.
 */
export const MAX_BLOB_BYTES = 16 * MiB;
export const MAX_PARAMS_BLOB_BYTES = 1 * MiB;

/** Bytes of one `meta` value (1 MiB) and rows of the `meta` table (10,000). */
export const MAX_META_VALUE_BYTES = 1 * MiB;
export const MAX_META_ROWS = 10_000;

/** Bytes of a scalar cell (a number or a short text such as `method`, `protocol`, `error_kind`), read before its value. */
export const MAX_SCALAR_CELL_BYTES = 64;

/**
 * Mean characters of a number as JSON text, the `c` of a uniform array's numeric element (24: the longest a double
 * prints, as `anonymize/skeleton.ts` MAX_NUMBER_CHARS caps it when recording).
 */
export const MAX_NUMBER_TEXT_CHARS = 24;

/** Every cap by name, for messages, documentation and tests. */
export const TRACE_CAPS = {
  MAX_PROMPT_TOKENS, MAX_OUTPUT_TOKENS, MAX_MAX_TOKENS, MAX_REQUEST_BYTES, MAX_SYNTH_BYTES, MAX_RESPONSE_BYTES, MAX_MESSAGES,
  MAX_STRING_CHARS, MAX_JSON_VALUES, MAX_SKELETON_DEPTH, MAX_SKELETON_NODES, MAX_SPAN_US, MAX_EVENTS, MAX_IMAGE_SIDE_PX,
  MAX_LIST_ITEMS, MAX_TENSOR_DIMS, MAX_TENSOR_DIM, MAX_HEADERS, MAX_HEADER_VALUE_CHARS, MAX_ROUTE_CHARS, MAX_NAME_CHARS,
  MAX_PARAMS, MAX_PARAM_ARRAY, MAX_BLOB_BYTES, MAX_PARAMS_BLOB_BYTES, MAX_META_VALUE_BYTES, MAX_META_ROWS, MAX_SCALAR_CELL_BYTES,
  MAX_NUMBER_TEXT_CHARS,
} as const;

const SPAN_UNIT = 'µs (366 days, the longest span a trace may cover)';

/**
 * Protocols whose adapter rebuilds a body the trace describes as `binary` from its features (parts, images) or as
 * seeded bytes, without a skeleton (`protocols/form.ts`, `torchserve.ts`). Every other adapter of
 * `protocols/ids.ts` rebuilds its body from the JSON skeleton, so a record of it described as binary (no skeleton)
 * could not be synthesized; ids without an adapter (`other`, `websocket`) are replayed as seeded bytes.
 * A new adapter that synthesizes binary bodies without a skeleton belongs in this list.
 */
const BINARY_SYNTH_PROTOCOLS: ReadonlySet<string> = new Set(['multipart', 'form', 'torchserve']);
const JSON_SYNTH_PROTOCOLS: ReadonlySet<string> = new Set(PROTOCOL_IDS.filter((id) => !BINARY_SYNTH_PROTOCOLS.has(id)));

/** Bytes per element of each Open Inference Protocol datatype (BYTES: at least its 4-byte length prefix; others: 1). */
const DATATYPE_BYTES: Record<string, number> = {
  BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, BF16: 2, UINT32: 4, INT32: 4, FP32: 4, UINT64: 8, INT64: 8, FP64: 8, BYTES: 4,
};

// ---------------------------------------------------------------------------------------------------------------------
// Problems
// ---------------------------------------------------------------------------------------------------------------------

/** Why a record (or a trace's meta) cannot be used, in words; the reader puts the file and the record in front. */
export class TraceProblem extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TraceProblem';
  }
}

function fail(message: string): never {
  throw new TraceProblem(message);
}

/** A stored value as a message shows it: short, one line, never more than a few dozen characters of a string. */
export function show(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `a blob of ${v.length} bytes`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v instanceof Date) return 'a timestamp';
  if (typeof v !== 'object') return typeof v;
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) return 'a map';
  const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
  return `an object of type ${typeof name === 'string' && name ? name.slice(0, 40) : 'unknown'}`;
}

const shortPath = (p: string) => (p === '' ? 'the root' : p.length > 120 ? `${p.slice(0, 120)}…` : p);

/** `v` as an integer in `[min, max]`, or a problem naming `what`, the value and the cap (`unit` says what is counted). */
export function checkInt(v: unknown, what: string, min: number, max: number, unit: string): number {
  if (typeof v !== 'number') fail(`${what} = ${show(v)} is not a number`);
  if (!Number.isFinite(v)) fail(`${what} = ${show(v)} is not finite`);
  if (!Number.isInteger(v)) fail(`${what} = ${v} is not an integer`);
  if (!Number.isSafeInteger(v)) fail(`${what} = ${v} is beyond the safe integer range`);
  if (v < min) fail(min === 0 ? `${what} = ${v} is negative` : `${what} = ${v} is below the minimum of ${min}${unit ? ` ${unit}` : ''}`);
  if (v > max) fail(`${what} = ${v} is over the cap of ${max}${unit ? ` ${unit}` : ''}`);
  return v;
}

function optInt(v: unknown, what: string, min: number, max: number, unit: string): number | null {
  return v === null || v === undefined ? null : checkInt(v, what, min, max, unit);
}

function checkString(v: unknown, what: string, maxChars: number): string {
  if (typeof v !== 'string') fail(`${what} = ${show(v)} is not a text`);
  if (v.length > maxChars) fail(`${what} is ${v.length} characters long, over the cap of ${maxChars}`);
  return v;
}

function optString(v: unknown, what: string, maxChars: number): string | null {
  return v === null || v === undefined ? null : checkString(v, what, maxChars);
}

/** A header value (RFC 9110 field-value: visible characters, spaces and tabs; no CR, LF or NUL). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** An HTTP token (RFC 9110 §5.6.2): methods and header names. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A request target as undici sends it (no spaces or control characters, Latin-1). */
const ROUTE_CHARS = /^[\u0021-\u007e\u0080-\u00ff]+$/;
/** A protocol id or error kind: lower-case identifier. */
const IDENT = /^[a-z][a-z0-9_-]{0,63}$/;

/** A protocol id or error kind as stored: a lower-case identifier of at most 64 characters. */
export function isIdentifier(v: unknown): v is string {
  return typeof v === 'string' && IDENT.test(v);
}

/**
 * The cap of each numeric column the reader aggregates with SQL (`span`, `column`): values outside `[0, cap]` or not
 * integers are left out of those summaries, as their records are refused when read.
 */
export const NUMERIC_COLUMN_CAPS = {
  offset_us: MAX_SPAN_US, prompt_tokens: MAX_PROMPT_TOKENS, output_tokens: MAX_OUTPUT_TOKENS, request_bytes: MAX_REQUEST_BYTES,
  response_bytes: MAX_RESPONSE_BYTES, latency_us: MAX_SPAN_US, ttft_us: MAX_SPAN_US, ttfb_us: MAX_SPAN_US,
} as const;

function isMap(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Buffer.isBuffer(v) || v instanceof Uint8Array) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function checkList(v: unknown, what: string, max: number, unit: string): unknown[] {
  if (!Array.isArray(v)) fail(`${what} = ${show(v)} is not a list`);
  if (v.length > max) fail(`${what} has ${v.length} entries, over the cap of ${max} ${unit}`);
  return v;
}

// ---------------------------------------------------------------------------------------------------------------------
// Shapes and skeletons
// ---------------------------------------------------------------------------------------------------------------------

/**
 * A skeleton compiled for checking records against it: its `s` and `u` nodes in the depth-first order in which
 * synthesis takes their `sizes` entries (a uniform array's element shape once: every element reuses its sizes), and for
 * each scope (the body, or the element of a uniform array) how many values and bytes it makes once, so a record's
 * totals take one pass over its `sizes`.
 */
export interface SkeletonPlan {
  /** `sizes` entries the skeleton takes. */
  readonly slots: number;
  /** Per slot: 0 a string, 1 a uniform array without an element shape, 2 a uniform array with one. */
  readonly kind: Uint8Array;
  /** Per slot: the scope its node is in (0: the body). */
  readonly scope: Uint32Array;
  /** Per slot of kind 2: the scope its elements make. */
  readonly opens: Uint32Array;
  /** Per scope: nodes in it (values made once per repetition), static bytes, `p` nodes. */
  readonly scopeNodes: Float64Array;
  readonly scopeBytes: Float64Array;
  readonly scopeParams: Float64Array;
  readonly nodes: number;
}

/** A shape that passed its checks, with its skeleton's plan (null without a skeleton). */
export interface CheckedShape {
  readonly shape: RequestShape;
  readonly plan: SkeletonPlan | null;
}

const BODY_KINDS: ReadonlySet<string> = new Set(['none', 'json', 'unparseable', 'binary']);

/** Checks a decoded shape blob: its kind, content type and skeleton (node kinds known, depth and size within the caps). */
export function checkShape(v: unknown): CheckedShape {
  if (!isMap(v)) fail(`the shape is ${show(v)}, not a map`);
  const kind = v.kind;
  if (typeof kind !== 'string' || !BODY_KINDS.has(kind)) fail(`the shape's kind ${show(kind)} is not one of none, json, unparseable, binary`);
  if (v.layout !== undefined && v.layout !== null && v.layout !== 'kserve-binary') fail(`the shape's layout ${show(v.layout)} is not kserve-binary`);
  const contentType = optString(v.contentType, "the shape's contentType", MAX_NAME_CHARS);
  if (contentType !== null && !FIELD_VALUE.test(contentType)) fail(`the shape's contentType ${show(contentType)} is not a valid header value`);
  const skeleton = v.skeleton ?? null;
  if (kind === 'json' && skeleton === null) fail('the shape is JSON but has no skeleton');
  const plan = skeleton === null ? null : compileSkeleton(skeleton);
  // The stored value itself, as it was checked (fields this version does not know stay as they are).
  return { shape: v as unknown as RequestShape, plan };
}

/** Compiles and checks a skeleton (see {@link SkeletonPlan}). Recursion is bounded by {@link MAX_SKELETON_DEPTH}. */
export function compileSkeleton(root: unknown): SkeletonPlan {
  const kind: number[] = [];
  const scope: number[] = [];
  const opens: number[] = [];
  const scopeNodes: number[] = [0];
  const scopeBytes: number[] = [0];
  const scopeParams: number[] = [0];
  let nodes = 0;
  const name = (v: unknown, what: string) => checkString(v, what, MAX_NAME_CHARS);
  const visit = (n: unknown, path: string, depth: number, sc: number): void => {
    if (depth > MAX_SKELETON_DEPTH) fail(`the skeleton is nested deeper than the cap of ${MAX_SKELETON_DEPTH} levels (at ${shortPath(path)})`);
    if (++nodes > MAX_SKELETON_NODES) fail(`the skeleton has more than the cap of ${MAX_SKELETON_NODES} nodes`);
    if (!isMap(n)) fail(`skeleton node at ${shortPath(path)} is ${show(n)}, not a node`);
    scopeNodes[sc]!++;
    switch (n.t) {
      case 'o': {
        const k = n.k;
        if (!Array.isArray(k)) fail(`skeleton object at ${shortPath(path)} has keys ${show(k)}, not a list`);
        scopeBytes[sc]! += 2 + k.length;
        for (let i = 0; i < k.length; i++) {
          const e = k[i];
          if (!Array.isArray(e) || e.length !== 2) fail(`skeleton object at ${shortPath(path)}: member ${i} is ${show(e)}, not a [key, node] pair`);
          const key = name(e[0], `skeleton key ${i} at ${shortPath(path)}`);
          scopeBytes[sc]! += JSON.stringify(key).length + 1;
          visit(e[1], path ? `${path}.${key}` : key, depth + 1, sc);
        }
        return;
      }
      case 'a': {
        const e = n.e;
        if (!Array.isArray(e)) fail(`skeleton array at ${shortPath(path)} has elements ${show(e)}, not a list`);
        scopeBytes[sc]! += 2 + e.length;
        for (let i = 0; i < e.length; i++) visit(e[i], `${path}[${i}]`, depth + 1, sc);
        return;
      }
      case 'u': {
        scope.push(sc);
        scopeBytes[sc]! += 2;
        if (n.of === null || n.of === undefined) {
          kind.push(1);
          opens.push(0);
          return;
        }
        const inner = scopeNodes.length;
        scopeNodes.push(0);
        scopeBytes.push(1); // the comma after each element
        scopeParams.push(0);
        kind.push(2);
        opens.push(inner);
        visit(n.of, `${path}[]`, depth + 1, inner);
        return;
      }
      case 's':
        kind.push(0);
        scope.push(sc);
        opens.push(0);
        scopeBytes[sc]! += 2;
        return;
      case 'i':
      case 'f': {
        if (n.c === undefined || n.c === null) {
          scopeBytes[sc]! += n.t === 'i' ? 3 : 8;
          return;
        }
        if (typeof n.c !== 'number' || !Number.isFinite(n.c) || n.c < 0 || n.c > MAX_NUMBER_TEXT_CHARS) fail(`skeleton number at ${shortPath(path)} has a text length of ${show(n.c)}, not 0..${MAX_NUMBER_TEXT_CHARS} characters`);
        scopeBytes[sc]! += Math.ceil(n.c) + 1;
        return;
      }
      case 'z': scopeBytes[sc]! += 4; return;
      case 'b':
        if (typeof n.v !== 'boolean') fail(`skeleton boolean at ${shortPath(path)} has value ${show(n.v)}`);
        scopeBytes[sc]! += 5;
        return;
      case 'p':
        name(n.name, `skeleton parameter name at ${shortPath(path)}`);
        scopeParams[sc]!++;
        return;
      case 'l':
        scopeBytes[sc]! += JSON.stringify(name(n.v, `skeleton literal at ${shortPath(path)}`)).length;
        return;
      default:
        fail(`skeleton node at ${shortPath(path)} has unknown kind ${show(n.t)}`);
    }
  };
  visit(root, '', 1, 0);
  return {
    slots: kind.length, kind: Uint8Array.from(kind), scope: Uint32Array.from(scope), opens: Uint32Array.from(opens),
    scopeNodes: Float64Array.from(scopeNodes), scopeBytes: Float64Array.from(scopeBytes), scopeParams: Float64Array.from(scopeParams), nodes,
  };
}

const times = (m: number) => (m > 1 ? `, repeated in ${m} array elements` : '');

/**
 * Checks a record's `sizes` against its skeleton: enough entries, each an integer within its cap, and the strings and
 * values they make (with every uniform array's repetitions) within {@link MAX_STRING_CHARS} and {@link MAX_JSON_VALUES}.
 * @returns the estimated bytes of the JSON body (strings, values, and `p` nodes at `paramBytes` each).
 */
export function checkSizes(plan: SkeletonPlan, sizes: unknown, paramBytes: number): number {
  if (sizes === undefined && plan.slots === 0) return plan.scopeBytes[0]! + plan.scopeParams[0]! * paramBytes;
  if (sizes === undefined) fail(`sizes is missing: the skeleton takes ${plan.slots} entries`);
  const list = checkList(sizes, 'sizes', MAX_SKELETON_NODES, 'entries (skeleton nodes)');
  if (list.length < plan.slots) fail(`sizes has ${list.length} entries, fewer than the ${plan.slots} the skeleton takes`);
  const mult = new Float64Array(plan.scopeNodes.length);
  mult[0] = 1;
  let values = plan.scopeNodes[0]!;
  let chars = 0;
  let bytes = plan.scopeBytes[0]! + plan.scopeParams[0]! * paramBytes;
  for (let i = 0; i < plan.slots; i++) {
    const v = list[i];
    const m = mult[plan.scope[i]!]!;
    if (plan.kind[i] === 0) {
      const len = checkInt(v, `sizes[${i}]`, 0, MAX_STRING_CHARS, "characters per request (a string's length)");
      chars += len * m;
      bytes += len * m;
      if (chars > MAX_STRING_CHARS) fail(`sizes[${i}] = ${len} (a string's length${times(m)}) brings the request's strings to ${chars} characters, over the cap of ${MAX_STRING_CHARS} characters per request`);
      continue;
    }
    const len = checkInt(v, `sizes[${i}]`, 0, MAX_JSON_VALUES, "elements per request (a uniform array's length)");
    if (plan.kind[i] !== 2) continue;
    if (len === 0) fail(`sizes[${i}] = 0 is the length of a uniform array whose elements have a shape: the record is damaged`);
    const s = plan.opens[i]!;
    mult[s] = m * len;
    values += plan.scopeNodes[s]! * mult[s]!;
    bytes += (plan.scopeBytes[s]! + plan.scopeParams[s]! * paramBytes) * mult[s]!;
    if (values > MAX_JSON_VALUES) fail(`sizes[${i}] = ${len} (a uniform array's length${times(m)}) brings the request to ${values} JSON values, over the cap of ${MAX_JSON_VALUES} values per request`);
  }
  for (let i = plan.slots; i < list.length; i++) checkInt(list[i], `sizes[${i}]`, 0, Math.max(MAX_STRING_CHARS, MAX_JSON_VALUES), 'per entry');
  return bytes;
}

// ---------------------------------------------------------------------------------------------------------------------
// Params, features, event offsets
// ---------------------------------------------------------------------------------------------------------------------

/**
 * Checks decoded `params`: a map of at most {@link MAX_PARAMS} entries whose values are null, booleans, finite numbers,
 * texts of at most {@link MAX_NAME_CHARS} characters or lists of at most {@link MAX_PARAM_ARRAY} finite numbers.
 * @returns the params and the longest value's JSON length (what one `p` node can put into a body).
 */
export function checkParams(v: unknown): { params: Params; maxBytes: number } {
  if (!isMap(v)) fail(`params is ${show(v)}, not a map`);
  const keys = Object.keys(v);
  if (keys.length > MAX_PARAMS) fail(`params has ${keys.length} entries, over the cap of ${MAX_PARAMS}`);
  let maxBytes = 4;
  for (const k of keys) {
    if (k.length > MAX_NAME_CHARS) fail(`a params key is ${k.length} characters long, over the cap of ${MAX_NAME_CHARS}`);
    const x = v[k];
    const what = `params[${JSON.stringify(k.slice(0, 60))}]`;
    if (x === null || typeof x === 'boolean') continue;
    if (typeof x === 'number') {
      if (!Number.isFinite(x)) fail(`${what} = ${x} is not finite`);
      maxBytes = Math.max(maxBytes, 24);
    } else if (typeof x === 'string') {
      checkString(x, what, MAX_NAME_CHARS);
      maxBytes = Math.max(maxBytes, JSON.stringify(x).length);
    } else if (Array.isArray(x)) {
      checkList(x, what, MAX_PARAM_ARRAY, 'elements');
      for (let i = 0; i < x.length; i++) if (typeof x[i] !== 'number' || !Number.isFinite(x[i])) fail(`${what}[${i}] = ${show(x[i])} is not a finite number`);
      maxBytes = Math.max(maxBytes, 2 + 25 * x.length);
    } else {
      fail(`${what} is ${show(x)}, not a number, text, boolean or list of numbers`);
    }
  }
  return { params: v as Params, maxBytes };
}

/**
 * Checks decoded event offset deltas (`[first, d1, d2, …]`) and returns the offsets: at most {@link MAX_EVENTS}, each
 * within `[0, MAX_SPAN_US]`, never decreasing.
 */
export function checkEventOffsets(v: unknown): number[] {
  const deltas = checkList(v, 'event_offsets', MAX_EVENTS, 'events per response');
  const out = new Array<number>(deltas.length);
  let acc = 0;
  for (let i = 0; i < deltas.length; i++) {
    const d = checkInt(deltas[i], i === 0 ? 'event_offsets[0]' : `event_offsets delta ${i}`, 0, MAX_SPAN_US, SPAN_UNIT);
    acc += d;
    if (acc > MAX_SPAN_US) fail(`event ${i} comes ${acc} µs after the request, over the cap of ${MAX_SPAN_US} ${SPAN_UNIT}`);
    out[i] = acc;
  }
  return out;
}

/** What the features of a record add to its synthesized size. */
interface FeatureCosts {
  promptTokens: number;
  imageBytes: number;
  partBytes: number;
  binaryBytes: number;
}

/** Bytes of the working buffer synthesis uses for an image of these dimensions (clamped as `synth/image.ts` clamps them). */
function imageWorkBytes(width: number, height: number): number {
  const w = Math.max(1, Math.min(width, 16384));
  const h = Math.max(1, Math.min(height, Math.floor(40_000_000 / w)));
  return w * h * 4;
}

function checkImage(v: unknown, what: string): number {
  if (!isMap(v)) fail(`${what} is ${show(v)}, not a map`);
  const format = checkString(v.format, `${what}.format`, MAX_NAME_CHARS);
  const width = checkInt(v.width, `${what}.width`, 0, MAX_IMAGE_SIDE_PX, 'pixels');
  const height = checkInt(v.height, `${what}.height`, 0, MAX_IMAGE_SIDE_PX, 'pixels');
  checkInt(v.bytes, `${what}.bytes`, 0, MAX_REQUEST_BYTES, 'bytes per request body');
  return format === 'url' ? 0 : imageWorkBytes(width, height);
}

function checkTensor(v: unknown, what: string, input: boolean): number {
  if (!isMap(v)) fail(`${what} is ${show(v)}, not a map`);
  checkString(v.name, `${what}.name`, MAX_NAME_CHARS);
  const datatype = checkString(v.datatype, `${what}.datatype`, MAX_NAME_CHARS);
  const shape = checkList(v.shape, `${what}.shape`, MAX_TENSOR_DIMS, 'dimensions');
  let elements = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = checkInt(shape[i], `${what}.shape[${i}]`, -1, MAX_TENSOR_DIM, 'elements');
    if (d >= 0) elements *= d;
  }
  if (!input) return 0;
  checkInt(v.elements, `${what}.elements`, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, '');
  const bytes = elements * (DATATYPE_BYTES[datatype] ?? 1);
  if (bytes > MAX_REQUEST_BYTES) fail(`${what}.shape = [${shape.join(',')}] ${datatype} is ${bytes} bytes, over the cap of ${MAX_REQUEST_BYTES} bytes per request body`);
  return bytes;
}

function checkPairs(v: unknown, what: string, header: boolean): void {
  const list = checkList(v, what, MAX_HEADERS, 'entries per request');
  for (let i = 0; i < list.length; i++) {
    const e = list[i];
    if (!Array.isArray(e) || e.length !== 2) fail(`${what}[${i}] is ${show(e)}, not a [name, value] pair`);
    const n = checkString(e[0], `${what}[${i}] name`, header ? MAX_NAME_CHARS : MAX_HEADER_VALUE_CHARS);
    const val = optString(e[1], `${what}[${i}] value`, MAX_HEADER_VALUE_CHARS);
    if (header && !TOKEN.test(n)) fail(`${what}[${i}] name ${show(n)} is not a header name`);
    if (header && val !== null && !FIELD_VALUE.test(val)) fail(`${what}[${i}] value is not a valid header value`);
  }
}

/**
 * Checks decoded `features` (every numeric field for type, integer-ness and range, every list for length) and returns
 * what they add to the synthesized size. Keys this version does not know are left as they are.
 */
export function checkFeatures(v: unknown, eventCount: number | null): { features: Features; costs: FeatureCosts } {
  if (!isMap(v)) fail(`features is ${show(v)}, not a map`);
  const f = v as Record<string, unknown>;
  const costs: FeatureCosts = { promptTokens: 0, imageBytes: 0, partBytes: 0, binaryBytes: 0 };
  if (f.messageTokens !== undefined) {
    const mt = checkList(f.messageTokens, 'messageTokens', MAX_MESSAGES, 'messages per request');
    let sum = 0;
    for (let i = 0; i < mt.length; i++) {
      sum += checkInt(mt[i], `messageTokens[${i}]`, 0, MAX_PROMPT_TOKENS, 'tokens per request');
      if (sum > MAX_PROMPT_TOKENS) fail(`messageTokens sum to ${sum} tokens by entry ${i}, over the cap of ${MAX_PROMPT_TOKENS} tokens per request`);
    }
    costs.promptTokens = sum;
  }
  if (f.prefixBlocks !== undefined) {
    const b = checkList(f.prefixBlocks, 'prefixBlocks', MAX_PROMPT_TOKENS, 'blocks per request');
    for (let i = 0; i < b.length; i++) checkInt(b[i], `prefixBlocks[${i}]`, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, '');
  }
  if (f.prefixBlockTokens !== undefined) checkInt(f.prefixBlockTokens, 'prefixBlockTokens', 1, MAX_PROMPT_TOKENS, 'tokens per block');
  if (f.promptFingerprint !== undefined) checkString(f.promptFingerprint, 'promptFingerprint', MAX_NAME_CHARS);
  if (f.prefixFingerprints !== undefined) {
    const p = checkList(f.prefixFingerprints, 'prefixFingerprints', MAX_PROMPT_TOKENS, 'blocks per request');
    for (let i = 0; i < p.length; i++) checkString(p[i], `prefixFingerprints[${i}]`, MAX_NAME_CHARS);
  }
  if (f.images !== undefined) {
    const imgs = checkList(f.images, 'images', MAX_LIST_ITEMS, 'images per request');
    for (let i = 0; i < imgs.length; i++) costs.imageBytes += checkImage(imgs[i], `images[${i}]`);
  }
  if (f.tensors !== undefined) {
    const ts = checkList(f.tensors, 'tensors', MAX_LIST_ITEMS, 'tensors per request');
    let bytes = 0;
    for (let i = 0; i < ts.length; i++) {
      bytes += checkTensor(ts[i], `tensors[${i}]`, true);
      if (bytes > MAX_REQUEST_BYTES) fail(`tensors hold ${bytes} bytes by tensors[${i}], over the cap of ${MAX_REQUEST_BYTES} bytes per request body`);
    }
  }
  if (f.outputTensors !== undefined) {
    const ts = checkList(f.outputTensors, 'outputTensors', MAX_LIST_ITEMS, 'tensors per answer');
    for (let i = 0; i < ts.length; i++) checkTensor(ts[i], `outputTensors[${i}]`, false);
  }
  if (f.binaryBytes !== undefined) costs.binaryBytes = checkInt(f.binaryBytes, 'binaryBytes', 0, MAX_REQUEST_BYTES, 'bytes per request body');
  if (f.batch !== undefined) checkInt(f.batch, 'batch', 0, MAX_JSON_VALUES, 'rows per request');
  if (f.traceContext !== undefined && f.traceContext !== 'incoming' && f.traceContext !== 'added') fail(`traceContext = ${show(f.traceContext)} is not incoming or added`);
  if (f.serverTiming !== undefined) {
    if (!isMap(f.serverTiming)) fail(`serverTiming is ${show(f.serverTiming)}, not a map`);
    const entries = Object.entries(f.serverTiming);
    if (entries.length > MAX_HEADERS) fail(`serverTiming has ${entries.length} entries, over the cap of ${MAX_HEADERS}`);
    for (const [k, x] of entries) {
      if (k.length > MAX_NAME_CHARS) fail(`a serverTiming name is ${k.length} characters long, over the cap of ${MAX_NAME_CHARS}`);
      if (typeof x !== 'number' || !Number.isFinite(x)) fail(`serverTiming[${JSON.stringify(k.slice(0, 60))}] = ${show(x)} is not a finite number`);
    }
  }
  if (f.nonContentEvents !== undefined) {
    const max = eventCount === null ? MAX_EVENTS : Math.max(0, eventCount - 1);
    const nc = checkList(f.nonContentEvents, 'nonContentEvents', MAX_EVENTS, 'events per response');
    for (let i = 0; i < nc.length; i++) checkInt(nc[i], `nonContentEvents[${i}]`, 0, max, 'as an event index');
  }
  if (f.eventsCapturedBytes !== undefined) checkInt(f.eventsCapturedBytes, 'eventsCapturedBytes', 0, MAX_RESPONSE_BYTES, 'bytes per response');
  if (f.websocket !== undefined) {
    const w = f.websocket;
    if (!isMap(w)) fail(`websocket is ${show(w)}, not a map`);
    for (const k of ['messagesFromClient', 'messagesFromServer', 'bytesFromClient', 'bytesFromServer'] as const) checkInt(w[k], `websocket.${k}`, 0, Number.MAX_SAFE_INTEGER, '');
    optInt(w.firstServerMessageUs, 'websocket.firstServerMessageUs', 0, MAX_SPAN_US, SPAN_UNIT);
    optInt(w.closeCode, 'websocket.closeCode', 0, 65_535, '');
    if (w.closedBy !== null && w.closedBy !== undefined && w.closedBy !== 'client' && w.closedBy !== 'server' && w.closedBy !== 'proxy') fail(`websocket.closedBy = ${show(w.closedBy)} is not client, server or proxy`);
  }
  if (f.headers !== undefined) checkPairs(f.headers, 'headers', true);
  if (f.query !== undefined) checkPairs(f.query, 'query', false);
  if (f.parts !== undefined) {
    const parts = checkList(f.parts, 'parts', MAX_LIST_ITEMS, 'parts per request');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      const what = `parts[${i}]`;
      if (!isMap(p)) fail(`${what} is ${show(p)}, not a map`);
      optString(p.name, `${what}.name`, MAX_NAME_CHARS);
      const ct = optString(p.contentType, `${what}.contentType`, MAX_NAME_CHARS);
      if (ct !== null && !FIELD_VALUE.test(ct)) fail(`${what}.contentType is not a valid header value`);
      if (p.filename !== undefined && typeof p.filename !== 'boolean') fail(`${what}.filename = ${show(p.filename)} is not a boolean`);
      const bytes = checkInt(p.bytes, `${what}.bytes`, 0, MAX_REQUEST_BYTES, 'bytes per request body');
      costs.partBytes += p.image !== undefined ? checkImage(p.image, `${what}.image`) : bytes;
      if (costs.partBytes > MAX_REQUEST_BYTES) fail(`parts hold ${costs.partBytes} bytes by ${what}, over the cap of ${MAX_REQUEST_BYTES} bytes per request body`);
    }
  }
  return { features: f as Features, costs };
}

// ---------------------------------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------------------------------

/** The `requests` columns of trace format 1 (`schema.ts`), each with the most bytes its cell may hold before it is read. */
export const REQUEST_COLUMNS: ReadonlyArray<readonly [name: string, maxBytes: number]> = [
  ['seq', MAX_SCALAR_CELL_BYTES], ['offset_us', MAX_SCALAR_CELL_BYTES], ['method', MAX_SCALAR_CELL_BYTES], ['route', MAX_ROUTE_CHARS * 2],
  ['protocol', MAX_SCALAR_CELL_BYTES], ['status', MAX_SCALAR_CELL_BYTES], ['error_kind', MAX_SCALAR_CELL_BYTES],
  ['request_bytes', MAX_SCALAR_CELL_BYTES], ['response_bytes', MAX_SCALAR_CELL_BYTES], ['ttfb_us', MAX_SCALAR_CELL_BYTES],
  ['ttft_us', MAX_SCALAR_CELL_BYTES], ['latency_us', MAX_SCALAR_CELL_BYTES], ['streamed', MAX_SCALAR_CELL_BYTES],
  ['event_count', MAX_SCALAR_CELL_BYTES], ['prompt_tokens', MAX_SCALAR_CELL_BYTES], ['output_tokens', MAX_SCALAR_CELL_BYTES],
  ['message_count', MAX_SCALAR_CELL_BYTES], ['model', MAX_NAME_CHARS * 4], ['max_tokens', MAX_SCALAR_CELL_BYTES],
  ['shape_id', MAX_SCALAR_CELL_BYTES], ['params', MAX_PARAMS_BLOB_BYTES], ['features', MAX_BLOB_BYTES], ['event_offsets', MAX_BLOB_BYTES],
];

/** Index of each column in {@link REQUEST_COLUMNS}, and so in a {@link GuardedRow}. */
const COL = Object.fromEntries(REQUEST_COLUMNS.map(([c], i) => [c, i])) as Record<string, number>;

/** What a guarded `SELECT` reads in place of a cell over its byte cap: this, then the cell's length in bytes. */
const OVERSIZE = '\u0000oversize:';

/**
 * The column list of a `SELECT` that reads a `requests` row without reading an oversized cell: a cell over its byte
 * cap reads as the text `\0oversize:<bytes>` instead (SQLite takes a blob's length from the record header, and only
 * the cells within their caps are read). Read the statement with `.raw()`: a {@link GuardedRow} is positional.
 */
export function guardedRequestColumns(): string {
  return REQUEST_COLUMNS.map(([c, max]) => `iif(octet_length(${c}) > ${max}, char(0) || 'oversize:' || octet_length(${c}), ${c})`).join(', ');
}

/** A `requests` row as {@link guardedRequestColumns} reads it (`.raw()`): the columns of {@link REQUEST_COLUMNS} in order. */
export type GuardedRow = readonly unknown[];

/** The sequence number of a guarded row as a message shows it. */
export function rowSeq(row: GuardedRow): string {
  const v = row[0];
  return typeof v === 'number' ? String(v) : show(v);
}

/** How the reader gets what a row refers to: its shape by id, and blobs decoded. */
export interface RowContext {
  /** The checked shape of an id. @throws TraceProblem when it is missing or fails its checks. */
  shape(id: number): CheckedShape;
  /** Decodes a MessagePack blob. @throws on malformed bytes. */
  decode(blob: Uint8Array): unknown;
}

/** A cell of a guarded row: its value, or a problem when it was over its column's byte cap. */
function cell(row: GuardedRow, i: number): unknown {
  const v = row[i];
  if (typeof v === 'string' && v.charCodeAt(0) === 0 && v.startsWith(OVERSIZE)) {
    const [c, max] = REQUEST_COLUMNS[i]!;
    fail(`${c} holds ${v.slice(OVERSIZE.length)} bytes, over the cap of ${max} bytes for that column`);
  }
  return v;
}

/** A blob cell decoded (undefined for NULL). */
function blobOf(row: GuardedRow, i: number, ctx: RowContext): unknown {
  const v = cell(row, i);
  const c = REQUEST_COLUMNS[i]![0];
  if (v === null || v === undefined) return undefined;
  if (!(v instanceof Uint8Array)) fail(`${c} = ${show(v)} is not a blob`);
  try {
    return ctx.decode(v);
  } catch (err) {
    fail(`${c} cannot be decoded: ${(err as Error).message}`);
  }
}

const NO_COSTS: FeatureCosts = { promptTokens: 0, imageBytes: 0, partBytes: 0, binaryBytes: 0 };

/**
 * Checks one `requests` row as read with {@link guardedRequestColumns} and builds its record: every column for type,
 * integer-ness and range, every blob for size before it is decoded and for content after, the features against the
 * shape's skeleton, and the whole request's synthesized size. Nothing is allocated from a stored size.
 * @throws TraceProblem naming the field, its value and the cap.
 */
export function checkRow(row: GuardedRow, ctx: RowContext): TraceRecord {
  // No closures here: this runs once per record, and helpers made per call cost more than the checks.
  const seq = checkInt(cell(row, COL.seq!), 'seq', 0, Number.MAX_SAFE_INTEGER, '');
  const offsetUs = checkInt(cell(row, COL.offset_us!), 'offset_us', 0, MAX_SPAN_US, SPAN_UNIT);
  const method = checkString(cell(row, COL.method!), 'method', MAX_SCALAR_CELL_BYTES);
  if (!TOKEN.test(method)) fail(`method = ${show(method)} is not an HTTP method`);
  const route = checkString(cell(row, COL.route!), 'route', MAX_ROUTE_CHARS);
  if (!ROUTE_CHARS.test(route)) fail(`route = ${show(route)} is not a request path (empty, or spaces or control characters)`);
  const protocol = checkString(cell(row, COL.protocol!), 'protocol', MAX_SCALAR_CELL_BYTES);
  if (!IDENT.test(protocol)) fail(`protocol = ${show(protocol)} is not a protocol id`);
  const status = optInt(cell(row, COL.status!), 'status', 100, 999, '(an HTTP status)');
  const errorKind = optString(cell(row, COL.error_kind!), 'error_kind', MAX_SCALAR_CELL_BYTES);
  if (errorKind !== null && !IDENT.test(errorKind)) fail(`error_kind = ${show(errorKind)} is not an error kind`);
  const requestBytes = checkInt(cell(row, COL.request_bytes!), 'request_bytes', 0, MAX_REQUEST_BYTES, 'bytes per request body');
  const responseBytes = optInt(cell(row, COL.response_bytes!), 'response_bytes', 0, MAX_RESPONSE_BYTES, 'bytes per response');
  const ttfbUs = optInt(cell(row, COL.ttfb_us!), 'ttfb_us', 0, MAX_SPAN_US, SPAN_UNIT);
  const ttftUs = optInt(cell(row, COL.ttft_us!), 'ttft_us', 0, MAX_SPAN_US, SPAN_UNIT);
  const latencyUs = optInt(cell(row, COL.latency_us!), 'latency_us', 0, MAX_SPAN_US, SPAN_UNIT);
  const streamed = cell(row, COL.streamed!);
  if (streamed !== 0 && streamed !== 1) fail(`streamed = ${show(streamed)} is not 0 or 1`);
  const eventCount = optInt(cell(row, COL.event_count!), 'event_count', 0, MAX_EVENTS, 'events per response');
  const promptTokens = optInt(cell(row, COL.prompt_tokens!), 'prompt_tokens', 0, MAX_PROMPT_TOKENS, 'tokens per request');
  const outputTokens = optInt(cell(row, COL.output_tokens!), 'output_tokens', 0, MAX_OUTPUT_TOKENS, 'tokens per request');
  const messageCount = optInt(cell(row, COL.message_count!), 'message_count', 0, MAX_MESSAGES, 'messages per request');
  const model = optString(cell(row, COL.model!), 'model', MAX_NAME_CHARS);
  const maxTokens = optInt(cell(row, COL.max_tokens!), 'max_tokens', 0, MAX_MAX_TOKENS, 'tokens');
  const shapeId = checkInt(cell(row, COL.shape_id!), 'shape_id', 0, Number.MAX_SAFE_INTEGER, '');
  const { shape, plan } = ctx.shape(shapeId);
  if (shape.kind === 'binary' && JSON_SYNTH_PROTOCOLS.has(protocol)) fail(`a ${protocol} request is described as binary, without the JSON shape its body is rebuilt from`);

  const rawParams = blobOf(row, COL.params!, ctx);
  const { params, maxBytes: paramBytes } = rawParams === undefined ? { params: {} as Params, maxBytes: 4 } : checkParams(rawParams);
  const rawEvents = blobOf(row, COL.event_offsets!, ctx);
  const eventOffsetsUs = rawEvents === undefined ? null : checkEventOffsets(rawEvents);
  const rawFeatures = blobOf(row, COL.features!, ctx);
  const { features, costs } = rawFeatures === undefined ? { features: {} as Features, costs: NO_COSTS } : checkFeatures(rawFeatures, eventOffsetsUs?.length ?? eventCount);

  // What synthesis will build, before it is built.
  // Only a JSON body is rebuilt from the skeleton (`protocols/index.ts` synthesizeRequest); other kinds ignore it.
  const jsonBytes = plan && shape.kind === 'json' ? checkSizes(plan, features.sizes, paramBytes) : 0;
  if (jsonBytes === 0 && features.sizes !== undefined) checkList(features.sizes, 'sizes', MAX_SKELETON_NODES, 'entries (skeleton nodes)');
  const promptBytes = costs.promptTokens * MAX_BYTES_PER_TOKEN;
  let total = jsonBytes + promptBytes + costs.imageBytes + costs.partBytes + costs.binaryBytes;
  if (shape.kind === 'unparseable' || shape.kind === 'binary') total = Math.max(total, requestBytes);
  if (total > MAX_SYNTH_BYTES) {
    const parts = [['JSON', jsonBytes], ['prompt text', promptBytes], ['images', costs.imageBytes], ['parts', costs.partBytes], ['binary data', costs.binaryBytes]]
      .filter(([, n]) => (n as number) > 0).map(([k, n]) => `${k} ${Math.round(n as number)}`).join(', ');
    fail(`the request would be synthesized as about ${Math.round(total)} bytes${parts ? ` (${parts})` : ''}, over the cap of ${MAX_SYNTH_BYTES} bytes per request`);
  }

  return {
    seq, offsetUs, method, route, protocol: protocol as TraceRecord['protocol'], status, errorKind: errorKind as TraceRecord['errorKind'],
    requestBytes, responseBytes, ttfbUs, ttftUs, latencyUs, streamed: streamed === 1, eventCount, eventOffsetsUs,
    promptTokens, outputTokens, messageCount, model, maxTokens, shape, params, features,
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Meta
// ---------------------------------------------------------------------------------------------------------------------

/** `meta` entries as the reader returns them (see `TraceMeta` in `schema.ts`), after their checks. */
export interface CheckedMeta {
  createdAt: string;
  anchorWallUs: number;
  source: string;
  sourceFile?: string;
  toolVersion: string;
  anonymization: unknown;
  recordsDropped: number;
  captureRaw: boolean;
  recordingHealth: unknown;
}

/**
 * Checks the `meta` entries after `format` and `format_version` (which the reader checks itself, for their own error
 * codes): each known key, when present, has the type and range the format gives it. Absent keys take their defaults
 * (older traces lack some).
 * @throws TraceProblem naming the key.
 */
export function checkMeta(raw: ReadonlyMap<string, unknown>): CheckedMeta {
  const text = (k: string, dflt: string, max = MAX_NAME_CHARS): string => (raw.has(k) ? checkString(raw.get(k), `meta.${k}`, max) : dflt);
  const meta: CheckedMeta = {
    createdAt: text('created_at', ''),
    anchorWallUs: raw.has('anchor_wall_us') ? checkInt(raw.get('anchor_wall_us'), 'meta.anchor_wall_us', 0, Number.MAX_SAFE_INTEGER, 'µs since the Unix epoch') : 0,
    source: text('source', 'unknown'),
    toolVersion: text('tool_version', ''),
    anonymization: raw.get('anonymization') ?? null,
    recordsDropped: raw.has('records_dropped') ? checkInt(raw.get('records_dropped'), 'meta.records_dropped', 0, Number.MAX_SAFE_INTEGER, '') : 0,
    captureRaw: false,
    recordingHealth: null,
  };
  if (raw.has('source_file')) meta.sourceFile = text('source_file', '');
  if (raw.has('capture_raw')) {
    const c = raw.get('capture_raw');
    if (typeof c !== 'boolean') fail(`meta.capture_raw = ${show(c)} is not true or false`);
    meta.captureRaw = c;
  }
  const h = raw.get('recording_health');
  if (h !== undefined && h !== null) {
    if (!isMap(h)) fail(`meta.recording_health is ${show(h)}, not a map`);
    if (typeof h.ok !== 'boolean') fail(`meta.recording_health.ok = ${show(h.ok)} is not true or false`);
    for (const k of ['writeFailures', 'recordsDropped', 'fileRecreated'] as const) checkInt(h[k], `meta.recording_health.${k}`, 0, Number.MAX_SAFE_INTEGER, '');
    for (const k of ['firstFailure', 'lastFailure'] as const) {
      const x = h[k];
      if (x === null || x === undefined) continue;
      if (!isMap(x)) fail(`meta.recording_health.${k} is ${show(x)}, not a map`);
      for (const f of ['code', 'message', 'at'] as const) checkString(x[f], `meta.recording_health.${k}.${f}`, 4 * MAX_NAME_CHARS);
    }
    meta.recordingHealth = h;
  }
  return meta;
}
