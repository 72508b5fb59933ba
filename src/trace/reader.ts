import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import type { Arrival } from '../workload/types.ts';
import { TracewarpError } from '../errors.ts';
import type { ErrorKind, Features, Params, ProtocolId, RequestShape, TraceRecord } from '../types.ts';
import { decodeBlob, decodeEventOffsets } from './codec.ts';
import { FORMAT_NAME, FORMAT_VERSION, type TraceMeta } from './schema.ts';

const SQLITE_MAGIC = 'SQLite format 3\0';

interface RequestRow {
  seq: number; offset_us: number; method: string; route: string; protocol: string; status: number | null;
  error_kind: string | null; request_bytes: number; response_bytes: number | null; ttfb_us: number | null;
  ttft_us: number | null; latency_us: number | null; streamed: number; event_count: number | null;
  prompt_tokens: number | null; output_tokens: number | null; message_count: number | null; model: string | null;
  max_tokens: number | null; shape_id: number; params: Buffer | null; features: Buffer | null;
  event_offsets: Buffer | null;
}

/**
 * Opens a trace file read-only after checking it really is one. Refuses, with a {@link TracewarpError} naming the file
 * and the problem: a missing file (`TW_TRACE_NOT_FOUND`), a file that is not SQLite (`TW_TRACE_NOT_SQLITE`), an SQLite
 * file that is not a tracewarp trace (`TW_TRACE_FOREIGN`), a newer or unknown format version (`TW_TRACE_VERSION`), a
 * truncated or damaged file (`TW_TRACE_CORRUPT`).
 */
export class TraceReader {
  readonly path: string;
  readonly meta: TraceMeta;
  private readonly db: Db;
  private readonly shapes = new Map<number, RequestShape>();
  private readonly cache = new Map<number, TraceRecord>();
  private getStmt: Statement | null = null;
  private readonly checked: boolean;

