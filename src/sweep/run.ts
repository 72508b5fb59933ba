import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TracewarpError } from '../errors.ts';
import type { Percentiles, RunSummary } from '../metrics/summary.ts';
import { summarize } from '../metrics/summary.ts';
import { phaseFigures } from '../report/cold-start.ts';
import { assessHealth, HEALTH_BOUND_MS } from '../metrics/health.ts';
import type { Slo } from '../metrics/slo.ts';
import { replayTrace, workloadOf, type ReplayTraceOptions } from '../replay/run.ts';
import { readRunFile } from '../results/run-file.ts';
import type { RequestResult } from '../results/types.ts';
import { TraceReader } from '../trace/reader.ts';
import type { Step } from '../workload/pipeline.ts';
import { loop, meanRate, warpSpeed } from '../workload/warp.ts';
import type { Arrival } from '../workload/types.ts';
import { MIN_STEP_REQUESTS, SETTLE_MS, type SweepConfig, validateSweep } from './config.ts';
import { drain } from './drain.ts';
import { capacityOf, nextLoad, type Capacity, type SearchStep, type StepState } from './search.ts';

/** Options of {@link runSweep}. */
export interface SweepOptions {
  trace: string;
  target: string;
  /** Objectives; a step passes when every run objective is met (at least one is required). */
  slo: Slo;
  /** The SLO as written, for the result. */
  sloText: string;
  config: SweepConfig;
  /** Transformations applied before the load (`--drift`, `--only`-like steps, `--arrivals constant`, …). */
  steps?: readonly Step[];
  seed?: number;
  /** Folder for the steps' run files (`step-01-speed-2.run.db`, …); null: a temporary folder, removed at the end. */
  outDir: string | null;
  /** Prometheus endpoints of the target: scraped during each step, and polled between steps until its queue is empty. */
  scrape?: { urls: string[]; intervalMs: number };
  /** Other replay options passed to every step (headers, in-flight cap, workers, timeouts, …). */
  replay?: Partial<Omit<ReplayTraceOptions, 'trace' | 'target' | 'steps' | 'seed' | 'runFile' | 'slo' | 'scrape'>>;
  /** Called before each step and after it. */
  onStepStart?: (index: number, load: number, remeasure: boolean) => void;
  onStep?: (s: SweepStep) => void;
}

/** One measured step. Latency figures in ms, over the step's measured part (after its warm-up). */
export interface SweepStep extends SearchStep {
  index: number;
  remeasure: boolean;
  runFile: string | null;
  /** Requests in the measured part, and in the warm-up (reported apart). */
  requests: number;
  warmupRequests: number;
  achievedRps: number;
  throughputRps: number;
  errorRate: number;
  goodputFraction: number | null;
  latencyMs: Percentiles;
  latencyFromScheduledMs: Percentiles;
  ttftFromScheduledMs: Percentiles;
  tpotMs: Percentiles;
  itlMs: Percentiles;
  latenessMs: Percentiles;
  /** The warm-up's own latency p99 from the schedule (cold start), ms. */
  warmupLatencyP99Ms: number | null;
  /** The replayer's verdict on itself over the step's measured part (`distorted` makes it a `tool` step; the run file keeps the whole run's). */
  replayerHealth: string;
  /** Why the step is not a server result, when it is not. */
  note: string | null;
  /** How long the target took to drain after the step, ms. */
  drainMs: number;
}

/** What a sweep found: the capacity and every step. */
export interface SweepResult extends Capacity {
  by: SweepConfig['by'];
  /** The capacity as a multiple of the workload's own load (for `--by rate`: capacity rate / the workload's mean rate). */
  capacityFactor: number | null;
  slo: string;
  /** The transformed workload's own mean rate, req/s (load 1 of a speed or amplify sweep). */
  baseRateRps: number | null;
  stepDurationS: number;
  warmupS: number;
  precision: number | null;
  steps: SweepStep[];
  /** Loads measured twice (a contradiction, or the first fail confirmed): each measurement's verdict and latency p99 from the schedule, ms. */
  remeasured: Array<{ load: number; states: StepState[]; latencyP99Ms: Array<number | null> }>;
}

/**
 * The load transformation of one step, then looping and cutting to warm-up + duration. `--by rate` is a time-warp by
 * the factor at which the step's measured part offers that rate ({@link speedForRate}: a short step of a bursty trace
 * holds only its first minutes, whose rate is not the trace's mean).
 */
export function stepWorkload(base: readonly Step[], cfg: SweepConfig, load: number, arrivals: readonly Arrival[] = []): Step[] {
  const grow: Step = cfg.by === 'speed' ? { op: 'speed', factor: load } : cfg.by === 'amplify' ? { op: 'amplify', k: load, keepDuplicates: false } : { op: 'speed', factor: speedForRate(arrivals, load, cfg) };
  return [...base, grow, { op: 'loop', durationUs: cfg.warmupUs + cfg.stepDurationUs }];
}

