import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { fromErrorMessage, type ErrorMessage } from '../errors.ts';
import type { PlannedRequest, RequestSource } from '../replay/types.ts';
import type { SynthesisStats } from '../results/types.ts';
import type { HistorySpec } from './history.ts';
import type { Arrival } from '../workload/types.ts';
import { firstMessage, startWorker } from '../workers.ts';
import { WorkloadDigest } from './digest.ts';
import type { SynthItem } from './workload.ts';
import type { SynthOptions } from '../protocols/adapter.ts';
import { MAX_BYTES_PER_TOKEN } from '../trace/validate/caps.ts';

/** Synthesis threads by default: all cores but the one the sending loop needs, at least 1, at most 4. */
export const DEFAULT_SYNTH_THREADS = Math.max(1, Math.min(4, availableParallelism() - 1));
/** Requests synthesized ahead of the sending loop at most. */
export const DEFAULT_MAX_READY_REQUESTS = 1024;
/** Body bytes synthesized ahead at most (a 191k-token prompt is about 1.3 MB). */
export const DEFAULT_MAX_READY_BYTES = 256 * 1024 * 1024;
/** Prefix-block text cache per synthesis thread, characters (64 Mi: about 18,000 blocks of 512 tokens). */
export const DEFAULT_BLOCK_CACHE_CHARS = 64 * 1024 * 1024;
/** Requests one thread is given at once, so the others get work too. */
const PER_THREAD_QUEUE = 16;

/** What a synthesis thread is started with (its `workerData.data`). */
export interface SynthThreadInput {
  tracePath: string;
  seed: number | string;
  /** How requests are made for the target (model, path map, output length). */
  synth: SynthOptions;
  blockCacheChars?: number;
}

/** Messages to a synthesis thread. */
export type ToSynthThread = { type: 'synth'; items: SynthItem[] } | { type: 'close' };

/** One synthesized request as it crosses back: its body transferred, and its digest hash. */
export interface ReadyRequest {
  request: Omit<PlannedRequest, 'body'>;
  body: ArrayBuffer | null;
  hash: string;
}

/** Messages from a synthesis thread. */
export type ToPool =
  | { type: 'started' }
  | { type: 'ready'; requests: ReadyRequest[] }
  | { type: 'error'; error: ErrorMessage; index?: number }
  | { type: 'stats'; tokens: number; busyUs: number; cacheHitTokens: number; cacheMissTokens: number };

/** Options of {@link SynthesisPool.start}. */
export interface SynthesisPoolOptions {
  tracePath: string;
  /** The workload in schedule order (index = position). */
  arrivals: readonly Arrival[];
  seed: number | string;
  /** Replace every request's `model` (parameter and path). */
  model?: string;
  forceOutputLength?: boolean;
  /** Path rewrites, see {@link SynthOptions.pathMap}. */
  pathMap?: SynthOptions['pathMap'];
  modelMap?: SynthOptions['modelMap'];
  placeholderSegments?: SynthOptions['placeholderSegments'];
  /** See {@link SynthOptions.outputLength}. */
  outputLength?: SynthOptions['outputLength'];
  /** See {@link SynthOptions.clientAborts}. */
  clientAborts?: boolean;
  /** See {@link SynthOptions.tensorNames}. */
  tensorNames?: SynthOptions['tensorNames'];
  /** Default {@link DEFAULT_SYNTH_THREADS}. */
  threads?: number;
  /** Default {@link DEFAULT_MAX_READY_REQUESTS}. */
  maxReadyRequests?: number;
  /** Default {@link DEFAULT_MAX_READY_BYTES}. Always at least one request is synthesized ahead, whatever its size. */
  maxReadyBytes?: number;
  /** Prefix-block text cache per thread, characters. Default {@link DEFAULT_BLOCK_CACHE_CHARS}. */
  blockCacheChars?: number;
  /** Follow-up turns' histories by index (`sessions/schedule.ts` historySpecs); none: every prompt is its own. */
  histories?: ReadonlyMap<number, HistorySpec>;
}

interface Thread {
  worker: Worker;
  queued: number;
}

/**
 * Synthesizes a workload's requests in worker threads ahead of their send time, into a bounded ready queue
 * (requests and bytes), and hands them to the sending loop as a {@link RequestSource}. Bodies cross threads by
 * transfer, not copy. Every index yields the same bytes whichever thread makes it (seeded by index). Keeps the
 * workload digest (in index order) as requests become ready.
 */
export class SynthesisPool implements RequestSource {
  readonly total: number;
  private readonly threads: Thread[] = [];
  private readonly ready = new Map<number, PlannedRequest>();
  private readonly waiters = new Map<number, () => void>();
  private readonly estimate = new Map<number, number>();
  private next = 0;
  private outstanding = 0;
  /** Made and handed on (detached) but not yet released. */
  private detached = 0;
  private budgetBytes = 0;
  private readyBytes = 0;
  private readonly digest = new WorkloadDigest();
  private readonly hashes = new Map<number, [Pick<PlannedRequest, 'index' | 'scheduledUs' | 'method' | 'path' | 'label'>, string]>();
  private digestNext = 0;
  private readonly maxRequests: number;
  private readonly maxBytes: number;
  private failure: Error | null = null;
  private readonly errorListeners: Array<(err: Error) => void> = [];
  private readonly readyListeners: Array<() => void> = [];
  private readonly eachReady: Array<(index: number) => void> = [];
  private readonly stats: SynthesisStats;

