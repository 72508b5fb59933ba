import type { Rng } from '../rng.ts';
import type { Arrival } from './types.ts';

function checkFactor(name: string, f: number): void {
  if (!(f > 0) || !Number.isFinite(f)) throw new RangeError(`${name} must be a finite number > 0, got ${f}`);
}

/**
 * Time-warp by a speed factor (2 = twice as fast): every offset becomes `round((atUs − first) / speed)`, so
 * inter-arrival times shrink by exactly the factor and the relative structure (bursts, diurnal shape) is kept; offsets
 * are scaled, never resampled. The first arrival goes to 0.
 * @throws RangeError when `speed` is not a finite number > 0.
 */
export function warpSpeed(arrivals: readonly Arrival[], speed: number): Arrival[] {
  checkFactor('speed', speed);
  if (arrivals.length === 0) return [];
  const first = arrivals[0]!.atUs;
  return arrivals.map((a) => ({ ...a, atUs: Math.round((a.atUs - first) / speed), timeScale: (a.timeScale ?? 1) / speed }));
}

/** Mean arrival rate in req/s: (n − 1) / span, or null for fewer than 2 arrivals or a zero span. */
export function meanRate(arrivals: readonly Arrival[]): number | null {
  if (arrivals.length < 2) return null;
  const span = arrivals[arrivals.length - 1]!.atUs - arrivals[0]!.atUs;
  return span > 0 ? ((arrivals.length - 1) * 1e6) / span : null;
}

/**
 * Rescales time so the mean arrival rate is `rate` req/s — the same as {@link warpSpeed} with
 * speed = rate / current mean rate.
 * @throws RangeError when `rate` is not > 0 or the workload has no measurable rate.
 */
export function warpRate(arrivals: readonly Arrival[], rate: number): Arrival[] {
  checkFactor('rate', rate);
  const current = meanRate(arrivals);
  if (current === null) throw new RangeError('a rate needs at least two arrivals at different times');
  return warpSpeed(arrivals, rate / current);
}

/**
 * Keeps the arrivals with `fromUs ≤ offset − first < toUs` (a slice by offset from the trace's first arrival), shifted
 * to start at 0. A session is kept whole or not at all, by where its first request falls (its later turns are kept
 * past `toUs`, a session begun before `fromUs` is left out), unless `cutSessions`.
 */
export function window(arrivals: readonly Arrival[], fromUs: number, toUs: number, cutSessions = false): Arrival[] {
  if (arrivals.length === 0) return [];
  const first = arrivals[0]!.atUs;
  const inside = (at: number) => at - first >= fromUs && at - first < toUs;
  const starts = cutSessions ? null : sessionStarts(arrivals);
  const kept = arrivals.filter((a) => inside(starts && a.session ? starts.get(sessionKey(a))! : a.atUs));
  return kept.map((a) => ({ ...a, atUs: a.atUs - first - fromUs }));
}

/** The identity of an arrival's session in a workload (clones and loop passes are sessions of their own). */
export function sessionKey(a: Pick<Arrival, 'session' | 'fingerprintSalt' | 'clone'>): string {
  return `${a.session?.id ?? ''}|${a.fingerprintSalt ?? ''}|${a.clone}`;
}

/** The offset of each session's first arrival, by {@link sessionKey}. */
export function sessionStarts(arrivals: readonly Arrival[]): Map<string, number> {
  const starts = new Map<string, number>();
  for (const a of arrivals) {
    if (!a.session) continue;
    const k = sessionKey(a);
    const s = starts.get(k);
    if (s === undefined || a.atUs < s) starts.set(k, a.atUs);
  }
  return starts;
}

/** Compresses every idle gap longer than `maxGapUs` to exactly `maxGapUs`; all other gaps are kept. */
export function maxGap(arrivals: readonly Arrival[], maxGapUs: number): Arrival[] {
  let removed = 0;
  return arrivals.map((a, i) => {
    if (i > 0) {
      const gap = a.atUs - arrivals[i - 1]!.atUs;
      if (gap > maxGapUs) removed += gap - maxGapUs;
    }
    return { ...a, atUs: a.atUs - removed };
  });
}

/**
 * Repeats the workload back to back until `durationUs` is filled (arrivals at offsets < durationUs are kept). One
 * period is the trace's span plus its mean inter-arrival time, so the seam looks like any other gap. With no
 * duration, repeats `times` times. Repetitions after the first get new fingerprints.
 */
