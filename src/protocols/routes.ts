import { fallbackFingerprinter } from '../anonymize/keys.ts';
import { isFingerprintedModel, storedModelId } from '../anonymize/model-id.ts';

/**
 * Where inference protocols put a model name and a model version in the URL path. A segment at one of these
 * positions is a model identifier: it is kept as recorded (when it reads as one) and replayed as recorded, or as
 * `replay --model` names it — never replaced by a number. Sources: KServe v1 and the Open Inference Protocol (v2)
 * REST specs (`/v1/models/{m}:predict`, `/v2/models/{m}[/versions/{v}]/infer|generate|generate_stream|ready`),
 * TorchServe's inference and management APIs (`/predictions/{m}[/{v}]`, `/explanations/{m}[/{v}]`,
 * `/models/{m}[/{v}]`), TF Serving's REST API (`/v1/models/{m}[/versions/{v}|/labels/{l}][:predict]`), Azure
 * OpenAI (`/openai/deployments/{d}/…`), OpenAI (`/v1/models/{m}`) and Gemini (`/v1beta/models/{m}:generateContent`).
 *
 * The rule is positional: the segment after `models`, `deployments`, `predictions` or `explanations` is a model
 * position; after a model position, `versions/{v}` and `labels/{l}` (TF Serving) mark a version position, and so does
 * the segment right after a TorchServe model (`/predictions/{m}/{v}`).
 */
export type RoutePosition = 'model' | 'version';

/** Path words that are followed by a model name. */
const MODEL_WORDS = new Set(['models', 'deployments', 'predictions', 'explanations']);
/** Words after a model that are followed by a version (TF Serving `labels` name a version too). */
const VERSION_WORDS = new Set(['versions', 'labels']);
/** TorchServe's own words: their model may be followed directly by a version segment. */
const TORCHSERVE_WORDS = new Set(['predictions', 'explanations']);
/** Placeholders a templated route uses at a model or version position the trace could not keep. */
export const MODEL_PLACEHOLDER = '{model}';
export const VERSION_PLACEHOLDER = '{version}';

/** A `name:verb` segment's verb (`:predict`, `:generateContent`), which is API vocabulary, not data. */
const VERB = /^(.*?)(:[a-z][A-Za-z]{1,39})$/;

/** Splits `resnet152:predict` into `resnet152` and `:predict` (no verb: the whole segment and ''). */
export function splitVerb(seg: string): [string, string] {
  const m = VERB.exec(seg);
  return m && m[1] !== '' ? [m[1]!, m[2]!] : [seg, ''];
}

/** The model or version position of each segment of a path split at `/` (index-aligned; null elsewhere). */
export function routePositions(segs: readonly string[]): Array<RoutePosition | null> {
  const out: Array<RoutePosition | null> = segs.map(() => null);
  for (let i = 0; i < segs.length - 1; i++) {
    const word = segs[i]!;
    if (!MODEL_WORDS.has(word) || out[i] !== null) continue;
    out[i + 1] = 'model';
    const next = segs[i + 2];
    if (next !== undefined && VERSION_WORDS.has(splitVerb(next)[0]) && segs[i + 3] !== undefined) out[i + 3] = 'version';
    // TorchServe: `/predictions/{m}/{v}`, and its management API's `/models/{m}/{v}` (a path that begins with it).
    else if (next !== undefined && i + 3 === segs.length && (TORCHSERVE_WORDS.has(word) || (word === 'models' && i === 1))) out[i + 2] = 'version';
  }
  return out;
}

/** Prefixes of credentials and tokens (OpenAI, Stripe, GitHub, GitLab, Hugging Face, Slack, AWS, Google). */
const CREDENTIAL = /^(?:(?:sk|pk|rk|ak|whsec|ghp|gho|ghs|ghu|github_pat|glpat|hf|xox[abpr])[-_]|AKIA|ASIA|AIza|eyJ)/;

/** True when a string begins as a credential or token does (see {@link CREDENTIAL}). */
export function credentialShaped(s: string): boolean {
  return CREDENTIAL.test(s);
}

