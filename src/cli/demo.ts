import { fileURLToPath } from 'node:url';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TracewarpError } from '../errors.ts';
import { replayTrace } from '../replay/run.ts';
import { startSim } from '../sim/server.ts';
import { runImport } from './import.ts';
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


/**
 * The whole job on the embedded default, all on 127.0.0.1: start `sim`; start `record` in front of it; drive traffic
 * shaped like the first `durationS` seconds of the real Azure conversation trace through the proxy; close the trace;
 * replay it at `speed`× against `sim`; print the report.
 */
export async function runDemo(opts: DemoOptions, out: Output): Promise<number> {
  // The demo's own files are replaced on each run; a file the user named is not, unless --force (checked before the
  // minute of work, not after).
  for (const [flag, path, dflt] of [['--trace', opts.trace, DEMO_TRACE], ['--run', opts.run, DEMO_RUN]] as const) {
    if (!opts.force && resolve(path) !== resolve(dflt) && existsSync(path)) {
      throw new TracewarpError('TW_USAGE', `${path} exists (${flag}); the demo replaces only its own default files: choose another path or add --force`);
    }
  }
  const sim = await startSim({ seed: opts.seed });
  out.err(`demo: 1/4 sim (OpenAI-compatible LLM simulator) listening on ${sim.url}`);
  try {
    // The recorder's lines are progress here: keep stdout for the report (pure JSON with --json).
    const session = await startRecord({ upstream: sim.url, host: '127.0.0.1', port: 0, out: opts.trace, force: true }, toStderr(out));
    out.err(`demo: 2/4 recording proxy in front of it; driving the first ${opts.durationS} s of the Azure conversation trace (${DEMO_SOURCE.split('/').pop()}) through it at 1×`);
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
    out.err(`demo: 3/4 drove ${plural(driven, 'request')} (${failed} failed); the proxy recorded ${plural(written, 'exchange')} to ${opts.trace}`);
    if (!opts.json) runInspect(opts.trace, {}, out);
    out.err(`demo: 4/4 replaying ${opts.trace} at ${opts.speed}× against sim`);
    await runReplay(opts.trace, { target: sim.url, speed: opts.speed, seed: opts.seed, out: opts.run, force: true, json: opts.json, slo: opts.slo ?? 'ttft<500ms,tpot<25ms' }, out);
    return failed > 0 || written !== driven ? 1 : 0;
  } finally {
    await sim.close();
  }
}
