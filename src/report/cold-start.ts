import { nearestRank } from '../metrics/exact.ts';
import { completed, type RequestResult } from '../results/types.ts';
import type { ColdStart, PhaseFigures } from './model.ts';

/** Requests the cold-start view takes as "the first ones" of a run, by schedule. */
export const COLD_START_REQUESTS = 10;

const msAt = (us: number[], q: number): number | null => (us.length ? Math.round(nearestRank(us.sort((a, b) => a - b), q) / 10) / 100 : null);

/** Latency and TTFT p50/p99 from the scheduled send, exact, of some requests. */
export function phaseFigures(rows: readonly RequestResult[]): PhaseFigures {
  const done = rows.filter(completed);
  const lat = done.map((r) => r.endUs! - r.scheduledUs);
  const ttft = done.filter((r) => r.ttftAtUs !== null).map((r) => r.ttftAtUs! - r.scheduledUs);
  return {
    requests: rows.length, errors: rows.length - done.length,
    latencyP50Ms: msAt(lat, 0.5), latencyP99Ms: msAt(lat, 0.99), ttftP50Ms: msAt(ttft, 0.5), ttftP99Ms: msAt(ttft, 0.99),
  };
}

/**
 * The run's start apart from its steady state: its first {@link COLD_START_REQUESTS} requests (connection set-up,
 * model load, empty caches), the warm-up window excluded from the headline figures (`warmupUs`, by scheduled send),
 * and the rest — so a cold start is seen instead of hiding in the tail.
 */
export function coldStartOf(rows: readonly RequestResult[], warmupUs: number): ColdStart {
  const bySchedule = [...rows].sort((a, b) => a.scheduledUs - b.scheduledUs);
  const warm = warmupUs > 0 ? bySchedule.filter((r) => r.scheduledUs < warmupUs) : [];
  const steady = warmupUs > 0 ? bySchedule.filter((r) => r.scheduledUs >= warmupUs) : bySchedule.slice(COLD_START_REQUESTS);
  return {
    warmupS: warmupUs / 1e6, excludedRequests: warm.length, firstN: Math.min(COLD_START_REQUESTS, rows.length),
    first: phaseFigures(bySchedule.slice(0, COLD_START_REQUESTS)), warmup: warmupUs > 0 ? phaseFigures(warm) : null, steady: phaseFigures(steady),
  };
}
