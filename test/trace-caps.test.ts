import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { templateRoute } from '../src/anonymize/route.ts';
import { TracewarpError } from '../src/errors.ts';
import { readAzureLlm } from '../src/importers/azure-llm.ts';
import { importedChatRecord } from '../src/importers/common.ts';
import { readMooncake } from '../src/importers/mooncake.ts';
import { describeRequest, synthesizeRequest } from '../src/protocols/index.ts';
import { createRng } from '../src/rng.ts';
import { decodeBlob, encodeBlob } from '../src/trace/codec.ts';
import { TraceReader } from '../src/trace/reader.ts';
import { MAX_BLOB_BYTES, MAX_PROMPT_TOKENS, MAX_SPAN_US } from '../src/trace/validate.ts';
import { TraceWriter } from '../src/trace/writer.ts';
import type { Features, TraceRecord } from '../src/types.ts';
import { FIXTURES, ROOT, runCli, tempDir } from './helpers.ts';

const P = join(ROOT, 'test/fixtures/protocols');
const PII = join(ROOT, 'test/fixtures/pii/bodies');

/** Chat records 1..CHAT (hostile edits go to these), then one record per protocol payload, then the special ones. */
const CHAT = 40;

interface Payload { key: string; method: string; path: string; contentType: string; body: Buffer; headers?: Record<string, string> }

function multipartBody(png: Buffer): Buffer {
  const b = 'XyZ123';
  return Buffer.concat([
    Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\ndescribe this digit\r\n`),
    Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="image"; filename="0.png"\r\nContent-Type: image/png\r\n\r\n`), png, Buffer.from('\r\n'),
    Buffer.from(`--${b}--\r\n`),
  ]);
}

function payloads(): Payload[] {
  const png = readFileSync(join(P, 'mnist_0.png'));
  const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'INPUT0', shape: [2, 8], datatype: 'FP32', parameters: { binary_data_size: 64 } }], outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }] }));
  const j = 'application/json';
  return [
    { key: 'chat', method: 'POST', path: '/v1/chat/completions', contentType: j, body: readFileSync(join(PII, '01_openai_chat_basic.json')) },
    { key: 'tools', method: 'POST', path: '/v1/chat/completions', contentType: j, body: readFileSync(join(PII, '03_openai_tool_args_string.json')) },
    { key: 'vision', method: 'POST', path: '/v1/chat/completions', contentType: j, body: readFileSync(join(PII, '04_openai_vision_png_text.json')) },
    { key: 'completions', method: 'POST', path: '/v1/completions', contentType: j, body: readFileSync(join(PII, '15_completions_prompt.json')) },
    { key: 'embeddings', method: 'POST', path: '/v1/embeddings', contentType: j, body: readFileSync(join(PII, '06_embeddings_array.json')) },
    { key: 'kserve', method: 'POST', path: '/v2/models/cifar10/infer', contentType: j, body: readFileSync(join(P, 'cifar10_input_v2.json')) },
    { key: 'kserve-bytes', method: 'POST', path: '/v2/models/llm/versions/3/infer', contentType: j, body: readFileSync(join(PII, '09_kserve_v2_bytes.json')) },
    { key: 'kserve-binary', method: 'POST', path: '/v2/models/simple/infer', contentType: 'application/octet-stream', body: Buffer.concat([json, Buffer.alloc(64, 1)]), headers: { 'inference-header-content-length': String(json.length) } },
    { key: 'tf-serving', method: 'POST', path: '/v1/models/sklearn-iris:predict', contentType: j, body: readFileSync(join(P, 'iris-input.json')) },
    { key: 'torchserve-json', method: 'POST', path: '/predictions/translator', contentType: j, body: readFileSync(join(PII, '13_torchserve_data.json')) },
    { key: 'torchserve-png', method: 'POST', path: '/predictions/mnist', contentType: 'image/png', body: png },
    { key: 'multipart', method: 'POST', path: '/upload', contentType: 'multipart/form-data; boundary=XyZ123', body: multipartBody(png) },
    { key: 'form', method: 'POST', path: '/legacy/infer', contentType: 'application/x-www-form-urlencoded', body: readFileSync(join(PII, '26_form_urlencoded.json')) },
    { key: 'generic', method: 'PUT', path: '/api/items/12345', contentType: j, body: Buffer.from('{"a":[1,2,3],"b":{"c":"hello","d":[true,false]},"e":null,"f":[[1.5,2.25],[3.125,4]]}') },
    { key: 'unparseable', method: 'POST', path: '/v1/chat/completions', contentType: j, body: Buffer.from('{"messages": [') },
  ];
}

