import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startRecord } from '../src/cli/record.ts';
import { createRng } from '../src/rng.ts';
import { startSim, type SimServer } from '../src/sim/server.ts';
import { textOfTokens } from '../src/synth/text.ts';
import { TraceReader } from '../src/trace/reader.ts';
import type { TraceRecord } from '../src/types.ts';
import { captureOutput, runCli, startCli, startUpstream, tempDir, waitFor } from './helpers.ts';

const SECRETS = ['sk-live-PLANTED0123456789abcdef', 'alice.planted@example.com', '4111-1111-1111-1111'];

describe('record: trace contents match the traffic (sim upstream, real proxy)', () => {
  const tmp = tempDir();
  const tracePath = join(tmp.dir, 'rec.trace.db');
  let sim: SimServer;
  let records: TraceRecord[];
  const sent: Array<{ systemTokens: number; userTokens: number; maxTokens: number; stream: boolean }> = [];

  beforeAll(async () => {
    sim = await startSim({ decodeStepMs: 1, perSeqStepMs: 0, prefillUsPerToken: 1 });
    const session = await startRecord({ upstream: sim.url, host: '127.0.0.1', port: 0, out: tracePath }, captureOutput());
    const rng = createRng(7);
    for (let i = 0; i < 12; i++) {
      const systemTokens = 5 + i * 3;
      const userTokens = 40 + i * 11;
      const maxTokens = 3 + i;
      const stream = i % 2 === 0;
      sent.push({ systemTokens, userTokens, maxTokens, stream });
      const body = {
        model: 'tracewarp-sim',
        messages: [
          { role: 'system', content: textOfTokens(systemTokens, rng) },
          { role: 'user', content: textOfTokens(userTokens, rng) },
        ],
        max_tokens: maxTokens,
        stream,
        user: SECRETS[i % SECRETS.length],
        metadata: { email: SECRETS[1], card: SECRETS[2] },
      };
      const res = await request(`${session.proxy.url}/v1/chat/completions?api_key=${SECRETS[0]}`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRETS[0]}` }, body: JSON.stringify(body),
      });
      expect(res.statusCode).toBe(200);
      await res.body.text();
    }
    await (await request(`${session.proxy.url}/v1/models`)).body.text();
    await (await request(`${session.proxy.url}/v1/nothing-here`)).body.text();
    await session.stop();
    const reader = new TraceReader(tracePath);
    records = [...reader.records()];
    reader.close();
  });
  afterAll(async () => {
    await sim.close();
    tmp.cleanup();
  });

  it('has one record per exchange, in arrival order, with statuses', () => {
    expect(records).toHaveLength(14);
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    for (let i = 1; i < records.length; i++) expect(records[i]!.offsetUs).toBeGreaterThanOrEqual(records[i - 1]!.offsetUs);
    expect(records.slice(0, 12).every((r) => r.status === 200 && r.route === '/v1/chat/completions' && r.protocol === 'openai-chat')).toBe(true);
    expect(records[12]).toMatchObject({ method: 'GET', route: '/v1/models', status: 200 });
    expect(records[13]).toMatchObject({ route: expect.stringMatching(/^\/v1\/\{seg:[0-9a-f]{8}\}$/), status: 404 });
  });

  it('counts prompt and output tokens and keeps the load-driving params', () => {
    records.slice(0, 12).forEach((r, i) => {
      const s = sent[i]!;
      expect(r.promptTokens).toBe(s.systemTokens + s.userTokens);
      expect(r.features.messageTokens).toEqual([s.systemTokens, s.userTokens]);
      expect(r.messageCount).toBe(2);
      expect(r.outputTokens).toBe(s.maxTokens);
      expect(r.maxTokens).toBe(s.maxTokens);
      expect(r.model).toBe('tracewarp-sim');
      expect(r.params).toEqual({ model: 'tracewarp-sim', max_tokens: s.maxTokens, stream: s.stream });
      expect(r.streamed).toBe(s.stream);
      if (s.stream) {
        // role chunk + one per token + finish chunk + usage chunk + [DONE]
        expect(r.eventCount).toBe(s.maxTokens + 4);
        expect(r.ttftUs).toBeGreaterThanOrEqual(r.ttfbUs!);
      }
      expect(r.latencyUs).toBeGreaterThanOrEqual(r.ttfbUs!);
    });
  });

  it('stores each distinct shape once, as structure without values', () => {
    const shape = records[0]!.shape;
    expect(shape.kind).toBe('json');
    expect(JSON.stringify(shape.skeleton)).toContain('"v":"system"');
    expect(JSON.stringify(shape.skeleton)).not.toContain('tracewarp-sim');
    // 12 chat requests of one structure (`stream` is a kept parameter, not structure) and two body-less GETs:
    // 1 JSON shape + 1 empty shape.
    const db = new Database(tracePath, { readonly: true });
    const shapes = (db.prepare('SELECT count(*) AS n FROM shapes').get() as { n: number }).n;
    db.close();
    expect(shapes).toBe(2);
    expect(records.filter((r) => r.shape.kind === 'json').length).toBe(12);
  });

  it('keeps no body value, credential or query value anywhere in the file', () => {
    expect(existsSync(tracePath + '-wal')).toBe(false);
    const bytes = readFileSync(tracePath).toString('latin1');
    for (const s of SECRETS) {
      expect(bytes.includes(s)).toBe(false);
      expect(bytes.includes(Buffer.from(s).toString('base64'))).toBe(false);
    }
    // A query key outside the standard ones is a keyed token (issue 10, class 6); no value is kept.
    expect(records[0]!.features.query).toEqual([[expect.stringMatching(/^\{q:[0-9a-f]{8}\}$/), null]]);
    expect(records[0]!.features.headers).toEqual(expect.arrayContaining([['authorization', null], ['content-type', 'application/json']]));
  });
});

describe('record CLI: SIGINT finishes in-flight exchanges and loses nothing', () => {
  it('records every exchange, including those in flight at Ctrl-C, and closes the file cleanly', async () => {
    const tmp = tempDir();
    const sim = await startCli(['sim', '--listen', '127.0.0.1:0', '--decode-step-ms', '20']);
    const trace = join(tmp.dir, 'sigint.trace.db');
    const rec = await startCli(['record', '--upstream', sim.url, '--listen', '127.0.0.1:0', '--out', trace]);
    try {
      const quick = [];
      for (let i = 0; i < 10; i++) {
        quick.push(request(`${rec.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi there' }], max_tokens: 2 }) }).then((r) => r.body.text()));
      }
      await Promise.all(quick);
      // Three streams of 40 tokens × 20 ms ≈ 0.8 s each, still running when SIGINT arrives.
      // SIGINT goes once all three have their response headers, i.e. are streaming through the proxy.
      const slow = await Promise.all(Array.from({ length: 3 }, () => request(`${rec.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'tell me more' }], max_tokens: 40, stream: true }) })));
      rec.child.kill('SIGINT');
      const answers = await Promise.all(slow.map(async (r) => ({ status: r.statusCode, text: await r.body.text() })));
      for (const a of answers) {
        expect(a.status).toBe(200);
        expect(a.text.endsWith('data: [DONE]\n\n')).toBe(true);
      }
      expect(await rec.exited).toBe(0);
      expect(rec.output().stdout).toContain('recorded 13 exchanges');
      expect(existsSync(trace + '-wal')).toBe(false);
      const reader = new TraceReader(trace);
      const recs = [...reader.records()];
      reader.close();
      expect(recs).toHaveLength(13);
      expect(recs.filter((r) => r.streamed && r.outputTokens === 40 && r.errorKind === null)).toHaveLength(3);
    } finally {
      rec.child.kill('SIGKILL');
      sim.child.kill('SIGINT');
      await sim.exited;
      tmp.cleanup();
    }
  });

  it('a second Ctrl-C cuts the exchanges still in flight: those the clients completed and the cut ones are all in the trace', async () => {
    const tmp = tempDir();
    let received = 0;
    const up = await startUpstream((req, res) => {
      received++;
      const ms = Number(new URL(req.url!, 'http://x').searchParams.get('ms'));
      const t = setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), ms);
      res.on('close', () => clearTimeout(t));
    });
    const trace = join(tmp.dir, 'cut.trace.db');
    const rec = await startCli(['record', '--upstream', up.url, '--listen', '127.0.0.1:0', '--out', trace]);
    try {
      const answers = [...Array(10).fill(300), ...Array(10).fill(30_000)].map((ms) =>
        request(`${rec.url}/v1/x?ms=${ms}`).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }), () => ({ status: 0, body: '' })));
      await waitFor(() => received === 20, 20_000);
      rec.child.kill('SIGINT');
      await waitFor(() => rec.output().stderr.includes('Ctrl-C again'), 20_000);
      await new Promise((r) => setTimeout(r, 1000)); // the 300 ms ones finish within the grace period
      rec.child.kill('SIGINT');
      expect(await rec.exited).toBe(0);
      const got = await Promise.all(answers);
      expect(got.filter((a) => a.status === 200)).toHaveLength(10);
      expect(rec.output().stderr).toContain('cutting 10 exchanges still in flight');
      const reader = new TraceReader(trace);
      const recs = [...reader.records()];
      reader.close();
      expect(recs).toHaveLength(20);
      expect(recs.filter((r) => r.status === 200 && r.errorKind === null)).toHaveLength(10);
      expect(recs.filter((r) => r.errorKind === 'proxy_shutdown')).toHaveLength(10);
    } finally {
      rec.child.kill('SIGKILL');
      await up.close();
      tmp.cleanup();
    }
  });

  it('refuses to overwrite an existing trace without --force (exit 2)', async () => {
    const tmp = tempDir();
    const trace = join(tmp.dir, 'exists.trace.db');
    const first = await runCli(['import', 'mooncake', 'fixtures/mooncake-first-200.jsonl', '--out', trace]);
    expect(first.code).toBe(0);
    const again = await runCli(['record', '--upstream', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--out', trace]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already exists');
    tmp.cleanup();
  });
});
