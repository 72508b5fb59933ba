import { mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import { closeAsSingleFile, prepareNewFile } from '../sqlite-file.ts';
import type { SessionLink, TraceRecord } from '../types.ts';
import { TOOL_VERSION } from '../version.ts';
import { blobHash, encodeBlob, encodeEventOffsets } from './codec.ts';
import { FORMAT_NAME, FORMAT_VERSION, SCHEMA_V1, SESSION_COLUMNS_DDL } from './schema.ts';
import { rescueRecords } from './rescue.ts';
import { WriteRetry, type WriterHealth, type WriterHealthEvent } from './write-health.ts';

/** A cell to sleep on (`Atomics.wait`) while close waits for a locked or full file. */
const SLEEP = new Int32Array(new SharedArrayBuffer(4));

/** What {@link TraceWriter.close} achieved. */
export interface WriterCloseResult {
  /** The file was left as a single file (its meta written, the WAL folded in). */
  whole: boolean;
  health: WriterHealth;
  /** Where records that could not be written at the end went instead (a trace of their own), if anywhere. */
  rescuedTo: string | null;
  rescued: number;
  /** False when not even the trace's meta could be written: the file itself does not say what it lacks. */
  metaWritten: boolean;
}


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
  /** Records that may wait in memory (while the file cannot be written) before new ones are dropped and counted. Default 100,000. */
  maxQueued?: number;
  /**
   * How long SQLite waits for a lock another process holds before a write fails, ms. Default 5000; the recorder uses 0
   * and retries with backoff instead, so a held lock never blocks anything.
   */
  busyTimeoutMs?: number;
  /** Told when writing fails, resumes, or the file had to be made again (capture reports these once on stderr). */
  onHealth?: (event: WriterHealthEvent) => void;
}

export type { WriterHealth, WriterHealthEvent } from './write-health.ts';

/**
 * Appends {@link TraceRecord}s to a new trace file in batched transactions, off the request path: `add` only queues.
 * The file is in WAL mode while open and is left as a single file (journal mode DELETE) by {@link close}.
 *
 * A write that fails (a lock another process holds, a full disk, a file made read-only) keeps its batch and is tried
 * again with backoff; meanwhile records wait in memory up to `maxQueued`, then are dropped and counted. A file that
 * vanished (deleted, or replaced) is made again at its path from the open database, nothing lost. Nothing it does
 * throws after the file is created, except {@link setMeta} for the caller's own entries.
 * @throws TracewarpError `TW_USAGE` when the file exists and `overwrite` is not set.
 */
export class TraceWriter {
  readonly path: string;
  private db: Db;
  private insert!: Statement;
  private insertShape!: Statement;
  private readonly shapeIds = new Map<string, number>();
  private queue: TraceRecord[] = [];
  private insertRaw: Statement | null = null;
  private rawQueue: unknown[][] = [];
  /** Session roots found after their rows were written: [session, turn, seq]. */
  private links: number[][] = [];
  private updateLink!: Statement;
  private timer: NodeJS.Timeout | null = null;
  private readonly batchSize: number;
  private readonly maxQueued: number;
  private readonly busyTimeoutMs: number;
  private dropped = 0;
  private written = 0;
  private closed = false;
  private ino = 0;
  private readonly retry: WriteRetry;

  constructor(path: string, private readonly opts: TraceWriterOptions) {
    this.path = path;
    prepareNewFile(path, Boolean(opts.overwrite));
    this.busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
    this.retry = new WriteRetry(opts.onHealth);
    this.db = this.open();
    this.db.exec(SCHEMA_V1 + SESSION_COLUMNS_DDL);
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
    this.prepare();
    this.batchSize = opts.batchSize ?? 512;
    this.maxQueued = opts.maxQueued ?? 100_000;
    if (opts.flushIntervalMs) {
      this.timer = setInterval(() => this.flush(), opts.flushIntervalMs);
      this.timer.unref();
    }
  }

  private open(): Db {
    const db = new Database(this.path, { timeout: this.busyTimeoutMs });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    this.ino = statSync(this.path).ino;
    return db;
  }

