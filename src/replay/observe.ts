import { observeAnswer } from '../protocols/observe.ts';
import type { ProtocolId } from '../types.ts';
import type { RequestResult } from '../results/types.ts';
import { parseServerTiming } from '../trace-context.ts';
import type { RawObservation } from './types.ts';

/**
 * The response observer: turns what the sending loop saw of one request (timestamps and captured bytes) into its
 * {@link RequestResult}. Runs off the sending loop (in the results thread). The answer is read by its protocol's
 * response observer (`protocols/observe.ts`, the same one capture uses): a stream's events in the chunks they arrived
 * in, each event taking its chunk's arrival time — TTFT is the first event that carries content, ITL the gaps between
 * content events, a stream without its protocol's end marker is `stream_truncated`; a JSON answer is read for its
 * output tokens.
 */
export function observe(o: RawObservation): RequestResult {
  const result: RequestResult = {
    index: o.index, traceSeq: o.traceSeq, scheduledUs: o.scheduledUs,
    // An answer implies a send; should the socket-write message have been missed, the hand-over time stands in.
    sentUs: o.sentUs ?? (o.status !== null ? o.dispatchedUs : null), ttfbAtUs: o.ttfbAtUs, ttftAtUs: null,
    endUs: o.endUs, status: o.status, errorKind: o.errorKind, requestBytes: o.requestBytes, responseBytes: o.responseBytes, streamed: false,
    eventCount: 0, outputTokens: null, expectedOutputTokens: o.expectedOutputTokens, promptTokens: o.promptTokens, capDelayed: o.capDelayed,
    label: o.label, traceId: o.traceId, serverTiming: parseServerTiming(o.serverTiming ?? undefined), dispatchedUs: o.dispatchedUs,
    bodySentUs: o.bodySentUs, readyLagUs: o.readyLagUs, sender: o.sender, toolStall: false, recordedFailed: o.recordedFailed,
  };
  if (o.status === null) return result;
  const answer = observeAnswer({
    protocol: o.protocol as ProtocolId, status: o.status, contentType: o.contentType, inferenceHeader: null, body: o.body,
    chunkEnds: o.chunkEnds, chunkAtUs: o.chunkAtUs, complete: o.captureComplete,
  });
  if (answer.format) {
    result.streamed = true;
    result.eventCount = answer.eventAtUs.length;
    result.ttftAtUs = answer.ttftAtUs;
    result.itlUs = answer.itlUs;
    if (answer.ended === false && o.status < 400 && result.errorKind === null) {
      result.errorKind = 'stream_truncated';
      result.errorDetail = 'no_end_marker';
    }
  }
  // Tokens that arrived, also of a stream that was cut (as the recorder counts them).
  if (o.llm) result.outputTokens = answer.outputTokens;
  return result;
}
