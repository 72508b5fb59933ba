import { templateRoute } from '../anonymize/route.ts';
import type { Fingerprinter } from '../anonymize/fingerprint.ts';
import { DEFAULT_POLICY, describeHeadersAndQuery, type CompiledPolicy } from '../anonymize/policy.ts';
import { anonymizeServerTiming } from '../anonymize/server-timing.ts';
import { describeRequest } from '../protocols/index.ts';
import { observeAnswer } from '../protocols/observe.ts';
import type { ProtocolId, TraceRecord } from '../types.ts';
import { parseServerTiming } from '../trace-context.ts';
import type { ExchangeSnapshot } from './exchange.ts';

/** What describing needs besides the exchange: the trace's offset 0 and the anonymization in force. */
export interface DescribeContext {
  /** Monotonic µs of the trace's offset 0. */
  startUs: number;
  fingerprinter?: Fingerprinter | null;
  /** Describe every request with this adapter instead of detecting one. */
  protocol?: ProtocolId;
  policy?: CompiledPolicy;
}

/**
 * Builds the anonymized record of a finished exchange (DESIGN decision 2): the request described by its protocol
 * adapter, headers and query by the policy, the answer's stream events and output tokens. Runs in the recorder
 * thread, never on the loop that forwards. Async because some bodies (multipart) are parsed by a streaming parser.
 * `evidence`, when given, receives what session inference needs and the record must not hold (message prefixes).
 */
export async function describeExchange(s: ExchangeSnapshot, ctx: DescribeContext, evidence?: { messagePrefixes?: string[] }): Promise<TraceRecord> {
  const route = templateRoute(s.url, ctx.fingerprinter);
  const body = s.requestBody ? Buffer.from(s.requestBody.buffer, s.requestBody.byteOffset, s.requestBody.byteLength) : null;
  const policy = ctx.policy ?? DEFAULT_POLICY;
  const d = await describeRequest(s.method, route, s.requestHeaders['content-type'], body, s.requestComplete, {
    headers: s.requestHeaders, totalBytes: s.requestBytes, fingerprinter: ctx.fingerprinter, protocol: ctx.protocol, policy, messagePrefixes: evidence !== undefined,
  });
  if (evidence && d.messagePrefixes) evidence.messagePrefixes = d.messagePrefixes;
  Object.assign(d.features, describeHeadersAndQuery(policy, s.requestHeaders, s.url, ctx.fingerprinter));
  if (s.traceContext) d.features.traceContext = s.traceContext;
  const serverTiming = anonymizeServerTiming(parseServerTiming(s.responseServerTiming ?? undefined), ctx.fingerprinter);
  if (serverTiming) d.features.serverTiming = serverTiming;
  if (s.websocket) {
    d.protocol = 'websocket';
    d.features.websocket = s.websocket;
  }
  let errorKind = s.errorKind;
  const answer = observeAnswer({
    protocol: d.protocol, status: s.status, contentType: s.responseContentType, inferenceHeader: s.responseInferenceHeader, body: s.responseBody,
    chunkEnds: s.responseChunkEnds, chunkAtUs: s.responseChunkAtUs, complete: s.responseComplete,
  });
  const stream = answer.format ? answer : null;
  if (stream) {
    if (stream.nonContentEvents.length > 0) d.features.nonContentEvents = stream.nonContentEvents;
    if (!s.responseComplete) d.features.eventsCapturedBytes = s.responseChunkEnds.at(-1) ?? 0;
    if (stream.ended === false && errorKind === null) errorKind = 'stream_truncated';
  }
  if (answer.features) Object.assign(d.features, answer.features);
  const outputTokens = answer.outputTokens;
  return {
    seq: s.seq,
    offsetUs: s.arrivalUs - ctx.startUs,
    method: s.method,
    route,
    protocol: d.protocol,
    status: s.status,
    errorKind,
    requestBytes: s.requestBytes,
    responseBytes: s.status === null ? null : s.responseBytes,
    ttfbUs: s.ttfbUs,
    ttftUs: stream?.ttftAtUs ?? null,
    latencyUs: s.endUs,
    streamed: stream !== null,
    eventCount: stream ? stream.eventAtUs.length : null,
    eventOffsetsUs: stream ? stream.eventAtUs : null,
    promptTokens: d.promptTokens,
    outputTokens,
    messageCount: d.messageCount,
    model: d.model,
    maxTokens: d.maxTokens,
    shape: d.shape,
    params: d.params,
    features: d.features,
  };
}
