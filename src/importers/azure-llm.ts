import { createReadStream } from 'node:fs';
import { parse } from 'csv-parse';
import { TracewarpError } from '../errors.ts';
import type { TraceRecord } from '../types.ts';
import { importedChatRecord, type ImportOptions } from './common.ts';

/**
 * Parses an Azure trace timestamp `YYYY-MM-DD HH:MM:SS.fffffff` (7 fractional digits = 100 ns ticks, no time zone;
 * read as UTC) into integer µs since the Unix epoch. Source: the AzurePublicDataset README for
 * `AzureLLMInferenceTrace_*.csv`.
 * @returns null when the text is not such a timestamp.
 */
export function parseAzureTimestampUs(text: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$/.exec(text.trim());
  if (!m) return null;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  if (Number.isNaN(ms)) return null;
  const frac = (m[7] ?? '').padEnd(7, '0');
  return ms * 1000 + Math.floor(Number(frac) / 10);
}

/**
 * Reads an Azure LLM inference trace CSV (`TIMESTAMP,ContextTokens,GeneratedTokens`, e.g.
 * `AzureLLMInferenceTrace_conv.csv`, CC-BY 4.0, Microsoft Azure Public Dataset) as chat-completion records, in file
 * order. Offsets are µs after the first row's timestamp. Streams the file.
 * @throws TracewarpError `TW_IMPORT_FORMAT` naming the file and line of the first bad row.
 */
export async function* readAzureLlm(path: string, opts: ImportOptions = {}): AsyncGenerator<TraceRecord & { anchorWallUs: number }> {
  const parser = createReadStream(path).pipe(parse({ columns: true, skip_empty_lines: true, trim: true }));
  let first: number | null = null;
  let seq = 0;
  try {
    for await (const row of parser as AsyncIterable<Record<string, string>>) {
      const line = seq + 2;
      const bad = (what: string) => new TracewarpError('TW_IMPORT_FORMAT', `${path}:${line}: ${what} (expected columns TIMESTAMP,ContextTokens,GeneratedTokens)`);
      if (!('TIMESTAMP' in row) || !('ContextTokens' in row) || !('GeneratedTokens' in row)) throw bad(`missing column; header has ${Object.keys(row).join(',')}`);
      const ts = parseAzureTimestampUs(row.TIMESTAMP!);
      if (ts === null) throw bad(`TIMESTAMP '${row.TIMESTAMP}' is not 'YYYY-MM-DD HH:MM:SS.fffffff'`);
      const prompt = Number(row.ContextTokens);
      const output = Number(row.GeneratedTokens);
      if (!Number.isInteger(prompt) || prompt < 0 || !Number.isInteger(output) || output < 0) throw bad('token counts must be non-negative integers');
      if (first === null) first = ts;
      if (ts < first) throw bad('rows are not sorted by TIMESTAMP');
      yield Object.assign(importedChatRecord(++seq, ts - first, prompt, output, opts), { anchorWallUs: first });
    }
  } catch (err) {
    if (err instanceof TracewarpError) throw err;
    throw new TracewarpError('TW_IMPORT_FORMAT', `${path}: not a readable Azure LLM trace CSV: ${(err as Error).message}`, { cause: err });
  }
}
