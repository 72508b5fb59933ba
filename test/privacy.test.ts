import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFingerprintKey } from '../src/anonymize/fingerprint.ts';
import { startRecord } from '../src/cli/record.ts';
import { TraceReader } from '../src/trace/reader.ts';
import { captureOutput, ROOT, startUpstream, tempDir } from './helpers.ts';
import { findPlanted, readAll, traceFiles } from './pii-scan.ts';

const PII = join(ROOT, 'test/fixtures/pii');
interface Case { id: number; body: string; headers: string; method: string; path: string; content_type: string }
const manifest = JSON.parse(readFileSync(join(PII, 'manifest.json'), 'utf8')) as Case[];
const planted = JSON.parse(readFileSync(join(PII, 'planted.json'), 'utf8')) as { files: Record<string, Array<{ value: string }>>; all_values: string[] };
const allValues = [...new Set(planted.all_values)];

function send(base: string, c: Case, bodyOverride?: Buffer): Promise<number> {
  const head = bodyOverride
    ? { method: c.method, path: c.path, headers: { 'content-type': c.content_type } as Record<string, string> }
    : (JSON.parse(readFileSync(join(PII, c.headers), 'utf8')) as { method: string; path: string; headers: Record<string, string> });
  const body = bodyOverride ?? readFileSync(join(PII, c.body));
  return new Promise((resolve, reject) => {
    const req = httpRequest(base + head.path, { method: head.method, headers: { ...head.headers, 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Records the whole corpus through the real proxy; returns every file and log line the recording produced. */
async function recordCorpus(captureRaw: boolean): Promise<{ haystacks: string[]; trace: string; cleanup: () => void; upstreamBodies: Buffer[] }> {
  const tmp = tempDir();
  const upstreamBodies: Buffer[] = [];
  const up = await startUpstream((_req, res, body) => {
    upstreamBodies.push(body);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  const trace = join(tmp.dir, 'pii.trace.db');
  const out = captureOutput();
  const session = await startRecord({ upstream: up.url, host: '127.0.0.1', port: 0, out: trace, captureRaw }, out);
  for (const c of manifest) expect(await send(session.proxy.url, c)).toBe(200);
  // Snapshot the live files (database, WAL, shared memory) after a flush, before the clean close removes the WAL.
  await new Promise((r) => setTimeout(r, 300));
  const snap = join(tmp.dir, 'snapshot');
  const live = traceFiles(trace).map((p, i) => {
    const dst = `${snap}-${i}`;
    copyFileSync(p, dst);
    return dst;
  });
  expect(live.length).toBeGreaterThanOrEqual(2); // the database and its WAL while recording
  await session.stop();
  await up.close();
  const haystacks = [...readAll(live), ...readAll(traceFiles(trace)), [...out.stdout, ...out.stderr].join('\n')];
  return { haystacks, trace, cleanup: tmp.cleanup, upstreamBodies };
}

describe('privacy: values hidden where schema is kept (cases found in review)', () => {
  it('keeps no secret in KServe schema fields, nested load params, token-like paths, keys or header parameters', async () => {
    const tmp = tempDir();
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    const trace = join(tmp.dir, 'adv.trace.db');
    const session = await startRecord({ upstream: up.url, host: '127.0.0.1', port: 0, out: trace }, captureOutput());
    const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
      const c: Case = { id: 0, body: '', headers: '', method: 'POST', path, content_type: headers['content-type'] ?? 'application/json' };
      expect(await send(session.proxy.url, c, Buffer.from(JSON.stringify(body)))).toBe(200);
    };
    await post('/v2/models/m/infer', { parameters: { name: 'ZQX8nameSECRET', classification: 'ZQX8clsSECRET' }, inputs: [{ name: 't', datatype: 'ZQX8dtSECRET', shape: [1], data: ['x'], parameters: { binary_data_size: 'ZQX8bdsSECRET' } }] });
    await post('/v1/chat/completions', { model: 'm', metadata: { seed: 4111111111111111, n: 987654321012 }, messages: [{ role: 'user', content: 'hi' }] });
    await post('/v1/chat/completions/ZQXa1b2c5SECRET', { 'sk-proj-ZQXa1B2c3SECRET': 1, ZQXa1KEYb2SECRETc3: 2 });
    await post('/v1/ZQX28.user:SECRET/chat/completions', { model: 'm', messages: [] }, { 'content-type': 'application/json; secret=ZQXhdrSECRET' });
    // Schema keys of the binary extension outside their place, a data-like header name, free text as the model, a
    // word where a version is allowed.
    await post('/v2/models/m/infer', { inputs: [{ name: 't', datatype: 'FP32', shape: [1], data: [1], parameters: { binary_data_size: 4 } }], parameters: { binary_data_size: 4111111111111111 }, patient: { classification: 4242, record: { binary_data_size: 5550199887766 } } });
    await post('/v1/chat/completions?api-version=ZQXplainword', { model: 'the ssn is 078-05-1120', messages: [{ role: 'user', content: 'hi' }] }, { 'x-card-4111111111111111': '1' });
    await session.stop();
    await up.close();
    const files = readAll(traceFiles(trace));
    expect(findPlanted(['4242', '5550199887766', '078-05-1120', 'ZQXplainword'], files)).toEqual([]);
    expect(findPlanted(['ZQX8nameSECRET', 'ZQX8clsSECRET', 'ZQX8dtSECRET', 'ZQX8bdsSECRET', '4111111111111111', '987654321012', 'ZQXa1b2c5SECRET', 'ZQXa1B2c3SECRET', 'ZQXa1KEYb2SECRETc3', 'ZQX28.user:SECRET', 'ZQXhdrSECRET'], files)).toEqual([]);
    expect(files.join('').includes('SECRET')).toBe(false);
    tmp.cleanup();
  });
});

describe('fingerprint key', () => {
  it('never reaches the trace, in any form, while fingerprints link equal prompts', async () => {
    const tmp = tempDir();
    const keyFile = join(tmp.dir, 'fp.key');
    const keyText = 'FAKE-fingerprint-key-0123456789-abcdefghijklmnop';
    writeFileSync(keyFile, keyText);
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    const trace = join(tmp.dir, 'fp.trace.db');
    const session = await startRecord({ upstream: up.url, host: '127.0.0.1', port: 0, out: trace, fingerprintKeyFile: keyFile, prefixBlockTokens: 4 }, captureOutput());
    for (const text of ['the same prompt text here', 'the same prompt text here', 'another prompt entirely']) {
      await send(session.proxy.url, { id: 0, body: '', headers: '', method: 'POST', path: '/v1/chat/completions', content_type: 'application/json' }, Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: text }] })));
    }
    await session.stop();
    await up.close();
    const derived = loadFingerprintKey(keyFile).key;
    const forms = [keyText, derived.toString('hex'), derived.toString('base64'), derived.toString('latin1')];
    expect(findPlanted(forms, readAll(traceFiles(trace)))).toEqual([]);
    const reader = new TraceReader(trace);
    const recs = [...reader.records()];
    reader.close();
    expect(recs[0]!.features.promptFingerprint).toBe(recs[1]!.features.promptFingerprint);
    expect(recs[2]!.features.promptFingerprint).not.toBe(recs[0]!.features.promptFingerprint);
    expect(recs[0]!.features.prefixBlockTokens).toBe(4);
    tmp.cleanup();
  });
});

describe('privacy: the planted-secrets corpus through the real proxy', () => {
  it('the scanner knows every encoding (self-check on constructed haystacks)', () => {
    const v = 'testy.mcfakename00@example.com';
    const embedded = (s: string) => `xx${s}yy`;
    for (const k of [0, 1, 2]) {
      const blob = Buffer.concat([Buffer.alloc(k, 7), Buffer.from(`pre ${v} post`)]);
      expect(findPlanted([v], [embedded(blob.toString('base64'))])).toHaveLength(1);
      expect(findPlanted([v], [embedded(blob.toString('base64url'))])).toHaveLength(1);
    }
    expect(findPlanted([v], [embedded(encodeURIComponent(v))])).toHaveLength(1);
    expect(findPlanted(['José Fakerson'], [JSON.stringify('José Fakerson').replace('é', '\\u00e9')])).toHaveLength(1);
    expect(findPlanted([v], ['nothing here'])).toHaveLength(0);
  });

  it('no planted value reaches the trace files (db, -wal, -shm, while recording and after) or the logs', async () => {
    const r = await recordCorpus(false);
    try {
      expect(findPlanted(allValues, r.haystacks)).toEqual([]);
      // Yet the trace describes every exchange: sizes, statuses, shapes.
      const reader = new TraceReader(r.trace);
      const recs = [...reader.records()];
      expect(reader.meta.captureRaw).toBe(false);
      reader.close();
      expect(recs).toHaveLength(manifest.length);
      expect(recs.every((x) => x.status === 200 && x.requestBytes > 0)).toBe(true);
      // And the upstream got the exact bytes (anonymization touches only the description).
      manifest.forEach((c, i) => expect(r.upstreamBodies[i]!.equals(readFileSync(join(PII, c.body)))).toBe(true));
    } finally {
      r.cleanup();
    }
  });

  it('is able to fail: with --capture-raw the same scan finds every planted value', async () => {
    const r = await recordCorpus(true);
    try {
      const found = new Set(findPlanted(allValues, r.haystacks).map((h) => h.value));
      expect(allValues.filter((v) => !found.has(v))).toEqual([]);
      const reader = new TraceReader(r.trace);
      expect(reader.meta.captureRaw).toBe(true);
      reader.close();
      expect(r.haystacks.at(-1)).toContain('WARNING: --capture-raw');
    } finally {
      r.cleanup();
    }
  });
});
