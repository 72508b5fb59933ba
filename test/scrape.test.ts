import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReplay } from '../src/cli/replay.ts';
import { buildReport } from '../src/report/build.ts';
import { readRunFile } from '../src/results/run-file.ts';
import { MAX_SCRAPE_BYTES, parseMetricsText } from '../src/scrape/prometheus.ts';
import { Scraper } from '../src/scrape/scraper.ts';
import { queueSeries } from '../src/report/text-detail.ts';
import { startSim, type SimServer } from '../src/sim/server.ts';
import { captureOutput, startUpstream, tempDir, writeChatTrace } from './helpers.ts';

// Issue 11, the target's own metrics on the run's clock: Prometheus text parsed with a real parser, polled on an
// absolute schedule off the sending loop, stored in the run file, and sim's /metrics under vLLM's names.

const FIX = join(import.meta.dirname, 'fixtures/metrics');
const value = (text: string, name: string, labels: Record<string, string> = {}) => parseMetricsText(text).families.flatMap((f) => f.samples)
  .find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

describe('Prometheus text', () => {
  it('reads vLLM, TGI and Triton metric text: gauges and counters as exposed, histograms and summaries as _count and _sum', () => {
    const vllm = readFileSync(join(FIX, 'vllm.txt'), 'utf8');
    expect(value(vllm, 'vllm:num_requests_waiting')).toBe(7);
    expect(value(vllm, 'vllm:kv_cache_usage_perc', { model_name: 'Qwen/Qwen3-0.6B' })).toBeCloseTo(0.8431372549, 9);
    expect(value(vllm, 'vllm:request_success_total', { finished_reason: 'length' })).toBe(219);
    expect(value(vllm, 'vllm:prompt_tokens_total')).toBe(1_048_576);
    expect(value(vllm, 'vllm:time_to_first_token_seconds_count')).toBe(622);
    expect(value(vllm, 'vllm:time_to_first_token_seconds_sum')).toBeCloseTo(61.944134, 5);
    expect(parseMetricsText(vllm).families.flatMap((f) => f.samples).some((s) => s.name.endsWith('_bucket') || 'le' in s.labels)).toBe(false);
    const tgi = readFileSync(join(FIX, 'tgi.txt'), 'utf8');
    expect(value(tgi, 'tgi_queue_size')).toBe(23);
    expect(value(tgi, 'tgi_batch_current_size')).toBe(32);
    expect(value(tgi, 'tgi_request_duration_count')).toBe(1172);
    expect(value(tgi, 'tgi_request_queue_duration_sum')).toBe(164.221);
    const triton = readFileSync(join(FIX, 'triton.txt'), 'utf8');
    expect(value(triton, 'nv_inference_pending_request_count')).toBe(7);
    expect(value(triton, 'nv_inference_queue_summary_us_count')).toBe(161);
    expect(value(triton, 'nv_cpu_memory_used_bytes')).toBe(6442450944);
    const failures = parseMetricsText(triton).families.find((f) => f.name === 'nv_inference_request_failure')!;
    expect(failures.samples.map((x) => [x.labels.reason, x.value])).toEqual([['REJECTED', 0], ['BACKEND', 2]]);
    // Each server's queue gauge is the one the report draws as "the server queue".
    const queueOf = (text: string) => queueSeries(parseMetricsText(text).families.flatMap((f) => f.samples.map((x) => ({ source: 'u', name: x.name, labels: x.labels, type: f.type, tS: [0], values: [x.value] }))))?.name;
    expect([vllm, tgi, triton].map(queueOf)).toEqual(['vllm:num_requests_waiting', 'tgi_queue_size', 'nv_inference_pending_request_count']);
    expect(parseMetricsText('# TYPE x gauge\nx NaN\ny +Inf\n').families.flatMap((f) => f.samples)).toEqual([]);
  });

  it('refuses text that is not Prometheus, and text over the cap, with TW_SCRAPE', () => {
    expect(() => parseMetricsText('<html><body>Not Found</body></html>')).toThrow(expect.objectContaining({ code: 'TW_SCRAPE', message: expect.stringMatching(/not Prometheus text/) }));
    expect(() => parseMetricsText(`x 1\n${'#'.repeat(MAX_SCRAPE_BYTES)}`)).toThrow(expect.objectContaining({ code: 'TW_SCRAPE', message: expect.stringMatching(/cap/) }));
    const many = Array.from({ length: 2500 }, (_, i) => `m{i="${i}"} ${i}`).join('\n');
    const r = parseMetricsText(many);
    expect(r.families.flatMap((f) => f.samples)).toHaveLength(2000);
    expect(r.dropped).toBe(500);
  });
});

