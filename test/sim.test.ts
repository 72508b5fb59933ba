import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { EventSplitter } from '../src/protocols/sse.ts';
import { createRng } from '../src/rng.ts';
import { DEFAULT_TIMING, Engine } from '../src/sim/engine.ts';
import { startSim, type SimServer } from '../src/sim/server.ts';
import { textOfTokens } from '../src/synth/text.ts';
import { countTokens } from '../src/tokens.ts';

async function streamChat(url: string, promptTokens: number, maxTokens: number) {
  const t0 = performance.now();
  const res = await request(`${url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: textOfTokens(promptTokens, createRng(promptTokens)) }], max_tokens: maxTokens, stream: true }),
  });
  const split = new EventSplitter('sse');
  const events: Array<{ at: number; data: string }> = [];
  for await (const chunk of res.body) for (const e of split.push(chunk as Buffer)) events.push({ at: performance.now() - t0, data: e.data });
  return { status: res.statusCode, contentType: res.headers['content-type'], events, end: performance.now() - t0 };
}

describe('tracewarp sim', () => {
  let sim: SimServer;
  beforeAll(async () => {
    sim = await startSim({ prefillUsPerToken: 100, decodeStepMs: 10, perSeqStepMs: 2, maxBatch: 2 });
  });
  afterAll(() => sim.close());

  it('serves /health and /v1/models', async () => {
    expect(await (await request(`${sim.url}/health`)).body.json()).toMatchObject({ status: 'ok' });
    const models = (await (await request(`${sim.url}/v1/models`)).body.json()) as { data: Array<{ id: string }> };
    expect(models.data[0]!.id).toBe('tracewarp-sim');
  });

  it('streams SSE chunks, one token each, then usage and [DONE]; TTFT follows prefill, ITL the decode step', async () => {
    const r = await streamChat(sim.url, 1000, 20);
    expect(r.status).toBe(200);
    expect(r.contentType).toBe('text/event-stream');
    expect(r.events.at(-1)!.data).toBe('[DONE]');
    const usage = JSON.parse(r.events.at(-2)!.data).usage;
    expect(usage).toEqual({ prompt_tokens: 1000, completion_tokens: 20, total_tokens: 1020 });
    const tokens = r.events.filter((e) => e.data.includes('"content":"') && !e.data.includes('"content":""'));
    expect(tokens).toHaveLength(20);
    // First token after one step with prefill: 10 ms + 1000 × 100 µs = 110 ms (later on a loaded machine, never sooner).
    expect(tokens[0]!.at).toBeGreaterThanOrEqual(105);
    expect(tokens[0]!.at).toBeLessThan(400);
    // Then one token per 10 ms step. The median gap, not the span, so that this process being late to read one
    // token (a loaded machine) does not count as a short step.
    const gaps = tokens.slice(1).map((t, i) => t.at - tokens[i]!.at).sort((a, b) => a - b);
    expect(gaps[Math.floor(gaps.length / 2)]).toBeGreaterThanOrEqual(9);
    expect(gaps[Math.floor(gaps.length / 2)]).toBeLessThan(20);
  });

  it('answers non-streamed requests with usage; output length is max_tokens', async () => {
    const res = await request(`${sim.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'one two three', max_tokens: 7 }) });
    const body = (await res.body.json()) as { choices: Array<{ text: string }>; usage: { prompt_tokens: number; completion_tokens: number } };
    expect(body.usage).toMatchObject({ prompt_tokens: countTokens('one two three'), completion_tokens: 7 });
    expect(countTokens(body.choices[0]!.text)).toBe(7);
  });

  it('runs at most B sequences together and queues the rest', async () => {
    // B = 2: four identical requests → two finish after ~N steps, the other two only after them.
    const all = await Promise.all(Array.from({ length: 4 }, () => streamChat(sim.url, 10, 10)));
    const ends = all.map((r) => r.end).sort((a, b) => a - b);
    // Batch of 2: step = 10 + 2 ms; 10 tokens ≈ 120 ms per wave.
    expect(ends[1]!).toBeLessThan(200);
    expect(ends[2]! - ends[1]!).toBeGreaterThan(90);
  });

  it('answers malformed bodies with 4xx and keeps serving (never crashes)', async () => {
    const bodies: Array<[string, string]> = [
      ['/v1/embeddings', 'null'], ['/v1/embeddings', '[1]'], ['/v1/chat/completions', 'null'], ['/v1/completions', '"x"'],
      ['/v2/models/ocr-det/infer', 'null'], ['/v2/models/ocr-det/infer', '{"inputs":"x"}'],
      ['/v2/models/ocr-det/infer', '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3,32,32],"data":[]}],"outputs":"x"}'],
      ['/v2/models/ocr-det/infer', '{"inputs":[null]}'],
    ];
    for (const [path, body] of bodies) {
      const r = await request(sim.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await r.body.text();
      // 501 where the optional ONNX packages are not installed.
      expect([400, 501], `${path} ${body}`).toContain(r.statusCode);
    }
    expect((await request(`${sim.url}/health`)).statusCode).toBe(200);
  });

  it('refuses a request that does not fit the context window, as vLLM does', async () => {
    const r = await request(`${sim.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 1_000_000 }) });
    expect(r.statusCode).toBe(400);
    expect(((await r.body.json()) as { error: { message: string } }).error.message).toContain('maximum context length is 131072 tokens');
  });

  it('rejects bad requests like an OpenAI server', async () => {
    const bad = await request(`${sim.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages":' });
    expect(bad.statusCode).toBe(400);
    expect(((await bad.body.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    const none = await request(`${sim.url}/v1/nothing`, { method: 'POST', body: '{}' });
    expect(none.statusCode).toBe(404);
    await none.body.dump();
  });
});

describe('sim engine: a bounded KV cache and a model load (issue 12)', () => {
  const timing = { ...DEFAULT_TIMING, prefillUsPerToken: 0, decodeStepMs: 1, perSeqStepMs: 0 };
  const run = (engine: Engine, seqs: Array<{ prompt: number; target: number }>) => Promise.all(seqs.map((q) => new Promise<{ tokens: number[]; startedAt: number; firstAt: number }>((resolve) => {
    const tokens: number[] = [];
    let startedAt = -1;
    let firstAt = -1;
    const t0 = performance.now();
    engine.submit({ promptTokens: q.prompt, targetTokens: q.target, generated: 0,
      onStart: () => { startedAt = startedAt < 0 ? performance.now() - t0 : startedAt; },
      onToken: (i) => { if (i === 0) firstAt = performance.now() - t0; tokens.push(i); },
      onDone: () => resolve({ tokens, startedAt, firstAt }) });
  })));

  it('admits only what fits, preempts the newest sequence when growth overflows, and every sequence still gets each token once', async () => {
    const engine = new Engine({ ...timing, kvCacheTokens: 1000 });
    let peak = 0;
    const probe = setInterval(() => { peak = Math.max(peak, engine.kvTokens()); }, 1);
    // Two 450-token prompts fit (901 + 451 > 1000 would not: the third waits); at 51 generated tokens each they hold 1002.
    const out = await run(engine, [{ prompt: 450, target: 100 }, { prompt: 450, target: 100 }, { prompt: 450, target: 20 }]);
    clearInterval(probe);
    for (const [i, o] of out.entries()) expect(o.tokens).toEqual(Array.from({ length: i === 2 ? 20 : 100 }, (_, k) => k));
    expect(engine.counters.preemptions).toBeGreaterThanOrEqual(1);
    expect(peak).toBeLessThanOrEqual(1000);
    expect(engine.counters.finished).toBe(3);
  });

  it('unbounded (the default) never preempts', async () => {
    const engine = new Engine(timing);
    await run(engine, [{ prompt: 450, target: 100 }, { prompt: 450, target: 100 }, { prompt: 450, target: 20 }]);
    expect(engine.counters.preemptions).toBe(0);
  });

  it('answers nothing until the model is loaded; requests queue meanwhile', async () => {
    const engine = new Engine({ ...timing, modelLoadMs: 300 });
    const pending = run(engine, [{ prompt: 10, target: 3 }, { prompt: 10, target: 3 }]);
    expect(engine.load()).toEqual({ waiting: 2, running: 0 });
    const out = await pending;
    for (const o of out) expect(o.firstAt).toBeGreaterThanOrEqual(295);
  });
});

describe('sim prefix cache (issue 13)', () => {
  let sim: SimServer;
  beforeAll(async () => {
    sim = await startSim({ prefillUsPerToken: 100, decodeStepMs: 5, perSeqStepMs: 0, maxBatch: 4 });
  });
  afterAll(() => sim.close());

  const chat = async (messages: Array<{ role: string; content: string }>) => {
    const t0 = performance.now();
    const res = await request(`${sim.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages, max_tokens: 2, stream: true }) });
    const reader = new EventSplitter('sse');
    let first = 0;
    for await (const c of res.body) {
      for (const e of reader.push(c as Buffer)) if (!first && e.data.includes('"content":"') && !e.data.includes('"content":""')) first = performance.now() - t0;
    }
    return first;
  };
  const counters = async () => {
    const text = await (await request(`${sim.url}/metrics`)).body.text();
    const value = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)![1]);
    return { queries: value('vllm:prefix_cache_queries_total'), hits: value('vllm:prefix_cache_hits_total') };
  };

  it('a repeated prefix costs no prefill: lower TTFT, and the hits and queries are counted in tokens', async () => {
    const rng = createRng(21);
    const first = [{ role: 'system', content: textOfTokens(2000, rng) }, { role: 'user', content: textOfTokens(2000, rng) }];
    const cold = await chat(first);
    // 4,000 tokens × 100 µs = 400 ms of prefill when nothing is cached.
    expect(cold).toBeGreaterThanOrEqual(395);
    expect(await counters()).toEqual({ queries: 4000, hits: 0 });
    // The next turn: the whole first prompt, an answer and a question (800 tokens more): only those are prefilled.
    const next = [...first, { role: 'assistant', content: textOfTokens(400, rng) }, { role: 'user', content: textOfTokens(400, rng) }];
    const warm = await chat(next);
    expect(warm).toBeLessThan(cold - 200);
    expect(await counters()).toEqual({ queries: 8800, hits: 4000 });
    // Sharing only the system prompt: its 2,000 tokens (125 whole blocks) hit, nothing after.
    await chat([first[0]!, { role: 'user', content: textOfTokens(300, rng) }]);
    expect(await counters()).toEqual({ queries: 11_100, hits: 6000 });
  });

  it('evicts the least recently used blocks past its capacity, and 0 turns it off', async () => {
    const { PrefixCache, blockHashes } = await import('../src/sim/prefix-cache.ts');
    const ids = (from: number) => Array.from({ length: 32 }, (_, i) => from + i);
    const cache = new PrefixCache(32);
    const a = blockHashes(ids(0));
    const b = blockHashes(ids(1000));
    expect(a).toHaveLength(2);
    expect(cache.lookup(32, a)).toBe(0);
    expect(cache.lookup(32, a)).toBe(32);
    expect(cache.lookup(32, b)).toBe(0);
    expect(cache.lookup(32, a)).toBe(0); // b's two blocks pushed a's out
    // A block hits only when everything before it matches (chained hashes).
    const c = blockHashes([...ids(1000).slice(0, 16), ...ids(0).slice(16)]);
    expect(c[0]).toBe(b[0]);
    expect(c[1]).not.toBe(a[1]);
    const off = new PrefixCache(0);
    off.lookup(32, a);
    expect(off.lookup(32, a)).toBe(0);
    expect(off).toMatchObject({ queries: 64, hits: 0 });
  });
});
