import { countTokens } from '../tokens.ts';

/**
 * Reads the events of one streamed LLM answer (the `data` of each SSE event, or each NDJSON line): which events carry
 * generated content (for TTFT and inter-token gaps), whether the protocol's end marker arrived, and the output tokens.
 * One per answer; the same reader serves capture and replay, so both sides measure a stream alike.
 */
export interface StreamReader {
  /** Feeds one event's data; returns true when it carried generated content (text, reasoning text, tool-call arguments). */
  onData(data: string): boolean;
  /** True once the stream's end marker arrived, false while it has not; null for protocols without one. */
  ended(): boolean | null;
  /** The stream's own output-token count when it gave one (`usage`, `eval_count`, `generated_tokens`), else the streamed text counted. */
  outputTokens(): number;
}

/** Streamed text kept to count tokens when the stream gives no count (in memory only, at most 4 Mi characters). */
const MAX_TEXT = 1 << 22;

/** What one event said, as the readers below parse it. */
interface EventFacts {
  text: string;
  count?: number;
  end?: boolean;
}

function reader(parse: (event: unknown, data: string) => EventFacts | null, hasEnd: boolean): StreamReader {
  let text = '';
  let count: number | null = null;
  let ended = false;
  return {
    onData(data) {
      let event: unknown = undefined;
      if (data !== '[DONE]') {
        try {
          event = JSON.parse(data);
        } catch {
          return false; // not JSON: a keep-alive or a server's own note, never content
        }
      }
      const f = parse(event, data);
      if (!f) return false;
      if (f.count !== undefined) count = f.count;
      if (f.end) ended = true;
      if (f.text.length === 0) return false;
      if (text.length < MAX_TEXT) text += f.text;
      return true;
    },
    ended: () => (hasEnd ? ended : null),
    outputTokens: () => count ?? countTokens(text),
  };
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined);

type OpenAIChunk = { usage?: { completion_tokens?: unknown } | null; choices?: Array<{ delta?: { content?: unknown; reasoning_content?: unknown; tool_calls?: Array<{ function?: { arguments?: unknown } }> }; text?: unknown }> };

/** OpenAI chat/completions chunks (`chat.completion.chunk`), ending with `data: [DONE]`; `usage` in a final chunk. */
function openaiEvent(e: unknown, data: string): EventFacts | null {
  if (data === '[DONE]') return { text: '', end: true };
  const c = e as OpenAIChunk;
  if (!c || typeof c !== 'object') return null;
  let t = '';
  for (const ch of Array.isArray(c.choices) ? c.choices : []) {
    t += str(ch?.text) || str(ch?.delta?.content) || str(ch?.delta?.reasoning_content);
    // Streamed tool calls: the arguments arrive in pieces and are generated tokens like content.
    if (Array.isArray(ch?.delta?.tool_calls)) for (const tc of ch.delta.tool_calls) t += str(tc?.function?.arguments);
  }
  return { text: t, count: num(c.usage?.completion_tokens) };
}

/** Ollama `/api/chat` (`message.content`, `message.thinking`) and `/api/generate` (`response`) lines; the last says `done: true` with `eval_count`. */
function ollamaEvent(e: unknown): EventFacts | null {
  const o = e as { message?: { content?: unknown; thinking?: unknown }; response?: unknown; thinking?: unknown; done?: unknown; eval_count?: unknown };
  if (!o || typeof o !== 'object') return null;
  return { text: str(o.message?.content) + str(o.message?.thinking) + str(o.response) + str(o.thinking), count: o.done === true ? num(o.eval_count) : undefined, end: o.done === true };
}

/** Text Generation Inference `/generate_stream` events: `token.text` (special tokens are not content); the last carries `generated_text` and `details.generated_tokens`. */
function tgiEvent(e: unknown): EventFacts | null {
  const o = e as { token?: { text?: unknown; special?: unknown }; generated_text?: unknown; details?: { generated_tokens?: unknown } | null };
  if (!o || typeof o !== 'object') return null;
  const end = typeof o.generated_text === 'string';
  return { text: o.token?.special === true ? '' : str(o.token?.text), count: end ? num(o.details?.generated_tokens) : undefined, end };
}

/** Open Inference Protocol `generate_stream` events (Triton, KServe): `text_output` pieces; no end marker. */
function oipGenerateEvent(e: unknown): EventFacts | null {
  const o = e as { text_output?: unknown };
  return o && typeof o === 'object' ? { text: str(o.text_output) } : null;
}

/** Whichever of the known LLM event shapes an event has (streams of generic JSON routes). */
function anyEvent(e: unknown, data: string): EventFacts | null {
  if (data === '[DONE]') return { text: '', end: true };
  for (const parse of [openaiEvent, ollamaEvent, tgiEvent, oipGenerateEvent]) {
    const f = parse(e, data);
    if (f && (f.text.length > 0 || f.end || f.count !== undefined)) return f;
  }
  return null;
}

/** Streams of OpenAI-compatible chat and completions. */
export const openaiStream = (): StreamReader => reader(openaiEvent, true);
/** Streams of Ollama's API (NDJSON). */
export const ollamaStream = (): StreamReader => reader(ollamaEvent, true);
/** Streams of Hugging Face Text Generation Inference (SSE, or NDJSON from proxies that re-frame it). */
export const tgiStream = (): StreamReader => reader(tgiEvent, true);
/** Streams of the Open Inference Protocol's generate extension. */
export const oipGenerateStream = (): StreamReader => reader(oipGenerateEvent, false);
/** Streams of routes no LLM adapter claims: any known event shape counts; the end is unknown (null). */
export const anyLlmStream = (): StreamReader => {
  const r = reader(anyEvent, true);
  let marked = false;
  return { onData: (d) => { const c = r.onData(d); marked ||= r.ended() === true; return c; }, ended: () => (marked ? true : null), outputTokens: r.outputTokens };
};
