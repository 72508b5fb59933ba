import type { LoopHealthSample, ReplayerHealth, RequestResult, SynthesisStats } from '../results/types.ts';

/**
 * The bound the tool holds itself to, ms: a run whose own loop delay or send lateness (p99) exceeds it, or where more
 * than {@link HEALTH_MAX_AFFECTED} of the requests were sent late for want of a body or measured while the tool's loop
 * was stalled, is reported as distorted by the tool.
 */
export const HEALTH_BOUND_MS = 5;
/** Fraction of requests that may be affected by the tool before a run is called distorted. */
export const HEALTH_MAX_AFFECTED = 0.01;
/** Time after a stall during which a timestamp may still carry its delay (the callbacks it held run then), µs. */
const AFTER_STALL_US = 2000;

/** True when a timestamp taken at `atUs` fell in a stall interval or just after it (so it may be late by the stall). */
export function inStall(stalls: ReadonlyArray<readonly [number, number]>, atUs: number): boolean {
  let lo = 0;
  let hi = stalls.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (stalls[mid]![1] + AFTER_STALL_US < atUs) lo = mid + 1;
    else hi = mid;
  }
  return lo < stalls.length && stalls[lo]![0] <= atUs;
}

/** True when `[fromUs, toUs]` overlaps one of the (sorted) stall intervals. */
export function overlapsStall(stalls: ReadonlyArray<readonly [number, number]>, fromUs: number, toUs: number): boolean {
  let lo = 0;
  let hi = stalls.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (stalls[mid]![1] < fromUs) lo = mid + 1;
    else hi = mid;
  }
  return lo < stalls.length && stalls[lo]![0] <= toUs;
}

/** The timestamps a result's figures are made of: send, headers, every content event, end. */
function timestamps(r: RequestResult): number[] {
  const t = [r.sentUs, r.ttfbAtUs, r.endUs].filter((x): x is number => x !== null);
  if (r.ttftAtUs !== null) {
    let at = r.ttftAtUs;
    t.push(at);
    for (const gap of r.itlUs ?? []) t.push((at += gap));
  }
  return t;
}

/**
 * Marks each result (`toolStall`) that a stall of its sending loop may have shaped: it was due before the stall ended
 * and sent after it began (the send was held up), or one of its timestamps was taken during a stall or just after one
 * (an answer's bytes stamped late). A long answer a stall merely overlapped, whose stamps fall outside it, is not.
 */
export function markStalls(results: RequestResult[], samples: readonly LoopHealthSample[]): void {
  const bySender = new Map(samples.map((s) => [s.sender, s.stalls]));
  for (const r of results) {
    const stalls = bySender.get(r.sender ?? 0);
    if (!stalls || stalls.length === 0) continue;
    const held = overlapsStall(stalls, r.scheduledUs, r.sentUs ?? r.endUs ?? r.scheduledUs);
    r.toolStall = held || timestamps(r).some((t) => inStall(stalls, t));
  }
}

/** Nearest-rank percentiles of exact values, ms (rounded to µs). */
function exact(valuesUs: number[]): { p50: number | null; p99: number | null; max: number | null } {
  if (valuesUs.length === 0) return { p50: null, p99: null, max: null };
  const v = Float64Array.from(valuesUs).sort();
  const at = (p: number) => Math.round(v[Math.max(0, Math.ceil((p / 100) * v.length) - 1)]!) / 1000;
  return { p50: at(50), p99: at(99), max: Math.round(v[v.length - 1]!) / 1000 };
}

