import { nearestRank } from '../metrics/exact.ts';
import { Metrics, type Quantity } from '../metrics/metrics.ts';
import { completed, type RequestResult } from '../results/types.ts';
import { BREAKDOWN_DIMENSIONS, TIMELINE_BIN_S, type BreakdownDimension, type BreakdownRow, type CountHistogram, type Distributions, type Timeline } from './model.ts';

/** Most timeline bins: a longer run gets wider bins (whole seconds) so a report stays small. */
export const MAX_TIMELINE_BINS = 3600;

/** Percentiles of the spectrum: 0 … 90 in steps of 10, then 1 − 10^−k halvings towards 100, as HdrHistogram prints. */
export const SPECTRUM_Q = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97.5, 99, 99.5, 99.75, 99.9, 99.95, 99.99, 100];

function keyOf(r: RequestResult, d: BreakdownDimension): string {
  switch (d) {
    case 'route': return r.route ?? '(unknown: run file before format 5)';
    case 'model': return r.model ?? '(none)';
    case 'protocol': return r.protocol ?? '(unknown: run file before format 5)';
    case 'streamed': return r.streamed ? 'streamed' : 'not streamed';
    case 'label': return r.label ?? 'normal';
    case 'turn': return turnKey(r.turn ?? null);
  }
}

/** Turn buckets, in order (`on its own` last). */
const TURN_KEYS = ['turn 0', 'turn 1', 'turn 2', 'turns 3–4', 'turns 5–9', 'turns 10+', 'on its own'];

function turnKey(turn: number | null): string {
  if (turn === null) return 'on its own';
  if (turn <= 2) return `turn ${turn}`;
  return turn <= 4 ? 'turns 3–4' : turn <= 9 ? 'turns 5–9' : 'turns 10+';
}

/** Every distribution per route, model, protocol, streamed or not, and anomaly label: rows sorted by requests, most first. */
export function breakdowns(results: readonly RequestResult[]): Record<BreakdownDimension, BreakdownRow[]> {
  const out = {} as Record<BreakdownDimension, BreakdownRow[]>;
  for (const d of BREAKDOWN_DIMENSIONS) {
    const groups = new Map<string, Metrics>();
    for (const r of results) {
      const k = keyOf(r, d);
      if (!groups.has(k)) groups.set(k, new Metrics());
      groups.get(k)!.add(r);
    }
    out[d] = [...groups].map(([key, m]): BreakdownRow => {
      const s = m.summary();
      return {
        key, requests: s.requests, completed: s.completed, errors: s.errors, errorsByKind: s.errorsByKind, latencyMs: s.latencyMs,
        latencyFromScheduledMs: s.latencyFromScheduledMs, ttftMs: s.ttftMs, tpotMs: s.tpotMs, outputTokens: s.outputTokens,
      };
    }).sort(d === 'turn' ? (a, b) => TURN_KEYS.indexOf(a.key) - TURN_KEYS.indexOf(b.key) : (a, b) => b.requests - a.requests || (a.key < b.key ? -1 : 1));
  }
  return out;
}

/** The most sessions in flight per bin (first send to last end of each session), or undefined when no result has one. */
function sessionsInFlight(results: readonly RequestResult[], n: number, binOf: (us: number) => number, lastUs: number): number[] | undefined {
  const span = new Map<number, [number, number]>();
  for (const r of results) {
    if (r.session === null || r.session === undefined || r.sentUs === null) continue;
    const s = span.get(r.session);
    const end = r.endUs ?? lastUs;
    if (!s) span.set(r.session, [r.sentUs, end]);
    else span.set(r.session, [Math.min(s[0], r.sentUs), Math.max(s[1], end)]);
  }
  if (span.size === 0) return undefined;
  return peakPerBin([...span.values()].flatMap(([a, b]): Array<[number, number]> => [[a, 1], [b, -1]]), n, binOf);
}

/** The most of something at any moment of each bin, from +1/−1 events (ends first at a tie). */
function peakPerBin(events: Array<[number, number]>, n: number, binOf: (us: number) => number): number[] {
  const peak = new Array<number>(n).fill(0);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let level = 0;
  let bin = 0;
  for (const [at, d] of events) {
    const b = binOf(at);
    for (; bin < b; bin++) peak[bin + 1] = Math.max(peak[bin + 1]!, level);
    level += d;
    peak[b] = Math.max(peak[b]!, level);
  }
  return peak;
}

