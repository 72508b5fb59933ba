import type { ReplayerHealth, RequestResult } from '../results/types.ts';
import { Metrics, Quantity } from './metrics.ts';
import { judgeObjectives, type ObjectiveResult } from './objectives.ts';
import type { Slo } from './slo.ts';

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

/** Percentiles of µs values in ms (one {@link Quantity}: HDR histogram, never above the exact maximum). */
export function percentilesMs(valuesUs: Iterable<number>): Percentiles {
  const q = Quantity.empty();
  for (const v of valuesUs) q.record(v);
  return q.percentilesMs();
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

/**
 * Computes the {@link RunSummary} of a run's per-request results (through {@link Metrics}, one result at a time);
 * with an SLO, goodput and the run objectives too; per anomaly label when the run had injected anomalies.
 */
export function summarize(results: readonly RequestResult[], slo?: Slo, m: Metrics = metricsOf(results, slo)): RunSummary {
  const s = summaryOf(m);
  if (results.some((r) => r.label)) {
    const groups = new Map<string, Metrics>();
    for (const r of results) {
      const k = r.label ?? 'normal';
      if (!groups.has(k)) groups.set(k, new Metrics());
      groups.get(k)!.add(r);
    }
    s.byLabel = {};
    for (const [k, g] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const x = g.summary();
      s.byLabel[k] = { requests: x.requests, completed: x.completed, statuses: x.statuses, errorsByKind: x.errorsByKind, latencyMs: x.latencyMs };
    }
  }
  return s;
}

/** The {@link Metrics} of a run's results (counted against `slo`'s per-request objectives, when given). */
export function metricsOf(results: readonly RequestResult[], slo?: Slo): Metrics {
  const m = new Metrics(slo ?? null);
  for (const r of results) m.add(r);
  return m;
}

/** The summary of (possibly merged) metrics, with the run objectives of their SLO judged. */
export function summaryOf(m: Metrics): RunSummary {
  const s = m.summary();
  if (m.slo && m.slo.objectives.length > 0) {
    s.objectives = judgeObjectives(m.slo.objectives, s, m.eligibility());
    s.sloMet = s.objectives.every((o) => o.met);
  }
  return s;
}
