import { fileURLToPath } from 'node:url';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { buildReport } from '../report/build.ts';
import { htmlReporter } from '../report/html.ts';
import { capacityHtmlPath, DEMO_CAPACITY_SLO, demoCapacity } from './demo-capacity.ts';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TracewarpError } from '../errors.ts';
import { replayTrace } from '../replay/run.ts';
import { startSim } from '../sim/server.ts';
import { runImport } from './import.ts';
import { runCompare } from './compare.ts';
import { runInspect } from './inspect.ts';
import { DEMO_RUN, DEMO_TRACE } from './defaults.ts';
import { plural, toStderr, type Output } from './output.ts';

export { DEMO_RUN, DEMO_TRACE } from './defaults.ts';
import { showReplayProgress } from './progress.ts';
import { startRecord } from './record.ts';
import { runReplay } from './replay.ts';

/** The bundled real trace slice the demo's traffic is shaped like (CC-BY 4.0, see fixtures/README.md). */
export const DEMO_SOURCE = fileURLToPath(new URL('../../fixtures/azure-conv-first-5min.csv', import.meta.url));

/** Options of `tracewarp demo`. */
export interface DemoOptions {
  /** Seconds of the Azure trace to drive through the proxy (1×). Default 30. */
  durationS: number;
  /** Replay time-warp factor. Default 2. */
  speed: number;
  seed: number;
  /** Where the recorded trace goes. Default {@link DEMO_TRACE}, replaced on each run. */
  trace: string;
  /** Where the replay's run file goes. Default {@link DEMO_RUN}, replaced on each run. */
  run: string;
  /** Replace an existing `trace` or `run` file that is not the default one. */
  force?: boolean;
  json?: boolean;
  /** Goodput objectives for the report. Default `ttft<500ms,tpot<25ms`. */
  slo?: string;
}


/** The batch limit of the demo's second server: a smaller GPU, so to speak (sim's default is 64). */
export const DEMO_SMALL_BATCH = 2;

/** Where the demo's second run goes: beside `run`, `NAME-small-batch.run.db`. */
export function smallBatchRunPath(run: string): string {
  return run.replace(/(\.run)?\.db$/, '') + '-small-batch.run.db';
}

/** Where a run's HTML report goes: beside it, `NAME.report.html`. */
export function htmlReportPath(run: string): string {
  return run.replace(/(\.run)?\.db$/, '') + '.report.html';
}

/** How often the demo scrapes sim's `/metrics`, ms. */
export const DEMO_SCRAPE_INTERVAL_MS = 250;

/**
 * The whole job on the embedded default, all on 127.0.0.1: start `sim`; start `record` in front of it; drive traffic
 * shaped like the first `durationS` seconds of the real Azure conversation trace through the proxy; close the trace;
 * replay it at `speed`× against `sim`; print the report; replay it again against a sim that batches at most
 * {@link DEMO_SMALL_BATCH} sequences, and compare the two runs (the decision a user is after: does the smaller
 * server take this traffic?).
 */