  /**
   * @param opts.checked the file was validated already in this run (a second reader of it, in a synthesis thread):
   *   skips `PRAGMA quick_check`, which reads every page.
   */
  constructor(path: string, opts: { checked?: boolean } = {}) {
    this.path = path;
    this.checked = Boolean(opts.checked);
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
    const raw = new Map<string, unknown>();
    for (const row of this.db.prepare('SELECT key, value FROM meta').all() as Array<{ key: string; value: string }>) {
      try {
        raw.set(row.key, JSON.parse(row.value));
      } catch {
        raw.set(row.key, row.value);
      }
    }
    if (raw.get('format') !== FORMAT_NAME) {
      const fmt = raw.get('format') ?? null;
      throw new TracewarpError('TW_TRACE_FOREIGN', `${p}: an SQLite database but not a tracewarp trace (meta.format is ${JSON.stringify(fmt)})${fmt === 'tracewarp-run' ? ': it is a run file, read it with `tracewarp report`' : ''}`);
    }
    const version = raw.get('format_version');
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 1 || version > FORMAT_VERSION) {
      throw new TracewarpError('TW_TRACE_VERSION', `${p}: trace format version ${JSON.stringify(version)} is not one this tracewarp reads (it reads 1..${FORMAT_VERSION}); upgrade tracewarp`);
    }
    if (!tables.has('requests') || !tables.has('shapes')) {
      throw new TracewarpError('TW_TRACE_CORRUPT', `${p}: trace is missing its requests or shapes table`);
    }
    for (const row of this.db.prepare('SELECT id, shape FROM shapes').all() as Array<{ id: number; shape: Buffer }>) {
      this.shapes.set(row.id, decodeBlob<RequestShape>(row.shape));
    }
    return {
      format: FORMAT_NAME,
      formatVersion: version,
      createdAt: String(raw.get('created_at') ?? ''),
      anchorWallUs: Number(raw.get('anchor_wall_us') ?? 0),
      source: String(raw.get('source') ?? 'unknown'),
      sourceFile: raw.has('source_file') ? String(raw.get('source_file')) : undefined,
      toolVersion: String(raw.get('tool_version') ?? ''),
      anonymization: raw.get('anonymization') ?? null,
      recordsDropped: Number(raw.get('records_dropped') ?? 0),
      captureRaw: raw.get('capture_raw') === true,
      recordingHealth: (raw.get('recording_health') as TraceMeta['recordingHealth']) ?? null,
    };
  }

  /** Number of requests in the trace. */
  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM requests').get() as { n: number }).n;
  }

  /** First and last arrival offsets in µs (0, 0 for an empty trace). */
  span(): { firstUs: number; lastUs: number } {
    const r = this.db.prepare('SELECT min(offset_us) AS a, max(offset_us) AS b FROM requests').get() as { a: number | null; b: number | null };
    return { firstUs: r.a ?? 0, lastUs: r.b ?? 0 };
  }

  /** Count of requests per HTTP status (`"none"` where no status was sent: failures before headers, imported rows). */
  statuses(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.db.prepare('SELECT status, count(*) AS n FROM requests GROUP BY status ORDER BY status').all() as Array<{ status: number | null; n: number }>) {
      out[r.status === null ? 'none' : String(r.status)] = r.n;
    }
    return out;
  }

  /**
   * The values of one numeric column (non-null), for distributions of HTTP exchanges: WebSocket sessions (whose
   * `latency_us` is a session's duration) are left out.
   */
  column(name: 'prompt_tokens' | 'output_tokens' | 'request_bytes' | 'response_bytes' | 'latency_us' | 'ttft_us' | 'ttfb_us'): number[] {
    return (this.db.prepare(`SELECT ${name} AS v FROM requests WHERE ${name} IS NOT NULL AND protocol != 'websocket'`).raw().all() as Array<[number]>).map((r) => r[0]);
  }

  /**
   * Light arrivals for workload planning (no blobs decoded), in offset order. WebSocket sessions are left out: replay
   * sends HTTP requests only (see {@link TraceReader.webSocketSessions}).
   */
  arrivals(): Arrival[] {
    const rows = this.db.prepare("SELECT seq, offset_us, route, protocol, prompt_tokens, output_tokens, request_bytes, model FROM requests WHERE protocol != 'websocket' ORDER BY offset_us, seq").all() as Array<{
      seq: number; offset_us: number; route: string; protocol: string; prompt_tokens: number | null; output_tokens: number | null; request_bytes: number; model: string | null;
    }>;
    return rows.map((r) => ({
      seq: r.seq, atUs: r.offset_us, clone: 0, fingerprintSalt: null, drift: [], anomaly: null, route: r.route, protocol: r.protocol,
      promptTokens: r.prompt_tokens, outputTokens: r.output_tokens, requestBytes: r.request_bytes, model: r.model,
    }));
  }

  /** True when some request recorded images (the `images` or an image `parts` entry in its features). */
  hasImages(): boolean {
    const r = this.db.prepare("SELECT 1 FROM requests WHERE features IS NOT NULL AND (instr(features, CAST('images' AS BLOB)) > 0 OR instr(features, CAST('image' AS BLOB)) > 0) LIMIT 1").get();
    return r !== undefined;
  }

  /** How many recorded exchanges are WebSocket sessions (protocol `websocket`), which replay does not send. */
  webSocketSessions(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM requests WHERE protocol = 'websocket'").get() as { n: number }).n;
  }

  /** Distinct protocols in the trace. */
  protocols(): string[] {
    return (this.db.prepare('SELECT DISTINCT protocol FROM requests').raw().all() as Array<[string]>).map((r) => r[0]);
  }

  /**
   * One request by sequence number (a point lookup; cached for the last few so clones do not re-read).
   * @throws TracewarpError `TW_TRACE_CORRUPT` when it is missing or cannot be decoded.
   */
  get(seq: number): TraceRecord {
    const hit = this.cache.get(seq);
    if (hit) return hit;
    this.getStmt ??= this.db.prepare('SELECT * FROM requests WHERE seq = ?');
    const row = this.getStmt.get(seq) as RequestRow | undefined;
    if (!row) throw new TracewarpError('TW_TRACE_CORRUPT', `${this.path}: no request ${seq}`);
    const r = this.decode(row);
    if (this.cache.size > 1024) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(seq, r);
    return r;
  }

  /**
   * Streams the requests in order of arrival offset (ties by sequence number), one row decoded at a time.
   * @throws TracewarpError `TW_TRACE_CORRUPT` when a row cannot be decoded.
   */
  *records(): Generator<TraceRecord> {
    const stmt = this.db.prepare('SELECT * FROM requests ORDER BY offset_us, seq');
    for (const row of stmt.iterate() as IterableIterator<RequestRow>) {
      yield this.decode(row);
    }
  }

  private decode(row: RequestRow): TraceRecord {
    const shape = this.shapes.get(row.shape_id);
    if (!shape) throw new TracewarpError('TW_TRACE_CORRUPT', `${this.path}: request ${row.seq} refers to missing shape ${row.shape_id}`);
    try {
      return {
        seq: row.seq,
        offsetUs: row.offset_us,
        method: row.method,
        route: row.route,
        protocol: row.protocol as ProtocolId,
        status: row.status,
        errorKind: row.error_kind as ErrorKind | null,
        requestBytes: row.request_bytes,
        responseBytes: row.response_bytes,
        ttfbUs: row.ttfb_us,
        ttftUs: row.ttft_us,
        latencyUs: row.latency_us,
        streamed: row.streamed === 1,
        eventCount: row.event_count,
        eventOffsetsUs: row.event_offsets ? decodeEventOffsets(row.event_offsets) : null,
        promptTokens: row.prompt_tokens,
        outputTokens: row.output_tokens,
        messageCount: row.message_count,
        model: row.model,
        maxTokens: row.max_tokens,
        shape,
        params: row.params ? decodeBlob<Params>(row.params) : {},
        features: row.features ? decodeBlob<Features>(row.features) : {},
      };
    } catch (err) {
      throw new TracewarpError('TW_TRACE_CORRUPT', `${this.path}: request ${row.seq} cannot be decoded: ${(err as Error).message}`, { cause: err });
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
