import type { TraceRecord } from '../types.ts';

/** A trace record placed on the replay schedule. */
export interface Arrival {
  /** 0-based position in the transformed workload. */
  index: number;
  record: TraceRecord;
  /** Scheduled send time, integer µs after the replay's offset 0. */
  scheduledUs: number;
}

/**
 * Time-warp by a speed factor (2 = twice as fast): the first arrival goes at 0 and every later one at
 * `round((offsetUs − firstOffsetUs) / speed)`, so inter-arrival times shrink by exactly the factor and the relative
 * structure (bursts, diurnal shape) is kept; offsets are scaled, never resampled. Pure: no clock, no I/O.
 * Input must be ordered by offset (the trace reader yields it so).
 * @throws RangeError when `speed` is not a finite number > 0.
 */
export function* timeWarp(records: Iterable<TraceRecord>, speed: number): Generator<Arrival> {
  if (!(speed > 0) || !Number.isFinite(speed)) throw new RangeError(`speed must be a finite number > 0, got ${speed}`);
  let first: number | null = null;
  let index = 0;
  for (const record of records) {
    if (first === null) first = record.offsetUs;
    yield { index: index++, record, scheduledUs: Math.round((record.offsetUs - first) / speed) };
  }
}
