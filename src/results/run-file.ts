import type { ScrapeSample } from '../scrape/scraper.ts';
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import { TracewarpError } from '../errors.ts';
import { closeAsSingleFile, prepareNewFile } from '../sqlite-file.ts';
import { decodeBlob, encodeBlob } from '../trace/codec.ts';
import type { RequestResult, RunMeta } from './types.ts';

/** `meta.format` of a run file. */
export const RUN_FORMAT = 'tracewarp-run';
/**
 * Run file format version. 2 added `dispatched_us`, `body_sent_us`, `ready_lag_us`, `sender` and `tool_stall`, and
 * `sent_us` became the moment the request's headers were written to the socket. 3 added `error_detail` (the cause of
 * a transport failure: an error code or which timeout fired) and the error kinds `timeout` and `bad_response`.
 * 4 added `recorded_failed` (the recorded exchange failed: left out of goodput). 5 added `route`, `model` and
 * `protocol` per result (breakdowns), the run's mergeable metrics (`meta.metrics`: counts and compressed HDR
 * histograms, `metrics/metrics.ts` EncodedMetrics) and the `scrape` table (the target's Prometheus samples on the run's
 * clock). 6 added `session`, `turn` and `parent_index` per result (sessions; `parent_index` only in closed-loop
 * replays) and `meta.sessions` (the mode, think time and history). Versions 1 to 5 are still read.
 */
export const RUN_FORMAT_VERSION = 6;

