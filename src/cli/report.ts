import { writeFileSync } from 'node:fs';
import { TracewarpError, usageError } from '../errors.ts';
import { buildReport } from '../report/build.ts';
import { csvReporter, jsonReporter, textReporter, type Reporter } from '../report/run-report.ts';
import type { Output } from './output.ts';

/** The formats of `report --format`. */
export const REPORT_FORMATS = ['text', 'json', 'md', 'html', 'csv'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

async function reporterFor(format: ReportFormat): Promise<Reporter> {
  switch (format) {
    case 'text': return textReporter;
    case 'json': return jsonReporter;
    case 'csv': return csvReporter;
    case 'md': return (await import('../report/markdown.ts')).markdownReporter;
    case 'html': return (await import('../report/html.ts')).htmlReporter;
  }
}

/**
 * `tracewarp report RUN [RUN...]`: the report of one run file, or of several merged (shards, repeats), built from
 * the files (report/build.ts) and printed (or written to `out`) in `format`: text (default), json (`--json` is
 * `--format json`), md, html (one self-contained file) or csv (the per-second timeline).
 * @returns 1 when a run objective of the SLO was missed, else 0.
 * @throws TracewarpError `TW_USAGE` for an unknown format; `TW_RUN_INVALID` for a file that is not a run file;
 *   `TW_REPORT_WRITE` when `out` cannot be written.
 */
export async function runReport(paths: readonly string[], opts: { json?: boolean; slo?: string; format?: string; out?: string; warmupS?: number }, out: Output): Promise<number> {
  const format = (opts.format ?? (opts.json ? 'json' : 'text')) as ReportFormat;
  if (!(REPORT_FORMATS as readonly string[]).includes(format)) usageError(`--format: '${opts.format}' is not one of ${REPORT_FORMATS.join(', ')}`);
  if (opts.json && opts.format && opts.format !== 'json') usageError(`--json and --format ${opts.format} ask for two formats; give one`);
  const report = buildReport(paths, { slo: opts.slo, ...(opts.warmupS !== undefined ? { warmupUs: Math.round(opts.warmupS * 1e6) } : {}) });
  const text = (await reporterFor(format))(report);
  if (opts.out) {
    try {
      writeFileSync(opts.out, text.endsWith('\n') ? text : `${text}\n`);
    } catch (err) {
      throw new TracewarpError('TW_REPORT_WRITE', `${opts.out}: cannot write the report: ${(err as Error).message}`, { cause: err });
    }
    out.err(`report: wrote ${opts.out} (${format}${paths.length > 1 ? `, ${paths.length} run files merged` : ''})`);
  } else out.out(text);
  return report.summary.sloMet === false ? 1 : 0;
}
