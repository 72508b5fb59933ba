import { randomBytes } from 'node:crypto';
import { Fingerprinter } from './fingerprint.ts';

/**
 * Which JSON object keys a trace keeps (issue 10, class 2): enumerated, not recognized. A key is kept only where a
 * protocol puts its own vocabulary and only when it is a word of it; every other key — and every key below a
 * free-form position (a tool's arguments, `metadata`, a JSON Schema's property names, any generic JSON) — becomes a
 * keyed fingerprint with its length, `{k:<8 hex>:<chars>}`: equal keys give equal tokens within a trace (repeated
 * structures still share a shape), and a replay sends a key of the same length.
 */

/**
 * Where an object sits, which decides what its keys may keep: `vocab` (a protocol's object: its vocabulary words stay),
 * `schema` (a JSON Schema: its keywords stay), `names` (a schema's `properties`: every key is somebody's name, each
 * value a schema), `free` (nothing stays).
 */
export type KeyMode = 'vocab' | 'schema' | 'names' | 'free';

/**
 * Keys of the request bodies of the protocols tracewarp reads, from their API references: OpenAI chat completions,
 * completions, embeddings and Responses; Anthropic Messages; Gemini generateContent; Ollama chat/generate/embed;
 * vLLM's and TGI's extensions; the Open Inference Protocol (KServe v2, its generate extension, Triton's parameters);
 * TF Serving REST. A key outside this list is fingerprinted even at a protocol position (a vendor extension's name can
 * be a company's).
 */
export const PROTOCOL_KEYS: ReadonlySet<string> = new Set([
  // OpenAI chat completions / completions / embeddings.
  'model', 'messages', 'role', 'content', 'name', 'type', 'text', 'image_url', 'url', 'detail', 'input_audio', 'data', 'format',
  'file', 'file_id', 'file_data', 'filename', 'refusal', 'tool_calls', 'tool_call_id', 'id', 'function', 'arguments',
  'functions', 'function_call', 'tools', 'tool_choice', 'parallel_tool_calls', 'description', 'parameters', 'strict',
  'response_format', 'json_schema', 'schema', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'n',
  'stream', 'stream_options', 'include_usage', 'continuous_usage_stats', 'stop', 'presence_penalty', 'frequency_penalty', 'logit_bias',
  'logprobs', 'top_logprobs', 'seed', 'user', 'metadata', 'store', 'service_tier', 'reasoning_effort', 'modalities',
  'audio', 'voice', 'prediction', 'web_search_options', 'prompt', 'suffix', 'echo', 'best_of', 'input', 'dimensions',
  'encoding_format', 'prompt_cache_key', 'safety_identifier', 'verbosity', 'cache_control', 'search_context_size',
  'user_location', 'approximate', 'country', 'city', 'region', 'timezone', 'include_obfuscation', 'version', 'variables',
  'disable_parallel_tool_use', 'thinkingLevel', 'speechConfig', 'voiceConfig', 'prebuiltVoiceConfig', 'voiceName',
  'labels', 'ttl',
  // OpenAI Responses.
  'instructions', 'previous_response_id', 'reasoning', 'effort', 'summary', 'max_output_tokens', 'include', 'truncation',
  'background', 'conversation', 'call_id', 'output', 'status', 'max_tool_calls', 'prompt_cache_retention',
  // Anthropic Messages.
  'system', 'stop_sequences', 'top_k', 'thinking', 'budget_tokens', 'source', 'media_type', 'tool_use_id', 'is_error',
  'citations', 'container', 'mcp_servers', 'input_schema', 'signature',
  // Gemini.
  'contents', 'parts', 'inlineData', 'inline_data', 'mimeType', 'mime_type', 'fileData', 'fileUri', 'functionCall',
  'functionResponse', 'args', 'response', 'systemInstruction', 'system_instruction', 'generationConfig',
  'generation_config', 'safetySettings', 'category', 'threshold', 'toolConfig', 'functionCallingConfig', 'mode',
  'allowedFunctionNames', 'functionDeclarations', 'parametersJsonSchema', 'maxOutputTokens', 'topP', 'topK',
  'candidateCount', 'stopSequences', 'responseMimeType', 'responseSchema', 'responseJsonSchema', 'presencePenalty',
  'frequencyPenalty', 'responseLogprobs', 'thinkingConfig', 'thinkingBudget', 'includeThoughts', 'cachedContent',
  'responseModalities', 'mediaResolution', 'googleSearch', 'codeExecution',
  // Ollama.
  'images', 'options', 'keep_alive', 'raw', 'think', 'template', 'context', 'num_predict', 'num_ctx', 'num_keep',
  'num_batch', 'num_gpu', 'num_thread', 'repeat_penalty', 'repeat_last_n', 'tfs_z', 'mirostat', 'mirostat_eta',
  'mirostat_tau', 'penalize_newline', 'numa', 'low_vram', 'use_mmap', 'use_mlock', 'truncate', 'tool_name',
  // vLLM and TGI extensions.
  'min_tokens', 'ignore_eos', 'min_p', 'typical_p', 'repetition_penalty', 'length_penalty', 'stop_token_ids',
  'include_stop_str_in_output', 'skip_special_tokens', 'spaces_between_special_tokens', 'use_beam_search',
  'guided_json', 'guided_regex', 'guided_choice', 'guided_grammar', 'guided_decoding_backend', 'structured_outputs',
  'json', 'regex', 'choice', 'grammar', 'chat_template', 'chat_template_kwargs', 'enable_thinking', 'add_generation_prompt',
  'continue_final_message', 'add_special_tokens', 'documents', 'priority', 'request_id', 'return_tokens_as_token_ids',
  'prompt_logprobs', 'truncate_prompt_tokens', 'max_new_tokens', 'do_sample', 'return_full_text', 'details',
  'decoder_input_details', 'watermark', 'top_n_tokens', 'adapter_id', 'frequency_penalty', 'inputs',
  // Open Inference Protocol (KServe v2), its generate extension, Triton's parameters; TF Serving.
  'outputs', 'shape', 'datatype', 'binary_data', 'binary_data_size', 'binary_data_output', 'classification',
  'sequence_id', 'sequence_start', 'sequence_end', 'timeout', 'text_input', 'text_output', 'exclude_input_in_output',
  'instances', 'signature_name', 'examples', 'b64',
]);