/** Requests per second the measured part of a step offers at time-warp `speed` (the workload looped to fill it). */
function offeredAt(arrivals: readonly Arrival[], speed: number, cfg: SweepConfig): number {
  const a = loop(warpSpeed(arrivals, speed), { durationUs: cfg.warmupUs + cfg.stepDurationUs });
  return a.filter((x) => x.atUs >= cfg.warmupUs).length / (cfg.stepDurationUs / 1e6);
}

/**
 * The time-warp factor at which the step's measured part offers `rate` req/s: a geometric bisection (the offered
 * rate grows with the factor), from a bracket around rate / the workload's mean rate.
 * @throws TracewarpError `TW_USAGE` for a workload without a measurable rate.
 */
export function speedForRate(arrivals: readonly Arrival[], rate: number, cfg: SweepConfig): number {
  const mean = meanRate(arrivals);
  if (mean === null) throw new TracewarpError('TW_USAGE', '--by rate needs a workload of at least two requests at different times');
  let lo = rate / mean / 16;
  let hi = rate / mean * 16;
  while (offeredAt(arrivals, hi, cfg) < rate && hi < 1e6) hi *= 4;
  while (offeredAt(arrivals, lo, cfg) > rate && lo > 1e-6) lo /= 4;
  for (let i = 0; i < 40 && hi / lo > 1.001; i++) {
    const mid = Math.sqrt(lo * hi);
    if (offeredAt(arrivals, mid, cfg) < rate) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * Runs a capacity sweep: the same transformed workload at growing load (the listed loads, or a search), each step
 * replayed open loop as `replay` does and judged on its measured part, the target drained between steps.
 * @throws TracewarpError `TW_USAGE` for a bad configuration or an SLO without run objectives; a replay's errors.
 */
export async function runSweep(opts: SweepOptions): Promise<SweepResult> {
  const cfg = opts.config;
  const problems = validateSweep(cfg);
  if (opts.slo.objectives.length === 0) problems.push(`a sweep needs run objectives to judge each step (e.g. 'p99<800ms,error_rate<1%'); '${opts.sloText}' has none`);
  if (problems.length) throw new TracewarpError('TW_USAGE', problems.join('; '));
  const base = baseWorkload(opts);
  const baseRateRps = meanRate(base);
  const start = cfg.start ?? (cfg.by === 'rate' ? (baseRateRps ?? 1) : 1);
  const dir = opts.outDir ?? mkdtempSync(join(tmpdir(), 'tracewarp-sweep-'));
  mkdirSync(dir, { recursive: true });
  const steps: SweepStep[] = [];
  try {
    for (let i = 0; ; i++) {
      const next = cfg.search ? nextLoad(steps, cfg, start) : cfg.loads![i] === undefined ? null : { load: cfg.loads![i]!, remeasure: false };
      if (!next) break;
      opts.onStepStart?.(i, next.load, next.remeasure);
      const s = await measureStep(opts, base, i, next.load, next.remeasure, join(dir, `step-${String(i + 1).padStart(2, '0')}-${cfg.by}-${next.load}.run.db`));
      steps.push(s);
      opts.onStep?.(s);
    }
  } finally {
    if (opts.outDir === null) rmSync(dir, { recursive: true, force: true });
  }
  for (const s of steps) if (opts.outDir === null) s.runFile = null;
  const cap = capacityOf(steps);
  const capacityFactor = cap.capacityLoad === null ? null : cfg.by === 'rate' ? (baseRateRps ? cap.capacityLoad / baseRateRps : null) : cap.capacityLoad;
  return {
    ...cap, capacityFactor, by: cfg.by, slo: opts.sloText, baseRateRps, stepDurationS: cfg.stepDurationUs / 1e6,
    warmupS: cfg.warmupUs / 1e6, precision: cfg.search ? cfg.precision : null, steps, remeasured: remeasuredOf(steps),
  };
}

function remeasuredOf(steps: readonly SweepStep[]): SweepResult['remeasured'] {
  const loads = [...new Set(steps.filter((s) => s.remeasure).map((s) => s.load))];
  return loads.map((load) => {
    const at = steps.filter((s) => s.load === load);
    return { load, states: at.map((s) => s.state), latencyP99Ms: at.map((s) => s.latencyFromScheduledMs.p99) };
  });
}

/** The workload before the load transformation (the base steps applied). */
function baseWorkload(opts: SweepOptions): Arrival[] {
  const reader = new TraceReader(opts.trace);
  try {
    return workloadOf(reader, opts.steps ?? [], opts.seed ?? 1).after;
  } finally {
    reader.close();
  }
}

async function measureStep(opts: SweepOptions, base: readonly Arrival[], index: number, load: number, remeasure: boolean, runFile: string): Promise<SweepStep> {
  const cfg = opts.config;
  await replayTrace({
    ...opts.replay, trace: opts.trace, target: opts.target, steps: stepWorkload(opts.steps ?? [], cfg, load, base), seed: opts.seed ?? 1,
    runFile, force: true, slo: opts.slo, warmupUs: cfg.warmupUs, speed: cfg.by === 'speed' ? load : 1, workload: `sweep --by ${cfg.by} ${load}`,
    ...(opts.scrape ? { scrape: opts.scrape } : {}),
  });
  const { results } = readRunFile(runFile);
  const drainMs = opts.scrape ? await drain(opts.scrape.urls, cfg.drainTimeoutMs) : 0;
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  return judgeStep(opts, { index, load, remeasure, runFile, results, drainMs });
}

/** Send lateness p99 past this many times the health bound: the replayer fell behind its schedule, whatever the verdict. */
export const FELL_BEHIND_FACTOR = 10;

/**
 * Whether the replayer's own delays could have decided a step's verdict: the verdict judged from the actual sends
 * (lateness taken out) and without the requests its loop's stalls may have moved must both be the verdict as judged.
 * Lateness only adds to latency from the schedule, so a step that passes with it passes without it.
 */
function verdictIsTheServers(measured: readonly RequestResult[], slo: Slo, met: boolean): boolean {
  const fromSend = measured.map((r) => (r.sentUs !== null ? { ...r, scheduledUs: r.sentUs } : r));
  const unstalled = measured.filter((r) => !r.toolStall);
  return Boolean(summarize(fromSend, slo).sloMet) === met && (unstalled.length < MIN_STEP_REQUESTS || Boolean(summarize(unstalled, slo).sloMet) === met);
}

/** Judges a step from its run file's rows: the measured part (scheduled at or after the warm-up) against the SLO. */
export function judgeStep(opts: Pick<SweepOptions, 'slo' | 'config'>, m: { index: number; load: number; remeasure: boolean; runFile: string | null; results: readonly RequestResult[]; drainMs: number }): SweepStep {
  const warm = m.results.filter((r) => r.scheduledUs < opts.config.warmupUs);
  const measured = m.results.filter((r) => r.scheduledUs >= opts.config.warmupUs);
  const s: RunSummary = summarize(measured, opts.slo);
  let state: StepState = s.sloMet ? 'pass' : 'fail';
  let note: string | null = null;
  // The replayer's health over the measured part: the warm-up's start-up stalls are the warm-up's.
  const health = assessHealth([], measured);
  const lateP99 = health.sendLatenessMs.p99 ?? 0;
  if (measured.length < MIN_STEP_REQUESTS) {
    state = 'few';
    note = `${measured.length} measured requests, fewer than ${MIN_STEP_REQUESTS}: not judged (a longer --step-duration gives more)`;
  } else if (lateP99 > FELL_BEHIND_FACTOR * HEALTH_BOUND_MS) {
    state = 'tool';
    note = `the replayer fell behind this step's schedule (send lateness p99 ${lateP99} ms): not a server result`;
  } else if (health.verdict === 'distorted' && !verdictIsTheServers(measured, opts.slo, Boolean(s.sloMet))) {
    state = 'tool';
    note = `the replayer's own delays decided this step's verdict (${health.reasons.join('; ')}): not a server result`;
  } else if (health.verdict === 'distorted') {
    note = `the replayer's own delays (${health.reasons.join('; ')}) did not decide the verdict: it is the same judged from the actual sends and without the requests its stalls touched`;
  }
  const eligible = s.requests - (s.recordedFailures ?? 0);
  return {
    index: m.index, load: m.load, remeasure: m.remeasure, runFile: m.runFile, state, note,
    offeredRps: measured.length / (opts.config.stepDurationUs / 1e6), objectives: s.objectives ?? [],
    latencyP50Ms: s.latencyFromScheduledMs.p50, requests: measured.length, warmupRequests: warm.length,
    achievedRps: s.achievedRate ?? 0, throughputRps: s.throughput ?? 0, errorRate: eligible > 0 ? s.errors / s.requests : 0,
    goodputFraction: s.goodput?.fraction ?? null, latencyMs: s.latencyMs, latencyFromScheduledMs: s.latencyFromScheduledMs,
    ttftFromScheduledMs: s.ttftFromScheduledMs, tpotMs: s.tpotMs, itlMs: s.itlMs, latenessMs: s.latenessMs,
    warmupLatencyP99Ms: phaseFigures(warm).latencyP99Ms, replayerHealth: health.verdict, drainMs: m.drainMs,
  };
}