const ms = (us: number) => Math.round(us) / 1000;
function pct(values: number[] | undefined, q: number): number | null {
  if (!values || values.length === 0) return null;
  values.sort((a, b) => a - b);
  return ms(nearestRank(values, q));
}

/**
 * The run per second of its clock (see {@link Timeline}): exact per-bin percentiles (nearest rank) of the requests
 * that ended, or whose first token came, in each bin.
 */
export function timeline(results: readonly RequestResult[]): Timeline {
  let lastUs = 0;
  for (const r of results) lastUs = Math.max(lastUs, r.scheduledUs, r.sentUs ?? 0, r.endUs ?? 0);
  const binS = Math.max(TIMELINE_BIN_S, Math.ceil(lastUs / 1e6 / MAX_TIMELINE_BINS));
  const n = Math.floor(lastUs / (binS * 1e6)) + 1;
  const binOf = (us: number) => Math.min(n - 1, Math.max(0, Math.floor(us / (binS * 1e6))));
  const zeros = () => new Array<number>(n).fill(0);
  const t: Timeline = {
    binS, tS: Array.from({ length: n }, (_, i) => i * binS), scheduled: zeros(), sent: zeros(), completed: zeros(), errors: zeros(), inFlight: zeros(),
    latencyP50Ms: [], latencyP99Ms: [], ttftP50Ms: [], ttftP99Ms: [], outputTokens: zeros(),
  };
  const latency: number[][] = [];
  const ttft: number[][] = [];
  const events: Array<[number, number]> = [];
  for (const r of results) {
    t.scheduled[binOf(r.scheduledUs)]!++;
    if (r.sentUs !== null) {
      t.sent[binOf(r.sentUs)]!++;
      events.push([r.sentUs, 1], [r.endUs ?? lastUs, -1]);
    }
    if (completed(r)) {
      const b = binOf(r.endUs!);
      t.completed[b]!++;
      t.outputTokens[b]! += r.outputTokens ?? 0;
      (latency[b] ??= []).push(r.endUs! - r.sentUs!);
      if (r.streamed && r.ttftAtUs !== null) (ttft[binOf(r.ttftAtUs)] ??= []).push(r.ttftAtUs - r.sentUs!);
    } else t.errors[binOf(r.endUs ?? r.scheduledUs)]!++;
  }
  // Most requests in flight at any moment of each bin: a sweep over sends (+1) and ends (−1), ends first at a tie.
  t.inFlight = peakPerBin(events, n, binOf);
  const sessions = sessionsInFlight(results, n, binOf, lastUs);
  if (sessions) t.sessionsInFlight = sessions;
  for (let i = 0; i < n; i++) {
    t.latencyP50Ms.push(pct(latency[i], 0.5));
    t.latencyP99Ms.push(pct(latency[i], 0.99));
    t.ttftP50Ms.push(pct(ttft[i], 0.5));
    t.ttftP99Ms.push(pct(ttft[i], 0.99));
  }
  return t;
}

/** Counts in power-of-two bins [1, 2), [2, 4), … (0 in the first bin), up to the largest value. */
export function log2Histogram(values: Iterable<number>): CountHistogram {
  const counts: number[] = [];
  for (const v of values) {
    const b = v < 2 ? 0 : Math.floor(Math.log2(v));
    while (counts.length <= b) counts.push(0);
    counts[b]!++;
  }
  return { edges: Array.from({ length: counts.length + 1 }, (_, i) => 2 ** i), counts };
}

function spectrum(q: Quantity): { q: number[]; ms: number[] } {
  if (q.count === 0) return { q: [], ms: [] };
  return { q: SPECTRUM_Q, ms: SPECTRUM_Q.map((p) => ms(q.at(p)!)) };
}

/** The spectra from the (merged) metrics' histograms, and the token histograms of what was sent. */
export function distributions(m: Metrics, results: readonly RequestResult[]): Distributions {
  return {
    latencySpectrum: spectrum(m.quantity('latency')),
    ttftSpectrum: spectrum(m.quantity('ttft')),
    promptTokens: log2Histogram(results.flatMap((r) => (r.promptTokens !== null ? [r.promptTokens] : []))),
    outputTokens: log2Histogram(results.flatMap((r) => (r.expectedOutputTokens !== null ? [r.expectedOutputTokens] : []))),
  };
}
