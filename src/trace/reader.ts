import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import type { Arrival } from '../workload/types.ts';
import { TracewarpError } from '../errors.ts';
import type { TraceRecord } from '../types.ts';
import { decodeBlob } from './codec.ts';
import { FORMAT_NAME, FORMAT_VERSION, type TraceMeta } from './schema.ts';
import {
  checkMeta, checkRow, checkShape, guardedRequestColumns, isIdentifier, MAX_BLOB_BYTES, MAX_META_ROWS, MAX_META_VALUE_BYTES,
  MAX_SCALAR_CELL_BYTES, NUMERIC_COLUMN_CAPS, REQUEST_COLUMNS, rowSeq, show, TraceProblem, type CheckedShape, type GuardedRow, type RowContext,
} from './validate.ts';

const SQLITE_MAGIC = 'SQLite format 3\0';

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
      this.meta = this.validate();
    } catch (err) {
      this.db.close();
      if (err instanceof TracewarpError) throw err;
      throw new TracewarpError('TW_TRACE_CORRUPT', `${path}: damaged or truncated trace: ${(err as Error).message}`, { cause: err });
    }
  }

  private validate(): TraceMeta {
    const p = this.path;
    const check = this.checked ? 'ok' : this.db.pragma('quick_check', { simple: true });
    if (check !== 'ok') {
      // quick_check lists every damaged page (dozens of lines): the first problem and a count are enough.
      const lines = String(check).split('\n');
      const first = lines[0]!.slice(0, 200);
      throw new TracewarpError('TW_TRACE_CORRUPT', `${p}: damaged or truncated trace (PRAGMA quick_check: ${first}${lines.length > 1 ? ` and ${lines.length - 1} more problems` : ''})`);
    }
    const tables = new Set(
      (this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name),
    );
    if (!tables.has('meta')) throw new TracewarpError('TW_TRACE_FOREIGN', `${p}: an SQLite database but not a tracewarp trace (no meta table)`);
    // Keys and values are measured before they are read: a hostile meta must not be loaded whole.
    const rows = this.db.prepare(`SELECT iif(octet_length(key) > ${MAX_SCALAR_CELL_BYTES * 4}, NULL, key) AS key, octet_length(key) AS key_len,
      iif(octet_length(value) > ${MAX_META_VALUE_BYTES}, NULL, value) AS value, octet_length(value) AS value_len FROM meta LIMIT ${MAX_META_ROWS + 1}`)
      .all() as Array<{ key: unknown; key_len: number | null; value: unknown; value_len: number | null }>;
    const raw = new Map<string, unknown>();
    const problems: string[] = [];
    if (rows.length > MAX_META_ROWS) problems.push(`the meta table has more than the cap of ${MAX_META_ROWS} entries`);
    for (const row of rows) {
      if (typeof row.key !== 'string') {
        problems.push(row.key === null && (row.key_len ?? 0) > 0 ? `a meta key holds ${row.key_len} bytes, over the cap of ${MAX_SCALAR_CELL_BYTES * 4}` : `a meta key is ${show(row.key)}, not a text`);
        continue;
      }
      if (row.value === null && (row.value_len ?? 0) > MAX_META_VALUE_BYTES) {
        problems.push(`meta.${row.key} holds ${row.value_len} bytes, over the cap of ${MAX_META_VALUE_BYTES} bytes per meta value`);
        continue;
      }
      if (typeof row.value !== 'string') {
        problems.push(`meta.${row.key} is ${show(row.value)}, not a JSON text`);
        continue;
      }
      try {
        raw.set(row.key, JSON.parse(row.value));
      } catch {
        raw.set(row.key, row.value);
      }
    }
    if (raw.get('format') !== FORMAT_NAME) {
      const fmt = raw.get('format') ?? null;
      throw new TracewarpError('TW_TRACE_FOREIGN', `${p}: an SQLite database but not a tracewarp trace (meta.format is ${show(fmt)})${fmt === 'tracewarp-run' ? ': it is a run file, read it with `tracewarp report`' : ''}`);
    }
    const version = raw.get('format_version');
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 1 || version > FORMAT_VERSION) {
      throw new TracewarpError('TW_TRACE_VERSION', `${p}: trace format version ${show(version)} is not one this tracewarp reads (it reads 1..${FORMAT_VERSION}); upgrade tracewarp`);
    }
    if (problems.length > 0) throw new TracewarpError('TW_TRACE_CORRUPT', `${p}: malformed trace meta: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : ''}`);
    let m;
    try {
      m = checkMeta(raw);
    } catch (err) {
      if (err instanceof TraceProblem) throw new TracewarpError('TW_TRACE_CORRUPT', `${p}: malformed trace meta: ${err.message}`);
      throw err;
    }
    if (!tables.has('requests') || !tables.has('shapes')) {
      throw new TracewarpError('TW_TRACE_CORRUPT', `${p}: trace is missing its requests or shapes table`);
    }
    const columns = (table: string) => new Set(this.db.prepare(`SELECT name FROM pragma_table_info('${table}')`).pluck().all() as string[]);
    const have = columns('requests');
    const missing = REQUEST_COLUMNS.map(([c]) => c).filter((c) => !have.has(c));
    if (missing.length > 0) throw new TracewarpError('TW_TRACE_CORRUPT', `${p}: the requests table lacks column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: not a format ${version} trace table`);
    const shapeCols = columns('shapes');
    if (!shapeCols.has('id') || !shapeCols.has('shape')) throw new TracewarpError('TW_TRACE_CORRUPT', `${p}: the shapes table lacks its id or shape column`);
    return {
      format: FORMAT_NAME,
      formatVersion: version,
      createdAt: m.createdAt,
      anchorWallUs: m.anchorWallUs,
      source: m.source,
      sourceFile: m.sourceFile,
      toolVersion: m.toolVersion,
      anonymization: m.anonymization,
      recordsDropped: m.recordsDropped,
      captureRaw: m.captureRaw,
      recordingHealth: m.recordingHealth as TraceMeta['recordingHealth'],
    };
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
    const stmt = this.db.prepare(`SELECT ${guardedRequestColumns()} FROM requests WHERE requests.protocol IS NOT 'websocket' ORDER BY requests.offset_us, requests.seq`).raw();
    const pass = this.beginPass();
    const out: Arrival[] = [];
    for (const row of stmt.iterate() as IterableIterator<GuardedRow>) {
      const r = this.take(row, pass);
      if (!r || r.protocol === 'websocket') continue;
      out.push({
        seq: r.seq, atUs: r.offsetUs, clone: 0, fingerprintSalt: null, drift: [], anomaly: null, route: r.route, protocol: r.protocol,
        promptTokens: r.promptTokens, outputTokens: r.outputTokens, requestBytes: r.requestBytes, model: r.model,
        method: r.method, status: r.status, errorKind: r.errorKind, streamed: r.streamed,
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
    this.getStmt ??= this.db.prepare(`SELECT ${guardedRequestColumns()} FROM requests WHERE requests.seq = ?`).raw();
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
    const stmt = this.db.prepare(`SELECT ${guardedRequestColumns()} FROM requests ORDER BY requests.offset_us, requests.seq`).raw();
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

function checkHeader(path: string): void {
  if (!existsSync(path)) throw new TracewarpError('TW_TRACE_NOT_FOUND', `${path}: no such trace file`);
  const st = statSync(path);
  if (!st.isFile()) throw new TracewarpError('TW_TRACE_NOT_FOUND', `${path}: is a directory, not a trace file`);
  const size = st.size;
  if (size < 100) {
    throw new TracewarpError(size === 0 ? 'TW_TRACE_NOT_SQLITE' : 'TW_TRACE_CORRUPT', `${path}: ${size === 0 ? 'empty file, not a trace' : `only ${size} bytes: truncated, not a trace`}`);
  }
  const fd = openSync(path, 'r');
  const head = Buffer.alloc(100);
  try {
    readSync(fd, head, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  if (head.subarray(0, 16).toString('latin1') !== SQLITE_MAGIC) {
    throw new TracewarpError('TW_TRACE_NOT_SQLITE', `${path}: not an SQLite database, so not a tracewarp trace`);
  }
  const pageSize = head.readUInt16BE(16) === 1 ? 65536 : head.readUInt16BE(16);
  const pages = head.readUInt32BE(28);
  const headerSizeValid = head.readUInt32BE(92) === head.readUInt32BE(24);
  // A WAL beside the file holds committed pages not yet copied in (a recorder cut off, or a checkpoint that failed
  // part-way on a full disk): SQLite reads them from there, so the file may be shorter than its header says.
  const wal = statSync(`${path}-wal`, { throwIfNoEntry: false });
  if (headerSizeValid && pages > 0 && pageSize > 0 && size < pages * pageSize && !(wal && wal.size > 0)) {
    throw new TracewarpError('TW_TRACE_CORRUPT', `${path}: truncated (header says ${pages * pageSize} bytes, file has ${size})`);
  }
}
