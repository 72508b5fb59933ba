/**
 * Stable error codes. Every error tracewarp throws on purpose is a {@link TracewarpError} with one of these codes,
 * so scripts can match on `err.code` rather than on message text.
 */
export type ErrorCode =
  | 'TW_USAGE' // CLI misuse: unknown flag, bad value (exit code 2)
  | 'TW_TRACE_NOT_FOUND' // the trace file does not exist
  | 'TW_TRACE_NOT_SQLITE' // the file is not an SQLite database at all
  | 'TW_TRACE_FOREIGN' // an SQLite database, but not a tracewarp trace
  | 'TW_TRACE_VERSION' // a tracewarp trace of a format version this build cannot read
  | 'TW_TRACE_CORRUPT' // truncated or damaged (fails PRAGMA quick_check or a read)
  | 'TW_RUN_INVALID' // a run file that cannot be read as one
  | 'TW_RUN_WRITE' // the run file could not be written (the replay's summary is still printed)
  | 'TW_REPORT_WRITE' // a report file (`report --out`) could not be written
  | 'TW_IMPORT_FORMAT' // an import source that does not follow its format
  | 'TW_LISTEN' // cannot listen on the requested address
  | 'TW_TARGET' // the replay target URL is unusable
  | 'TW_SCRAPE'; // a target's metrics endpoint answered something that is not (bounded) Prometheus text

/**
 * An expected failure with a stable {@link ErrorCode}; `exitCode` is what the CLI exits with: 2 for usage, 3 for any
 * other failure (1 is kept for an objective missed: `--slo`, and `demo`'s own check).
 */
export class TracewarpError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TracewarpError';
    this.code = code;
    this.exitCode = code === 'TW_USAGE' ? 2 : 3;
  }
}

/** A plain copy of an error that can cross a thread boundary (worker `postMessage`). */
export interface ErrorMessage {
  message: string;
  code: ErrorCode | null;
  stack?: string;
}

/** The transferable form of any thrown value. */
export function toErrorMessage(err: unknown): ErrorMessage {
  const e = err as Error;
  return { message: e?.message ?? String(err), code: err instanceof TracewarpError ? err.code : null, stack: e?.stack };
}

/** The error again on this side: a {@link TracewarpError} with its code when it was one; `where` prefixes other messages. */
export function fromErrorMessage(m: ErrorMessage, where: string): Error {
  if (m.code) return new TracewarpError(m.code, m.message);
  const err = new Error(`${where}: ${m.message}`);
  if (m.stack) err.stack = `${err.message}\n(in the thread) ${m.stack}`;
  return err;
}

/** Throws a `TW_USAGE` error (CLI exit code 2). */
export function usageError(message: string): never {
  throw new TracewarpError('TW_USAGE', message);
}
