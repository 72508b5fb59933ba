import { createHash } from 'node:crypto';
import { isTopLevelType, storedMediaType } from './media-type.ts';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { TracewarpError } from '../errors.ts';
import type { Fingerprinter } from './fingerprint.ts';
import { isHeaderToken, storedHeaderName, storedQueryKey } from './field-names.ts';
import { looksLikeData } from './names.ts';

/**
 * The anonymization policy file (YAML or JSON). Everything not listed is dropped (an allow-list, DESIGN decision 2).
 *
 * ```yaml
 * headers:
 *   keepNames: true                 # record request header names (default true)
 *   keepValues: [content-type, accept, content-encoding]   # names whose values are recorded (default these three)
 * query:
 *   keepKeys: true                  # record query keys (default true)
 *   keepValues: [api-version]       # keys whose values are recorded (default api-version)
 * body:
 *   keepParams: [user_tier]         # extra JSON keys whose scalar values are kept (added to the built-in list)
 *   dropParams: [seed]              # built-in kept keys to drop after all
 *   keepKeys: [float_features]      # JSON keys kept by name wherever they are (a model's input names)
 *   keepObjectKeys: true            # keep the protocols' own keys (default true); false fingerprints every key
 * ```
 */
export interface PolicyFile {
  headers?: { keepNames?: boolean; keepValues?: string[] };
  query?: { keepKeys?: boolean; keepValues?: string[] };
  body?: { keepParams?: string[]; dropParams?: string[]; keepKeys?: string[]; keepObjectKeys?: boolean };
}

/** JSON keys whose scalar values are kept by default because they drive load. */
export const DEFAULT_KEPT_PARAMS: readonly string[] = [
  'model', 'max_tokens', 'max_completion_tokens', 'min_tokens', 'ignore_eos', 'stream', 'n', 'best_of', 'temperature',
  'top_p', 'top_k', 'presence_penalty', 'frequency_penalty', 'logprobs', 'top_logprobs', 'seed', 'include_usage',
];

/** A policy compiled once at start: sets for O(1) checks per request, and the JSON form written into the trace. */
export interface CompiledPolicy {
  headerNames: boolean;
  headerValues: ReadonlySet<string>;
  queryKeys: boolean;
  queryValues: ReadonlySet<string>;
  params: ReadonlySet<string>;
  objectKeys: boolean;
  /** JSON keys kept by name at any position (`body.keepKeys`); query keys too. */
  keys: ReadonlySet<string>;
  /** What `meta.anonymization` records. */
  describe(): Record<string, unknown>;
  /** What it was compiled from, to compile it again in another thread (`compilePolicy(spec.raw, spec.source)`). */
  readonly spec: { raw: unknown; source: string };
}

/** Headers whose values are never recorded, whatever a policy says. */
const NEVER_VALUES = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'api-key', 'x-goog-api-key', 'x-csrf-token', 'x-forwarded-for', 'x-real-ip', 'forwarded',
  // Names of a client, its site, its organisation or project, or its host: identities, not load.
  'host', 'origin', 'referer', 'from', 'openai-organization', 'openai-project', 'x-goog-user-project', 'azureml-model-deployment']);
/**
 * Header names that carry credentials, sessions or a client's identity by their wording (`x-auth-token`,
 * `x-amz-security-token`, `x-xsrf-token`), or a client's address (`x-forwarded-host`, `cf-connecting-ip`,
 * `true-client-ip`): never recorded either.
 */
const NEVER_VALUE_WORDS = /(auth|token|secret|passw|credential|session|cookie|csrf|xsrf|signature|api-?key|(^|-)key$)|^x-forwarded-|^x-original-|(^|-)(client|connecting|real|remote|user)-?ip$|(^|-)ip$/;

/** A version as API query parameters give one: a date of this century's API era (with `-preview`, `-alpha`, `-beta` or `-rc`) or a short version number (never a phone number's or an address's digit groups). */
const VERSION = /^(20[12]\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(-(alpha|beta|preview|rc)\d{0,2})?|v?\d{1,2}(\.\d{1,2}){0,2}(-(alpha|beta|preview|rc)\d{0,2})?)$/;

/**
 * The rules a trace was anonymized under, written into `meta.anonymization.rules` (trace format 2; a format-1 trace
 * has none: it kept what read like names).
 */
