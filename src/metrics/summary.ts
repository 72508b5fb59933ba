import * as hdr from 'hdr-histogram-js';
import { completed, type ReplayerHealth, type RequestResult } from '../results/types.ts';
import { judgeObjectives, type ObjectiveResult } from './objectives.ts';
import { hasRequestObjectives, meetsSlo, type Slo } from './slo.ts';

/** Percentiles of one quantity in milliseconds (HDR histogram, 3 significant digits), or nulls when there are no values. */
export interface Percentiles {
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  /** p99.9 */
  p999: number | null;
  max: number | null;
  /** Values the percentiles are over. */
  count: number;
}

/** Records µs values into an HDR histogram and reports percentiles in ms. */
export function percentilesMs(valuesUs: Iterable<number>): Percentiles {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 24 * 3_600_000_000, numberOfSignificantValueDigits: 3 });
  let n = 0;
  let max = 0;
  for (const v of valuesUs) {
    const x = Math.max(0, Math.round(v));
    h.recordValue(x);
    if (x > max) max = x;
    n++;
  }
  // HDR buckets report a bucket's upper edge; never report more than the exact maximum.
  const ms = (us: number) => Math.round(Math.min(us, max)) / 1000;
  if (n === 0) return { p50: null, p90: null, p95: null, p99: null, p999: null, max: null, count: 0 };
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p95: ms(h.getValueAtPercentile(95)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(max),
    count: n,
  };
}

/**
 * The summary of a run, as `replay --json` prints it and the README documents. Rates are req/s, times ms.
 * - `requests`: requests in the workload; `attempted`: those the sending loop tried to send (the rest were dropped by
 *   the in-flight cap); `sent`: those whose headers were written to a socket (a refused connection sends nothing).
 * - `completed`: answered with a 2xx/3xx status and no transport error; `errors` = `requests − completed`, broken down
 *   in `errorsByKind` (transport kinds such as `upstream_refused`, `dropped`, or `http_<status>`).
 * - `targetRate`: (requests − 1) / schedule span; `achievedRate`: (sent − 1) / span of actual sends;
 *   `throughput`: completed / (last end − first send).
 * - `latencyMs`: end − actual send, completed requests; `latencyFromScheduledMs`: end − scheduled send (includes any
 *   lateness, so coordinated omission is visible); `ttftMs`: first content event − actual send, streamed completed
 *   requests (`ttftFromScheduledMs` from the schedule); `latenessMs`: actual send − scheduled send, all sent requests.
 */
export interface RunSummary {
  requests: number;
  attempted: number;
  sent: number;
  completed: number;
  errors: number;
  errorsByKind: Record<string, number>;
  statuses: Record<string, number>;
  targetRate: number | null;
  achievedRate: number | null;
  throughput: number | null;
  durationS: number;
  latencyMs: Percentiles;
  latencyFromScheduledMs: Percentiles;
  ttftMs: Percentiles;
  ttftFromScheduledMs: Percentiles;
  ttfbMs: Percentiles;
  latenessMs: Percentiles;
  /** Requests the in-flight cap made wait before sending. */
  capDelayed: number;
  /** Streamed answers that came back with fewer output tokens than the trace recorded. */
  shorterThanRecorded: number;
  outputTokens: number;
  /** Every gap between consecutive content events of streamed answers (inter-token latency), ms. */
  itlMs: Percentiles;
  /** Per streamed request: (E2E − TTFT) / (output tokens − 1), from the actual send, ms. */
  tpotMs: Percentiles;
  /** Per completed LLM request: output tokens / E2E from the actual send, tokens/s (percentiles reported as numbers, not ms). */
  outputTokensPerSecond: Percentiles;
  /** All output tokens / run duration, tokens/s. */
  totalOutputTokensPerSecond: number | null;
  /** `Server-Timing` durations reported by the server, per metric, ms. */
  serverTimingMs?: Record<string, Percentiles>;
  /** Requests whose recorded exchange had failed (an error status, a transport error, a client that gave up): replayed, reported apart. */
  recordedFailures: number;
  /**
   * With an SLO: requests that met every objective that applies to them (measured from the scheduled send), of the
   * `eligible` ones — every request except the {@link recordedFailures}, which did not succeed when recorded either —,
   * per second and as a fraction.
   */
  goodput?: { slo: string; met: number; eligible: number; fraction: number; reqPerS: number | null };
  /** The run-level objectives of the SLO (`p99<800ms`, `error_rate<1%`, …), each with its value and whether it was met. */
  objectives?: ObjectiveResult[];
  /** With run-level objectives: whether every one was met (`replay` and `report` exit 1 when not). */
  sloMet?: boolean;
  /**
   * Per anomaly label (`normal` for uninjected traffic), when the run had injected anomalies: how the server handled
   * each kind — requests, completed, statuses, errors by kind, latency.
   */
  byLabel?: Record<string, { requests: number; completed: number; statuses: Record<string, number>; errorsByKind: Record<string, number>; latencyMs: Percentiles }>;
  /** How far the replayer itself may have shaped these figures (its own loop delay, synthesis, stalls), with a verdict. */
  replayerHealth?: ReplayerHealth;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Percentiles of plain numbers (not times): recorded ×1000 so the ms conversion gives the numbers back. */
function rawPercentiles(values: number[]): Percentiles {
  return percentilesMs(values.map((v) => v * 1000));
}

function serverTiming(rs: readonly RequestResult[]): { serverTimingMs?: Record<string, Percentiles> } {
  const by = new Map<string, number[]>();
  for (const r of rs) for (const [k, v] of Object.entries(r.serverTiming ?? {})) (by.get(k) ?? by.set(k, []).get(k)!).push(v * 1000);
  if (by.size === 0) return {};
  return { serverTimingMs: Object.fromEntries([...by].sort().map(([k, v]) => [k, percentilesMs(v)])) };
}

/** Computes the {@link RunSummary} of a run's per-request results; with an SLO, goodput too. */
export function summarize(results: readonly RequestResult[], slo?: Slo): RunSummary {
  const s = summarizeOnly(results);
  if (slo && hasRequestObjectives(slo)) {
    const eligible = results.filter((r) => !r.recordedFailed);
    const met = eligible.filter((r) => completed(r) && meetsSlo(r, slo)).length;
    s.goodput = { slo: slo.text, met, eligible: eligible.length, fraction: eligible.length > 0 ? round3(met / eligible.length) : 0, reqPerS: s.durationS > 0 ? round3(met / s.durationS) : null };
  }
  if (slo && slo.objectives.length > 0) {
    s.objectives = judgeObjectives(slo.objectives, s, results);
    s.sloMet = s.objectives.every((o) => o.met);
  }
  if (results.some((r) => r.label)) {
    const groups = new Map<string, RequestResult[]>();
    for (const r of results) {
      const k = r.label ?? 'normal';
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k)!.push(r);
    }
    s.byLabel = {};
    for (const [k, rs] of [...groups].sort()) {
      const g = summarizeOnly(rs);
      s.byLabel[k] = { requests: g.requests, completed: g.completed, statuses: g.statuses, errorsByKind: g.errorsByKind, latencyMs: g.latencyMs };
    }
  }
  return s;
}

