import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.ts';
import { runSweepCommand } from '../src/cli/sweep.ts';
import type { ObjectiveResult } from '../src/metrics/objectives.ts';
import { sweepConfig, validateSweep } from '../src/sweep/config.ts';
import { sweepHtml } from '../src/sweep/html.ts';
import { capacityOf, nextLoad, type SearchStep } from '../src/sweep/search.ts';
import { judgeStep } from '../src/sweep/run.ts';
import { parseSlo } from '../src/metrics/slo.ts';
import type { RequestResult } from '../src/results/types.ts';
import { captureOutput, launchChromium, openPage, ROOT, startUpstream, tempDir } from './helpers.ts';

// Issue 12, capacity search on the recorded workload: the search itself (pure), then a real sweep of a real imported
// trace against an upstream whose capacity is known by construction.

const objective = (value: number, limit = 100): ObjectiveResult => ({ objective: 'p99<100ms', value, limit, unit: 'ms', met: value < limit });

/** Runs a search against a made-up server: latency grows with load, and passes up to `capacity`. */
function search(capacity: number, opts: { precision?: number; noise?: (load: number, n: number) => boolean; start?: number } = {}) {
  const cfg = sweepConfig({ by: 'speed', search: true, precision: opts.precision ?? 0.05 });
  const steps: SearchStep[] = [];
  for (let next = nextLoad(steps, cfg, opts.start ?? 1); next; next = nextLoad(steps, cfg, opts.start ?? 1)) {
    const n = steps.filter((s) => s.load === next!.load).length;
    const pass = opts.noise?.(next.load, n) ?? next.load <= capacity;
    const p99 = pass ? 50 + next.load : 400 + next.load;
    steps.push({ load: next.load, state: pass ? 'pass' : 'fail', offeredRps: next.load * 2, objectives: [objective(p99)], latencyP50Ms: 10 + (next.load > capacity * 0.6 ? next.load * 5 : 0) });
  }
  return { steps, cap: capacityOf(steps) };
}