export const ANONYMIZATION_RULES = {
  version: 2,
  keys: 'protocol vocabulary at protocol positions; every other key {k:<fingerprint>:<length>}',
  models: 'public model vocabulary as written; other parts {model:<fingerprint>}; ids holding @ or a credential shape not kept',
  path: 'API words and verbs; model and version positions by the model rule; ids {id}; other segments {seg:<fingerprint>}',
  names: 'standard header names, query keys and form fields; others {h|q|f:<fingerprint>}; Server-Timing common phases, others st-<fingerprint>',
  numbers: 'load parameters within their domains on LLM routes; seed presence only',
  booleans: 'protocol flags only',
  mediaTypes: 'registered type/subtype; any other subtype without its name (vnd.*, x-*, *+suffix)',
} as const;

/** True when a header's value must never reach a trace, whatever a policy says. */
function neverRecorded(name: string): boolean {
  return NEVER_VALUES.has(name) || NEVER_VALUE_WORDS.test(name);
}

/**
 * Validates and compiles a policy; every problem is reported at once.
 * @throws TracewarpError `TW_USAGE` listing each problem (with `source` in the message).
 */
export function compilePolicy(raw: unknown, source = 'policy'): CompiledPolicy {
  const errors: string[] = [];
  const p = (raw ?? {}) as PolicyFile;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) errors.push('the policy must be a mapping with headers, query and/or body');
  const known: Record<string, string[]> = { '': ['headers', 'query', 'body'], headers: ['keepNames', 'keepValues'], query: ['keepKeys', 'keepValues'], body: ['keepParams', 'dropParams', 'keepKeys', 'keepObjectKeys'] };
  if (errors.length === 0) {
    for (const k of Object.keys(p)) if (!known['']!.includes(k)) errors.push(`unknown section '${k}' (known: headers, query, body)`);
    for (const section of ['headers', 'query', 'body'] as const) {
      const v = p[section] as Record<string, unknown> | undefined;
      if (v === undefined) continue;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        errors.push(`${section}: must be a mapping`);
        continue;
      }
      for (const k of Object.keys(v)) if (!known[section]!.includes(k)) errors.push(`${section}.${k}: unknown setting (known: ${known[section]!.join(', ')})`);
      for (const [k, val] of Object.entries(v)) {
        if (k.startsWith('keep') && k !== 'keepValues' && k !== 'keepParams' && k !== 'keepKeys' && typeof val !== 'boolean') errors.push(`${section}.${k}: must be true or false`);
        if ((k === 'keepValues' || k === 'keepParams' || k === 'dropParams' || k === 'keepKeys') && (!Array.isArray(val) || !val.every((x) => typeof x === 'string' && x.length > 0))) errors.push(`${section}.${k}: must be a list of names`);
      }
    }
    for (const h of p.headers?.keepValues ?? []) {
      if (typeof h !== 'string') continue;
      if (!isHeaderToken(h.toLowerCase())) errors.push(`headers.keepValues: '${h}' is not a header name`);
      else if (neverRecorded(h.toLowerCase())) errors.push(`headers.keepValues: '${h}' carries credentials or identities; its value is never recorded (use record --capture-raw if you really need it)`);
    }
  }
  for (const k of p.body?.keepKeys ?? []) if (typeof k === 'string' && (k.length > 64 || looksLikeData(k))) errors.push(`body.keepKeys: '${k}' reads like data, not a name`);
  if (errors.length > 0) throw new TracewarpError('TW_USAGE', `${source}: ${errors.length} problem${errors.length > 1 ? 's' : ''}:\n  - ${errors.join('\n  - ')}`);
  const params = new Set(DEFAULT_KEPT_PARAMS);
  for (const k of p.body?.keepParams ?? []) params.add(k);
  for (const k of p.body?.dropParams ?? []) params.delete(k);
  const compiled = {
    headerNames: p.headers?.keepNames ?? true,
    headerValues: new Set((p.headers?.keepValues ?? ['content-type', 'accept', 'content-encoding']).map((h) => h.toLowerCase())),
    queryKeys: p.query?.keepKeys ?? true,
    queryValues: new Set(p.query?.keepValues ?? ['api-version']),
    params,
    objectKeys: p.body?.keepObjectKeys ?? true,
    keys: new Set(p.body?.keepKeys ?? []),
  };
  return {
    ...compiled,
    spec: { raw: raw ?? {}, source },
    describe: () => ({
      // The policy's content, never its path: a file name can name a team, a customer or a person.
      source: source === 'default' ? 'default' : `file sha256:${createHash('sha256').update(JSON.stringify(raw ?? {})).digest('hex').slice(0, 16)}`,
      headers: { keepNames: compiled.headerNames, keepValues: [...compiled.headerValues] },
      query: { keepKeys: compiled.queryKeys, keepValues: [...compiled.queryValues] },
      body: { keepParams: [...compiled.params], keepKeys: [...compiled.keys], keepObjectKeys: compiled.objectKeys, values: 'dropped: strings become lengths, numbers types, booleans outside protocol flags their type' },
      rules: ANONYMIZATION_RULES,
    }),
  };
}

