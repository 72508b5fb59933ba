import { subscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import { ByteCapture } from '../bytes.ts';
import { upstreamErrorKind } from '../error-kinds.ts';
import type { RawObservation } from './types.ts';

/**
 * The handler whose request is being written to its socket now. undici calls a handler's `onConnect` and then, in the
 * same synchronous step (`writeH1`), publishes `undici:client:sendHeaders` and writes the headers: the first such
 * message after an `onConnect` is that request's.
 */
let writing: ObservingHandler | null = null;
let subscribed = false;

function onSendHeaders(message: unknown): void {
  const h = writing;
  writing = null;
  h?.headersWritten((message as { socket: Socket }).socket);
}

/**
 * An undici dispatch handler (the callback API, called from the HTTP parser as bytes arrive) that only takes
 * timestamps and copies the answer's bytes into one buffer; nothing is parsed here. The response observer reads the
 * bytes later, in another thread. Times come from `rel()` (µs from the run's offset 0).
 *
 * - `sentUs`: the request's headers are written to the socket (`undici:client:sendHeaders`), after any wait for a
 *   connection; `bodySentUs`: the socket drained the last body byte into the kernel.
 * - `ttfbAtUs`: the response headers were parsed; every body chunk's arrival time is kept.
 */
export class ObservingHandler implements Dispatcher.DispatchHandler {
  private abortFn: ((err?: Error) => void) | null = null;
  private cancelled = false;
  private socket: Socket | null = null;
  private capture: ByteCapture | null = null;
  private finished = false;

  constructor(
    readonly obs: RawObservation,
    private readonly rel: () => number,
    private readonly maxCaptureBytes: number,
    private readonly done: (h: ObservingHandler) => void,
  ) {
    if (!subscribed) {
      subscribe('undici:client:sendHeaders', onSendHeaders);
      subscribed = true;
    }
  }

  /** Cuts the request (error kind `client_aborted`), now or as soon as it gets a connection. */
  cancel(): void {
    this.cancelled = true;
    this.abortFn?.(new Error('replay aborted'));
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.cancelled) {
      abort(new Error('replay aborted'));
      return;
    }
    this.abortFn = abort;
    writing = this;
    queueMicrotask(() => {
      if (writing === this) writing = null;
    });
  }

  /** Called from the `sendHeaders` message. */
  headersWritten(socket: Socket): void {
    this.obs.sentUs = this.rel();
    this.socket = socket;
  }

  /** undici calls this after the last body byte was handed to the socket (not in its published handler types). */
  onRequestSent(): void {
    const s = this.socket;
    if (s && s.writableLength > 0) s.once('drain', () => (this.obs.bodySentUs ??= this.rel()));
    else this.obs.bodySentUs = this.rel();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | null, _resume: () => void): boolean {
    if (statusCode < 200) return true; // an informational answer (1xx) comes before the real one
    this.obs.ttfbAtUs = this.rel();
    this.obs.status = statusCode;
    const raw = rawHeaders ?? [];
    let length = 0;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!.toString().toLowerCase();
      if (name === 'content-type') this.obs.contentType = raw[i + 1]!.toString();
      else if (name === 'content-length') length = Number(raw[i + 1]!.toString()) || 0;
      else if (name === 'server-timing') this.obs.serverTiming = this.obs.serverTiming ? `${this.obs.serverTiming}, ${raw[i + 1]!.toString()}` : raw[i + 1]!.toString();
    }
    const ct = this.obs.contentType?.toLowerCase() ?? '';
    // Streams are read event by event, LLM answers for their output tokens: keep those bytes; count the others.
    if (ct.startsWith('text/event-stream') || ct.includes('ndjson') || ct.includes('jsonl') || (this.obs.llm && statusCode < 400)) this.capture = new ByteCapture(this.maxCaptureBytes, length);
    return true;
  }

  onData(chunk: Buffer): boolean {
    const at = this.rel();
    this.obs.responseBytes += chunk.length;
    this.capture?.push(chunk, at);
    return true;
  }

  onComplete(): void {
    this.end(null);
  }

  onError(err: Error): void {
    this.end(this.cancelled ? 'client_aborted' : upstreamErrorKind(err));
  }

  private end(kind: RawObservation['errorKind']): void {
    if (this.finished) return;
    this.finished = true;
    if (writing === this) writing = null;
    this.obs.endUs = this.rel();
    if (kind) this.obs.errorKind = kind;
    if (this.capture) {
      const c = this.capture.result();
      this.obs.body = c.bytes;
      this.obs.chunkEnds = c.chunkEnds;
      this.obs.chunkAtUs = c.chunkAtUs;
      this.obs.captureComplete = c.complete;
      this.capture = null;
    }
    this.done(this);
  }
}