const offset = (seq: number) => seq * 100_000;

/** Writes the valid trace: chat records, one record per protocol payload, a stream, a WebSocket session, a record at the caps. */
async function writeGoodTrace(path: string): Promise<Record<string, number>> {
  const w = new TraceWriter(path, { source: 'test', anchorWallUs: 1_700_000_000_000_000, anonymization: null });
  const seqOf: Record<string, number> = {};
  let seq = 0;
  for (let i = 1; i <= CHAT; i++) w.add(importedChatRecord(++seq, offset(seq), 50 + i, 20, { model: 'm' }));
  for (const c of payloads()) {
    const d = await describeRequest(c.method, templateRoute(c.path), c.contentType, c.body, true, { headers: { 'content-type': c.contentType, ...c.headers } });
    const { wantsStream: _, ...desc } = d;
    seqOf[c.key] = ++seq;
    w.add({
      ...desc, seq, offsetUs: offset(seq), method: c.method, route: templateRoute(c.path), status: 200, errorKind: null, requestBytes: c.body.length,
      responseBytes: 1234, ttfbUs: 1000, ttftUs: null, latencyUs: 5000, streamed: false, eventCount: null, eventOffsetsUs: null, outputTokens: d.maxTokens,
    });
  }
  const stream = importedChatRecord(++seq, offset(seq), 100, 3, { model: 'm' });
  seqOf.stream = seq;
  w.add({ ...stream, status: 200, streamed: true, eventCount: 5, eventOffsetsUs: [1000, 2000, 3000, 4000, 5000], ttftUs: 2000, ttfbUs: 900, latencyUs: 5100, features: { ...stream.features, nonContentEvents: [0, 4] } });
  seqOf.websocket = ++seq;
  w.add({
    seq, offsetUs: offset(seq), method: 'GET', route: '/v1/realtime', protocol: 'websocket', status: 101, errorKind: null, requestBytes: 0, responseBytes: 0,
    ttfbUs: 800, ttftUs: null, latencyUs: 60_000_000, streamed: false, eventCount: null, eventOffsetsUs: null, promptTokens: null, outputTokens: null,
    messageCount: null, model: null, maxTokens: null, shape: { kind: 'none', contentType: null, skeleton: null }, params: {},
    features: { websocket: { messagesFromClient: 3, messagesFromServer: 9, bytesFromClient: 300, bytesFromServer: 9000, firstServerMessageUs: 1500, closeCode: 1000, closedBy: 'client' } },
  });
  // At the caps exactly: accepted.
  seqOf.atCaps = ++seq;
  w.add(importedChatRecord(seq, MAX_SPAN_US, MAX_PROMPT_TOKENS, 1000, { model: 'm' }));
  w.close();
  seqOf.total = seq;
  return seqOf;
}

type Edit = (db: Database.Database, seq: number) => void;

const setCol = (col: string, sql: string): Edit => (db, seq) => db.prepare(`UPDATE requests SET ${col} = ${sql} WHERE seq = ?`).run(seq);
const editFeatures = (fn: (f: Features & Record<string, unknown>) => void): Edit => (db, seq) => {
  const row = db.prepare('SELECT features FROM requests WHERE seq = ?').get(seq) as { features: Buffer };
  const f = decodeBlob<Features & Record<string, unknown>>(row.features);
  fn(f);
  db.prepare('UPDATE requests SET features = ? WHERE seq = ?').run(encodeBlob(f), seq);
};
const withShape = (shape: unknown): Edit => (db, seq) => {
  const id = Number(db.prepare('INSERT INTO shapes(hash, shape) VALUES (?, ?)').run(`hostile-${seq}`, encodeBlob(shape)).lastInsertRowid);
  db.prepare('UPDATE requests SET shape_id = ? WHERE seq = ?').run(id, seq);
};
const json = (skeleton: unknown) => ({ kind: 'json', contentType: 'application/json', skeleton });
const deep = (n: number): unknown => (n === 0 ? { t: 'i' } : { t: 'a', e: [deep(n - 1)] });

