import type { ObjectiveResult } from '../metrics/objectives.ts';
import { CLIFF_RATIO, KNEE_LATENCY_FACTOR, MAX_BRACKET_DOUBLINGS, type SweepConfig } from './config.ts';

/**
 * The capacity search, pure (no I/O, no clock): which load to measure next, and what the measured steps say. As
 * perf_analyzer and AIPerf's search recipes do: an exponential bracket (doubling until the SLO fails, or halving
 * while the start already fails), then bisection between the last pass and the first fail to a stated precision.
 * Monotone by construction in offered load: the capacity is the highest pass below the lowest fail; a pass above a
 * fail (noise) is measured once more before it is believed, and so is the first failing load before the answer.
 */

/**
 * What one step showed: `pass`/`fail` (every objective met, or not), `tool` (the replayer could not keep its
 * schedule: never a server result), `few` (too few measured requests to judge).
 */
export type StepState = 'pass' | 'fail' | 'tool' | 'few';

/** The part of a measured step the search reads. */
export interface SearchStep {
  /** The load value: a speed or amplification factor, or req/s (`--by rate`). */
  load: number;
  state: StepState;
  /** Requests per second the step's schedule offered (its measured part). */
  offeredRps: number;
  objectives: ObjectiveResult[];
  /** Median latency from the scheduled send, ms (null with no completed request). */
  latencyP50Ms: number | null;
}

/** The next load to measure, and whether it re-measures one already measured; null when the search is done. */
export interface NextLoad {
  load: number;
  remeasure: boolean;
}

/** Rounds a load to 4 significant digits (loads a person can read and type again). */
export function roundLoad(x: number): number {
  return Number(x.toPrecision(4));
}

/** The latest measurement of each load. */
function latest(steps: readonly SearchStep[]): Map<number, SearchStep> {
  const m = new Map<number, SearchStep>();
  for (const s of steps) m.set(s.load, s);
  return m;
}

const count = (steps: readonly SearchStep[], load: number) => steps.filter((s) => s.load === load).length;

/** The lowest failing load and the highest passing load below it (by latest measurements). */
export function bracket(steps: readonly SearchStep[]): { lo: number | null; hi: number | null } {
  const judged = [...latest(steps).values()];
  const fails = judged.filter((s) => s.state === 'fail').map((s) => s.load);
  const hi = fails.length ? Math.min(...fails) : null;
  const passes = judged.filter((s) => s.state === 'pass' && (hi === null || s.load < hi)).map((s) => s.load);
  return { lo: passes.length ? Math.max(...passes) : null, hi };
}

/** A pass above the lowest fail that has not been measured twice (noise, or a real non-monotone server). */
function contradiction(steps: readonly SearchStep[]): number | null {
  const { hi } = bracket(steps);
  if (hi === null) return null;
  const above = [...latest(steps).values()].filter((s) => s.state === 'pass' && s.load > hi && count(steps, s.load) < 2);
  if (above.length) return above[0]!.load;
  return count(steps, hi) < 2 && [...latest(steps).values()].some((s) => s.state === 'pass' && s.load > hi) ? hi : null;
}

/**
 * The next load of a search, given the steps so far and the first load; null when done: the bracket is within the
 * precision, the last step was the replayer's limit (`tool`), the step budget is spent, or the bracket ran out of
 * doublings (the capacity is beyond the range, or below it).
 */
export function nextLoad(steps: readonly SearchStep[], cfg: SweepConfig, start: number): NextLoad | null {
  if (steps.length === 0) return { load: roundLoad(start), remeasure: false };
  if (steps.length >= cfg.maxSteps || steps.at(-1)!.state === 'tool') return null;
  const again = contradiction(steps);
  if (again !== null) return { load: again, remeasure: true };
  const { lo, hi } = bracket(steps);
  const top = start * 2 ** MAX_BRACKET_DOUBLINGS;
  const floor = Math.max(cfg.by === 'amplify' ? 1 : 0, start / 2 ** MAX_BRACKET_DOUBLINGS);
  let next: number;
  if (hi === null) {
    next = Math.max(...steps.map((s) => s.load)) * 2;
    if (next > top) return null;
  } else if (lo === null) {
    next = Math.min(...steps.map((s) => s.load)) / 2;
    if (next < floor) next = floor;
    if (steps.some((s) => s.load === roundLoad(next))) return null;
  } else {
    if ((hi - lo) / lo <= cfg.precision) {
      // Before the answer, the first failing load is measured once more: one noisy fail would set the capacity.
      return count(steps, hi) < 2 ? { load: hi, remeasure: true } : null;
    }
    next = (lo + hi) / 2;
  }
  const load = roundLoad(next);
  return steps.some((s) => s.load === load) && lo !== null && hi !== null ? null : { load, remeasure: false };
}

