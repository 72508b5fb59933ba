import type { ReplayErrorKind } from '../error-kinds.ts';

/** One request of the workload, ready to send at `scheduledUs` (µs after the run's offset 0). */
export interface PlannedRequest {
  index: number;
  traceSeq: number;
  scheduledUs: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | null;
  expectedOutputTokens: number | null;
  promptTokens: number | null;
  /** True for requests of generative protocols (their answers are read for TTFT and output tokens). */
  llm: boolean;
  /** The request's protocol (its adapter reads the answer). */
  protocol: string;
  /** Anomaly label (e.g. `oversize`), kept in the results; null for normal traffic. */
  label?: string | null;
  /** The recorded client gave up this long after its send (µs): the replay cuts it then too (`client_aborted`). */
  abortAfterUs?: number | null;
  /** The recorded exchange failed (an HTTP error, a transport error, a client that gave up): left out of goodput. */
  recordedFailed?: boolean;
}

/**
 * Where a sending loop gets its requests: the schedule of every index up front (so the loop can wait for a due time
 * before the body exists) and the bodies as they become ready (synthesized ahead, off the loop).
 */
export interface RequestSource {
  /** Requests in the workload (indexes 0 … total − 1 in schedule order, or the subset `indexes` names). */
  readonly total: number;
  /** The indexes this loop sends, in schedule order. Default: 0 … total − 1. */
  readonly indexes?: readonly number[];
  /** Due time of request `index`, µs after the run's offset 0. */
  scheduledUs(index: number): number;
  /** The trace record request `index` is made from. */
  traceSeq(index: number): number;
  /** The request when it is ready (and hands it over: it is not kept), else null. */
  take(index: number): PlannedRequest | null;
  /** Calls `cb` once request `index` is ready (at once when it already is). */
  onReady(index: number, cb: () => void): void;
}

/**
 * What the sending loop saw of one request, raw: timestamps (µs from the run's offset 0, taken in undici's callbacks
 * as the bytes move) and the answer's bytes, captured for the response observer to read later, off the loop.
 */
export interface RawObservation {
  index: number;
  traceSeq: number;
  scheduledUs: number;
  /** Which sending loop sent it (0-based). */
  sender: number;
  /** The body was not ready at the due time: µs from the due time until it was; null when it was ready. */
  readyLagUs: number | null;
  /** Handed to the connection pool. */
  dispatchedUs: number | null;
  /** Request headers written to the socket (undici `undici:client:sendHeaders`). */
  sentUs: number | null;
  /** Last request byte handed to the kernel (the socket drained after the body). */
  bodySentUs: number | null;
  /** Response headers parsed. */
  ttfbAtUs: number | null;
  /** Last response byte, or the failure. */
  endUs: number | null;
  status: number | null;
  errorKind: ReplayErrorKind | null;
  /** The failure's cause (an error code, or which timeout fired; never payload), set with `errorKind` by the handler. */
  errorDetail?: string | null;
  requestBytes: number;
  responseBytes: number;
  /** The answer's `content-type` and `server-timing` header values. */
  contentType: string | null;
  serverTiming: string | null;
  /** The answer's bytes as captured (streams and LLM answers only, bounded), and where each chunk ended in them. */
  body: Uint8Array | null;
  chunkEnds: number[];
  chunkAtUs: number[];
  /** False when the answer was longer than the capture bound (the rest was counted, not kept). */
  captureComplete: boolean;
  llm: boolean;
  protocol: string;
  /** Cut the request this long after its send, as its recorded client did (µs); null: never. */
  patienceUs: number | null;
  expectedOutputTokens: number | null;
  promptTokens: number | null;
  capDelayed: boolean;
  label: string | null;
  traceId: string | null;
  recordedFailed: boolean;
}