const SCHEMA = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE results (
  idx INTEGER PRIMARY KEY, trace_seq INTEGER NOT NULL, scheduled_us INTEGER NOT NULL, sent_us INTEGER,
  ttfb_at_us INTEGER, ttft_at_us INTEGER, end_us INTEGER, status INTEGER, error_kind TEXT,
  request_bytes INTEGER NOT NULL, response_bytes INTEGER NOT NULL, streamed INTEGER NOT NULL, event_count INTEGER NOT NULL,
  output_tokens INTEGER, expected_output_tokens INTEGER, prompt_tokens INTEGER, cap_delayed INTEGER NOT NULL, label TEXT,
  trace_id TEXT, itl BLOB, server_timing TEXT, dispatched_us INTEGER, body_sent_us INTEGER, ready_lag_us INTEGER,
  sender INTEGER NOT NULL DEFAULT 0, tool_stall INTEGER NOT NULL DEFAULT 0, error_detail TEXT,
  recorded_failed INTEGER NOT NULL DEFAULT 0, route TEXT, model TEXT, protocol TEXT,
  session INTEGER, turn INTEGER, parent_index INTEGER
);
CREATE TABLE scrape (t_us INTEGER NOT NULL, source TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, labels TEXT NOT NULL, value REAL NOT NULL);`;

const COLUMNS = ['idx', 'trace_seq', 'scheduled_us', 'sent_us', 'ttfb_at_us', 'ttft_at_us', 'end_us', 'status', 'error_kind', 'request_bytes', 'response_bytes', 'streamed', 'event_count', 'output_tokens', 'expected_output_tokens', 'prompt_tokens', 'cap_delayed', 'label', 'trace_id', 'itl', 'server_timing', 'dispatched_us', 'body_sent_us', 'ready_lag_us', 'sender', 'tool_stall', 'error_detail', 'recorded_failed', 'route', 'model', 'protocol', 'session', 'turn', 'parent_index'] as const;

/**
 * Writes a run file (SQLite): `meta` (JSON values: `format`, `format_version`, and the {@link RunMeta} fields) and one
 * `results` row per request, all times integer µs from the run start. Batched: `add` queues, `flush` writes.
 * @throws TracewarpError `TW_USAGE` if the file exists and `overwrite` is false.
 */
export class RunWriter {
  private readonly db: Db;
  private readonly insert: Statement;
  private queue: RequestResult[] = [];

  constructor(readonly path: string, meta: RunMeta, overwrite = false) {
    prepareNewFile(path, overwrite);
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(SCHEMA);
    const m = this.db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)');
    this.db.transaction(() => {
      m.run('format', JSON.stringify(RUN_FORMAT));
      m.run('format_version', JSON.stringify(RUN_FORMAT_VERSION));
      for (const [k, v] of Object.entries(meta)) m.run(k, JSON.stringify(v));
    })();
    this.insert = this.db.prepare(`INSERT INTO results (${COLUMNS.join(',')}) VALUES (${COLUMNS.map(() => '?').join(',')})`);
  }

  add(r: RequestResult): void {
    this.queue.push(r);
    if (this.queue.length >= 1024) this.flush();
  }

  /** Writes the queued results in one transaction (nothing when none are queued). */
  flush(): void {
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.db.transaction(() => {
      for (const r of batch) {
        this.insert.run(r.index, r.traceSeq, r.scheduledUs, r.sentUs, r.ttfbAtUs, r.ttftAtUs, r.endUs, r.status, r.errorKind,
          r.requestBytes, r.responseBytes, r.streamed ? 1 : 0, r.eventCount, r.outputTokens, r.expectedOutputTokens, r.promptTokens, r.capDelayed ? 1 : 0, r.label,
          r.traceId ?? null, r.itlUs && r.itlUs.length > 0 ? encodeBlob(r.itlUs) : null, r.serverTiming ? JSON.stringify(r.serverTiming) : null,
          r.dispatchedUs ?? null, r.bodySentUs ?? null, r.readyLagUs ?? null, r.sender ?? 0, r.toolStall ? 1 : 0, r.errorDetail ?? null, r.recordedFailed ? 1 : 0,
          r.route ?? null, r.model ?? null, r.protocol ?? null, r.session ?? null, r.turn ?? null, r.parentIndex ?? null);
      }
    })();
  }

  /** Marks the results (by index) measured while their sending loop was stalled; call after the last `add`. */
  markToolStalls(indexes: readonly number[]): void {
    this.flush();
    const update = this.db.prepare('UPDATE results SET tool_stall = 1 WHERE idx = ?');
    this.db.transaction(() => {
      for (const i of indexes) update.run(i);
    })();
  }

  /** Writes the target's scraped samples (µs on the run's clock) in one transaction. */
  addScrape(samples: readonly ScrapeRow[]): void {
    const ins = this.db.prepare('INSERT INTO scrape (t_us, source, name, type, labels, value) VALUES (?, ?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const s of samples) ins.run(Math.round(s.tUs), s.source, s.name, s.type, JSON.stringify(s.labels), s.value);
    })();
  }

  /** Sets a meta entry (JSON-encoded), e.g. the summary once the run ends. */
  setMeta(key: string, value: unknown): void {
    this.db.prepare('INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)').run(key, JSON.stringify(value));
  }

  close(): void {
    this.flush();
    closeAsSingleFile(this.db);
  }
}

interface ResultRow {
  idx: number; trace_seq: number; scheduled_us: number; sent_us: number | null; ttfb_at_us: number | null; ttft_at_us: number | null;
  end_us: number | null; status: number | null; error_kind: string | null; request_bytes: number; response_bytes: number;
  streamed: number; event_count: number; output_tokens: number | null; expected_output_tokens: number | null;
  prompt_tokens: number | null; cap_delayed: number; label: string | null; trace_id: string | null; itl: Buffer | null;
  server_timing: string | null; dispatched_us?: number | null; body_sent_us?: number | null; ready_lag_us?: number | null;
  sender?: number; tool_stall?: number; error_detail?: string | null; recorded_failed?: number;
  route?: string | null; model?: string | null; protocol?: string | null;
  session?: number | null; turn?: number | null; parent_index?: number | null;
}

/** One scraped sample of the target's metrics, as the scraper took it but with `tUs` on the run's clock (µs after its offset 0). */
export type ScrapeRow = ScrapeSample;

/**
 * Reads a run file written by {@link RunWriter}.
 * @throws TracewarpError `TW_RUN_INVALID` naming the file when it is missing, not SQLite, or not a run file.
 */
export function readRunFile(path: string): { meta: RunMeta & Record<string, unknown>; results: RequestResult[]; scrape: ScrapeRow[] } {
  if (!existsSync(path)) throw new TracewarpError('TW_RUN_INVALID', `${path}: no such run file`);
  let db: Db;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const meta: Record<string, unknown> = {};
    for (const r of db.prepare('SELECT key, value FROM meta').all() as Array<{ key: string; value: string }>) meta[r.key] = JSON.parse(r.value);
    if (meta.format !== RUN_FORMAT) throw new Error(meta.format === 'tracewarp-trace' ? 'not a tracewarp run file but a trace: use `tracewarp inspect` (or `replay` it to get a run file)' : 'not a tracewarp run file');
    const version = meta.format_version;
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 1 || version > RUN_FORMAT_VERSION) {
      throw new Error(`run file format version ${JSON.stringify(version)} is not one this tracewarp reads (it reads 1..${RUN_FORMAT_VERSION}); upgrade tracewarp`);
    }
    const results = (db.prepare('SELECT * FROM results ORDER BY idx').all() as ResultRow[]).map((r): RequestResult => ({
      index: r.idx, traceSeq: r.trace_seq, scheduledUs: r.scheduled_us, sentUs: r.sent_us, ttfbAtUs: r.ttfb_at_us, ttftAtUs: r.ttft_at_us,
      endUs: r.end_us, status: r.status, errorKind: r.error_kind as RequestResult['errorKind'], requestBytes: r.request_bytes,
      responseBytes: r.response_bytes, streamed: r.streamed === 1, eventCount: r.event_count, outputTokens: r.output_tokens,
      expectedOutputTokens: r.expected_output_tokens, promptTokens: r.prompt_tokens, capDelayed: r.cap_delayed === 1, label: r.label,
      traceId: r.trace_id, itlUs: r.itl ? decodeBlob<number[]>(r.itl) : r.streamed ? [] : null, serverTiming: r.server_timing ? JSON.parse(r.server_timing) : null,
      dispatchedUs: r.dispatched_us ?? null, bodySentUs: r.body_sent_us ?? null, readyLagUs: r.ready_lag_us ?? null, sender: r.sender ?? 0, toolStall: r.tool_stall === 1,
      errorDetail: r.error_detail ?? null, recordedFailed: r.recorded_failed === 1, route: r.route ?? null, model: r.model ?? null, protocol: r.protocol ?? null,
      session: r.session ?? null, turn: r.turn ?? null, parentIndex: r.parent_index ?? null,
    }));
    const scrape = version >= 5
      ? (db.prepare('SELECT t_us, source, name, type, labels, value FROM scrape ORDER BY t_us').all() as Array<{ t_us: number; source: string; name: string; type: string; labels: string; value: number }>)
        .map((s): ScrapeRow => ({ tUs: s.t_us, source: s.source, name: s.name, type: s.type, labels: JSON.parse(s.labels) as Record<string, string>, value: s.value }))
      : [];
    db.close();
    return { meta: meta as RunMeta & Record<string, unknown>, results, scrape };
  } catch (err) {
    throw new TracewarpError('TW_RUN_INVALID', `${path}: cannot read as a tracewarp run file: ${(err as Error).message}`, { cause: err });
  }
}
