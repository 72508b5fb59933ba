import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import busboy from '@fastify/busboy';
import { imageSize } from 'image-size';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startRecord } from '../src/cli/record.ts';
import { runReplay, type ReplayCommandOptions } from '../src/cli/replay.ts';
import { readRunFile } from '../src/results/run-file.ts';
import { onnxAvailable } from '../src/sim/kserve.ts';
import { startSim, type SimServer } from '../src/sim/server.ts';
import { TraceReader } from '../src/trace/reader.ts';
import type { TraceRecord } from '../src/types.ts';
import { captureOutput, ROOT, startUpstream, tempDir } from './helpers.ts';

const P = join(ROOT, 'test/fixtures/protocols');
const PII = join(ROOT, 'test/fixtures/pii/bodies');
const png = readFileSync(join(P, 'mnist_0.png'));
const onnx = await onnxAvailable();

interface Req { method: string; path: string; headers: Record<string, string>; body: Buffer }
const json = (path: string, value: unknown): Req => ({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(value)) });

/** Records `reqs` through the proxy in front of `upstream`, replays the trace against it, returns both sides. */
async function recordAndReplay(upstream: string, reqs: Req[], mapping: (records: TraceRecord[]) => Partial<ReplayCommandOptions> = () => ({})): Promise<{ records: TraceRecord[]; statuses: Array<number | null>; recordedStatuses: number[] }> {
  const tmp = tempDir();
  try {
    const trace = join(tmp.dir, 't.trace.db');
    const session = await startRecord({ upstream, host: '127.0.0.1', port: 0, out: trace }, captureOutput());
    const recordedStatuses: number[] = [];
    for (const r of reqs) {
      const res = await request(session.proxy.url + r.path, { method: r.method as 'POST', headers: r.headers, body: r.body });
      await res.body.arrayBuffer();
      recordedStatuses.push(res.statusCode);
    }
    await session.stop();
    const reader = new TraceReader(trace);
    const records = [...reader.records()];
    reader.close();
    const run = join(tmp.dir, 'r.run.db');
    await runReplay(trace, { target: upstream, speed: 4, seed: 3, out: run, quiet: true, ...mapping(records) }, captureOutput());
    return { records, statuses: readRunFile(run).results.map((x) => x.status), recordedStatuses };
  } finally {
    tmp.cleanup();
  }
}

