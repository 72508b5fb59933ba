import Database from 'better-sqlite3';
import { basename, join } from 'node:path';
import { copyFileSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { startRecord } from '../src/cli/record.ts';
import { decodeBlob } from '../src/trace/codec.ts';
import { TraceReader } from '../src/trace/reader.ts';
import type { SkeletonNode, TraceRecord } from '../src/types.ts';
import { captureOutput, ROOT, startUpstream, tempDir, waitFor } from './helpers.ts';
import { findPlanted, readAll, traceFiles } from './pii-scan.ts';

/**
 * The leak classes of issue 10 (test/fixtures/pii-classes/README.md): booleans with meaning, object keys that are data,
 * model strings, path segments, numbers in kept parameters, names (query keys, header names, form and multipart field
 * names), media types, and the answer's Server-Timing names. One case per row of cases.json; a plant is unique to its
 * case, so a hit names the case, its class and the value.
 */
interface Case {
  id: string; class: number; adapter: string; note: string; method: string; path: string; headers: Record<string, string>;
  body: string; plants: string[]; ws?: string[]; twin_body?: string; response_headers?: Record<string, string>;
}
const CASES = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/pii-classes/cases.json'), 'utf8')) as Case[];

/** The negative control: public protocol values a trace must keep readable (not plants). */
const clean = (id: string, model: string): Case => ({
  id, class: 0, adapter: 'openai-chat', note: 'negative control', method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hello there, how are you today?' }], stream: true, max_tokens: 256, temperature: 0.7 }), plants: [],
});
const CLEAN = [clean('clean-gpt', 'gpt-4o-mini'), clean('clean-llama', 'meta-llama/Llama-3.1-8B-Instruct')];

/** What is sent, in order: each case, its boolean twin right after it, then the negative control. seq = index + 1. */
interface Sent { c: Case; body: string; twinOf?: number }
const SENT: Sent[] = [];
for (const c of CASES) {
  SENT.push({ c, body: c.body });
  if (c.twin_body !== undefined) SENT.push({ c, body: c.twin_body, twinOf: SENT.length });
}
for (const c of CLEAN) SENT.push({ c, body: c.body });

/** Plants `--capture-raw` cannot show: it stores request URL, headers and body, never answers or WebSocket messages. */
const RAW_EXEMPT: Record<string, string> = {
  'acme-tenant': 'sent %-encoded (acme%2Dtenant), a form the scan does not derive from the value',
  'kofi.mensah': 'inside a WebSocket message',
  'bluth-company': 'inside a WebSocket message',
  acme_fraud_check: 'in the answer\'s Server-Timing header',
  'hawkins-lab': 'in the answer\'s Server-Timing header',
  'shard-halvorsen-eu': 'in the answer\'s Server-Timing header',
  'tenant-lannister': 'in the answer\'s Server-Timing header',
};

/** Everything a case puts on the wire, with its path also %-decoded (for the corpus checks). */
const wireText = (c: Case) => [c.path, safeDecode(c.path), ...Object.entries(c.headers).flat(), c.body, c.twin_body ?? '', ...(c.ws ?? []), ...Object.entries(c.response_headers ?? {}).flat()].join('\n');
function safeDecode(s: string): string {
  try { return decodeURIComponent(s); } catch { return s; }
}

interface Hay { name: string; text: string }
const latin1 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x));

/**
 * Every row of every table of a trace, decoded: MessagePack blobs as JSON (so a number kept in a blob or an INTEGER
 * column is seen as digits), other cells as text. Rows of `requests`/`raw_requests` are labelled with their case.
 */
function decodedRows(path: string): Hay[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  const out: Hay[] = [];
  try {
    for (const { name } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>) {
      for (const row of db.prepare(`SELECT rowid AS _rowid_, * FROM "${name}"`).all() as Array<Record<string, unknown>>) {
        const seq = Number(row.seq ?? row._rowid_);
        const label = name === 'requests' || name === 'raw_requests' ? `${name}#${seq}(${SENT[seq - 1]?.c.id ?? '?'})` : `${name}#${row._rowid_}`;
        for (const [col, v] of Object.entries(row)) {
          if (col === '_rowid_' || v === null) continue;
          let text = String(v);
          if (v instanceof Uint8Array) {
            text = Buffer.from(v).toString('latin1');
            try { text += '\n' + latin1(json(decodeBlob(v))); } catch { /* not MessagePack (a raw body) */ }
          } else text = latin1(text);
          out.push({ name: `${label}.${col}`, text });
        }
      }
    }
  } finally {
    db.close();
  }
  return out;
}

/** Each case's plants found in the haystacks: case, class, adapter, value, the form that hit and where. */
function leaks(cases: Case[], hay: Hay[]): string[] {
  const texts = hay.map((h) => h.text);
  return cases.flatMap((c) => findPlanted(c.plants, texts).map((h) => {
    const needle = latin1(h.form);
    const where = hay.filter((x) => x.text.includes(needle)).map((x) => x.name);
    return `${c.id} [class ${c.class}, ${c.adapter}]: ${JSON.stringify(h.value)} as ${JSON.stringify(h.form)} in ${where.slice(0, 4).join(', ')}${where.length > 4 ? ` (+${where.length - 4})` : ''}`;
  }));
}

