import type { Features, ProtocolId } from '../types.ts';
import { adapterFor } from './index.ts';
import { EventSplitter, streamFormatOf, type StreamFormat } from './sse.ts';
import { anyLlmStream } from './streams.ts';

/** One answer as either side saw it: its bytes in the chunks they arrived in, with each chunk's arrival time (µs). */
export interface AnswerBytes {
  protocol: ProtocolId;
  status: number | null;
  contentType: string | null;
  /** KServe binary tensor extension: the JSON header's length (`Inference-Header-Content-Length`), if any. */
  inferenceHeader: string | null;
  body: Uint8Array | null;
  /** Where each chunk ended in `body`, and when it arrived (any clock; the results are on the same clock). */
  chunkEnds: readonly number[];
  chunkAtUs: readonly number[];
  /** False when the body was longer than the capture bound (only its start is in `body`). */
  complete: boolean;
}

/** What an answer said about the generation: the same facts for a recorded exchange and a replayed request. */
export interface ObservedAnswer {
  /** The answer's stream format, or null when it was not a stream. */
  format: StreamFormat | null;
  /** Arrival time of each stream event. */
  eventAtUs: number[];
  /** Indexes of the events that carried no generated content (role chunks, `usage`, `[DONE]`, keep-alives). */
  nonContentEvents: number[];
  /** Arrival of the first content event. */
  ttftAtUs: number | null;
  /** Gaps between consecutive content events (µs). */
  itlUs: number[];
  /** Output tokens, for protocols that generate (else null). */
  outputTokens: number | null;
  /** For streams of protocols with an end marker: whether it came (false: the stream was cut short); else null. */
  ended: boolean | null;
  /** Features of a complete JSON answer (e.g. KServe output tensors). */
  features?: Features;
}

/**
 * The response observer: reads one answer through its protocol adapter — a stream event by event (TTFT, content
 * events, output tokens, whether it ended properly), a JSON answer whole (output tokens, output tensors). Capture
 * (`capture/describe.ts`) and replay (`replay/observe.ts`) both read answers here, so a stream is measured alike on
 * both sides. Never throws on a malformed answer: what cannot be read is left null.
 */
export function observeAnswer(a: AnswerBytes): ObservedAnswer {
  const out: ObservedAnswer = { format: null, eventAtUs: [], nonContentEvents: [], ttftAtUs: null, itlUs: [], outputTokens: null, ended: null };
  const adapter = adapterFor(a.protocol);
  const generative = adapter?.generative === true;
  const bytes = a.body ? Buffer.from(a.body.buffer, a.body.byteOffset, a.body.byteLength) : null;
  out.format = a.status !== null ? streamFormatOf(a.contentType) : null;
  if (out.format) {
    const splitter = new EventSplitter(out.format);
    const stream = adapter?.streamReader?.() ?? anyLlmStream();
    let lastContent = -1;
    let from = 0;
    for (let c = 0; c < a.chunkEnds.length && bytes; c++) {
      const at = a.chunkAtUs[c]!;
      for (const ev of splitter.push(bytes.subarray(from, a.chunkEnds[c]!))) {
        const content = stream.onData(ev.data);
        if (!content) out.nonContentEvents.push(out.eventAtUs.length);
        out.eventAtUs.push(at);
        if (!content) continue;
        if (out.ttftAtUs === null) out.ttftAtUs = at;
        else out.itlUs.push(at - lastContent);
        lastContent = at;
      }
      from = a.chunkEnds[c]!;
    }
    if (generative) out.outputTokens = stream.outputTokens();
    // A stream whose protocol ends with a marker and that did not get it was cut short (only knowable when whole).
    out.ended = a.complete ? stream.ended() : null;
    return out;
  }
  if (!adapter?.extractResponse || !bytes || !a.complete || a.status === null || a.status >= 400) return out;
  try {
    const jsonBytes = Number(a.inferenceHeader);
    const r = adapter.extractResponse(JSON.parse((Number.isInteger(jsonBytes) && jsonBytes > 0 ? bytes.subarray(0, jsonBytes) : bytes).toString('utf8')));
    if (generative) out.outputTokens = r.outputTokens ?? null;
    if (r.features) out.features = r.features;
  } catch {
    // an answer that is not the JSON it claims: nothing more to learn from it
  }
  return out;
}
