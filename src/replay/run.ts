import { failFastMessage, humanMs, namesOfTemplatedTensors, planReplay, requestClasses, timeoutMs } from './prepare.ts';
import type { PlannedWorkload } from '../workload/plan.ts';
import type { Selector } from '../workload/select.ts';
import { randomUUID } from 'node:crypto';
import { TracewarpError } from '../errors.ts';
import type { RunSummary } from '../metrics/summary.ts';
import type { Slo } from '../metrics/slo.ts';
import { ObservationBatcher, ResultsCollector, type LiveFigures } from '../results/collector.ts';
import type { FailFastVerdict } from '../results/fail-fast.ts';
import type { LoopHealthSample, SynthesisStats } from '../results/types.ts';
import { SynthesisPool } from '../synth/pool.ts';
import type { HistorySpec } from '../synth/history.ts';
import { DEFAULT_THINK_TIME, historySpecs, planSessions, type SessionMode, type SessionPlan, type ThinkTime } from '../sessions/schedule.ts';
import type { Arrival } from '../workload/types.ts';
import { monoUs } from '../units.ts';
import { TOOL_VERSION } from '../version.ts';
import type { Step } from '../workload/pipeline.ts';
import { ReplayEngine, type ReplayProgress } from './engine.ts';
import {
  DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_STOP_GRACE_MS, FAIL_FAST_MIN_REQUESTS, FAIL_FAST_REQUESTS,
  FAIL_FAST_WINDOW_MS, TARGET_CHECK_TIMEOUT_MS,
} from './defaults.ts';
import { settleHeap } from './health.ts';
import { setRequestTimeout } from './http.ts';
import { resolveSenders, runSenderThreads } from './senders.ts';
import { checkTarget } from './target-check.ts';

/** How far ahead of the first send the clock starts, ms, so the first requests are not late by construction. */
export const DEFAULT_LEAD_MS = 50;
/** Longest wait before the clock starts for the ready queue to fill, once the first body is ready, ms. */
export const PREFETCH_MAX_MS = 10_000;

export { workloadOf } from './prepare.ts';

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
  /**
   * Warm-up, µs of the schedule: requests scheduled before it are sent as all others but left out of the headline
   * figures and the SLO gate (stored as `meta.warmupUs`; reports show them apart as the cold start). Default 0.
   */
  warmupUs?: number;
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
  /** Keep only recorded requests matching one of these / leave out those matching any of these (`workload/select.ts`). */
  only?: readonly Selector[];
  exclude?: readonly Selector[];
  /** Path rewrites, see `SynthOptions.pathMap`. */
  pathMap?: ReadonlyArray<readonly [string, string]>;
  /** Model renames, see `SynthOptions.modelMap`. */
  modelMap?: ReadonlyArray<readonly [string, string]>;
  /** See `SynthOptions.placeholderSegments`. */
  placeholderSegments?: boolean;
  /** Cut requests whose recorded client gave up as that client did (`SynthOptions.clientAborts`). Default true. */
  clientAborts?: boolean;
  /** See `SynthOptions.outputLength`. Default `recorded`. */
  outputLength?: 'recorded' | 'as-sent';
  /** Called once the workload is planned and checked, before anything is sent (e.g. to say which paths carry placeholders). */
  onPlanned?: (w: PlannedWorkload) => void;
  /** Prometheus text endpoints of the target polled during the run (`--scrape`), every `intervalMs`; stored in the run file. */
  scrape?: { urls: string[]; intervalMs: number };
  /** Called about every second with the results thread's running figures (completed, errors, running p99s). */
  onLive?: (l: LiveFigures) => void;
  /** Called about every 250 ms while sending. */
  onProgress?: (p: ReplayProgress) => void;
  /**
   * Longest wait for an answer's headers after the send, ms (0: none). Default {@link DEFAULT_HEADERS_TIMEOUT_MS}.
   * A request it ends has error kind `timeout`, detail `headers_timeout`.
   */
  headersTimeoutMs?: number;
  /** Longest silence between two body chunks, ms (0: none). Default {@link DEFAULT_IDLE_TIMEOUT_MS}; detail `idle_timeout`. */
  idleTimeoutMs?: number;
  /** Longest a request may take from its send to its last byte, ms (0: none). Default {@link DEFAULT_REQUEST_TIMEOUT_MS}; detail `request_timeout`. */
  requestTimeoutMs?: number;
  /** After `stop()`, how long requests in flight may finish before they are cut (`client_aborted`), ms. Default {@link DEFAULT_STOP_GRACE_MS}. */
  stopGraceMs?: number;
  /** Called when the grace after `stop()` ran out, with the requests still in flight, just before they are cut. */
  onGraceExpired?: (inFlight: number) => void;
  /**
   * Fail fast: refuse a target the check before the clock finds unreachable, and stop the replay when its first
   * results all failed at the transport level (see `replay/defaults.ts`), both with TracewarpError `TW_TARGET`
   * naming the cause. Default false (failures are data); the CLI sets it unless `--keep-going`.
   */
  failFast?: boolean;
  /** Check the target (one connection, nothing sent) before the clock starts. Default true. */
  checkTarget?: boolean;
  /** Called with a line worth telling the user: a target check that failed when not failing fast. */
  onNotice?: (line: string) => void;
  /**
   * Sessions of the trace (`sessions/schedule.ts`): `closed` (default) sends each follow-up turn its think time after
   * its parent's answer ended; `open` sends every request at its own time. Nothing changes for a trace without sessions.
   */
  sessions?: SessionMode;
  /** Think time of follow-up turns in closed mode. Default `recorded`. */
  thinkTime?: ThinkTime;
  /**
   * A follow-up turn's prompt: `recorded` (default) begins with exactly the text its parent was sent plus a stand-in of
   * the parent's recorded answer (prefix caches see the sharing production saw); `none` synthesizes every prompt alone.
   */
  history?: 'recorded' | 'none';
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
  /** Failed requests by kind and cause (`{ timeout: { headers_timeout: 3 } }`; `''` when no cause is known). */
  errorDetails: Record<string, Record<string, number>>;
  /** True when requests were still in flight at the end of the grace after `stop()` and were cut. */
  cutAfterGrace: boolean;
}

