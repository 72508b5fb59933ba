import type { Percentiles, RunSummary } from '../metrics/summary.ts';

/**
 * Version of the report's JSON schema (`report --format json`; the README documents its keys). 1: `summary` keys at
 * the top level as `replay --json` prints them, plus `schemaVersion`, `runs`, `breakdowns`, `timeline`,
 * `distributions` and `scrape`.
 */
export const REPORT_SCHEMA_VERSION = 1;

/** Width of one timeline bin, seconds. */
export const TIMELINE_BIN_S = 1;

/**
 * A run's figures per second of the run's clock, as columns (one entry per bin; bin i covers [i, i+1) s after the
 * run's offset 0). Rates are requests per second of that bin; percentiles are over the requests that *ended* in the bin
 * (latency, from the actual send) or whose first token arrived in it (TTFT), null where there were none; `inFlight` is
 * the most requests sent and not yet ended at any moment of the bin.
 */
export interface Timeline {
  binS: number;
  tS: number[];
  /** Requests due (scheduled) in the bin. */
  scheduled: number[];
  /** Requests whose headers were written to a socket in the bin. */
  sent: number[];
  /** Requests that completed in the bin (end time). */
  completed: number[];
  /** Requests that failed (end time, or due time when they never ended) in the bin. */
  errors: number[];
  inFlight: number[];
  /**
   * Sessions in flight: the most sessions whose first turn had been sent and whose last turn had not ended, at any
   * moment of the bin; absent when the run had no sessions.
   */
  sessionsInFlight?: number[];
  latencyP50Ms: Array<number | null>;
  latencyP99Ms: Array<number | null>;
  ttftP50Ms: Array<number | null>;
  ttftP99Ms: Array<number | null>;
  /** Output tokens of the answers that completed in the bin (tokens/s). */
  outputTokens: number[];
}

/** One value of a breakdown dimension (a route, a model, …) and its figures. */
export interface BreakdownRow {
  /** `POST /v1/chat/completions`, `gpt-4o-mini`, `openai-chat`, `streamed`, `normal`, … */
  key: string;
  requests: number;
  completed: number;
  errors: number;
  errorsByKind: Record<string, number>;
  latencyMs: Percentiles;
  latencyFromScheduledMs: Percentiles;
  ttftMs: Percentiles;
  tpotMs: Percentiles;
  outputTokens: number;
}

/**
 * The dimensions every distribution is broken down by; `label` is the anomaly label (`normal` for uninjected traffic),
 * `turn` a request's turn in its session (`turn 0`, `turn 1`, `turn 2`, `turns 3–4`, `turns 5–9`, `turns 10+`, or
 * `on its own`), in turn order.
 */
export const BREAKDOWN_DIMENSIONS = ['route', 'model', 'protocol', 'streamed', 'label', 'turn'] as const;
export type BreakdownDimension = (typeof BREAKDOWN_DIMENSIONS)[number];

/** A histogram of counts: bin i covers [edges[i], edges[i+1]). */
export interface CountHistogram {
  edges: number[];
  counts: number[];
}

/** The shape of the figures, beyond a few percentiles. */
export interface Distributions {
  /**
   * Percentile spectrum of latency from the send and TTFT (streamed answers), ms: `q` are percentiles (0 … 100, denser
   * towards the tail: 1 − 10^−k steps as HdrHistogram's percentile distribution prints), values from the merged HDR
   * histograms.
   */
  latencySpectrum: { q: number[]; ms: number[] };
  ttftSpectrum: { q: number[]; ms: number[] };
  /** Prompt and output tokens of what was sent (output: as recorded, what each request asked for), log-spaced bins. */
  promptTokens: CountHistogram;
  outputTokens: CountHistogram;
}

/** One series the target served on its Prometheus endpoint during the run, on the run's clock. */
export interface ScrapeSeries {
  /** The URL scraped. */
  source: string;
  /** Metric name as exposed (`vllm:num_requests_waiting`). */
  name: string;
  labels: Record<string, string>;
  /** Prometheus type from `# TYPE` (gauge, counter, …), or `untyped`. */
  type: string;
  /** Seconds after the run's offset 0 of each scrape's answer, and the values. Counters are kept as exposed (cumulative). */
  tS: number[];
  values: number[];
}

/** One run file a report is made of. */
export interface ReportRun {
  runFile: string;
  runId: string;
  requests: number;
  /** The workload digest, when the run synthesized it whole. */
  digest: string | null;
}

/** Latency and TTFT p50/p99 from the scheduled send (ms, exact; null with no value) of one part of a run. */
export interface PhaseFigures {
  requests: number;
  errors: number;
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
  ttftP50Ms: number | null;
  ttftP99Ms: number | null;
}

/**
 * The start of a run apart from its steady state (`report/cold-start.ts`): the first `firstN` requests by schedule,
 * the warm-up window (`replay --warmup D`: excluded from the headline figures and the SLO gate; null without one) and
 * the rest (`steady`: after the warm-up, or after the first requests when there is none).
 */
export interface ColdStart {
  warmupS: number;
  /** Requests scheduled in the warm-up: left out of every headline figure and objective. */
  excludedRequests: number;
  firstN: number;
  first: PhaseFigures;
  warmup: PhaseFigures | null;
  steady: PhaseFigures;
}

/**
 * What a report built from run files holds besides its summary and facts: the runs it merges, breakdowns, the
 * per-second timeline, distributions, and the target's scraped metrics (`report/build.ts` builds it; each format draws
 * it). The JSON form puts these keys next to the summary's.
 */
export interface ReportDetail {
  schemaVersion: number;
  runs: ReportRun[];
  breakdowns: Record<BreakdownDimension, BreakdownRow[]>;
  timeline: Timeline;
  distributions: Distributions;
  scrape: ScrapeSeries[];
  /** How scraping went, per endpoint (`replay --scrape`): scrapes, failures, the last failure. */
  scrapeHealth: Array<{ source: string; scrapes: number; failures: number; lastError: string | null; droppedSeries: number }>;
  /** The run's start apart from its steady state. */
  coldStart: ColdStart;
}
