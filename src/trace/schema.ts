import type { WriterHealth } from './write-health.ts';

/**
 * The trace file format, version 1: one SQLite file.
 *
 * - `meta(key TEXT PRIMARY KEY, value TEXT)`: JSON-encoded values. Keys: `format` (always `"tracewarp-trace"`),
 *   `format_version`, `created_at` (ISO 8601), `anchor_wall_us` (wall-clock µs since the Unix epoch at offset 0),
 *   `source` (`capture` or `import:<format>`), `source_file` (base name, imports only), `tool_version`,
 *   `anonymization` (the policy in force), `records_dropped` (exchanges forwarded but not recorded: the recorder's
 *   queue was full, or the file could not be written), `recording_health` (capture: `ok`, `writeFailures`, the first and
 *   last failure, `recordsDropped`, `fileRecreated`), `fingerprints` (scheme and key origin, never the key),
 *   `capture_raw` (false unless raw capture was asked for).
 * - `shapes(id, hash UNIQUE, shape BLOB)`: each distinct request shape once (msgpack of {@link RequestShape}).
 * - `requests`: one row per exchange, scalar fields as columns (queryable with plain `sqlite3`), msgpack blobs for
 *   `params`, `features` and `event_offsets` (delta-encoded µs).
 *
 * This module owns the schema and {@link FORMAT_VERSION}; everything else reads and writes through `reader.ts` and
 * `writer.ts`.
 */

/** The value of `meta.format` in every trace file. */
export const FORMAT_NAME = 'tracewarp-trace';
/**
 * The trace format version this build writes; it reads this version and older ones. The tables are the same in both:
 * the version says which anonymization rules wrote the trace (`meta.anonymization.rules`).
 * - 1: kept JSON keys, path segments, model ids, header names and query keys that read like names (a heuristic).
 * - 2: keeps only what a protocol enumerates; other keys, segments, model-id parts and names are keyed tokens
 *   (`{k:…}`, `{seg:…}`, `{model:…}`, `{h:…}`, `{q:…}`, `{f:…}`), booleans outside protocol flags their type only.
 * - 3: adds the session columns of {@link SESSION_COLUMNS_DDL} (`session`, `turn`, `parent_seq`, `think_us`); versions
 *   1 and 2 read with them all null (every request on its own).
 */
export const FORMAT_VERSION = 3;

/** The first format version whose `requests` table has the session columns. */
export const SESSIONS_SINCE_VERSION = 3;

/**
 * The session columns (format 3), added to {@link SCHEMA_V1}'s `requests` table:
 * - `session`: the session's number in this trace (1-based, in order of its first request), never a key or an id the
 *   client sent; null for a request on its own;
 * - `turn`: 0-based position in its session, by arrival;
 * - `parent_seq`: the request this one followed (whose answer it continued), null for a session's first turn;
 * - `think_us`: this request's arrival minus the end of the parent's answer, µs (negative when it was sent before that
 *   answer ended), null without a parent.
 */
export const SESSION_COLUMNS_DDL = `
ALTER TABLE requests ADD COLUMN session INTEGER;
ALTER TABLE requests ADD COLUMN turn INTEGER;
ALTER TABLE requests ADD COLUMN parent_seq INTEGER;
ALTER TABLE requests ADD COLUMN think_us INTEGER;
CREATE INDEX requests_by_session ON requests(session, turn) WHERE session IS NOT NULL;
`;

/** DDL of format versions 1 and 2 (format 3 adds {@link SESSION_COLUMNS_DDL}). */
export const SCHEMA_V1 = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE shapes (
  id    INTEGER PRIMARY KEY,
  hash  TEXT NOT NULL UNIQUE,
  shape BLOB NOT NULL
);
CREATE TABLE requests (
  seq            INTEGER PRIMARY KEY,
  offset_us      INTEGER NOT NULL,
  method         TEXT    NOT NULL,
  route          TEXT    NOT NULL,
  protocol       TEXT    NOT NULL,
  status         INTEGER,
  error_kind     TEXT,
  request_bytes  INTEGER NOT NULL,
  response_bytes INTEGER,
  ttfb_us        INTEGER,
  ttft_us        INTEGER,
  latency_us     INTEGER,
  streamed       INTEGER NOT NULL,
  event_count    INTEGER,
  prompt_tokens  INTEGER,
  output_tokens  INTEGER,
  message_count  INTEGER,
  model          TEXT,
  max_tokens     INTEGER,
  shape_id       INTEGER NOT NULL REFERENCES shapes(id),
  params         BLOB,
  features       BLOB,
  event_offsets  BLOB
);
CREATE INDEX requests_by_offset ON requests(offset_us, seq);
`;

/** Metadata of a trace as the reader returns it. */
export interface TraceMeta {
  format: string;
  formatVersion: number;
  createdAt: string;
  /** Wall-clock µs since the Unix epoch at offset 0. */
  anchorWallUs: number;
  /** `capture` or `import:<format>`. */
  source: string;
  sourceFile?: string;
  toolVersion: string;
  anonymization: unknown;
  recordsDropped: number;
  captureRaw: boolean;
  /** How writing the trace went while recording (`meta.recording_health`); null for traces without it (imports, 0.1). */
  recordingHealth: WriterHealth | null;
}
