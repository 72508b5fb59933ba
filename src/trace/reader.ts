import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import type { Arrival } from '../workload/types.ts';
import { TracewarpError } from '../errors.ts';
import type { TraceRecord } from '../types.ts';
import { decodeBlob } from './codec.ts';
import { SESSIONS_SINCE_VERSION, type TraceMeta } from './schema.ts';
import { checkHeader, checkTraceFile } from './open-check.ts';
import {
  checkRow, checkShape, guardedRequestColumns, isIdentifier, MAX_BLOB_BYTES, MAX_SCALAR_CELL_BYTES, NUMERIC_COLUMN_CAPS, rowSeq, show,
  TraceProblem, type CheckedShape, type GuardedRow, type RowContext,
} from './validate.ts';

/** A record the reader refused: its sequence number and the whole message (file, record, problem). */
export interface RefusedRecord {
  seq: number | null;
  message: string;
}

/** Refused records whose reasons a pass keeps (the count goes on). */
export const REFUSED_REASONS_KEPT = 5;

/** Options of {@link TraceReader}. */
export interface TraceReaderOptions {
  /**
   * The file was validated already in this run (a second reader of it, in a synthesis thread): skips
   * `PRAGMA quick_check`, which reads every page. Records are checked all the same.
   */
  checked?: boolean;
  /**
   * Throw on the first record that fails its checks (`TW_TRACE_CORRUPT`), from {@link TraceReader.arrivals} and
   * {@link TraceReader.records}, instead of leaving it out and counting it. Default false.
   */
  strict?: boolean;
}

/** The refusals of one pass over the records. */
interface Pass {
  skipped: number;
  refused: RefusedRecord[];
}

/**
 * Opens a trace file read-only after checking it really is one. Refuses, with a {@link TracewarpError} naming the file
 * and the problem: a missing file (`TW_TRACE_NOT_FOUND`), a file that is not SQLite (`TW_TRACE_NOT_SQLITE`), an SQLite
 * file that is not a tracewarp trace (`TW_TRACE_FOREIGN`), a newer or unknown format version (`TW_TRACE_VERSION`), a
 * truncated or damaged file, or one whose `meta` or tables do not follow the format (`TW_TRACE_CORRUPT`).
 *
 * A trace is untrusted input: every record is checked as it is decoded against the caps of `validate.ts` (sizes,
 * token counts, offsets, the skeleton's structure), before anything is built from it. A record that fails is
 * **refused**: {@link arrivals} and {@link records} leave it out and count it ({@link skipped}, {@link refused},
 * {@link skippedSummary}), or throw `TW_TRACE_CORRUPT` in strict mode; {@link get} always throws for it. Each message
 * names the file, the record's sequence number and the problem, e.g.
 * `trace.db: record 17: messageTokens[3] = 1000000000 is over the cap of 2000000 tokens per request`.
 */
export class TraceReader {
  readonly path: string;
  readonly meta: TraceMeta;
  private readonly db: Db;
  /** Shapes checked so far, by id: the shape, or why it cannot be used. */
  private readonly shapes = new Map<number, CheckedShape | string>();
  private readonly cache = new Map<number, TraceRecord>();
  private getStmt: Statement | null = null;
  private shapeStmt: Statement | null = null;
  private readonly checked: boolean;
  private readonly strict: boolean;
  /** Format 3 and later have the session columns; older traces read them as null. */
  private readonly hasSessions: boolean;
  private pass: Pass = { skipped: 0, refused: [] };
  private readonly ctx: RowContext = {
    shape: (id) => {
      let s = this.shapes.get(id);
      if (s === undefined) {
        s = this.loadShape(id);
        this.shapes.set(id, s);
      }
      if (typeof s === 'string') throw new TraceProblem(s);
      return s;
    },
    decode: (blob) => decodeBlob<unknown>(blob),
  };

  constructor(path: string, opts: TraceReaderOptions = {}) {
    this.path = path;
    this.checked = Boolean(opts.checked);
    this.strict = Boolean(opts.strict);
    checkHeader(path);
    try {
      this.db = new Database(path, { readonly: true, fileMustExist: true });
    } catch (err) {
      throw new TracewarpError('TW_TRACE_CORRUPT', `${path}: cannot open as SQLite: ${(err as Error).message}`, { cause: err });
    }
    try {
      this.meta = checkTraceFile(this.db, path, this.checked);
      this.hasSessions = this.meta.formatVersion >= SESSIONS_SINCE_VERSION;
    } catch (err) {
      this.db.close();
      if (err instanceof TracewarpError) throw err;
      throw new TracewarpError('TW_TRACE_CORRUPT', `${path}: damaged or truncated trace: ${(err as Error).message}`, { cause: err });
    }
  }

