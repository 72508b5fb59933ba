/**
 * The workload a replay sends, before synthesis: light arrivals that point at trace records by sequence number and
 * carry what the transformations changed. Pure data: no I/O, no clock.
 */

/** A drift mutation applied to one arrival: feature, operation, amount, and the ramp weight in force (0..1). */
export interface AppliedDrift {
  feature: DriftFeature;
  op: '*' | '+' | '=';
  value: number | string;
  /** Fraction of the change applied (ramps); 1 = full. */
  weight: number;
}

/** Features drift mutations act on (the synthesizer honours each). */
export type DriftFeature = 'prompt_tokens' | 'output_tokens' | 'image_pixels' | 'batch' | 'model';

/** Anomaly kinds; each injected request carries its kind as a label in the results. */
export type AnomalyKind = 'oversize' | 'malformed-json' | 'empty-body' | 'nan-tensor' | 'huge-max-tokens' | 'wrong-dtype' | 'burst';

/** One request of the transformed workload. */
export interface Arrival {
  /** The trace record (`requests.seq`) it is synthesized from. */
  seq: number;
  /** Scheduled offset, µs (integer after every transformation). */
  atUs: number;
  /** 0 for the original; clones made by amplification (or bursts) count up from 1. */
  clone: number;
  /** Salt for new fingerprints (clones that must not look like duplicates); null keeps the recorded ones. */
  fingerprintSalt: string | null;
  drift: AppliedDrift[];
  /** Anomaly label, or null for normal traffic. */
  anomaly: AnomalyKind | null;
  /** Cheap features of the record, for planning and statistics (drift updates them). */
  route: string;
  protocol: string;
  promptTokens: number | null;
  outputTokens: number | null;
  requestBytes: number;
  model: string | null;
  /** Its place in a recorded session (trace format 3), or absent/null for a request on its own. */
  session?: ArrivalSession | null;
  /**
   * Product of the time-warp factors applied to it (1 / speed): `--think-time scaled` scales recorded think times by
   * it. Absent: 1.
   */
  timeScale?: number;
  /** What was recorded of the exchange, for filters (`--only`, `--exclude`); absent on arrivals made by hand. */
  method?: string;
  status?: number | null;
  errorKind?: string | null;
  streamed?: boolean;
}

/** A request's place in its recorded session, as the trace has it (`types.ts` SessionLink). */
export interface ArrivalSession {
  id: number;
  turn: number;
  parentSeq: number | null;
  /** Recorded think time, µs (arrival minus the parent's answer end; imports: the arrival gap). */
  thinkUs: number | null;
}

/** Facts about the source trace that transformations may need. */
export interface WorkloadStats {
  /** First and last arrival offsets, µs. */
  firstUs: number;
  lastUs: number;
  count: number;
}