/** A running replay. */
export interface ReplayHandle {
  /**
   * Stop sending now; requests in flight may finish for `graceMs` (default the `stopGraceMs` option), then they are
   * cut and reported as `client_aborted` (Ctrl-C, SIGTERM). The run file is written whole. A second call changes nothing.
   */
  stop(graceMs?: number): void;
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
  let grace: NodeJS.Timeout | null = null;
  const endGrace = () => {
    if (grace) clearTimeout(grace);
    grace = null;
  };
  const control: Control = {
    stopped: false, aborted: false, cutAfterGrace: false, inFlight: 0, stop: () => undefined, abort: () => undefined,
    abortAll() {
      endGrace();
      control.stopped = control.aborted = true;
      control.abort();
    },
  };
  const result = run(opts, control).finally(endGrace);
  return {
    stop(graceMs = opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS) {
      if (control.stopped) return;
      control.stopped = true;
      control.stop();
      grace = setTimeout(() => {
        grace = null;
        if (control.aborted) return;
        control.cutAfterGrace = true;
        opts.onGraceExpired?.(control.inFlight);
        control.abortAll();
      }, Math.max(0, graceMs));
    },
    abortInFlight: () => control.abortAll(),
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
  /** The grace after a stop ran out and the requests still in flight were cut. */
  cutAfterGrace: boolean;
  /** Requests in flight, from the last progress snapshot. */
  inFlight: number;
  /** Stop and cut everything now (the handle's `abortInFlight`, fail fast). */
  abortAll: () => void;
  stop: () => void;
  abort: () => void;
}

/**
 * One sending loop in this thread: warm-up, prefetch, a full GC, then the run on a clock started `DEFAULT_LEAD_MS`
 * ahead; its observations go to the results thread in batches.
 */
async function runOneLoop(engine: ReplayEngine, pool: SynthesisPool, collector: ResultsCollector, control: Control, onProgress: (p: ReplayProgress) => void, requestTimeoutMs: number): Promise<{ samples: LoopHealthSample[]; startWallMs: number; startMonoUs: number }> {
  setRequestTimeout(requestTimeoutMs);
  control.stop = () => engine.stop();
  control.abort = () => engine.abortInFlight();
  engine.on('progress', onProgress);
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

/** What a replay does with the workload's sessions: the plan, whether it is sent closed loop, the histories, the meta entry. */
function sessionsOf(arrivals: readonly Arrival[], opts: ReplayTraceOptions): { plan: SessionPlan | null; closed: SessionPlan | null; histories?: Map<number, HistorySpec>; meta: Record<string, unknown> | null } {
  const think = opts.thinkTime ?? DEFAULT_THINK_TIME;
  const plan = planSessions(arrivals, think);
  if (!plan) return { plan: null, closed: null, meta: null };
  const mode = opts.sessions ?? 'closed';
  const history = opts.history ?? 'recorded';
  const meta = { mode, thinkTime: think.kind === 'max' ? `max:${think.us / 1000}ms` : think.kind, history, sessions: plan.sessions, followUps: plan.followUps };
  return { plan, closed: mode === 'closed' ? plan : null, histories: history === 'recorded' ? historySpecs(arrivals, plan) : undefined, meta };
}

async function run(opts: ReplayTraceOptions, control: Control): Promise<ReplayOutcome> {
  const { arrivals, webSocketSessions } = planReplay(opts);
  const sessions = sessionsOf(arrivals, opts);
  const runId = opts.runId ?? randomUUID();
  const seed = opts.seed ?? 1;
  const headersTimeoutMs = timeoutMs('the headers timeout', opts.headersTimeoutMs, DEFAULT_HEADERS_TIMEOUT_MS);
  const idleTimeoutMs = timeoutMs('the idle timeout', opts.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS);
  const requestTimeoutMs = timeoutMs('the request timeout', opts.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS);
  const limits = { headers_timeout: humanMs(headersTimeoutMs), idle_timeout: humanMs(idleTimeoutMs), request_timeout: humanMs(requestTimeoutMs) };
  const engineOpts = {
    target: opts.target, maxInFlight: opts.maxInFlight, capPolicy: opts.capPolicy, headers: opts.headers, warmupConnections: opts.warmup, runId, headersTimeoutMs, idleTimeoutMs,
    ...(sessions.closed ? { sessions: { parent: sessions.closed.parent, thinkUs: sessions.closed.thinkUs } } : {}),
  };
  // A bad target is refused before any thread starts.
  const probe = new ReplayEngine(engineOpts);
  const onProgress = (p: ReplayProgress) => {
    control.inFlight = p.inFlight;
    opts.onProgress?.(p);
  };
  // Before the clock starts (and before any thread or file): can the target be reached at all? A stop ends the check.
  if (opts.checkTarget !== false) {
    const ended = new AbortController();
    control.stop = () => ended.abort();
    const check = await checkTarget(opts.target, TARGET_CHECK_TIMEOUT_MS, ended.signal);
    control.stop = () => undefined;
    if (!check.ok) {
      if (opts.failFast) {
        await probe.close();
        throw new TracewarpError('TW_TARGET', `${check.message} (checked before the clock started; nothing was sent)`);
      }
      opts.onNotice?.(`${check.message}; replaying anyway`);
    }
  }
  const tensorNames = await namesOfTemplatedTensors(opts, arrivals);
  const senders = resolveSenders(opts.workers ?? 'auto', arrivals);
  const collector = await ResultsCollector.start({
    runPath: opts.runFile,
    force: Boolean(opts.force),
    classes: requestClasses(arrivals, opts),
    ...(sessions.plan ? { sessions: { session: sessions.plan.session, turn: sessions.plan.turn, parent: sessions.closed?.parent ?? null } } : {}),
    ...(opts.scrape && opts.scrape.urls.length > 0 ? { scrape: opts.scrape } : {}),
    failFast: opts.failFast ? { requests: FAIL_FAST_REQUESTS, minRequests: FAIL_FAST_MIN_REQUESTS, windowUs: FAIL_FAST_WINDOW_MS * 1000, planned: arrivals.length } : null,
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
  let failedFast: { verdict: FailFastVerdict; message: string } | null = null;
  if (opts.onLive) collector.onLive(opts.onLive);
  collector.onFailFast((verdict) => {
    const message = failFastMessage(verdict, opts.target, opts.runFile, limits);
    failedFast = { verdict, message };
    failure ??= new TracewarpError('TW_TARGET', message);
    control.abortAll();
  });
  try {
    pool = await SynthesisPool.start({
      tracePath: opts.trace, arrivals, seed, model: opts.model, forceOutputLength: opts.forceOutputLength, pathMap: opts.pathMap, modelMap: opts.modelMap, placeholderSegments: opts.placeholderSegments, outputLength: opts.outputLength, clientAborts: opts.clientAborts, tensorNames, threads: opts.synthThreads,
      maxReadyRequests: opts.maxReadyRequests, maxReadyBytes: opts.maxReadyBytes, histories: sessions.histories,
    });
    const p = pool;
    p.onError((err) => {
      failure ??= err;
      control.abort();
    });
    const r = senders === 1
      ? await runOneLoop(probe, p, collector, control, onProgress, requestTimeoutMs)
      : await probe.close().then(() => runSenderThreads({ engine: engineOpts, requestTimeoutMs, pool: p, senders, collector, control, onProgress, leadMs: DEFAULT_LEAD_MS }));
    ({ samples, startWallMs, startMonoUs } = r);
  } catch (err) {
    failure ??= err as Error;
  } finally {
    if (pool) synthesis = await pool.close();
    await probe.close().catch(() => undefined);
  }
  const digest = pool && !control.stopped ? pool.workloadDigest() : null;
  const meta: Record<string, unknown> = {
    startWallUs: Math.round(startWallMs * 1000), startMonoUs, interrupted: control.stopped, plannedRequests: arrivals.length, senders, outputLength: opts.outputLength ?? 'recorded',
    ...(opts.slo ? { slo: opts.slo.text } : {}), ...(digest ? { digest } : {}), ...(opts.workload !== undefined ? { workload: opts.workload } : {}),
    timeouts: { headersMs: headersTimeoutMs, idleMs: idleTimeoutMs, requestMs: requestTimeoutMs }, cutAfterGrace: control.cutAfterGrace,
    ...(failedFast ? { failFast: failedFast } : {}), ...(opts.warmupUs ? { warmupUs: opts.warmupUs } : {}), ...(sessions.meta ? { sessions: sessions.meta } : {}),
  };
  if (failure && samples.length === 0) {
    await collector.abandon();
    throw failure;
  }
  const { summary, runFileError, errorDetails } = await collector.finish({ samples, synthesis, slo: opts.slo?.text, meta });
  if (failure) throw failure;
  return {
    summary, runFileError, runPath: opts.runFile, runId, plannedRequests: arrivals.length, interrupted: control.stopped, digest, webSocketSessions,
    firstRoute: arrivals[0]?.route ?? null, senders, errorDetails, cutAfterGrace: control.cutAfterGrace,
  };
}
