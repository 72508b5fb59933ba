import type { Params, SkeletonNode } from '../types.ts';
import type { Fingerprinter } from './fingerprint.ts';
import { childMode, fallbackFingerprinter, FREE_LAYOUT, keepsKey, keyToken, type KeyLayout, type KeyMode } from './keys.ts';
import { storedModelId } from './model-id.ts';
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
  const layout = opts.layout ?? FREE_LAYOUT;
  const ctx: Ctx = {
    keep: opts.keep ?? null, tokenized: opts.tokenizedPaths ?? null, params: opts.params ?? KEPT_PARAMS,
    layout, keepKeys: opts.keepKeys ?? NO_KEYS, fp: opts.fingerprinter ?? fallbackFingerprinter(),
  };
  const skeleton = node(value, '', sizes, params, null, ctx, opts.objectKeys === false ? 'free' : layout.root);
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
  /** Keep the protocol's keys. Default true; false fingerprints every key (the policy's `keepObjectKeys: false`). */
  objectKeys?: boolean;
  /** Where the body holds protocol vocabulary, free-form objects and JSON Schemas (`anonymize/keys.ts`). Default `FREE_LAYOUT`: every key a token. */
  layout?: KeyLayout;
  /** Keys kept by name wherever they are (the policy's `body.keepKeys`). */
  keepKeys?: ReadonlySet<string>;
  /** Keys' fingerprints. Default a random key for this process ({@link fallbackFingerprinter}). */
  fingerprinter?: Fingerprinter | null;
}

const NO_KEYS: ReadonlySet<string> = new Set();

interface Ctx {
  keep: ReadonlyMap<string, (value: unknown, path: string) => boolean> | null;
  tokenized: RegExp | null;
  params: ReadonlySet<string>;
  layout: KeyLayout;
  keepKeys: ReadonlySet<string>;
  fp: Fingerprinter;
}

function node(v: unknown, path: string, sizes: number[], params: Params, key: string | null, ctx: Ctx, mode: KeyMode): SkeletonNode {
  if (v === null) return { t: 'z' };
  const kept = key !== null && ctx.keep !== null && (ctx.keep.get(key)?.(v, path) ?? false);
  // Load-driving parameters count at the top level only (a nested `seed` or `n` is somebody's data).
  const param = key !== null && ctx.params.has(key) && (path === key || path === 'stream_options.include_usage');
  switch (typeof v) {
    case 'string': {
      const lit = key !== null ? LITERALS[key] : undefined;
      if (lit && lit.has(v)) return { t: 'l', v };
      if (kept) {
        params[path] = v;
        return { t: 'p', name: path };
      }
      // A model id keeps its public base only; the rest of it is fingerprinted (anonymize/model-id.ts).
      const model = key === 'model' && param ? storedModelId(v, ctx.fp) : null;
      if (model !== null) {
        params[path] = model;
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
    return arrayNode(v, path, sizes, params, ctx, mode);
  }
  const k: Array<[string, SkeletonNode]> = [];
  for (const [name, child] of Object.entries(v as Record<string, unknown>)) {
    // A key stays only as a word of its position's vocabulary; any other is a keyed token of its length.
    const keptKey = keepsKey(name, mode, ctx.keepKeys, ctx.layout) || (mode === 'vocab' && ctx.params.has(name));
    const safe = keptKey ? name : keyToken(ctx.fp, name);
    const childPath = path ? `${path}.${safe}` : safe;
    k.push([safe, node(child, childPath, sizes, params, keptKey ? safe : null, ctx, childMode(mode, name, keptKey, childPath, ctx.layout))]);
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

function arrayNode(arr: unknown[], path: string, sizes: number[], params: Params, ctx: Ctx, mode: KeyMode): SkeletonNode {
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
    return { skeleton: node(x, `${path}[${i}]`, s, p, null, ctx, mode), sizes: s, params: p };
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
