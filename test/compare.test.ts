import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.ts';
import { startRecord } from '../src/cli/record.ts';
import { pairedDifference, quantile } from '../src/compare/bootstrap.ts';
import { createRng } from '../src/rng.ts';
import { startSim, type SimServer } from '../src/sim/server.ts';
import { captureOutput, tempDir } from './helpers.ts';

interface Cmp { pairing: string; method: string; metrics: Array<{ metric: string; base: number; candidate: number; diff: number; ciLow: number; ciHigh: number; verdict: string; n: number }>; gate?: { passed: boolean } }

describe('compare: two runs (or a captured trace and a run), paired request by request', () => {
  let fast: SimServer;
  let slow: SimServer;
  let tmp: ReturnType<typeof tempDir>;
  let trace: string;
  const runs: Record<string, string> = {};
  const replay = async (name: string, target: string, extra: string[] = []) => {
    const out = captureOutput();
    runs[name] = join(tmp.dir, `${name}.run.db`);
    expect(await main(['replay', trace, '--target', target, '--speed', '2', '--out', runs[name]!, '--quiet', ...extra], out), out.stderr.join('\n')).toBe(0);
  };
  const compare = async (args: string[]) => {
    const out = captureOutput();
    const code = await main(['compare', ...args, '--json'], out);
    return { code, c: code <= 1 ? (JSON.parse(out.stdout.join('')) as Cmp) : null, stderr: out.stderr.join('\n') };
  };
  beforeAll(async () => {
    tmp = tempDir();
    // 20 output tokens at 20 ms a step; the slow server takes 26 ms a step: 30 % slower.
    fast = await startSim({ prefillUsPerToken: 10, decodeStepMs: 20, perSeqStepMs: 0, maxBatch: 64 });
    slow = await startSim({ prefillUsPerToken: 10, decodeStepMs: 26, perSeqStepMs: 0, maxBatch: 64 });
    trace = join(tmp.dir, 'c.trace.db');
    const s = await startRecord({ upstream: fast.url, host: '127.0.0.1', port: 0, out: trace }, captureOutput());
    await Promise.all(Array.from({ length: 60 }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i * 25));
      await (await request(`${s.proxy.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tracewarp-sim', max_tokens: 20, stream: true, messages: [{ role: 'user', content: `question ${i}` }] }) })).body.text();
    }));
    await s.stop();
    // The first replay after start-up runs against cold code on both sides (JIT): a real, systematic difference the
    // bootstrap sees (a few ms of TTFT). Warm up first, as one would before measuring.
    await replay('warmup', fast.url);
    await replay('a', fast.url);
    await replay('b', fast.url);
    await replay('slow', slow.url);
    await replay('other', fast.url, ['--seed', '7', '--limit', '20']);
  }, 60_000);
  afterAll(async () => {
    await fast.close();
    await slow.close();
    tmp.cleanup();
  });

  it('the same server twice: no significant difference on every metric; 30 % slower: worse, with an interval that excludes 0', async () => {
    const same = await compare([runs.a!, runs.b!]);
    expect(same.c!.pairing).toBe('paired');
    // p50s and the error rate are judged; p90 and p99 need more than 60 requests (ten values beyond them).
    for (const m of same.c!.metrics) expect(m.verdict, `${m.metric}: ${JSON.stringify(m)}`).toBe(/_p50$|error_rate/.test(m.metric) ? 'no significant difference' : 'too few requests');
    const worse = await compare([runs.a!, runs.slow!]);
    for (const name of ['latency_p50', 'tpot_p50']) {
      const m = worse.c!.metrics.find((x) => x.metric === name)!;
      expect(m.verdict, name).toBe('worse');
      expect(m.ciLow, name).toBeGreaterThan(0);
      expect(m.n).toBe(60);
    }
    const tpot = worse.c!.metrics.find((x) => x.metric === 'tpot_p50')!;
    expect(tpot.candidate / tpot.base).toBeGreaterThan(1.2); // 26 ms against 20 ms a token
    expect(worse.c!.method).toMatch(/paired bootstrap over requests .*seed 1/);
  });

  it('gates with --max-regression (exit 1 past the allowance, 0 within it); a trace is a baseline; other workloads compare unpaired', async () => {
    expect((await compare([runs.a!, runs.slow!, '--max-regression', 'p50:+10%'])).code).toBe(1);
    const within = await compare([runs.a!, runs.slow!, '--max-regression', 'p50:+100%,tpot_p50:+1s']);
    expect(within.code).toBe(0);
    expect(within.c!.gate!.passed).toBe(true);
    const text = captureOutput();
    expect(await main(['compare', runs.a!, runs.slow!, '--max-regression', 'tpot_p50:+2ms'], text)).toBe(1);
    expect(text.stdout.join('\n')).toMatch(/gate FAILED: tpot_p50:\+2ms \(got \+\d/);
    const fromTrace = await compare([trace, runs.slow!]);
    expect(fromTrace.c!.pairing).toBe('paired');
    expect(fromTrace.c!.metrics.find((m) => m.metric === 'tpot_p50')!.verdict).toBe('worse');
    expect((await compare([runs.a!, runs.other!])).c!.pairing).toBe('unpaired');
    const bad = await compare([runs.a!, runs.b!, '--max-regression', 'p99:10']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('give a unit');
    expect((await compare([join(tmp.dir, 'missing.run.db'), runs.a!])).code).toBe(3);
  });

  it('--format md is a pull-request comment; --slo judges both runs and exits 1 when the candidate misses', async () => {
    const md = captureOutput();
    expect(await main(['compare', runs.a!, runs.slow!, '--format', 'md', '--slo', 'tpot_p50<1s,error_rate<1%'], md)).toBe(0);
    const text = md.stdout.join('\n');
    expect(text).toMatch(/^### tracewarp compare: /);
    expect(text).toMatch(/\| tpot_p50 \| [\d.]+ ms \| [\d.]+ ms \| \+[\d.]+ ms \[\+[\d.]+, \+[\d.]+\] \+[\d.]+ % \| \*\*worse\*\* \|/);
    expect(text).toContain('SLO met by the candidate: all 2 objectives');
    // The slow server's TPOT p50 is over 1 ms; the base's may be too: the exit follows the candidate.
    const j = await compare([runs.a!, runs.slow!, '--slo', 'tpot_p50<1ms']);
    expect(j.code).toBe(1);
    const o = (j.c as unknown as { objectives: { candidate: Array<{ met: boolean; value: number }>; base: unknown[] } }).objectives;
    expect(o.candidate[0]!.met).toBe(false);
    expect(o.base).toHaveLength(1);
    expect((await compare([runs.a!, runs.b!, '--slo', 'p99<fast'])).code).toBe(2);
  });

  it('an imported trace has no answers: refused as a baseline (exit 2)', async () => {
    const imported = join(tmp.dir, 'imp.trace.db');
    const { writeFileSync } = await import('node:fs');
    const src = join(tmp.dir, 'm.jsonl');
    writeFileSync(src, '{"timestamp": 0, "input_length": 5, "output_length": 2, "hash_ids": [1]}\n');
    expect(await main(['import', 'mooncake', src, '--out', imported], captureOutput())).toBe(0);
    const r = await compare([imported, runs.a!]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('holds no answers to compare');
  });
});

describe('the paired bootstrap', () => {
  it('is seeded and centred on the point difference; its interval covers a known shift', () => {
    const base = Float64Array.from({ length: 400 }, (_, i) => 100 + (i % 50));
    const cand = base.map((v) => v + 10);
    const d = pairedDifference(base, cand, 0.5, createRng(3));
    expect(d.diff).toBe(10);
    expect(d.ciLow).toBe(10); // every pair moved by exactly 10
    expect(d.ciHigh).toBe(10);
    expect(pairedDifference(base, cand, 0.5, createRng(3))).toEqual(d);
    expect(quantile(Float64Array.from([5, 1, 3, 2, 4]), 0.5)).toBe(3);
  });
});