  /** A shape by id, checked (its blob measured before it is read), or why it cannot be used. */
  private loadShape(id: number): CheckedShape | string {
    this.shapeStmt ??= this.db.prepare(`SELECT iif(octet_length(shape) > ${MAX_BLOB_BYTES}, NULL, shape) AS shape, octet_length(shape) AS n FROM shapes WHERE id = ?`);
    const row = this.shapeStmt.get(id) as { shape: unknown; n: number | null } | undefined;
    if (!row) return `refers to shape ${id}, which the trace does not have`;
    if (row.shape === null) return (row.n ?? 0) > MAX_BLOB_BYTES ? `shape ${id} holds ${row.n} bytes, over the cap of ${MAX_BLOB_BYTES} bytes per blob` : `shape ${id} is empty`;
    if (!(row.shape instanceof Uint8Array)) return `shape ${id} is ${show(row.shape)}, not a blob`;
    let value: unknown;
    try {
      value = decodeBlob<unknown>(row.shape);
    } catch (err) {
      return `shape ${id} cannot be decoded: ${(err as Error).message}`;
    }
    try {
      return checkShape(value);
    } catch (err) {
      return `shape ${id}: ${(err as Error).message}`;
    }
  }

  /** The record of a row, checked. @throws TracewarpError `TW_TRACE_CORRUPT` naming the file, the record and the problem. */
  private decode(row: GuardedRow): TraceRecord {
    try {
      return checkRow(row, this.ctx);
    } catch (err) {
      const seq = rowSeq(row);
      const problem = err instanceof TraceProblem ? err.message : `cannot be decoded: ${(err as Error).message}`;
      throw new TracewarpError('TW_TRACE_CORRUPT', `${this.path}: record ${seq}: ${problem}`, { cause: err });
    }
  }

  /** The record of a row in a pass: null (counted) when it is refused, unless strict. */
  private take(row: GuardedRow, pass: Pass): TraceRecord | null {
    try {
      return this.decode(row);
    } catch (err) {
      if (this.strict) throw err;
      pass.skipped++;
      if (pass.refused.length < REFUSED_REASONS_KEPT) pass.refused.push({ seq: typeof row[0] === 'number' ? row[0] : null, message: (err as Error).message });
      return null;
    }
  }

  private beginPass(): Pass {
    this.pass = { skipped: 0, refused: [] };
    return this.pass;
  }

  /**
   * Records refused in the last pass of {@link arrivals} or {@link records} (so far, while a pass of `records` is under
   * way): left out because they failed their checks.
   */
  get skipped(): number {
    return this.pass.skipped;
  }

  /** The first {@link REFUSED_REASONS_KEPT} records refused in the last pass, with their messages. */
  get refused(): readonly RefusedRecord[] {
    return this.pass.refused;
  }

  /**
   * One line for callers to print after a pass that refused records, e.g.
   * `2 records could not be used: trace.db: record 17: offset_us = -5 is negative`; null when none was refused.
   */
  skippedSummary(): string | null {
    const { skipped, refused } = this.pass;
    if (skipped === 0) return null;
    return `${skipped} record${skipped === 1 ? '' : 's'} could not be used: ${refused[0]!.message}`;
  }

