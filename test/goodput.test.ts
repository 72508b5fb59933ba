import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecord } from '../src/cli/record.ts';
import { runReplay } from '../src/cli/replay.ts';
import { main } from '../src/cli/main.ts';
import { readRunFile } from '../src/results/run-file.ts';
import { startSim, type SimServer } from '../src/sim/server.ts';
import { captureOutput, tempDir } from './helpers.ts';

// Issue 11, "goodput a user can trust": a healthy server's baseline read 81.5 % goodput because non-streamed requests
// (embeddings too) were judged against the TTFT objective with their whole answer time, and requests that had failed
// when recorded counted as misses. Each objective now applies to the requests it is defined for, and recorded
// failures are reported apart.

describe('goodput judges each request by the objectives that apply to it', () => {
  let sim: SimServer;
  let tmp: ReturnType<typeof tempDir>;
  let trace: string;
  beforeAll(async () => {
    tmp = tempDir();
    // 20 output tokens at a 10 ms decode step: a streamed answer's first token in ~10–40 ms, a whole answer in ~200 ms.
    sim = await startSim({ prefillUsPerToken: 10, decodeStepMs: 10, perSeqStepMs: 0, maxBatch: 64 });
    trace = join(tmp.dir, 'g.trace.db');
    const s = await startRecord({ upstream: sim.url, host: '127.0.0.1', port: 0, out: trace }, captureOutput());
    const post = async (path: string, body: unknown) => (await request(s.proxy.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).body.text();
    const chat = (stream: boolean) => ({ model: 'tracewarp-sim', max_tokens: 20, stream, messages: [{ role: 'user', content: 'say something' }] });
    for (let i = 0; i < 3; i++) await post('/v1/chat/completions', chat(true));
    for (let i = 0; i < 2; i++) await post('/v1/chat/completions', chat(false));
    await post('/v1/embeddings', { model: 'tracewarp-sim', input: 'a sentence to embed' });
    await post('/v1/responses', { model: 'tracewarp-sim', input: 'no such route on sim' }); // 404 when recorded, and when replayed
    await s.stop();
  });
  afterAll(async () => {
    await sim.close();
    tmp.cleanup();
  });

  it('TTFT judges streamed answers only, E2E all; a request that failed when recorded is left out and counted apart', async () => {
    const out = captureOutput();
    const { summary, runPath } = await runReplay(trace, { target: sim.url, speed: 1, seed: 1, out: join(tmp.dir, 'g.run.db'), quiet: true, slo: 'ttft<150ms' }, out);
    const { results } = readRunFile(runPath);
    expect(results).toHaveLength(7);
    // The non-streamed answers took longer than the TTFT limit: under the old rule they missed it.
    const whole = results.filter((r) => !r.streamed && r.status === 200 && r.endUs! - r.scheduledUs >= 150_000);
    expect(whole.length).toBeGreaterThanOrEqual(2);
    expect(results.filter((r) => r.recordedFailed).map((r) => r.status)).toEqual([404]);
    expect(summary.recordedFailures).toBe(1);
    expect(summary.goodput).toMatchObject({ slo: 'ttft<150ms', met: 6, eligible: 6, fraction: 1 });
    // An E2E objective applies to every request, streamed or not.
    const e2e = await runReplay(trace, { target: sim.url, speed: 1, seed: 1, out: join(tmp.dir, 'e.run.db'), quiet: true, slo: 'e2e<100ms' }, captureOutput());
    expect(e2e.summary.goodput!.met).toBeLessThanOrEqual(1); // only the embedding answers within 100 ms
    const text = captureOutput();
    expect(await main(['report', runPath, '--slo', 'ttft<150ms'], text)).toBe(0);
    expect(text.stdout.join('\n')).toContain('6 of 6 requests (100.0 %)');
    expect(text.stdout.join('\n')).toContain('1 request that had failed when recorded left out');
  });
});