function summarizeOnly(results: readonly RequestResult[]): RunSummary {
  const done = results.filter(completed);
  const sent = results.filter((r) => r.sentUs !== null);
  const errorsByKind: Record<string, number> = {};
  const statuses: Record<string, number> = {};
  for (const r of results) {
    if (r.status !== null) statuses[String(r.status)] = (statuses[String(r.status)] ?? 0) + 1;
    const kind = r.errorKind ?? (r.status === null ? 'no_response' : r.status >= 400 ? `http_${r.status}` : null);
    if (kind) errorsByKind[kind] = (errorsByKind[kind] ?? 0) + 1;
  }
  const rate = (times: number[]): number | null => {
    if (times.length < 2) return null;
    let lo = Infinity;
    let hi = -Infinity;
    for (const t of times) { if (t < lo) lo = t; if (t > hi) hi = t; }
    return hi > lo ? round3(((times.length - 1) * 1e6) / (hi - lo)) : null;
  };
  const firstSend = sent.reduce((a, r) => Math.min(a, r.sentUs!), Infinity);
  const lastEnd = results.reduce((a, r) => Math.max(a, r.endUs ?? -Infinity), -Infinity);
  const durationUs = Number.isFinite(firstSend) && Number.isFinite(lastEnd) ? lastEnd - firstSend : 0;
  const streamedDone = done.filter((r) => r.streamed && r.ttftAtUs !== null);
  return {
    requests: results.length,
    attempted: results.filter((r) => r.sentUs !== null || (r.dispatchedUs ?? null) !== null).length,
    sent: sent.length,
    completed: done.length,
    errors: results.length - done.length,
    errorsByKind,
    statuses,
    targetRate: rate(results.map((r) => r.scheduledUs)),
    achievedRate: rate(sent.map((r) => r.sentUs!)),
    throughput: durationUs > 0 ? round3((done.length * 1e6) / durationUs) : null,
    durationS: round3(durationUs / 1e6),
    latencyMs: percentilesMs(done.map((r) => r.endUs! - r.sentUs!)),
    latencyFromScheduledMs: percentilesMs(done.map((r) => r.endUs! - r.scheduledUs)),
    ttftMs: percentilesMs(streamedDone.map((r) => r.ttftAtUs! - r.sentUs!)),
    ttftFromScheduledMs: percentilesMs(streamedDone.map((r) => r.ttftAtUs! - r.scheduledUs)),
    ttfbMs: percentilesMs(done.filter((r) => r.ttfbAtUs !== null).map((r) => r.ttfbAtUs! - r.sentUs!)),
    latenessMs: percentilesMs(sent.map((r) => r.sentUs! - r.scheduledUs)),
    itlMs: percentilesMs(streamedDone.flatMap((r) => r.itlUs ?? [])),
    tpotMs: percentilesMs(streamedDone.filter((r) => r.outputTokens !== null && r.outputTokens > 1).map((r) => (r.endUs! - r.ttftAtUs!) / (r.outputTokens! - 1))),
    outputTokensPerSecond: rawPercentiles(done.filter((r) => r.outputTokens !== null && r.endUs! > r.sentUs!).map((r) => (r.outputTokens! * 1e6) / (r.endUs! - r.sentUs!))),
    totalOutputTokensPerSecond: durationUs > 0 ? round3((done.reduce((a, r) => a + (r.outputTokens ?? 0), 0) * 1e6) / durationUs) : null,
    ...serverTiming(done),
    capDelayed: results.filter((r) => r.capDelayed).length,
    recordedFailures: results.filter((r) => r.recordedFailed).length,
    shorterThanRecorded: done.filter((r) => r.expectedOutputTokens !== null && r.outputTokens !== null && r.outputTokens < r.expectedOutputTokens).length,
    outputTokens: done.reduce((a, r) => a + (r.outputTokens ?? 0), 0),
  };
}
