import { Transform, type TransformCallback } from 'node:stream';
import { templateRoute } from '../anonymize/skeleton.ts';
import type { Fingerprinter } from '../anonymize/fingerprint.ts';
import { DEFAULT_POLICY, describeHeadersAndQuery, type CompiledPolicy } from '../anonymize/policy.ts';
import { describeRequest, mediaType, responseReader } from '../protocols/index.ts';
import { INFERENCE_HEADER } from '../protocols/kserve-v2.ts';
import { isGenerative, OpenAIStreamTracker } from '../protocols/openai.ts';
import type { IncomingHttpHeaders } from 'node:http';
import { EventSplitter, streamFormatOf } from '../protocols/sse.ts';
import type { ErrorKind, ProtocolId, TraceRecord, WebSocketSession } from '../types.ts';
import { parseServerTiming } from '../trace-context.ts';
import { monoUs } from '../units.ts';

/**
 * The state of one proxied exchange while it is in flight: timing marks (µs on the monotonic clock), byte counts, the
 * captured request body (bounded, in memory only, never written) and what the answer's events said. Turned into one
 * anonymized {@link TraceRecord} by {@link Exchange.toRecord} when the exchange ends.
 */
export class Exchange {
  readonly arrivalUs = monoUs();
  status: number | null = null;
  errorKind: ErrorKind | null = null;
  requestBytes = 0;
  responseBytes = 0;
  ttfbUs: number | null = null;
  ttftUs: number | null = null;
  endUs: number | null = null;
  eventOffsetsUs: number[] | null = null;
  private readonly reqChunks: Buffer[] = [];
  private reqCaptured = 0;
  private reqComplete = true;
  private respChunks: Buffer[] | null = null;
  private respCaptured = 0;
  private respJsonBytes: number | null = null;
  /** Whether the client sent a `traceparent` or the proxy added one. */
  traceContext: 'incoming' | 'added' | null = null;
  private serverTiming: Record<string, number> | null = null;
  private splitter: EventSplitter | null = null;
  private tracker: OpenAIStreamTracker | null = null;
  /** Indexes of the stream's events that carried no content. */
  private readonly nonContentEvents: number[] = [];
  /** Set when the request was a WebSocket upgrade the proxy accepted: the session's counters. */
  websocket: WebSocketSession | null = null;

  constructor(
    readonly seq: number,
    readonly method: string,
    readonly url: string,
    /** The request's headers: read for framing (content type, KServe binary header) when describing, never stored. */
    readonly requestHeaders: IncomingHttpHeaders,
    private readonly maxCaptureBytes: number,
  ) {}

