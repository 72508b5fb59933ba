import type { Params, SkeletonNode } from '../types.ts';
import { isSchemaKey, looksLikeData, isModelName } from './names.ts';
import { keepsIdentifier, MODEL_PLACEHOLDER, routePositions, splitVerb, VERSION_PLACEHOLDER } from '../protocols/routes.ts';
import { keptParamValue } from './params.ts';
import { DEFAULT_KEPT_PARAMS } from './policy.ts';

/**
 * JSON keys whose scalar values are kept by default because they drive load (DESIGN decision 2); a policy file can add
 * or drop keys. Anything else becomes type + length. Kept only when the value is a number, boolean, null, or (for a
 * top-level `model`) a string.
 */
export const KEPT_PARAMS: ReadonlySet<string> = new Set(DEFAULT_KEPT_PARAMS);

/** Closed vocabularies kept verbatim as literals, by key (values outside the vocabulary become type + length). */
const LITERALS: Record<string, ReadonlySet<string>> = {
  role: new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  // OpenAI content-part / tool / response_format types, and JSON Schema types in tool definitions.
  type: new Set(['text', 'image_url', 'input_audio', 'file', 'function', 'json_object', 'json_schema', 'tool_call', 'refusal',
    'object', 'string', 'number', 'integer', 'boolean', 'array', 'null']),
  finish_reason: new Set(['stop', 'length', 'tool_calls', 'content_filter']),
  tool_choice: new Set(['auto', 'none', 'required']),
  detail: new Set(['low', 'high', 'auto']),
  reasoning_effort: new Set(['minimal', 'low', 'medium', 'high']),
  encoding_format: new Set(['float', 'base64']),
  datatype: new Set(['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES', 'BF16']),
};


/**
 * Booleans that are protocol flags, by path, kept with their value (they change what the server does): OpenAI
 * `echo`, `parallel_tool_calls`, `store`, `stream_options.*`, structured outputs' `strict`; vLLM/TGI
 * `skip_special_tokens`; Ollama `raw`, `think`. The top-level load flags (`stream`, `ignore_eos`, `logprobs`) are kept
 * parameters already, and adapters keep their own schema flags (KServe `binary_data`).
 */
const FLAG_PATHS: readonly RegExp[] = [
  /^(?:echo|parallel_tool_calls|store|skip_special_tokens|raw|think)$/,
  /^stream_options\.[a-z_]+$/,
  /^response_format\.json_schema\.strict$/,
  /^tools\[\d+\]\.function\.strict$/,
];

/** The anonymized description of one JSON value. */
export interface Described {
  skeleton: SkeletonNode;
  /** Depth-first lengths for the skeleton's `s` and `u` nodes. */
  sizes: number[];
  /** Kept parameter values, by dotted path (top-level keys are plain, e.g. `max_tokens`). */
  params: Params;
}

/**
 * Describes a parsed JSON value by structure only: keys, types, string lengths and array lengths; values are dropped
 * except top-level {@link KEPT_PARAMS} (and `stream_options.include_usage`), closed-vocabulary literals such as chat
 * roles, and the adapter's schema fields (`keep`).
 * Arrays whose elements all have the same structure and sizes (tensors, token arrays) are stored as one `u` node and a
 * length, so a 1M-element tensor describes in O(n) time and O(1) space.
 */
export function describeJson(value: unknown, opts: DescribeOptions = {}): Described {
  const sizes: number[] = [];
  const params: Params = {};
  const ctx: Ctx = { keep: opts.keep ?? null, tokenized: opts.tokenizedPaths ?? null, params: opts.params ?? KEPT_PARAMS, objectKeys: opts.objectKeys ?? true };
  const skeleton = node(value, '', sizes, params, null, ctx);
  return { skeleton, sizes, params };
}

/** Protocol-specific additions to what is kept. */
export interface DescribeOptions {
  /**
   * Schema fields of the adapter's protocol kept verbatim as parameters, by key: each predicate says whether a value
   * at a path is schema (e.g. KServe `inputs[0].shape`: integers; `inputs[0].name`: a name-like string). Anything
   * else under those keys is described like any value.
   */
  keep?: ReadonlyMap<string, (value: unknown, path: string) => boolean>;
  /**
   * Paths of strings described by their token count elsewhere (prompt texts): their length is recorded as 0, because a
   * replay rebuilds them from tokens, not characters.
   */
  tokenizedPaths?: RegExp;
  /** Keys whose scalar values are kept (the policy's list). Default {@link KEPT_PARAMS}. */
  params?: ReadonlySet<string>;
  /** Keep schema-like object keys. Default true; false replaces every key by `{keyN}`. */
  objectKeys?: boolean;
}