  private prepare(): void {
    this.insertShape = this.db.prepare('INSERT INTO shapes(hash, shape) VALUES (?, ?)');
    this.updateLink = this.db.prepare('UPDATE requests SET session = ?, turn = ? WHERE seq = ?');
    this.insert = this.db.prepare(`INSERT INTO requests (
      seq, offset_us, method, route, protocol, status, error_kind, request_bytes, response_bytes, ttfb_us, ttft_us,
      latency_us, streamed, event_count, prompt_tokens, output_tokens, message_count, model, max_tokens, shape_id,
      params, features, event_offsets, session, turn, parent_seq, think_us)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    if (this.insertRaw) this.insertRaw = this.db.prepare('INSERT INTO raw_requests(seq, url, headers, body) VALUES (?, ?, ?, ?)');
  }

  /** Queues a record; drops and counts it when `maxQueued` records already wait (the file cannot be written). */
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
   * Makes an already added request the first turn of a session (a later request continued it: `sessions/infer.ts`).
   * A record still queued is changed in place; a written one is updated with the next batch.
   */
  linkSessionRoot(seq: number, link: SessionLink): void {
    if (this.closed) return;
    const queued = this.queue.find((r) => r.seq === seq);
    if (queued) queued.session = link;
    else if (this.links.length < this.maxQueued) this.links.push([link.session, link.turn, seq]);
  }

  /** Counts records dropped before they reached the writer (the recorder's queue was full). */
  countDropped(n: number): void {
    this.dropped += n;
  }

  /**
   * Stores a raw request in the `raw_requests` table (created on first use; `meta.capture_raw` becomes true). Only for
   * an explicit `--capture-raw`: this is the one path by which values reach a trace.
   */
  addRaw(seq: number, raw: { url: string; headers: Record<string, unknown>; body: Uint8Array | null }): void {
    if (!this.insertRaw) {
      this.db.exec('CREATE TABLE IF NOT EXISTS raw_requests (seq INTEGER PRIMARY KEY, url TEXT NOT NULL, headers TEXT NOT NULL, body BLOB)');
      this.setMeta('capture_raw', true);
      this.insertRaw = this.db.prepare('INSERT INTO raw_requests(seq, url, headers, body) VALUES (?, ?, ?, ?)');
    }
    if (this.rawQueue.length >= this.maxQueued) return;
    this.rawQueue.push([seq, raw.url, JSON.stringify(raw.headers), raw.body]);
  }

  /** Records written so far, records dropped (queue full), records waiting. */
  get stats(): { written: number; dropped: number; queued: number } {
    return { written: this.written, dropped: this.dropped, queued: this.queue.length };
  }

  /** How writing went so far. */
  get writeHealth(): WriterHealth {
    const h = this.retry.health;
    return { ...h, ok: h.writeFailures === 0 && this.dropped === 0, recordsDropped: this.dropped };
  }

  /**
   * Writes every queued record in one transaction. On failure the records stay queued and the next attempt waits
   * (100 ms doubling to 5 s), unless `force`. Never throws.
   */
  flush(force = false): void {
    if (this.queue.length === 0 && this.rawQueue.length === 0 && this.links.length === 0) return;
    if (!force && !this.retry.mayAttempt()) return;
    this.checkFile();
    const batch = this.queue;
    const raws = this.rawQueue;
    const links = this.links;
    this.queue = [];
    this.rawQueue = [];
    this.links = [];
    try {
      this.db.transaction(() => {
        for (const r of batch) this.insert.run(this.row(r));
        for (const r of raws) this.insertRaw!.run(r);
        for (const l of links) this.updateLink.run(l);
      })();
      this.written += batch.length;
      this.retry.succeeded(this.dropped);
    } catch (err) {
      // The transaction rolled back: everything is still to write (ahead of what came meanwhile), up to the bound.
      this.queue = batch.concat(this.queue);
      this.rawQueue = raws.concat(this.rawQueue);
      this.links = links.concat(this.links);
      if (this.queue.length > this.maxQueued) {
        this.dropped += this.queue.length - this.maxQueued;
        this.queue.length = this.maxQueued;
      }
      this.retry.failed(err, this.dropped);
    }
  }

  /**
   * Makes the file again from the open database when it vanished from its path (deleted or replaced); checked before
   * every write (a `stat`), so nothing is written to a file no one can see any more.
   */
  private checkFile(): void {
    const st = statSync(this.path, { throwIfNoEntry: false });
    if (st && st.ino === this.ino) return;
    try {
      const image = this.db.serialize();
      // Closing the old connection checkpoints into the unlinked file and removes its WAL by name; the image holds it all.
      this.db.close();
      mkdirSync(dirname(this.path), { recursive: true });
      writeFileSync(`${this.path}.tmp`, image);
      for (const suffix of ['-wal', '-shm']) rmSync(this.path + suffix, { force: true });
      renameSync(`${this.path}.tmp`, this.path);
      this.db = this.open();
      this.prepare();
      this.retry.recreated(st ? 'replaced by another file' : 'deleted');
    } catch (err) {
      if (!this.db.open) {
        try {
          this.db = this.open();
          this.prepare();
        } catch {
          // the directory may be gone too: the next flush fails and is retried
        }
      }
      this.retry.failed(err, this.dropped);
    }
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
      r.session?.session ?? null, r.session?.turn ?? null, r.session?.parentSeq ?? null,
      r.session?.thinkUs === null || r.session?.thinkUs === undefined ? null : Math.round(r.session.thinkUs),
    ];
  }

  /** Sets a `meta` entry (JSON-encoded). @throws the SQLite error when the file cannot be written. */
  setMeta(key: string, value: unknown): void {
    this.db.prepare('INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)').run(key, JSON.stringify(value));
  }

  /**
   * Flushes, writes `records_dropped` and `recording_health` into meta and leaves the file as a single file. While the
   * file cannot be written (a lock another process holds, a full disk), it keeps trying for up to `waitMs` (backoff
   * 100 ms doubling to 1 s, sleeping this thread); records still unwritten then go to a rescue trace beside it
   * ({@link rescueRecords}), and only what even that could not take is lost (counted in `health.recordsDropped`).
   * Never throws.
   */
  close(opts: { waitMs?: number } = {}): WriterCloseResult {
    if (this.closed) return { whole: true, health: this.writeHealth, rescuedTo: null, rescued: 0, metaWritten: true };
    if (this.timer) clearInterval(this.timer);
    const deadline = Date.now() + (opts.waitMs ?? 0);
    let metaWritten = false;
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      this.checkFile();
      this.flush(true);
      if (this.queue.length === 0 && (metaWritten = this.writeCloseMeta(null))) break;
      if (Date.now() + delay > deadline) break;
      Atomics.wait(SLEEP, 0, 0, delay);
    }
    let rescuedTo: string | null = null;
    let rescued = 0;
    if (this.queue.length > 0) {
      rescuedTo = rescueRecords(this.path, this.opts, this.queue, (p, o) => new TraceWriter(p, o));
      if (rescuedTo) rescued = this.queue.length;
      else this.dropped += this.queue.length;
      this.queue = [];
      metaWritten = this.writeCloseMeta(rescuedTo);
    }
    this.closed = true;
    let whole = false;
    try {
      if (!metaWritten) throw new Error('meta not written');
      closeAsSingleFile(this.db);
      whole = true;
    } catch (err) {
      if (metaWritten) this.retry.failed(err, this.dropped);
      try {
        this.db.close();
      } catch {
        // already closed, or nothing more can be done: what was committed is in the file or its WAL
      }
    }
    return { whole, health: this.writeHealth, rescuedTo, rescued, metaWritten };
  }

  /** Writes the closing meta entries; false when the file cannot be written. */
  private writeCloseMeta(rescuedTo: string | null): boolean {
    try {
      this.db.transaction(() => {
        this.setMeta('records_dropped', this.dropped);
        this.setMeta('recording_health', this.writeHealth);
        if (rescuedTo) this.setMeta('records_rescued_to', rescuedTo);
      })();
      return true;
    } catch (err) {
      this.retry.failed(err, this.dropped);
      return false;
    }
  }
}
