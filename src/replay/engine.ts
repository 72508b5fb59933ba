import { pathOnTarget } from '../address.ts';
import { EventEmitter } from 'node:events';
import { Pool } from 'undici';
import { TracewarpError } from '../errors.ts';
import { replayTraceparent } from '../trace-context.ts';
import { monoUs } from '../units.ts';
import { LoopMonitor, type LoopHealthSample } from './health.ts';
import { ObservingHandler } from './http.ts';
import type { PlannedRequest, RawObservation, RequestSource } from './types.ts';

export type { PlannedRequest, RawObservation, RequestSource } from './types.ts';

/** Answer bytes kept per request for the response observer (streams and LLM answers); the rest is counted. */
export const DEFAULT_MAX_CAPTURE_BYTES = 16 * 1024 * 1024;

/** Options of the open-loop sending loop. Times in ms unless named otherwise. */
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
  /** Headers added to every request (e.g. credentials for the target), overriding synthesized ones. */
  headers?: Record<string, string>;
  /**
   * Run id: every request then carries a W3C `traceparent` derived from it and its index, plus `x-tracewarp-run` and
   * `x-tracewarp-seq`, so server logs and traces join with the results.
   */
  runId?: string;
  /** Which sending loop this is (0-based), kept in every observation. Default 0. */
  sender?: number;
  /** Answer bytes captured per request. Default {@link DEFAULT_MAX_CAPTURE_BYTES}. */
  maxCaptureBytes?: number;
  /**
   * Closed-loop sessions (`sessions/schedule.ts`), by request index: a request whose `parent` is ≥ 0 is not sent on
   * the schedule but `thinkUs` after its parent's answer ended (its due time, from which its lateness counts). The
   * parent must be sent by the same loop. Absent: every request on the schedule (open loop).
   */
  sessions?: { parent: Int32Array; thinkUs: Float64Array };
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

/** Yield to I/O after this many sends in a row (a loop behind its schedule still reads answers and timestamps them). */
const BURST = 64;

/**
 * The open-loop sending loop (DESIGN decision 1): request i is sent at `start + scheduledUs(i)` on the monotonic
 * clock, never "sleep the gap"; when behind it sends at once and the lateness shows. It only waits, writes, reads and
 * timestamps: bodies come ready from a {@link RequestSource} (synthesized elsewhere), answers leave as
 * {@link RawObservation}s for a response observer elsewhere. A body not ready at its due time is sent the moment it
 * is, and its lateness is counted (`readyLagUs`), never hidden. Failures are data: every request the loop reaches
 * yields exactly one observation. It measures itself meanwhile ({@link LoopMonitor}).
 *
 * Events: `progress` ({@link ReplayProgress}).
 */
