import { randomUUID } from 'node:crypto';
import { TracewarpError } from '../errors.ts';
import type { RunSummary } from '../metrics/summary.ts';
import type { Slo } from '../metrics/slo.ts';
import { ObservationBatcher, ResultsCollector } from '../results/collector.ts';
import type { LoopHealthSample, SynthesisStats } from '../results/types.ts';
import { createRng } from '../rng.ts';
import { SynthesisPool } from '../synth/pool.ts';
import { TraceReader } from '../trace/reader.ts';
import { monoUs } from '../units.ts';
import { TOOL_VERSION } from '../version.ts';
import { transform, type Step } from '../workload/pipeline.ts';
import type { Arrival } from '../workload/types.ts';
import { ReplayEngine, type ReplayProgress } from './engine.ts';
import { settleHeap } from './health.ts';
import { resolveSenders, runSenderThreads } from './senders.ts';

/** How far ahead of the first send the clock starts, ms, so the first requests are not late by construction. */
export const DEFAULT_LEAD_MS = 50;
/** Longest wait before the clock starts for the ready queue to fill, once the first body is ready, ms. */
export const PREFETCH_MAX_MS = 10_000;

/** The transformed workload of a trace: the original and transformed arrivals. */
export function workloadOf(reader: TraceReader, steps: readonly Step[], seed: number): { before: Arrival[]; after: Arrival[]; webSocketSessions: number } {
  const before = reader.arrivals();
  try {
    return { before, after: transform(before, steps, createRng(seed).child('workload')), webSocketSessions: reader.webSocketSessions() };
  } catch (err) {
    // A transformation that cannot apply to this trace (e.g. --rate on one arrival) is a usage problem.
    if (err instanceof RangeError) throw new TracewarpError('TW_USAGE', err.message);
    throw err;
  }
}

/** Options of {@link startReplay}. */
export interface ReplayTraceOptions {
  trace: string;
  target: string;
  /** Transformations in order (see `workload/pipeline.ts`). Default none. */
  steps?: readonly Step[];
  seed?: number;
  /** Run file to write; null for none. */
  runFile: string | null;
  /** Overwrite an existing run file. */
  force?: boolean;
  /** Replace the `model` of every request. */
  model?: string;
  /** Replay only the first N requests. */
  limit?: number;
  maxInFlight?: number;
  capPolicy?: 'queue' | 'drop';
  headers?: Record<string, string>;
  /** Connections opened with `GET /` before the clock starts. Default 8; 0 for none. */
  warmup?: number;
  slo?: Slo;
  forceOutputLength?: boolean;
  /** Sending loops: a number, or `auto` (one unless the workload's peak rate needs more). Default `auto`. */
  workers?: number | 'auto';
  /** Synthesis threads (default: cores − 1, at least 1). */
  synthThreads?: number;
  maxReadyRequests?: number;
  maxReadyBytes?: number;
  /** Default a random UUID. */
  runId?: string;
  /** Written into the run file's meta: the time-warp factor and the transformation flags as one line. */
  speed?: number;
  workload?: string;
  /** Called about every 250 ms while sending. */
  onProgress?: (p: ReplayProgress) => void;
}

/** What a replay produced. */
export interface ReplayOutcome {
  summary: RunSummary;
  runPath: string | null;
  runId: string;
  plannedRequests: number;
  interrupted: boolean;
  /** The workload digest, when every request was synthesized (not after a stop). */
  digest: { schedule: string; digest: string } | null;
  webSocketSessions: number;
  /** The first request's route (for hints about a target path that does not fit). */
  firstRoute: string | null;
  senders: number;
  /** Why the run file could not be written, if it could not (the summary is whole all the same). */
  runFileError: string | null;
}

/** A running replay. */
export interface ReplayHandle {
  /** Stop sending; requests in flight finish and are reported (Ctrl-C). */
  stop(): void;
  /** Cut every request in flight now (a second Ctrl-C); the run file is still written whole. */
  abortInFlight(): void;
  readonly result: Promise<ReplayOutcome>;
}

/**
 * Replays a trace against a target: plans the transformed workload, synthesizes bodies in worker threads ahead of their
 * send time, sends them open loop from one or more sending loops on one absolute schedule, observes the answers and
 * writes the run file in another thread, and judges how far the replayer itself may have shaped the figures.
 * @throws (through `result`) TracewarpError `TW_USAGE` for an empty workload or an existing run file, the trace
 *   reader's codes for a bad trace, `TW_TARGET` for a bad URL.
 */
export function startReplay(opts: ReplayTraceOptions): ReplayHandle {
  const control = { stopped: false, aborted: false, stop: () => undefined as void, abort: () => undefined as void };
  const result = run(opts, control);
  return {
    stop() {
      control.stopped = true;
      control.stop();
    },
    abortInFlight() {
      control.stopped = control.aborted = true;
      control.abort();
    },
    result,
  };
}

/** {@link startReplay} to the end. */
export function replayTrace(opts: ReplayTraceOptions): Promise<ReplayOutcome> {
  return startReplay(opts).result;
}

interface Control {
  stopped: boolean;
  aborted: boolean;
  stop: () => void;
  abort: () => void;
}

