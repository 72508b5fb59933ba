import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import { closeAsSingleFile, prepareNewFile } from '../sqlite-file.ts';
import type { TraceRecord } from '../types.ts';
import { TOOL_VERSION } from '../version.ts';
import { blobHash, encodeBlob, encodeEventOffsets } from './codec.ts';
import { FORMAT_NAME, FORMAT_VERSION, SCHEMA_V1 } from './schema.ts';

/** What a new trace says about itself (the rest of `meta` is filled in by the writer). */
export interface TraceWriterOptions {
  /** `capture` or `import:<format>`. */
  source: string;
  /** Base name of the imported file. */
  sourceFile?: string;
  /** Wall-clock µs since the Unix epoch at offset 0. */
  anchorWallUs: number;
  /** The anonymization policy in force (written as JSON into `meta.anonymization`). */
  anonymization: unknown;
  /** Overwrite an existing file. Default false: an existing file is refused. */
  overwrite?: boolean;
  /** Flush from a timer every `flushIntervalMs` (capture). Default: flush only when `batchSize` records wait or on close. */
  flushIntervalMs?: number;
  /** Records per transaction. Default 512. */
  batchSize?: number;
  /** Records that may wait in memory before new ones are dropped and counted. Default 100,000. */
  maxQueued?: number;
}

/**
 * Appends {@link TraceRecord}s to a new trace file in batched transactions, off the request path: `add` only queues.
 * The file is in WAL mode while open and is left as a single file (journal mode DELETE) by {@link close}.
 * @throws TracewarpError `TW_USAGE` when the file exists and `overwrite` is not set.
 */
export class TraceWriter {
  readonly path: string;
  private readonly db: Db;
  private readonly insert: Statement;
  private readonly insertShape: Statement;
  private readonly shapeIds = new Map<string, number>();
  private queue: TraceRecord[] = [];
  private insertRaw: Statement | null = null;
  private rawQueue: unknown[][] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly batchSize: number;
  private readonly maxQueued: number;
  private dropped = 0;
  private written = 0;
  private closed = false;

  constructor(path: string, opts: TraceWriterOptions) {
    this.path = path;
    prepareNewFile(path, Boolean(opts.overwrite));
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA_V1);
    const meta = this.db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)');
    const entries: Record<string, unknown> = {
      format: FORMAT_NAME,
      format_version: FORMAT_VERSION,
      created_at: new Date().toISOString(),
      anchor_wall_us: opts.anchorWallUs,
      source: opts.source,
      tool_version: TOOL_VERSION,
      anonymization: opts.anonymization,
      records_dropped: 0,
      capture_raw: false,
    };
    if (opts.sourceFile) entries.source_file = opts.sourceFile;
    this.db.transaction(() => {
      for (const [k, v] of Object.entries(entries)) meta.run(k, JSON.stringify(v));
    })();
    this.insertShape = this.db.prepare('INSERT INTO shapes(hash, shape) VALUES (?, ?)');
    this.insert = this.db.prepare(`INSERT INTO requests (
      seq, offset_us, method, route, protocol, status, error_kind, request_bytes, response_bytes, ttfb_us, ttft_us,
      latency_us, streamed, event_count, prompt_tokens, output_tokens, message_count, model, max_tokens, shape_id,
      params, features, event_offsets) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.batchSize = opts.batchSize ?? 512;
    this.maxQueued = opts.maxQueued ?? 100_000;
    if (opts.flushIntervalMs) {
      this.timer = setInterval(() => this.flush(), opts.flushIntervalMs);
      this.timer.unref();
    }
  }

  /** Queues a record. Never blocks on disk except when a full batch is waiting and no timer flushes it. */
  add(record: TraceRecord): void {
    if (this.closed) throw new Error('TraceWriter is closed');
    if (this.queue.length >= this.maxQueued) {
      this.dropped++;
      return;
    }
    this.queue.push(record);
    if (!this.timer && this.queue.length >= this.batchSize) this.flush();
  }

  /**
   * Stores a raw request in the `raw_requests` table (created on first use; `meta.capture_raw` becomes true). Only for
   * an explicit `--capture-raw`: this is the one path by which values reach a trace.
   */
  addRaw(seq: number, raw: { url: string; headers: Record<string, unknown>; body: Buffer | null }): void {
    if (!this.insertRaw) {
      this.db.exec('CREATE TABLE IF NOT EXISTS raw_requests (seq INTEGER PRIMARY KEY, url TEXT NOT NULL, headers TEXT NOT NULL, body BLOB)');
      this.setMeta('capture_raw', true);
      this.insertRaw = this.db.prepare('INSERT INTO raw_requests(seq, url, headers, body) VALUES (?, ?, ?, ?)');
    }
    this.rawQueue.push([seq, raw.url, JSON.stringify(raw.headers), raw.body]);
  }

  /** Records written so far and records dropped because the queue was full. */
  get stats(): { written: number; dropped: number; queued: number } {
    return { written: this.written, dropped: this.dropped, queued: this.queue.length };
  }

  /** Writes every queued record in one transaction. */
  flush(): void {
    if (this.queue.length === 0 && this.rawQueue.length === 0) return;
    const batch = this.queue;
    const raws = this.rawQueue;
    this.queue = [];
    this.rawQueue = [];
    this.db.transaction(() => {
      for (const r of batch) this.insert.run(this.row(r));
      for (const r of raws) this.insertRaw!.run(r);
    })();
    this.written += batch.length;
  }

  private shapeId(r: TraceRecord): number {
    const blob = encodeBlob(r.shape);
    const hash = blobHash(blob);
    let id = this.shapeIds.get(hash);
    if (id === undefined) {
      id = Number(this.insertShape.run(hash, blob).lastInsertRowid);
      this.shapeIds.set(hash, id);
    }
    return id;
  }

  private row(r: TraceRecord): unknown[] {
    const hasFeatures = Object.keys(r.features).length > 0;
    return [
      r.seq, Math.round(r.offsetUs), r.method, r.route, r.protocol, r.status, r.errorKind, r.requestBytes,
      r.responseBytes, r.ttfbUs, r.ttftUs, r.latencyUs, r.streamed ? 1 : 0, r.eventCount, r.promptTokens,
      r.outputTokens, r.messageCount, r.model, r.maxTokens, this.shapeId(r),
      Object.keys(r.params).length > 0 ? encodeBlob(r.params) : null,
      hasFeatures ? encodeBlob(r.features) : null,
      r.eventOffsetsUs && r.eventOffsetsUs.length > 0 ? encodeEventOffsets(r.eventOffsetsUs) : null,
    ];
  }

  /** Sets a `meta` entry (JSON-encoded). */
  setMeta(key: string, value: unknown): void {
    this.db.prepare('INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)').run(key, JSON.stringify(value));
  }

  /** Flushes, records the drop count, checkpoints the WAL and closes, leaving one self-contained file. Idempotent. */
  close(): void {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    this.flush();
    this.setMeta('records_dropped', this.dropped);
    this.closed = true;
    closeAsSingleFile(this.db);
  }
}
