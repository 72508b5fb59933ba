import type { LoopHealthSample, ReplayerHealth, RequestResult, SynthesisStats } from '../results/types.ts';

/**
 * The bound the tool holds itself to, ms: a run whose own loop delay or send lateness (p99) exceeds it, or where more
 * than {@link HEALTH_MAX_AFFECTED} of the requests were sent late for want of a body or measured while the tool's loop
 * was stalled, is reported as distorted by the tool.
 */
export const HEALTH_BOUND_MS = 5;
/** Fraction of requests that may be affected by the tool before a run is called distorted (and more than one request). */
export const HEALTH_MAX_AFFECTED = 0.01;
/** Time after a stall during which a timestamp may still carry its delay (the callbacks it held run then), µs. */
const AFTER_STALL_US = 2000;

/** Share of a request's own latency (from its due time) that a stall's length must pass to count as distorting it. */
const MATERIAL_SHARE = 0.01;

/** Index of the first stall that ends (plus `slackUs`) at or after `atUs`. */
function firstEndingAfter(stalls: ReadonlyArray<readonly [number, number]>, atUs: number, slackUs: number): number {
  let lo = 0;
  let hi = stalls.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (stalls[mid]![1] + slackUs < atUs) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The length (µs) of the stall in which a timestamp taken at `atUs` fell, or just after which it was taken (so it may
 * be late by up to that much); 0 when none.
 */
export function stallAt(stalls: ReadonlyArray<readonly [number, number]>, atUs: number): number {
  const i = firstEndingAfter(stalls, atUs, AFTER_STALL_US);
  return i < stalls.length && stalls[i]![0] <= atUs ? stalls[i]![1] - stalls[i]![0] : 0;
}

/** The longest stall overlapping `[fromUs, toUs]`, µs; 0 when none. */
export function longestStallIn(stalls: ReadonlyArray<readonly [number, number]>, fromUs: number, toUs: number): number {
  let longest = 0;
  for (let i = firstEndingAfter(stalls, fromUs, 0); i < stalls.length && stalls[i]![0] <= toUs; i++) longest = Math.max(longest, stalls[i]![1] - stalls[i]![0]);
  return longest;
}

/**
 * How much a stall of its loop may have moved a result's own figures, µs: a send held up by a stall (due before it
 * ended, sent after it began), or a stamp its figures are made of (send, headers, first content event, end) taken
 * during or just after one. Inter-token gaps are left out: a stall moves one or two of a stream's many gaps.
 */
export function stallError(r: RequestResult, stalls: ReadonlyArray<readonly [number, number]>): number {
  const sent = r.sentUs ?? r.endUs ?? r.scheduledUs;
  let err = longestStallIn(stalls, r.scheduledUs, sent);
  for (const t of [r.sentUs, r.ttfbAtUs, r.ttftAtUs, r.endUs]) if (t !== null) err = Math.max(err, stallAt(stalls, t));
  return err;
}

/**
 * Marks each result (`toolStall`) a stall of its sending loop may have distorted: the stall could have moved its
 * figures ({@link stallError}) by more than the bound ({@link HEALTH_BOUND_MS}) and by more than 1 % of its own latency
 * from its due time. An 8 ms stall during a 2 s stream is not a distortion; during a 20 ms request it is.
 */
export function markStalls(results: RequestResult[], samples: readonly LoopHealthSample[]): void {
  const bySender = new Map(samples.map((s) => [s.sender, s.stalls]));
  for (const r of results) {
    const stalls = bySender.get(r.sender ?? 0);
    if (!stalls || stalls.length === 0) continue;
    const err = stallError(r, stalls);
    const latency = r.endUs !== null ? r.endUs - r.scheduledUs : 0;
    r.toolStall = err > HEALTH_BOUND_MS * 1000 && err > MATERIAL_SHARE * latency;
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
export function assessHealth(samples: readonly LoopHealthSample[], results: readonly RequestResult[], synthesis?: SynthesisStats, machine: { cores: number } = { cores: 2 }): ReplayerHealth {
  const worst = <K extends 'p50' | 'p99' | 'max'>(k: K) => Math.max(0, ...samples.map((s) => s.loopDelayMs[k]));
  const sent = results.filter((r) => r.sentUs !== null);
  const lateness = exact(sent.filter((r) => !r.capDelayed).map((r) => r.sentUs! - r.scheduledUs));
  const notReady = results.filter((r) => r.readyLagUs !== null && r.readyLagUs !== undefined).length;
  const stalled = results.filter((r) => r.toolStall).length;
  const n = Math.max(1, results.length);
  const loop = { p50: worst('p50'), p99: worst('p99'), max: worst('max') };
  const B = HEALTH_BOUND_MS;
  const distorted: string[] = [];
  const degraded: string[] = [];
  // One request of a small run is more than 1 % of it, and is still one request: distorted takes more than one.
  const some = (k: number, what: string) => (k > 1 && k / n > HEALTH_MAX_AFFECTED ? distorted : degraded).push(`${k} of ${results.length} ${what}`);
  if (notReady > 0) some(notReady, `request${results.length === 1 ? '' : 's'}: the body was not synthesized by its send time`);
  if (loop.p99 > B) distorted.push(`the replayer's own event-loop delay p99 was ${loop.p99} ms (bound ${B} ms)`);
  else if (loop.max > 4 * B) degraded.push(`the replayer's event loop was blocked once for ${loop.max} ms`);
  if (stalled > 0) some(stalled, `request${results.length === 1 ? '' : 's'}: a stall of the replayer's loop may have moved the figures by more than ${B} ms and 1 % (marked toolStall in the run file)`);
  if ((lateness.p99 ?? 0) > B) distorted.push(`send lateness p99 was ${lateness.p99} ms (bound ${B} ms)`);
  else if ((lateness.max ?? 0) > 4 * B) degraded.push(`the latest send was ${lateness.max} ms behind its schedule`);
  const reasons = [...distorted, ...degraded];
  const verdict = distorted.length > 0 ? 'distorted' : degraded.length > 0 ? 'degraded' : 'ok';
  const senders = Math.max(1, samples.length);
  const cpuWaitMs = samples.some((s) => s.cpuWaitMs === null || s.cpuWaitMs === undefined) ? null : Math.round(samples.reduce((a, s) => a + s.cpuWaitMs!, 0) * 10) / 10;
  const fix = verdict === 'ok' ? null : healthFix({ notReady, loopOk: loop.p99 <= B, senders, synthThreads: synthesis?.threads ?? 1, cores: machine.cores, cpuWaitMs });
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
    cpuWaitMs,
    gcPauses: {
      count: samples.reduce((a, s) => a + (s.gcPauses?.count ?? 0), 0),
      maxMs: Math.max(0, ...samples.map((s) => s.gcPauses?.maxMs ?? 0)),
      totalMs: samples.reduce((a, s) => a + (s.gcPauses?.totalMs ?? 0), 0),
    },
    resultsDuringStall: stalled,
    notReadyAtDue: notReady,
    worstReadyLagMs: notReady > 0 ? results.reduce((a, r) => Math.max(a, r.readyLagUs ?? 0), 0) / 1000 : null,
    sendLatenessMs: lateness,
    dispatchToSocketMs: exact(sent.filter((r) => r.dispatchedUs !== null && r.dispatchedUs !== undefined).map((r) => r.sentUs! - r.dispatchedUs!)),
    loopUtilization: Math.max(0, ...samples.map((s) => s.utilization)),
    cpuPercent: Math.round((Math.max(0, ...samples.map((s) => s.cpuMs)) / wallMs) * 1000) / 10,
    ...(synthesis ? { synthesis } : {}),
  };
}

/**
 * What to change after a run the tool shaped: only advice that fits the machine — another sending loop or synthesis
 * thread only where a core is free for it (each loop and each synthesis thread wants one), else a lower speed or a
 * machine where nothing else competes.
 */
function healthFix(o: { notReady: number; loopOk: boolean; senders: number; synthThreads: number; cores: number; cpuWaitMs: number | null }): string {
  const free = o.cores - o.senders - o.synthThreads;
  const advice: string[] = [];
  if (o.notReady > 0 && o.loopOk) {
    advice.push('Synthesis could not keep up: replay at a lower --speed');
    if (free > 0) advice.push(`give synthesis another thread (--synth-threads ${o.synthThreads + 1})`);
  } else {
    if (free < 0) advice.push(`${o.senders} sending loop${o.senders === 1 ? '' : 's'} and ${o.synthThreads} synthesis thread${o.synthThreads === 1 ? '' : 's'} compete for ${o.cores} cores: use fewer (--workers, --synth-threads)`);
    else if (free > 0) advice.push(`spread the sending over another loop (--workers ${o.senders + 1})`);
    advice.push('replay at a lower --speed');
  }
  const waited = o.cpuWaitMs !== null && o.cpuWaitMs > 0 ? ` (the sending loop waited ${o.cpuWaitMs} ms for a CPU)` : '';
  advice.push(`run where nothing else competes for the CPU${waited}`);
  const text = advice.join(', or ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}
