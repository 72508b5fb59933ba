import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { TraceRecord } from '../types.ts';
import type { TraceWriter, TraceWriterOptions } from './writer.ts';

/**
 * Writes records that could not reach their trace (its file locked or its disk full until the end) into a trace of
 * their own: `<trace>.rescue-<time>.trace.db` beside it, else the same name in the system's temporary folder. The
 * rescue trace has the original's anchor and anonymization, and says in `meta.rescued_from` which trace it belongs to.
 * @returns the rescue trace's path, or null when neither place could be written.
 */
export function rescueRecords(path: string, opts: TraceWriterOptions, records: readonly TraceRecord[], make: (path: string, opts: TraceWriterOptions) => TraceWriter): string | null {
  const name = `${basename(path).replace(/\.trace\.db$|\.db$/, '')}.rescue-${new Date().toISOString().replace(/[:.]/g, '-')}.trace.db`;
  for (const candidate of [`${path.replace(/\.trace\.db$|\.db$/, '')}.rescue-${name.split('.rescue-')[1]}`, join(tmpdir(), name)]) {
    try {
      const w = make(candidate, { ...opts, overwrite: false, flushIntervalMs: undefined, busyTimeoutMs: 1000, onHealth: undefined, maxQueued: records.length + 1 });
      for (const r of records) w.add(r);
      w.flush(true);
      if (w.stats.queued > 0) throw new Error('not writable');
      w.setMeta('rescued_from', basename(path));
      if (!w.close().whole) throw new Error('not closed whole');
      return candidate;
    } catch {
      // try the next place
    }
  }
  return null;
}
