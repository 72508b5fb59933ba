import { randomUUID } from 'node:crypto';
import { basename } from 'node:path';
import { TracewarpError } from '../errors.ts';
import { parseSlo } from '../metrics/slo.ts';
import { summarize, type RunSummary } from '../metrics/summary.ts';
import { ReplayEngine } from '../replay/engine.ts';
import { formatSummary } from '../report/text.ts';
import { RunWriter } from '../results/run-file.ts';
import type { RequestResult } from '../results/types.ts';
import { createRng } from '../rng.ts';
import { synthesizeWorkload, WorkloadDigest } from '../synth/workload.ts';
import { TraceReader } from '../trace/reader.ts';
import type { TraceRecord } from '../types.ts';
import { TOOL_VERSION } from '../version.ts';
import { buildWorkload } from './plan.ts';
import { WORKLOAD_FLAGS } from './workload.ts';
import { type Output, onceInterrupted } from './output.ts';
import { showReplayProgress } from './progress.ts';

/** Options of `tracewarp replay`. */
export interface ReplayCommandOptions {
  target: string;
  /** Time-warp factor, used when `argv` is not given. */
  speed: number;
  /**
   * The command line, read again for the transformation flags in their order (`--speed`, `--amplify`, `--drift`, …).
   * Default: just `--speed <speed>`.
   */
  argv?: readonly string[];
  /** YAML scenario file of transformation steps (applied before the flags). */
  scenario?: string;
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
  /** Goodput objectives, e.g. `ttft<500ms,tpot<50ms,e2e<10s`. */
  slo?: string;
  /** Also send `min_tokens` and `ignore_eos` so LLM servers generate exactly the recorded output length. */
  forceOutputLength?: boolean;
}

/** Replaces the model of a record (`replay --model`). */
function withModel(r: TraceRecord, model: string | undefined): TraceRecord {
  return model !== undefined && 'model' in r.params ? { ...r, params: { ...r.params, model }, model } : r;
}

/**
 * Replays a trace against a target and writes the run file. Prints the summary (text, or one JSON object with
 * `json`). Ctrl-C stops sending; requests in flight finish and everything is still written.
 * @returns the summary and the run file's path.
 */
