import { subscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import { ByteCapture } from '../bytes.ts';
import { replayFailureOf, type ReplayFailure } from '../error-kinds.ts';
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
 * The whole-request timeout of this thread's replays, µs (null: none). Per thread (each sending thread sets its own
 * from its input), because the handler is built by the sending loop, which knows nothing of it.
 */
let requestTimeoutUs: number | null = null;
/** Requests in flight under the whole-request timeout, in the order they were sent (so in deadline order). */
const timed = new Set<ObservingHandler>();
let sweeper: NodeJS.Timeout | null = null;
let sweepMs = 1000;

/**
 * Sets the whole-request timeout (`--timeout`) of the requests this thread sends from now on: from the socket send to
 * the answer's last byte; a request still going then is cut, error kind `timeout`, detail `request_timeout`. 0 or null
 * for none. One value per thread: replays running at once in one thread share the last one set.
 *
 * Cost on the sending loop: one `Set` insertion when a request is written and one deletion when it ends. The check
 * itself is one timer for all requests (every twentieth of the timeout, 5 ms to 1 s), which stops at the first request
 * not yet due (they are due in send order): precise to about 5 % of the timeout.
 * @throws RangeError for a negative or non-finite value.
 */
export function setRequestTimeout(ms: number | null): void {
  if (ms !== null && !(ms >= 0 && Number.isFinite(ms))) throw new RangeError(`request timeout must be ≥ 0 ms, got ${ms}`);
  requestTimeoutUs = ms ? Math.round(ms * 1000) : null;
  sweepMs = ms ? Math.min(1000, Math.max(5, Math.floor(ms / 20))) : 1000;
  if (sweeper) {
    clearInterval(sweeper);
    sweeper = null;
  }
  if (timed.size > 0 && requestTimeoutUs !== null) startSweeper();
}

function startSweeper(): void {
  sweeper = setInterval(sweep, sweepMs);
  sweeper.unref();
}

function sweep(): void {
  const limit = requestTimeoutUs;
  for (const h of timed) {
    if (limit === null || !h.expireIfOlder(limit)) break;
  }
  if (timed.size === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = null;
  }
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
  private timedOut = false;
  private gaveUp = false;
  private patience: NodeJS.Timeout | null = null;
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
    if (requestTimeoutUs !== null) {
      timed.add(this);
      if (!sweeper) startSweeper();
    }
    writing = this;
    queueMicrotask(() => {
      if (writing === this) writing = null;
    });
  }

  /**
   * Cuts the request when it was sent more than `limitUs` ago (error kind `timeout`, detail `request_timeout`).
   * Returns false when it is not due yet. Called by the timeout's timer, never on the request's own path.
   */
  expireIfOlder(limitUs: number): boolean {
    const since = this.obs.sentUs ?? this.obs.dispatchedUs;
    if (since !== null && this.rel() - since < limitUs) return false;
    timed.delete(this);
    this.timedOut = true;
    this.abortFn?.(new Error('request timeout'));
    return true;
  }

  /** Called from the `sendHeaders` message. */
  headersWritten(socket: Socket): void {
    this.obs.sentUs = this.rel();
    this.socket = socket;
    // A client that gave up when it was recorded gives up as long after its send (a timer for those few requests only).
    if (this.obs.patienceUs !== null && !this.patience) this.patience = setTimeout(() => this.giveUp(), this.obs.patienceUs / 1000);
  }

  /** The recorded client's patience ran out: cut the request as that client did (`client_aborted`, `client_patience`). */
  private giveUp(): void {
    if (this.finished) return;
    this.gaveUp = true;
    this.abortFn?.(new Error('client patience'));
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
    this.end(this.cancelled ? { kind: 'client_aborted', detail: null } : this.gaveUp ? { kind: 'client_aborted', detail: 'client_patience' } : this.timedOut ? { kind: 'timeout', detail: 'request_timeout' } : replayFailureOf(err));
  }

  private end(failure: ReplayFailure | null): void {
    if (this.finished) return;
    this.finished = true;
    if (writing === this) writing = null;
    this.obs.endUs = this.rel();
    timed.delete(this);
    if (this.patience) clearTimeout(this.patience);
    if (failure) {
      this.obs.errorKind = failure.kind;
      this.obs.errorDetail = failure.detail;
    }
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