interface Ctx {
  keep: ReadonlyMap<string, (value: unknown, path: string) => boolean> | null;
  tokenized: RegExp | null;
  params: ReadonlySet<string>;
  objectKeys: boolean;
}

function node(v: unknown, path: string, sizes: number[], params: Params, key: string | null, ctx: Ctx): SkeletonNode {
  if (v === null) return { t: 'z' };
  const kept = key !== null && ctx.keep !== null && (ctx.keep.get(key)?.(v, path) ?? false);
  // Load-driving parameters count at the top level only (a nested `seed` or `n` is somebody's data).
  const param = key !== null && ctx.params.has(key) && (path === key || path === 'stream_options.include_usage');
  switch (typeof v) {
    case 'string': {
      const lit = key !== null ? LITERALS[key] : undefined;
      if (lit && lit.has(v)) return { t: 'l', v };
      if (kept || (key === 'model' && param && isModelName(v))) {
        params[path] = v;
        return { t: 'p', name: path };
      }
      sizes.push(ctx.tokenized !== null && ctx.tokenized.test(path) ? 0 : v.length);
      return { t: 's' };
    }
    case 'number': {
      // A load parameter keeps its value only within its domain (a card number as `seed` is not a seed).
      const value = kept ? v : param ? keptParamValue(key!, v) : undefined;
      if (value !== undefined) {
        params[path] = value;
        return { t: 'p', name: path };
      }
      return Number.isInteger(v) ? { t: 'i' } : { t: 'f' };
    }
    case 'boolean':
      if (kept || param) {
        params[path] = v;
        return { t: 'p', name: path };
      }
      // A boolean elsewhere is somebody's answer to something (`is_overdrawn: true`): its type only.
      return FLAG_PATHS.some((re) => re.test(path)) ? { t: 'b', v } : { t: 'b' };
    case 'object':
      break;
    default:
      return { t: 'z' };
  }
  if (Array.isArray(v)) {
    if (kept) {
      params[path] = v as number[];
      return { t: 'p', name: path };
    }
    return arrayNode(v, path, sizes, params, ctx);
  }
  const k: Array<[string, SkeletonNode]> = [];
  let hidden = 0;
  for (const [name, child] of Object.entries(v as Record<string, unknown>)) {
    const safe = ctx.objectKeys && isSchemaKey(name) ? name : `{key${hidden++}}`;
    k.push([safe, node(child, path ? `${path}.${safe}` : safe, sizes, params, safe, ctx)]);
  }
  return { t: 'o', k };
}

/** A skeleton's structure as a string, without the numbers' text lengths. */
function structureKey(n: SkeletonNode): string {
  return JSON.stringify(n, (k, v) => (k === 'c' ? undefined : v));
}

/** Skeletons of one structure as one, each number's text length the mean of theirs (one decimal). */
function meanChars(nodes: SkeletonNode[]): SkeletonNode {
  const first = nodes[0]!;
  switch (first.t) {
    case 'i':
    case 'f': {
      if (first.c === undefined) return first;
      const sum = nodes.reduce((a, n) => a + ((n as { c?: number }).c ?? 0), 0);
      return { t: first.t, c: Math.round((sum / nodes.length) * 10) / 10 };
    }
    case 'u': return first.of ? { t: 'u', of: meanChars(nodes.map((n) => (n as { of: SkeletonNode }).of)) } : first;
    case 'o': return { t: 'o', k: first.k.map(([key], i) => [key, meanChars(nodes.map((n) => (n as { k: Array<[string, SkeletonNode]> }).k[i]![1]))]) };
    case 'a': return { t: 'a', e: first.e.map((_, i) => meanChars(nodes.map((n) => (n as { e: SkeletonNode[] }).e[i]!))) };
    default: return first;
  }
}

/** Longest mean element length recorded for a numeric array (a JSON double is at most 24 characters). */
export const MAX_NUMBER_CHARS = 24;

