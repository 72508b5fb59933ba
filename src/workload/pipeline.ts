import type { Rng } from '../rng.ts';
import { applyAnomalies, type AnomalySpec } from './anomalies.ts';
import { applyDrift, type DriftSpec } from './drift.ts';
import type { Arrival } from './types.ts';
import { amplify, loop, maxGap, sortByTime, syntheticArrivals, type ArrivalModel, warpRate, warpSpeed, window } from './warp.ts';

/** One transformation of the workload, as given on the command line or in a scenario file. */
export type Step =
  | { op: 'speed'; factor: number }
  | { op: 'rate'; rate: number }
  | { op: 'window'; fromUs: number; toUs: number }
  | { op: 'max-gap'; us: number }
  | { op: 'loop'; times?: number; durationUs?: number }
  | { op: 'arrivals'; model: ArrivalModel; rate?: number }
  | { op: 'amplify'; k: number; keepDuplicates: boolean }
  | { op: 'drift'; specs: DriftSpec[] }
  | { op: 'anomaly'; specs: AnomalySpec[] };

/**
 * Applies the steps in the order given (pure: no I/O, no clock). Each step draws from its own named child stream
 * (`<position>:<op>`), so adding a step never shifts the draws of another. The first arrival ends at offset 0.
 */
export function transform(arrivals: readonly Arrival[], steps: readonly Step[], rng: Rng): Arrival[] {
  let a = sortByTime([...arrivals]);
  if (a.length > 0) {
    const first = a[0]!.atUs;
    a = a.map((x) => ({ ...x, atUs: x.atUs - first }));
  }
  steps.forEach((s, i) => {
    const r = rng.child(`${i}:${s.op}`);
    switch (s.op) {
      case 'speed': a = warpSpeed(a, s.factor); break;
      case 'rate': a = warpRate(a, s.rate); break;
      case 'window': a = window(a, s.fromUs, s.toUs); break;
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
