import type { Fingerprinter } from './fingerprint.ts';
import { fallbackFingerprinter } from './keys.ts';
import { storedModelId } from './model-id.ts';
import { looksLikeData } from './names.ts';
import { keepsIdentifier, MODEL_PLACEHOLDER, routePositions, splitVerb, valueShaped, VERSION_PLACEHOLDER } from '../protocols/routes.ts';

/**
 * Words of the inference APIs' paths, kept as they are (issue 10, class 4): OpenAI and Azure OpenAI, Anthropic, Gemini
 * and Vertex AI, AWS Bedrock, Ollama, vLLM, TGI, the Open Inference Protocol (KServe v2, Triton), KServe v1 / TF
 * Serving, TorchServe, and the health and metrics paths servers share. Any other segment is somebody's name (a
 * tenant, a project, a deployment, a user) and becomes `{seg:<fingerprint>}`.
 */
const PATH_WORDS = new Set([
  'api', 'apis', 'openai', 'deployments', 'chat', 'completions', 'completion', 'embeddings', 'embed', 'embedding', 'models',
  'model', 'responses', 'messages', 'generate', 'generate_stream', 'infer', 'predict', 'predictions', 'explanations', 'explain',
  'ready', 'live', 'health', 'healthz', 'livez', 'readyz', 'ping', 'metrics', 'stats', 'version', 'info', 'tokenize',
  'detokenize', 'pooling', 'score', 'rerank', 'classify', 'audio', 'transcriptions', 'translations', 'speech', 'images',
  'generations', 'edits', 'variations', 'moderations', 'files', 'content', 'batches', 'threads', 'runs', 'steps',
  'assistants', 'vector_stores', 'fine_tuning', 'fine-tuning', 'jobs', 'uploads', 'parts', 'projects', 'locations', 'publishers',
  'google', 'anthropic', 'meta', 'mistralai', 'endpoints', 'versions', 'labels', 'metadata', 'invocations', 'invoke',
  'invoke-with-response-stream', 'converse', 'converse-stream', 'inference', 'repository', 'index', 'load', 'unload',
  'trace', 'logging', 'systemsharedmemory', 'cudasharedmemory', 'region', 'status', 'serving', 'engines', 'tags', 'show',
  'pull', 'push', 'create', 'copy', 'delete', 'ps', 'blobs', 'realtime', 'sessions', 'conversations', 'items', 'input_items',
  'cancel', 'count_tokens', 'batch', 'beta', 'complete', 'tokens', 'v1', 'v2', 'v3', 'v1beta', 'v1alpha', 'v1beta1',
  'v2beta', 'interactions', 'cachedContents', 'operations', 'results', 'async', 'stream', 'sse', 'ws', 'websocket',
  'pipeline', 'pipelines', 'text-generation', 'feature-extraction', 'sentence-similarity', 'text-classification',
])
;

/** Collection words whose next segment is an object's id, however it reads (`/v1/threads/thread_abc/runs`). */
const ID_COLLECTIONS = new Set(['threads', 'files', 'runs', 'steps', 'assistants', 'batches', 'responses', 'vector_stores',
  'jobs', 'uploads', 'conversations', 'items', 'sessions', 'operations', 'cachedContents', 'messages', 'blobs']);

/** Path verbs (`name:verb`) of the APIs above: Gemini / Vertex AI, KServe v1 / TF Serving, Google's long-running operations. */
const VERBS = new Set([':predict', ':classify', ':regress', ':explain', ':generateContent', ':streamGenerateContent',
  ':embedContent', ':batchEmbedContents', ':countTokens', ':rawPredict', ':streamRawPredict', ':serverStreamingPredict',
  ':computeTokens', ':cancel', ':wait', ':generateMessage', ':generateText', ':embedText', ':batchPredict']);

/**
 * Templates a URL path for the trace (the query is dropped). Per segment, by position:
 * - a model position (`protocols/routes.ts`) keeps the model id as `anonymize/model-id.ts` stores one (`{model}` when it
 *   is no model id at all, or a value: a credential, a UUID, an address); a version position keeps a version number
 *   or a release word (`latest`, `stable`), else `{version}`;
 * - an API word (`v1`, `chat`, `completions`, `predictions`, …) stays, with an API verb (`:predict`, `:generateContent`);
 * - an id (digits, a UUID, hex, `%`-encoding, a long token, or any segment after a collection word such as `threads`)
 *   is `{id}`, replayed with seeded numbers;
 * - anything else is a name and becomes `{seg:<keyed fingerprint>}`: equal within a trace, readable by nobody, and
 *   replayed only where `replay --path-map` says (or as a placeholder with `--placeholder-segments`).
 */
export function templateRoute(url: string, fp: Fingerprinter | null = null): string {
  const f = fp ?? fallbackFingerprinter();
  const q = url.indexOf('?');
  const segs = (q >= 0 ? url.slice(0, q) : url).split('/');
  const positions = routePositions(segs);
  const out = segs.map((seg, i) => {
    if (seg === '') return seg;
    const [id, verb] = splitVerb(seg);
    const apiVerb = verb === '' || VERBS.has(verb);
    const keptVerb = apiVerb ? verb : '';
    const whole = apiVerb ? id : seg;
    const position = positions[i];
    if (position === 'model') return (whole.includes('%') || valueShaped(whole) ? MODEL_PLACEHOLDER : storedModelId(whole, f) ?? MODEL_PLACEHOLDER) + keptVerb;
    if (position === 'version') return (keepsIdentifier(whole, 'version') ? whole : VERSION_PLACEHOLDER) + keptVerb;
    if (i > 0 && ID_COLLECTIONS.has(segs[i - 1]!) && !PATH_WORDS.has(whole)) return '{id}' + keptVerb;
    if (PATH_WORDS.has(whole)) return whole + keptVerb;
    if (idShaped(whole)) return '{id}' + keptVerb;
    return `{seg:${f.name(whole)}}${keptVerb}`;
  });
  return out.join('/') || '/';
}

/** Whether a segment reads as an id (replayed as a seeded number): digits, a UUID, hex, `%`-encoding, a long or random token. */
function idShaped(seg: string): boolean {
  if (seg.includes('%') || seg.length > 48) return true;
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(seg)) return true;
  if (/\d{3,}/.test(seg) || /^[0-9a-f]{12,}$/i.test(seg) || /^\d+$/.test(seg)) return true;
  if (!/^[A-Za-z0-9._:-]+$/.test(seg)) return true;
  return seg.split(/[:.]/).some((part) => looksLikeData(part) || (/[A-Z]/.test(part) && /\d/.test(part)) || /^[A-Z0-9_-]{4,}$/.test(part));
}