export function loop(arrivals: readonly Arrival[], opts: { durationUs?: number; times?: number; cutSessions?: boolean }): Arrival[] {
  if (arrivals.length === 0) return [];
  const first = arrivals[0]!.atUs;
  const span = arrivals[arrivals.length - 1]!.atUs - first;
  const period = span + (arrivals.length > 1 ? Math.round(span / (arrivals.length - 1)) : 1_000_000);
  const out: Arrival[] = [];
  const starts = sessionStarts(arrivals);
  for (let k = 0; ; k++) {
    if (opts.times !== undefined && k >= opts.times) break;
    for (const a of arrivals) {
      const at = a.atUs - first + k * period;
      // A session begun within the duration is kept whole (its start decides), unless sessions may be cut.
      const decides = a.session && !opts.cutSessions ? starts.get(sessionKey(a))! - first + k * period : at;
      if (opts.durationUs !== undefined && decides >= opts.durationUs) {
        // Past the end: with no sessions to finish, nothing later in this pass is kept either.
        if (starts.size === 0 || opts.cutSessions) return finish(out);
        continue;
      }
      // Later passes get new fingerprints: real traffic does not resend the same prompts an hour later.
      out.push(k === 0 ? { ...a, atUs: at } : { ...a, atUs: at, fingerprintSalt: `${a.fingerprintSalt ?? ''}l${k}` });
    }
    if (opts.durationUs === undefined && opts.times === undefined) break;
    if (opts.durationUs !== undefined && (k + 1) * period >= opts.durationUs) break;
  }
  return finish(out);
}

/** A loop's arrivals in time order (kept sessions' later turns may follow the next pass's first arrivals). */
function finish(out: Arrival[]): Arrival[] {
  return out.some((a) => a.session) ? sortByTime(out) : out;
}

/**
 * Amplifies by any real K ≥ 1: each arrival is kept and cloned ⌊K⌋ − 1 times, plus once more with probability
 * K − ⌊K⌋ (a seeded Bernoulli draw). Clones are placed a seeded jitter of up to `jitterUs` after their original, so
 * they do not stack on one microsecond while per-second counts (burstiness) keep the original's shape. Clones get new
 * fingerprints unless `keepDuplicates`.
 * @throws RangeError when K < 1.
 */
export function amplify(arrivals: readonly Arrival[], k: number, rng: Rng, opts: { jitterUs?: number; keepDuplicates?: boolean } = {}): Arrival[] {
  if (!(k >= 1) || !Number.isFinite(k)) throw new RangeError(`an amplification factor must be a number ≥ 1, got ${k}`);
  const whole = Math.floor(k);
  const frac = k - whole;
  const jitter = opts.jitterUs ?? 10_000;
  const out: Arrival[] = [];
  // A session is cloned whole: one draw of its copies and their shifts, at its first request; new fingerprints per copy.
  const sessions = new Map<string, { copies: number; shiftUs: number[]; first: number }>();
  arrivals.forEach((a, i) => {
    out.push(a);
    const key = a.session ? sessionKey(a) : null;
    let s = key === null ? undefined : sessions.get(key);
    if (!s) {
      const copies = whole - 1 + (frac > 0 && rng.next() < frac ? 1 : 0);
      s = { copies, shiftUs: Array.from({ length: copies }, () => 1 + rng.int(jitter)), first: i };
      if (key !== null) sessions.set(key, s);
    }
    for (let c = 1; c <= s.copies; c++) {
      out.push({ ...a, atUs: a.atUs + s.shiftUs[c - 1]!, clone: a.clone + c, fingerprintSalt: opts.keepDuplicates ? a.fingerprintSalt : `a${s.first}.${c}` });
    }
  });
  return sortByTime(out);
}

/** Stable sort by scheduled time. */
export function sortByTime(arrivals: Arrival[]): Arrival[] {
  return arrivals.map((a, i) => [a, i] as const).sort((x, y) => x[0].atUs - y[0].atUs || x[1] - y[1]).map(([a]) => a);
}

/**
 * Replaces the recorded inter-arrival times by a synthetic process at the same mean rate (or `rate`), keeping the
 * requests in order: `poisson` (exponential gaps), `gamma:CV` (gamma gaps with coefficient of variation CV; CV 1 is
 * Poisson, > 1 burstier), `constant` (equal gaps).
 */
export function syntheticArrivals(arrivals: readonly Arrival[], model: ArrivalModel, rng: Rng, rate?: number): Arrival[] {
  if (arrivals.length === 0) return [];
  const r = rate ?? meanRate(arrivals);
  if (r === null) throw new RangeError('synthetic arrivals need a rate: the trace has fewer than two distinct arrival times (give one)');
  const meanGapUs = 1e6 / r;
  let t = 0;
  return arrivals.map((a, i) => {
    if (i > 0) t += gap(model, meanGapUs, rng);
    return { ...a, atUs: Math.round(t) };
  });
}

/** A synthetic arrival process. */
export type ArrivalModel = { kind: 'poisson' } | { kind: 'constant' } | { kind: 'gamma'; cv: number };

function gap(model: ArrivalModel, mean: number, rng: Rng): number {
  if (model.kind === 'constant') return mean;
  if (model.kind === 'poisson') return -Math.log(1 - rng.next()) * mean;
  const shape = 1 / (model.cv * model.cv);
  return gammaSample(shape, rng) * (mean / shape);
}

/** Gamma(shape, 1) by Marsaglia–Tsang (2000), with the shape < 1 boost. */
function gammaSample(shape: number, rng: Rng): number {
  if (shape < 1) return gammaSample(shape + 1, rng) * Math.pow(rng.next() || 1e-12, 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      // Standard normal by Box–Muller.
      x = Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}
