import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runImport } from '../src/cli/import.ts';
import { runPlan } from '../src/cli/plan.ts';
import { runReplay } from '../src/cli/replay.ts';
import { readRunFile } from '../src/results/run-file.ts';
import { createRng } from '../src/rng.ts';
import { countTokens } from '../src/tokens.ts';
import { TraceReader } from '../src/trace/reader.ts';
import { transform } from '../src/workload/pipeline.ts';
import type { Arrival } from '../src/workload/types.ts';
import { amplify, loop, warpSpeed, window } from '../src/workload/warp.ts';
import { captureOutput, FIXTURES, runCli, startUpstream, tempDir } from './helpers.ts';

const arrival = (atUs: number, seq = 1): Arrival => ({ seq, atUs, clone: 0, fingerprintSalt: null, drift: [], anomaly: null, route: '/v1/chat/completions', protocol: 'openai-chat', promptTokens: 100, outputTokens: 10, requestBytes: 500, model: 'm' });
const offsetsArb = fc.array(fc.integer({ min: 0, max: 3_600_000_000 }), { minLength: 2, maxLength: 300 }).map((xs) => xs.sort((a, b) => a - b));

/** Coefficient of variation of per-second arrival counts. */
function burstinessCv(a: readonly Arrival[]): number {
  const secs = Math.floor(a[a.length - 1]!.atUs / 1e6) + 1;
  const counts = new Array<number>(secs).fill(0);
  for (const x of a) counts[Math.floor(x.atUs / 1e6)]!++;
  const mean = counts.reduce((s, c) => s + c, 0) / secs;
  const sd = Math.sqrt(counts.reduce((s, c) => s + (c - mean) ** 2, 0) / secs);
  return sd / mean;
}

