/**
 * Units and clocks. Times on disk are integer microseconds (µs) from a monotonic clock; durations shown to users are
 * milliseconds (ms) or seconds (s), always with the unit in the name.
 */

/**
 * Monotonic time in integer µs (`process.hrtime`, the system's CLOCK_MONOTONIC): never goes backwards, not wall-clock,
 * and the same clock in every thread and every process of the machine, so a run's offset 0 taken in one thread holds
 * in the others and an external probe's timestamps compare directly.
 */
export function monoUs(): number {
  // performance.now() is the same clock (hrtime) read without allocating a BigInt: the sending loop reads it often.
  return Math.round(HRTIME_OFFSET_US + performance.now() * 1000);
}

/** `hrtime` µs minus `performance.now()` µs in this thread, measured once (the closest of a few paired readings). */
const HRTIME_OFFSET_US = (() => {
  let best = Infinity;
  let offset = 0;
  for (let i = 0; i < 20; i++) {
    const a = performance.now();
    const h = Number(process.hrtime.bigint() / 1000n);
    const b = performance.now();
    if (b - a < best) {
      best = b - a;
      offset = h - (a + b) * 500;
    }
  }
  return offset;
})();

/** Wall-clock time in integer µs since the Unix epoch (ms precision from `Date.now()`). */
export function wallUs(): number {
  return Date.now() * 1000;
}

/**
 * Parses a duration such as `500ms`, `2s`, `1.5m`, `250us` or a bare number of seconds into µs.
 * @throws Error with a message naming the bad value when it is not a duration.
 */
export function parseDurationUs(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)?\s*$/.exec(text);
  if (!m) throw new Error(`not a duration: '${text}' (use e.g. 500ms, 2s, 1.5m)`);
  const v = Number(m[1]);
  const unit = m[2] ?? 's';
  const factor = unit === 'us' || unit === 'µs' ? 1 : unit === 'ms' ? 1e3 : unit === 's' ? 1e6 : unit === 'm' ? 60e6 : 3600e6;
  return Math.round(v * factor);
}
