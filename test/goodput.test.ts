import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecord } from '../src/cli/record.ts';
import { runReplay } from '../src/cli/replay.ts';
import { main } from '../src/cli/main.ts';
import { readRunFile } from '../src/results/run-file.ts';
import { startSim, type SimServer } from '../src/sim/server.ts';
import { parseSlo } from '../src/metrics/slo.ts';
import { summarize } from '../src/metrics/summary.ts';
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

describe('one --slo language: per-request objectives for goodput, run objectives as gates', () => {
  it('parses every operator and unit, and names each problem', () => {
    const slo = parseSlo('ttft<500ms,p99<800ms,ttft_p95<=0.5s,tpot_p50<40ms,e2e_p99.9<2s,lateness_max<5ms,error_rate<1%,goodput>=95%,throughput>2.5/s');
    expect(slo.ttftUs).toBe(500_000);
    expect(slo.objectives.map((o) => [o.metric, o.stat ?? null, o.op, o.limit])).toEqual([
      ['latency', 'p99', '<', 800], ['ttft', 'p95', '<=', 500], ['tpot', 'p50', '<', 40], ['latency', 'p999', '<', 2000],
      ['lateness', 'max', '<', 5], ['error_rate', null, '<', 0.01], ['goodput', null, '>=', 0.95], ['throughput', null, '>', 2.5],
    ]);
    for (const [bad, says] of [
      ['p99<800', 'give the unit'], ['foo_p99<1s', 'METRIC one of latency'], ['error_rate<2', 'percentage'], ['goodput>95%', 'needs per-request objectives'],
      ['throughput>5', 'requests per second'], ['ttft>5ms', 'expected a per-request objective'], ['p42<1s', 'METRIC one of'], ['', 'empty'],
    ] as Array<[string, string]>) expect(() => parseSlo(bad), bad).toThrow(says);
  });

  it('judges a run: values equal the figures computed from the rows; replay and report exit 1 on a miss, 0 when met', async () => {
    const sim = await startSim({ prefillUsPerToken: 10, decodeStepMs: 5, perSeqStepMs: 0, maxBatch: 64 });
    const tmp = tempDir();
    try {
      const trace = join(tmp.dir, 's.trace.db');
      const s = await startRecord({ upstream: sim.url, host: '127.0.0.1', port: 0, out: trace }, captureOutput());
      for (let i = 0; i < 6; i++) await (await request(`${s.proxy.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tracewarp-sim', max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'hi' }] }) })).body.text();
      await s.stop();
      const met = captureOutput();
      const run = join(tmp.dir, 'a.run.db');
      expect(await main(['replay', trace, '--target', sim.url, '--out', run, '--slo', 'ttft<5s,p99<10s,error_rate<1%,goodput>=50%'], met), met.stderr.join('\n')).toBe(0);
      expect(met.stdout.join('\n')).toContain('SLO met: all 3 objectives');
      const missed = captureOutput();
      expect(await main(['report', run, '--slo', 'p99<1ms,error_rate<1%'], missed)).toBe(1);
      const text = missed.stdout.join('\n');
      expect(text).toContain('SLO MISSED: 1 of 2 objectives');
      expect(text).toMatch(/MISSED p99<1ms\s+[\d.]+ ms \(limit 1 ms\)/);
      // The gate's value is the summary's p99 from the scheduled send, checked against the rows themselves.
      const { results } = readRunFile(run);
      const summary = summarize(results, parseSlo('p99<1ms'));
      const sorted = results.map((r) => (r.endUs! - r.scheduledUs) / 1000).sort((a, b) => a - b);
      expect(summary.objectives![0]!.value).toBeCloseTo(sorted[Math.ceil(0.99 * sorted.length) - 1]!, 0);
      const json = captureOutput();
      expect(await main(['report', run, '--json', '--slo', 'p99<1ms'], json)).toBe(1);
      expect(JSON.parse(json.stdout.join(''))).toMatchObject({ sloMet: false, objectives: [{ objective: 'p99<1ms', unit: 'ms', limit: 1, met: false }] });
      const bad = captureOutput();
      expect(await main(['report', run, '--slo', 'p99<'], bad)).toBe(2);
      expect(await main(['report', join(tmp.dir, 'missing.run.db')], captureOutput())).toBe(3);
    } finally {
      await sim.close();
      tmp.cleanup();
    }
  });
});