/** One hostile record: which record (a chat seq, or a payload key), the edit, and what the refusal must say. */
interface Hostile { at: number | string; edit: Edit; says: string | RegExp }

const HOSTILE: Hostile[] = [
  // Sizes that drive allocations (the adversarial tester's findings).
  { at: 3, edit: editFeatures((f) => (f.messageTokens = [10, 20, 30, 1e9])), says: 'messageTokens[3] = 1000000000 is over the cap of 2000000 tokens per request' },
  { at: 4, edit: editFeatures((f) => (f.sizes = [1, 1e9])), says: "sizes[1] = 1000000000 is over the cap of 33554432 characters per request (a string's length)" },
  { at: 5, edit: editFeatures((f) => (f.sizes = [1e9, 0])), says: "sizes[0] = 1000000000 is over the cap of 4194304 elements per request (a uniform array's length)" },
  { at: 6, edit: editFeatures((f) => (f.sizes = [2e6, 0])), says: /sizes\[0\] = 2000000 \(a uniform array's length\) brings the request to \d+ JSON values, over the cap of 4194304 values per request/ },
  { at: 7, edit: editFeatures((f) => (f.sizes = [2, 20_000_000])), says: "sizes[1] = 20000000 (a string's length, repeated in 2 array elements) brings the request's strings to 40000000 characters, over the cap of 33554432 characters per request" },
  { at: 8, edit: editFeatures((f) => (f.sizes = [1, -5])), says: 'sizes[1] = -5 is negative' },
  { at: 9, edit: editFeatures((f) => (f.sizes = [])), says: 'sizes has 0 entries, fewer than the 2 the skeleton takes' },
  { at: 10, edit: setCol('request_bytes', '-1'), says: 'request_bytes = -1 is negative' },
  { at: 31, edit: editFeatures((f) => (f.sizes = [0, 0])), says: 'sizes[0] = 0 is the length of a uniform array whose elements have a shape: the record is damaged' },
  { at: 32, edit: setCol('params', "x'93010203'"), says: 'params is a list of 3, not a map' },
  { at: 33, edit: editFeatures((f) => (f.headers = [['x-a', 'v\r\nInjected: 1']])), says: 'headers[0] value is not a valid header value' },
  // Offsets: SQLite stores REAL and TEXT in an INTEGER column.
  { at: 11, edit: setCol('offset_us', '9223372036854775807'), says: 'offset_us = 9223372036854776000 is beyond the safe integer range' },
  { at: 12, edit: setCol('offset_us', '1e15'), says: 'offset_us = 1000000000000000 is over the cap of 31622400000000 µs (366 days, the longest span a trace may cover)' },
  { at: 13, edit: setCol('offset_us', "'NaN'"), says: 'offset_us = "NaN" is not a number' },
  { at: 14, edit: setCol('offset_us', '9e999'), says: 'offset_us = Infinity is not finite' },
  { at: 15, edit: setCol('offset_us', '-5'), says: 'offset_us = -5 is negative' },
  // Malformed skeletons.
  { at: 16, edit: withShape(json({ t: 'o', k: 5 })), says: /shape \d+: skeleton object at the root has keys 5, not a list/ },
  { at: 17, edit: withShape(json({ t: 'o', k: [['a', { t: 'x' }]] })), says: /shape \d+: skeleton node at a has unknown kind "x"/ },
  { at: 18, edit: withShape(json(deep(300))), says: /shape \d+: the skeleton is nested deeper than the cap of 256 levels/ },
  { at: 19, edit: setCol('features', `zeroblob(${20 * 1024 * 1024})`), says: `features holds ${20 * 1024 * 1024} bytes, over the cap of ${MAX_BLOB_BYTES} bytes for that column` },
  { at: 20, edit: setCol('route', `'/' || hex(zeroblob(50000))`), says: 'route holds 100001 bytes, over the cap of 16384 bytes for that column' },
  { at: 21, edit: setCol('prompt_tokens', '1000000000'), says: 'prompt_tokens = 1000000000 is over the cap of 2000000 tokens per request' },
  { at: 22, edit: setCol('message_count', '1000000000'), says: 'message_count = 1000000000 is over the cap of 100000 messages per request' },
  { at: 23, edit: setCol('status', "'abc'"), says: 'status = "abc" is not a number' },
  { at: 24, edit: setCol('output_tokens', '1.5'), says: 'output_tokens = 1.5 is not an integer' },
  { at: 25, edit: setCol('features', "x'dc0005'"), says: 'features cannot be decoded: Unexpected end of MessagePack data' },
  { at: 26, edit: editFeatures((f) => (f.prefixBlockTokens = 1e9)), says: 'prefixBlockTokens = 1000000000 is over the cap of 2000000 tokens per block' },
  { at: 27, edit: setCol('shape_id', '9999'), says: 'refers to shape 9999, which the trace does not have' },
  { at: 28, edit: setCol('ttft_us', '-3'), says: 'ttft_us = -3 is negative' },
  { at: 29, edit: setCol('streamed', '2'), says: 'streamed = 2 is not 0 or 1' },
  { at: 30, edit: setCol('method', "'GET /x'"), says: 'method = "GET /x" is not an HTTP method' },
  // Protocol features.
  { at: 'kserve', edit: editFeatures((f) => (f.tensors![0]!.shape = [1, 1e8])), says: 'tensors[0].shape = [1,100000000] FP32 is 400000000 bytes, over the cap of 268435456 bytes per request body' },
  { at: 'kserve-binary', edit: editFeatures((f) => (f.binaryBytes = 1e12)), says: 'binaryBytes = 1000000000000 is over the cap of 268435456 bytes per request body' },
  { at: 'multipart', edit: editFeatures((f) => (f.parts![0]!.bytes = -7)), says: 'parts[0].bytes = -7 is negative' },
  { at: 'torchserve-png', edit: editFeatures((f) => (f.images![0]!.width = 1e6)), says: 'images[0].width = 1000000 is over the cap of 65535 pixels' },
  { at: 'vision', edit: editFeatures((f) => (f.images = [0, 1, 2].map(() => ({ format: 'png', width: 16384, height: 2441, bytes: 1000 })))), says: /the request would be synthesized as about \d+ bytes \(.*images \d+.*\), over the cap of 268435456 bytes per request/ },
  { at: 'websocket', edit: editFeatures((f) => ((f.websocket as unknown as Record<string, unknown>).closeCode = 'x')), says: 'websocket.closeCode = "x" is not a number' },
  { at: 'stream', edit: setCol('event_offsets', `x'${encodeBlob([1000, -5000]).toString('hex')}'`), says: 'event_offsets delta 1 = -5000 is negative' },
];

describe('a trace is untrusted input: hostile records are refused as they are read', () => {
  const tmp = tempDir();
  const good = join(tmp.dir, 'good.trace.db');
  const bad = join(tmp.dir, 'hostile.trace.db');
  let seqOf: Record<string, number>;
  const badSeqs = new Map<number, string | RegExp>();
  const seqAt = (at: number | string) => (typeof at === 'number' ? at : seqOf[at]!);

  beforeAll(async () => {
    seqOf = await writeGoodTrace(good);
    copyFileSync(good, bad);
    const db = new Database(bad);
    db.pragma('foreign_keys = OFF'); // a hostile file keeps no constraint
    for (const h of HOSTILE) {
      const seq = seqAt(h.at);
      h.edit(db, seq);
      badSeqs.set(seq, h.says);
    }
    db.close();
  });
  afterAll(() => tmp.cleanup());

  const refusal = (fn: () => unknown): TracewarpError => {
    let err: unknown;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TracewarpError);
    expect((err as TracewarpError).code).toBe('TW_TRACE_CORRUPT');
    return err as TracewarpError;
  };

  it('a valid trace of every protocol reads with nothing refused, and every record synthesizes', () => {
    const r = new TraceReader(good);
    const recs = [...r.records()];
    expect(r.skipped).toBe(0);
    expect(r.skippedSummary()).toBeNull();
    expect(recs).toHaveLength(seqOf.total!);
    expect(r.arrivals()).toHaveLength(seqOf.total! - 1); // the WebSocket session is not replayed
    expect(r.skipped).toBe(0);
    expect(r.get(seqOf.atCaps!).promptTokens).toBe(MAX_PROMPT_TOKENS);
    expect(r.get(seqOf.atCaps!).offsetUs).toBe(MAX_SPAN_US);
    for (const rec of recs) {
      if (rec.seq === seqOf.atCaps || rec.protocol === 'websocket') continue;
      const s = synthesizeRequest(rec, createRng(rec.seq), createRng(1));
      expect(s.method).toBe(rec.method);
    }
    r.close();
  });

  it('imported public traces (Azure LLM, Mooncake fixtures) have no refused record', async () => {
    for (const [name, source] of [['azure', readAzureLlm(join(FIXTURES, 'azure-conv-first-5min.csv'))], ['mooncake', readMooncake(join(FIXTURES, 'mooncake-first-200.jsonl'))]] as const) {
      const path = join(tmp.dir, `${name}.trace.db`);
      const w = new TraceWriter(path, { source: `import:${name}`, anchorWallUs: 0, anonymization: null });
      let n = 0;
      for await (const rec of source as AsyncIterable<TraceRecord>) {
        const { anchorWallUs: _, ...plain } = rec as TraceRecord & { anchorWallUs?: number };
        w.add(plain);
        n++;
      }
      w.close();
      const r = new TraceReader(path);
      expect(r.arrivals()).toHaveLength(n);
      expect(r.skipped).toBe(0);
      r.close();
    }
  });

  it('refuses exactly the hostile records, each with TW_TRACE_CORRUPT naming the file, the record and the problem; the others still read', () => {
    const rssBefore = process.memoryUsage().rss;
    const t0 = performance.now();
    const r = new TraceReader(bad);
    const recs = [...r.records()];
    const readMs = performance.now() - t0;
    const valid = new Set(Array.from({ length: seqOf.total! }, (_, i) => i + 1).filter((s) => !badSeqs.has(s)));
    expect(new Set(recs.map((x) => x.seq))).toEqual(valid);
    expect(r.skipped).toBe(badSeqs.size);
    expect(r.refused).toHaveLength(5);
    expect(r.skippedSummary()).toMatch(new RegExp(`^${badSeqs.size} records could not be used: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: record \\d+: `));
    // Arrivals (what plan and replay schedule) leave out the same records, the WebSocket session aside.
    const arrivals = r.arrivals();
    expect(arrivals.map((a) => a.seq).sort((a, b) => a - b)).toEqual([...valid].filter((s) => s !== seqOf.websocket).sort((a, b) => a - b));
    expect(r.skipped).toBe(badSeqs.size - 1);
    expect(arrivals.every((a) => a.atUs >= 0 && a.atUs <= MAX_SPAN_US)).toBe(true);
    // Each refusal says what is wrong, where.
    for (const [seq, says] of badSeqs) {
      const err = refusal(() => r.get(seq));
      expect(err.message.startsWith(`${bad}: record ${seq}: `)).toBe(true);
      if (typeof says === 'string') expect(err.message).toBe(`${bad}: record ${seq}: ${says}`);
      else expect(err.message).toMatch(says);
      expect(err.message).not.toContain('\n');
      expect(err.message).not.toMatch(/--[a-z]/); // a library message names no CLI flag
    }
    for (const seq of valid) expect(r.get(seq).seq).toBe(seq);
    // Nothing was allocated from a hostile size, and nothing waited on one.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024);
    expect(readMs).toBeLessThan(5000);
    // The SQL summaries leave the hostile cells out.
    const span = r.span();
    expect(span.lastUs).toBeLessThanOrEqual(MAX_SPAN_US);
    expect(r.column('prompt_tokens').every((v) => v <= MAX_PROMPT_TOKENS)).toBe(true);
    expect(Object.keys(r.statuses())).not.toContain('abc');
    r.close();
  });

  it('strict mode throws on the first hostile record', () => {
    const r = new TraceReader(bad, { strict: true });
    const err = refusal(() => r.arrivals());
    expect(err.message).toMatch(new RegExp(`: record (${[...badSeqs.keys()].join('|')}): `));
    expect(() => [...r.records()]).toThrow(TracewarpError);
    r.close();
  });

  it('a malformed meta or table refuses the whole trace with TW_TRACE_CORRUPT', () => {
    const cases: Array<[string, string, string | RegExp]> = [
      ['anchor', `UPDATE meta SET value = '"abc"' WHERE key = 'anchor_wall_us'`, 'malformed trace meta: meta.anchor_wall_us = "abc" is not a number'],
      ['dropped', `UPDATE meta SET value = '-4' WHERE key = 'records_dropped'`, 'malformed trace meta: meta.records_dropped = -4 is negative'],
      ['raw', `UPDATE meta SET value = '"yes"' WHERE key = 'capture_raw'`, 'malformed trace meta: meta.capture_raw = "yes" is not true or false'],
      ['health', `UPDATE meta SET value = '{"ok":true,"writeFailures":"many"}' WHERE key = 'recording_health'`, 'malformed trace meta: meta.recording_health.writeFailures = "many" is not a number'],
      ['huge', `INSERT INTO meta VALUES ('anonymization2', '"' || hex(zeroblob(600000)) || '"')`, /malformed trace meta: meta\.anonymization2 holds 1200002 bytes, over the cap of 1048576 bytes per meta value/],
      ['column', 'ALTER TABLE requests DROP COLUMN ttft_us', 'the requests table lacks column ttft_us: not a format 3 trace table'],
    ];
    for (const [name, sql, says] of cases) {
      const p = join(tmp.dir, `meta-${name}.trace.db`);
      copyFileSync(good, p);
      const db = new Database(p);
      db.pragma('foreign_keys = OFF');
      db.exec(sql);
      db.close();
      const err = refusal(() => new TraceReader(p));
      if (typeof says === 'string') expect(err.message).toBe(`${p}: ${says}`);
      else expect(err.message).toMatch(says);
    }
  });

  it('the CLI reads a hostile trace promptly: plan and inspect use the valid records, a malformed meta is one line, never a stack trace', async () => {
    const noStack = (r: { stdout: string; stderr: string }) => {
      expect(r.stderr).not.toContain('unexpected error');
      expect(`${r.stdout}\n${r.stderr}`).not.toMatch(/\n\s+at /);
    };
    const t0 = Date.now();
    const plan = await runCli(['plan', bad, '--speed', '1', '--json'], { timeoutMs: 20_000 });
    noStack(plan);
    expect(plan.code).toBe(0);
    const report = JSON.parse(plan.stdout.trim().split('\n').pop()!) as { requests: number };
    expect(report.requests).toBe(seqOf.total! - badSeqs.size - (badSeqs.has(seqOf.websocket!) ? 0 : 1));
    const inspect = await runCli(['inspect', bad], { timeoutMs: 20_000 });
    noStack(inspect);
    expect(inspect.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(20_000);
    const p = join(tmp.dir, 'meta-cli.trace.db');
    copyFileSync(good, p);
    const db = new Database(p);
    db.exec(`UPDATE meta SET value = '1e400' WHERE key = 'anchor_wall_us'`);
    db.close();
    const r = await runCli(['plan', p, '--speed', '1'], { timeoutMs: 20_000 });
    noStack(r);
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toBe(`tracewarp: ${p}: malformed trace meta: meta.anchor_wall_us = Infinity is not finite [TW_TRACE_CORRUPT]`);
  });
});
