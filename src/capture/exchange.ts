import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { ByteCapture } from '../bytes.ts';
import type { ErrorKind, WebSocketSession } from '../types.ts';
import { monoUs } from '../units.ts';

/**
 * Everything the recorder needs to describe one finished exchange, as plain data that crosses to the recorder thread
 * (the bodies' buffers are transferred, not copied). Times are µs: `arrivalUs` on the monotonic clock, the others
 * from the arrival.
 */
export interface ExchangeSnapshot {
  seq: number;
  method: string;
  url: string;
  /** Read for framing (content type, KServe binary header) when describing; never stored. */
  requestHeaders: IncomingHttpHeaders;
  arrivalUs: number;
  status: number | null;
  errorKind: ErrorKind | null;
  requestBytes: number;
  responseBytes: number;
  ttfbUs: number | null;
  endUs: number | null;
  /** The request body as captured (up to the capture bound) and whether that is all of it. */
  requestBody: Uint8Array | null;
  requestComplete: boolean;
  /** The answer's `content-type`, `server-timing` and KServe binary-header length. */
  responseContentType: string | null;
  responseServerTiming: string | string[] | null;
  responseInferenceHeader: string | null;
  /** The answer's captured bytes (streams and JSON answers only), where each chunk ended and when it arrived. */
  responseBody: Uint8Array | null;
  responseChunkEnds: number[];
  responseChunkAtUs: number[];
  responseComplete: boolean;
  traceContext: 'incoming' | 'added' | null;
  websocket: WebSocketSession | null;
}

/** Media types whose answers are kept to be read: streams (for events and output tokens) and JSON. */
function capturedAnswer(contentType: string | undefined, inferenceHeader: string | undefined): boolean {
  const ct = (contentType ?? '').toLowerCase();
  return ct.startsWith('text/event-stream') || ct.includes('ndjson') || ct.includes('jsonl') || ct.startsWith('application/json') || ct.includes('+json') || Number(inferenceHeader) > 0;
}

/**
 * The state of one proxied exchange while it is in flight, on the loop that forwards it: timing marks (µs on the
 * monotonic clock), byte counts and the captured bodies (bounded, in memory only). Nothing is parsed here: the
 * {@link snapshot} goes to the recorder thread, which describes it (`capture/describe.ts`).
 */
export class Exchange {
  readonly arrivalUs = monoUs();
  status: number | null = null;
  errorKind: ErrorKind | null = null;
  requestBytes = 0;
  responseBytes = 0;
  ttfbUs: number | null = null;
  endUs: number | null = null;
  /** Whether the client sent a `traceparent` or the proxy added one. */
  traceContext: 'incoming' | 'added' | null = null;
  /** Set when the request was a WebSocket upgrade the proxy accepted: the session's counters. */
  websocket: WebSocketSession | null = null;
  private readonly request: ByteCapture;
  private response: ByteCapture | null = null;
  private responseHeaders: IncomingHttpHeaders | null = null;

  constructor(
    readonly seq: number,
    readonly method: string,
    readonly url: string,
    /** The request's headers: read for framing when describing, never stored. */
    readonly requestHeaders: IncomingHttpHeaders,
    private readonly maxCaptureBytes: number,
    /** False when it will not be recorded (the recorder's queue was full as it began): its bodies are not copied. */
    readonly recorded = true,
  ) {
    this.request = new ByteCapture(recorded ? maxCaptureBytes : 0, Number(requestHeaders['content-length']) || 0);
  }

  /** A pass-through stream that counts and (up to the limit) keeps the request body; forwards every byte unchanged. */
  requestTap(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb: TransformCallback) => {
        this.requestBytes += chunk.length;
        this.request.push(chunk);
        cb(null, chunk);
      },
    });
  }

  /** Marks the upstream's response headers and returns a pass-through tap for the response body. */
  responseTap(status: number, headers: IncomingHttpHeaders): Transform {
    this.ttfbUs = monoUs() - this.arrivalUs;
    this.status = status;
    this.responseHeaders = headers;
    const inference = headers['inference-header-content-length'];
    if (this.recorded && capturedAnswer(headers['content-type'], typeof inference === 'string' ? inference : undefined)) this.response = new ByteCapture(this.maxCaptureBytes);
    return new Transform({
      transform: (chunk: Buffer, _enc, cb: TransformCallback) => {
        this.responseBytes += chunk.length;
        this.response?.push(chunk, monoUs() - this.arrivalUs);
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

  /** The exchange as plain data for the recorder; the captured buffers are handed over (call once, at the end). */
  snapshot(): ExchangeSnapshot {
    const req = this.request.result();
    const res = this.response?.result() ?? null;
    const h = this.responseHeaders;
    const inference = h?.['inference-header-content-length'];
    return {
      seq: this.seq, method: this.method, url: this.url, requestHeaders: this.requestHeaders, arrivalUs: this.arrivalUs, status: this.status,
      errorKind: this.errorKind, requestBytes: this.requestBytes, responseBytes: this.responseBytes, ttfbUs: this.ttfbUs,
      endUs: this.endUs === null ? null : this.endUs - this.arrivalUs, requestBody: req.bytes, requestComplete: req.complete,
      responseContentType: (h?.['content-type'] as string | undefined) ?? null, responseServerTiming: h?.['server-timing'] ?? null,
      responseInferenceHeader: typeof inference === 'string' ? inference : null, responseBody: res?.bytes ?? null,
      responseChunkEnds: res?.chunkEnds ?? [], responseChunkAtUs: res?.chunkAtUs ?? [], responseComplete: res?.complete ?? true,
      traceContext: this.traceContext, websocket: this.websocket,
    };
  }
}

/** A request exactly as the client sent it (raw capture only). */
export interface RawRequest {
  url: string;
  headers: Record<string, unknown>;
  body: Buffer | null;
}