  private constructor(private readonly opts: SynthesisPoolOptions) {
    this.total = opts.arrivals.length;
    this.maxRequests = Math.max(1, opts.maxReadyRequests ?? DEFAULT_MAX_READY_REQUESTS);
    this.maxBytes = opts.maxReadyBytes ?? DEFAULT_MAX_READY_BYTES;
    this.stats = { threads: 0, synthesized: 0, promptTokens: 0, busyMs: 0, cacheHitTokens: 0, cacheMissTokens: 0, peakReadyBytes: 0 };
  }

  /** Starts the threads (each opens the trace) and begins synthesizing from index 0. */
  static async start(opts: SynthesisPoolOptions): Promise<SynthesisPool> {
    const pool = new SynthesisPool(opts);
    const n = Math.max(1, opts.threads ?? DEFAULT_SYNTH_THREADS);
    const synth: SynthOptions = { model: opts.model, forceOutputLength: opts.forceOutputLength, pathMap: opts.pathMap, modelMap: opts.modelMap, placeholderSegments: opts.placeholderSegments, outputLength: opts.outputLength, clientAborts: opts.clientAborts, tensorNames: opts.tensorNames };
    const input: SynthThreadInput = { tracePath: opts.tracePath, seed: opts.seed, synth, blockCacheChars: opts.blockCacheChars ?? DEFAULT_BLOCK_CACHE_CHARS };
    const entry = new URL('./worker.ts', import.meta.url);
    for (let i = 0; i < n; i++) {
      const worker = startWorker(entry, input);
      const t: Thread = { worker, queued: 0 };
      worker.on('message', (m: ToPool) => pool.onMessage(t, m));
      worker.on('error', (err) => pool.fail(err));
      pool.threads.push(t);
    }
    pool.stats.threads = n;
    await Promise.all(pool.threads.map((t) => firstMessage(t.worker, 'started')));
    pool.pump();
    return pool;
  }

  scheduledUs(index: number): number {
    return this.opts.arrivals[index]!.atUs;
  }

  traceSeq(index: number): number {
    return this.opts.arrivals[index]!.seq;
  }

  take(index: number): PlannedRequest | null {
    const p = this.detach(index);
    if (p) this.release(p.body?.length ?? 0);
    return p;
  }

  /**
   * Takes a ready request out of the queue while it still counts against the budget (it is on its way to a sending
   * loop in another thread): {@link release} its bytes once that loop took it.
   */
  detach(index: number): PlannedRequest | null {
    const p = this.ready.get(index);
    if (!p) return null;
    this.ready.delete(index);
    this.readyBytes -= p.body?.length ?? 0;
    this.detached++;
    return p;
  }

  /** Frees the budget of one {@link detach}ed request of `bytes` body bytes, so synthesis can go further ahead. */
  release(bytes: number): void {
    this.detached--;
    this.budgetBytes -= bytes;
    this.outstanding--;
    this.pump();
  }

  /** Calls `cb` with the index of every request that becomes ready from now on (to forward it to a sending thread). */
  onEachReady(cb: (index: number) => void): void {
    this.eachReady.push(cb);
  }

  onReady(index: number, cb: () => void): void {
    if (this.ready.has(index)) cb();
    else this.waiters.set(index, cb);
  }

  /** Calls `cb` when a thread fails (the replay cannot go on: a record that cannot be read or synthesized). */
  onError(cb: (err: Error) => void): void {
    if (this.failure) cb(this.failure);
    else this.errorListeners.push(cb);
  }

  /** Requests and body bytes ready now. */
  ahead(): { requests: number; bytes: number } {
    return { requests: this.ready.size, bytes: this.readyBytes };
  }