  /** A pass-through stream that counts and (up to the limit) keeps the request body; forwards every byte unchanged. */
  requestTap(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb: TransformCallback) => {
        this.requestBytes += chunk.length;
        if (this.reqCaptured + chunk.length <= this.maxCaptureBytes) {
          this.reqChunks.push(chunk);
          this.reqCaptured += chunk.length;
        } else {
          this.reqComplete = false;
        }
        cb(null, chunk);
      },
    });
  }

  /** Marks the upstream's response headers and returns a pass-through tap for the response body. */
  responseTap(status: number, headers: IncomingHttpHeaders): Transform {
    this.ttfbUs = monoUs() - this.arrivalUs;
    this.status = status;
    const contentType = headers['content-type'];
    this.serverTiming = parseServerTiming(headers['server-timing']);
    const format = streamFormatOf(contentType);
    const binaryJson = Number(headers[INFERENCE_HEADER]);
    if (format) {
      this.splitter = new EventSplitter(format);
      this.tracker = new OpenAIStreamTracker();
      this.eventOffsetsUs = [];
    } else if (mediaType(contentType) === 'application/json') {
      this.respChunks = [];
    } else if (Number.isInteger(binaryJson) && binaryJson > 0) {
      this.respChunks = [];
      this.respJsonBytes = binaryJson;
    }
    return new Transform({
      transform: (chunk: Buffer, _enc, cb: TransformCallback) => {
        this.responseBytes += chunk.length;
        if (this.splitter) {
          const at = monoUs() - this.arrivalUs;
          for (const ev of this.splitter.push(chunk)) {
            const content = this.splitter.format === 'sse' ? this.tracker!.onData(ev.data) : ndjsonContent(ev.data);
            if (!content) this.nonContentEvents.push(this.eventOffsetsUs!.length);
            this.eventOffsetsUs!.push(at);
            if (content && this.ttftUs === null) this.ttftUs = at;
          }
        } else if (this.respChunks && this.respCaptured + chunk.length <= this.maxCaptureBytes) {
          this.respChunks.push(chunk);
          this.respCaptured += chunk.length;
        }
        cb(null, chunk);
      },
    });
  }

  /** Marks the request as an accepted WebSocket upgrade (status 101) and starts its session counters. */
  upgraded(): WebSocketSession {
    this.status = 101;
    this.ttfbUs = monoUs() - this.arrivalUs;
    this.websocket = { messagesFromClient: 0, messagesFromServer: 0, bytesFromClient: 0, bytesFromServer: 0, firstServerMessageUs: null, closeCode: null, closedBy: null };
    return this.websocket;
  }

  /** Sets the error kind unless one is already known (the first cause wins). */
  fail(kind: ErrorKind): void {
    if (this.errorKind === null) this.errorKind = kind;
  }

  /**
   * The raw request (URL with query, headers, body as captured up to the limit) — only for `--capture-raw`, the one
   * explicit opt-in that lets values reach a file.
   */
  rawRequest(headers: Record<string, unknown>): RawRequest {
    return { url: this.url, headers, body: this.reqChunks.length > 0 ? Buffer.concat(this.reqChunks) : null };
  }

  /**
   * Builds the anonymized record once the exchange ended; `startUs` is the trace's offset 0. Async because some
   * bodies (multipart) are parsed by a streaming parser.
   */
  async toRecord(startUs: number, opts: { fingerprinter?: Fingerprinter | null; protocol?: ProtocolId; policy?: CompiledPolicy } = {}): Promise<TraceRecord> {
    const route = templateRoute(this.url);
    const body = this.reqChunks.length > 0 ? Buffer.concat(this.reqChunks) : null;
    const policy = opts.policy ?? DEFAULT_POLICY;
    const d = await describeRequest(this.method, route, this.requestHeaders['content-type'], body, this.reqComplete, {
      headers: this.requestHeaders, totalBytes: this.requestBytes, fingerprinter: opts.fingerprinter, protocol: opts.protocol, policy,
    });
    Object.assign(d.features, describeHeadersAndQuery(policy, this.requestHeaders, this.url));
    if (this.traceContext) d.features.traceContext = this.traceContext;
    if (this.serverTiming) d.features.serverTiming = this.serverTiming;
    if (this.nonContentEvents.length > 0) d.features.nonContentEvents = this.nonContentEvents;
    if (this.websocket) {
      d.protocol = 'websocket';
      d.features.websocket = this.websocket;
    }
    let outputTokens: number | null = null;
    if (this.tracker) {
      if (isGenerative(d.protocol)) {
        outputTokens = this.tracker.result().outputTokens;
        if (!this.tracker.done && this.errorKind === null && this.splitter?.format === 'sse') this.errorKind = 'stream_truncated';
      }
    } else if (this.respChunks && this.respChunks.length > 0) {
      const read = responseReader(d.protocol);
      if (read) {
        try {
          const all = Buffer.concat(this.respChunks);
          const r = read(JSON.parse((this.respJsonBytes === null ? all : all.subarray(0, this.respJsonBytes)).toString('utf8')));
          outputTokens = r.outputTokens ?? null;
          if (r.features) Object.assign(d.features, r.features);
        } catch {
          // an answer that is not the JSON it claims: nothing more to learn from it
        }
      }
    }
    const streamed = this.eventOffsetsUs !== null;
    return {
      seq: this.seq,
      offsetUs: this.arrivalUs - startUs,
      method: this.method,
      route,
      protocol: d.protocol,
      status: this.status,
      errorKind: this.errorKind,
      requestBytes: this.requestBytes,
      responseBytes: this.status === null ? null : this.responseBytes,
      ttfbUs: this.ttfbUs,
      ttftUs: this.ttftUs,
      latencyUs: this.endUs === null ? null : this.endUs - this.arrivalUs,
      streamed,
      eventCount: streamed ? this.eventOffsetsUs!.length : null,
      eventOffsetsUs: this.eventOffsetsUs,
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
}

/** A request exactly as the client sent it (raw capture only). */
export interface RawRequest {
  url: string;
  headers: Record<string, unknown>;
  body: Buffer | null;
}

function ndjsonContent(line: string): boolean {
  try {
    const o = JSON.parse(line) as { token?: { text?: unknown }; response?: unknown; message?: { content?: unknown }; done?: unknown };
    return (typeof o.token?.text === 'string' && o.token.text.length > 0) || (typeof o.response === 'string' && o.response.length > 0) || (typeof o.message?.content === 'string' && o.message.content.length > 0);
  } catch {
    return false;
  }
}
