import { observeAnswer } from '../src/protocols/observe.ts';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LLM_LAYOUT } from '../src/anonymize/keys.ts';
import { describeJson } from '../src/anonymize/skeleton.ts';
import { templateRoute } from '../src/anonymize/route.ts';
import { EventSplitter } from '../src/protocols/sse.ts';
import { createRng } from '../src/rng.ts';
import { synthesizeJson } from '../src/synth/json.ts';
import { promptTokenIds, textOfTokens } from '../src/synth/text.ts';
import { countTokens, decodeTokens } from '../src/tokens.ts';
import { TraceReader } from '../src/trace/reader.ts';
import { TraceWriter } from '../src/trace/writer.ts';
import type { TraceRecord } from '../src/types.ts';
import { tempDir } from './helpers.ts';

describe('JSON skeletons', () => {
  it('keep structure, lengths and load params, and drop values', () => {
    const v = { model: 'llama-3', max_tokens: 64, stream: true, temperature: 0.2, user: 'bob@example.com', messages: [{ role: 'user', content: 'secret text' }], tensor: [1.5, 2.5, 3], ids: [1, 2, 3, 4] };
    const d = describeJson(v, { layout: LLM_LAYOUT });
    const s = JSON.stringify(d);
    expect(s).not.toContain('bob@example.com');
    expect(s).not.toContain('secret');
    expect(d.params).toEqual({ model: 'llama-3', max_tokens: 64, stream: true, temperature: 0.2 });
    // user string, messages (a uniform array of 1) and its content, the two numeric arrays.
    expect(d.sizes).toEqual([15, 1, 11, 3, 4]);
  });

  it('rebuild a value with the same skeleton and sizes (round trip)', () => {
    const v = { a: [{ x: 'abc', y: [1, 2] }, { x: 'de', y: [3] }], b: { c: null, d: false, e: [[0.5, 1.5], [2.5, 3.5]] }, model: 'm', n: 2 };
    const d = describeJson(v, { layout: LLM_LAYOUT });
    const rebuilt = synthesizeJson(d.skeleton, d.sizes, d.params, createRng(1));
    // Keys the trace keeps as tokens come back as other keys of the same length: equal up to the fingerprint.
    const lengths = (x: unknown) => JSON.stringify(x).replace(/\{k:[0-9a-f]{8}:(\d+)\}/g, '{k:$1}');
    expect(lengths(describeJson(rebuilt, { layout: LLM_LAYOUT }))).toBe(lengths(d));
    expect(Object.keys(rebuilt as object).map((k) => k.length)).toEqual([1, 1, 5, 1]);
  });

  it('never sends a token key onto a key the trace kept (found by CI: a token became `n` and overwrote the real `n`)', async () => {
    const { keyOfToken } = await import('../src/anonymize/keys.ts');
    let hex = 0;
    while (keyOfToken(`{k:${hex.toString(16).padStart(8, '0')}:1}`, new Set()) !== 'n') hex++;
    const token = `{k:${hex.toString(16).padStart(8, '0')}:1}`;
    const rebuilt = synthesizeJson({ t: 'o', k: [[token, { t: 's' }], ['n', { t: 'p', name: 'n' }]] }, [3], { n: 2 }, createRng(1)) as Record<string, unknown>;
    expect(Object.keys(rebuilt)).toHaveLength(2);
    expect(rebuilt.n).toBe(2);
  });

  it('keep a key only as a word of its protocol; any other key is a keyed token of its length (issue 10, class 2)', () => {
    const d = describeJson({ 'alice@example.com': 1, '1234567': 2, normal_key: 3, max_tokens: 4 }, { layout: LLM_LAYOUT });
    const sk = JSON.stringify(d.skeleton);
    for (const k of ['alice', '1234567', 'normal_key']) expect(sk).not.toContain(k);
    expect(sk).toContain('"max_tokens"');
    expect(sk).toMatch(/"\{k:[0-9a-f]{8}:17\}"/);
    // JSON no protocol defines keeps no key at all.
    expect(JSON.stringify(describeJson({ max_tokens: 4 }).skeleton)).toMatch(/^\{"t":"o","k":\[\["\{k:[0-9a-f]{8}:10\}"/);
  });

  it('template routes: IDs and encoded segments become {id}; queries are dropped', () => {
    expect(templateRoute('/v1/chat/completions?key=sk-123')).toBe('/v1/chat/completions');
    expect(templateRoute('/v1/files/12345/content')).toBe('/v1/files/{id}/content');
    expect(templateRoute('/v1/threads/3f2b1c9e-1d2a-4b3c-9d8e-0123456789ab/runs')).toBe('/v1/threads/{id}/runs');
    // A word no API defines is somebody's name (class 4): a keyed token.
    expect(templateRoute('/users/12345/files/3f2b1c9e-1d2a-4b3c-9d8e-0123456789ab')).toMatch(/^\/\{seg:[0-9a-f]{8}\}\/\{id\}\/files\/\{id\}$/);
    expect(templateRoute('/api/12345:predict')).toBe('/api/{id}:predict');
  });

  it('template routes: a model or version position keeps its identifier (never a number), or says it was not kept', () => {
    // The examples: each used to replay as /predictions/6797, /v2/models/3928/versions/2842/infer, …
    expect(templateRoute('/predictions/densenet161')).toBe('/predictions/densenet161');
    expect(templateRoute('/predictions/densenet161/2.0')).toBe('/predictions/densenet161/2.0');
    expect(templateRoute('/v2/models/resnet152/versions/3/infer')).toBe('/v2/models/resnet152/versions/3/infer');
    expect(templateRoute('/v2/models/resnet50/versions/1/infer')).toBe('/v2/models/resnet50/versions/1/infer');
    expect(templateRoute('/v1/models/resnet152:predict')).toBe('/v1/models/resnet152:predict');
    expect(templateRoute('/v1/models/m/labels/stable:predict')).toBe('/v1/models/m/labels/stable:predict');
    expect(templateRoute('/openai/deployments/gpt-4o-2024-08-06/chat/completions')).toBe('/openai/deployments/gpt-4o-2024-08-06/chat/completions');
    expect(templateRoute('/v1/models/gpt-4o-2024-08-06')).toBe('/v1/models/gpt-4o-2024-08-06');
    expect(templateRoute('/models/densenet161/3')).toBe('/models/densenet161/3');
    // Not a model name: encoded, credential-shaped; never an {id} to be filled with a number.
    expect(templateRoute('/v2/models/llama%2F8b/generate')).toBe('/v2/models/{model}/generate');
    expect(templateRoute('/v2/models/sk-abcdefghijklmnop/infer')).toBe('/v2/models/{model}/infer');
    expect(templateRoute('/v2/models/m/versions/%31/infer')).toBe('/v2/models/m/versions/{version}/infer');
  });

  it('template routes: a credential, token, id or number at a model or version position is never kept', () => {
    const keep = ['densenet161', 'gpt-4o-2024-08-06', 'meta-llama--Llama-3.1-8B', 'claude-3-5-sonnet-20241022', 'Llama-3.1-70B', 'resnet-v1.5', 'sklearn-iris', 'Qwen2.5-72B-Instruct', 'DeepSeek-R1-Distill-Qwen-32B', 'whisper-large-v3'];
    for (const m of keep) expect(templateRoute(`/v2/models/${m}/infer`), m).toBe(`/v2/models/${m}/infer`);
    const values = ['550e8400-e29b-41d4-a716-446655440000', 'AKIAIOSFODNN7EXAMPLE', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc', 'hf_AbCdEfGhIjKlMnOpQrStUvWxYz', 'glpat-xxxxxxxxxxxxxxxxxxxx', '4111111111111111', '192.168.10.22', 'da39a3ee5e6b4b0d3255bfef95601890afd80709', 'user_2xYzAbCdEf', 'sk_live_51H8abcdefghijkl', 'xoxb-123456789012-abcdef'];
    for (const v of values) {
      expect(templateRoute(`/v2/models/${v}/infer`), v).toBe('/v2/models/{model}/infer');
      expect(templateRoute(`/v2/models/resnet/versions/${v}/infer`), v).toBe('/v2/models/resnet/versions/{version}/infer');
      expect(templateRoute(`/predictions/resnet/${v}`), v).toBe('/predictions/resnet/{version}');
    }
  });
});

describe('tokenizer', () => {
  it('counts a very long run of letters in linear time, in pieces (a DNA sequence, a model repeating a character)', () => {
    expect(countTokens('y'.repeat(3_000_000))).toBe(750_000);
    // Text around a long run is tokenized whole, as without one.
    const around = 'The quick brown fox jumps over the lazy dog.';
    expect(countTokens(`${around} ${'ACGT'.repeat(500)} ${around}`) - countTokens(`${'ACGT'.repeat(500)}`)).toBe(countTokens(`${around} x ${around}`) - countTokens('x') + 1);
  });
});

describe('text synthesis', () => {
  it('produces exactly the asked token count', () => {
    const rng = createRng(9);
    for (const n of [0, 1, 2, 17, 500, 4096]) expect(countTokens(textOfTokens(n, rng))).toBe(n);
  });
  it('shares prefix blocks between prompts that name the same block keys', () => {
    const blocks = createRng(1).child('prefix');
    const a = promptTokenIds(1100, [7, 8, 9], 512, blocks, createRng(2));
    const b = promptTokenIds(1300, [7, 8, 10], 512, blocks, createRng(3));
    const c = promptTokenIds(600, [11], 512, blocks, createRng(4));
    expect(a).toHaveLength(1100);
    expect(b).toHaveLength(1300);
    expect(countTokens(decodeTokens(a))).toBe(1100);
    // The first two blocks (1,024 tokens) are shared, the third differs, and another prompt shares nothing.
    expect(b.slice(0, 1024)).toEqual(a.slice(0, 1024));
    expect(b.slice(1024, 1100)).not.toEqual(a.slice(1024, 1100));
    expect(c.slice(0, 512)).not.toEqual(a.slice(0, 512));
  });
});

describe('SSE / NDJSON splitting', () => {
  it('splits events across arbitrary chunk boundaries, CRLF and multi-line data, skipping comments', () => {
    const text = ': keep-alive\n\ndata: {"a":1}\r\n\r\nevent: x\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n';
    const bytes = Buffer.from(text);
    for (const size of [1, 3, 7, bytes.length]) {
      const s = new EventSplitter('sse');
      const got = [];
      for (let i = 0; i < bytes.length; i += size) got.push(...s.push(bytes.subarray(i, i + size)));
      expect(got).toEqual([{ data: '{"a":1}' }, { data: 'line1\nline2', event: 'x' }, { data: '[DONE]' }]);
    }
  });
  it('decodes multi-byte UTF-8 split across chunks', () => {
    const bytes = Buffer.from('data: héllo wörld\n\n');
    const s = new EventSplitter('sse');
    const got = [...s.push(bytes.subarray(0, 8)), ...s.push(bytes.subarray(8))];
    expect(got).toEqual([{ data: 'héllo wörld' }]);
  });
  it('gives the same events for any chunking of any mix of LF, CRLF and CR line ends (fast-check)', () => {
    const piece = fc.constantFrom('data: a', 'data: bb', 'event: e', ': c', 'id: 1', '\n', '\r\n', '\r', '\n\n', '\r\n\r\n', '\r\r', 'data: ' + 'x'.repeat(300));
    fc.assert(fc.property(fc.array(piece, { maxLength: 40 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }), (pieces, sizes) => {
      for (const format of ['sse', 'ndjson'] as const) {
        const bytes = Buffer.from(pieces.join(''));
        const whole = new EventSplitter(format).push(bytes);
        const s = new EventSplitter(format);
        const got = [];
        for (let i = 0, k = 0; i < bytes.length; i += sizes[k++ % sizes.length]!) got.push(...s.push(bytes.subarray(i, i + sizes[k % sizes.length]!)));
        expect(got).toEqual(whole);
      }
    }));
  });
  it('splits NDJSON by line', () => {
    const s = new EventSplitter('ndjson');
    expect(s.push(Buffer.from('{"a":1}\n{"b"'))).toEqual([{ data: '{"a":1}' }]);
    expect(s.push(Buffer.from(':2}\n'))).toEqual([{ data: '{"b":2}' }]);
  });
});

describe('trace writer/reader round trip', () => {
  it('stores every field, including per-event offsets, and reads them back in offset order', () => {
    const tmp = tempDir();
    const path = join(tmp.dir, 'rt.trace.db');
    const w = new TraceWriter(path, { source: 'capture', anchorWallUs: 1_700_000_000_000_000, anonymization: { name: 'default' } });
    const base: TraceRecord = {
      seq: 2, offsetUs: 500, method: 'POST', route: '/v1/chat/completions', protocol: 'openai-chat', status: 200, errorKind: null,
      requestBytes: 123, responseBytes: 456, ttfbUs: 1000, ttftUs: 2000, latencyUs: 9000, streamed: true, eventCount: 3,
      eventOffsetsUs: [2000, 2500, 9000], promptTokens: 10, outputTokens: 2, messageCount: 1, model: 'm', maxTokens: 2,
      shape: { kind: 'json', contentType: 'application/json', skeleton: { t: 'o', k: [['a', { t: 's' }]] } }, params: { model: 'm' },
      features: { sizes: [4], messageTokens: [10] },
    };
    w.add(base);
    w.add({ ...base, seq: 1, offsetUs: 100, errorKind: 'client_aborted', streamed: false, eventOffsetsUs: null, eventCount: null });
    w.close();
    const r = new TraceReader(path);
    expect(r.meta).toMatchObject({ formatVersion: 3, source: 'capture', anchorWallUs: 1_700_000_000_000_000, recordsDropped: 0, captureRaw: false });
    const recs = [...r.records()];
    r.close();
    expect(recs.map((x) => x.seq)).toEqual([1, 2]);
    expect(recs[1]).toEqual(base);
    expect(recs[0]).toMatchObject({ errorKind: 'client_aborted', eventOffsetsUs: null });
    tmp.cleanup();
  });
});

describe('the response observer (one per protocol, both sides)', () => {
  const chunks = (lines: string[]) => {
    const body = Buffer.from(lines.join(''));
    let end = 0;
    const chunkEnds = lines.map((l) => (end += Buffer.byteLength(l)));
    return { body, chunkEnds, chunkAtUs: lines.map((_, i) => 1000 * (i + 1)) };
  };
  it('reads TGI and Ollama streams as NDJSON: TTFT at the first content line, gaps between content lines, the stream\'s own token count, the end marker', () => {
    const tgi = chunks([
      `${JSON.stringify({ token: { id: 1, text: ' Deep', special: false }, generated_text: null, details: null })}\n`,
      `${JSON.stringify({ token: { id: 2, text: ' learning', special: false }, generated_text: null, details: null })}\n`,
      `${JSON.stringify({ token: { id: 3, text: '</s>', special: true }, generated_text: 'Deep learning', details: { generated_tokens: 3 } })}\n`,
    ]);
    const t = observeAnswer({ protocol: 'tgi', status: 200, contentType: 'application/x-ndjson', inferenceHeader: null, complete: true, ...tgi });
    expect(t).toMatchObject({ format: 'ndjson', ttftAtUs: 1000, itlUs: [1000], nonContentEvents: [2], outputTokens: 3, ended: true });
    const cut = observeAnswer({ protocol: 'ollama', status: 200, contentType: 'application/x-ndjson', inferenceHeader: null, complete: true, ...chunks([`${JSON.stringify({ message: { role: 'assistant', content: 'Hi' }, done: false })}\n`]) });
    expect(cut).toMatchObject({ ttftAtUs: 1000, ended: false, outputTokens: 1 });
  });
  it('reads a KServe JSON answer whole: output tensors, no tokens', () => {
    const body = Buffer.from(JSON.stringify({ model_name: 'm', outputs: [{ name: 'probs', datatype: 'FP32', shape: [1, 10], data: Array(10).fill(0.1) }] }));
    const k = observeAnswer({ protocol: 'kserve-v2', status: 200, contentType: 'application/json', inferenceHeader: null, complete: true, body, chunkEnds: [body.length], chunkAtUs: [5] });
    expect(k).toMatchObject({ format: null, outputTokens: null, features: { outputTensors: [{ name: 'probs', datatype: 'FP32', shape: [1, 10] }] } });
  });
});
