import { basename } from 'node:path';
import { DEFAULT_POLICY } from '../anonymize/policy.ts';
import { existsSync, rmSync, statSync } from 'node:fs';
import { TracewarpError, usageError } from '../errors.ts';
import { readAzureLlm } from '../importers/azure-llm.ts';
import { emptyStats, tally, type ImportOptions, type ImportStats } from '../importers/common.ts';
import { MOONCAKE_BLOCK_TOKENS, readMooncake } from '../importers/mooncake.ts';
import { BAILIAN_BLOCK_TOKENS, readBailian } from '../importers/bailian.ts';
import { ImportSessions } from '../importers/jsonl.ts';
import { TraceWriter } from '../trace/writer.ts';
import type { TraceRecord } from '../types.ts';
import { IMPORT_FORMATS } from './defaults.ts';
import type { Output } from './output.ts';

export { IMPORT_FORMATS } from './defaults.ts';

type Imported = TraceRecord & { anchorWallUs?: number; sessionIds?: { own: string; parent: string | null } };

function sourceOf(format: string, file: string, opts: ImportOptions & { blockTokens?: number }): AsyncIterable<Imported> {
  if (format === 'azure-llm') return readAzureLlm(file, opts);
  if (format === 'bailian') return readBailian(file, { ...opts, blockTokens: opts.blockTokens ?? BAILIAN_BLOCK_TOKENS });
  return readMooncake(file, { ...opts, blockTokens: opts.blockTokens ?? MOONCAKE_BLOCK_TOKENS });
}

/** Imports a public trace into a new trace file. A failed import leaves no partial file behind. */
export async function runImport(format: string, file: string, opts: ImportOptions & { out: string; force?: boolean; blockTokens?: number }, out: Output): Promise<ImportStats> {
  if (!(IMPORT_FORMATS as readonly string[]).includes(format)) usageError(`unknown import format '${format}' (known: ${IMPORT_FORMATS.join(', ')})`);
  if (!existsSync(file)) throw new TracewarpError('TW_IMPORT_FORMAT', `${file}: no such file`);
  if (!statSync(file).isFile()) throw new TracewarpError('TW_IMPORT_FORMAT', `${file}: is a directory, not a trace to import`);
  let writer: TraceWriter | null = null;
  const stats = emptyStats();
  const open = (anchorWallUs: number): TraceWriter => new TraceWriter(opts.out, {
    source: `import:${format}`, sourceFile: basename(file), anchorWallUs, anonymization: DEFAULT_POLICY.describe(), overwrite: opts.force,
  });
  try {
    const source = sourceOf(format, file, opts);
    const sessions = format === 'azure-llm' ? null : new ImportSessions((seq, link) => writer?.linkSessionRoot(seq, link));
    for await (const rec of source) {
      const { anchorWallUs, sessionIds, ...r } = rec;
      writer ??= open(anchorWallUs ?? 0);
      sessions?.link(r, sessionIds);
      writer.add(r);
      tally(stats, r);
    }
    writer ??= open(0);
    writer.close();
  } catch (err) {
    if (writer) {
      writer.close();
      rmSync(opts.out, { force: true });
    }
    throw err;
  }
  const inSessions = stats.sessions > 0 ? `, ${stats.sessions} multi-turn sessions (${stats.followUps} follow-up turns)` : '';
  out.out(`imported ${stats.requests} requests from ${file} (${format}) → ${opts.out}: span ${((stats.lastOffsetUs - stats.firstOffsetUs) / 1e6).toFixed(1)} s, ${stats.promptTokens} prompt tokens, ${stats.outputTokens} output tokens${inSessions}`);
  return stats;
}
