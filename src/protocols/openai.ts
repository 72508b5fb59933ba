import type { Features, ProtocolId } from '../types.ts';
import { countTokens } from '../tokens.ts';
import type { Rng } from '../rng.ts';
import { textOfTokens, textWithPrefixBlocks } from '../synth/text.ts';

/** Which OpenAI-compatible endpoint a route is, or null. */
export function openaiProtocol(method: string, route: string): ProtocolId | null {
  if (method !== 'POST') return null;
  if (/\/chat\/completions$/.test(route)) return 'openai-chat';
  if (/\/completions$/.test(route)) return 'openai-completions';
  return null;
}

/** What an OpenAI chat/completions request body says about load. */
export interface OpenAIRequestFeatures {
  /** Prompt tokens: sum of the text tokens of every message (chat) or prompt (completions); template tokens excluded. */
  promptTokens: number;
  /** Tokens per message (chat) or per prompt (completions). */
  messageTokens: number[];
  messageCount: number;
  model: string | null;
  /** `max_completion_tokens` or `max_tokens`, whichever is set. */
  maxTokens: number | null;
  stream: boolean;
}

function textOfContent(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
      .join('');
  }
  return '';
}

/** Reads load features from a parsed chat or completions body. Values are read here and never leave this function. */
export function extractOpenAIRequest(protocol: ProtocolId, body: Record<string, unknown>): OpenAIRequestFeatures {
  let messageTokens: number[] = [];
  if (protocol === 'openai-chat' && Array.isArray(body.messages)) {
    messageTokens = body.messages.map((m) => countTokens(textOfContent((m as { content?: unknown })?.content)));
  } else if (protocol === 'openai-completions') {
    const p = body.prompt;
    if (typeof p === 'string') messageTokens = [countTokens(p)];
    else if (Array.isArray(p)) messageTokens = p.map((x) => (typeof x === 'string' ? countTokens(x) : Array.isArray(x) ? x.length : 0));
  }
  const mt = body.max_completion_tokens ?? body.max_tokens;
  return {
    promptTokens: messageTokens.reduce((a, b) => a + b, 0),
    messageTokens,
    messageCount: messageTokens.length,
    model: typeof body.model === 'string' ? body.model : null,
    maxTokens: typeof mt === 'number' ? mt : null,
    stream: body.stream === true,
  };
}

/**
 * Supplies message text for the JSON synthesizer: chat `messages[i].content` (or its text parts) and completions
 * `prompt` get text of the recorded token count for that message; prefix blocks (Mooncake `hash_ids`) make equal
 * block ids produce equal leading text.
 */
export function openaiStringAt(protocol: ProtocolId, features: Features, rng: Rng, blockRng: Rng): (path: string, length: number) => string | undefined {
  const tokens = features.messageTokens ?? [];
  const partsSeen = new Map<number, number>();
  return (path) => {
    let m: RegExpExecArray | null;
    let index = -1;
    if (protocol === 'openai-chat' && (m = /^messages\[(\d+)\]\.content(?:\[(\d+)\]\.text)?$/.exec(path))) {
      index = Number(m[1]);
      if (m[2] !== undefined) {
        // Multi-part content: the message's tokens go to its first text part.
        const seen = partsSeen.get(index) ?? 0;
        partsSeen.set(index, seen + 1);
        if (seen > 0) return '';
      }
    } else if (protocol === 'openai-completions' && (m = /^prompt(?:\[(\d+)\])?$/.exec(path))) {
      index = m[1] === undefined ? 0 : Number(m[1]);
    }
    if (index < 0 || tokens[index] === undefined) return undefined;
    const n = tokens[index]!;
    if (index === 0 && features.prefixBlocks && features.prefixBlockTokens) {
      return textWithPrefixBlocks(n, features.prefixBlocks, features.prefixBlockTokens, blockRng, rng);
    }
    return textOfTokens(n, rng);
  };
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

/**
 * Tracks an SSE stream of chat/completions chunks: which events carry content (for TTFT), the terminal `[DONE]`,
 * `usage` in a final chunk, and the streamed text (kept in memory only to count tokens when no `usage` arrives).
 */
export class OpenAIStreamTracker {
  private text = '';
  private usageTokens: number | null = null;
  done = false;

  /** Feeds one SSE event's `data` payload; returns true when it carried content (a token). */
  onData(data: string): boolean {
    if (data === '[DONE]') {
      this.done = true;
      return false;
    }
    let chunk: { usage?: { completion_tokens?: unknown } | null; choices?: Array<{ delta?: { content?: unknown; reasoning_content?: unknown }; text?: unknown }> };
    try {
      chunk = JSON.parse(data);
    } catch {
      return false;
    }
    if (chunk.usage && typeof chunk.usage.completion_tokens === 'number') this.usageTokens = chunk.usage.completion_tokens;
    let content = false;
    for (const c of chunk.choices ?? []) {
      const t = typeof c.text === 'string' ? c.text : typeof c.delta?.content === 'string' ? c.delta.content : typeof c.delta?.reasoning_content === 'string' ? c.delta.reasoning_content : '';
      if (t.length > 0) {
        content = true;
        if (this.text.length < 1 << 22) this.text += t;
      }
    }
    return content;
  }

  /** Output tokens: from `usage` if the stream had it, else counted from the streamed text. */
  result(): OpenAIResponseFeatures {
    if (this.usageTokens !== null) return { outputTokens: this.usageTokens, fromUsage: true };
    return { outputTokens: countTokens(this.text), fromUsage: false };
  }
}
