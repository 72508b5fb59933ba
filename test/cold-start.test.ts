import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.ts';
import { runReplay } from '../src/cli/replay.ts';
import { buildReport } from '../src/report/build.ts';
import { startSim, type SimServer } from '../src/sim/server.ts';
import { captureOutput, tempDir, writeChatTrace } from './helpers.ts';

// Issue 12, cold start in every replay: a server still loading its model answers its first requests late; the
// report shows them apart (first requests, warm-up) and `--warmup D` keeps them out of the headline figures and the SLO.

describe('cold start and --warmup', () => {
  let sim: SimServer;
  let tmp: ReturnType<typeof tempDir>;
  let trace: string;
  beforeAll(async () => {
    tmp = tempDir();
    trace = join(tmp.dir, 'c.trace.db');
    // A request every 100 ms for 8 s, streamed, short.
    writeChatTrace(trace, Array.from({ length: 80 }, (_, i) => i * 100_000), { promptTokens: 50, outputTokens: 4, stream: true });
  });
  afterAll(async () => {
    await sim?.close();
    tmp?.cleanup();
  });

  it('a model still loading is the cold start: shown apart, and left out of the figures and the SLO with --warmup', async () => {
    // The model loads for 4 s from now; the replay starts within two seconds or so, so its first requests queue.
    sim = await startSim({ modelLoadMs: 4000, decodeStepMs: 2, perSeqStepMs: 0 });
    const run = join(tmp.dir, 'warm.run.db');
    const out = captureOutput();
    const r = await runReplay(trace, { target: sim.url, speed: 1, seed: 1, out: run, quiet: true, warmupUs: 5_000_000, slo: 'p99<300ms' }, out);
    // The headline figures are the steady state only: no request after the warm-up waited for the model.
    expect(r.summary.requests).toBe(30);
    expect(r.summary.latencyFromScheduledMs.p99!).toBeLessThan(300);
    expect(r.summary.sloMet).toBe(true);
    const report = buildReport([run]);
    const c = report.detail!.coldStart;
    expect(c).toMatchObject({ warmupS: 5, excludedRequests: 50, firstN: 10 });
    // The first requests waited for the model: hundreds of ms at least, where the steady state takes a few.
    expect(c.first.latencyP99Ms!).toBeGreaterThan(1000);
    expect(c.warmup!.latencyP99Ms!).toBeGreaterThan(1000);
    expect(c.steady.latencyP99Ms!).toBeLessThan(300);
    expect(out.stdout.join('\n')).toMatch(/warm-up: the first 5 s \(50 requests\) are left out of every figure above and of the SLO/);
    // The same run file without the warm-up: the cold start is in the tail, and the SLO is missed.
    const all = buildReport([run], { warmupUs: 0, slo: 'p99<300ms' });
    expect(all.summary.requests).toBe(80);
    expect(all.summary.latencyFromScheduledMs.p99!).toBeGreaterThan(1000);
    expect(all.summary.sloMet).toBe(false);
  }, 30_000);

  it('--warmup takes a duration; a bare number is still the count of warm-up connections', async () => {
    const out = captureOutput();
    expect(await main(['replay', trace, '--target', 'http://127.0.0.1:1', '--warmup', 'soon'], out)).toBe(2);
    expect(out.stderr.join('\n')).toMatch(/--warmup must be a duration with its unit/);
  });
});