describe('scraping a target', () => {
  let sim: SimServer;
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(async () => {
    tmp = tempDir();
    sim = await startSim({ maxBatch: 2, decodeStepMs: 5, perSeqStepMs: 0 });
  });
  afterAll(async () => {
    await sim.close();
    tmp.cleanup();
  });

  it("sees sim's queue grow under load and empty after it; polls on an absolute schedule", async () => {
    const scraper = new Scraper({ urls: [`${sim.url}/metrics`], intervalMs: 50 });
    scraper.start();
    const chat = () => request(`${sim.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ max_tokens: 30, stream: true, messages: [{ role: 'user', content: 'hi' }] }) }).then((r) => r.body.text());
    await Promise.all(Array.from({ length: 8 }, chat)); // 4 rounds of 2 at 30 × 5 ms: about 600 ms
    await new Promise((r) => setTimeout(r, 150));
    await scraper.stop();
    const waiting = scraper.samples().filter((s) => s.name === 'vllm:num_requests_waiting');
    expect(Math.max(...waiting.map((s) => s.value))).toBeGreaterThanOrEqual(4);
    expect(waiting.at(-1)!.value).toBe(0);
    expect(waiting.every((s) => s.labels.model_name === 'tracewarp-sim' && s.type === 'gauge')).toBe(true);
    const done = scraper.samples().filter((s) => s.name === 'vllm:request_success_total');
    expect(done.at(-1)!.value).toBe(8);
    expect(scraper.samples().filter((s) => s.name === 'vllm:generation_tokens_total').at(-1)!.value).toBe(240);
    const h = scraper.health()[0]!;
    expect(h.failures).toBe(0);
    // About one scrape per 50 ms over ~750 ms; none skipped for drift.
    expect(h.scrapes).toBeGreaterThanOrEqual(10);
  });

  it('serves a real metrics text from a fixture; a refused or broken endpoint is counted and never thrown', async () => {
    const text = readFileSync(join(FIX, 'vllm.txt'), 'utf8');
    const up = await startUpstream((req, res) => {
      if (req.url === '/metrics') res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text);
      else res.writeHead(404).end('<html>no</html>');
    });
    const refused = await startUpstream((_q, r) => r.end());
    const refusedUrl = `${refused.url}/metrics`;
    await refused.close();
    const scraper = new Scraper({ urls: [`${up.url}/metrics`, `${up.url}/nope`, refusedUrl], intervalMs: 40 });
    scraper.start();
    await new Promise((r) => setTimeout(r, 200));
    await scraper.stop();
    await up.close();
    const [ok, notFound, gone] = scraper.health();
    expect(ok!.failures).toBe(0);
    expect(scraper.samples().find((s) => s.name === 'vllm:num_requests_waiting')!.value).toBe(7);
    expect(notFound!.failures).toBe(notFound!.scrapes);
    expect(notFound!.lastError).toBe('HTTP 404');
    expect(gone!.failures).toBeGreaterThan(0);
    expect(gone!.lastError).toMatch(/ECONNREFUSED|connect/);
  });

  it('replay --scrape stores the samples in the run file on the run clock; the report draws them', async () => {
    const trace = join(tmp.dir, 's.trace.db');
    writeChatTrace(trace, Array.from({ length: 12 }, (_, i) => i * 40_000), { outputTokens: 40, stream: true });
    const run = join(tmp.dir, 's.run.db');
    const { summary } = await runReplay(trace, { target: sim.url, speed: 1, seed: 1, out: run, quiet: true, scrape: [`${sim.url}/metrics`], scrapeIntervalMs: 50 }, captureOutput());
    expect(summary.completed).toBe(12);
    const { meta, scrape, results } = readRunFile(run);
    const waiting = scrape.filter((s) => s.name === 'vllm:num_requests_waiting');
    // 12 requests against 2 slots: the queue is seen on the run's clock, while requests were in flight.
    expect(Math.max(...waiting.map((s) => s.value))).toBeGreaterThanOrEqual(3);
    const lastEnd = Math.max(...results.map((r) => r.endUs!));
    const peak = waiting.find((s) => s.value === Math.max(...waiting.map((w) => w.value)))!;
    expect(peak.tUs).toBeGreaterThan(0);
    expect(peak.tUs).toBeLessThan(lastEnd);
    expect((meta.scrape as { health: Array<{ failures: number }> }).health[0]!.failures).toBe(0);
    const series = buildReport([run]).detail!.scrape.find((s) => s.name === 'vllm:num_requests_waiting')!;
    expect(series.values).toEqual(waiting.map((s) => s.value));
    expect(series.tS[0]).toBe(Math.round(waiting[0]!.tUs / 1000) / 1000);
  });
});
