import { rmSync } from 'node:fs';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { fromErrorMessage, type ErrorMessage } from '../errors.ts';
import type { RunSummary } from '../metrics/summary.ts';
import type { RawObservation } from '../replay/types.ts';
import { firstMessage, startWorker } from '../workers.ts';
import type { FailFastRule, FailFastVerdict } from './fail-fast.ts';
import type { LoopHealthSample, RunMeta, SynthesisStats } from './types.ts';

/** Observations sent to the results thread at once, at most; and how long one waits for company, ms. */
const BATCH = 64;
const BATCH_MS = 20;
/**
 * How often the results thread commits the rows it has to the run file, ms: a replay killed outright (SIGKILL, out
 * of memory) keeps every result that came back until about this long (plus {@link BATCH_MS}) before it died.
 */
export const RUN_FLUSH_MS = 250;

/** What the results thread is started with. */
export interface ResultsThreadInput {
  /** Run file to write, or null for none (results are still observed and summarized). */
  runPath: string | null;
  meta: RunMeta;
  force: boolean;
  /** Watch the first results for a target that cannot be replayed against (reported with `onFailFast`); null: never. */
  failFast?: FailFastRule | null;
  /** What each request is (see {@link RequestClasses}), so results carry their route, model and protocol. */
  classes?: RequestClasses;
  /**
   * Each request's session number and turn (−1: none) and, for closed-loop sessions, the index it waited for (−1: none),
   * so results carry `session`, `turn` and `parentIndex`.
   */
  sessions?: { session: Int32Array; turn: Int32Array; parent: Int32Array | null };
  /** Prometheus endpoints of the target to poll during the run (`replay --scrape`), stored in the run file. */
  scrape?: { urls: string[]; intervalMs: number };
}

/** Distinct `[route, model, protocol]` of a workload, and for each request index the position of its own in `keys`. */
export interface RequestClasses {
  keys: Array<[string, string | null, string]>;
  ofIndex: number[];
}

/** Messages to the results thread (on its parent port) and on a sender's port. */
export type ToResults =
  | { type: 'attach'; port: MessagePort }
  | { type: 'finish'; samples: LoopHealthSample[]; synthesis?: SynthesisStats; slo?: string; meta: Record<string, unknown> };
export type FromSender = { type: 'obs'; items: RawObservation[] } | { type: 'eof' };
/** Messages from the results thread. */
export type FromResults =
  | { type: 'started' }
  | { type: 'fail_fast'; verdict: FailFastVerdict }
  | { type: 'live'; live: LiveFigures }
  | { type: 'finished'; summary: RunSummary; errorDetails: Record<string, Record<string, number>>; runFileError: string | null }
  | { type: 'error'; error: ErrorMessage };

/** How often the results thread reports {@link LiveFigures}, ms, and the window they are over, s. */
export const LIVE_INTERVAL_MS = 1000;
export const LIVE_WINDOW_S = 10;

/**
 * What the results thread has seen so far, for live progress: completed and failed requests, and the p99 of latency
 * and TTFT (from the actual send, exact nearest rank) of the answers that ended in the last {@link LIVE_WINDOW_S}
 * seconds (null when none). Computed off the sending loop.
 */
export interface LiveFigures {
  completed: number;
  errors: number;
  latencyP99Ms: number | null;
  ttftP99Ms: number | null;
}

/**
 * Batches a sending loop's observations to the results thread over a port: a few `postMessage` calls a second, the
 * captured answer bytes transferred, not copied. `end()` flushes and tells the thread this loop is done.
 */
export class ObservationBatcher {
  private items: RawObservation[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly port: MessagePort) {}

  readonly add = (o: RawObservation): void => {
    this.items.push(o);
    if (this.items.length >= BATCH) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), BATCH_MS);
  };

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.items.length === 0) return;
    const items = this.items;
    this.items = [];
    const transfer = items.flatMap((o) => (o.body ? [o.body.buffer as ArrayBuffer] : []));
    this.port.postMessage({ type: 'obs', items } satisfies FromSender, transfer);
  }

  end(): void {
    this.flush();
    this.port.postMessage({ type: 'eof' } satisfies FromSender);
  }
}

/**
 * The results side of a replay, in its own thread: observes each answer (the response observer), writes the run file
 * in batches and, at the end, marks results measured during the tool's stalls, summarizes and judges the replayer's
 * health. Nothing of this runs on a sending loop.
 */
export class ResultsCollector {
  private constructor(private readonly worker: Worker, private readonly runPath: string | null) {}

  /** Starts the results thread; it creates the run file (refusing an existing one unless `force`). */
  static async start(input: ResultsThreadInput): Promise<ResultsCollector> {
    const worker = startWorker(new URL('./worker.ts', import.meta.url), input);
    const first = await Promise.race([firstMessage<FromResults>(worker, 'started'), firstMessage<Extract<FromResults, { type: 'error' }>>(worker, 'error')]);
    if (first.type === 'error') {
      await worker.terminate();
      throw fromErrorMessage(first.error, 'results');
    }
    return new ResultsCollector(worker, input.runPath);
  }

  /** Calls `cb` (once) when the fail-fast rule of {@link ResultsThreadInput.failFast} says the replay should stop. */
  onFailFast(cb: (v: FailFastVerdict) => void): void {
    const on = (m: FromResults) => {
      if (m.type !== 'fail_fast') return;
      this.worker.off('message', on);
      cb(m.verdict);
    };
    this.worker.on('message', on);
  }

  /** Calls `cb` with the {@link LiveFigures} about every {@link LIVE_INTERVAL_MS} while results come in. */
  onLive(cb: (l: LiveFigures) => void): void {
    this.worker.on('message', (m: FromResults) => {
      if (m.type === 'live') cb(m.live);
    });
  }

  /** A new port for one sending loop's observations (give it to an {@link ObservationBatcher}). */
  connect(): MessagePort {
    const { port1, port2 } = new MessageChannel();
    this.worker.postMessage({ type: 'attach', port: port1 } satisfies ToResults, [port1]);
    return port2;
  }

  /**
   * Waits for every connected loop's last observations, then summarizes (with `slo`), judges health from `samples`,
   * writes `meta` and the summary into the run file, closes it and stops the thread. `runFileError` says why the run
   * file could not be written (the summary is whole all the same); `errorDetails` counts the failures by kind and cause.
   */
  async finish(f: Omit<Extract<ToResults, { type: 'finish' }>, 'type'>): Promise<{ summary: RunSummary; errorDetails: Record<string, Record<string, number>>; runFileError: string | null }> {
    const done = Promise.race([firstMessage<Extract<FromResults, { type: 'finished' }>>(this.worker, 'finished'), firstMessage<Extract<FromResults, { type: 'error' }>>(this.worker, 'error')]);
    this.worker.postMessage({ type: 'finish', ...f } satisfies ToResults);
    const m = await done;
    await this.worker.terminate();
    if (m.type === 'error') throw fromErrorMessage(m.error, 'results');
    return { summary: m.summary, errorDetails: m.errorDetails, runFileError: m.runFileError };
  }

  /** Stops the thread without summarizing (after a failure before anything was sent) and removes the empty run file. */
  async abandon(): Promise<void> {
    await this.worker.terminate();
    if (this.runPath) for (const suffix of ['', '-wal', '-shm']) rmSync(this.runPath + suffix, { force: true });
  }
}
