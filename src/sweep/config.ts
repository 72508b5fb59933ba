/**
 * Configuration of a capacity sweep (issue 12), apart from its execution (as k6's `lib/executor` keeps `NewConfig`
 * and `Validate`): what grows the load, which loads are measured, how long each step lasts. Defaults as named
 * constants in one place.
 */

/** How a sweep grows the load of the recorded workload. */
export const SWEEP_BY = ['speed', 'amplify', 'rate'] as const;
/**
 * `speed`: time-warp by the factor (bursts kept, faster); `amplify`: K× the requests on the trace's own timing;
 * `rate`: time-warp to a mean arrival rate in req/s (the step's load value is the rate).
 */
export type SweepBy = (typeof SWEEP_BY)[number];

/** Search precision: stop when the last pass and the first fail are within this fraction of each other. */
export const DEFAULT_SWEEP_PRECISION = 0.05;
/** Measured part of each step, µs. 30 s: enough requests for a p99 at tens of req/s, short enough for ten steps. */
export const DEFAULT_STEP_DURATION_US = 30_000_000;
/** Warm-up of each step, replayed but reported apart (connections, caches, the previous step's tail), µs. */
export const DEFAULT_SWEEP_WARMUP_US = 5_000_000;
/** Most steps a sweep runs (listed loads, or a search's bracket, bisection and re-measurements). */
export const MAX_SWEEP_STEPS = 32;
/** Most doublings of the exponential bracket (up from the start, or down when the start already fails): 2¹² = 4096×. */
export const MAX_BRACKET_DOUBLINGS = 12;
/** Longest wait, after a step, for the target to drain (its scraped queue and running requests at 0), ms. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 60_000;
/** Pause after each step once drained, ms: the target's last answers and sockets settle before the next step. */
export const SETTLE_MS = 250;
/**
 * A step with fewer measured requests than this is not judged (`too few requests`): a p99 of 5 requests is their
 * maximum, and a capacity built on it is noise.
 */
export const MIN_STEP_REQUESTS = 20;
/**
 * The boundary is a *cliff* when the binding objective's value grows more than this many times faster than the load
 * between the last passing and the first failing step (latency exploding as a queue builds); else a *slope*.
 */
export const CLIFF_RATIO = 2;
/** The knee: the highest load whose median latency from the schedule stays within this factor of the lightest step's. */
export const KNEE_LATENCY_FACTOR = 1.5;

/** A validated sweep configuration. */
export interface SweepConfig {
  by: SweepBy;
  /** Loads to measure, ascending (speed factors, amplification factors or req/s); null with `search`. */
  loads: number[] | null;
  /** Search for the capacity: an exponential bracket from `start`, then bisection to `precision`. */
  search: boolean;
  /** Fraction, e.g. 0.05. */
  precision: number;
  /** First load of a search (speed 1, amplify 1, or the trace's own mean rate when `by` is `rate` and none given). */
  start: number | null;
  stepDurationUs: number;
  warmupUs: number;
  maxSteps: number;
  drainTimeoutMs: number;
}

/** Fills the defaults of a partial configuration. */
export function sweepConfig(c: Partial<SweepConfig> & Pick<SweepConfig, 'by'>): SweepConfig {
  return {
    by: c.by,
    loads: c.loads ?? null,
    search: c.search ?? c.loads == null,
    precision: c.precision ?? DEFAULT_SWEEP_PRECISION,
    start: c.start ?? null,
    stepDurationUs: c.stepDurationUs ?? DEFAULT_STEP_DURATION_US,
    warmupUs: c.warmupUs ?? DEFAULT_SWEEP_WARMUP_US,
    maxSteps: c.maxSteps ?? MAX_SWEEP_STEPS,
    drainTimeoutMs: c.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
  };
}

/** Every problem of a configuration, as lines a user can act on (empty when valid). */
export function validateSweep(c: SweepConfig): string[] {
  const errors: string[] = [];
  if (!(SWEEP_BY as readonly string[]).includes(c.by)) errors.push(`--by must be one of ${SWEEP_BY.join(', ')}, got '${c.by}'`);
  if (c.search && c.loads) errors.push('give either the loads to measure (--speeds) or --search, not both');
  if (!c.search && (!c.loads || c.loads.length === 0)) errors.push('give the loads to measure (--speeds 1,2,4) or --search');
  for (const l of c.loads ?? []) {
    if (!(l > 0) || !Number.isFinite(l)) errors.push(`a load must be a number > 0, got ${l}`);
    else if (c.by === 'amplify' && l < 1) errors.push(`an amplification factor must be ≥ 1, got ${l}`);
  }
  if (c.loads && c.loads.length > c.maxSteps) errors.push(`at most ${c.maxSteps} loads, got ${c.loads.length}`);
  if (!(c.precision > 0 && c.precision < 1)) errors.push(`--precision must be between 0 and 100 %, got ${c.precision * 100} %`);
  if (c.start !== null && !(c.start > 0 && Number.isFinite(c.start))) errors.push(`--start must be a number > 0, got ${c.start}`);
  if (c.start !== null && c.by === 'amplify' && c.start < 1) errors.push(`--start of an amplification sweep must be ≥ 1, got ${c.start}`);
  if (!(c.stepDurationUs >= 1_000_000)) errors.push(`--step-duration must be at least 1 s, got ${c.stepDurationUs / 1e6} s`);
  if (!(c.warmupUs >= 0)) errors.push(`--warmup must be ≥ 0, got ${c.warmupUs / 1e6} s`);
  return errors;
}
