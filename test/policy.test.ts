import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { compilePolicy } from '../src/anonymize/policy.ts';
import { startRecord } from '../src/cli/record.ts';
import { TracewarpError } from '../src/errors.ts';
import { TraceReader } from '../src/trace/reader.ts';
import { captureOutput, runCli, startUpstream, tempDir } from './helpers.ts';

describe('anonymization policy file', () => {
  it('reports every problem at once and exits 2 before anything starts', async () => {
    const tmp = tempDir();
    const file = join(tmp.dir, 'bad.yaml');
    writeFileSync(file, 'headers:\n  keepValues: [authorization, "bad header"]\n  keepNmes: true\nbody:\n  keepParams: user_tier\nextra: 1\n');
    const r = await runCli(['record', '--upstream', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--out', join(tmp.dir, 'x.trace.db'), '--policy', file]);
    expect(r.code).toBe(2);
    for (const msg of ["unknown section 'extra'", 'headers.keepNmes: unknown setting', "'bad header' is not a header name", "'authorization' carries credentials", 'body.keepParams: must be a list']) expect(r.stderr).toContain(msg);
    expect(r.stderr).toContain('5 problems');
    tmp.cleanup();
  });

  it('compiles once; the trace records the policy and follows it', async () => {
    expect(() => compilePolicy([])).toThrow(TracewarpError);
    const tmp = tempDir();
    const file = join(tmp.dir, 'p.json');
    writeFileSync(file, JSON.stringify({ headers: { keepValues: ['content-type', 'x-request-priority'] }, query: { keepValues: ['api-version', 'tier'] }, body: { keepParams: ['priority'], dropParams: ['temperature'] } }));
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    const trace = join(tmp.dir, 'p.trace.db');
    const session = await startRecord({ upstream: up.url, host: '127.0.0.1', port: 0, out: trace, policyFile: file }, captureOutput());
    const res = await request(`${session.proxy.url}/v1/chat/completions?api-version=2024-02-01&tier=gold&key=SECRET-KEY`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-priority': 'high', authorization: 'Bearer SECRET-TOKEN' },
      body: JSON.stringify({ model: 'm', priority: 3, temperature: 0.7, messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.body.text();
    await session.stop();
    await up.close();
    const reader = new TraceReader(trace);
    const [rec] = [...reader.records()];
    const meta = reader.meta.anonymization as { source: string; headers: { keepValues: string[] } };
    reader.close();
    // The policy's content hash, never its path (a file name can name a team or a person).
    expect(meta.source).toMatch(/^file sha256:[0-9a-f]{16}$/);
    expect(JSON.stringify(meta)).not.toContain(tmp.dir);
    expect(meta.headers.keepValues).toEqual(['content-type', 'x-request-priority']);
    expect(rec!.params).toEqual({ model: 'm', priority: 3 });
    // Allowed query values are kept only when they read like a version: `gold` is not one.
    expect(rec!.features.query).toEqual([['api-version', '2024-02-01'], ['tier', null], ['key', null]]);
    expect(rec!.features.headers).toEqual(expect.arrayContaining([['x-request-priority', 'high'], ['authorization', null]]));
    tmp.cleanup();
  });

  it('refuses to keep values of credential, session or client-address headers, by their wording', () => {
    const names = ['x-forwarded-host', 'cf-connecting-ip', 'true-client-ip', 'x-client-ip', 'x-xsrf-token', 'x-auth-token', 'x-amz-security-token', 'x-session-id'];
    let err: unknown;
    try {
      compilePolicy({ headers: { keepValues: ['content-type', 'x-request-priority', ...names] } }, 'p.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TracewarpError);
    for (const n of names) expect((err as Error).message).toContain(`'${n}' carries credentials`);
    expect((err as Error).message).not.toContain("'x-request-priority'");
  });

  it('dropParams also empties the model and max_tokens columns', async () => {
    const tmp = tempDir();
    const file = join(tmp.dir, 'drop.yaml');
    writeFileSync(file, 'body:\n  dropParams: [model, max_tokens, seed]\n');
    const up = await startUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    const trace = join(tmp.dir, 'drop.trace.db');
    const session = await startRecord({ upstream: up.url, host: '127.0.0.1', port: 0, out: trace, policyFile: file }, captureOutput());
    const res = await request(`${session.proxy.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'plantmodelZQX', max_tokens: 4111111111111111, seed: 5, messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.body.text();
    await session.stop();
    await up.close();
    const reader = new TraceReader(trace);
    const [rec] = [...reader.records()];
    reader.close();
    expect(rec).toMatchObject({ model: null, maxTokens: null, protocol: 'openai-chat', promptTokens: 1 });
    expect(rec!.params ?? {}).toEqual({});
    tmp.cleanup();
  });
});

describe('names the server chose (issue 10, Server-Timing)', () => {
  it('keeps common Server-Timing phase names and fingerprints the rest: a tenant or host in a metric name never reaches the trace', async () => {
    const tmp = tempDir();
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'server-timing': 'queue;dur=3.5, acme-tenant-db;dur=12, Prefill;dur=7, gpu-node-17.corp;dur=1' });
      res.end('{}');
    });
    try {
      const trace = join(tmp.dir, 'st.trace.db');
      const session = await startRecord({ upstream: up.url, host: '127.0.0.1', port: 0, out: trace }, captureOutput());
      for (let i = 0; i < 2; i++) await (await request(`${session.proxy.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","messages":[]}' })).body.text();
      await session.stop();
      const reader = new TraceReader(trace);
      const [a, b] = [...reader.records()];
      reader.close();
      const names = Object.keys(a!.features.serverTiming!);
      expect(names.slice(0, 2)).toEqual(['queue', expect.stringMatching(/^st-[0-9a-f]{8}$/)]);
      expect(a!.features.serverTiming!.queue).toBe(3.5);
      expect(a!.features.serverTiming!.prefill).toBe(7);
      // Keyed: the same name gives the same fingerprint within the trace, so a report can still group by it.
      expect(Object.keys(b!.features.serverTiming!)).toEqual(names);
      expect(readFileSync(trace).toString('latin1')).not.toMatch(/acme|gpu-node|corp/);
    } finally {
      await up.close();
      tmp.cleanup();
    }
  });
});

describe('numbers of kept parameters (issue 10, class 5)', () => {
  it('keep a value only within its domain and on an LLM route; a seed keeps its presence, never its value', async () => {
    const { describeRequest } = await import('../src/protocols/index.ts');
    const chat = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], seed: 4111111111111111, n: 5555550123, temperature: 0.4111111111111111, top_k: 4111111111, max_tokens: 300, top_p: 0.95 }));
    const d = await describeRequest('POST', '/v1/chat/completions', 'application/json', chat, true);
    expect(d.params).toEqual({ model: 'm', temperature: 0.41, max_tokens: 300, top_p: 0.95 });
    expect(JSON.stringify(d)).not.toMatch(/4111111111|5555550123/);
    expect(JSON.stringify(d.shape.skeleton)).toContain('"seed"'); // the key stays: the replay sends a seed
    // The same keys on a route that is not an LLM API's are somebody's data.
    const other = await describeRequest('POST', '/api/items', 'application/json', Buffer.from(JSON.stringify({ max_tokens: 300, temperature: 0.5, n: 3 })), true);
    expect(other.params).toEqual({});
  });
});

describe('booleans (issue 10, class 1)', () => {
  it('keep their value only where they are protocol flags; any other boolean is its type alone, and equal structures share a shape', async () => {
    const { describeRequest } = await import('../src/protocols/index.ts');
    const body = (a: boolean, b: boolean) => Buffer.from(JSON.stringify({
      model: 'm', stream: true, parallel_tool_calls: false, messages: [{ role: 'user', content: 'hi' }],
      tools: [{ type: 'function', function: { name: 'f', strict: true, parameters: { type: 'object', properties: { pregnant: { type: 'boolean' } }, additionalProperties: false } } }],
      metadata: { hiv_positive: a, is_overdrawn: b },
    }));
    const x = await describeRequest('POST', '/v1/chat/completions', 'application/json', body(true, false), true);
    const y = await describeRequest('POST', '/v1/chat/completions', 'application/json', body(false, true), true);
    const sk = JSON.stringify(x.shape.skeleton);
    expect(sk).toContain('["parallel_tool_calls",{"t":"b","v":false}]');
    expect(sk).toContain('["strict",{"t":"b","v":true}]');
    expect(sk).toMatch(/\["\{k:[0-9a-f]{8}:12\}",\{"t":"b"\}\]/); // `hiv_positive`: a key of metadata is a token (class 2)
    expect(sk).toContain('["additionalProperties",{"t":"b"}]');
    expect(x.params.stream).toBe(true);
    // The planted answers do not make two shapes (a shape id would encode them).
    expect(JSON.stringify(y.shape)).toBe(JSON.stringify(x.shape));
  });
});

describe('media types (issue 10, class 7)', () => {
  it('a trace keeps a registered media type, a vendor type without its vendor, and nothing that is not a media type', async () => {
    const { storedMediaType } = await import('../src/anonymize/media-type.ts');
    expect(storedMediaType('application/json; charset=utf-8')).toBe('application/json');
    expect(storedMediaType('application/vnd.acme-bank.v2+json')).toBe('application/vnd.*+json');
    expect(storedMediaType('application/x-jane-doe-upload')).toBe('application/x-*');
    expect(storedMediaType('image/PNG')).toBe('image/png');
    expect(storedMediaType('application/json, jane.doe@example.com')).toBeNull();
    expect(storedMediaType('secret/value')).toBeNull();
    const { describeRequest } = await import('../src/protocols/index.ts');
    const d = await describeRequest('POST', '/v1/chat/completions', 'application/vnd.acme-bank+json', Buffer.from('{"model":"m","messages":[]}'), true);
    expect(d.protocol).toBe('openai-chat'); // detected by the media type as sent
    expect(d.shape.contentType).toBe('application/vnd.*+json');
  });
});