describe('record → replay against real servers, every adapter', () => {
  let sim: SimServer;
  let other: Awaited<ReturnType<typeof startUpstream>>;
  beforeAll(async () => {
    sim = await startSim({ decodeStepMs: 1, perSeqStepMs: 0 });
    // A strict fixture server for the protocols sim does not speak: it answers 200 only to well-formed requests.
    other = await startUpstream((req, res, body) => {
      const ok = (v: unknown) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(v)); };
      const bad = (why: string) => { res.writeHead(400, { 'content-type': 'application/json' }); res.end(JSON.stringify({ error: why })); };
      const ct = req.headers['content-type'] ?? '';
      try {
        if (req.url!.endsWith(':predict')) {
          const b = JSON.parse(body.toString()) as { instances: number[][] };
          return b.instances.every((row) => row.length === 4 && row.every((x) => typeof x === 'number')) ? ok({ predictions: b.instances.map(() => 1) }) : bad('rows of 4 numbers');
        }
        if (req.url === '/predictions/mnist') {
          const d = imageSize(body);
          return d.type === 'png' && d.width === 28 && d.height === 28 ? ok({ digit: 0 }) : bad('28×28 PNG');
        }
        if (req.url === '/predictions/translator') return typeof (JSON.parse(body.toString()) as { data?: unknown }).data === 'string' ? ok({ out: 'x' }) : bad('data string');
        if (ct.startsWith('multipart/form-data')) {
          const parts: string[] = [];
          const bb = new busboy.Busboy({ headers: { 'content-type': ct } });
          bb.on('field', (name: string) => parts.push(name));
          bb.on('file', (name: string, s: NodeJS.ReadableStream) => { parts.push(name); s.resume(); });
          bb.on('finish', () => (parts.join() === 'prompt,image' ? ok({ parts }) : bad(`parts ${parts.join()}`)));
          bb.end(body);
          return;
        }
        if (ct === 'application/x-www-form-urlencoded') {
          const f = new URLSearchParams(body.toString());
          return f.has('username') && f.has('password') && f.has('prompt') ? ok({}) : bad('form fields');
        }
        if (ct === 'application/json') return typeof JSON.parse(body.toString()) === 'object' ? ok({}) : bad('object');
        return bad('unknown');
      } catch (err) {
        return bad(String(err));
      }
    });
  });
  afterAll(async () => {
    await sim.close();
    await other.close();
  });

  it('OpenAI chat (text, tools, vision), completions and embeddings against sim', async () => {
    const reqs: Req[] = [
      { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: readFileSync(join(PII, '01_openai_chat_basic.json')) },
      { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: readFileSync(join(PII, '02_openai_chat_card.json')) },
      { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: readFileSync(join(PII, '03_openai_tool_args_string.json')) },
      { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: readFileSync(join(PII, '04_openai_vision_png_text.json')) },
      { method: 'POST', path: '/v1/completions', headers: { 'content-type': 'application/json' }, body: readFileSync(join(PII, '15_completions_prompt.json')) },
      { method: 'POST', path: '/v1/embeddings', headers: { 'content-type': 'application/json' }, body: readFileSync(join(PII, '06_embeddings_array.json')) },
      json('/v1/embeddings', { model: 'e', input: [[1, 2, 3], [4, 5]] }),
    ];
    const r = await recordAndReplay(sim.url, reqs);
    expect(r.recordedStatuses).toEqual(reqs.map(() => 200));
    expect(r.records.map((x) => x.protocol)).toEqual(['openai-chat', 'openai-chat', 'openai-chat', 'openai-chat', 'openai-completions', 'openai-embeddings', 'openai-embeddings']);
    expect(r.statuses).toEqual(reqs.map(() => 200));
  });

  it.skipIf(!onnx)('KServe v2, JSON and binary tensor extension, against the real ONNX model in sim', async () => {
    const shape = [1, 3, 32, 64];
    const n = shape.reduce((a, b) => a * b, 1);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape, datatype: 'FP32', parameters: { binary_data_size: n * 4 } }], outputs: [{ name: 'sigmoid_0.tmp_0', parameters: { binary_data: true } }] }));
    const reqs: Req[] = [
      // The real cifar10 request (FP32 [1,3,32,32]), its tensor renamed to the model's input name.
      { method: 'POST', path: '/v2/models/ocr-det/infer', headers: { 'content-type': 'application/json' }, body: Buffer.from(readFileSync(join(P, 'cifar10_input_v2.json')).toString().replace('"INPUT__0"', '"x"')) },
      { method: 'POST', path: '/v2/models/ocr-det/infer', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) }, body: Buffer.concat([header, Buffer.alloc(n * 4, 0x3f)]) },
    ];
    const r = await recordAndReplay(sim.url, reqs);
    expect(r.recordedStatuses).toEqual([200, 200]);
    expect(r.records.map((x) => [x.protocol, x.shape.layout ?? 'json'])).toEqual([['kserve-v2', 'json'], ['kserve-v2', 'kserve-binary']]);
    expect(r.records[0]!.features.outputTensors).toEqual([{ name: 'sigmoid_0.tmp_0', datatype: 'FP32', shape: [1, 1, 32, 32] }]);
    expect(r.records[1]!.features.outputTensors).toEqual([{ name: 'sigmoid_0.tmp_0', datatype: 'FP32', shape: [1, 1, 32, 64] }]);
    expect(r.statuses).toEqual([200, 200]);
  });

  it('KServe v1 / TF Serving, TorchServe (JSON and raw PNG), multipart, form and generic JSON against a strict server', async () => {
    const boundary = 'B0undary';
    const mp = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nwhat digit?\r\n--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="0.png"\r\nContent-Type: image/png\r\n\r\n`),
      png, Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const reqs: Req[] = [
      { method: 'POST', path: '/v1/models/sklearn-iris:predict', headers: { 'content-type': 'application/json' }, body: readFileSync(join(P, 'iris-input.json')) },
      { method: 'POST', path: '/predictions/translator', headers: { 'content-type': 'application/json' }, body: readFileSync(join(PII, '13_torchserve_data.json')) },
      { method: 'POST', path: '/predictions/mnist', headers: { 'content-type': 'image/png' }, body: png },
      { method: 'POST', path: '/upload', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: mp },
      { method: 'POST', path: '/legacy/infer', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: readFileSync(join(PII, '26_form_urlencoded.json')) },
      json('/api/anything', { a: [1, 2], b: { c: 'text' } }),
    ];
    // A private model name and the generic paths' own words are fingerprints in the trace (issue 10): the user maps
    // the model back to the target's name and sends the other segments as placeholders.
    const r = await recordAndReplay(other.url, reqs, (records) => ({ modelMap: [[records[1]!.model!, 'translator']], placeholderSegments: true }));
    expect(r.records[1]!.model).toMatch(/^\{model:[0-9a-f]{8}\}$/);
    expect(r.records.map((x) => x.route)).toEqual(['/v1/models/sklearn-iris:predict', `/predictions/${r.records[1]!.model}`, '/predictions/mnist', expect.stringMatching(/^\/\{seg:[0-9a-f]{8}\}$/), expect.stringMatching(/^\/\{seg:[0-9a-f]{8}\}\/infer$/), expect.stringMatching(/^\/api\/\{seg:[0-9a-f]{8}\}$/)]);
    expect(r.recordedStatuses).toEqual(reqs.map(() => 200));
    expect(r.records.map((x) => x.protocol)).toEqual(['tf-serving', 'torchserve', 'torchserve', 'multipart', 'form', 'generic-json']);
    expect(r.statuses).toEqual(reqs.map(() => 200));
  });
});
