import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Fingerprinter } from '../src/anonymize/fingerprint.ts';
import { templateRoute } from '../src/anonymize/route.ts';
import { describeRequest, synthesizeRequest, type RequestDescription } from '../src/protocols/index.ts';
import { createRng } from '../src/rng.ts';
import type { Features, TraceRecord } from '../src/types.ts';
import { ROOT } from './helpers.ts';

const P = join(ROOT, 'test/fixtures/protocols');
const PII = join(ROOT, 'test/fixtures/pii/bodies');
const png = readFileSync(join(P, 'mnist_0.png'));

function multipartBody(boundary: string): Buffer {
  return Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\ndescribe this digit\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="0.png"\r\nContent-Type: image/png\r\n\r\n`), png, Buffer.from('\r\n'),
    Buffer.from(`--${boundary}--\r\n`),
  ]);
}

function binaryTensorBody(): { body: Buffer; header: number } {
  const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'INPUT0', shape: [2, 8], datatype: 'FP32', parameters: { binary_data_size: 64 } }], outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }] }));
  const data = Buffer.alloc(64);
  for (let i = 0; i < 16; i++) data.writeFloatLE(i / 3, i * 4);
  return { body: Buffer.concat([json, data]), header: json.length };
}

interface Case { name: string; method: string; path: string; contentType: string; body: Buffer; headers?: Record<string, string>; protocol: string; kind: string }
const bin = binaryTensorBody();
const CASES: Case[] = [
  { name: 'OpenAI chat (text)', method: 'POST', path: '/v1/chat/completions', contentType: 'application/json', body: readFileSync(join(PII, '01_openai_chat_basic.json')), protocol: 'openai-chat', kind: 'json' },
  { name: 'OpenAI chat (stream, tools)', method: 'POST', path: '/v1/chat/completions', contentType: 'application/json', body: readFileSync(join(PII, '03_openai_tool_args_string.json')), protocol: 'openai-chat', kind: 'json' },
  { name: 'OpenAI chat (vision, PNG data URL)', method: 'POST', path: '/v1/chat/completions', contentType: 'application/json', body: readFileSync(join(PII, '04_openai_vision_png_text.json')), protocol: 'openai-chat', kind: 'json' },
  { name: 'OpenAI completions (prompt array)', method: 'POST', path: '/v1/completions', contentType: 'application/json', body: readFileSync(join(PII, '15_completions_prompt.json')), protocol: 'openai-completions', kind: 'json' },
  { name: 'OpenAI embeddings (string array, Azure route)', method: 'POST', path: '/openai/deployments/emb/embeddings?api-version=2024-02-01', contentType: 'application/json', body: readFileSync(join(PII, '06_embeddings_array.json')), protocol: 'openai-embeddings', kind: 'json' },
  { name: 'OpenAI embeddings (token arrays)', method: 'POST', path: '/v1/embeddings', contentType: 'application/json', body: Buffer.from(JSON.stringify({ model: 'e5', input: [[1, 2, 3], [4, 5, 6, 7]] })), protocol: 'openai-embeddings', kind: 'json' },
  { name: 'KServe v2 JSON (cifar10 FP32 [1,3,32,32])', method: 'POST', path: '/v2/models/cifar10/infer', contentType: 'application/json', body: readFileSync(join(P, 'cifar10_input_v2.json')), protocol: 'kserve-v2', kind: 'json' },
  { name: 'KServe v2 BYTES tensor', method: 'POST', path: '/v2/models/llm/versions/3/infer', contentType: 'application/json', body: readFileSync(join(PII, '09_kserve_v2_bytes.json')), protocol: 'kserve-v2', kind: 'json' },
  { name: 'KServe v2 binary tensor extension', method: 'POST', path: '/v2/models/simple/infer', contentType: 'application/octet-stream', body: bin.body, headers: { 'inference-header-content-length': String(bin.header) }, protocol: 'kserve-v2', kind: 'json' },
  { name: 'KServe v1 / TF Serving (iris instances)', method: 'POST', path: '/v1/models/sklearn-iris:predict', contentType: 'application/json', body: readFileSync(join(P, 'iris-input.json')), protocol: 'tf-serving', kind: 'json' },
  { name: 'TorchServe JSON', method: 'POST', path: '/predictions/translator', contentType: 'application/json', body: readFileSync(join(PII, '13_torchserve_data.json')), protocol: 'torchserve', kind: 'json' },
  { name: 'TorchServe raw PNG (mnist)', method: 'POST', path: '/predictions/mnist', contentType: 'image/png', body: png, protocol: 'torchserve', kind: 'binary' },
  { name: 'multipart with an image part', method: 'POST', path: '/upload', contentType: 'multipart/form-data; boundary=XyZ123', body: multipartBody('XyZ123'), protocol: 'multipart', kind: 'binary' },
  { name: 'form-urlencoded', method: 'POST', path: '/legacy/infer', contentType: 'application/x-www-form-urlencoded', body: readFileSync(join(PII, '26_form_urlencoded.json')), protocol: 'form', kind: 'binary' },
  { name: 'generic JSON', method: 'PUT', path: '/api/items/12345', contentType: 'application/json', body: Buffer.from('{"a":[1,2,3],"b":{"c":"hello","d":[true,false]},"e":null}'), protocol: 'generic-json', kind: 'json' },
];

function record(d: RequestDescription, c: Case, seq = 1): TraceRecord {
  return {
    ...d, seq, offsetUs: 0, method: c.method, route: templateRoute(c.path), status: 200, errorKind: null, requestBytes: c.body.length, responseBytes: 0,
    ttfbUs: 0, ttftUs: null, latencyUs: 0, streamed: false, eventCount: null, eventOffsetsUs: null, outputTokens: d.maxTokens,
  };
}

/** Features that a replay reproduces: fingerprints are of the synthetic text, and an image's encoded size depends on its pixels. */
const withoutFingerprints = (f: Features) => {
  const { promptFingerprint: _a, prefixFingerprints: _b, ...rest } = f;
  const noBytes = <T extends { bytes: number }>(x: T) => ({ ...x, bytes: 0 });
  if (rest.images) rest.images = rest.images.map(noBytes);
  if (rest.parts) rest.parts = rest.parts.map((p) => (p.image ? { ...p, bytes: 0, image: noBytes(p.image) } : p));
  // A field name the trace keeps as a token is replayed as `field<i>`, whose token differs.
  if (rest.parts) rest.parts = rest.parts.map((p) => (p.name?.startsWith('{f:') ? { ...p, name: '{f}' } : p));
  return rest;
};

describe('protocol adapters: extract(synthesize(extract(original))) == extract(original)', () => {
  const fp = new Fingerprinter(Buffer.alloc(32, 1), 16);
  for (const c of CASES) {
    it(c.name, async () => {
      const headers = { 'content-type': c.contentType, ...c.headers };
      const d1 = await describeRequest(c.method, templateRoute(c.path), c.contentType, c.body, true, { headers, fingerprinter: fp });
      expect(d1.protocol).toBe(c.protocol);
      expect(d1.shape.kind).toBe(c.kind);
      const s = synthesizeRequest(record(d1, c), createRng(4), createRng(5));
      const d2 = await describeRequest(s.method, templateRoute(s.path), s.headers['content-type'], s.body, true, { headers: s.headers, fingerprinter: fp });
      expect(d2.protocol).toBe(d1.protocol);
      // A key the trace keeps as a token is replayed as another key of its length (issue 10): equal up to the fingerprint.
      const keyLengths = (x: unknown) => JSON.parse(JSON.stringify(x).replace(/\{k:[0-9a-f]{8}:(\d+)\}/g, '{k:$1}')) as unknown;
      expect(keyLengths(d2.shape)).toEqual(keyLengths(d1.shape));
      expect(d2.params).toEqual(d1.params);
      expect(withoutFingerprints(d2.features)).toEqual(withoutFingerprints(d1.features));
      expect(d2.promptTokens).toBe(d1.promptTokens);
      if (c.kind === 'binary' && c.protocol === 'multipart') expect(s.body!.length).toBeGreaterThan(png.length);
    });
  }

  it('keeps what drives load: tensor shapes and dtypes, images, batch, parts', async () => {
    const cifar = await describeRequest('POST', '/v2/models/cifar10/infer', 'application/json', readFileSync(join(P, 'cifar10_input_v2.json')), true);
    expect(cifar.features.tensors).toEqual([{ name: 'INPUT__0', datatype: 'FP32', shape: [1, 3, 32, 32], elements: 3072 }]);
    const vision = await describeRequest('POST', '/v1/chat/completions', 'application/json', readFileSync(join(PII, '04_openai_vision_png_text.json')), true);
    expect(vision.features.images).toEqual([expect.objectContaining({ format: 'png', width: 2, height: 2 })]);
    const iris = await describeRequest('POST', '/v1/models/sklearn-iris:predict', 'application/json', readFileSync(join(P, 'iris-input.json')), true);
    expect(iris.features.batch).toBe(2);
    const mp = await describeRequest('POST', '/upload', 'multipart/form-data; boundary=B', multipartBody('B'), true);
    expect(mp.features.parts).toEqual([
      { name: 'prompt', contentType: 'text/plain', bytes: 19 },
      { name: 'image', contentType: 'image/png', bytes: png.length, filename: true, image: { format: 'png', width: 28, height: 28, bytes: png.length } },
    ]);
    const b = await describeRequest('POST', '/v2/models/simple/infer', 'application/octet-stream', bin.body, true, { headers: { 'inference-header-content-length': String(bin.header) } });
    expect(b.shape.layout).toBe('kserve-binary');
    expect(b.features.binaryBytes).toBe(64);
  });

  it('records a body that does not parse as unparseable, with length and content type only', async () => {
    const body = readFileSync(join(PII, '27_malformed_truncated.json'));
    const d = await describeRequest('POST', '/v1/chat/completions', 'application/json', body, true);
    expect(d.shape).toEqual({ kind: 'unparseable', contentType: 'application/json', skeleton: null });
    expect(d.params).toEqual({});
    expect(d.features).toEqual({});
  });
});

describe('fingerprints', () => {
  const prompt = (text: string) => Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: text }] }));
  const fpOf = async (fp: Fingerprinter, text: string) => (await describeRequest('POST', '/v1/chat/completions', 'application/json', prompt(text), true, { fingerprinter: fp })).features;
  const long = Array.from({ length: 100 }, (_, i) => `word${i}`).join(' ');

  it('same input, same fingerprint; shared prefix, shared leading block fingerprints; another key, unlinkable', async () => {
    const k1 = new Fingerprinter(Buffer.alloc(32, 1), 16);
    const k2 = new Fingerprinter(Buffer.alloc(32, 2), 16);
    const a = await fpOf(k1, long);
    const b = await fpOf(k1, long);
    const c = await fpOf(k1, long + ' and then something else entirely different to the end');
    const d = await fpOf(k2, long);
    expect(a.promptFingerprint).toBe(b.promptFingerprint);
    expect(a.prefixFingerprints).toEqual(b.prefixFingerprints);
    expect(c.promptFingerprint).not.toBe(a.promptFingerprint);
    expect(c.prefixFingerprints!.slice(0, a.prefixFingerprints!.length - 1)).toEqual(a.prefixFingerprints!.slice(0, -1));
    expect(d.promptFingerprint).not.toBe(a.promptFingerprint);
    expect(d.prefixFingerprints!.some((f) => a.prefixFingerprints!.includes(f))).toBe(false);
  });

  it('equal prefix fingerprints replay as equal prefixes, distinct ones as distinct text; duplicates replay identically', async () => {
    const k = new Fingerprinter(Buffer.alloc(32, 3), 16);
    const c: Case = { name: '', method: 'POST', path: '/v1/chat/completions', contentType: 'application/json', body: Buffer.alloc(0), protocol: 'openai-chat', kind: 'json' };
    const texts = [long, long, long + ' with a different ending that goes on for a while longer', 'something else entirely, not sharing any prefix at all with the others'];
    const shared = createRng(9).child('shared');
    const bodies: string[] = [];
    for (const [i, t] of texts.entries()) {
      const d = await describeRequest('POST', '/v1/chat/completions', 'application/json', prompt(t), true, { fingerprinter: k });
      const s = synthesizeRequest(record(d, { ...c, body: prompt(t) }, i + 1), createRng(100 + i), shared);
      bodies.push((JSON.parse(s.body!.toString()) as { messages: Array<{ content: string }> }).messages[0]!.content);
    }
    expect(bodies[1]).toBe(bodies[0]); // exact duplicate
    const commonPrefix = (x: string, y: string) => { let i = 0; while (i < x.length && x[i] === y[i]) i++; return i; };
    expect(commonPrefix(bodies[0]!, bodies[2]!)).toBeGreaterThan(bodies[0]!.length * 0.5);
    expect(commonPrefix(bodies[0]!, bodies[3]!)).toBeLessThan(20);
  });
});
