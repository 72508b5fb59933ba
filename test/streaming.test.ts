import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startRecordingProxy } from '../src/capture/proxy.ts';
import { inspectTrace } from '../src/cli/inspect.ts';
import { startRecord } from '../src/cli/record.ts';
import { runReplay } from '../src/cli/replay.ts';
import { meetsSlo, parseSlo } from '../src/metrics/slo.ts';
import { readRunFile } from '../src/results/run-file.ts';
import { startSim, type SimServer } from '../src/sim/server.ts';
import { TraceReader } from '../src/trace/reader.ts';
import type { TraceRecord } from '../src/types.ts';
import { captureOutput, startUpstream, tempDir, waitFor, writeChatTrace } from './helpers.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const writeTrace = (path: string, offsetsUs: number[], promptTokens: number, outputTokens: number) =>
  writeChatTrace(path, offsetsUs, { promptTokens, outputTokens, stream: true, model: 'm' });

describe('replayed TTFT / ITL / TPOT against sim with known timing', () => {
  const tmp = tempDir();
  let sim: SimServer;
  beforeAll(async () => {
    // No prefix cache: the second replay below sends the same prompts (same seed), which a cache would serve at once.
    sim = await startSim({ prefillUsPerToken: 100, decodeStepMs: 10, perSeqStepMs: 0, maxBatch: 64, prefixCacheTokens: 0 });
  });
  afterAll(async () => {
    await sim.close();
    tmp.cleanup();
  });

  it('agrees with the configured prefill and decode step (TTFT ≈ 10 ms + 500 × 0.1 ms, ITL ≈ TPOT ≈ 10 ms)', async () => {
    const trace = join(tmp.dir, 'k.trace.db');
    writeTrace(trace, Array.from({ length: 8 }, (_, i) => i * 400_000), 500, 20); // one at a time: no batching effects
    const { summary, runPath } = await runReplay(trace, { target: sim.url, speed: 1, seed: 1, out: join(tmp.dir, 'k.run.db'), quiet: true, slo: 'ttft<200ms,tpot<30ms' }, captureOutput());
    expect(summary.completed).toBe(8);
    // Tolerances: timers on a shared 2-core machine fire up to a few ms late.
    expect(summary.ttftMs.p50!).toBeGreaterThanOrEqual(58);
    expect(summary.ttftMs.p50!).toBeLessThan(75);
    expect(summary.itlMs.p50!).toBeGreaterThanOrEqual(9);
    expect(summary.itlMs.p50!).toBeLessThan(12);
    expect(summary.tpotMs.p50!).toBeGreaterThanOrEqual(9.5);
    expect(summary.tpotMs.p50!).toBeLessThan(12);
    expect(summary.itlMs.count).toBe(8 * 19);
    expect(summary.shorterThanRecorded).toBe(0);
    // Goodput agrees with a per-request check of the same objectives.
    const { results } = readRunFile(runPath);
    const slo = parseSlo('ttft<200ms,tpot<30ms');
    expect(summary.goodput).toMatchObject({ slo: 'ttft<200ms,tpot<30ms', met: results.filter((r) => meetsSlo(r, slo)).length });
    expect(summary.goodput!.fraction).toBe(1);
    // Every replayed request carried a W3C traceparent whose trace id the result keeps.
    expect(results.every((r) => /^[0-9a-f]{32}$/.test(r.traceId ?? ''))).toBe(true);
    expect(new Set(results.map((r) => r.traceId)).size).toBe(8);
    const tight = await runReplay(trace, { target: sim.url, speed: 1, seed: 1, out: join(tmp.dir, 'k2.run.db'), quiet: true, slo: 'ttft<20ms' }, captureOutput());
    expect(tight.summary.goodput!.met).toBe(0);
  });

  it('at 2× shows the queueing the batch limit implies (Server-Timing queue and TTFT from the schedule)', async () => {
    const b1 = await startSim({ prefillUsPerToken: 10, decodeStepMs: 10, perSeqStepMs: 0, maxBatch: 1 });
    try {
      const trace = join(tmp.dir, 'q.trace.db');
      // Each request decodes 20 tokens ≈ 200 ms; at 1× they come every 300 ms (no queue), at 2× every 150 ms.
      writeTrace(trace, Array.from({ length: 12 }, (_, i) => i * 300_000), 50, 20);
      const one = await runReplay(trace, { target: b1.url, speed: 1, seed: 1, out: join(tmp.dir, 'q1.run.db'), quiet: true }, captureOutput());
      const two = await runReplay(trace, { target: b1.url, speed: 2, seed: 1, out: join(tmp.dir, 'q2.run.db'), quiet: true }, captureOutput());
      expect(one.summary.serverTimingMs!.queue!.p90!).toBeLessThan(15);
      // At 2× each request waits ~50 ms longer than the one before: the 12th about 550 ms.
      expect(two.summary.serverTimingMs!.queue!.max!).toBeGreaterThan(400);
      expect(two.summary.ttftFromScheduledMs.p90!).toBeGreaterThan(one.summary.ttftFromScheduledMs.p90! + 300);
    } finally {
      await b1.close();
    }
  });

  it('the proxy in the middle does not change the event gaps a client sees (same run, median within 1 ms)', async () => {
    const slow = await startSim({ prefillUsPerToken: 0, decodeStepMs: 20, perSeqStepMs: 0, maxBatch: 64 });
    const records: TraceRecord[] = [];
    const proxy = await startRecordingProxy({ upstream: slow.url, onRecord: (r) => records.push(r) });
    try {
      const trace = join(tmp.dir, 'g.trace.db');
      writeTrace(trace, Array.from({ length: 6 }, (_, i) => i * 200_000), 20, 25);
      const direct = await runReplay(trace, { target: slow.url, speed: 1, seed: 1, out: join(tmp.dir, 'gd.run.db'), quiet: true, warmup: 0 }, captureOutput());
      const proxied = await runReplay(trace, { target: proxy.url, speed: 1, seed: 1, out: join(tmp.dir, 'gp.run.db'), quiet: true, warmup: 0 }, captureOutput());
      expect(Math.abs(proxied.summary.itlMs.p50! - direct.summary.itlMs.p50!)).toBeLessThan(1);
      expect(proxied.summary.itlMs.count).toBe(direct.summary.itlMs.count);
      // The recorded per-event offsets show the same pace.
      await waitFor(() => records.length === 6);
      const gaps = records.flatMap((r) => r.eventOffsetsUs!.slice(2, -3).map((t, i, a) => (i === 0 ? null : t - a[i - 1]!)).filter((x): x is number => x !== null));
      expect(Math.abs(median(gaps) / 1000 - 20)).toBeLessThan(2);
      expect(records.every((r) => r.ttftUs! > r.ttfbUs! && r.features.traceContext === 'incoming')).toBe(true);
    } finally {
      await proxy.close(1000);
      await slow.close();
    }
  });
});