/** The built-in policy. */
export const DEFAULT_POLICY: CompiledPolicy = compilePolicy({}, 'default');

/**
 * Reads and compiles a policy file (`.json`, or YAML for anything else).
 * @throws TracewarpError `TW_USAGE` naming the file when it cannot be read or parsed, or lists every problem.
 */
export function loadPolicy(path: string): CompiledPolicy {
  let raw: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new TracewarpError('TW_USAGE', `${path}: cannot read the policy: ${(err as Error).message.split('\n')[0]}`);
  }
  return compilePolicy(raw, path);
}

/** Content codings of the IANA registry, and `*`. */
const CODINGS = new Set(['gzip', 'x-gzip', 'deflate', 'br', 'zstd', 'compress', 'x-compress', 'identity', 'dcb', 'dcz', 'exi', 'pack200-gzip', 'aes128gcm', '*']);

/** `*\/*` or a registered top-level type's wildcard (`image/*`). */
function isWildcard(t: string): boolean {
  return t === '*/*' || (t.endsWith('/*') && isTopLevelType(t.slice(0, -2)));
}

/**
 * The recorded form of an allowed header value: media-type headers keep their media types only (parameters such as
 * `boundary` or `charset` dropped), coding headers their registered codings; other allowed values are kept when short
 * and token-like, else dropped.
 */
function headerValue(name: string, value: string): string | null {
  if (name === 'content-type' || name === 'accept') {
    // Each as the trace keeps media types (a vendor's name never), wildcards as they are.
    const types = value.split(',').map((t) => t.split(';')[0]!.trim().toLowerCase()).map((t) => (isWildcard(t) ? t : storedMediaType(t))).filter((t): t is string => t !== null);
    return types.length > 0 ? types.join(', ') : null;
  }
  // Content codings are a registered list (RFC 9110 §8.4.1, IANA HTTP Content Coding Registry): anything else is dropped.
  if (name === 'content-encoding' || name === 'accept-encoding') {
    const codings = value.split(',').map((c) => c.split(';')[0]!.trim().toLowerCase()).filter((c) => CODINGS.has(c));
    return codings.length > 0 ? codings.join(', ') : null;
  }
  return /^[A-Za-z0-9.,:;=_ /*+-]{0,64}$/.test(value) && !value.split(/[\s,;=]+/).some(looksLikeData) ? value : null;
}

/**
 * What the policy lets a trace keep of a request's headers and query: header names (with allowed values) and query
 * keys (with allowed values). Values outside the allow-lists are `null`.
 */
export function describeHeadersAndQuery(policy: CompiledPolicy, headers: Record<string, string | string[] | undefined>, url: string, fp: Fingerprinter | null = null): { headers?: Array<[string, string | null]>; query?: Array<[string, string | null]> } {
  const out: { headers?: Array<[string, string | null]>; query?: Array<[string, string | null]> } = {};
  if (policy.headerNames) {
    out.headers = Object.entries(headers)
      .filter(([name]) => isHeaderToken(name))
      // A name outside the standard ones is the sender's own wording (`x-acme-tenant`): a keyed token.
      .map(([name, v]) => policy.headerValues.has(name)
        ? [name, neverRecorded(name) ? null : headerValue(name, Array.isArray(v) ? v.join(', ') : (v ?? ''))]
        : [storedHeaderName(name, fp), null]);
  }
  const q = url.indexOf('?');
  if (policy.queryKeys && q >= 0) {
    out.query = [...new URLSearchParams(url.slice(q + 1))].map(([k, v]) => [
      // Decoded first (`?acme%2Dtenant=1` is `acme-tenant`): a key outside the standard ones is a keyed token.
      storedQueryKey(k, fp, policy.queryValues),
      // An allowed value is kept only when it reads like a version (`2024-02-01`, `2024-02-01-preview`, `v1`, `1.2`).
      policy.queryValues.has(k) && VERSION.test(v) ? v : null,
    ]);
  }
  return out;
}