/** Judges a run's replayer health from its loops' samples and its results (after {@link markStalls}). */
export function assessHealth(samples: readonly LoopHealthSample[], results: readonly RequestResult[], synthesis?: SynthesisStats): ReplayerHealth {
  const worst = <K extends 'p50' | 'p99' | 'max'>(k: K) => Math.max(0, ...samples.map((s) => s.loopDelayMs[k]));
  const sent = results.filter((r) => r.sentUs !== null);
  const lateness = exact(sent.filter((r) => !r.capDelayed).map((r) => r.sentUs! - r.scheduledUs));
  const notReady = results.filter((r) => r.readyLagUs !== null && r.readyLagUs !== undefined);
  const stalled = results.filter((r) => r.toolStall).length;
  const n = Math.max(1, results.length);
  const loop = { p50: worst('p50'), p99: worst('p99'), max: worst('max') };
  const B = HEALTH_BOUND_MS;
  const distorted: string[] = [];
  const degraded: string[] = [];
  if (notReady.length / n > HEALTH_MAX_AFFECTED) distorted.push(`${notReady.length} of ${results.length} bodies were not synthesized by their send time`);
  else if (notReady.length > 0) degraded.push(`${notReady.length} bodies were not synthesized by their send time`);
  if (loop.p99 > B) distorted.push(`the replayer's event-loop delay p99 was ${loop.p99} ms (bound ${B} ms)`);
  else if (loop.max > 4 * B) degraded.push(`the replayer's event loop was blocked for up to ${loop.max} ms`);
  if (stalled / n > HEALTH_MAX_AFFECTED) distorted.push(`${stalled} of ${results.length} requests were measured while the replayer's loop was stalled`);
  else if (stalled > 0) degraded.push(`${stalled} requests were measured while the replayer's loop was stalled`);
  if ((lateness.p99 ?? 0) > B) distorted.push(`send lateness p99 was ${lateness.p99} ms (bound ${B} ms)`);
  else if ((lateness.max ?? 0) > 4 * B) degraded.push(`the latest send was ${lateness.max} ms behind its schedule`);
  const reasons = [...distorted, ...degraded];
  const verdict = distorted.length > 0 ? 'distorted' : degraded.length > 0 ? 'degraded' : 'ok';
  const senders = Math.max(1, samples.length);
  const fix = verdict === 'ok' ? null
    : notReady.length > 0 && loop.p99 <= B ? 'synthesis could not keep up: give it more threads (--synth-threads) or replay at a lower --speed'
      : `spread the sending over more loops (--workers ${senders + 1}) or replay at a lower --speed; on a shared machine, run where nothing else competes for the CPU`;
  const wallMs = Math.max(1, ...samples.map((s) => s.wallMs));
  return {
    verdict,
    reasons,
    fix,
    boundMs: B,
    senders,
    loopDelayMs: loop,
    stalls: samples.reduce((a, s) => a + s.stallCount, 0),
    stalledMs: samples.reduce((a, s) => a + s.stalledMs, 0),
    cpuWaitMs: samples.some((s) => s.cpuWaitMs === null || s.cpuWaitMs === undefined) ? null : Math.round(samples.reduce((a, s) => a + s.cpuWaitMs!, 0) * 10) / 10,
    gcPauses: {
      count: samples.reduce((a, s) => a + (s.gcPauses?.count ?? 0), 0),
      maxMs: Math.max(0, ...samples.map((s) => s.gcPauses?.maxMs ?? 0)),
      totalMs: samples.reduce((a, s) => a + (s.gcPauses?.totalMs ?? 0), 0),
    },
    resultsDuringStall: stalled,
    notReadyAtDue: notReady.length,
    worstReadyLagMs: notReady.length > 0 ? notReady.reduce((a, r) => Math.max(a, r.readyLagUs!), 0) / 1000 : null,
    sendLatenessMs: lateness,
    dispatchToSocketMs: exact(sent.filter((r) => r.dispatchedUs !== null && r.dispatchedUs !== undefined).map((r) => r.sentUs! - r.dispatchedUs!)),
    loopUtilization: Math.max(0, ...samples.map((s) => s.utilization)),
    cpuPercent: Math.round((Math.max(0, ...samples.map((s) => s.cpuMs)) / wallMs) * 1000) / 10,
    ...(synthesis ? { synthesis } : {}),
  };
}
