import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { TracewarpError } from '../errors.ts';
import type { TraceRecord } from '../types.ts';
import { importedChatRecord, type ImportOptions } from './common.ts';

/** Tokens per `hash_ids` block in Mooncake traces (kvcache-ai/Mooncake FAST'25 trace README). Other publishers use 16 or 64. */
export const MOONCAKE_BLOCK_TOKENS = 512;

/**
 * Reads a Mooncake JSONL trace (one object a line: `timestamp` in ms since the trace start, `input_length`,
 * `output_length`, `hash_ids`) as chat-completion records. Offsets are the source timestamps in µs; `hash_ids` become
 * prefix blocks of `blockTokens` tokens each so replays share prompt prefixes as the source did.
 * @throws TracewarpError `TW_IMPORT_FORMAT` naming the file and line of the first bad row.
 */
export async function* readMooncake(path: string, opts: ImportOptions & { blockTokens?: number } = {}): AsyncGenerator<TraceRecord> {
  const blockTokens = opts.blockTokens ?? MOONCAKE_BLOCK_TOKENS;
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let lineNo = 0;
  let seq = 0;
  let last = -Infinity;
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      const bad = (what: string) => new TracewarpError('TW_IMPORT_FORMAT', `${path}:${lineNo}: ${what} (expected JSON with timestamp, input_length, output_length, hash_ids)`);
      let o: { timestamp?: unknown; input_length?: unknown; output_length?: unknown; hash_ids?: unknown };
      try {
        o = JSON.parse(line);
      } catch {
        throw bad('not valid JSON');
      }
      const { timestamp, input_length: input, output_length: output, hash_ids: ids } = o;
      if (typeof timestamp !== 'number' || !Number.isFinite(timestamp) || timestamp < 0) throw bad('timestamp must be a non-negative number of ms');
      if (!Number.isInteger(input) || (input as number) < 0 || !Number.isInteger(output) || (output as number) < 0) throw bad('input_length and output_length must be non-negative integers');
      if (ids !== undefined && (!Array.isArray(ids) || !ids.every((x) => Number.isInteger(x)))) throw bad('hash_ids must be an array of integers');
      if (timestamp < last) throw bad('lines are not sorted by timestamp');
      last = timestamp;
      const features = Array.isArray(ids) && ids.length > 0 ? { prefixBlocks: ids as number[], prefixBlockTokens: blockTokens } : {};
      yield importedChatRecord(++seq, Math.round(timestamp * 1000), input as number, output as number, opts, features);
    }
  } catch (err) {
    if (err instanceof TracewarpError) throw err;
    throw new TracewarpError('TW_IMPORT_FORMAT', `${path}: cannot read as Mooncake JSONL: ${(err as Error).message}`, { cause: err });
  }
}
