import type { ReplayErrorKind } from '../error-kinds.ts';

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
  /**
   * When its headers were written to the socket (undici's `sendHeaders`, after any wait for a connection); null if it
   * never was (dropped by the in-flight cap, or cut before it got a connection).
   */
  sentUs: number | null;
  /** When it was handed to the connection pool (run files of format 2 on). */
  dispatchedUs?: number | null;
  /** When the socket drained its last body byte into the kernel. */
  bodySentUs?: number | null;
  /** Its body was not synthesized by its due time: µs from the due time until it was (then sent at once); else null. */
  readyLagUs?: number | null;
  /** The sending loop (0-based) that sent it. */
  sender?: number;
  /** Measured (due time or send to end) while its sending loop was stalled: the tool's own delay may be in its figures. */
  toolStall?: boolean;
  /** Response headers arrived. */
  ttfbAtUs: number | null;
  /** First content event of a streamed answer arrived. */
  ttftAtUs: number | null;
  /** Last byte arrived (or the failure happened). */
  endUs: number | null;
  status: number | null;
  /**
   * Transport failure kind (see {@link ReplayErrorKind}: `upstream_refused`, `upstream_reset`, `timeout`,
   * `bad_response`, …), `dropped` for a send the cap refused, or null.
   */
  errorKind: ReplayErrorKind | null;
  /**
   * The failure's cause (run files of format 3 on): the error code (`ECONNREFUSED`, `UND_ERR_SOCKET`,
   * `ERR_SSL_WRONG_VERSION_NUMBER`, …) or which timeout fired (`headers_timeout`, `idle_timeout`, `request_timeout`);
   * never any payload. Null when there was no transport failure or nothing says more.
   */
  errorDetail?: string | null;
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
  /** The recorded exchange failed (`synth/workload.ts` recordedFailure): reported apart, left out of goodput. */
  recordedFailed?: boolean;
  /**
   * What the request was, for breakdowns (run files of format 5 on): `METHOD route` as sent (the trace's templated
   * route after `--path-map`/`--model`, never an id), the model its body named as sent, and its protocol; null when
   * unknown (older run files).
   */
  route?: string | null;
  model?: string | null;
  protocol?: string | null;
  /**
   * Its session in the workload (0-based; clones are sessions of their own), its turn, and in a closed-loop replay the
   * index of the request it waited for (run files of format 6 on); null for a request on its own.
   */
  session?: number | null;
  turn?: number | null;
  parentIndex?: number | null;
}

/** Whether a request completed: answered with a status below 400, no transport error, and an end time. */
export function completed(r: Pick<RequestResult, 'errorKind' | 'status' | 'endUs'>): boolean {
  return r.errorKind === null && r.status !== null && r.status < 400 && r.endUs !== null;
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

/** What one sending loop measured of itself during a run. */
export interface LoopHealthSample {
  sender: number;
  /** `perf_hooks.monitorEventLoopDelay` (1 ms resolution), ms. */
  loopDelayMs: { p50: number; p99: number; max: number; mean: number };
  /** Intervals (µs from the run's offset 0) during which the loop was blocked for 5 ms (`STALL_MS`) or more. */
  stalls: Array<[number, number]>;
  stallCount: number;
  stalledMs: number;
  /**
   * Time the sending thread was ready to run but waited for a CPU (Linux `/proc/thread-self/schedstat`), ms; null
   * where not available. Stalls with much of this are the machine's (other processes, a shared host), not the tool's.
   */
  cpuWaitMs: number | null;
  /** Garbage-collection pauses of the sending thread during the run. */
  gcPauses: { count: number; maxMs: number; totalMs: number };
  /** Event-loop utilization of the sending thread, 0..1. */
  utilization: number;
  /** CPU time of the whole process (every thread) during the run, ms, and the run's wall time. */
  cpuMs: number;
  wallMs: number;
}


/** What synthesis did during a replay (its threads, work and prefix-block cache). */
export interface SynthesisStats {
  threads: number;
  synthesized: number;
  promptTokens: number;
  /** Time the threads spent synthesizing, ms (summed over threads). */
  busyMs: number;
  /** Prompt tokens whose prefix-block text came from the cache, and those made anew. */
  cacheHitTokens: number;
  cacheMissTokens: number;
  /** Most body bytes held ready at once. */
  peakReadyBytes: number;
}

/**
 * How far the tool itself may have shaped a run's figures, and what to do about it. `verdict`:
 * - `distorted`: loop delay p99 or send lateness p99 above `HEALTH_BOUND_MS` (5 ms), or more than
 *   `HEALTH_MAX_AFFECTED` (1 %) of the requests sent late for want of a body or measured during a stall;
 * - `degraded`: within those bounds, but some requests were affected or the worst loop delay or lateness exceeded
 *   four times the bound;
 * - `ok`: otherwise.
 */
export interface ReplayerHealth {
  verdict: 'ok' | 'degraded' | 'distorted';
  /** What pushed the verdict, worst first; empty when ok. */
  reasons: string[];
  /** What to change, when not ok. */
  fix: string | null;
  boundMs: number;
  senders: number;
  /** Worst of the sending loops. */
  loopDelayMs: { p50: number; p99: number; max: number };
  stalls: number;
  stalledMs: number;
  /** Time the sending loops waited for a CPU while ready to run (summed; null where not measurable), ms. */
  cpuWaitMs: number | null;
  /** Garbage-collection pauses of the sending loops: count, longest, total (ms). */
  gcPauses: { count: number; maxMs: number; totalMs: number };
  /** Requests measured while their loop was stalled (marked `toolStall` in the results). */
  resultsDuringStall: number;
  /** Requests whose body was not ready at their due time (sent as soon as it was, late). */
  notReadyAtDue: number;
  worstReadyLagMs: number | null;
  /** Socket send − due time, requests that did not wait for the in-flight cap, ms. */
  sendLatenessMs: { p50: number | null; p99: number | null; max: number | null };
  /** Socket send − hand-over to the connection pool (waits for a connection), ms. */
  dispatchToSocketMs: { p50: number | null; p99: number | null; max: number | null };
  /** Busiest sending loop's event-loop utilization, 0..1, and the process's CPU use (100 = one core). */
  loopUtilization: number;
  cpuPercent: number;
  synthesis?: SynthesisStats;
}

