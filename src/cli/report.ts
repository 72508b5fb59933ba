import { parseSlo } from '../metrics/slo.ts';
import { summarize, type RunSummary } from '../metrics/summary.ts';
import { formatSummary } from '../report/text.ts';
import { readRunFile } from '../results/run-file.ts';
import type { Output } from './output.ts';

/** `tracewarp report RUN`: recomputes the summary from the run file's per-request results. */
export function runReport(path: string, opts: { json?: boolean; slo?: string }, out: Output): number {
  const { meta, results } = readRunFile(path);
  const sloText = opts.slo ?? (typeof meta.slo === 'string' ? meta.slo : undefined);
  const s = summarize(results, sloText ? parseSlo(sloText) : undefined);
  // How far the replayer itself shaped the run was judged while it ran (from its loops' own measurements).
  if (meta.replayerHealth) s.replayerHealth = meta.replayerHealth as RunSummary['replayerHealth'];
  const workload = typeof meta.workload === 'string' ? meta.workload : `--speed ${meta.speed}`;
  if (opts.json) out.out(JSON.stringify({ ...s, ...(typeof meta.plannedRequests === 'number' ? { plannedRequests: meta.plannedRequests } : {}), workload, outputLength: typeof meta.outputLength === 'string' ? meta.outputLength : 'recorded', runFile: path, runId: meta.runId, target: meta.target, speed: meta.speed, seed: Number.isFinite(Number(meta.seed)) ? Number(meta.seed) : meta.seed, interrupted: meta.interrupted === true, ...(meta.digest && !meta.interrupted ? { digest: (meta.digest as { digest: string }).digest, scheduleDigest: (meta.digest as { schedule: string }).schedule } : {}) }));
  else out.out(formatSummary(s, `run ${meta.runId}: ${meta.tracePath} (${workload}) against ${meta.target}, output length ${typeof meta.outputLength === 'string' ? meta.outputLength : 'recorded'}`));
  return s.sloMet === false ? 1 : 0;
}
