import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Database } from 'better-sqlite3';
import { TracewarpError } from './errors.ts';

/**
 * Makes room for a new SQLite file (trace or run file): refuses a directory, refuses an existing file unless
 * `overwrite` (then removes it and its journal files), creates missing parent folders.
 * @throws TracewarpError `TW_USAGE` for a directory, or an existing file without `overwrite`.
 */
export function prepareNewFile(path: string, overwrite: boolean): void {
  if (existsSync(path)) {
    if (!statSync(path).isFile()) throw new TracewarpError('TW_USAGE', `${path} is a directory, not a file to write`);
    if (!overwrite) throw new TracewarpError('TW_USAGE', `${path} already exists (pass --force to overwrite it)`);
    for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true });
  }
  mkdirSync(dirname(path), { recursive: true });
}

/** Checkpoints the WAL and closes, leaving one self-contained file (journal mode DELETE) to share. */
export function closeAsSingleFile(db: Database): void {
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.pragma('journal_mode = DELETE');
  db.close();
}
