import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { buildReport } from '../report/build.ts';
import { TracewarpError, usageError } from '../errors.ts';
import { UnmappedRoutesError, type PlannedWorkload } from '../workload/plan.ts';
import { tokenInputsNote, unmappedHint } from './plan.ts';
import type { Selector } from '../workload/select.ts';
import { parseSlo } from '../metrics/slo.ts';
import type { RunSummary } from '../metrics/summary.ts';
import { startReplay, type ReplayOutcome, type ReplayTraceOptions } from '../replay/run.ts';
import { closedSpanUs, DEFAULT_THINK_TIME, planSessions } from '../sessions/schedule.ts';
import { jsonReporter, textReporter, type RunReport } from '../report/run-report.ts';
import { TraceReader } from '../trace/reader.ts';
import { stepsFor, WORKLOAD_FLAGS } from './workload.ts';
import { DEFAULT_SCRAPE_INTERVAL_MS, DEFAULT_STOP_GRACE_MS } from '../replay/defaults.ts';
import { type Output, onceInterrupted, onLaterSignals, plural } from './output.ts';
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
  /** Warm-up, µs: requests scheduled before it are left out of the headline figures and the SLO (`--warmup 30s`). */
  warmupUs?: number;
  /** Objectives, e.g. `ttft<500ms,tpot<50ms,p99<2s,error_rate<1%`. */
  slo?: string;
  /** `--scrape`: the target's Prometheus endpoints, polled every `scrapeIntervalMs` (default 500). */
  scrape?: string[];
  scrapeIntervalMs?: number;
  /** Also send `min_tokens` and `ignore_eos` so LLM servers generate exactly the recorded output length. */
  forceOutputLength?: boolean;
  /** Sending loops (`--workers`): a number or `auto`. */
  workers?: number | 'auto';
  /** Synthesis threads (`--synth-threads`). */
  synthThreads?: number;
  /** `--sessions`, `--think-time`, `--history` (see `ReplayTraceOptions`). */
  sessions?: ReplayTraceOptions['sessions'];
  thinkTime?: ReplayTraceOptions['thinkTime'];
  history?: ReplayTraceOptions['history'];
  /** `--only` / `--exclude` selectors. */
  only?: Selector[];
  exclude?: Selector[];
  /** `--path-map FROM=TO` rewrites. */
  pathMap?: Array<[string, string]>;
  /** `--model-map FROM=TO` renames. */
  modelMap?: Array<[string, string]>;
  /** `--placeholder-segments`. */
  placeholderSegments?: boolean;
  /** `--output-length`. Default `recorded`. */
  outputLength?: 'recorded' | 'as-sent';
  /** `--no-client-aborts` sets false: requests whose recorded client gave up are replayed whole. Default true. */
  clientAborts?: boolean;
  /** `--headers-timeout`, `--idle-timeout`, `--timeout` (whole request), ms; 0 for none. Defaults in `replay/defaults.ts`. */
  headersTimeoutMs?: number;
  idleTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** `--grace`: after the first Ctrl-C or SIGTERM, how long requests in flight may finish before they are cut, ms. */
  graceMs?: number;
  /**
   * Stop with exit 1 (TracewarpError `TW_TARGET`, naming the cause) when the target check before the clock fails or
   * the first requests all fail at the transport level. The CLI sets it unless `--keep-going`; default false.
   */
  failFast?: boolean;
}

/**
 * Replays a trace against a target and writes the run file (through the library's {@link startReplay}). Prints the
 * summary (text, or one JSON object with `json`) and the failures by cause. Ctrl-C or SIGTERM stops sending; requests
 * in flight may finish for the grace (`graceMs`), then are cut; everything is still written; a second Ctrl-C cuts them
 * at once.
 * @throws TracewarpError `TW_TARGET` with `failFast` when the target cannot be reached or the first requests all fail
 *   at the transport level (the message names the cause), `TW_RUN_WRITE` when the run file could not be written.
 * @returns the summary and the run file's path.
 */
