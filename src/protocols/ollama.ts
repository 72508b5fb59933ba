import { countTokens } from '../tokens.ts';
import type { ProtocolAdapter } from './adapter.ts';
import { extractLlm, synthesizeLlm, type LlmSpec } from './llm.ts';
import { ollamaStream } from './streams.ts';

/** Ollama's load parameters (`options`, per the Ollama API docs' "Valid Parameters and Values"). */
const OPTIONS = ['num_predict', 'num_ctx', 'temperature', 'top_k', 'top_p', 'min_p', 'repeat_penalty', 'seed'].map((k) => `options.${k}`);

const base = { protocol: 'ollama', nestedParams: OPTIONS, maxTokens: ['options.num_predict'], streamsByDefault: true } as const;
/** Ollama API request layouts (`docs/api.md`): chat, generate, and both embedding routes. */
const SPECS: Record<string, LlmSpec> = {
  '/api/chat': { ...base, prompt: 'messages' },
  '/api/generate': { ...base, prompt: 'prompt' },
  '/api/embed': { ...base, prompt: 'input', maxTokens: [], prefixes: false, generative: false },
  '/api/embeddings': { ...base, prompt: 'prompt', maxTokens: [], prefixes: false, generative: false },
};

/**
 * Ollama's API (`POST /api/chat`, `/api/generate`, `/api/embed`, `/api/embeddings`): answers stream as NDJSON unless
 * the body says `"stream": false`; the output limit is `options.num_predict`; the last line (`done: true`) carries
 * `eval_count`, the output tokens.
 */
export const ollama: ProtocolAdapter = {
  id: 'ollama',
  generative: true,
  detect: (method, route) => method === 'POST' && route in SPECS,
  extract: (ctx) => {
    const d = extractLlm(SPECS[ctx.route]!, ctx);
    if (d && SPECS[ctx.route]!.generative === false) d.wantsStream = false;
    return d;
  },
  synthesize: (r, rngs, opts) => synthesizeLlm(SPECS[r.route] ?? SPECS['/api/generate']!, r, rngs, opts),
  extractResponse(body) {
    const b = body as { eval_count?: unknown; message?: { content?: unknown }; response?: unknown };
    if (typeof b?.eval_count === 'number') return { outputTokens: b.eval_count };
    const text = typeof b?.message?.content === 'string' ? b.message.content : typeof b?.response === 'string' ? b.response : null;
    return text === null ? {} : { outputTokens: countTokens(text) };
  },
  streamReader: ollamaStream,
};