  /**
   * Waits before the run's clock starts until the ready queue is full (or holds the whole workload), or `maxWaitMs`
   * after the first request is ready — so the first sends are not late because synthesis had only just begun.
   * @throws the synthesis failure, if a thread failed.
   */
  async prefetch(maxWaitMs: number): Promise<void> {
    const full = () => this.ready.size + this.detached === this.outstanding && (this.next >= this.total || !this.canAssign());
    let deadline = Infinity;
    while (!full()) {
      if (this.failure) throw this.failure;
      if (this.ready.size + this.detached > 0 && deadline === Infinity) deadline = Date.now() + maxWaitMs;
      if (Date.now() >= deadline) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.readyListeners.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    if (this.failure) throw this.failure;
  }

  /** The workload digest, once every request was synthesized (else null: a replay stopped early). */
  workloadDigest(): { schedule: string; digest: string } | null {
    return this.digestNext === this.total ? this.digest.result() : null;
  }

  /** Stops the threads; resolves with what synthesis did. */
  async close(): Promise<SynthesisStats> {
    await Promise.all(this.threads.map(async (t) => {
      const stats = firstMessage<Extract<ToPool, { type: 'stats' }>>(t.worker, 'stats').catch(() => null);
      t.worker.postMessage({ type: 'close' } satisfies ToSynthThread);
      // A thread that does not answer within 2 s is stopped without its stats (the timer never holds the process).
      let timer: NodeJS.Timeout | undefined;
      const s = await Promise.race([stats, new Promise<null>((r) => (timer = setTimeout(() => r(null), 2000)))]);
      clearTimeout(timer);
      if (s) {
        this.stats.busyMs += s.busyUs / 1000;
        this.stats.cacheHitTokens += s.cacheHitTokens;
        this.stats.cacheMissTokens += s.cacheMissTokens;
      }
      await t.worker.terminate();
    }));
    this.stats.busyMs = Math.round(this.stats.busyMs);
    return { ...this.stats };
  }

  private canAssign(): boolean {
    if (this.outstanding >= this.maxRequests) return false;
    const a = this.opts.arrivals[this.next];
    const est = a ? estimatedBytes(a) : 0;
    return this.outstanding === 0 || this.budgetBytes + est <= this.maxBytes;
  }

  private pump(): void {
    if (this.failure) return;
    const batches = new Map<Thread, SynthItem[]>();
    while (this.next < this.total && this.canAssign()) {
      const t = this.threads.reduce((a, b) => (b.queued < a.queued ? b : a));
      if (t.queued >= PER_THREAD_QUEUE) break;
      const a = this.opts.arrivals[this.next]!;
      const item: SynthItem = { index: this.next, seq: a.seq, atUs: a.atUs, fingerprintSalt: a.fingerprintSalt, drift: a.drift, anomaly: a.anomaly, history: this.opts.histories?.get(this.next) };
      (batches.get(t) ?? batches.set(t, []).get(t)!).push(item);
      t.queued++;
      const est = estimatedBytes(a);
      this.estimate.set(this.next, est);
      this.budgetBytes += est;
      this.outstanding++;
      this.next++;
    }
    for (const [t, items] of batches) t.worker.postMessage({ type: 'synth', items } satisfies ToSynthThread);
  }

  private onMessage(t: Thread, m: ToPool): void {
    if (m.type === 'error') {
      this.fail(fromErrorMessage(m.error, `synthesis of request ${m.index ?? '?'}`));
      return;
    }
    if (m.type !== 'ready') return;
    for (const r of m.requests) this.accept(t, r);
    for (const l of this.readyListeners.splice(0)) l();
    this.pump();
  }

  private accept(t: Thread, m: ReadyRequest): void {
    t.queued--;
    const body = m.body ? Buffer.from(m.body) : null;
    const p: PlannedRequest = { ...m.request, body };
    const bytes = body?.length ?? 0;
    this.budgetBytes += bytes - (this.estimate.get(p.index) ?? 0);
    this.estimate.delete(p.index);
    this.readyBytes += bytes;
    if (this.readyBytes > this.stats.peakReadyBytes) this.stats.peakReadyBytes = this.readyBytes;
    this.stats.synthesized++;
    this.stats.promptTokens += p.promptTokens ?? 0;
    this.ready.set(p.index, p);
    this.hashes.set(p.index, [{ index: p.index, scheduledUs: p.scheduledUs, method: p.method, path: p.path, label: p.label }, m.hash]);
    for (let h = this.hashes.get(this.digestNext); h; h = this.hashes.get(this.digestNext)) {
      this.digest.add(h[0], h[1]);
      this.hashes.delete(this.digestNext++);
    }
    const w = this.waiters.get(p.index);
    if (w) {
      this.waiters.delete(p.index);
      w();
    }
    for (const l of this.eachReady) l(p.index);
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const l of this.errorListeners.splice(0)) l(err);
    for (const l of this.readyListeners.splice(0)) l();
  }
}


/**
 * The body size an arrival will have, for the ready-queue budget: the recorded size, grown by its prompt-token drift
 * (`prompt_tokens*F`, `+N`) and by an `oversize` anomaly (10×), so a drifted workload stays within the byte bound.
 */
export function estimatedBytes(a: Pick<Arrival, 'requestBytes' | 'drift' | 'anomaly'>): number {
  let bytes = a.requestBytes;
  for (const d of a.drift) {
    if (d.feature !== 'prompt_tokens') continue;
    if (d.op === '*') bytes *= Math.max(1, 1 + (Number(d.value) - 1) * d.weight);
    else if (d.op === '+') bytes += Math.max(0, Number(d.value) * d.weight * MAX_BYTES_PER_TOKEN);
  }
  return a.anomaly === 'oversize' ? bytes * 10 : bytes;
}