describe('capture of streams: terminal event, truncation, idle timeouts, compression, trace context', () => {
  it('records a stream that ends without [DONE] as stream_truncated, and a complete one with its usage', async () => {
    const up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"content":"hello"}}]}\n\n');
      res.write('data: {"choices":[{"delta":{"content":" world"}}]}\n\n');
      if (req.url!.includes('complete')) res.write('data: {"choices":[],"usage":{"completion_tokens":2}}\n\ndata: [DONE]\n\n');
      res.end();
    });
    const records: TraceRecord[] = [];
    const proxy = await startRecordingProxy({ upstream: up.url, onRecord: (r) => records.push(r) });
    try {
      for (const path of ['/v1/chat/completions?complete=1', '/v1/chat/completions']) {
        const res = await request(proxy.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}' });
        await res.body.text();
      }
      await waitFor(() => records.length === 2);
      const [done, cut] = [...records].sort((a, b) => a.seq - b.seq);
      expect(done).toMatchObject({ errorKind: null, outputTokens: 2, eventCount: 4, streamed: true });
      // No usage: output tokens counted from the streamed text with the tokenizer.
      expect(cut).toMatchObject({ errorKind: 'stream_truncated', outputTokens: 2, eventCount: 2 });
    } finally {
      await proxy.close(500);
      await up.close();
    }
  });

  it('marks the events without content (role chunk, usage, [DONE]) so inspect takes ITL between content events only; tool-call arguments are content', async () => {
    const tmp = tempDir();
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const up = await startUpstream(async (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n');
      await sleep(40);
      const tool = req.url!.includes('tool');
      for (let i = 0; i < 4; i++) {
        if (i > 0) await sleep(40);
        res.write(tool ? `data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\":${i}"}}]}}]}\n\n` : `data: {"choices":[{"delta":{"content":"tok${i} "}}]}\n\n`);
      }
      res.write('data: {"choices":[],"usage":{"completion_tokens":4}}\n\n');
      res.end('data: [DONE]\n\n');
    });
    const trace = join(tmp.dir, 'itl.trace.db');
    const session = await startRecord({ upstream: up.url, host: '127.0.0.1', port: 0, out: trace }, captureOutput());
    try {
      for (const path of ['/v1/chat/completions', '/v1/chat/completions?tool=1']) {
        const res = await request(session.proxy.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}' });
        await res.body.text();
      }
      await session.stop();
      const reader = new TraceReader(trace);
      const recs = [...reader.records()];
      reader.close();
      for (const r of recs) {
        expect(r.eventCount).toBe(7);
        expect(r.features.nonContentEvents).toEqual([0, 5, 6]);
        expect(r.ttftUs).toBe(r.eventOffsetsUs![1]);
        expect(r.ttftUs! / 1000).toBeGreaterThanOrEqual(35);
      }
      // 2 streams × 3 gaps between their 4 content events, each about 40 ms; the near-zero gaps to the usage chunk
      // and to [DONE] are not inter-token latencies.
      const itl = inspectTrace(trace).features.itlMs!;
      expect(itl.count).toBe(6);
      expect(itl.p50).toBeGreaterThan(30);
      expect(itl.p50).toBeLessThan(200);
    } finally {
      await up.close();
      tmp.cleanup();
    }
  });

  it('the idle timeout never cuts a healthy stream longer than it; a stalled one is cut and recorded', async () => {
    const up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const t = setInterval(() => {
        if (req.url === '/stall' && i === 3) return; // stops sending, keeps the connection open
        res.write(`data: {"choices":[{"delta":{"content":"t${i}"}}]}\n\n`);
        if (++i === 15) {
          clearInterval(t);
          res.end('data: [DONE]\n\n');
        }
      }, 100);
      res.on('close', () => clearInterval(t));
    });
    const records: TraceRecord[] = [];
    const proxy = await startRecordingProxy({ upstream: up.url, idleTimeoutMs: 400, onRecord: (r) => records.push(r) });
    try {
      const ok = await request(`${proxy.url}/healthy`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
      expect((await ok.body.text()).endsWith('data: [DONE]\n\n')).toBe(true); // 1.5 s stream, 400 ms idle limit
      const stalled = await request(`${proxy.url}/stall`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
      await expect(stalled.body.text()).rejects.toThrow();
      await waitFor(() => records.length === 2);
      const [a, b] = [...records].sort((x, y) => x.seq - y.seq);
      expect(a).toMatchObject({ errorKind: null, eventCount: 16 });
      expect(b).toMatchObject({ errorKind: 'upstream_timeout_body', eventCount: 3 });
    } finally {
      await proxy.close(500);
      await up.close();
    }
  });

  it('never compresses an event stream itself; the upstream\'s Content-Encoding passes unchanged', async () => {
    const up = await startUpstream((req, res) => {
      if (req.url === '/gz') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync('{"ok":true}'));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: [DONE]\n\n');
    });
    const proxy = await startRecordingProxy({ upstream: up.url, onRecord: () => undefined });
    try {
      const sse = await request(`${proxy.url}/sse`, { headers: { 'accept-encoding': 'gzip, br' } });
      expect(sse.headers['content-encoding']).toBeUndefined();
      expect(await sse.body.text()).toContain('data: [DONE]');
      const gz = await request(`${proxy.url}/gz`, { headers: { 'accept-encoding': 'gzip' } });
      expect(gz.headers['content-encoding']).toBe('gzip');
      expect(Buffer.from(await gz.body.arrayBuffer()).equals(gzipSync('{"ok":true}'))).toBe(true);
    } finally {
      await proxy.close(500);
      await up.close();
    }
  });

  it('keeps an incoming traceparent, adds one when absent, and records only which', async () => {
    const seen: Array<string | undefined> = [];
    const up = await startUpstream((req, res) => {
      seen.push(req.headers.traceparent as string | undefined);
      res.end('{}');
    });
    const tmp = tempDir();
    const trace = join(tmp.dir, 'tc.trace.db');
    const session = await startRecord({ upstream: up.url, host: '127.0.0.1', port: 0, out: trace }, captureOutput());
    const incoming = '00-3e92c51d067da53be271b2f9d966f2ff-008c3518a80ffa0a-01';
    await (await request(`${session.proxy.url}/a`, { headers: { traceparent: incoming } })).body.text();
    await (await request(`${session.proxy.url}/b`)).body.text();
    await session.stop();
    await up.close();
    expect(seen[0]).toBe(incoming);
    expect(seen[1]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const reader = new TraceReader(trace);
    const [a, b] = [...reader.records()];
    reader.close();
    expect(a!.features.traceContext).toBe('incoming');
    expect(b!.features.traceContext).toBe('added');
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(trace).toString('latin1')).not.toContain('3e92c51d067da53be271b2f9d966f2ff');
    tmp.cleanup();
  });
});

describe('a real client library through the proxy', () => {
  it('the official openai npm client streams a chat completion from sim through the recording proxy', async () => {
    const sim = await startSim({ decodeStepMs: 2 });
    const records: TraceRecord[] = [];
    const proxy = await startRecordingProxy({ upstream: sim.url, onRecord: (r) => records.push(r) });
    try {
      const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'sk-FAKE-not-a-key', maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: 'tracewarp-sim', messages: [{ role: 'user', content: 'Say something.' }], max_tokens: 12, stream: true, stream_options: { include_usage: true } });
      let text = '';
      let usage: { completion_tokens: number } | null = null;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? '';
        if (chunk.usage) usage = chunk.usage;
      }
      expect(usage?.completion_tokens).toBe(12);
      expect(text.trim().split(/\s+/)).toHaveLength(12);
      await waitFor(() => records.length === 1);
      expect(records[0]).toMatchObject({ protocol: 'openai-chat', streamed: true, outputTokens: 12, errorKind: null, params: { model: 'tracewarp-sim', max_tokens: 12, stream: true, 'stream_options.include_usage': true } });
    } finally {
      await proxy.close(500);
      await sim.close();
    }
  });
});
