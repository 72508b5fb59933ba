import { basename } from 'node:path';
import { DEFAULT_POLICY } from '../anonymize/policy.ts';
import { existsSync, rmSync, statSync } from 'node:fs';
import { TracewarpError, usageError } from '../errors.ts';
import { readAzureLlm } from '../importers/azure-llm.ts';
import { emptyStats, tally, type ImportOptions, type ImportStats } from '../importers/common.ts';
import { MOONCAKE_BLOCK_TOKENS, readMooncake } from '../importers/mooncake.ts';
import { TraceWriter } from '../trace/writer.ts';
import type { TraceRecord } from '../types.ts';
import { IMPORT_FORMATS } from './defaults.ts';
import type { Output } from './output.ts';

export { IMPORT_FORMATS } from './defaults.ts';

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
    const source: AsyncIterable<TraceRecord & { anchorWallUs?: number }> = format === 'azure-llm'
      ? readAzureLlm(file, opts)
      : readMooncake(file, { ...opts, blockTokens: opts.blockTokens ?? MOONCAKE_BLOCK_TOKENS });
    for await (const rec of source) {
      const { anchorWallUs, ...r } = rec;
      writer ??= open(anchorWallUs ?? 0);
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
  out.out(`imported ${stats.requests} requests from ${file} (${format}) → ${opts.out}: span ${((stats.lastOffsetUs - stats.firstOffsetUs) / 1e6).toFixed(1)} s, ${stats.promptTokens} prompt tokens, ${stats.outputTokens} output tokens`);
  return stats;
}