describe('workload transformations: properties (fast-check)', () => {
  it('speed keeps order and scales every offset exactly', () => {
    fc.assert(fc.property(offsetsArb, fc.double({ min: 0.01, max: 100, noNaN: true }), (offs, speed) => {
      const out = warpSpeed(offs.map((o) => arrival(o)), speed);
      out.forEach((a, i) => expect(a.atUs).toBe(Math.round((offs[i]! - offs[0]!) / speed)));
      for (let i = 1; i < out.length; i++) expect(out[i]!.atUs).toBeGreaterThanOrEqual(out[i - 1]!.atUs);
    }));
  });

  it('window keeps exactly the arrivals in [A, B) and starts them at 0', () => {
    fc.assert(fc.property(offsetsArb, fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 1, max: 2e9 }), (offs, from, len) => {
      const out = window(offs.map((o) => arrival(o)), from, from + len);
      const expected = offs.filter((o) => o - offs[0]! >= from && o - offs[0]! < from + len);
      expect(out.map((a) => a.atUs)).toEqual(expected.map((o) => o - offs[0]! - from));
    }));
  });

  it('loop n gives n·N arrivals; duration D fills [0, D) and no more', () => {
    fc.assert(fc.property(offsetsArb, fc.integer({ min: 1, max: 5 }), (offs, n) => {
      const base = offs.map((o) => arrival(o - offs[0]!));
      expect(loop(base, { times: n })).toHaveLength(n * base.length);
      const span = base[base.length - 1]!.atUs;
      const d = Math.max(1, Math.round(span * n * 0.9));
      const filled = loop(base, { durationUs: d });
      expect(filled.every((a) => a.atUs < d)).toBe(true);
      expect(filled.length).toBeGreaterThanOrEqual(base.filter((a) => a.atUs < d).length);
      for (let i = 1; i < filled.length; i++) expect(filled[i]!.atUs).toBeGreaterThanOrEqual(filled[i - 1]!.atUs);
    }));
  });

  // Exact for every input: each arrival is kept once and cloned floor(K) − 1 or floor(K) times (the second only when K
  // has a fraction), clones come after their original and carry a new fingerprint salt, the result is in order.
  it('amplify K keeps every arrival, gives it floor(K) or ceil(K) copies (K·N within a binomial bound), in order, clones after their original', () => {
    fc.assert(fc.property(offsetsArb, fc.double({ min: 1, max: 5, noNaN: true }), fc.integer(), (offs, k, seed) => {
      const base = offs.map((o, i) => arrival(o, i + 1));
      const out = amplify(base, k, createRng(seed));
      const whole = Math.floor(k);
      const bySeq = new Map<number, Arrival[]>();
      for (const a of out) bySeq.set(a.seq, [...(bySeq.get(a.seq) ?? []), a]);
      expect([...bySeq.keys()].sort((x, y) => x - y)).toEqual(base.map((a) => a.seq));
      for (const [seq, copies] of bySeq) {
        const original = copies.filter((a) => a.clone === 0);
        expect(original).toHaveLength(1);
        expect(original[0]!.atUs).toBe(base[seq - 1]!.atUs);
        expect(copies.length === whole || (k > whole && copies.length === whole + 1)).toBe(true);
        for (const c of copies.filter((a) => a.clone > 0)) {
          expect(c.atUs).toBeGreaterThan(original[0]!.atUs);
          expect(c.fingerprintSalt).not.toBeNull();
        }
      }
      for (let i = 1; i < out.length; i++) expect(out[i]!.atUs).toBeGreaterThanOrEqual(out[i - 1]!.atUs);
      // K·N within a binomial confidence bound valid at every N (Hoeffding: P(|X − Np| ≥ t) ≤ 2·exp(−2t²/N)), at
      // α = 1e-9 so that random seeds cannot fail it by chance; the normal 5-sigma bound is checked below at large N.
      const n = base.length;
      expect(Math.abs(out.length - k * n)).toBeLessThanOrEqual(Math.sqrt((n * Math.log(2 / 1e-9)) / 2) + 1e-6);
    }), { numRuns: 50 });
  });

  // Statistical, so on a fixed seed and a large N: the fractional part is a Bernoulli draw per arrival, the count
  // stays within 5 sigma of K·N (a normal bound is sound at N = 20,000, not at the N = 4 fast-check can pick).
  it('amplify K gives K·N arrivals within a binomial 5-sigma bound (N = 20,000, fixed seeds)', () => {
    const n = 20_000;
    const base = Array.from({ length: n }, (_, i) => arrival(i * 1_000, i + 1));
    for (const [k, seed] of [[1.1, 1], [2.5, 2], [3.027, 3], [4.9, 4]] as const) {
      const frac = k - Math.floor(k);
      const out = amplify(base, k, createRng(seed));
      expect(Math.abs(out.length - k * n)).toBeLessThanOrEqual(5 * Math.sqrt(n * frac * (1 - frac)));
    }
  });

  it('amplify keeps burstiness: the CV of per-second counts stays within 5 % on the real Azure slice', async () => {
    const tmp = tempDir();
    const trace = join(tmp.dir, 'az.trace.db');
    await runImport('azure-llm', join(FIXTURES, 'azure-conv-first-5min.csv'), { out: trace }, captureOutput());
    const reader = new TraceReader(trace);
    const base = transform(reader.arrivals(), [], createRng(1));
    reader.close();
    const cv0 = burstinessCv(base);
    for (const k of [2, 2.5, 4]) {
      const cv = burstinessCv(amplify(base, k, createRng(7)));
      expect(Math.abs(cv - cv0) / cv0).toBeLessThan(0.05);
    }
    tmp.cleanup();
  });
});

describe('synthetic arrival models', () => {
  const base = Array.from({ length: 20_000 }, (_, i) => arrival(i * 10_000, i + 1)); // 100 req/s
  const gaps = (a: Arrival[]) => a.slice(1).map((x, i) => x.atUs - a[i]!.atUs);
  const cv = (xs: number[]) => {
    const m = xs.reduce((s, x) => s + x, 0) / xs.length;
    return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / xs.length) / m;
  };
  it('keep the order and the mean rate; constant has CV 0, poisson ≈ 1, gamma:CV ≈ CV', () => {
    for (const [model, expectedCv] of [[{ kind: 'constant' }, 0], [{ kind: 'poisson' }, 1], [{ kind: 'gamma', cv: 2.5 }, 2.5], [{ kind: 'gamma', cv: 0.5 }, 0.5]] as const) {
      const out = transform(base, [{ op: 'arrivals', model }], createRng(5));
      expect(out.map((a) => a.seq)).toEqual(base.map((a) => a.seq));
      const g = gaps(out);
      const meanGap = g.reduce((s, x) => s + x, 0) / g.length;
      expect(Math.abs(meanGap / 10_000 - 1)).toBeLessThan(expectedCv === 0 ? 0.001 : 0.06);
      expect(Math.abs(cv(g) - expectedCv)).toBeLessThan(expectedCv === 0 ? 0.001 : 0.1 * expectedCv);
    }
  });
  it('--arrivals with --rate generates at that rate', () => {
    const out = transform(base, [{ op: 'arrivals', model: { kind: 'poisson' }, rate: 400 }], createRng(6));
    const span = out[out.length - 1]!.atUs / 1e6;
    expect(Math.abs((out.length - 1) / span / 400 - 1)).toBeLessThan(0.05);
  });
});