export async function runReplay(tracePath: string, opts: ReplayCommandOptions, out: Output): Promise<{ summary: RunSummary; runPath: string; interrupted: boolean }> {
  const slo = opts.slo !== undefined ? parseSlo(opts.slo) : undefined;
  if (opts.forceOutputLength && opts.outputLength === 'as-sent') usageError('--force-output-length asks for the recorded output length; it cannot go with --output-length as-sent');
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
  const graceMs = opts.graceMs ?? DEFAULT_STOP_GRACE_MS;
  const graceS = Math.round(graceMs / 100) / 10;
  let inFlight = 0;
  let durationS: number | null = null;
  const handle = startReplay({
    trace: tracePath, target: opts.target, steps, seed: opts.seed, runFile: runPath, force: opts.force, model: opts.model, limit: opts.limit,
    maxInFlight: opts.maxInFlight, capPolicy: opts.capPolicy, headers: opts.headers, warmup: opts.warmup, warmupUs: opts.warmupUs, slo, forceOutputLength: opts.forceOutputLength,
    workers: opts.workers, synthThreads: opts.synthThreads, speed: opts.speed, workload, sessions: opts.sessions, thinkTime: opts.thinkTime, history: opts.history,
    ...(opts.scrape?.length ? { scrape: { urls: opts.scrape, intervalMs: opts.scrapeIntervalMs ?? DEFAULT_SCRAPE_INTERVAL_MS } } : {}),
    only: opts.only, exclude: opts.exclude, pathMap: opts.pathMap, modelMap: opts.modelMap, placeholderSegments: opts.placeholderSegments, outputLength: opts.outputLength, clientAborts: opts.clientAborts,
    onPlanned: (w) => {
      durationS = w.after.length > 0 ? w.after.reduce((a, x) => Math.max(a, x.atUs), 0) / 1e6 : null;
      sayPlanned(w, out);
      saySessions(w.after, opts, out);
    },
    onLive: (l) => progress?.live(l),
    headersTimeoutMs: opts.headersTimeoutMs, idleTimeoutMs: opts.idleTimeoutMs, requestTimeoutMs: opts.requestTimeoutMs, stopGraceMs: graceMs,
    failFast: opts.failFast, onNotice: (line) => out.err(`warning: ${line}`),
    onGraceExpired: (n) => out.err(`replay: the ${graceS} s grace is over: cutting ${n > 0 ? plural(n, 'request') : 'what is'} still in flight (recorded as client_aborted); writing the run file…`),
    // Progress goes to stderr, so it stays on with --json (stdout carries only the JSON object).
    onProgress: (p) => {
      inFlight = p.inFlight;
      (progress ??= showReplayProgress(out, p.total, Boolean(opts.quiet), 'replay', durationS)).update(p);
    },
  });
  // The first Ctrl-C or SIGTERM (or, run through npm, the launcher going away: how a SIGTERM to `npx` shows) stops
  // sending at once and gives the requests in flight the grace; a second signal cuts them at once. Either way they are
  // recorded as client_aborted and the run file is written whole.
  const interrupted = onceInterrupted({ launcher: true });
  let offSignals = (): void => undefined;
  void interrupted.promise.then((stop) => {
    out.err(`replay: ${stop.text}: stopped sending; ${inFlight > 0 ? plural(inFlight, 'request') : 'requests'} in flight may finish for up to ${graceS} s, then are cut (Ctrl-C again to cut them now)`);
    handle.stop();
    offSignals = onLaterSignals(stop, () => {
      out.err('replay: cutting the requests in flight…');
      handle.abortInFlight();
    });
  });
  let r: ReplayOutcome;
  try {
    r = await handle.result;
  } catch (err) {
    if (err instanceof UnmappedRoutesError) {
      const first = err.routes[0];
      const model = err.models[0];
      usageError(`${err.message}: ${first ? `${first.route} ${unmappedHint(first.route)}` : `--model NAME or --model-map '${model!.model}=NAME'`}`);
    }
    // The library stops fast and says why; which flags change that is the CLI's to say.
    if (err instanceof TracewarpError && err.code === 'TW_TARGET' && opts.failFast) throw new TracewarpError('TW_TARGET', `${err.message}; --keep-going replays anyway${/timeout/.test(err.message) ? ' (--headers-timeout, --idle-timeout and --timeout set the timeouts)' : ''}`);
    throw err;
  } finally {
    interrupted.dispose();
    offSignals();
    (progress as ProgressDisplay | null)?.stop();
  }
  // From the run file just written: breakdowns, the time view, the cold start and the scraped series (report/build.ts),
  // as `report` prints them; with a warm-up, the headline figures leave it out.
  const built = !r.runFileError && existsSync(runPath) ? buildReport([runPath], { slo: opts.slo }) : null;
  const summary = built && opts.warmupUs ? built.summary : r.summary;
  if (r.webSocketSessions > 0) out.err(`note: ${r.webSocketSessions} WebSocket session(s) in the trace are left out: replay sends HTTP requests only`);
  // The digest covers the workload as planned only when every request was synthesized (not after Ctrl-C).
  const report: RunReport = {
    summary,
    facts: {
      tracePath, target: opts.target, runFile: runPath, runId: r.runId, speed: opts.speed, seed: opts.seed, workload, outputLength: opts.outputLength ?? 'recorded',
      interrupted: r.interrupted, plannedRequests: r.plannedRequests, errorDetails: r.errorDetails, ...(r.digest ? { digest: r.digest } : {}),
      ...(built?.facts.sessions ? { sessions: built.facts.sessions } : {}),
    },
  };
  if (built) report.detail = built.detail;
  out.out((opts.json ? jsonReporter : textReporter)(report));
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

/** What a planned workload leaves out and where its paths carry placeholders, said before anything is sent. */
export function sayPlanned(w: PlannedWorkload, out: Output): void {
  if (w.refusedRecords > 0) out.err(`note: ${w.refusedSummary}`);
  if (w.excluded > 0) out.err(`note: the filters left out ${w.excluded} of the trace's ${w.traceRequests} requests`);
  for (const from of w.routes.unusedModelMaps) out.err(`warning: --model-map '${from}=…' matches no model of this workload (see 'tracewarp inspect' for the models)`);
  for (const from of w.routes.unusedPathMaps) out.err(`warning: --path-map '${from}=…' matches no route of this workload (see 'tracewarp inspect' for the routes)`);
  for (const t of w.tokenInputs.slice(0, 5)) out.err(`note: ${tokenInputsNote(t)}`);
  for (const p of w.routes.placeholders.slice(0, 5)) {
    out.err(`note: ${p.requests} request${p.requests === 1 ? '' : 's'} to ${p.route} ${p.requests === 1 ? 'is' : 'are'} sent with seeded placeholder ids in place of {id} (the trace keeps no ids); --path-map '${p.route}=PATH' sends them where the target needs`);
  }
  if (w.routes.placeholders.length > 5) out.err(`note: … and ${w.routes.placeholders.length - 5} more routes with {id} placeholders (see 'tracewarp inspect')`);
}

/**
 * Says how the workload's sessions will be sent, and when think times will stretch a closed replay well past the
 * schedule's end (recorded think times do not shrink with `--speed`).
 */
function saySessions(arrivals: PlannedWorkload['after'], opts: ReplayCommandOptions, out: Output): void {
  const think = opts.thinkTime ?? DEFAULT_THINK_TIME;
  const sp = planSessions(arrivals, think);
  if (!sp) return;
  if ((opts.sessions ?? 'closed') === 'open') {
    out.err(`sessions: ${sp.sessions} in the workload, ${sp.followUps} follow-up turns sent at their recorded (warped) times (--sessions open)`);
    return;
  }
  out.err(`sessions: ${sp.sessions} in the workload, ${sp.followUps} follow-up turns sent closed loop: each its think time (${thinkName(opts.thinkTime)}) after its parent's answer ended (--sessions open: at their recorded times)`);
  const scheduleUs = arrivals.reduce((m, a) => Math.max(m, a.atUs), 0);
  const closedUs = closedSpanUs(arrivals, sp);
  if (closedUs > 1.5 * scheduleUs && closedUs - scheduleUs > 10e6) {
    out.err(`note: the think times stretch this replay: its last turns go out ${Math.round(closedUs / 1e6)} s in at the earliest, the schedule ends at ${Math.round(scheduleUs / 1e6)} s (--think-time scaled warps them with --speed, max:D caps them; --sessions open keeps the schedule)`);
  }
}

function thinkName(t: ReplayTraceOptions['thinkTime']): string {
  return !t ? 'recorded' : t.kind === 'max' ? `recorded, at most ${t.us / 1000} ms` : t.kind;
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
  if (opts.model !== undefined) parts.push(`--model ${opts.model}`);
  for (const [from, to] of opts.pathMap ?? []) parts.push(`--path-map '${from}=${to}'`);
  for (const [from, to] of opts.modelMap ?? []) parts.push(`--model-map '${from}=${to}'`);
  if (opts.placeholderSegments) parts.push('--placeholder-segments');
  for (const sel of opts.only ?? []) parts.push(`--only '${sel.text}'`);
  for (const sel of opts.exclude ?? []) parts.push(`--exclude '${sel.text}'`);
  if (opts.limit !== undefined) parts.push(`--limit ${opts.limit}`);
  return parts.join(' ') || 'as recorded';
}
