import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { startRecordingProxy, type RecordingProxy } from '../src/capture/proxy.ts';
import type { TraceRecord } from '../src/types.ts';
import { recordOf, startUpstream, waitFor } from './helpers.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('recording proxy pass-through (real upstream on port 0)', () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let proxy: RecordingProxy;
  const records: TraceRecord[] = [];
  const seen: Array<{ method: string; url: string; headers: Record<string, unknown>; body: Buffer }> = [];
  const responseBlob = randomBytes(1 << 20);

  beforeAll(async () => {
    upstream = await startUpstream((req, res, body) => {
      seen.push({ method: req.method!, url: req.url!, headers: { ...req.headers }, body });
      if (req.url === '/echo') {
        res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
        res.end(body);
      } else if (req.url === '/blob') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': responseBlob.length });
        res.end(responseBlob);
      } else if (req.url === '/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let i = 0;
        const t = setInterval(() => {
          if (i < 10) res.write(`data: {"choices":[{"delta":{"content":"tok${i}"}}]}\n\n`);
          else {
            clearInterval(t);
            res.end('data: [DONE]\n\n');
          }
          i++;
        }, 50);
      } else if (req.url === '/big-headers') {
        res.writeHead(200, { 'content-type': 'text/plain', 'x-big': 'b'.repeat(40_000) });
        res.end('ok');
      } else if (req.url!.startsWith('/q')) {
        res.writeHead(204);
        res.end();
      } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":"nope"}');
      }
    });
    proxy = await startRecordingProxy({ upstream: upstream.url, onRecord: (r) => records.push(r) });
  });
  afterAll(async () => {
    await proxy.close(1000);
    await upstream.close();
  });

  it('answers Expect: 100-continue itself and forwards the body (not the expectation); passes 40 KB response headers', async () => {
    const body = Buffer.from('{"model":"m","messages":[]}');
    const answer = await new Promise<{ status: number; text: string; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = httpRequest(`${proxy.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': body.length, expect: '100-continue' } }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, text, continued }));
      });
      req.on('continue', () => {
        continued = true;
        req.end(body);
      });
      req.on('error', reject);
    });
    expect(answer).toEqual({ status: 200, text: body.toString(), continued: true });
    expect(seen.at(-1)!.headers.expect).toBeUndefined();
    const client = new Agent({ maxHeaderSize: 1 << 20 }); // the test's own client must accept them too
    const big = await request(`${proxy.url}/big-headers`, { dispatcher: client });
    expect(big.statusCode).toBe(200);
    expect(big.headers['x-big']).toHaveLength(40_000);
    expect(await big.body.text()).toBe('ok');
    await client.close();
  });

  it('forwards every method with its body: PROPFIND, PURGE, QUERY, MKCOL', async () => {
    for (const method of ['PROPFIND', 'PURGE', 'QUERY', 'MKCOL']) {
      const res = await request(`${proxy.url}/echo`, { method, headers: { 'content-type': 'application/xml' }, body: `<${method.toLowerCase()}/>` });
      expect({ method, status: res.statusCode, body: await res.body.text() }).toEqual({ method, status: 200, body: `<${method.toLowerCase()}/>` });
      expect(seen.at(-1)!.method).toBe(method);
    }
  });

  it('forwards a JSON body byte for byte and answers unchanged', async () => {
    const body = '{"model":"m","messages":[{"role":"user","content":"héllo \\u00e9 wörld"}],  "max_tokens": 7}';
    const res = await request(`${proxy.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const back = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).toBe(200);
    expect(back.toString('utf8')).toBe(body);
    expect(seen.at(-1)!.body.toString('utf8')).toBe(body);
  });

  it('passes 1 MiB of random bytes through both ways (SHA-256 equal)', async () => {
    const blob = randomBytes(1 << 20);
    const res = await request(`${proxy.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: blob });
    const back = Buffer.from(await res.body.arrayBuffer());
    expect(sha(seen.at(-1)!.body)).toBe(sha(blob));
    expect(sha(back)).toBe(sha(blob));
    const down = await request(`${proxy.url}/blob`);
    expect(sha(Buffer.from(await down.body.arrayBuffer()))).toBe(sha(responseBlob));
  });

  it('forwards a chunked request body intact', async () => {
    const payload = randomBytes(200_000);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${proxy.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      for (let i = 0; i < payload.length; i += 50_000) req.write(payload.subarray(i, i + 50_000));
      req.end();
    });
    expect(status).toBe(200);
    expect(sha(seen.at(-1)!.body)).toBe(sha(payload));
  });

  it('streams SSE events one by one at the upstream pace and records per-event offsets', async () => {
    const before = records.length;
    const res = await request(`${proxy.url}/sse`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"stream":true}' });
    const arrivals: number[] = [];
    for await (const chunk of res.body) {
      for (const _ of String(chunk).split('\n\n').filter((s) => s.startsWith('data:'))) arrivals.push(performance.now());
    }
    expect(arrivals.length).toBe(11);
    const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]!);
    // Not buffered: every gap stays near the upstream's 50 ms (timers jitter by a few ms on a loaded machine).
    for (const g of gaps) expect(g).toBeGreaterThan(25);
    const rec = await recordOf(records, before, (r) => r.route === '/sse');
    expect(rec.streamed).toBe(true);
    expect(rec.eventCount).toBe(11);
    expect(rec.eventOffsetsUs).toHaveLength(11);
    const recGaps = rec.eventOffsetsUs!.slice(1).map((t, i) => t - rec.eventOffsetsUs![i]!);
    for (const g of recGaps) expect(g).toBeGreaterThan(25_000);
    expect(rec.ttftUs).toBe(rec.eventOffsetsUs![0]);
  });

  it('forwards repeated query keys and encoded values byte for byte and records no query value', async () => {
    const q = '/q?ids=1&ids=2&ids=3&filter=%5B%7B%22a%22%3A1%7D%5D&empty=&flag';
    const before = records.length;
    const res = await request(`${proxy.url}${q}`);
    await res.body.dump();
    expect(seen.at(-1)!.url).toBe(q);
    // A path word no API defines is kept as a keyed token (issue 10, class 4).
    expect((await recordOf(records, before, (r) => r.method === 'GET')).route).toMatch(/^\/\{seg:[0-9a-f]{8}\}$/);
  });

  it('drops hop-by-hop headers and the ones Connection names', async () => {
    // node:http, because undici refuses to send hop-by-hop headers at all.
    const text = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${proxy.url}/echo`, {
        method: 'POST',
        headers: { connection: 'keep-alive, x-hop-secret', 'x-hop-secret': 's3cr3t', 'keep-alive': 'timeout=5', te: 'trailers', 'proxy-authorization': 'Basic Zm9vOmJhcg==', 'content-type': 'text/plain', 'x-end-to-end': 'kept' },
      }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
      req.end('intact');
    });
    expect(text).toBe('intact');
    const h = seen.at(-1)!.headers;
    for (const name of ['x-hop-secret', 'keep-alive', 'te', 'proxy-authorization']) expect(h[name]).toBeUndefined();
    expect(h['x-end-to-end']).toBe('kept');
  });

  it('forwards malformed JSON unchanged and records it as unparseable with length and content type only', async () => {
    const before = records.length;
    const res = await request(`${proxy.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":' });
    expect(await res.body.text()).toBe('{"model":');
    const r = await recordOf(records, before, (x) => x.method === 'POST' && x.requestBytes === 9);
    expect(r.shape).toEqual({ kind: 'unparseable', contentType: 'application/json', skeleton: null });
    expect(r.requestBytes).toBe(9);
    expect(r.params).toEqual({});
  });

  it('forwards a content type the web framework cannot parse as sent (no 415 of its own), and records none of it', async () => {
    for (const ct of ['application/json, tanya.ivanova@example.com', 'garbage', 'application/json']) {
      const before = records.length;
      const res = await request(`${proxy.url}/echo`, { method: 'POST', headers: { 'content-type': ct }, body: '{"a":1}' });
      expect(res.statusCode, ct).toBe(200);
      expect(await res.body.text()).toBe('{"a":1}');
      expect(seen.at(-1)!.headers['content-type']).toBe(ct);
      const r = await recordOf(records, before, (x) => x.method === 'POST' && x.requestBytes === 7);
      expect(r.shape.contentType, ct).toBe(ct === 'application/json' ? 'application/json' : null);
      expect(JSON.stringify(r)).not.toContain('tanya');
    }
  });

  it('passes upstream error statuses through and records them', async () => {
    const before = records.length;
    const res = await request(`${proxy.url}/missing/12345`, { method: 'DELETE' });
    expect(res.statusCode).toBe(404);
    expect(await res.body.text()).toBe('{"error":"nope"}');
    expect(await recordOf(records, before, (r) => r.method === 'DELETE')).toMatchObject({ status: 404, method: 'DELETE', route: expect.stringMatching(/^\/\{seg:[0-9a-f]{8}\}\/\{id\}$/), errorKind: null });
  });
});

describe('recording proxy upstream failures', () => {
  it('cancels the upstream at once when the client aborts mid-stream, and records client_aborted', async () => {
    let upstreamClosedAt = 0;
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const t = setInterval(() => res.write('data: {"choices":[{"delta":{"content":"x"}}]}\n\n'), 20);
      res.on('close', () => {
        clearInterval(t);
        upstreamClosedAt = performance.now();
      });
    });
    const records: TraceRecord[] = [];
    const proxy = await startRecordingProxy({ upstream: up.url, onRecord: (r) => records.push(r) });
    try {
      const ac = new AbortController();
      const res = await request(`${proxy.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"stream":true,"messages":[]}', signal: ac.signal });
      let events = 0;
      let abortedAt = 0;
      try {
        for await (const chunk of res.body) {
          events += String(chunk).split('\n\n').length - 1;
          if (events >= 3) {
            abortedAt = performance.now();
            ac.abort();
          }
        }
      } catch {
        // the abort ends the iteration with an error
      }
      await waitFor(() => records.length > 0 && upstreamClosedAt > 0);
      expect(upstreamClosedAt - abortedAt).toBeLessThan(100);
      expect(records[0]).toMatchObject({ errorKind: 'client_aborted', status: 200, streamed: true });
      expect(records[0]!.eventCount).toBeGreaterThanOrEqual(3);
    } finally {
      await proxy.close(500);
      await up.close();
    }
  });

  it('cancels the upstream within 100 ms when the client aborts before any answer; 50 times, then a normal request works', async () => {
    const opened = new Map<string, number>();
    const cancelDelays: number[] = [];
    const abortedAt = new Map<string, number>();
    const up = await startUpstream((req, res) => {
      const id = req.url!;
      opened.set(id, performance.now());
      if (id === '/ok') return res.end('fine');
      res.on('close', () => {
        const a = abortedAt.get(id);
        if (a !== undefined) cancelDelays.push(performance.now() - a);
      });
      // Thinks for 5 s before answering: only a cancel ends it sooner.
      const t = setTimeout(() => res.end('late'), 5000);
      res.on('close', () => clearTimeout(t));
    });
    const records: TraceRecord[] = [];
    const proxy = await startRecordingProxy({ upstream: up.url, onRecord: (r) => records.push(r) });
    try {
      await Promise.all(Array.from({ length: 50 }, async (_, i) => {
        const id = `/think/${i}`;
        const ac = new AbortController();
        const pending = request(proxy.url + id, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, signal: ac.signal }).catch(() => undefined);
        await waitFor(() => opened.has(id));
        abortedAt.set(id, performance.now());
        ac.abort();
        await pending;
      }));
      await waitFor(() => cancelDelays.length === 50 && records.length === 50);
      expect(Math.max(...cancelDelays)).toBeLessThan(100);
      expect(records.every((r) => r.errorKind === 'client_aborted' && r.status === null)).toBe(true);
      const ok = await request(`${proxy.url}/ok`);
      expect(await ok.body.text()).toBe('fine');
    } finally {
      await proxy.close(500);
      await up.close();
    }
  });

  it('records upstream_reset when the upstream drops the connection mid-stream', async () => {
    const up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"content":"a"}}]}\n\n');
      setTimeout(() => req.socket.destroy(), 50);
    });
    const records: TraceRecord[] = [];
    const proxy = await startRecordingProxy({ upstream: up.url, onRecord: (r) => records.push(r) });
    try {
      const res = await request(`${proxy.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"stream":true,"messages":[]}' });
      await expect(res.body.text()).rejects.toThrow();
      await waitFor(() => records.length > 0);
      expect(records[0]).toMatchObject({ errorKind: 'upstream_reset', status: 200, eventCount: 1 });
    } finally {
      await proxy.close(500);
      await up.close();
    }
  });

  it('answers 502 and records upstream_refused when nothing listens upstream', async () => {
    const dead = await startUpstream(() => undefined);
    const deadUrl = dead.url;
    await dead.close();
    const records: TraceRecord[] = [];
    const proxy = await startRecordingProxy({ upstream: deadUrl, onRecord: (r) => records.push(r) });
    try {
      const res = await request(`${proxy.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(res.statusCode).toBe(502);
      await res.body.dump();
      await waitFor(() => records.length > 0);
      expect(records[0]).toMatchObject({ status: 502, errorKind: 'upstream_refused' });
    } finally {
      await proxy.close(1000);
    }
  });

  it('answers 504 and records upstream_timeout when headers do not come in time', async () => {
    const slow = await startUpstream(() => undefined); // never answers
    const records: TraceRecord[] = [];
    const proxy = await startRecordingProxy({ upstream: slow.url, headersTimeoutMs: 300, onRecord: (r) => records.push(r) });
    try {
      const res = await request(`${proxy.url}/slow`);
      expect(res.statusCode).toBe(504);
      await res.body.dump();
      await waitFor(() => records.length > 0);
      expect(records[0]).toMatchObject({ status: 504, errorKind: 'upstream_timeout' });
    } finally {
      await proxy.close(1000);
      await slow.close();
    }
  });
});
