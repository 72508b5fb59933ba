import { isModelName } from '../anonymize/names.ts';
import type { Rng } from '../rng.ts';
import type { Features, ProtocolId, TraceRecord } from '../types.ts';
import { countTokens, encodeTokens } from '../tokens.ts';
import { synthesizeImage, type ImageInfo } from '../synth/image.ts';
import { PromptText, RawStrings } from '../synth/text.ts';
import { dataUrlImage, type ExtractContext, type ProtocolAdapter, type RequestDescription, type SynthOptions, type SynthRngs } from './adapter.ts';
import { describeJsonBody, jsonRequest, parseJson, synthesizeJsonBody } from './generic.ts';

function textOfContent(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
      .join('');
  }
  return '';
}

/** The texts an OpenAI request's prompt is made of, in order: chat message contents, completion prompts, embedding inputs. */
function promptTexts(protocol: ProtocolId, body: Record<string, unknown>): Array<string | number[]> {
  if (protocol === 'openai-chat') return Array.isArray(body.messages) ? body.messages.map((m) => textOfContent((m as { content?: unknown })?.content)) : [];
  const p = protocol === 'openai-completions' ? body.prompt : body.input;
  if (typeof p === 'string') return [p];
  if (Array.isArray(p)) {
    if (p.every((x) => typeof x === 'number')) return [p as number[]];
    return p.map((x) => (typeof x === 'string' ? x : Array.isArray(x) ? (x as number[]) : ''));
  }
  return [];
}

/** Images (data URLs) of a chat request, in message and part order. */
function chatImages(body: Record<string, unknown>): ImageInfo[] {
  const out: ImageInfo[] = [];
  if (!Array.isArray(body.messages)) return out;
  for (const m of body.messages) {
    const c = (m as { content?: unknown })?.content;
    if (!Array.isArray(c)) continue;
    for (const part of c) {
      const url = (part as { image_url?: { url?: unknown } })?.image_url?.url;
      if (typeof url === 'string') {
        const info = dataUrlImage(url);
        out.push(info ?? { format: 'url', width: 0, height: 0, bytes: url.length });
      }
    }
  }
  return out;
}

/** Where each protocol's prompt texts sit (their lengths are tokens, kept in `messageTokens`). */
const TOKENIZED: Partial<Record<ProtocolId, RegExp>> = {
  'openai-chat': /^messages\[\d+\]\.content(?:\[\d+\]\.(?:text|image_url\.url))?$/,
  'openai-completions': /^prompt(?:\[\d+\])?$/,
  'openai-embeddings': /^input(?:\[\d+\])?$/,
};