function plan(opts: ReplayTraceOptions): { arrivals: Arrival[]; webSocketSessions: number } {
  const reader = new TraceReader(opts.trace);
  let arrivals: Arrival[];
  let webSocketSessions: number;
  try {
    ({ after: arrivals, webSocketSessions } = workloadOf(reader, opts.steps ?? [], opts.seed ?? 1));
  } finally {
    reader.close();
  }
  if (opts.limit !== undefined) arrivals = arrivals.slice(0, opts.limit);
  if (arrivals.length === 0) {
    throw new TracewarpError('TW_USAGE', webSocketSessions > 0
      ? `the workload is empty: the trace holds only WebSocket sessions (${webSocketSessions}), and replay sends HTTP requests only`
      : `the workload is empty: the trace has no requests, or the transformations selected none (see 'tracewarp plan')`);
  }
  return { arrivals, webSocketSessions };
}

/**
 * One sending loop in this thread: warm-up, prefetch, a full GC, then the run on a clock started `DEFAULT_LEAD_MS`
 * ahead; its observations go to the results thread in batches.
 */
async function runOneLoop(engine: ReplayEngine, pool: SynthesisPool, collector: ResultsCollector, control: Control, onProgress?: (p: ReplayProgress) => void): Promise<{ samples: LoopHealthSample[]; startWallMs: number; startMonoUs: number }> {
  control.stop = () => engine.stop();
  control.abort = () => engine.abortInFlight();
  if (onProgress) engine.on('progress', onProgress);
  await engine.warmup();
  await pool.prefetch(PREFETCH_MAX_MS);
  const batcher = new ObservationBatcher(collector.connect());
  settleHeap();
  const startMonoUs = monoUs() + DEFAULT_LEAD_MS * 1000;
  const startWallMs = Date.now() + DEFAULT_LEAD_MS;
  if (control.aborted) engine.abortInFlight();
  else if (control.stopped) engine.stop();
  const sample = await engine.run(pool, batcher.add, startMonoUs);
  batcher.end();
  return { samples: [sample], startWallMs, startMonoUs };
}

async function run(opts: ReplayTraceOptions, control: Control): Promise<ReplayOutcome> {
  const { arrivals, webSocketSessions } = plan(opts);
  const runId = opts.runId ?? randomUUID();
  const seed = opts.seed ?? 1;
  const engineOpts = { target: opts.target, maxInFlight: opts.maxInFlight, capPolicy: opts.capPolicy, headers: opts.headers, warmupConnections: opts.warmup, runId };
  // A bad target is refused before any thread starts.
  const probe = new ReplayEngine(engineOpts);
  const senders = resolveSenders(opts.workers ?? 'auto', arrivals);
  const collector = await ResultsCollector.start({
    runPath: opts.runFile,
    force: Boolean(opts.force),
    meta: {
      runId, tracePath: opts.trace, target: opts.target, speed: opts.speed ?? 1, seed: String(seed), maxInFlight: opts.maxInFlight ?? null,
      capPolicy: opts.capPolicy ?? 'queue', startWallUs: 0, toolVersion: TOOL_VERSION,
    },
  }).catch(async (err) => {
    await probe.close();
    throw err;
  });
  let pool: SynthesisPool | null = null;
  let failure: Error | null = null;
  let samples: LoopHealthSample[] = [];
  let startWallMs = 0;
  let startMonoUs = 0;
  let synthesis: SynthesisStats | undefined;
  try {
    pool = await SynthesisPool.start({
      tracePath: opts.trace, arrivals, seed, model: opts.model, forceOutputLength: opts.forceOutputLength, threads: opts.synthThreads,
      maxReadyRequests: opts.maxReadyRequests, maxReadyBytes: opts.maxReadyBytes,
    });
    const p = pool;
    p.onError((err) => {
      failure ??= err;
      control.abort();
    });
    const r = senders === 1
      ? await runOneLoop(probe, p, collector, control, opts.onProgress)
      : await probe.close().then(() => runSenderThreads({ engine: engineOpts, pool: p, senders, collector, control, onProgress: opts.onProgress, leadMs: DEFAULT_LEAD_MS }));
    ({ samples, startWallMs, startMonoUs } = r);
  } catch (err) {
    failure ??= err as Error;
  } finally {
    if (pool) synthesis = await pool.close();
    await probe.close().catch(() => undefined);
  }
  const digest = pool && !control.stopped ? pool.workloadDigest() : null;
  const meta: Record<string, unknown> = {
    startWallUs: Math.round(startWallMs * 1000), startMonoUs, interrupted: control.stopped, plannedRequests: arrivals.length, senders,
    ...(opts.slo ? { slo: opts.slo.text } : {}), ...(digest ? { digest } : {}), ...(opts.workload !== undefined ? { workload: opts.workload } : {}),
  };
  if (failure && samples.length === 0) {
    await collector.abandon();
    throw failure;
  }
  const { summary, runFileError } = await collector.finish({ samples, synthesis, slo: opts.slo?.text, meta });
  if (failure) throw failure;
  return { summary, runFileError, runPath: opts.runFile, runId, plannedRequests: arrivals.length, interrupted: control.stopped, digest, webSocketSessions, firstRoute: arrivals[0]?.route ?? null, senders };
}
