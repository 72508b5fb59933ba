import { parseSlo } from '../metrics/slo.ts';
import { summarize, type RunSummary } from '../metrics/summary.ts';
import { jsonReporter, textReporter, type RunFacts } from '../report/run-report.ts';
import { readRunFile } from '../results/run-file.ts';
import type { Output } from './output.ts';

/**
 * `tracewarp report RUN`: recomputes the summary from the run file's per-request results and prints it as `replay`
 * did (the same reporters). @returns 1 when a run objective of the SLO was missed, else 0.
 */
export function runReport(path: string, opts: { json?: boolean; slo?: string }, out: Output): number {
  const { meta, results } = readRunFile(path);
  const sloText = opts.slo ?? (typeof meta.slo === 'string' ? meta.slo : undefined);
  const s = summarize(results, sloText ? parseSlo(sloText) : undefined);
  // How far the replayer itself shaped the run was judged while it ran (from its loops' own measurements).
  if (meta.replayerHealth) s.replayerHealth = meta.replayerHealth as RunSummary['replayerHealth'];
  const digest = meta.digest as { digest?: string; schedule?: string } | undefined;
  const facts: RunFacts = {
    tracePath: String(meta.tracePath), target: String(meta.target), runFile: path, runId: String(meta.runId), speed: Number(meta.speed),
    seed: Number.isFinite(Number(meta.seed)) ? Number(meta.seed) : String(meta.seed),
    workload: typeof meta.workload === 'string' ? meta.workload : `--speed ${meta.speed}`,
    outputLength: typeof meta.outputLength === 'string' ? meta.outputLength : 'recorded',
    interrupted: meta.interrupted === true,
    ...(typeof meta.plannedRequests === 'number' ? { plannedRequests: meta.plannedRequests } : {}),
    ...(digest?.digest && digest.schedule ? { digest: { digest: digest.digest, schedule: digest.schedule } } : {}),
  };
  out.out((opts.json ? jsonReporter : textReporter)({ summary: s, facts }));
  return s.sloMet === false ? 1 : 0;
}
