import { randomUUID } from 'node:crypto';
import { basename } from 'node:path';
import { summarize, type RunSummary } from '../metrics/summary.ts';
import { ReplayEngine } from '../replay/engine.ts';
import { formatSummary } from '../report/text.ts';
import { RunWriter } from '../results/run-file.ts';
import type { RequestResult } from '../results/types.ts';
import { createRng } from '../rng.ts';
import { synthesizeArrivals } from '../synth/plan.ts';
import { TraceReader } from '../trace/reader.ts';
import type { TraceRecord } from '../types.ts';
import { TOOL_VERSION } from '../version.ts';
import { timeWarp } from '../workload/warp.ts';
import { type Output, onceInterrupted } from './output.ts';
import { showReplayProgress } from './progress.ts';

/** Options of `tracewarp replay`. */
export interface ReplayCommandOptions {
  target: string;
  speed: number;
  seed: number;
  out?: string;
  force?: boolean;
  maxInFlight?: number;
  capPolicy?: 'queue' | 'drop';
  json?: boolean;
  /** Replace the `model` of every request. */
  model?: string;
  /** Replay only the first N requests. */
  limit?: number;
  quiet?: boolean;
  /** Headers added to every request (`--header 'Name: value'`, e.g. credentials for the target). */
  headers?: Record<string, string>;
  /** Connections to open with `GET /` before the first send. Default 8; 0 for none. */
  warmup?: number;
}

function* limited(records: Iterable<TraceRecord>, limit: number | undefined, model: string | undefined): Generator<TraceRecord> {
  let n = 0;
  for (const r of records) {
    if (limit !== undefined && n++ >= limit) return;
    if (model !== undefined && 'model' in r.params) yield { ...r, params: { ...r.params, model }, model };
    else yield r;
  }
}

/**
 * Replays a trace against a target and writes the run file. Prints the summary (text, or one JSON object with
 * `json`). Ctrl-C stops sending; requests in flight finish and everything is still written.
 * @returns the summary and the run file's path.
 */
export async function runReplay(tracePath: string, opts: ReplayCommandOptions, out: Output): Promise<{ summary: RunSummary; runPath: string; interrupted: boolean }> {
  const reader = new TraceReader(tracePath);
  const total = opts.limit !== undefined ? Math.min(opts.limit, reader.count()) : reader.count();
  const runId = randomUUID();
  const runPath = opts.out ?? `runs/${basename(tracePath).replace(/\.trace\.db$|\.db$/, '')}-${new Date().toISOString().replace(/[:.]/g, '-')}.run.db`;
  const engine = new ReplayEngine({ target: opts.target, maxInFlight: opts.maxInFlight, capPolicy: opts.capPolicy, headers: opts.headers, warmupConnections: opts.warmup });
  const writer = new RunWriter(runPath, {
    runId, tracePath, target: opts.target, speed: opts.speed, seed: String(opts.seed), maxInFlight: opts.maxInFlight ?? null,
    capPolicy: opts.capPolicy ?? 'queue', startWallUs: 0, toolVersion: TOOL_VERSION,
  }, opts.force);
  const results: RequestResult[] = [];
  const stopProgress = showReplayProgress(engine, out, total, Boolean(opts.quiet || opts.json));
  const interrupted = onceInterrupted();
  let wasInterrupted = false;
  void interrupted.promise.then(() => {
    wasInterrupted = true;
    out.err('replay: interrupted, waiting for requests in flight…');
    engine.stop();
  });
  const rng = createRng(opts.seed);
  let start: { startWallMs: number };
  try {
    const arrivals = timeWarp(limited(reader.records(), opts.limit, opts.model), opts.speed);
    start = await engine.run(synthesizeArrivals(arrivals, rng), (r) => {
      results.push(r);
      writer.add(r);
    }, total);
  } finally {
    interrupted.dispose();
    stopProgress();
    reader.close();
    await engine.close();
  }
  results.sort((a, b) => a.index - b.index);
  const summary = summarize(results);
  writer.setMeta('startWallUs', Math.round(start.startWallMs * 1000));
  writer.setMeta('summary', summary);
  writer.setMeta('interrupted', wasInterrupted);
  writer.setMeta('plannedRequests', total);
  writer.close();
  if (opts.json) out.out(JSON.stringify({ ...summary, runFile: runPath, runId, speed: opts.speed, seed: opts.seed, target: opts.target, interrupted: wasInterrupted }));
  else {
    out.out(formatSummary(summary, `replay of ${tracePath} at ${opts.speed}× against ${opts.target} (seed ${opts.seed}) → ${runPath}`));
    if (wasInterrupted) out.out(`INTERRUPTED: ${summary.requests} of ${total} planned requests were scheduled; the summary covers those only`);
  }
  return { summary, runPath, interrupted: wasInterrupted };
}