export async function runReplay(tracePath: string, opts: ReplayCommandOptions, out: Output): Promise<{ summary: RunSummary; runPath: string; interrupted: boolean }> {
  const slo = opts.slo !== undefined ? parseSlo(opts.slo) : undefined;
  const reader = new TraceReader(tracePath);
  let arrivals;
  let webSocketSessions = 0;
  try {
    ({ after: arrivals, webSocketSessions } = buildWorkload(reader, opts.argv ?? ['--speed', String(opts.speed)], opts.seed, opts.scenario));
  } catch (err) {
    reader.close();
    throw err;
  }
  if (opts.limit !== undefined) arrivals = arrivals.slice(0, opts.limit);
  if (arrivals.length === 0) {
    reader.close();
    throw new TracewarpError('TW_USAGE', webSocketSessions > 0
      ? `the workload is empty: the trace holds only WebSocket sessions (${webSocketSessions}), and replay sends HTTP requests only`
      : `the workload is empty: the trace has no requests, or the transformations selected none (see 'tracewarp plan')`);
  }
  if (webSocketSessions > 0) out.err(`note: ${webSocketSessions} WebSocket session(s) in the trace are left out: replay sends HTTP requests only`);
  const total = arrivals.length;
  const firstRoute = arrivals[0]?.route;
  const runId = randomUUID();
  const runPath = opts.out ?? `runs/${basename(tracePath).replace(/\.trace\.db$|\.db$/, '')}-${new Date().toISOString().replace(/[:.]/g, '-')}.run.db`;
  const engine = new ReplayEngine({ target: opts.target, maxInFlight: opts.maxInFlight, capPolicy: opts.capPolicy, headers: opts.headers, warmupConnections: opts.warmup, runId });
  const writer = new RunWriter(runPath, {
    runId, tracePath, target: opts.target, speed: opts.speed, seed: String(opts.seed), maxInFlight: opts.maxInFlight ?? null,
    capPolicy: opts.capPolicy ?? 'queue', startWallUs: 0, toolVersion: TOOL_VERSION,
  }, opts.force);
  const results: RequestResult[] = [];
  // Progress goes to stderr, so it stays on with --json (stdout carries only the JSON object).
  const stopProgress = showReplayProgress(engine, out, total, Boolean(opts.quiet));
  let interrupted = onceInterrupted();
  let wasInterrupted = false;
  void interrupted.promise.then(() => {
    wasInterrupted = true;
    out.err('replay: interrupted, waiting for requests in flight… (Ctrl-C again to cut them)');
    engine.stop();
    // A second Ctrl-C cuts the requests in flight (recorded as client_aborted); the run file is still written.
    interrupted = onceInterrupted();
    void interrupted.promise.then(() => {
      out.err('replay: cutting the requests in flight…');
      engine.abortInFlight();
    });
  });
  const rng = createRng(opts.seed);
  const digest = new WorkloadDigest();
  let start: { startWallMs: number };
  try {
    const planned = synthesizeWorkload(arrivals, (seq) => withModel(reader.get(seq), opts.model), rng, digest, { forceOutputLength: opts.forceOutputLength });
    start = await engine.run(planned, (r) => {
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
  const summary = summarize(results, slo);
  writer.setMeta('startWallUs', Math.round(start.startWallMs * 1000));
  writer.setMeta('summary', summary);
  writer.setMeta('interrupted', wasInterrupted);
  if (slo) writer.setMeta('slo', slo.text);
  const d = digest.result();
  writer.setMeta('digest', d);
  writer.setMeta('plannedRequests', total);
  const workload = describeSteps(opts);
  writer.setMeta('workload', workload);
  writer.close();
  // The digest covers the workload as planned only when every request was synthesized (not after Ctrl-C).
  const digestOut = wasInterrupted ? {} : { digest: d.digest, scheduleDigest: d.schedule };
  if (opts.json) out.out(JSON.stringify({ ...summary, plannedRequests: total, workload, runFile: runPath, runId, speed: opts.speed, seed: opts.seed, target: opts.target, interrupted: wasInterrupted, ...digestOut }));
  else {
    out.out(formatSummary(summary, `replay of ${tracePath} (${workload}) against ${opts.target} (seed ${opts.seed}) → ${runPath}`));
    if (!wasInterrupted) out.out(`workload digest ${d.digest} (schedule ${d.schedule})`);
    if (wasInterrupted) out.out(`INTERRUPTED: ${summary.requests} of ${total} planned requests were scheduled; the summary covers those only`);
  }
  // Every answer a 404 is most often a target URL whose path does not fit the recorded routes.
  const notFound = summary.statuses['404'] ?? 0;
  const answered = Object.values(summary.statuses).reduce((a, b) => a + b, 0);
  if (answered > 0 && notFound >= answered / 2) {
    out.err(`warning: ${notFound} of ${answered} answers were 404 Not Found: check --target (recorded paths such as ${firstRoute ?? '/v1/chat/completions'} are sent under its path)`);
  }
  return { summary, runPath, interrupted: wasInterrupted };
}

/** The transformation flags of a replay as one line, e.g. `--speed 10 --amplify 2.5`. */
function describeSteps(opts: ReplayCommandOptions): string {
  const argv = opts.argv ?? ['--speed', String(opts.speed)];
  const parts: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!.split('=')[0]!;
    if ((WORKLOAD_FLAGS as readonly string[]).includes(flag)) parts.push(argv[i]!.includes('=') ? argv[i]! : `${flag} ${argv[++i] ?? ''}`);
  }
  if (opts.scenario) parts.unshift(`--scenario ${opts.scenario}`);
  return parts.join(' ') || 'as recorded';
}
