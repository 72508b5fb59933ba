import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecord } from '../src/cli/record.ts';
import { runReplay } from '../src/cli/replay.ts';
import { main } from '../src/cli/main.ts';
import { nearestRank } from '../src/metrics/exact.ts';
import { Metrics, type EncodedMetrics } from '../src/metrics/metrics.ts';
import { summarize } from '../src/metrics/summary.ts';
import { buildReport } from '../src/report/build.ts';
import { formatDetail } from '../src/report/text-detail.ts';
import { inspectTrace } from '../src/cli/inspect.ts';
import { readRunFile } from '../src/results/run-file.ts';
import { completed, type RequestResult } from '../src/results/types.ts';
import { startSim, type SimServer } from '../src/sim/server.ts';
import { captureOutput, tempDir } from './helpers.ts';

// Issue 11, the results core: metrics added one result at a time, serialized into the run file, merged exactly across
// run files; the report's numbers checked against numbers computed here, independently, from the per-request rows.

const exactMs = (values: number[], q: number) => nearestRank(Float64Array.from(values).sort(), q) / 1000;

describe('report: merged metrics, breakdowns and timelines from run files', () => {
  let sim: SimServer;
  let tmp: ReturnType<typeof tempDir>;
  let runA: string;
  let runB: string;
  let trace: string;
  beforeAll(async () => {
    tmp = tempDir();
    sim = await startSim({ prefillUsPerToken: 10, decodeStepMs: 4, perSeqStepMs: 0.5, maxBatch: 4 });
    trace = join(tmp.dir, 'r.trace.db');
    const s = await startRecord({ upstream: sim.url, host: '127.0.0.1', port: 0, out: trace }, captureOutput());
    const post = (path: string, body: unknown) => request(s.proxy.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.body.text());
    const chat = (stream: boolean, n: number) => ({ model: 'tracewarp-sim', max_tokens: 8 + n, stream, messages: [{ role: 'user', content: 'word '.repeat(20 + 30 * n) }] });
    // 24 requests in about 1.2 s: streamed and whole chats, and embeddings, several in flight at once.
    const sent: Array<Promise<string>> = [];
    for (let i = 0; i < 24; i++) {
      sent.push(i % 4 === 3 ? post('/v1/embeddings', { model: 'tracewarp-sim', input: 'embed this '.repeat(i + 1) }) : post('/v1/chat/completions', chat(i % 4 !== 2, i % 5)));
      await new Promise((r) => setTimeout(r, 50));
    }
    await Promise.all(sent);
    await s.stop();
    runA = join(tmp.dir, 'a.run.db');
    runB = join(tmp.dir, 'b.run.db');
    await runReplay(trace, { target: sim.url, speed: 2, seed: 1, out: runA, quiet: true, slo: 'ttft<200ms' }, captureOutput());
    await runReplay(trace, { target: sim.url, speed: 2, seed: 1, out: runB, quiet: true, slo: 'ttft<200ms' }, captureOutput());
  }, 60_000);
  afterAll(async () => {
    await sim.close();
    tmp.cleanup();
  });

  it('stores the run metrics in the run file; they give the summary counted from the rows', () => {
    const { meta, results } = readRunFile(runA);
    expect(meta.format_version).toBe(6);
    const stored = meta.metrics as EncodedMetrics;
    expect(stored.slo).toBe('ttft<200ms');
    const fromRows = summarize(results, undefined, undefined);
    const decoded = Metrics.decode({ ...stored, slo: null }, null).summary();
    for (const k of ['latencyMs', 'latencyFromScheduledMs', 'ttftMs', 'ttfbMs', 'latenessMs', 'itlMs', 'tpotMs'] as const) expect(decoded[k]).toEqual(fromRows[k]);
    expect(decoded.completed).toBe(fromRows.completed);
    expect(results.every((r) => r.route && r.protocol)).toBe(true);
  });

  it("a report's figures equal figures computed independently from the per-request rows", () => {
    const { results } = readRunFile(runA);
    const r = buildReport([runA]);
    const done = results.filter(completed);
    const lat = done.map((x) => x.endUs! - x.sentUs!);
    expect(r.summary.requests).toBe(24);
    expect(r.summary.completed).toBe(done.length);
    expect(done.length).toBe(24);
    // HDR histograms hold 3 significant digits: within 0.1 % of the exact nearest-rank value; the max is exact.
    for (const [q, key] of [[0.5, 'p50'], [0.9, 'p90'], [0.99, 'p99']] as const) expect(Math.abs(r.summary.latencyMs[key]! - exactMs(lat, q))).toBeLessThanOrEqual(exactMs(lat, q) * 0.001 + 0.001);
    expect(r.summary.latencyMs.max).toBe(Math.max(...lat) / 1000);
    const streamed = done.filter((x) => x.streamed);
    expect(r.summary.ttftMs.count).toBe(streamed.length);
    expect(r.summary.goodput!.eligible).toBe(24);

    const d = r.detail!;
    const routes = Object.fromEntries(d.breakdowns.route.map((b) => [b.key, b.requests]));
    expect(routes).toEqual({ 'POST /v1/chat/completions': 18, 'POST /v1/embeddings': 6 });
    expect(Object.fromEntries(d.breakdowns.streamed.map((b) => [b.key, b.requests]))).toEqual({ streamed: 12, 'not streamed': 12 });
    expect(Object.fromEntries(d.breakdowns.protocol.map((b) => [b.key, b.requests]))).toEqual({ 'openai-chat': 18, 'openai-embeddings': 6 });
    const emb = d.breakdowns.route.find((b) => b.key === 'POST /v1/embeddings')!;
    const embLat = done.filter((x) => x.route === 'POST /v1/embeddings').map((x) => x.endUs! - x.sentUs!);
    expect(emb.latencyMs.max).toBe(Math.max(...embLat) / 1000);
    expect(emb.ttftMs.count).toBe(0);

    const t = d.timeline;
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    expect(sum(t.scheduled)).toBe(24);
    expect(sum(t.sent)).toBe(24);
    expect(sum(t.completed)).toBe(done.length);
    expect(sum(t.outputTokens)).toBe(r.summary.outputTokens);
    expect(Math.max(...t.inFlight)).toBeGreaterThanOrEqual(2);
    // Bin 0's latency p50, from the rows that ended in it.
    const inBin0 = done.filter((x) => x.endUs! < 1e6).map((x) => x.endUs! - x.sentUs!);
    expect(t.latencyP50Ms[0]).toBe(inBin0.length ? exactMs(inBin0, 0.5) : null);
    expect(sum(d.distributions.promptTokens.counts)).toBe(results.filter((x) => x.promptTokens !== null).length);
    expect(d.distributions.latencySpectrum.ms.at(-1)).toBe(r.summary.latencyMs.max);
  });

  it('several run files merge exactly: the merged histograms give what the rows of both give', () => {
    const rows: RequestResult[] = [...readRunFile(runA).results, ...readRunFile(runB).results];
    const merged = buildReport([runA, runB]);
    const fromRows = summarize(rows);
    expect(merged.summary.requests).toBe(48);
    for (const k of ['latencyMs', 'latencyFromScheduledMs', 'ttftMs', 'ttftFromScheduledMs', 'ttfbMs', 'latenessMs', 'itlMs', 'tpotMs', 'outputTokensPerSecond'] as const) expect(merged.summary[k]).toEqual(fromRows[k]);
    expect(merged.summary.errorsByKind).toEqual(fromRows.errorsByKind);
    expect(merged.summary.goodput!.eligible).toBe(48);
    expect(merged.detail!.runs.map((x) => x.requests)).toEqual([24, 24]);
    expect(merged.detail!.runs[0]!.digest).toBe(merged.detail!.runs[1]!.digest);
    expect(formatDetail(merged.detail!)).not.toContain('different workloads');
    // Run files of two workloads pool their figures, and the report says so.
    const mixed = { ...merged.detail!, runs: [merged.detail!.runs[0]!, { ...merged.detail!.runs[1]!, digest: 'other' }] };
    expect(formatDetail(mixed)).toContain(`NOTE these run files replayed 2 different workloads (digests ${merged.detail!.runs[0]!.digest}, other)`);
  });

  it('report RUN RUN --format json has the versioned schema; a bad format exits 2 naming it', async () => {
    const out = captureOutput();
    expect(await main(['report', runA, runB, '--format', 'json'], out)).toBe(0);
    const j = JSON.parse(out.stdout.join('\n'));
    expect(j.schemaVersion).toBe(1);
    expect(j.requests).toBe(48);
    expect(j.runs).toHaveLength(2);
    expect(Object.keys(j.breakdowns)).toEqual(['route', 'model', 'protocol', 'streamed', 'label', 'turn']);
    const bad = captureOutput();
    expect(await main(['report', runA, '--format', 'pdf'], bad)).toBe(2);
    expect(bad.stderr.join('\n')).toMatch(/--format: 'pdf' is not one of text, json, md, html, csv/);
  });

  it('inspect gives every distribution per route, protocol and streamed vs not', async () => {
    const rep = inspectTrace(trace);
    expect(Object.fromEntries(Object.entries(rep.featuresBy.route).map(([k, f]) => [k, f.latencyMs!.count]))).toEqual({ 'POST /v1/chat/completions': 18, 'POST /v1/embeddings': 6 });
    expect(rep.featuresBy.streamed.streamed!.ttftMs!.count).toBe(12);
    expect(rep.featuresBy.streamed['not streamed']!.ttftMs).toBeUndefined();
    expect(rep.featuresBy.protocol['openai-embeddings']!.promptTokens!.count).toBe(6);
    // The whole trace's latency is the union of its routes'.
    expect(rep.features.latencyMs!.max).toBe(Math.max(...Object.values(rep.featuresBy.route).map((f) => f.latencyMs!.max)));
    const out = captureOutput();
    expect(await main(['inspect', trace], out)).toBe(0);
    expect(out.stdout.join('\n')).toMatch(/by route:[\s\S]*POST \/v1\/embeddings/);
  });
});