/** Characters of a number as JSON text (`JSON.stringify`), without building the string for small integers. */
function numberChars(x: number): number {
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return (x < 0 ? 1 : 0) + (x === 0 ? 1 : Math.floor(Math.log10(Math.abs(x))) + 1);
  return String(x).length;
}

function arrayNode(arr: unknown[], path: string, sizes: number[], params: Params, ctx: Ctx): SkeletonNode {
  if (arr.length === 0) {
    sizes.push(0);
    return { t: 'u', of: null };
  }
  // Fast path: all numbers (tensors, token ids).
  if (typeof arr[0] === 'number') {
    let allInt = true;
    let same = true;
    for (const x of arr) {
      if (typeof x !== 'number') { same = false; break; }
      if (allInt && !Number.isInteger(x)) allInt = false;
    }
    if (same) {
      sizes.push(arr.length);
      // The elements' mean text length (a 17-digit FP32 dump is twice the bytes of a 6-digit one, and twice the parsing).
      let chars = 0;
      for (const x of arr as number[]) chars += numberChars(x);
      const c = Math.min(MAX_NUMBER_CHARS, Math.round((chars / arr.length) * 10) / 10);
      return { t: 'u', of: allInt ? { t: 'i', c } : { t: 'f', c } };
    }
  }
  const children: Described[] = arr.map((x, i) => {
    const s: number[] = [];
    const p: Params = {};
    return { skeleton: node(x, `${path}[${i}]`, s, p, null, ctx), sizes: s, params: p };
  });
  // Rows of numbers differ in their text lengths (`c`) but not in structure: compared without it, merged as the mean.
  const key0 = structureKey(children[0]!.skeleton);
  const sizes0 = children[0]!.sizes.join(',');
  const uniform = children.every((c) => Object.keys(c.params).length === 0 && c.sizes.join(',') === sizes0 && structureKey(c.skeleton) === key0);
  if (uniform) {
    sizes.push(arr.length, ...children[0]!.sizes);
    return { t: 'u', of: meanChars(children.map((c) => c.skeleton)) };
  }
  for (const c of children) {
    sizes.push(...c.sizes);
    Object.assign(params, c.params);
  }
  return { t: 'a', e: children.map((c) => c.skeleton) };
}

/**
 * Templates a URL path for the trace: drops the query, replaces segments that look like IDs or carry data (digits
 * runs, UUIDs, hex, `%`-encoding, long tokens) with `{id}`. Keeps fixed API words such as `v1`, `chat`, `models`, and
 * a `:verb` suffix (`:predict`). A segment at a protocol's model or version position (`protocols/routes.ts`) is a model
 * identifier: kept as recorded when it reads as one (`/predictions/densenet161`, `/v2/models/resnet152/versions/3`),
 * else `{model}` / `{version}`, never `{id}`.
 */
export function templateRoute(url: string): string {
  const q = url.indexOf('?');
  const segs = (q >= 0 ? url.slice(0, q) : url).split('/');
  const positions = routePositions(segs);
  const out = segs.map((seg, i) => {
    if (seg === '') return seg;
    const [id, verb] = splitVerb(seg);
    const position = positions[i];
    if (position) return (keepsIdentifier(id, position) ? id : position === 'model' ? MODEL_PLACEHOLDER : VERSION_PLACEHOLDER) + verb;
    return verb && !templatedSegment(verb.slice(1)) ? (templatedSegment(id) ? '{id}' : id) + verb : templatedSegment(seg) ? '{id}' : seg;
  });
  return out.join('/') || '/';
}

/** Whether a path segment (not at a model or version position) is data, to be replaced by `{id}`. */
function templatedSegment(seg: string): boolean {
  if (/^v\d+$/.test(seg)) return false;
  if (seg.includes('%') || seg.length > 48) return true;
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(seg)) return true;
  if (/\d{3,}/.test(seg) || /^[0-9a-f]{12,}$/i.test(seg) || /^\d+$/.test(seg)) return true;
  if (!/^[A-Za-z0-9._:-]+$/.test(seg)) return true;
  // Each `:`/`.`-separated part must read like a name (`gemini-x:generateContent` yes, `user:ZQXa1b2` no).
  // API paths are lower- or camelCase words: a part with capitals and digits, or an all-capitals word, is data.
  return seg.split(/[:.]/).some((part) => looksLikeData(part) || (/[A-Z]/.test(part) && /\d/.test(part)) || /^[A-Z0-9_-]{4,}$/.test(part));
}
