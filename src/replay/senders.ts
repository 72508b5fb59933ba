import { availableParallelism } from 'node:os';
import type { MessagePort, Worker } from 'node:worker_threads';
import { fromErrorMessage, type ErrorMessage } from '../errors.ts';
import type { ResultsCollector } from '../results/collector.ts';
import type { LoopHealthSample } from '../results/types.ts';
import type { SynthesisPool } from '../synth/pool.ts';
import { monoUs } from '../units.ts';
import type { Arrival } from '../workload/types.ts';
import { firstMessage, ownBytes, startWorker } from '../workers.ts';
import type { ReplayEngineOptions, ReplayProgress } from './engine.ts';
import type { PlannedRequest } from './types.ts';

/**
 * Requests per second one sending loop keeps on schedule with small bodies on this machine class (2 cores, the
 * target on the same machine): achieved/target 1.000 with lateness p99 of a few ms up to about this rate, behind at
 * 6,000 (`bench/replay-accuracy.ts`). `--workers auto` adds loops above it where there are cores for them.
 */
export const SENDER_CEILING_RPS = 3000;
/**
 * Sending loops `auto` uses at most: one core is left to synthesis and the results (on 2 cores a second loop only
 * competes with them, measured).
 */
export const MAX_AUTO_SENDERS = Math.max(1, Math.min(4, availableParallelism() - 1));

/** The workload's peak rate over any 1-second window of its schedule, req/s. */
export function peakRate(arrivals: readonly Pick<Arrival, 'atUs'>[]): number {
  let peak = 0;
  let lo = 0;
  for (let hi = 0; hi < arrivals.length; hi++) {
    while (arrivals[hi]!.atUs - arrivals[lo]!.atUs >= 1_000_000) lo++;
    peak = Math.max(peak, hi - lo + 1);
  }
  return peak;
}

/** How many sending loops: the number asked for, or for `auto` enough for the peak rate at {@link SENDER_CEILING_RPS}. */
export function resolveSenders(workers: number | 'auto', arrivals: readonly Pick<Arrival, 'atUs'>[]): number {
  if (workers !== 'auto') return Math.max(1, Math.floor(workers));
  return Math.max(1, Math.min(MAX_AUTO_SENDERS, Math.ceil(peakRate(arrivals) / SENDER_CEILING_RPS)));
}

/** What a sending thread is started with. */
export interface SenderThreadInput {
  engine: ReplayEngineOptions;
  /** The whole-request timeout, ms (0: none); see `setRequestTimeout` in `replay/http.ts`. */
  requestTimeoutMs: number;
  /** Its share of the workload, in schedule order, with each request's due time and trace record. */
  indexes: number[];
  scheduledUs: number[];
  traceSeqs: number[];
  results: MessagePort;
}

/** Messages to a sending thread. */
export type ToSender =
  | { type: 'ready'; requests: Array<{ request: Omit<PlannedRequest, 'body'>; body: ArrayBuffer | null }> }
  | { type: 'start'; startMonoUs: number }
  | { type: 'stop' }
  | { type: 'abort' };

/** Messages from a sending thread. */
export type FromSenderThread =
  | { type: 'warm' }
  | { type: 'taken'; bytes: number[] }
  | { type: 'progress'; progress: ReplayProgress }
  | { type: 'done'; sample: LoopHealthSample }
  | { type: 'error'; error: ErrorMessage };

/**
 * Runs a replay from several sending loops, each a worker thread with its own connection pool and event loop, all on
 * one absolute schedule (one `startMonoUs`: the monotonic clock is the same in every thread). Request i goes to loop
 * i mod N; the pool's ready bodies are transferred to their loop as they come; each loop sends its observations
 * straight to the results thread. Progress is summed over the loops. Sessions stay on one loop ({@link loopsOf}).
 */
