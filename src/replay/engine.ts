import { EventEmitter, setMaxListeners } from 'node:events';
import { Pool } from 'undici';
import { upstreamErrorKind } from '../error-kinds.ts';
import { TracewarpError } from '../errors.ts';
import { extractOpenAIResponse, OpenAIStreamTracker } from '../protocols/openai.ts';
import { EventSplitter, streamFormatOf } from '../protocols/sse.ts';
import type { RequestResult } from '../results/types.ts';
import { parseServerTiming, replayTraceparent } from '../trace-context.ts';
import { monoUs } from '../units.ts';

/** One request of the workload, ready to send at `scheduledUs` (µs after the run's offset 0). */
export interface PlannedRequest {
  index: number;
  traceSeq: number;
  scheduledUs: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | null;
  expectedOutputTokens: number | null;
  promptTokens: number | null;
  /** True for OpenAI chat/completions requests (their answers are read for output tokens). */
  llm: boolean;
  /** Anomaly label (e.g. `oversize`), kept in the results; null for normal traffic. */
  label?: string | null;
}

/** Options of the open-loop replayer. Times in ms unless named otherwise. */
export interface ReplayEngineOptions {
  /** Base URL of the server under test. */
  target: string;
  /**
   * Requests in flight at most. When reached, a due request waits for a free slot (`capPolicy: 'queue'`, counted
   * as cap-delayed, its lateness recorded) or is not sent at all (`'drop'`, error kind `dropped`). The schedule of the
   * other requests never moves. Default: no cap.
   */
  maxInFlight?: number;
  capPolicy?: 'queue' | 'drop';
  /** Connections to open before the first send (warm-up `GET /`, answers ignored). Default min(8, cap); 0 for none. */
  warmupConnections?: number;
  /** Time to wait for response headers. Default 600,000 ms. */
  headersTimeoutMs?: number;
  /** Longest silence between two chunks of a body. Default 300,000 ms. */
  idleTimeoutMs?: number;
  /** How far ahead of the first send the clock starts, so the first requests are not late by construction. Default 50 ms. */
  leadMs?: number;
  /** Headers added to every request (e.g. credentials for the target), overriding synthesized ones. */
  headers?: Record<string, string>;
  /**
   * Run id: every request then carries a W3C `traceparent` derived from it and its index, plus `x-tracewarp-run` and
   * `x-tracewarp-seq`, so server logs and traces join with the results.
   */
  runId?: string;
}

/** Progress snapshot emitted (as `progress`) about every 250 ms and once at the end. */
export interface ReplayProgress {
  total: number | null;
  scheduled: number;
  sent: number;
  done: number;
  inFlight: number;
  errors: number;
}

/**
 * Open-loop replay on an absolute schedule (DESIGN decision 1): request i is sent at `start + scheduledUs(i)` on the
 * monotonic clock, never "sleep the gap"; when behind it sends at once and records the lateness. Responses are read
 * as they stream (TTFB, first content event, events, bytes, output tokens). Failures are data: every planned request
 * yields exactly one {@link RequestResult} through `onResult`.
 *
 * Events: `progress` ({@link ReplayProgress}).
 */