/** JSON Schema keywords (draft 2020-12 core, applicator and validation vocabularies, and OpenAPI's `nullable`). */
export const SCHEMA_KEYWORDS: ReadonlySet<string> = new Set([
  '$schema', '$id', '$ref', '$defs', '$anchor', '$comment', 'definitions', 'type', 'enum', 'const', 'properties',
  'patternProperties', 'additionalProperties', 'propertyNames', 'required', 'items', 'prefixItems', 'additionalItems',
  'contains', 'minContains', 'maxContains', 'minItems', 'maxItems', 'uniqueItems', 'minLength', 'maxLength', 'pattern',
  'format', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minProperties',
  'maxProperties', 'dependentRequired', 'dependentSchemas', 'anyOf', 'allOf', 'oneOf', 'not', 'if', 'then', 'else',
  'title', 'description', 'default', 'examples', 'deprecated', 'readOnly', 'writeOnly', 'nullable',
  'unevaluatedProperties', 'unevaluatedItems', 'contentMediaType', 'contentEncoding',
]);

/** Schema keywords whose value is a map of somebody's names to schemas. */
const SCHEMA_NAME_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);
/** Schema keywords whose value is a schema or a list of schemas. */
const SUBSCHEMAS = new Set(['items', 'prefixItems', 'additionalItems', 'additionalProperties', 'propertyNames', 'contains',
  'anyOf', 'allOf', 'oneOf', 'not', 'if', 'then', 'else', 'unevaluatedProperties', 'unevaluatedItems']);

/** Where a protocol's bodies hold free-form objects and JSON Schemas (paths as the skeleton writes them). */
export interface KeyLayout {
  /** The body's own position: `vocab` for a protocol's body, `free` for JSON no protocol defines. */
  root: KeyMode;
  /** The protocol's own keys at `vocab` positions. Default {@link PROTOCOL_KEYS}. */
  vocab?: ReadonlySet<string>;
  /** Keys of the protocol kept at any depth, free positions too (TF Serving's `{"b64": …}` binary values). */
  anywhere?: ReadonlySet<string>;
  /** Paths of objects whose keys are anybody's (tool arguments, `metadata`). */
  free?: RegExp;
  /** Paths of JSON Schemas (tool parameters, structured-output schemas). */
  schema?: RegExp;
}

/** JSON no protocol defines: structure and lengths only. */
export const FREE_LAYOUT: KeyLayout = { root: 'free' };