/** What a sweep found. */
export interface Capacity {
  /** The highest passing load below the lowest failing one (null when none passed). */
  capacityLoad: number | null;
  /** Its offered rate, req/s. */
  capacityRps: number | null;
  /** The objective that failed first above the capacity: the one furthest past its limit at the first failing load. */
  bindingObjective: string | null;
  /** How the binding objective crossed its limit between the last pass and the first fail (null without both). */
  boundary: 'cliff' | 'slope' | null;
  /** The knee of the latency–throughput curve: the highest load whose median latency from the schedule stays within {@link KNEE_LATENCY_FACTOR}× the lightest step's. */
  kneeLoad: number | null;
  kneeRps: number | null;
  /**
   * What ended the search: `server` (a load failed the SLO), `replayer` (the tool could not keep a step's schedule;
   * the capacity is at least what passed), `range` (every load passed), `none` (no load passed).
   */
  limitedBy: 'server' | 'replayer' | 'range' | 'none';
  /** A load passed above one that failed, after being measured twice. */
  nonMonotone: boolean;
}

/** How far an objective is from its limit: value / limit for `<` objectives, limit / value for `>` (over 1: missed). */
export function margin(o: ObjectiveResult): number | null {
  if (o.value === null) return null;
  const higherIsBetter = /[>]/.test(o.objective);
  if (higherIsBetter) return o.value > 0 ? o.limit / o.value : Infinity;
  return o.limit > 0 ? o.value / o.limit : o.value > 0 ? Infinity : 0;
}

/** The capacity the measured steps show (see {@link Capacity}). */
export function capacityOf(steps: readonly SearchStep[]): Capacity {
  const { lo, hi } = bracket(steps);
  const byLoad = latest(steps);
  const pass = lo === null ? null : byLoad.get(lo)!;
  const fail = hi === null ? null : byLoad.get(hi)!;
  const missed = fail ? fail.objectives.filter((o) => !o.met).sort((a, b) => (margin(b) ?? Infinity) - (margin(a) ?? Infinity)) : [];
  const binding = missed[0] ?? null;
  let boundary: Capacity['boundary'] = null;
  if (pass && fail && binding) {
    const before = pass.objectives.find((o) => o.objective === binding.objective);
    const growth = before && before.value && binding.value !== null ? binding.value / before.value : Infinity;
    const higherIsBetter = /[>]/.test(binding.objective);
    const change = higherIsBetter ? 1 / Math.max(growth, 1e-9) : growth;
    boundary = change / (fail.offeredRps / Math.max(pass.offeredRps, 1e-9)) > CLIFF_RATIO ? 'cliff' : 'slope';
  }
  const knee = kneeOf([...byLoad.values()].filter((s) => s.state === 'pass' || s.state === 'fail'));
  const last = steps.at(-1);
  const limitedBy: Capacity['limitedBy'] = last?.state === 'tool' && hi === null ? 'replayer' : hi !== null ? (lo === null ? 'none' : 'server') : 'range';
  const nonMonotone = hi !== null && [...byLoad.values()].some((s) => s.state === 'pass' && s.load > hi);
  return {
    capacityLoad: lo, capacityRps: pass?.offeredRps ?? null, bindingObjective: binding?.objective ?? null, boundary,
    kneeLoad: knee?.load ?? null, kneeRps: knee?.offeredRps ?? null, limitedBy, nonMonotone,
  };
}

function kneeOf(steps: SearchStep[]): SearchStep | null {
  const sorted = steps.filter((s) => s.latencyP50Ms !== null).sort((a, b) => a.load - b.load);
  if (sorted.length === 0) return null;
  const base = sorted[0]!.latencyP50Ms!;
  let knee: SearchStep | null = null;
  for (const s of sorted) {
    if (s.latencyP50Ms! > base * KNEE_LATENCY_FACTOR) break;
    knee = s;
  }
  return knee;
}
