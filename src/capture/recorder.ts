import type { Worker } from 'node:worker_threads';
import { fromErrorMessage, type ErrorMessage } from '../errors.ts';
import type { WriterHealth, WriterHealthEvent } from '../trace/writer.ts';
import type { SessionKeySpec } from '../sessions/keys.ts';
import type { ProtocolId, TraceRecord } from '../types.ts';
import { firstMessage, startWorker } from '../workers.ts';
import type { ExchangeSnapshot } from './exchange.ts';

/** Exchange bytes (captured bodies) that may wait for the recorder thread before new exchanges go unrecorded. */
export const DEFAULT_RECORD_QUEUE_BYTES = 256 * 1024 * 1024;
/** Exchanges that may wait for the recorder thread at most. */
export const DEFAULT_RECORD_QUEUE_EXCHANGES = 50_000;
/** Counted per exchange besides its bodies (headers, timing), bytes. */
const EXCHANGE_OVERHEAD_BYTES = 1024;
/** Snapshots go to the recorder thread in batches: at most this many, after at most this long (ms). */
const BATCH = 64;
const BATCH_MS = 10;

/** The trace file the recorder thread writes. */
export interface RecorderTraceOptions {
  path: string;
  overwrite?: boolean;
  /** Wall-clock µs since the epoch at the trace's offset 0. */
  anchorWallUs: number;
  /** `meta.anonymization`. */
  anonymization: unknown;
  /** Further `meta` entries (fingerprint scheme, raw capture). */
  meta?: Record<string, unknown>;
  /** At close, how long to wait for a trace file that cannot be written before its records go to a rescue trace, ms. Default 10 s. */
  closeWriteWaitMs?: number;
}

/** What the recorder thread is started with. */
export interface RecorderThreadInput {
  trace: RecorderTraceOptions | null;
  describe: {
    /** Monotonic µs of the trace's offset 0. */
    startUs: number;
    fingerprint: { key: Uint8Array; blockTokens: number } | null;
    protocol?: ProtocolId;
    policy: { raw: unknown; source: string };
    /** Explicit session keys, first match wins. */
    sessionKeys?: SessionKeySpec[];
    /** Link requests into sessions (by key, else by message prefixes). */
    inferSessions?: boolean;
  };
  captureRaw: boolean;
  /** Post every record back (for an `onRecord` callback). */
  wantRecords: boolean;
}

/** Messages to the recorder thread. */
export type ToRecorder = { type: 'exchanges'; items: ExchangeSnapshot[] } | { type: 'stall'; ms: number } | { type: 'close'; dropped: number };
/** Messages from the recorder thread. */
export type FromRecorder =
  | { type: 'started' }
  | { type: 'error'; error: ErrorMessage }
  | { type: 'ack'; bytes: number; count: number }
  | { type: 'records'; records: TraceRecord[] }
  | { type: 'health'; event: WriterHealthEvent }
  | { type: 'closed'; described: number; written: number; dropped: number; whole: boolean; health: WriterHealth | null; rescuedTo: string | null; rescued: number; metaWritten: boolean };

/** What recording did. */
export interface RecorderStats {
  /** Exchanges handed to the recorder thread, and those not recorded because its queue was full. */
  submitted: number;
  droppedQueueFull: number;
  /** Bytes and exchanges waiting for the recorder thread now. */
  queuedBytes: number;
  queued: number;
  /** Most bytes that waited at once. */
  peakQueuedBytes: number;
  /** Filled in by `close()`: records described, written, dropped in all (queue full or not writable), file closed whole. */
  described?: number;
  written?: number;
  dropped?: number;
  whole?: boolean;
  health?: WriterHealth | null;
  /** Records that could not reach the trace at the end and went to a rescue trace (its path), and whether the trace's meta could still be written. */
  rescuedTo?: string | null;
  rescued?: number;
  metaWritten?: boolean;
}

const snapshotBytes = (s: ExchangeSnapshot) => (s.requestBody?.byteLength ?? 0) + (s.responseBody?.byteLength ?? 0) + EXCHANGE_OVERHEAD_BYTES;

/**
 * The recording side of the proxy, in its own thread: the forwarding loop only hands over each finished exchange's
 * snapshot (its captured bytes transferred, not copied); parsing, tokenizing, fingerprinting, encoding and SQLite
 * writes happen in the recorder thread. The queue to it is bounded in bytes and exchanges: when the recorder falls
 * behind, exchanges are not recorded and are counted (`records_dropped`), and traffic never waits for recording.
 */