export async function runDemo(opts: DemoOptions, out: Output): Promise<number> {
  // The demo's own files are replaced on each run; a file the user named is not, unless --force (checked before the
  // minute of work, not after).
  const small = smallBatchRunPath(opts.run);
  for (const [flag, path, dflt] of [['--trace', opts.trace, DEMO_TRACE], ['--run', opts.run, DEMO_RUN], ['--run', small, smallBatchRunPath(DEMO_RUN)]] as const) {
    if (!opts.force && resolve(path) !== resolve(dflt) && existsSync(path)) {
      throw new TracewarpError('TW_USAGE', `${path} exists (${flag}); the demo replaces only its own default files: choose another path or add --force`);
    }
  }
  const sim = await startSim({ seed: opts.seed });
  out.err(`demo: 1/6 sim (OpenAI-compatible LLM simulator) listening on ${sim.url}`);
  try {
    // The recorder's lines are progress here: keep stdout for the report (pure JSON with --json).
    const session = await startRecord({ upstream: sim.url, host: '127.0.0.1', port: 0, out: opts.trace, force: true }, toStderr(out));
    out.err(`demo: 2/6 recording proxy in front of it; driving the first ${opts.durationS} s of the Azure conversation trace (${DEMO_SOURCE.split('/').pop()}) through it at 1×`);
    // The driver is the replayer itself, on the bundled slice imported into a temporary trace.
    const tmp = mkdtempSync(join(tmpdir(), 'tracewarp-demo-'));
    let driven = 0;
    let failed = 0;
    try {
      const source = join(tmp, 'azure-slice.trace.db');
      await runImport('azure-llm', DEMO_SOURCE, { out: source, model: 'tracewarp-sim', stream: true }, { ...out, out: () => undefined });
      const progress = showReplayProgress(out, null, Boolean(opts.json), 'demo: driving traffic');
      // No warm-up requests: they would be recorded as traffic. No run file: the proxy's trace is what counts.
      const { summary } = await replayTrace({
        trace: source, target: session.proxy.url, steps: [{ op: 'window', fromUs: 0, toUs: opts.durationS * 1e6 }], seed: opts.seed, runFile: null, warmup: 0,
        onProgress: (p) => progress.update(p),
      });
      progress.stop();
      driven = summary.requests;
      failed = summary.errors;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    const { written } = await session.stop();
    out.err(`demo: 3/6 drove ${plural(driven, 'request')} (${failed} failed); the proxy recorded ${plural(written, 'exchange')} to ${opts.trace}`);
    if (!opts.json) runInspect(opts.trace, {}, out);
    out.err(`demo: 4/6 replaying ${opts.trace} at ${opts.speed}× against sim, scraping its /metrics (vLLM's metric names) every ${DEMO_SCRAPE_INTERVAL_MS} ms`);
    const slo = opts.slo ?? 'ttft<500ms,tpot<25ms';
    await runReplay(opts.trace, { target: sim.url, speed: opts.speed, seed: opts.seed, out: opts.run, force: true, json: opts.json, slo, scrape: [`${sim.url}/metrics`], scrapeIntervalMs: DEMO_SCRAPE_INTERVAL_MS }, out);
    await compareWithSmallBatch(opts, small, slo, out);
    const capacity = await demoCapacity({ trace: opts.trace, run: opts.run, seed: opts.seed }, opts.json ? toStderr(out) : out);
    (opts.json ? out.err : out.out)(capacity.capacityRps === null
      ? 'demo: sim took none of the loads tried within the objectives'
      : `demo: sim (batch 64) takes this traffic up to ${capacity.capacityRps.toFixed(1)} req/s (${capacity.capacityFactor?.toFixed(1)}× the recorded rate) within '${DEMO_CAPACITY_SLO}'; the curve is in ${capacityHtmlPath(opts.run)}`);
    return failed > 0 || written !== driven ? 1 : 0;
  } finally {
    await sim.close();
  }
}

/**
 * Step 5: the same workload (same digest) against a sim that batches at most {@link DEMO_SMALL_BATCH} sequences, then
 * `compare` of the two runs, request by request. With `--json` the comparison goes to stderr as text (stdout stays the
 * first run's summary).
 */
async function compareWithSmallBatch(opts: DemoOptions, small: string, slo: string, out: Output): Promise<void> {
  const sim2 = await startSim({ seed: opts.seed, maxBatch: DEMO_SMALL_BATCH });
  try {
    out.err(`demo: 5/6 the same replay against a sim that batches at most ${DEMO_SMALL_BATCH} sequences (the first batched 64), then compare`);
    await runReplay(opts.trace, { target: sim2.url, speed: opts.speed, seed: opts.seed, out: small, force: true, quiet: true, slo, scrape: [`${sim2.url}/metrics`], scrapeIntervalMs: DEMO_SCRAPE_INTERVAL_MS }, { ...out, out: () => undefined });
  } finally {
    await sim2.close();
  }
  runCompare(opts.run, small, {}, opts.json ? toStderr(out) : out);
  const reports = [opts.run, small].map((run) => {
    const path = htmlReportPath(run);
    writeFileSync(path, htmlReporter(buildReport([run], { slo })));
    return path;
  });
  const say = opts.json ? out.err : out.out;
  say(`demo: HTML reports (one file each, nothing loaded from the network; open in a browser): ${reports.join(', ')}`);
  say([
    'demo: what to look at:',
    '  - send lateness p50/p99 near 0 ms and "replayer health ok": the replayer kept its schedule, so the latencies are the server\'s, not the tool\'s.',
    '  - latency/TTFT "from schedule" vs "from send": equal when lateness is ~0; a gap would be the tool falling behind (coordinated omission shown, not hidden).',
    `  - the server queue: sim's own vllm:num_requests_waiting, scraped during each run. At batch 64 it stays near 0; at batch ${DEMO_SMALL_BATCH} it grows, and TTFT grows with it (the "TTFT and the server queue" chart in ${reports[1]}).`,
    '  - the comparison: "worse" with an interval that excludes 0 is that queue, measured request by request on the same workload (same digest).',
  ].join('\n'));
}