/**
 * The layout of the LLM protocols' bodies: tool-call arguments as objects (Ollama), Anthropic `tool_use.input`,
 * Gemini `functionCall.args` / `functionResponse.response`, `metadata`, `logit_bias` (token ids), vLLM's processor
 * kwargs, Vertex AI `labels` and the Responses API's prompt `variables` are free; tool parameter schemas (OpenAI chat and Responses, Anthropic `input_schema`, Gemini function
 * declarations), structured-output schemas (`response_format`, Responses' `text.format`, Ollama `format`, Gemini
 * `responseSchema`, vLLM `guided_json`) are JSON Schemas.
 */
export const LLM_LAYOUT: KeyLayout = {
  root: 'vocab',
  free: /^(?:metadata|logit_bias|mm_processor_kwargs|labels|prompt\.variables|messages\[\d+\]\.tool_calls\[\d+\]\.function\.arguments|messages\[\d+\]\.content\[\d+\]\.input|contents\[\d+\]\.parts\[\d+\]\.(?:functionCall\.args|functionResponse\.response)|input\[\d+\]\.(?:input|metadata))$/,
  schema: /^(?:tools\[\d+\]\.(?:function\.parameters|parameters|input_schema|functionDeclarations\[\d+\]\.(?:parameters|parametersJsonSchema|response))|functions\[\d+\]\.parameters|response_format\.json_schema\.schema|text\.format\.schema|format|guided_json|structured_outputs\.json|generationConfig\.(?:responseSchema|responseJsonSchema))$/,
};

/** A key token's form: `{k:<fingerprint>:<length>}`. */
export const KEY_TOKEN = /^\{k:([0-9a-f]{8}):(\d{1,4})\}$/;
/** Longest key length a token records (a longer key is replayed this long). */
export const MAX_KEY_CHARS = 1024;

let processFingerprinter: Fingerprinter | null = null;
/**
 * The fingerprinter of keys and names when the caller has none (an import, a test): a random key for this process,
 * so tokens are equal within what this process writes and link to nothing else.
 */
export function fallbackFingerprinter(): Fingerprinter {
  processFingerprinter ??= new Fingerprinter(randomBytes(32));
  return processFingerprinter;
}

/** The token a trace keeps for a key it does not keep. */
export function keyToken(fp: Fingerprinter, key: string): string {
  return `{k:${fp.name(key)}:${Math.min(key.length, MAX_KEY_CHARS)}}`;
}

/** Whether a key stays as it is at a position (`extra`: keys a policy keeps by name, anywhere). */
export function keepsKey(key: string, mode: KeyMode, extra: ReadonlySet<string>, layout: KeyLayout): boolean {
  if (extra.has(key) || layout.anywhere?.has(key)) return true;
  if (mode === 'vocab') return (layout.vocab ?? PROTOCOL_KEYS).has(key);
  return mode === 'schema' && SCHEMA_KEYWORDS.has(key);
}

/** The position of an object's member `key` (kept or not) at `childPath`, from its parent's position. */
export function childMode(mode: KeyMode, key: string, kept: boolean, childPath: string, layout: KeyLayout): KeyMode {
  switch (mode) {
    case 'free': return 'free';
    case 'names': return 'schema';
    case 'schema': return !kept ? 'free' : SCHEMA_NAME_MAPS.has(key) ? 'names' : SUBSCHEMAS.has(key) ? 'schema' : 'free';
    case 'vocab':
      if (!kept || layout.free?.test(childPath)) return 'free';
      return layout.schema?.test(childPath) ? 'schema' : 'vocab';
  }
}

/**
 * A key of the token's recorded length for a replay: letters drawn from the fingerprint (the same token gives the same
 * key), different from the keys already in `used` (two tokens of one object never collide into one member).
 */
export function keyOfToken(token: string, used: Set<string>): string {
  const m = KEY_TOKEN.exec(token);
  if (!m) return token;
  const length = Number(m[2]);
  let x = Number.parseInt(m[1]!, 16) >>> 0;
  for (let attempt = 0; attempt < 64; attempt++) {
    let s = '';
    for (let i = 0; i < length; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      s += String.fromCharCode(0x61 + ((x >>> 16) % 26));
    }
    if (!used.has(s)) return s;
    x = (x + attempt + 1) >>> 0;
  }
  return `${m[1]}${used.size}`; // a short key space exhausted: a longer key rather than a lost member
}