describe('workload from the CLI on an imported real trace', () => {
  const tmp = tempDir();
  const trace = join(tmp.dir, 'azure.trace.db');
  beforeAll(async () => {
    await runImport('azure-llm', join(FIXTURES, 'azure-conv-first-5min.csv'), { out: trace, model: 'm', stream: false }, captureOutput());
  });
  afterAll(() => tmp.cleanup());

  // In the order given: the window is taken from the trace's own timeline, then warped.
  const flags = ['--window', '0s..60s', '--speed', '10', '--amplify', '2.5', '--drift', 'prompt_tokens*1.5 ramp 0..100%'];

  it('plan is deterministic across processes; another seed gives another digest', async () => {
    const a = await runCli(['plan', trace, ...flags, '--seed', '7', '--json']);
    const b = await runCli(['plan', trace, ...flags, '--seed', '7', '--json']);
    const c = await runCli(['plan', trace, ...flags, '--seed', '8', '--json']);
    expect(a.code).toBe(0);
    const [pa, pb, pc] = [a, b, c].map((r) => JSON.parse(r.stdout));
    expect(pa.digest).toBe(pb.digest);
    expect(pc.digest).not.toBe(pa.digest);
    for (const k of ['requests', 'durationS', 'meanRate', 'digest', 'features']) expect(pa).toHaveProperty(k);
    expect(Object.keys(pa.features.promptTokens.before)).toEqual(['p50', 'p90', 'p99', 'mean']);
    // 60 s of the trace at 10×: under 6 s; about 2.5× the requests of the window.
    expect(pa.durationS).toBeLessThanOrEqual(6.01); // + up to 10 ms of clone jitter
    expect(pa.originalRequests).toBe(1445);
    const inWindow = JSON.parse((await runCli(['plan', trace, '--window', '0s..60s', '--json'])).stdout).requests;
    expect(Math.abs(pa.requests - 2.5 * inWindow)).toBeLessThanOrEqual(5 * Math.sqrt(inWindow * 0.25));
  });

  it('replay runs the same pipeline: its digest equals plan\'s; drift changes the bodies actually sent; anomaly labels reach the results', async () => {
    const seen: number[] = [];
    const up = await startUpstream((req, res, body) => {
      if (req.method === 'POST') {
        // The upstream tokenizes what it received: the prompt tokens the server would see.
        try {
          const b = JSON.parse(body.toString()) as { messages: Array<{ content: string }> };
          seen.push(b.messages.reduce((s, m) => s + countTokens(m.content), 0));
        } catch {
          seen.push(-1);
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"choices":[{"message":{"content":"ok"}}],"usage":{"completion_tokens":1}}');
    });
    try {
      const window = ['--window', '0s..40s', '--speed', '20'];
      const base = await runReplay(trace, { target: up.url, speed: 1, argv: window, seed: 3, out: join(tmp.dir, 'b.run.db'), quiet: true, warmup: 0 }, captureOutput());
      const before = [...seen];
      seen.length = 0;
      const out = captureOutput();
      const argv = [...window, '--drift', 'prompt_tokens*1.5', '--anomaly', 'huge-max-tokens:20%'];
      const drifted = await runReplay(trace, { target: up.url, speed: 1, argv, seed: 3, out: join(tmp.dir, 'd.run.db'), quiet: true, json: true, warmup: 0 }, out);
      const plan = runPlan(trace, argv, { seed: 3, json: true }, captureOutput());
      expect(JSON.parse(out.stdout[0]!).digest).toBe(plan.digest);
      expect(base.summary.completed).toBe(before.length);
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      expect(Math.abs(median(seen) / median(before) - 1.5)).toBeLessThan(0.03);
      const { results } = readRunFile(join(tmp.dir, 'd.run.db'));
      const labelled = results.filter((r) => r.label === 'huge-max-tokens').length;
      const n = results.length;
      expect(Math.abs(labelled - 0.2 * n)).toBeLessThanOrEqual(4 * Math.sqrt(n * 0.2 * 0.8));
      expect(drifted.summary.byLabel?.['huge-max-tokens']?.requests).toBe(labelled);
    } finally {
      await up.close();
    }
  });

  it('a ramp is monotone over time; injected rates match within a binomial bound', () => {
    const plan = runPlan(trace, ['--drift', 'prompt_tokens*3 ramp 0..100%', '--anomaly', 'oversize:5%,empty-body:2%'], { seed: 4, json: true }, captureOutput());
    const reader = new TraceReader(trace);
    const arrivals = transform(reader.arrivals(), [
      { op: 'drift', specs: [{ text: '', kind: 'mutation', feature: 'prompt_tokens', op: '*', value: 3, ramp: { kind: 'linear', from: 0, to: 1 } }] },
    ], createRng(4));
    reader.close();
    const weights = arrivals.map((a) => a.drift[0]?.weight ?? 0); // a zero-weight change is not recorded
    for (let i = 1; i < weights.length; i++) expect(weights[i]!).toBeGreaterThanOrEqual(weights[i - 1]!);
    expect(weights[0]).toBe(0);
    expect(weights.at(-1)).toBe(1);
    const n = plan.requests;
    for (const [kind, p] of [['oversize', 0.05], ['empty-body', 0.02]] as const) {
      // Each kind gets its rate of all requests, though a request carries one label.
      const expected = n * p;
      expect(Math.abs((plan.anomalies[kind] ?? 0) - expected)).toBeLessThanOrEqual(4 * Math.sqrt(expected) + 1);
    }
  });

  it('mix thins (factor < 1) or grows one kind of traffic; fractional windows work', () => {
    const all = runPlan(trace, [], { seed: 1 }, captureOutput()).requests;
    const half = runPlan(trace, ['--drift', 'mix(route=/v1/chat/completions)*0.5'], { seed: 1 }, captureOutput()).requests;
    expect(Math.abs(half - all / 2)).toBeLessThanOrEqual(4 * Math.sqrt(all / 4));
    const w = runPlan(trace, ['--window', '1.5m..2m'], { seed: 1 }, captureOutput());
    expect(w.durationS).toBeLessThan(30);
    expect(w.requests).toBeGreaterThan(0);
  });

  it('refuses what cannot apply: an unmatched mix, tensor anomalies on a chat trace, rates over 100 %, runaway expansion, an SLO without units (exit 2)', async () => {
    const cases: Array<[string[], string]> = [
      [['--drift', 'mix(protocol=nonsense)*2'], 'no request of this workload has protocol nonsense'],
      [['--drift', 'image_pixels*2'], "no request in this trace has 'image_pixels'"],
      [['--anomaly', 'nan-tensor:10%'], 'this trace has no KServe v2 requests'],
      [['--anomaly', 'oversize:60%,malformed-json:60%'], 'add up to 120.0 %'],
      [['--loop', '100000'], 'more than the 5,000,000 a plan may hold'],
      [['--window', '0s..1ms', '--rate', '5'], 'a rate needs at least two arrivals'],
      [['--anomaly', 'burst:3x@500s-600s'], 'burst:3x@500s-600s: no arrival falls in that window (the workload at that step spans 0–'],
    ];
    for (const [args, msg] of cases) {
      const r = await runCli(['plan', trace, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(msg);
      expect(r.stderr).not.toContain('    at ');
    }
    const slo = await runCli(['replay', trace, '--target', 'http://127.0.0.1:9', '--slo', 'ttft<500']);
    expect(slo.code).toBe(2);
    expect(slo.stderr).toContain('give the unit');
    const empty = await runCli(['replay', trace, '--target', 'http://127.0.0.1:9', '--window', '9000s..9100s']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('the workload is empty');
  });

  it('bad specs exit 2 with every problem named, and send nothing', async () => {
    let hits = 0;
    const up = await startUpstream((_req, res) => {
      hits++;
      res.end();
    });
    try {
      const r = await runCli(['replay', trace, '--target', up.url, '--drift', 'tensor_size*2', '--drift', 'prompt_tokens**2', '--anomaly', 'cosmic-ray:1%', '--amplify', '0.5']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("unknown feature 'tensor_size'");
      expect(r.stderr).toContain('valid for this trace: prompt_tokens, output_tokens, model');
      expect(r.stderr).toContain("'prompt_tokens**2': not a drift spec");
      expect(r.stderr).toContain("unknown anomaly 'cosmic-ray'");
      expect(r.stderr).toContain('--amplify must be a number ≥ 1');
      const p = await runCli(['plan', trace, '--drift', 'batch*2']);
      expect(p.code).toBe(2);
      expect(p.stderr).toContain("no request in this trace has 'batch'");
      expect(hits).toBe(0);
    } finally {
      await up.close();
    }
  });
});
