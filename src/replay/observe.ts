import { extractOpenAIResponse, OpenAIStreamTracker } from '../protocols/openai.ts';
import { EventSplitter, streamFormatOf } from '../protocols/sse.ts';
import type { RequestResult } from '../results/types.ts';
import { parseServerTiming } from '../trace-context.ts';
import type { RawObservation } from './types.ts';

/**
 * The response observer: turns what the sending loop saw of one request (timestamps and captured bytes) into its
 * {@link RequestResult}. Runs off the sending loop (in the results thread). Streams (SSE, NDJSON) are split into
 * events in the chunks they arrived in, each event taking its chunk's arrival time: TTFT is the first event that
 * carries content, ITL the gaps between content events; an SSE LLM stream without its terminal `[DONE]` is
 * `stream_truncated`. A JSON LLM answer is read for its output tokens (`usage`, else counted).
 */
export function observe(o: RawObservation): RequestResult {
  const result: RequestResult = {
    index: o.index, traceSeq: o.traceSeq, scheduledUs: o.scheduledUs,
    // An answer implies a send; should the socket-write message have been missed, the hand-over time stands in.
    sentUs: o.sentUs ?? (o.status !== null ? o.dispatchedUs : null), ttfbAtUs: o.ttfbAtUs, ttftAtUs: null,
    endUs: o.endUs, status: o.status, errorKind: o.errorKind, requestBytes: o.requestBytes, responseBytes: o.responseBytes, streamed: false,
    eventCount: 0, outputTokens: null, expectedOutputTokens: o.expectedOutputTokens, promptTokens: o.promptTokens, capDelayed: o.capDelayed,
    label: o.label, traceId: o.traceId, serverTiming: parseServerTiming(o.serverTiming ?? undefined), dispatchedUs: o.dispatchedUs,
    bodySentUs: o.bodySentUs, readyLagUs: o.readyLagUs, sender: o.sender, toolStall: false,
  };
  const format = o.status !== null ? streamFormatOf(o.contentType) : null;
  const bytes = o.body ? Buffer.from(o.body.buffer, o.body.byteOffset, o.body.byteLength) : null;
  if (format) {
    result.streamed = true;
    const splitter = new EventSplitter(format);
    const tracker = new OpenAIStreamTracker();
    const itl: number[] = [];
    let lastContent = -1;
    let from = 0;
    for (let c = 0; c < o.chunkEnds.length && bytes; c++) {
      const at = o.chunkAtUs[c]!;
      for (const ev of splitter.push(bytes.subarray(from, o.chunkEnds[c]!))) {
        result.eventCount++;
        if (!tracker.onData(ev.data)) continue;
        if (result.ttftAtUs === null) result.ttftAtUs = at;
        else itl.push(at - lastContent);
        lastContent = at;
      }
      from = o.chunkEnds[c]!;
    }
    result.itlUs = itl;
    if (o.llm) result.outputTokens = tracker.result().outputTokens;
    if (o.llm && format === 'sse' && !tracker.done && o.status! < 400 && result.errorKind === null && o.captureComplete) result.errorKind = 'stream_truncated';
  } else if (o.llm && o.status !== null && o.status < 400 && result.errorKind === null && bytes && o.captureComplete) {
    try {
      result.outputTokens = extractOpenAIResponse(JSON.parse(bytes.toString('utf8'))).outputTokens;
    } catch {
      result.outputTokens = null;
    }
  }
  return result;
}
