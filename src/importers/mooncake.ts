import type { TraceRecord } from '../types.ts';
import { importedChatRecord, type ImportOptions } from './common.ts';
import { count, intList, readJsonl } from './jsonl.ts';

/** Tokens per `hash_ids` block in Mooncake traces (kvcache-ai/Mooncake FAST'25 trace README). Other publishers use 16 or 64. */
export const MOONCAKE_BLOCK_TOKENS = 512;

/**
 * Reads a Mooncake JSONL trace (one object a line: `timestamp` in ms since the trace start, `input_length`,
 * `output_length`, `hash_ids`) as chat-completion records. Offsets are the source timestamps in µs; `hash_ids` become
 * prefix blocks of `blockTokens` tokens each so replays share prompt prefixes as the source did (and sessions are
 * inferred from them by the importer: `sessions/infer.ts` rule 3).
 * @throws TracewarpError `TW_IMPORT_FORMAT` naming the file and line of the first bad row.
 */
export function readMooncake(path: string, opts: ImportOptions & { blockTokens?: number } = {}): AsyncGenerator<TraceRecord> {
  const blockTokens = opts.blockTokens ?? MOONCAKE_BLOCK_TOKENS;
  let seq = 0;
  let last = -Infinity;
  return readJsonl(path, 'Mooncake JSONL', 'JSON with timestamp, input_length, output_length, hash_ids', (row) => {
    const timestamp = row.value.timestamp;
    if (typeof timestamp !== 'number' || !Number.isFinite(timestamp) || timestamp < 0) throw row.bad('timestamp must be a non-negative number of ms');
    const input = count(row, 'input_length');
    const output = count(row, 'output_length');
    const ids = intList(row, 'hash_ids');
    if (timestamp < last) throw row.bad('lines are not sorted by timestamp');
    last = timestamp;
    const features = ids && ids.length > 0 ? { prefixBlocks: ids, prefixBlockTokens: blockTokens } : {};
    return importedChatRecord(++seq, Math.round(timestamp * 1000), input, output, opts, features);
  });
}