  /** Number of requests in the trace (every row, refused records too). */
  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM requests').get() as { n: number }).n;
  }

  /**
   * First and last arrival offsets in µs (0, 0 for an empty trace), of the rows whose offset is an integer within the
   * span cap (the others are refused when read).
   */
  span(): { firstUs: number; lastUs: number } {
    const ok = `offset_us BETWEEN 0 AND ${NUMERIC_COLUMN_CAPS.offset_us} AND offset_us = CAST(offset_us AS INTEGER)`;
    const r = this.db.prepare(`SELECT (SELECT offset_us FROM requests WHERE ${ok} ORDER BY offset_us LIMIT 1) AS a, (SELECT offset_us FROM requests WHERE ${ok} ORDER BY offset_us DESC LIMIT 1) AS b`).get() as { a: number | null; b: number | null };
    return { firstUs: r.a ?? 0, lastUs: r.b ?? 0 };
  }

  /**
   * Count of requests per HTTP status (`"none"` where no status was sent: failures before headers, imported rows).
   * Statuses that are not an integer 100..999 are left out (their records are refused when read).
   */
  statuses(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.db.prepare('SELECT status, count(*) AS n FROM requests WHERE status IS NULL OR (status BETWEEN 100 AND 999 AND status = CAST(status AS INTEGER)) GROUP BY status ORDER BY status').all() as Array<{ status: number | null; n: number }>) {
      out[r.status === null ? 'none' : String(r.status)] = r.n;
    }
    return out;
  }

  /**
   * The values of one numeric column (non-null), for distributions of HTTP exchanges: WebSocket sessions (whose
   * `latency_us` is a session's duration) are left out, and so are values that are not integers within the column's
   * cap (see `validate.ts`; their records are refused when read).
   */
  column(name: 'prompt_tokens' | 'output_tokens' | 'request_bytes' | 'response_bytes' | 'latency_us' | 'ttft_us' | 'ttfb_us'): number[] {
    const cap = NUMERIC_COLUMN_CAPS[name];
    return (this.db.prepare(`SELECT ${name} AS v FROM requests WHERE ${name} BETWEEN 0 AND ${cap} AND ${name} = CAST(${name} AS INTEGER) AND protocol != 'websocket'`).raw().all() as Array<[number]>).map((r) => r[0]);
  }

  /**
   * Light arrivals for workload planning, in offset order. Every record is checked as it is read; refused ones are
   * left out and counted ({@link skipped}, {@link skippedSummary}), or throw in strict mode. WebSocket sessions are
   * left out too: replay sends HTTP requests only (see {@link TraceReader.webSocketSessions}).
   * @throws TracewarpError `TW_TRACE_CORRUPT` on the first refused record in strict mode.
   */
  arrivals(): Arrival[] {
    const stmt = this.db.prepare(`SELECT ${guardedRequestColumns(this.hasSessions)} FROM requests WHERE requests.protocol IS NOT 'websocket' ORDER BY requests.offset_us, requests.seq`).raw();
    const pass = this.beginPass();
    const out: Arrival[] = [];
    for (const row of stmt.iterate() as IterableIterator<GuardedRow>) {
      const r = this.take(row, pass);
      if (!r || r.protocol === 'websocket') continue;
      out.push({
        seq: r.seq, atUs: r.offsetUs, clone: 0, fingerprintSalt: null, drift: [], anomaly: null, route: r.route, protocol: r.protocol,
        promptTokens: r.promptTokens, outputTokens: r.outputTokens, requestBytes: r.requestBytes, model: r.model,
        method: r.method, status: r.status, errorKind: r.errorKind, streamed: r.streamed,
        ...(r.session ? { session: { id: r.session.session, turn: r.session.turn, parentSeq: r.session.parentSeq, thinkUs: r.session.thinkUs } } : {}),
      });
    }
    return out;
  }

  /** True when some request recorded images (the `images` or an image `parts` entry in its features). */
  hasImages(): boolean {
    const r = this.db.prepare(`SELECT 1 FROM requests WHERE features IS NOT NULL AND octet_length(features) <= ${MAX_BLOB_BYTES} AND (instr(features, CAST('images' AS BLOB)) > 0 OR instr(features, CAST('image' AS BLOB)) > 0) LIMIT 1`).get();
    return r !== undefined;
  }

  /** How many recorded exchanges are WebSocket sessions (protocol `websocket`), which replay does not send. */
  webSocketSessions(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM requests WHERE protocol = 'websocket'").get() as { n: number }).n;
  }

  /** Distinct protocols in the trace (values that are not a protocol id are left out: their records are refused). */
  protocols(): string[] {
    return (this.db.prepare(`SELECT DISTINCT protocol FROM requests WHERE typeof(protocol) = 'text' AND octet_length(protocol) <= ${MAX_SCALAR_CELL_BYTES}`).raw().all() as Array<[string]>)
      .map((r) => r[0]).filter(isIdentifier);
  }

  /**
   * One request by sequence number (a point lookup; cached for the last few so clones do not re-read), checked.
   * @throws TracewarpError `TW_TRACE_CORRUPT` when it is missing, cannot be decoded or fails its checks.
   */
  get(seq: number): TraceRecord {
    const hit = this.cache.get(seq);
    if (hit) return hit;
    this.getStmt ??= this.db.prepare(`SELECT ${guardedRequestColumns(this.hasSessions)} FROM requests WHERE requests.seq = ?`).raw();
    const row = this.getStmt.get(seq) as GuardedRow | undefined;
    if (!row) throw new TracewarpError('TW_TRACE_CORRUPT', `${this.path}: no request ${seq}`);
    const r = this.decode(row);
    if (this.cache.size > 1024) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(seq, r);
    return r;
  }

  /**
   * Streams the requests in order of arrival offset (ties by sequence number), one row decoded and checked at a time.
   * Refused records are left out and counted ({@link skipped}), or throw in strict mode.
   * @throws TracewarpError `TW_TRACE_CORRUPT` on the first refused record in strict mode.
   */
  *records(): Generator<TraceRecord> {
    const stmt = this.db.prepare(`SELECT ${guardedRequestColumns(this.hasSessions)} FROM requests ORDER BY requests.offset_us, requests.seq`).raw();
    const pass = this.beginPass();
    for (const row of stmt.iterate() as IterableIterator<GuardedRow>) {
      const r = this.take(row, pass);
      if (r) yield r;
    }
  }

  close(): void {
    this.db.close();
  }
}