function extractOpenAI(protocol: ProtocolId, ctx: ExtractContext): RequestDescription | null {
  const parsed = ctx.complete ? parseJson(ctx.body) : undefined;
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
  const body = parsed as Record<string, unknown>;
  const d = describeJsonBody(protocol, ctx, body, { tokenizedPaths: TOKENIZED[protocol] });
  const texts = promptTexts(protocol, body);
  const ids: number[] = [];
  const messageTokens = texts.map((t) => {
    if (Array.isArray(t)) return t.length; // already token ids
    if (!ctx.fingerprinter) return countTokens(t);
    const enc = encodeTokens(t);
    for (const x of enc) ids.push(x);
    return enc.length;
  });
  d.features.messageTokens = messageTokens;
  if (ctx.fingerprinter && ids.length > 0) {
    d.features.promptFingerprint = ctx.fingerprinter.prompt(ids);
    if (protocol !== 'openai-embeddings') {
      d.features.prefixFingerprints = ctx.fingerprinter.prefixBlocks(ids);
      d.features.prefixBlockTokens = ctx.fingerprinter.blockTokens;
    }
  }
  if (protocol === 'openai-chat') {
    const images = chatImages(body);
    if (images.length > 0) d.features.images = images;
  }
  const mt = body.max_completion_tokens ?? body.max_tokens;
  d.promptTokens = messageTokens.reduce((a, b) => a + b, 0);
  d.messageCount = messageTokens.length;
  // The `model` and `max_tokens` columns follow the policy's kept parameters, like `params` (record --policy dropParams).
  d.model = typeof body.model === 'string' && ctx.policy.params.has('model') && isModelName(body.model) ? body.model : null;
  d.maxTokens = typeof mt === 'number' && ctx.policy.params.has(body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens') ? mt : null;
  d.wantsStream = body.stream === true;
  return d;
}

/**
 * A named child of a shared stream, made once per parent: children are derived from the parent's seed and name only,
 * and the prefix stream is only ever asked for children of its own, so one object serves every request.
 */
const sharedChildren = new WeakMap<Rng, Map<string, Rng>>();
function sharedChild(parent: Rng, name: string): Rng {
  let m = sharedChildren.get(parent);
  if (!m) sharedChildren.set(parent, (m = new Map()));
  let c = m.get(name);
  if (!c) m.set(name, (c = parent.child(name)));
  return c;
}

/**
 * Strings for the JSON synthesizer: each message / prompt / input gets text of its recorded token count, cut from one
 * prompt-long token sequence whose leading blocks follow the recorded prefix fingerprints (or Mooncake block ids), so
 * equal prefixes replay as equal text; an exactly repeated prompt (same fingerprint) replays as the same text.
 * Chat image URLs become data URLs of seeded images of the recorded format and dimensions.
 */
export function openaiStringAt(protocol: ProtocolId, features: Features, rngs: SynthRngs, raw: RawStrings): (path: string, length: number) => string | undefined {
  const tokens = features.messageTokens ?? [];
  const total = tokens.reduce((a, b) => a + b, 0);
  let text: PromptText | null = null;
  const starts: number[] = [];
  tokens.reduce((a, b, i) => ((starts[i] = a), a + b), 0);
  const prompt = (): PromptText => {
    if (text) return text;
    const prefix = sharedChild(rngs.shared, 'prefix');
    const fp = features.promptFingerprint;
    const tail = fp ? rngs.shared.child(`prompt:${fp}`) : rngs.rng.child('prompt');
    const keys = features.prefixFingerprints ?? features.prefixBlocks ?? [];
    text = new PromptText(total, keys, features.prefixBlockTokens ?? 64, prefix, tail, rngs.blocks, Boolean(fp));
    return text;
  };
  const textOf = (i: number) => raw.add(prompt().slice(starts[i]!, starts[i]! + tokens[i]!));
  const partsSeen = new Map<number, number>();
  let imageIndex = 0;
  let imageRng: Rng | null = null; // made on first use: a seeded stream costs microseconds to create
  return (path) => {
    let m: RegExpExecArray | null;
    if (protocol === 'openai-chat') {
      if ((m = /^messages\[(\d+)\]\.content\[\d+\]\.image_url\.url$/.exec(path))) {
        const info = features.images?.[imageIndex++];
        if (!info || info.format === 'url') return undefined;
        const img = synthesizeImage(info, (imageRng ??= rngs.rng.child('images')));
        return `data:${img.mime};base64,${img.bytes.toString('base64')}`;
      }
      if ((m = /^messages\[(\d+)\]\.content(?:\[(\d+)\]\.text)?$/.exec(path))) {
        const i = Number(m[1]);
        if (m[2] !== undefined) {
          // Multi-part content: the message's tokens go to its first text part.
          const seen = partsSeen.get(i) ?? 0;
          partsSeen.set(i, seen + 1);
          if (seen > 0) return '';
        }
        return tokens[i] === undefined ? undefined : textOf(i);
      }
      return undefined;
    }
    const key = protocol === 'openai-completions' ? 'prompt' : 'input';
    if ((m = new RegExp(`^${key}(?:\\[(\\d+)\\])?$`).exec(path))) {
      const i = m[1] === undefined ? 0 : Number(m[1]);
      return tokens[i] === undefined ? undefined : textOf(i);
    }
    return undefined;
  };
}

function synthesizeOpenAI(protocol: ProtocolId, r: TraceRecord, rngs: SynthRngs, opts: SynthOptions = {}) {
  const raw = new RawStrings();
  const value = synthesizeJsonBody(r, rngs, openaiStringAt(protocol, r.features, rngs, raw));
  if (protocol !== 'openai-embeddings' && r.outputTokens !== null && value && typeof value === 'object') {
    // Ask for the recorded output length: the trace's max_tokens was the client's limit, the output the real length.
    const v = value as Record<string, unknown>;
    const n = Math.max(1, r.outputTokens);
    if ('max_completion_tokens' in v) v.max_completion_tokens = n;
    else v.max_tokens = n;
    if (opts.forceOutputLength) {
      v.min_tokens = n;
      v.ignore_eos = true;
    }
  }
  return jsonRequest(r, rngs, value, raw);
}

function openaiAdapter(id: ProtocolId, suffix: RegExp): ProtocolAdapter {
  return {
    id,
    detect: (method, route) => method === 'POST' && suffix.test(route),
    extract: (ctx) => extractOpenAI(id, ctx),
    synthesize: (r, rngs, opts) => synthesizeOpenAI(id, r, rngs, opts),
    extractResponse: (body) => (id === 'openai-embeddings' ? {} : { outputTokens: extractOpenAIResponse(body).outputTokens }),
  };
}

/** OpenAI-compatible chat completions (`…/chat/completions`): messages, roles, text and image parts, tools. */
export const openaiChat = openaiAdapter('openai-chat', /\/chat\/completions$/);
/** OpenAI-compatible completions (`…/completions`): prompt string, strings or token arrays. */
export const openaiCompletions = openaiAdapter('openai-completions', /(?<!chat)\/completions$/);
/** OpenAI-compatible embeddings (`…/embeddings`, also Azure `deployments/{id}/embeddings`): string, strings, token arrays. */
export const openaiEmbeddings = openaiAdapter('openai-embeddings', /\/embeddings$/);

/** True for the protocols whose answers carry generated tokens. */
export function isGenerative(protocol: ProtocolId): boolean {
  return protocol === 'openai-chat' || protocol === 'openai-completions';
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

  /** Feeds one SSE event's `data` payload; returns true when it carried generated content (text, reasoning text or tool-call arguments). */
  onData(data: string): boolean {
    if (data === '[DONE]') {
      this.done = true;
      return false;
    }
    let chunk: { usage?: { completion_tokens?: unknown } | null; choices?: Array<{ delta?: { content?: unknown; reasoning_content?: unknown; tool_calls?: Array<{ function?: { arguments?: unknown } }> }; text?: unknown }> };
    try {
      chunk = JSON.parse(data);
    } catch {
      return false;
    }
    if (chunk.usage && typeof chunk.usage.completion_tokens === 'number') this.usageTokens = chunk.usage.completion_tokens;
    let content = false;
    for (const c of chunk.choices ?? []) {
      let t = typeof c.text === 'string' ? c.text : typeof c.delta?.content === 'string' ? c.delta.content : typeof c.delta?.reasoning_content === 'string' ? c.delta.reasoning_content : '';
      // Streamed tool calls: the arguments arrive in pieces and are generated tokens like content.
      if (Array.isArray(c.delta?.tool_calls)) for (const tc of c.delta.tool_calls) if (typeof tc?.function?.arguments === 'string') t += tc.function.arguments;
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
