import type { ErrorKind } from '../types.ts';

/**
 * One replayed request's outcome. All times are integer µs relative to the run's start (the moment the schedule's
 * offset 0 falls on); durations measured from the actual send are derived from `sentUs`, from the schedule from
 * `scheduledUs` (so coordinated omission stays visible: DESIGN decision 1).
 */
export interface RequestResult {
  /** 0-based position in the replayed workload. */
  index: number;
  /** The trace record's sequence number it was synthesized from. */
  traceSeq: number;
  /** When it should have been sent. */
  scheduledUs: number;
  /** When it was sent; null if it never was (dropped by the in-flight cap). */
  sentUs: number | null;
  /** Response headers arrived. */
  ttfbAtUs: number | null;
  /** First content event of a streamed answer arrived. */
  ttftAtUs: number | null;
  /** Last byte arrived (or the failure happened). */
  endUs: number | null;
  status: number | null;
  /** Transport failure kind, `dropped` for a send the cap refused, or null. */
  errorKind: ErrorKind | 'dropped' | null;
  requestBytes: number;
  responseBytes: number;
  streamed: boolean;
  eventCount: number;
  /** Output tokens reported (`usage`) or counted; null when not an LLM answer. */
  outputTokens: number | null;
  /** Output tokens the trace recorded (what was asked for); null when unknown. */
  expectedOutputTokens: number | null;
  /** Prompt tokens of the synthesized request (trace value). */
  promptTokens: number | null;
  /** True when the in-flight cap made it wait before it could be sent. */
  capDelayed: boolean;
  /** Anomaly label of an injected request (`oversize`, `burst`, …), null for normal traffic. */
  label: string | null;
  /** Gaps between consecutive content events of a streamed answer (inter-token latencies), µs; null if not streamed. */
  itlUs?: number[] | null;
  /** `Server-Timing` durations the answer carried, ms by metric name. */
  serverTiming?: Record<string, number> | null;
  /** W3C trace id sent in this request's `traceparent`. */
  traceId?: string | null;
}

/** Describes a run (the `meta` of a run file). */
export interface RunMeta {
  runId: string;
  tracePath: string;
  target: string;
  /** Time-warp factor (2 = twice as fast). */
  speed: number;
  seed: string;
  maxInFlight: number | null;
  capPolicy: 'queue' | 'drop';
  /** Wall-clock µs since epoch at the run's offset 0. */
  startWallUs: number;
  toolVersion: string;
}