export class ReplayEngine extends EventEmitter {
  private readonly pool: Pool;
  private readonly origin: string;
  private readonly basePath: string;
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];
  private stats = { scheduled: 0, sent: 0, done: 0, errors: 0 };
  private stopRequested = false;

  /** @throws TracewarpError `TW_TARGET` when `target` is not an http(s) URL. */
  constructor(private readonly opts: ReplayEngineOptions) {
    super();
    let u: URL;
    try {
      u = new URL(opts.target);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw new TracewarpError('TW_TARGET', `--target must be an http:// or https:// URL, got '${opts.target}'`);
    }
    this.origin = u.origin;
    this.basePath = u.pathname.replace(/\/$/, '');
    this.pool = new Pool(this.origin, {
      connections: opts.maxInFlight ?? null,
      pipelining: 1,
      headersTimeout: opts.headersTimeoutMs ?? 600_000,
      bodyTimeout: opts.idleTimeoutMs ?? 300_000,
      keepAliveTimeout: 60_000,
    });
  }

  /** Asks a running replay to stop sending; requests in flight still finish and are reported. */
  stop(): void {
    this.stopRequested = true;
  }

  /** Cuts every request in flight now (each is reported with error kind `client_aborted`). */
  abortInFlight(): void {
    this.stopRequested = true;
    this.abort.abort();
  }

  // One signal for every request in flight (each adds a listener): no listener limit, no leak warning.
  private readonly abort = (() => {
    const c = new AbortController();
    setMaxListeners(0, c.signal);
    return c;
  })();

  /**
   * Sends the workload. `source` yields requests in schedule order (it may synthesize lazily); `total` is only for
   * progress. Resolves when every sent request has finished.
   * @returns the run's offset 0 on the monotonic clock (µs) and the wall clock (ms since epoch) at that moment.
   */
  async run(source: Iterable<PlannedRequest>, onResult: (r: RequestResult) => void, total: number | null = null): Promise<{ startMonoUs: number; startWallMs: number }> {
    await this.warmup();
    const it = source[Symbol.iterator]();
    const ahead: PlannedRequest[] = [];
    let exhausted = false;
    const pull = (): void => {
      const n = it.next();
      if (n.done) exhausted = true;
      else ahead.push(n.value);
    };
    // Synthesize the first requests before the clock starts (the first synthesis also loads the tokenizer).
    const prefetchUntil = monoUs() + 200_000;
    while (!exhausted && ahead.length < 256 && monoUs() < prefetchUntil) pull();
    const leadUs = (this.opts.leadMs ?? 50) * 1000;
    const startMonoUs = monoUs() + leadUs;
    const startWallMs = Date.now() + leadUs / 1000;
    const pending = new Set<Promise<void>>();
    const progress = setInterval(() => this.emitProgress(total), 250);
    let burst = 0;
    try {
      while (!this.stopRequested) {
        if (ahead.length === 0) pull();
        const req = ahead[0];
        if (!req) break;
        const dueUs = startMonoUs + req.scheduledUs;
        // Use idle time to synthesize the next requests, so a long prompt never makes a send late.
        while (!exhausted && ahead.length < 256 && dueUs - monoUs() > 2000) pull();
        if (dueUs - monoUs() > 0) burst = 0;
        await waitUntil(dueUs, () => this.stopRequested);
        if (this.stopRequested) break;
        ahead.shift();
        this.stats.scheduled++;
        const p = this.dispatch(req, startMonoUs, onResult);
        pending.add(p);
        void p.finally(() => pending.delete(p));
        // When far behind, still let I/O run now and then.
        if (++burst % 64 === 0) await new Promise((r) => setImmediate(r));
      }
      await Promise.all(pending);
    } finally {
      clearInterval(progress);
      this.emitProgress(total);
    }
    return { startMonoUs, startWallMs };
  }

  /** Closes the connection pool. */
  async close(): Promise<void> {
    await this.pool.close();
  }

  private emitProgress(total: number | null): void {
    const p: ReplayProgress = { total, ...this.stats, inFlight: this.inFlight };
    this.emit('progress', p);
  }

  /**
   * The path sent for a recorded path: the target's path goes in front, unless the recorded path already begins
   * with it (`--target http://host/v1`, the usual OpenAI base URL, sends `/v1/chat/completions`, not `/v1/v1/…`).
   */
  private targetPath(recorded: string): string {
    if (this.basePath === '' || recorded === this.basePath || recorded.startsWith(this.basePath + '/') || recorded.startsWith(this.basePath + '?')) return recorded;
    return this.basePath + recorded;
  }

  private async warmup(): Promise<void> {
    const n = this.opts.warmupConnections ?? Math.min(8, this.opts.maxInFlight ?? 8);
    await Promise.all(Array.from({ length: n }, async () => {
      try {
        const r = await this.pool.request({ method: 'GET', path: this.basePath + '/', headersTimeout: 5000, bodyTimeout: 5000 });
        await r.body.dump();
      } catch {
        // the target may be down now and up later: the replay itself will record what happens
      }
    }));
  }

  private async dispatch(req: PlannedRequest, startUs: number, onResult: (r: RequestResult) => void): Promise<void> {
    const result: RequestResult = {
      index: req.index, traceSeq: req.traceSeq, scheduledUs: req.scheduledUs, sentUs: null, ttfbAtUs: null, ttftAtUs: null,
      endUs: null, status: null, errorKind: null, requestBytes: req.body?.length ?? 0, responseBytes: 0, streamed: false,
      eventCount: 0, outputTokens: null, expectedOutputTokens: req.expectedOutputTokens, promptTokens: req.promptTokens, capDelayed: false, label: req.label ?? null,
    };
    const cap = this.opts.maxInFlight;
    if (cap !== undefined && this.inFlight >= cap) {
      if ((this.opts.capPolicy ?? 'queue') === 'drop') {
        result.errorKind = 'dropped';
        this.finish(result, onResult);
        return;
      }
      result.capDelayed = true;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.inFlight++;
    const rel = () => monoUs() - startUs;
    try {
      result.sentUs = rel();
      this.stats.sent++;
      let headers = this.opts.headers ? { ...req.headers, ...this.opts.headers } : req.headers;
      if (this.opts.runId) {
        const tc = replayTraceparent(this.opts.runId, req.index);
        headers = { ...headers, traceparent: tc.traceparent, 'x-tracewarp-run': this.opts.runId, 'x-tracewarp-seq': String(req.index) };
        result.traceId = tc.traceId;
      }
      const res = await this.pool.request({ method: req.method, path: this.targetPath(req.path), headers, body: req.body, signal: this.abort.signal });
      result.ttfbAtUs = rel();
      result.status = res.statusCode;
      result.serverTiming = parseServerTiming(res.headers['server-timing']);
      const format = streamFormatOf(res.headers['content-type'] as string | undefined);
      if (format) {
        result.streamed = true;
        const splitter = new EventSplitter(format);
        const tracker = new OpenAIStreamTracker();
        const itl: number[] = [];
        let lastContent = -1;
        for await (const chunk of res.body) {
          result.responseBytes += (chunk as Buffer).length;
          const at = rel();
          for (const ev of splitter.push(chunk as Buffer)) {
            result.eventCount++;
            if (!tracker.onData(ev.data)) continue;
            if (result.ttftAtUs === null) result.ttftAtUs = at;
            else itl.push(at - lastContent);
            lastContent = at;
          }
        }
        result.itlUs = itl;
        if (req.llm) result.outputTokens = tracker.result().outputTokens;
        if (req.llm && format === 'sse' && !tracker.done && res.statusCode < 400) result.errorKind = 'stream_truncated';
      } else {
        const chunks: Buffer[] = [];
        for await (const chunk of res.body) {
          result.responseBytes += (chunk as Buffer).length;
          if (req.llm && result.responseBytes < 16 << 20) chunks.push(chunk as Buffer);
        }
        if (req.llm && res.statusCode < 400) {
          try {
            result.outputTokens = extractOpenAIResponse(JSON.parse(Buffer.concat(chunks).toString('utf8'))).outputTokens;
          } catch {
            result.outputTokens = null;
          }
        }
      }
    } catch (err) {
      result.errorKind = this.abort.signal.aborted ? 'client_aborted' : upstreamErrorKind(err);
    } finally {
      result.endUs = rel();
      this.inFlight--;
      this.waiting.shift()?.();
    }
    this.finish(result, onResult);
  }

  private finish(result: RequestResult, onResult: (r: RequestResult) => void): void {
    this.stats.done++;
    if (result.errorKind !== null || (result.status !== null && result.status >= 400)) this.stats.errors++;
    onResult(result);
  }
}

/**
 * Resolves at (or just after) the monotonic time `dueUs`, or as soon as `stop()` is true: timers for the bulk of the
 * wait, then `setImmediate` turns for the last 1.5 ms so the send is not late by a timer's granularity, while I/O
 * keeps being served.
 */
export async function waitUntil(dueUs: number, stop: () => boolean = () => false): Promise<void> {
  for (;;) {
    const left = dueUs - monoUs();
    if (left <= 0 || stop()) return;
    // Long waits go in pieces of at most 250 ms, so a stop request takes effect promptly.
    if (left > 1500) await new Promise((r) => setTimeout(r, Math.min(250, Math.floor((left - 1000) / 1000))));
    else await new Promise((r) => setImmediate(r));
  }
}
