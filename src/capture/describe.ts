import { templateRoute } from '../anonymize/skeleton.ts';
import type { Fingerprinter } from '../anonymize/fingerprint.ts';
import { DEFAULT_POLICY, describeHeadersAndQuery, type CompiledPolicy } from '../anonymize/policy.ts';
import { describeRequest, responseReader } from '../protocols/index.ts';
import { isGenerative, OpenAIStreamTracker } from '../protocols/openai.ts';
import { EventSplitter, streamFormatOf } from '../protocols/sse.ts';
import type { Features, ProtocolId, TraceRecord } from '../types.ts';
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

/** What a streamed answer's events said: when each arrived, which carried no content, TTFT, output tokens. */
interface StreamFacts {
  eventOffsetsUs: number[];
  nonContentEvents: number[];
  ttftUs: number | null;
  tracker: OpenAIStreamTracker;
  format: 'sse' | 'ndjson';
}

/** Splits a captured stream into events in the chunks they arrived in; each event takes its chunk's arrival time. */
function streamFacts(s: ExchangeSnapshot, format: 'sse' | 'ndjson'): StreamFacts {
  const splitter = new EventSplitter(format);
  const tracker = new OpenAIStreamTracker();
  const f: StreamFacts = { eventOffsetsUs: [], nonContentEvents: [], ttftUs: null, tracker, format };
  const bytes = s.responseBody ? Buffer.from(s.responseBody.buffer, s.responseBody.byteOffset, s.responseBody.byteLength) : null;
  let from = 0;
  for (let c = 0; c < s.responseChunkEnds.length && bytes; c++) {
    const at = s.responseChunkAtUs[c]!;
    for (const ev of splitter.push(bytes.subarray(from, s.responseChunkEnds[c]!))) {
      const content = format === 'sse' ? tracker.onData(ev.data) : ndjsonContent(ev.data);
      if (!content) f.nonContentEvents.push(f.eventOffsetsUs.length);
      f.eventOffsetsUs.push(at);
      if (content && f.ttftUs === null) f.ttftUs = at;
    }
    from = s.responseChunkEnds[c]!;
  }
  return f;
}

/** Output tokens and features of a complete JSON answer, through the protocol's response reader. */
function answerFacts(s: ExchangeSnapshot, protocol: ProtocolId): { outputTokens: number | null; features?: Features } {
  const read = responseReader(protocol);
  if (!read || !s.responseBody || !s.responseComplete) return { outputTokens: null };
  try {
    const all = Buffer.from(s.responseBody.buffer, s.responseBody.byteOffset, s.responseBody.byteLength);
    const jsonBytes = Number(s.responseInferenceHeader);
    const r = read(JSON.parse((Number.isInteger(jsonBytes) && jsonBytes > 0 ? all.subarray(0, jsonBytes) : all).toString('utf8')));
    return { outputTokens: r.outputTokens ?? null, features: r.features };
  } catch {
    return { outputTokens: null }; // an answer that is not the JSON it claims: nothing more to learn from it
  }
}

/**
 * Builds the anonymized record of a finished exchange (DESIGN decision 2): the request described by its protocol
 * adapter, headers and query by the policy, the answer's stream events and output tokens. Runs in the recorder
 * thread, never on the loop that forwards. Async because some bodies (multipart) are parsed by a streaming parser.
 */
export async function describeExchange(s: ExchangeSnapshot, ctx: DescribeContext): Promise<TraceRecord> {
  const route = templateRoute(s.url);
  const body = s.requestBody ? Buffer.from(s.requestBody.buffer, s.requestBody.byteOffset, s.requestBody.byteLength) : null;
  const policy = ctx.policy ?? DEFAULT_POLICY;
  const d = await describeRequest(s.method, route, s.requestHeaders['content-type'], body, s.requestComplete, {
    headers: s.requestHeaders, totalBytes: s.requestBytes, fingerprinter: ctx.fingerprinter, protocol: ctx.protocol, policy,
  });
  Object.assign(d.features, describeHeadersAndQuery(policy, s.requestHeaders, s.url));
  if (s.traceContext) d.features.traceContext = s.traceContext;
  const serverTiming = parseServerTiming(s.responseServerTiming ?? undefined);
  if (serverTiming) d.features.serverTiming = serverTiming;
  if (s.websocket) {
    d.protocol = 'websocket';
    d.features.websocket = s.websocket;
  }
  let errorKind = s.errorKind;
  let outputTokens: number | null = null;
  const format = s.status !== null ? streamFormatOf(s.responseContentType) : null;
  const stream = format ? streamFacts(s, format) : null;
  if (stream) {
    if (stream.nonContentEvents.length > 0) d.features.nonContentEvents = stream.nonContentEvents;
    if (!s.responseComplete) d.features.eventsCapturedBytes = s.responseChunkEnds.at(-1) ?? 0;
    if (isGenerative(d.protocol)) {
      outputTokens = stream.tracker.result().outputTokens;
      if (!stream.tracker.done && errorKind === null && format === 'sse' && s.responseComplete) errorKind = 'stream_truncated';
    }
  } else if (s.responseBody) {
    const a = answerFacts(s, d.protocol);
    outputTokens = a.outputTokens;
    if (a.features) Object.assign(d.features, a.features);
  }
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
    ttftUs: stream?.ttftUs ?? null,
    latencyUs: s.endUs,
    streamed: stream !== null,
    eventCount: stream ? stream.eventOffsetsUs.length : null,
    eventOffsetsUs: stream ? stream.eventOffsetsUs : null,
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

function ndjsonContent(line: string): boolean {
  try {
    const o = JSON.parse(line) as { token?: { text?: unknown }; response?: unknown; message?: { content?: unknown }; done?: unknown };
    return (typeof o.token?.text === 'string' && o.token.text.length > 0) || (typeof o.response === 'string' && o.response.length > 0) || (typeof o.message?.content === 'string' && o.message.content.length > 0);
  } catch {
    return false;
  }
}