/**
 * True when a path segment reads as a value, not a model or version name: a credential or token shape, a JWT, a UUID,
 * a long hex digest, an IP address, a run of 9 or more digits (card, account and phone numbers; a date such as
 * `20241022` has 8), or a word (between `-_.`) of 10 or more characters mixing digits with letters in both cases or in
 * capitals only (`2xYzAbCdEf`, `AKIAIOSFODNN7EXAMPLE`) — random ids do, model names (`Llama-3.1-70B`) do not.
 */
export function valueShaped(seg: string): boolean {
  if (CREDENTIAL.test(seg) && seg.length >= 12) return true;
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(seg) || /[0-9a-f]{16,}/i.test(seg)) return true;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(seg) || /\d{9,}/.test(seg)) return true;
  return seg.split(/[-_.]+/).some((w) => w.length >= 10 && /\d/.test(w) && /[A-Za-z]/.test(w) && (/[a-z]/.test(w) ? /[A-Z]/.test(w) : true));
}

/**
 * Whether a model or version segment is kept as recorded: a model id all of whose words are public model vocabulary
 * (`densenet161`, `gpt-4o-2024-08-06`, `Llama-3.1-8B`; `anonymize/model-id.ts`), or a version number or release word —
 * never one that is {@link valueShaped} or holds `@` or `%`.
 */
export function keepsIdentifier(seg: string, position: RoutePosition): boolean {
  if (seg.includes('%') || seg.includes('@') || valueShaped(seg)) return false;
  // A version number (at most 8 digits: a date; a Unix time is {@link valueShaped}), a dotted version (`2.0`, `1.0.2`) or
  // a release word; never grouped digits (`415-555-0123`).
  if (position === 'version') return /^v?\d{1,8}$|^v?\d{1,4}(?:\.\d{1,4}){1,2}$/.test(seg) || /^(?:latest|stable|canary|default|champion|challenger|prod|production|staging)$/.test(seg);
  return !seg.includes('/') && storedModelId(seg, fallbackFingerprinter()) === seg;
}

/**
 * A (templated) route with each model position's id replaced by `to(id)` (URL-encoded; undefined leaves it); a
 * `:verb` suffix stays.
 */
export function mapModelPositions(route: string, to: (id: string) => string | undefined): string {
  const segs = route.split('/');
  const pos = routePositions(segs);
  return segs.map((s, i) => {
    if (pos[i] !== 'model') return s;
    const [id, verb] = splitVerb(s);
    const model = to(id);
    return model === undefined ? s : encodeURIComponent(model) + verb;
  }).join('/');
}

/** A (templated) route with every model position set to `model` (`replay --model`); a `:verb` suffix stays. */
export function withModel(route: string, model: string): string {
  return mapModelPositions(route, () => model);
}

/** The model ids at a route's model positions, in order (without `:verb` suffixes). */
export function modelIdsOf(route: string): string[] {
  const segs = route.split('/');
  const pos = routePositions(segs);
  return segs.flatMap((s, i) => (pos[i] === 'model' ? [splitVerb(s)[0]] : []));
}

/**
 * True when a route still has a model or version position the trace could not keep, or a model id with a
 * fingerprinted part (`{model:…}`): it must be mapped to replay.
 */
export function hasUnknownModel(route: string): boolean {
  return route.split('/').some((s) => { const [id] = splitVerb(s); return id === MODEL_PLACEHOLDER || id === VERSION_PLACEHOLDER || isFingerprintedModel(id); });
}

/** True when a route has a path segment the trace keeps as a fingerprint (`{seg:…}`): a path map names it, or a placeholder replaces it. */
export function hasNamedSegment(route: string): boolean {
  return route.includes('{seg:');
}

/**
 * Routes of LLM APIs tracewarp has no adapter of its own for (Anthropic Messages, OpenAI Responses, Gemini): their
 * bodies are described as generic JSON, but their keys are protocol vocabulary (`anonymize/keys.ts`), not free-form.
 */
export function isLlmApiRoute(route: string): boolean {
  return /^(?:\/v\d+)?\/(?:messages(?:\/count_tokens)?|complete|responses)$/.test(route) || /:(?:stream)?generateContent$|:countTokens$|:(?:batchE|e)mbedContents?$/i.test(route);
}