export class ReplayEngine extends EventEmitter {
  private readonly pool: Pool;
  private readonly basePath: string;
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];
  private stats = { scheduled: 0, sent: 0, done: 0, errors: 0 };
  private stopRequested = false;
  private aborted = false;
  private readonly handlers = new Set<ObservingHandler>();
  /** Requests due whose body is not ready yet (they are sent when it is). */
  private readonly awaitingBody = new Map<number, () => void>();
  private outstanding = 0;
  private drained: (() => void) | null = null;
  /** Follow-up turns by the index they wait for (closed-loop sessions). */
  private children: Map<number, number[]> | null = null;
  private running: { source: RequestSource; sink: (o: RawObservation) => void; rel: () => number; startMonoUs: number } | null = null;

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
    this.basePath = u.pathname.replace(/\/$/, '');
    this.pool = new Pool(u.origin, {
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
    this.aborted = true;
    for (const h of this.handlers) h.cancel();
    for (const cut of [...this.awaitingBody.values()]) cut();
    for (const w of this.waiting.splice(0)) w();
  }

  /** Opens the warm-up connections (`GET /`, answers ignored); call before the clock starts. */
  async warmup(): Promise<void> {
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

  /**
   * Sends the requests of `source` on their schedule from `startMonoUs` (the run's offset 0 on the monotonic clock,
   * shared by every loop of a run) and hands each observation to `sink`. Resolves when every request it sent has
   * finished, with what the loop measured of itself.
   */
  async run(source: RequestSource, sink: (o: RawObservation) => void, startMonoUs: number): Promise<LoopHealthSample> {
    const rel = () => monoUs() - startMonoUs;
    const monitor = new LoopMonitor(this.opts.sender ?? 0, rel);
    const order = source.indexes;
    const n = order ? order.length : source.total;
    const progress = setInterval(() => this.emitProgress(n), 250);
    const parent = this.opts.sessions?.parent;
    this.children = parent ? childrenOf(parent, order ?? null, n) : null;
    this.running = { source, sink, rel, startMonoUs };
    monitor.start();
    let burst = 0;
    try {
      for (let k = 0; k < n && !this.stopRequested; k++) {
        const index = order ? order[k]! : k;
        // A follow-up turn is sent when its parent's answer has ended and its think time passed (see `followUp`).
        if (parent && parent[index]! >= 0) continue;
        const scheduledUs = source.scheduledUs(index);
        if (scheduledUs - rel() > 0) burst = 0;
        await waitUntil(startMonoUs + scheduledUs, () => this.stopRequested);
        if (this.stopRequested) break;
        this.stats.scheduled++;
        this.outstanding++;
        const req = source.take(index);
        if (req) this.dispatch(req, null, rel, sink);
        else this.sendWhenReady(source, index, scheduledUs, rel, sink);
        if (++burst % BURST === 0) await new Promise((r) => setImmediate(r));
      }
      if (this.outstanding > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    } finally {
      clearInterval(progress);
      this.emitProgress(n);
    }
    return monitor.stop();
  }

  /** Closes the connection pool. */
  async close(): Promise<void> {
    await this.pool.close();
  }

  private sendWhenReady(source: RequestSource, index: number, scheduledUs: number, rel: () => number, sink: (o: RawObservation) => void): void {
    let settled = false;
    const settle = (req: PlannedRequest | null) => {
      if (settled) return;
      settled = true;
      this.awaitingBody.delete(index);
      const lag = rel() - scheduledUs;
      if (req) req.scheduledUs = scheduledUs;
      if (req) this.dispatch(req, lag, rel, sink);
      else this.complete(unsent(index, source.traceSeq(index), scheduledUs, this.opts.sender ?? 0, lag, 'client_aborted'), sink);
    };
    this.awaitingBody.set(index, () => settle(null));
    source.onReady(index, () => settle(source.take(index)));
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
    return pathOnTarget(this.basePath, recorded);
  }

  private dispatch(req: PlannedRequest, readyLagUs: number | null, rel: () => number, sink: (o: RawObservation) => void): void {
    const obs = observationOf(req, this.opts.sender ?? 0, readyLagUs);
    if (this.aborted) {
      obs.errorKind = 'client_aborted';
      this.complete(obs, sink);
      return;
    }
    const cap = this.opts.maxInFlight;
    if (cap !== undefined && this.inFlight >= cap) {
      if ((this.opts.capPolicy ?? 'queue') === 'drop') {
        obs.errorKind = 'dropped';
        this.complete(obs, sink);
        return;
      }
      obs.capDelayed = true;
      this.waiting.push(() => {
        if (!this.aborted) return this.send(req, obs, rel, sink);
        obs.errorKind = 'client_aborted';
        this.complete(obs, sink);
      });
      return;
    }
    this.send(req, obs, rel, sink);
  }

  private send(req: PlannedRequest, obs: RawObservation, rel: () => number, sink: (o: RawObservation) => void): void {
    this.inFlight++;
    this.stats.sent++;
    let headers = this.opts.headers ? { ...req.headers, ...this.opts.headers } : req.headers;
    if (this.opts.runId) {
      const tc = replayTraceparent(this.opts.runId, req.index);
      headers = { ...headers, traceparent: tc.traceparent, 'x-tracewarp-run': this.opts.runId, 'x-tracewarp-seq': String(req.index) };
      obs.traceId = tc.traceId;
    }
    const handler = new ObservingHandler(obs, rel, this.opts.maxCaptureBytes ?? DEFAULT_MAX_CAPTURE_BYTES, (h) => {
      this.handlers.delete(h);
      this.inFlight--;
      this.waiting.shift()?.();
      this.complete(h.obs, sink);
    });
    this.handlers.add(handler);
    obs.dispatchedUs = rel();
    try {
      this.pool.dispatch({ method: req.method, path: this.targetPath(req.path), headers, body: req.body }, handler);
    } catch (err) {
      handler.onError(err as Error);
    }
  }

  /**
   * Sends a follow-up turn `thinkUs` after its parent's answer ended (closed loop within a session): its due time is
   * that instant, so its lateness and its latency from the schedule count from there. Not sent after a stop.
   */
  private followUp(index: number, dueUs: number): void {
    const r = this.running!;
    this.outstanding++;
    void waitUntil(r.startMonoUs + dueUs, () => this.stopRequested).then(() => {
      if (this.stopRequested) return this.release();
      this.stats.scheduled++;
      const req = r.source.take(index);
      if (!req) return this.sendWhenReady(r.source, index, dueUs, r.rel, r.sink);
      req.scheduledUs = dueUs;
      this.dispatch(req, null, r.rel, r.sink);
    });
  }

  private complete(obs: RawObservation, sink: (o: RawObservation) => void): void {
    this.stats.done++;
    if (obs.errorKind !== null || (obs.status !== null && obs.status >= 400)) this.stats.errors++;
    const next = this.children?.get(obs.index);
    if (next && !this.stopRequested && this.running) {
      const endedUs = obs.endUs ?? this.running.rel();
      for (const c of next) this.followUp(c, endedUs + this.opts.sessions!.thinkUs[c]!);
    }
    sink(obs);
    this.release();
  }

  /** One request (sent, or due and given up) is done with. */
  private release(): void {
    if (--this.outstanding === 0 && this.drained) {
      const d = this.drained;
      this.drained = null;
      d();
    }
  }
}

/** The follow-ups of each index a loop sends (`order`, or 0 … n − 1). */
function childrenOf(parent: Int32Array, order: readonly number[] | null, n: number): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (let k = 0; k < n; k++) {
    const i = order ? order[k]! : k;
    const p = parent[i]!;
    if (p >= 0) (out.get(p) ?? out.set(p, []).get(p)!).push(i);
  }
  return out;
}

/** A fresh observation of a request about to be sent. */
function observationOf(req: PlannedRequest, sender: number, readyLagUs: number | null): RawObservation {
  return {
    index: req.index, traceSeq: req.traceSeq, scheduledUs: req.scheduledUs, sender, readyLagUs, dispatchedUs: null, sentUs: null,
    bodySentUs: null, ttfbAtUs: null, endUs: null, status: null, errorKind: null, requestBytes: req.body?.length ?? 0, responseBytes: 0,
    contentType: null, serverTiming: null, body: null, chunkEnds: [], chunkAtUs: [], captureComplete: true, llm: req.llm, protocol: req.protocol,
    expectedOutputTokens: req.expectedOutputTokens, promptTokens: req.promptTokens, capDelayed: false, label: req.label ?? null, traceId: null,
    patienceUs: req.abortAfterUs ?? null, recordedFailed: req.recordedFailed === true,
  };
}

/** The observation of a request that was due but never sent (its body never came before the replay was cut). */
function unsent(index: number, traceSeq: number, scheduledUs: number, sender: number, readyLagUs: number, kind: RawObservation['errorKind']): RawObservation {
  const o = observationOf({ index, traceSeq, scheduledUs, method: '', path: '', headers: {}, body: null, expectedOutputTokens: null, promptTokens: null, llm: false, protocol: 'other' }, sender, readyLagUs);
  o.errorKind = kind;
  return o;
}

/** Sleep slices of the last stretch before a send, µs, and how close to the due time the loop spins instead. */
const SLICE_US = 50;
const SPIN_US = 150;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Resolves at (or just after) the monotonic time `dueUs`, or as soon as `stop()` is true. Timers for the bulk of the
 * wait; in the last 1.5 ms, turns of the event loop (so I/O keeps being served and stamped) separated by sleeps of at
 * most 50 µs (`Atomics.wait`) until 0.15 ms before the due time, then bare turns: sends land within about 0.2 ms of
 * their time (p99) while the loop uses a third of a core at 1,000 req/s instead of all of it, as a pure spin would.
 * One promise per wait and no allocation per turn, so the wait does not feed the GC.
 */
export function waitUntil(dueUs: number, stop: () => boolean = () => false): Promise<void> {
  if (dueUs - monoUs() <= 0 || stop()) return Promise.resolve();
  return new Promise((resolve) => {
    let turns = 0;
    const check = (): void => {
      const left = dueUs - monoUs();
      if (left <= 0 || stop()) return resolve();
      // Long waits go in pieces of at most 250 ms, so a stop request takes effect promptly.
      if (left > 1500) return void setTimeout(check, Math.min(250, Math.floor((left - 1000) / 1000)));
      // Never sleep before one turn of the loop: what the last send queued (its socket write) goes out first.
      if (left > SPIN_US && turns++ > 0) Atomics.wait(sleeper, 0, 0, Math.min(left - SPIN_US + SLICE_US, SLICE_US) / 1000);
      setImmediate(check);
    };
    check();
  });
}
