import type { Rng } from '../rng.ts';
import { applyAnomalies, type AnomalySpec } from './anomalies.ts';
import { applyDrift, type DriftSpec } from './drift.ts';
import type { Arrival } from './types.ts';
import { amplify, loop, maxGap, sortByTime, syntheticArrivals, type ArrivalModel, warpRate, warpSpeed, window } from './warp.ts';

/** One transformation of the workload, as given on the command line or in a scenario file. */
export type Step =
  | { op: 'speed'; factor: number }
  | { op: 'rate'; rate: number }
  | { op: 'window'; fromUs: number; toUs: number; cutSessions?: boolean }
  | { op: 'max-gap'; us: number }
  | { op: 'loop'; times?: number; durationUs?: number; cutSessions?: boolean }
  | { op: 'arrivals'; model: ArrivalModel; rate?: number }
  | { op: 'amplify'; k: number; keepDuplicates: boolean }
  | { op: 'drift'; specs: DriftSpec[] }
  | { op: 'anomaly'; specs: AnomalySpec[] };

/** Requests a planned workload may have at most (about 200 bytes each while planning). */
export const MAX_WORKLOAD = 5_000_000;

/** How many arrivals a step will produce at most, to refuse an expansion before it is built. */
function expected(a: readonly Arrival[], s: Step): number {
  if (s.op === 'amplify') return Math.ceil(a.length * s.k);
  if (s.op === 'loop') {
    if (s.times !== undefined) return a.length * s.times;
    const span = a.length > 1 ? a[a.length - 1]!.atUs - a[0]!.atUs : 0;
    const period = span + (a.length > 1 ? span / (a.length - 1) : 1e6);
    return period > 0 ? Math.ceil((a.length * (s.durationUs ?? 0)) / period) : a.length;
  }
  if (s.op === 'anomaly') return a.length + s.specs.reduce((n, x) => n + (x.burst ? Math.ceil(a.length * (x.burst.factor - 1)) : 0), 0);
  if (s.op === 'drift') return a.length + s.specs.reduce((n, x) => n + (x.kind === 'mix' ? Math.ceil(a.length * Math.max(0, Number(x.value) - 1)) : 0), 0);
  return a.length;
}

/**
 * Applies the steps in the order given (pure: no I/O, no clock). Each step draws from its own named child stream
 * (`<position>:<op>`), so adding a step never shifts the draws of another. The first arrival ends at offset 0.
 * @throws RangeError when a step cannot apply (e.g. `--rate` on a single arrival) or would exceed {@link MAX_WORKLOAD}.
 */
export function transform(arrivals: readonly Arrival[], steps: readonly Step[], rng: Rng): Arrival[] {
  let a = sortByTime([...arrivals]);
  if (a.length > 0) {
    const first = a[0]!.atUs;
    a = a.map((x) => ({ ...x, atUs: x.atUs - first }));
  }
  steps.forEach((s, i) => {
    const r = rng.child(`${i}:${s.op}`);
    const n = expected(a, s);
    if (n > MAX_WORKLOAD) throw new RangeError(`step ${i + 1} (${s.op}) would make about ${n.toLocaleString('en')} requests, more than the ${MAX_WORKLOAD.toLocaleString('en')} a plan may hold: take a window or a shorter duration first`);
    switch (s.op) {
      case 'speed': a = warpSpeed(a, s.factor); break;
      case 'rate': a = warpRate(a, s.rate); break;
      case 'window': a = window(a, s.fromUs, s.toUs, s.cutSessions); break;
      case 'max-gap': a = maxGap(a, s.us); break;
      case 'loop': a = loop(a, s); break;
      case 'arrivals': a = syntheticArrivals(a, s.model, r, s.rate); break;
      case 'amplify': a = amplify(a, s.k, r, { keepDuplicates: s.keepDuplicates }); break;
      case 'drift': a = applyDrift(a, s.specs, r); break;
      case 'anomaly': a = applyAnomalies(a, s.specs, r); break;
    }
  });
  return a;
}