export class Recorder {
  private batch: ExchangeSnapshot[] = [];
  private dead = false;
  private transfer: ArrayBuffer[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly s: RecorderStats = { submitted: 0, droppedQueueFull: 0, queuedBytes: 0, queued: 0, peakQueuedBytes: 0 };

  private constructor(
    private readonly worker: Worker,
    private readonly maxBytes: number,
    private readonly maxExchanges: number,
  ) {}

  /**
   * Starts the recorder thread; it creates the trace file (refusing an existing one unless `overwrite`).
   * @throws the thread's start-up error (TracewarpError `TW_USAGE` for an existing file).
   */
  static async start(input: RecorderThreadInput, o: { onRecord?: (r: TraceRecord) => void; onHealth?: (e: WriterHealthEvent) => void; maxQueueBytes?: number; maxQueueExchanges?: number } = {}): Promise<Recorder> {
    const worker = startWorker(new URL('./recorder-worker.ts', import.meta.url), input);
    const first = await Promise.race([firstMessage<FromRecorder>(worker, 'started'), firstMessage<Extract<FromRecorder, { type: 'error' }>>(worker, 'error')]);
    if (first.type === 'error') {
      await worker.terminate();
      throw fromErrorMessage(first.error, 'recorder');
    }
    const r = new Recorder(worker, o.maxQueueBytes ?? DEFAULT_RECORD_QUEUE_BYTES, o.maxQueueExchanges ?? DEFAULT_RECORD_QUEUE_EXCHANGES);
    worker.on('message', (m: FromRecorder) => {
      if (m.type === 'ack') {
        r.s.queuedBytes -= m.bytes;
        r.s.queued -= m.count;
      } else if (m.type === 'records') for (const rec of m.records) o.onRecord?.(rec);
      else if (m.type === 'health') o.onHealth?.(m.event);
    });
    // A recorder thread that dies must not take the traffic with it: exchanges are counted as dropped from then on.
    worker.on('error', (err) => o.onHealth?.({ kind: 'recorder_stopped', message: err.message }));
    worker.on('exit', (code) => {
      r.dead = true;
      if (!r.closing) o.onHealth?.({ kind: 'recorder_stopped', message: `the recorder thread ended (exit code ${code})` });
    });
    return r;
  }

  /** Whether an exchange starting now is likely to be recorded (the queue has room). */
  accepting(): boolean {
    return !this.dead && this.s.queuedBytes < this.maxBytes && this.s.queued < this.maxExchanges;
  }

  /** Hands over a finished exchange, or counts it as dropped when the queue is full. Never blocks. */
  submit(snapshot: ExchangeSnapshot): void {
    const bytes = snapshotBytes(snapshot);
    if (this.dead || this.s.queuedBytes + bytes > this.maxBytes || this.s.queued >= this.maxExchanges) {
      this.s.droppedQueueFull++;
      return;
    }
    this.s.submitted++;
    this.s.queuedBytes += bytes;
    this.s.queued++;
    if (this.s.queuedBytes > this.s.peakQueuedBytes) this.s.peakQueuedBytes = this.s.queuedBytes;
    this.batch.push(snapshot);
    for (const b of [snapshot.requestBody, snapshot.responseBody]) if (b) this.transfer.push(b.buffer as ArrayBuffer);
    if (this.batch.length >= BATCH) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), BATCH_MS);
  }

  /** Counts an exchange that was forwarded but, the queue being full as it began, not captured nor recorded. */
  countDropped(): void {
    this.s.droppedQueueFull++;
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.batch.length === 0) return;
    this.worker.postMessage({ type: 'exchanges', items: this.batch } satisfies ToRecorder, this.transfer);
    this.batch = [];
    this.transfer = [];
  }

  /** Blocks the recorder thread for `ms` (fault injection: a describer that falls behind). */
  stall(ms: number): void {
    this.worker.postMessage({ type: 'stall', ms } satisfies ToRecorder);
  }

  /** What recording did so far. */
  stats(): RecorderStats {
    return { ...this.s };
  }

  /**
   * Hands over what is batched, waits until the recorder thread has recorded everything and closed the trace file,
   * and stops it. Every record reaches `onRecord` before this resolves. Idempotent.
   */
  close(): Promise<RecorderStats> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private closing: Promise<RecorderStats> | null = null;

  private async closeOnce(): Promise<RecorderStats> {
    this.flush();
    const closed = firstMessage<Extract<FromRecorder, { type: 'closed' }>>(this.worker, 'closed').catch(() => null);
    this.worker.postMessage({ type: 'close', dropped: this.s.droppedQueueFull } satisfies ToRecorder);
    const m = await closed;
    await this.worker.terminate();
    if (!m) return { ...this.s, described: 0, written: 0, dropped: this.s.droppedQueueFull + this.s.queued, whole: false, health: null, metaWritten: false };
    return { ...this.s, described: m.described, written: m.written, dropped: m.dropped, whole: m.whole, health: m.health, rescuedTo: m.rescuedTo, rescued: m.rescued, metaWritten: m.metaWritten };
  }
}
