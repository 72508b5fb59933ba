import { basename } from 'node:path';
import { TracewarpError } from '../errors.ts';
import { parseSlo } from '../metrics/slo.ts';
import type { RunSummary } from '../metrics/summary.ts';
import { startReplay, type ReplayOutcome } from '../replay/run.ts';
import { formatSummary } from '../report/text.ts';
import { TraceReader } from '../trace/reader.ts';
import { stepsFor, WORKLOAD_FLAGS } from './workload.ts';
import { type Output, onceInterrupted } from './output.ts';
import { showReplayProgress, type ProgressDisplay } from './progress.ts';

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
  /** Sending loops (`--workers`): a number or `auto`. */
  workers?: number | 'auto';
  /** Synthesis threads (`--synth-threads`). */
  synthThreads?: number;
}

/**
 * Replays a trace against a target and writes the run file (through the library's {@link startReplay}). Prints the
 * summary (text, or one JSON object with `json`). Ctrl-C stops sending; requests in flight finish and everything is
 * still written; a second Ctrl-C cuts them.
 * @returns the summary and the run file's path.
 */
export async function runReplay(tracePath: string, opts: ReplayCommandOptions, out: Output): Promise<{ summary: RunSummary; runPath: string; interrupted: boolean }> {
  const slo = opts.slo !== undefined ? parseSlo(opts.slo) : undefined;
  const reader = new TraceReader(tracePath);
  let steps;
  try {
    steps = stepsFor(reader, opts.argv ?? ['--speed', String(opts.speed)], opts.scenario);
  } finally {
    reader.close();
  }
  const runPath = opts.out ?? `runs/${basename(tracePath).replace(/\.trace\.db$|\.db$/, '')}-${new Date().toISOString().replace(/[:.]/g, '-')}.run.db`;
  const workload = describeSteps(opts);
  let progress: ProgressDisplay | null = null;
  const handle = startReplay({
    trace: tracePath, target: opts.target, steps, seed: opts.seed, runFile: runPath, force: opts.force, model: opts.model, limit: opts.limit,
    maxInFlight: opts.maxInFlight, capPolicy: opts.capPolicy, headers: opts.headers, warmup: opts.warmup, slo, forceOutputLength: opts.forceOutputLength,
    workers: opts.workers, synthThreads: opts.synthThreads, speed: opts.speed, workload,
    // Progress goes to stderr, so it stays on with --json (stdout carries only the JSON object).
    onProgress: (p) => (progress ??= showReplayProgress(out, p.total, Boolean(opts.quiet))).update(p),
  });
  let interrupted = onceInterrupted();
  void interrupted.promise.then(() => {
    out.err('replay: interrupted, waiting for requests in flight… (Ctrl-C again to cut them)');
    handle.stop();
    // A second Ctrl-C cuts the requests in flight (recorded as client_aborted); the run file is still written.
    interrupted = onceInterrupted();
    void interrupted.promise.then(() => {
      out.err('replay: cutting the requests in flight…');
      handle.abortInFlight();
    });
  });
  let r: ReplayOutcome;
  try {
    r = await handle.result;
  } finally {
    interrupted.dispose();
    (progress as ProgressDisplay | null)?.stop();
  }
  const { summary } = r;
  if (r.webSocketSessions > 0) out.err(`note: ${r.webSocketSessions} WebSocket session(s) in the trace are left out: replay sends HTTP requests only`);
  // The digest covers the workload as planned only when every request was synthesized (not after Ctrl-C).
  const digestOut = r.digest ? { digest: r.digest.digest, scheduleDigest: r.digest.schedule } : {};
  if (opts.json) out.out(JSON.stringify({ ...summary, plannedRequests: r.plannedRequests, workload, runFile: runPath, runId: r.runId, speed: opts.speed, seed: opts.seed, target: opts.target, interrupted: r.interrupted, ...digestOut }));
  else {
    out.out(formatSummary(summary, `replay of ${tracePath} (${workload}) against ${opts.target} (seed ${opts.seed}) → ${runPath}`));
    if (r.digest) out.out(`workload digest ${r.digest.digest} (schedule ${r.digest.schedule})`);
    if (r.interrupted) out.out(`INTERRUPTED: ${summary.requests} of ${r.plannedRequests} planned requests were scheduled; the summary covers those only`);
  }
  const h = summary.replayerHealth;
  if (h && h.verdict !== 'ok' && opts.json) out.err(`warning: replayer health ${h.verdict}: ${h.reasons.join('; ')}. ${h.fix ?? ''}`);
  // Nothing reached the target: say so, instead of a summary of zeros that looks like a run.
  if (summary.sent === 0 && summary.requests > 0) {
    const kinds = Object.entries(summary.errorsByKind).map(([k, v]) => `${k}=${v}`).join(', ');
    out.err(`warning: no request reached ${opts.target}: every attempt failed before it was sent (${kinds}); is the server up and listening there?`);
  }
  // Every answer a 404 is most often a target URL whose path does not fit the recorded routes.
  const notFound = summary.statuses['404'] ?? 0;
  const answered = Object.values(summary.statuses).reduce((a, b) => a + b, 0);
  if (answered > 0 && notFound >= answered / 2) {
    out.err(`warning: ${notFound} of ${answered} answers were 404 Not Found: check --target (recorded paths such as ${r.firstRoute ?? '/v1/chat/completions'} are sent under its path)`);
  }
  if (r.runFileError) throw new TracewarpError('TW_RUN_WRITE', `${r.runFileError} (the summary above is complete; the run file is not)`);
  return { summary, runPath, interrupted: r.interrupted };
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