function sendHttp(base: string, s: Sent): Promise<number> {
  const body = Buffer.from(s.body, 'utf8');
  return new Promise((resolve, reject) => {
    const req = httpRequest(base + s.c.path, { method: s.c.method, headers: { ...s.c.headers, 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Opens the WebSocket, sends the case's messages, waits for each echo, closes and waits for the close handshake. */
function sendWs(base: string, c: Case): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(base.replace(/^http/, 'ws') + c.path, { headers: c.headers });
    let left = c.ws!.length;
    ws.once('open', () => { for (const m of c.ws!) ws.send(m); });
    ws.on('message', () => { if (--left === 0) ws.close(1000); });
    ws.once('close', () => resolve(101));
    ws.once('error', reject);
  });
}

interface Recording { hay: Hay[]; trace: string; upstreamBodies: Buffer[]; cleanup: () => void }

/** Records the whole corpus (and the controls) through the real proxy in one session. */
async function recordCorpus(captureRaw: boolean): Promise<Recording> {
  const tmp = tempDir();
  const upstreamBodies: Buffer[] = [];
  let current: Case | null = null;
  const up = await startUpstream((_req, res, body) => {
    upstreamBodies.push(body);
    res.writeHead(200, { 'content-type': 'application/json', ...(current?.response_headers ?? {}) });
    res.end('{"ok":true}');
  });
  const wss = new WebSocketServer({ server: up.server });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  const trace = join(tmp.dir, 'classes.trace.db');
  const out = captureOutput();
  const session = await startRecord({ upstream: up.url, host: '127.0.0.1', port: 0, out: trace, captureRaw }, out);
  try {
    for (const s of SENT) {
      current = s.c;
      const status = s.c.ws ? await sendWs(session.proxy.url, s.c) : await sendHttp(session.proxy.url, s);
      expect(status, s.c.id).toBe(s.c.ws ? 101 : 200);
    }
    // Every record written (WebSocket sessions are recorded when they end), then a copy of the live files.
    const count = () => {
      const db = new Database(trace, { readonly: true, fileMustExist: true });
      try { return (db.prepare('SELECT count(*) AS n FROM requests').get() as { n: number }).n; } finally { db.close(); }
    };
    await waitFor(() => count() === SENT.length, 10_000).catch(() => { throw new Error(`${count()} of ${SENT.length} exchanges recorded`); });
    await new Promise((r) => setTimeout(r, 200));
    const live = traceFiles(trace).map((p) => {
      const dst = join(tmp.dir, `live-${basename(p)}`);
      copyFileSync(p, dst);
      return dst;
    });
    expect(live.length).toBeGreaterThanOrEqual(2); // the database and its WAL while recording
    await session.stop();
    const files = [...live, ...traceFiles(trace)];
    const hay: Hay[] = [
      ...readAll(files).map((text, i) => ({ name: basename(files[i]!), text })),
      { name: 'log', text: [...out.stdout, ...out.stderr].join('\n') },
      ...decodedRows(trace),
    ];
    return { hay, trace, upstreamBodies, cleanup: tmp.cleanup };
  } catch (err) {
    await session.stop().catch(() => {});
    tmp.cleanup();
    throw err;
  } finally {
    for (const c of wss.clients) c.terminate();
    wss.close();
    await up.close();
  }
}

describe('privacy classes (issue 10): the corpus itself', () => {
  it('is well-formed: unique ids; plants of 6+ characters, unique, on the wire of their own case and of no other', () => {
    expect(new Set(CASES.map((c) => c.id)).size).toBe(CASES.length);
    const plants = CASES.flatMap((c) => c.plants);
    expect(plants.filter((p) => p.length < 6)).toEqual([]);
    expect(plants.filter((p, i) => plants.indexOf(p) !== i)).toEqual([]);
    const problems: string[] = [];
    for (const c of CASES) {
      if (c.plants.length === 0) problems.push(`${c.id}: no plants`);
      for (const p of c.plants) {
        if (findPlanted([p], [latin1(wireText(c))]).length === 0) problems.push(`${c.id}: ${p} is not on its wire`);
        for (const o of [...CASES, ...CLEAN]) if (o !== c && findPlanted([p], [latin1(wireText(o))]).length > 0) problems.push(`${c.id}: ${p} also in ${o.id}`);
      }
      if (c.twin_body !== undefined) {
        // A twin differs from its case in boolean values only.
        const noBools = (s: string) => JSON.stringify(JSON.parse(s), (_k, v) => (typeof v === 'boolean' ? null : v));
        if (c.twin_body === c.body || noBools(c.twin_body) !== noBools(c.body)) problems.push(`${c.id}: twin_body must differ in booleans only`);
      }
      if (c.ws && (c.method !== 'GET' || c.body !== '')) problems.push(`${c.id}: a WebSocket case is a GET without a body`);
    }
    for (const p of Object.keys(RAW_EXEMPT)) if (!plants.includes(p)) problems.push(`RAW_EXEMPT names ${p}, which is no plant`);
    expect(problems).toEqual([]);
  });

  it('covers every class and every adapter', () => {
    expect([...new Set(CASES.map((c) => c.class))].sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const adapters = new Set(CASES.map((c) => c.adapter));
    for (const a of ['openai-chat', 'openai-completions', 'openai-embeddings', 'ollama', 'kserve-v2', 'kserve-generate', 'tgi', 'tf-serving', 'torchserve', 'multipart', 'form', 'generic-json', 'websocket']) expect(adapters.has(a), a).toBe(true);
    // APIs without an adapter of their own (generic JSON today), and both Ollama routes.
    for (const re of [/^\/v1\/responses$/, /^\/v1\/messages$/, /:generateContent$/, /^\/api\/chat$/, /^\/api\/generate$/]) expect(CASES.some((c) => re.test(c.path)), String(re)).toBe(true);
  });
});

describe('privacy classes (issue 10): through the real proxy', () => {
  let rec: Recording;
  beforeAll(async () => {
    rec = await recordCorpus(false);
  }, 60_000);
  afterAll(() => rec?.cleanup());

  const rows = () => {
    const db = new Database(rec.trace, { readonly: true });
    try { return db.prepare('SELECT seq, protocol, shape_id FROM requests ORDER BY seq').all() as Array<{ seq: number; protocol: string; shape_id: number }>; } finally { db.close(); }
  };

  it('sends every body byte-exact and routes each case to the adapter it names', () => {
    const http = SENT.filter((s) => !s.c.ws);
    expect(rec.upstreamBodies).toHaveLength(http.length);
    http.forEach((s, i) => expect(rec.upstreamBodies[i]!.toString('utf8'), s.c.id).toBe(s.body));
    const got = rows().map((r) => `${SENT[r.seq - 1]?.c.id}: ${r.protocol}`);
    expect(got).toEqual(SENT.map((s) => `${s.c.id}: ${s.c.adapter}`));
  });

  it('no planted value reaches the trace: db, -wal, -shm (live and after), every decoded row, the logs', () => {
    expect(leaks(CASES, rec.hay)).toEqual([]);
  });

  it('negative control: public model ids, stream, max_tokens, temperature, keys and the route stay readable', () => {
    const reader = new TraceReader(rec.trace);
    const bySeq = new Map<number, TraceRecord>([...reader.records()].map((r) => [r.seq, r]));
    reader.close();
    const keys = (n: SkeletonNode | null | undefined, acc = new Set<string>()): Set<string> => {
      if (n?.t === 'o') for (const [k, v] of n.k) keys(v, acc.add(k));
      else if (n?.t === 'a') n.e.forEach((e) => keys(e, acc));
      else if (n?.t === 'u') keys(n.of, acc);
      return acc;
    };
    for (const c of CLEAN) {
      const r = bySeq.get(SENT.findIndex((s) => s.c === c) + 1);
      expect(r, `${c.id} was recorded and read back`).toBeDefined();
      const model = (JSON.parse(c.body) as { model: string }).model;
      expect({ route: r!.route, protocol: r!.protocol, model: r!.model, maxTokens: r!.maxTokens }).toEqual({ route: '/v1/chat/completions', protocol: 'openai-chat', model, maxTokens: 256 });
      expect(r!.params).toMatchObject({ model, stream: true, max_tokens: 256, temperature: 0.7 });
      expect([...keys(r!.shape.skeleton)]).toEqual(expect.arrayContaining(['model', 'messages', 'role', 'content', 'stream', 'max_tokens', 'temperature']));
      expect(JSON.stringify(r!.shape.skeleton)).toContain('{"t":"l","v":"user"}');
    }
  });

  it('class 1: two requests differing only in a boolean share one shape', () => {
    const shape = new Map(rows().map((r) => [r.seq, r.shape_id]));
    const twins = SENT.map((s, i) => ({ s, seq: i + 1 })).filter((x) => x.s.twinOf !== undefined);
    expect(twins.length).toBeGreaterThan(0);
    for (const { s, seq } of twins) expect(shape.get(seq), `${s.c.id}: shape of the twin vs the case`).toBe(shape.get(s.twinOf!));
  });
});

describe('privacy classes (issue 10): the scan is able to fail', () => {
  it('with captureRaw the same scan finds every plant, except the listed ones raw capture cannot hold', async () => {
    const r = await recordCorpus(true);
    try {
      const found = new Set(findPlanted(CASES.flatMap((c) => c.plants), r.hay.map((h) => h.text)).map((h) => h.value));
      const missing = CASES.flatMap((c) => c.plants.filter((p) => !found.has(p) && !(p in RAW_EXEMPT)).map((p) => `${c.id} [class ${c.class}]: ${p}`));
      expect(missing).toEqual([]);
      expect(r.hay.find((h) => h.name === 'log')!.text).toContain('WARNING: --capture-raw');
    } finally {
      r.cleanup();
    }
  }, 60_000);
});