export async function runSenderThreads(o: {
  engine: ReplayEngineOptions;
  requestTimeoutMs: number;
  pool: SynthesisPool;
  senders: number;
  collector: ResultsCollector;
  control: { stopped: boolean; aborted: boolean; stop: () => void; abort: () => void };
  onProgress?: (p: ReplayProgress) => void;
  leadMs: number;
}): Promise<{ samples: LoopHealthSample[]; startWallMs: number; startMonoUs: number }> {
  const n = o.senders;
  const entry = new URL('./sender-worker.ts', import.meta.url);
  const threads: Worker[] = [];
  const progress: ReplayProgress[] = [];
  let failure: Error | null = null;
  const loopOf = loopsOf(o.pool.total, n, o.engine.sessions?.parent);
  for (let k = 0; k < n; k++) {
    const indexes: number[] = [];
    for (let i = 0; i < o.pool.total; i++) if (loopOf[i] === k) indexes.push(i);
    const results = o.collector.connect();
    const input: SenderThreadInput = {
      engine: { ...o.engine, sender: k, maxInFlight: o.engine.maxInFlight === undefined ? undefined : Math.max(1, Math.ceil(o.engine.maxInFlight / n)) },
      requestTimeoutMs: o.requestTimeoutMs,
      indexes, scheduledUs: indexes.map((i) => o.pool.scheduledUs(i)), traceSeqs: indexes.map((i) => o.pool.traceSeq(i)), results,
    };
    const w = startWorker(entry, input, [results]);
    w.on('message', (m: FromSenderThread) => {
      if (m.type === 'taken') for (const b of m.bytes) o.pool.release(b);
      else if (m.type === 'progress') {
        progress[k] = m.progress;
        o.onProgress?.(sumProgress(progress, o.pool.total));
      } else if (m.type === 'error') {
        failure ??= fromErrorMessage(m.error, `sending loop ${k}`);
        o.control.abort();
      }
    });
    w.on('error', (err) => {
      failure ??= err;
      o.control.abort();
    });
    threads.push(w);
  }
  // Ready requests go to their loop in one message per loop per turn (the pool hands them over in batches).
  const pending = threads.map(() => ({ requests: [] as Extract<ToSender, { type: 'ready' }>['requests'], transfer: [] as ArrayBuffer[] }));
  let flushing = false;
  const flush = () => {
    flushing = false;
    pending.forEach((p, k) => {
      if (p.requests.length === 0) return;
      threads[k]!.postMessage({ type: 'ready', requests: p.requests } satisfies ToSender, p.transfer);
      p.requests = [];
      p.transfer = [];
    });
  };
  const forward = (index: number) => {
    const p = o.pool.detach(index);
    if (!p) return;
    const { body, ...request } = p;
    const ab = body ? ownBytes(body) : null;
    const q = pending[loopOf[index]!]!;
    q.requests.push({ request, body: ab });
    if (ab) q.transfer.push(ab);
    if (!flushing) {
      flushing = true;
      queueMicrotask(flush);
    }
  };
  o.pool.onEachReady(forward);
  await Promise.all(threads.map((w) => firstMessage(w, 'warm')));
  await o.pool.prefetch(10_000);
  o.control.stop = () => threads.forEach((w) => w.postMessage({ type: 'stop' } satisfies ToSender));
  o.control.abort = () => threads.forEach((w) => w.postMessage({ type: 'abort' } satisfies ToSender));
  const done = threads.map((w) => firstMessage<Extract<FromSenderThread, { type: 'done' }>>(w, 'done'));
  const startMonoUs = monoUs() + o.leadMs * 1000;
  const startWallMs = Date.now() + o.leadMs;
  for (const w of threads) w.postMessage({ type: 'start', startMonoUs } satisfies ToSender);
  if (o.control.aborted) o.control.abort();
  else if (o.control.stopped) o.control.stop();
  const samples = (await Promise.all(done)).map((m) => m.sample);
  await Promise.all(threads.map((w) => w.terminate()));
  if (failure) throw failure;
  return { samples, startWallMs, startMonoUs };
}

/**
 * Which loop sends each request: i mod N, except that every turn of a closed-loop session goes to the loop of its first
 * turn (a follow-up waits for its parent's answer, which only that loop sees).
 */
export function loopsOf(total: number, n: number, parent?: Int32Array): Uint16Array {
  const loop = new Uint16Array(total);
  for (let i = 0; i < total; i++) {
    const p = parent ? parent[i]! : -1;
    loop[i] = p >= 0 ? loop[p]! : i % n;
  }
  return loop;
}

function sumProgress(parts: readonly ReplayProgress[], total: number): ReplayProgress {
  const s: ReplayProgress = { total, scheduled: 0, sent: 0, done: 0, inFlight: 0, errors: 0 };
  for (const p of parts) {
    if (!p) continue;
    s.scheduled += p.scheduled;
    s.sent += p.sent;
    s.done += p.done;
    s.inFlight += p.inFlight;
    s.errors += p.errors;
  }
  return s;
}