describe('the capacity search (pure)', () => {
  it('brackets by doubling, then bisects to the precision; the capacity is the highest pass below the first fail', () => {
    const { steps, cap } = search(37);
    expect(steps.slice(0, 7).map((s) => s.load)).toEqual([1, 2, 4, 8, 16, 32, 64]);
    expect(cap.capacityLoad).toBeLessThanOrEqual(37);
    expect(cap.capacityLoad! * 1.05).toBeGreaterThanOrEqual(37 * 0.999);
    expect(cap).toMatchObject({ limitedBy: 'server', bindingObjective: 'p99<100ms', nonMonotone: false });
    // 50 + load → 400 + load at a few % more load: a cliff.
    expect(cap.boundary).toBe('cliff');
    expect(cap.capacityRps).toBe(cap.capacityLoad! * 2);
    expect(cap.kneeLoad).toBeLessThan(cap.capacityLoad!);
  });

  it('halves when the start already fails, and says when nothing passed or everything did', () => {
    const low = search(0.3);
    expect(low.steps.slice(0, 3).map((s) => s.load)).toEqual([1, 0.5, 0.25]);
    expect(low.cap.capacityLoad).toBeGreaterThan(0.28);
    expect(search(0.0001).cap).toMatchObject({ capacityLoad: null, limitedBy: 'none' });
    const high = search(1e9);
    expect(high.cap).toMatchObject({ limitedBy: 'range', capacityLoad: 4096 });
  });

  it('measures a pass above a fail once more before believing it (noise), and reports a server that stays non-monotone', () => {
    // Load 8 fails once by noise; its re-measurement passes; the search goes on above it.
    const noisy = search(37, { noise: (load, n) => (load === 8 && n === 0 ? false : load <= 37) });
    // The noisy fail at 8 is measured again before the answer; it passes, and the search goes on above it.
    const at8 = noisy.steps.filter((s) => s.load === 8).map((s) => s.state);
    expect(at8).toEqual(['fail', 'pass']);
    expect(noisy.cap.capacityLoad).toBeGreaterThan(30);
    expect(noisy.cap.nonMonotone).toBe(false);
    // Listed loads where 8 passed above a failing 4: 8 is measured again, then 4; a server that stays so is non-monotone.
    const cfg = sweepConfig({ by: 'speed', search: true });
    const at = (load: number, pass: boolean): SearchStep => ({ load, state: pass ? 'pass' : 'fail', offeredRps: load, objectives: [objective(pass ? 60 : 300)], latencyP50Ms: 10 });
    const odd = [at(1, true), at(2, true), at(4, false), at(8, true)];
    expect(nextLoad(odd, cfg, 1)).toEqual({ load: 8, remeasure: true });
    odd.push(at(8, true));
    expect(nextLoad(odd, cfg, 1)).toEqual({ load: 4, remeasure: true });
    odd.push(at(4, false));
    expect(nextLoad(odd, cfg, 1)).toEqual({ load: 3, remeasure: false });
    expect(capacityOf(odd)).toMatchObject({ capacityLoad: 2, nonMonotone: true });
  });

  it('a step the replayer could not keep ends the search: the tool was the limit, not the server', () => {
    const cfg = sweepConfig({ by: 'speed', search: true });
    const steps: SearchStep[] = [
      { load: 1, state: 'pass', offeredRps: 2, objectives: [objective(50)], latencyP50Ms: 10 },
      { load: 2, state: 'tool', offeredRps: 4, objectives: [objective(500)], latencyP50Ms: 10 },
    ];
    expect(nextLoad(steps, cfg, 1)).toBeNull();
    expect(capacityOf(steps)).toMatchObject({ capacityLoad: 1, limitedBy: 'replayer' });
  });

  it('a slow rise is a slope', () => {
    const steps: SearchStep[] = [
      { load: 10, state: 'pass', offeredRps: 10, objectives: [objective(95)], latencyP50Ms: 10 },
      { load: 11, state: 'fail', offeredRps: 11, objectives: [objective(104)], latencyP50Ms: 11 },
    ];
    expect(capacityOf(steps)).toMatchObject({ capacityLoad: 10, boundary: 'slope' });
  });

  it('a step whose sends fell behind, or whose verdict the replayer\'s own lateness decided, is flagged and not counted', () => {
    const cfg = sweepConfig({ by: 'speed', loads: [1], warmupUs: 0, stepDurationUs: 1e6 });
    const slo = parseSlo('p99<100ms');
    // 40 requests, each 90 ms from its send; sent `lateMs` after its schedule.
    const rows = (lateMs: (i: number) => number): RequestResult[] => Array.from({ length: 40 }, (_, i) => {
      const at = i * 25_000;
      const sent = at + lateMs(i) * 1000;
      return { index: i, traceSeq: i, scheduledUs: at, sentUs: sent, ttfbAtUs: sent + 1000, ttftAtUs: null, endUs: sent + 90_000, status: 200, errorKind: null, requestBytes: 10, responseBytes: 10, streamed: false, eventCount: 0, outputTokens: 1, expectedOutputTokens: 1, promptTokens: 1, capDelayed: false, label: null };
    });
    const judge = (late: (i: number) => number) => judgeStep({ slo, config: cfg }, { index: 0, load: 1, remeasure: false, runFile: null, results: rows(late), drainMs: 0 });
    expect(judge(() => 0.2)).toMatchObject({ state: 'pass', note: null });
    // Behind its schedule by 60 ms: never a server result, pass or fail.
    expect(judge(() => 60)).toMatchObject({ state: 'tool', note: expect.stringMatching(/fell behind/) });
    // 15 ms late on a few requests: p99 from the schedule 105 ms misses, from the send 90 ms meets — the tool decided it.
    expect(judge((i) => (i % 10 === 0 ? 15 : 0.2))).toMatchObject({ state: 'tool', note: expect.stringMatching(/decided this step's verdict/) });
    // The same lateness under a limit far above it: the verdict is the server's and the step counts, saying so.
    const loose = judgeStep({ slo: parseSlo('p99<500ms'), config: cfg }, { index: 0, load: 1, remeasure: false, runFile: null, results: rows((i) => (i % 10 === 0 ? 15 : 0.2)), drainMs: 0 });
    expect(loose).toMatchObject({ state: 'pass', note: expect.stringMatching(/did not decide the verdict/) });
  });

  it('validates its configuration, every problem at once', () => {
    expect(validateSweep(sweepConfig({ by: 'amplify', loads: [0.5, 2], search: true, precision: 2, stepDurationUs: 10 }))).toEqual([
      'give either the loads to measure (--speeds) or --search, not both',
      'an amplification factor must be ≥ 1, got 0.5',
      '--precision must be between 0 and 100 %, got 200 %',
      '--step-duration must be at least 1 s, got 0.00001 s',
    ]);
    expect(validateSweep(sweepConfig({ by: 'speed', loads: [1, 2] }))).toEqual([]);
  });
});

/**
 * An upstream of known capacity: `workers` slots, each request holds one for `serviceMs` (FIFO queue before it), so it
 * completes at most workers / serviceMs requests a second.
 */
async function fixedCapacityUpstream(workers: number, serviceMs: number) {
  let busy = 0;
  const queue: Array<() => void> = [];
  const release = () => {
    busy--;
    queue.shift()?.();
  };
  const answer = (res: ServerResponse, stream: boolean) => {
    if (stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('data: {"choices":[{"index":0,"delta":{"content":"ok"}}]}\n\ndata: [DONE]\n\n');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}');
    }
  };
  return startUpstream((req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    if (req.method !== 'POST') {
      res.writeHead(404).end();
      return;
    }
    const run = () => {
      busy++;
      setTimeout(() => {
        answer(res, /"stream"\s*:\s*true/.test(body.toString('utf8', 0, Math.min(body.length, 1 << 20))));
        release();
      }, serviceMs);
    };
    if (busy < workers) run();
    else queue.push(run);
  });
}

describe('tracewarp sweep against an upstream of known capacity (2 workers × 20 ms = 100 req/s)', () => {
  let upstream: Awaited<ReturnType<typeof fixedCapacityUpstream>>;
  let tmp: ReturnType<typeof tempDir>;
  let trace: string;
  beforeAll(async () => {
    tmp = tempDir();
    upstream = await fixedCapacityUpstream(2, 20);
    trace = join(tmp.dir, 'azure.trace.db');
    const out = captureOutput();
    expect(await main(['import', 'azure-llm', join(import.meta.dirname, '../fixtures/azure-conv-first-5min.csv'), '--out', trace], out)).toBe(0);
  }, 60_000);
  afterAll(async () => {
    await upstream?.close();
    tmp?.cleanup();
  });

  const sweep = (extra: string[]) => {
    const argv = ['sweep', trace, '--target', upstream.url, '--slo', 'p99<150ms,error_rate<1%', '--by', 'rate', '--search', '--start', '30', '--precision', '20%', '--step-duration', '2s', '--warmup', '0.5s', '--quiet', ...extra];
    return runSweepCommand(trace, {
      target: upstream.url, slo: 'p99<150ms,error_rate<1%', by: 'rate', search: true, start: 30, precision: 0.2, stepDurationUs: 2e6, warmupUs: 5e5,
      seed: 1, quiet: true, argv, json: false,
    }, captureOutput());
  };

  it('finds the capacity of constant arrivals within 20 % of the true 100 req/s (searched to 20 %), and a lower one for the trace\'s own bursts', async () => {
    const constant = await sweep(['--arrivals', 'constant']);
    const c = constant.result;
    expect(constant.code).toBe(0);
    expect(c.limitedBy).toBe('server');
    expect(c.capacityRps!).toBeGreaterThan(80);
    expect(c.capacityRps!).toBeLessThanOrEqual(102);
    expect(c.bindingObjective).toBe('p99<150ms');
    // Every step was judged on its measured part: the offered rate is the step's load (constant arrivals).
    for (const s of c.steps.filter((x) => x.state !== 'few')) expect(Math.abs(s.offeredRps - s.load) / s.load).toBeLessThan(0.1);
    expect(c.steps.every((s) => s.warmupRequests > 0)).toBe(true);
    // The first failing load is measured twice before the answer, and the spread between the two is reported.
    expect(c.remeasured.length).toBeGreaterThanOrEqual(1);
    expect(c.remeasured[0]!.latencyP99Ms).toHaveLength(2);
    // The HTML report: one file, opened in Chromium, the hockey stick and throughput drawn, nothing loaded.
    const html = join(tmp.dir, 'sweep.html');
    writeFileSync(html, sweepHtml(c));
    const browser = await launchChromium();
    try {
      const p = await openPage(browser, html);
      expect(p.errors).toEqual([]);
      expect(p.requests).toEqual([`file://${html}`]);
      const charts = await p.page.$$eval('.chart', (els) => els.map((e) => [e.getAttribute('data-chart'), Number(e.getAttribute('data-points')), e.querySelectorAll('canvas').length]));
      expect(charts.map((x) => x[0])).toEqual(['hockey-stick', 'throughput']);
      for (const [, points, canvases] of charts) {
        expect(points).toBeGreaterThan(0);
        expect(canvases).toBeGreaterThan(0);
      }
      expect(await p.page.textContent('h1')).toBe(`tracewarp sweep: Capacity ${c.capacityRps!.toFixed(1)} req/s (rate ${c.capacityLoad})`);
      mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
      await p.page.screenshot({ path: join(ROOT, 'test-artifacts', 'sweep-html.png'), fullPage: true });
      await p.close();
    } finally {
      await browser.close();
    }
    // The trace's own burstiness: the same mean rate queues in its bursts, so the capacity is lower.
    const bursty = (await sweep([])).result;
    expect(bursty.capacityRps!).toBeLessThan(c.capacityRps!);
    expect(bursty.capacityRps!).toBeGreaterThan(5);
  }, 180_000);

  it('exits 2 naming the problem for a sweep without run objectives', async () => {
    const out = captureOutput();
    expect(await main(['sweep', trace, '--target', upstream.url, '--slo', 'ttft<500ms', '--speeds', '1'], out)).toBe(2);
    expect(out.stderr.join('\n')).toMatch(/needs run objectives/);
  });
});
