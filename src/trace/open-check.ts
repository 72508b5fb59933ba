import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import type { Database as Db } from 'better-sqlite3';
import { TracewarpError } from '../errors.ts';
import { FORMAT_NAME, FORMAT_VERSION, SESSIONS_SINCE_VERSION, type TraceMeta } from './schema.ts';
import { checkMeta, MAX_META_ROWS, MAX_META_VALUE_BYTES, MAX_SCALAR_CELL_BYTES, REQUEST_COLUMNS, SESSION_COLUMNS, show, TraceProblem } from './validate.ts';

// Opening a trace: is the file an SQLite database whole enough to read, and is it a trace this build reads.

const SQLITE_MAGIC = 'SQLite format 3\0';

/**
 * Checks an open trace file before anything is read from it: the pages (`PRAGMA quick_check`, unless another reader
 * of this run checked it already), the tables and columns, and every `meta` entry (each measured before it is read).
 * @returns the trace's meta.
 * @throws TracewarpError `TW_TRACE_FOREIGN`, `TW_TRACE_VERSION` or `TW_TRACE_CORRUPT` naming the file and the problem.
 */
export function checkTraceFile(db: Db, p: string, checked: boolean): TraceMeta {
  const check = checked ? 'ok' : db.pragma('quick_check', { simple: true });
  if (check !== 'ok') {
    // quick_check lists every damaged page (dozens of lines): the first problem and a count are enough.
    const lines = String(check).split('\n');
    const first = lines[0]!.slice(0, 200);
    throw new TracewarpError('TW_TRACE_CORRUPT', `${p}: damaged or truncated trace (PRAGMA quick_check: ${first}${lines.length > 1 ? ` and ${lines.length - 1} more problems` : ''})`);
  }
  const tables = new Set(
    (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name),
  );
  if (!tables.has('meta')) throw new TracewarpError('TW_TRACE_FOREIGN', `${p}: an SQLite database but not a tracewarp trace (no meta table)`);
  // Keys and values are measured before they are read: a hostile meta must not be loaded whole.
  const rows = db.prepare(`SELECT iif(octet_length(key) > ${MAX_SCALAR_CELL_BYTES * 4}, NULL, key) AS key, octet_length(key) AS key_len,
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
  const columns = (table: string) => new Set(db.prepare(`SELECT name FROM pragma_table_info('${table}')`).pluck().all() as string[]);
  const have = columns('requests');
  const missing = REQUEST_COLUMNS.map(([c]) => c).filter((c) => !have.has(c) && (version >= SESSIONS_SINCE_VERSION || !SESSION_COLUMNS.has(c)));
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

/**
 * Checks a file's SQLite header before it is opened: present, a file, an SQLite database, not shorter than its header
 * says (unless a WAL beside it holds the rest).
 * @throws TracewarpError `TW_TRACE_NOT_FOUND`, `TW_TRACE_NOT_SQLITE` or `TW_TRACE_CORRUPT`.
 */
export function checkHeader(path: string): void {
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
