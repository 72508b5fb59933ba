import type { ProtocolId } from '../types.ts';
import { countTokens } from '../tokens.ts';
import type { ProtocolAdapter } from './adapter.ts';
import { extractLlm, synthesizeLlm, type LlmSpec } from './llm.ts';
import { openaiStream } from './streams.ts';

function textOfContent(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((p) => (p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : '')).join('');
}

/** What an OpenAI response (JSON or SSE stream) says about output. */
export interface OpenAIResponseFeatures {
  /** `usage.completion_tokens` when present, else tokens counted from the text. */
  outputTokens: number | null;
  /** True when `usage` was present. */
  fromUsage: boolean;
}

/** Reads output tokens from a complete JSON response body. */
export function extractOpenAIResponse(body: unknown): OpenAIResponseFeatures {
  const b = body as { usage?: { completion_tokens?: unknown }; choices?: Array<{ message?: { content?: unknown }; text?: unknown }> };
  const usage = b?.usage?.completion_tokens;
  if (typeof usage === 'number') return { outputTokens: usage, fromUsage: true };
  if (Array.isArray(b?.choices)) {
    let n = 0;
    for (const c of b.choices) n += countTokens(typeof c.text === 'string' ? c.text : textOfContent(c.message?.content));
    return { outputTokens: n, fromUsage: false };
  }
  return { outputTokens: null, fromUsage: false };
}

/** The OpenAI request layouts (OpenAI API reference: chat completions, completions, embeddings). */
const SPECS: Record<'openai-chat' | 'openai-completions' | 'openai-embeddings', LlmSpec> = {
  'openai-chat': { protocol: 'openai-chat', prompt: 'messages', maxTokens: ['max_completion_tokens', 'max_tokens'], maxTokensDefault: 'max_tokens' },
  'openai-completions': { protocol: 'openai-completions', prompt: 'prompt', maxTokens: ['max_tokens'] },
  'openai-embeddings': { protocol: 'openai-embeddings', prompt: 'input', maxTokens: [], prefixes: false, generative: false },
};

function openaiAdapter(id: keyof typeof SPECS, suffix: RegExp): ProtocolAdapter {
  const spec = SPECS[id];
  const generative = id !== 'openai-embeddings';
  return {
    id,
    generative,
    detect: (method, route) => method === 'POST' && suffix.test(route),
    extract: (ctx) => extractLlm(spec, ctx),
    synthesize: (r, rngs, opts) => synthesizeLlm(spec, r, rngs, opts),
    extractResponse: (body) => (generative ? { outputTokens: extractOpenAIResponse(body).outputTokens } : {}),
    ...(generative ? { streamReader: openaiStream } : {}),
  };
}

/** OpenAI-compatible chat completions (`…/chat/completions`): messages, roles, text and image parts, tools. */
export const openaiChat = openaiAdapter('openai-chat', /\/chat\/completions$/);
/** OpenAI-compatible completions (`…/completions`): prompt string, strings or token arrays. */
export const openaiCompletions = openaiAdapter('openai-completions', /(?<!chat)\/completions$/);
/** OpenAI-compatible embeddings (`…/embeddings`, also Azure `deployments/{id}/embeddings`): string, strings, token arrays. */
export const openaiEmbeddings = openaiAdapter('openai-embeddings', /\/embeddings$/);

export type { ProtocolId };
