import { countTokens } from '../tokens.ts';
import type { ProtocolAdapter } from './adapter.ts';
import { extractLlm, synthesizeLlm, type LlmSpec } from './llm.ts';
import { tgiStream } from './streams.ts';

/** TGI's generation parameters (its OpenAPI `GenerateParameters`) that drive load. */
const PARAMS = ['max_new_tokens', 'temperature', 'top_k', 'top_p', 'typical_p', 'repetition_penalty', 'best_of', 'seed', 'do_sample', 'details', 'decoder_input_details'].map((k) => `parameters.${k}`);
const SPEC: LlmSpec = { protocol: 'tgi', prompt: 'inputs', nestedParams: PARAMS, maxTokens: ['parameters.max_new_tokens'] };

/**
 * Hugging Face Text Generation Inference's own API (`POST /generate`, `/generate_stream`, and `/` with `stream`):
 * `inputs` is the prompt, `parameters.max_new_tokens` the output limit; `/generate_stream` answers as SSE events of
 * `token.text`, the last with `generated_text` and `details.generated_tokens`.
 */
export const tgi: ProtocolAdapter = {
  id: 'tgi',
  generative: true,
  detect: (method, route) => method === 'POST' && (route === '/generate' || route === '/generate_stream'),
  extract: (ctx) => {
    const d = extractLlm(SPEC, ctx);
    if (d && ctx.route === '/generate_stream') d.wantsStream = true;
    return d;
  },
  synthesize: (r, rngs, opts) => synthesizeLlm(SPEC, r, rngs, opts),
  extractResponse(body) {
    const b = (Array.isArray(body) ? body[0] : body) as { generated_text?: unknown; details?: { generated_tokens?: unknown } } | undefined;
    if (typeof b?.details?.generated_tokens === 'number') return { outputTokens: b.details.generated_tokens };
    return typeof b?.generated_text === 'string' ? { outputTokens: countTokens(b.generated_text) } : {};
  },
  streamReader: tgiStream,
};
