import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TracewarpError } from '../errors.ts';
import type { Percentiles, RunSummary } from '../metrics/summary.ts';
import { summarize } from '../metrics/summary.ts';
import { assessHealth, HEALTH_BOUND_MS, HEALTH_MAX_AFFECTED } from '../metrics/health.ts';
import type { Slo } from '../metrics/slo.ts';
import { replayTrace, workloadOf, type ReplayTraceOptions } from '../replay/run.ts';
import { readRunFile } from '../results/run-file.ts';
import type { ReplayerHealth, RequestResult } from '../results/types.ts';
import { TraceReader } from '../trace/reader.ts';
import type { Step } from '../workload/pipeline.ts';
import { meanRate } from '../workload/warp.ts';
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
}

/** The load transformation of one step, then looping and cutting to warm-up + duration. */
export function stepWorkload(base: readonly Step[], cfg: SweepConfig, load: number): Step[] {
  const grow: Step = cfg.by === 'speed' ? { op: 'speed', factor: load } : cfg.by === 'amplify' ? { op: 'amplify', k: load, keepDuplicates: false } : { op: 'rate', rate: load };
  return [...base, grow, { op: 'loop', durationUs: cfg.warmupUs + cfg.stepDurationUs }];
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
  const baseRateRps = baseRate(opts);
  const start = cfg.start ?? (cfg.by === 'rate' ? (baseRateRps ?? 1) : 1);
  const dir = opts.outDir ?? mkdtempSync(join(tmpdir(), 'tracewarp-sweep-'));
  mkdirSync(dir, { recursive: true });
  const steps: SweepStep[] = [];
  try {
    for (let i = 0; ; i++) {
      const next = cfg.search ? nextLoad(steps, cfg, start) : cfg.loads![i] === undefined ? null : { load: cfg.loads![i]!, remeasure: false };
      if (!next) break;
      opts.onStepStart?.(i, next.load, next.remeasure);
      const s = await measureStep(opts, i, next.load, next.remeasure, join(dir, `step-${String(i + 1).padStart(2, '0')}-${cfg.by}-${next.load}.run.db`));
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
    warmupS: cfg.warmupUs / 1e6, precision: cfg.search ? cfg.precision : null, steps,
  };
}

function baseRate(opts: SweepOptions): number | null {
  const reader = new TraceReader(opts.trace);
  try {
    return meanRate(workloadOf(reader, opts.steps ?? [], opts.seed ?? 1).after);
  } finally {
    reader.close();
  }
}

async function measureStep(opts: SweepOptions, index: number, load: number, remeasure: boolean, runFile: string): Promise<SweepStep> {
  const cfg = opts.config;
  await replayTrace({
    ...opts.replay, trace: opts.trace, target: opts.target, steps: stepWorkload(opts.steps ?? [], cfg, load), seed: opts.seed ?? 1,
    runFile, force: true, slo: opts.slo, warmupUs: cfg.warmupUs, speed: cfg.by === 'speed' ? load : 1, workload: `sweep --by ${cfg.by} ${load}`,
    ...(opts.scrape ? { scrape: opts.scrape } : {}),
  });
  const { results } = readRunFile(runFile);
  const drainMs = opts.scrape ? await drain(opts.scrape.urls, cfg.drainTimeoutMs) : 0;
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  return judgeStep(opts, { index, load, remeasure, runFile, results, drainMs });
}

/**
 * Whether a step distorted only by stalls of the replayer's loop (its sends kept their schedule, its bodies were
 * ready) gives the same verdict without the requests the stalls may have moved: then the stalls did not decide it.
 */
function verdictSurvivesStalls(measured: readonly RequestResult[], h: ReplayerHealth, slo: Slo, met: boolean): boolean {
  const onTime = (h.sendLatenessMs.p99 ?? 0) <= HEALTH_BOUND_MS && h.notReadyAtDue <= Math.max(1, measured.length * HEALTH_MAX_AFFECTED);
  const clean = measured.filter((r) => !r.toolStall);
  return onTime && clean.length >= MIN_STEP_REQUESTS && Boolean(summarize(clean, slo).sloMet) === met;
}

/** Judges a step from its run file's rows: the measured part (scheduled at or after the warm-up) against the SLO. */
export function judgeStep(opts: Pick<SweepOptions, 'slo' | 'config'>, m: { index: number; load: number; remeasure: boolean; runFile: string | null; results: readonly RequestResult[]; drainMs: number }): SweepStep {
  const warm = m.results.filter((r) => r.scheduledUs < opts.config.warmupUs);
  const measured = m.results.filter((r) => r.scheduledUs >= opts.config.warmupUs);
  const s: RunSummary = summarize(measured, opts.slo);
  const warmS = summarize(warm);
  let state: StepState = s.sloMet ? 'pass' : 'fail';
  let note: string | null = null;
  // The replayer's health over the measured part: the warm-up's start-up stalls are the warm-up's.
  const health = assessHealth([], measured);
  if (health.verdict === 'distorted' && verdictSurvivesStalls(measured, health, opts.slo, Boolean(s.sloMet))) {
    note = `${health.resultsDuringStall} requests were measured while the replayer's loop stalled; the verdict is the same without them, so the step counts`;
  } else if (health.verdict === 'distorted') {
    state = 'tool';
    note = `the replayer could not keep this step's schedule (${health.reasons.join('; ')}): not a server result`;
  } else if (measured.length < MIN_STEP_REQUESTS) {
    state = 'few';
    note = `${measured.length} measured requests, fewer than ${MIN_STEP_REQUESTS}: not judged (a longer --step-duration gives more)`;
  }
  const eligible = s.requests - (s.recordedFailures ?? 0);
  return {
    index: m.index, load: m.load, remeasure: m.remeasure, runFile: m.runFile, state, note,
    offeredRps: measured.length / (opts.config.stepDurationUs / 1e6), objectives: s.objectives ?? [],
    latencyP50Ms: s.latencyFromScheduledMs.p50, requests: measured.length, warmupRequests: warm.length,
    achievedRps: s.achievedRate ?? 0, throughputRps: s.throughput ?? 0, errorRate: eligible > 0 ? s.errors / s.requests : 0,
    goodputFraction: s.goodput?.fraction ?? null, latencyMs: s.latencyMs, latencyFromScheduledMs: s.latencyFromScheduledMs,
    ttftFromScheduledMs: s.ttftFromScheduledMs, tpotMs: s.tpotMs, itlMs: s.itlMs, latenessMs: s.latenessMs,
    warmupLatencyP99Ms: warmS.latencyFromScheduledMs.p99, replayerHealth: health.verdict, drainMs: m.drainMs,
  };
}

