import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { main } from '../src/cli/main.ts';
import { startRecord } from '../src/cli/record.ts';
import { readRunFile } from '../src/results/run-file.ts';
import { TraceReader } from '../src/trace/reader.ts';
import type { TraceRecord } from '../src/types.ts';
import { captureOutput, ROOT, startUpstream, tempDir } from './helpers.ts';

// Record → replay against a server that checks every replayed request against what it was sent while recording:
// the same path (model names, versions, verbs), the same JSON structure (keys, array lengths, tensor names, datatypes
// and shapes), and for numeric tensors about the same byte size. Real public payloads (test/fixtures/protocols/).

const P = join(ROOT, 'test/fixtures/protocols');
const png = readFileSync(join(P, 'mnist_0.png'));
const fixture = (f: string) => readFileSync(join(P, f));

/** Keys replay sets itself (the recorded output length), left out of the comparison. */
const OUTPUT_LIMITS = new Set(['max_tokens', 'num_predict', 'max_new_tokens']);

/** A JSON value's structure: keys in order, array lengths, and the values that are schema (tensor name/datatype/shape). */
function structure(v: unknown, key = ''): unknown {
  if (Array.isArray(v)) return key === 'shape' ? v : [v.length, ...v.map((x) => structure(x))];
  if (!v || typeof v !== 'object') return typeof v;
  const out: unknown[] = [];
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (OUTPUT_LIMITS.has(k)) continue;
    // An object replay added only to hold the output limit (Ollama `options`) is left out too.
    if (x && typeof x === 'object' && !Array.isArray(x) && Object.keys(x).every((y) => OUTPUT_LIMITS.has(y))) continue;
    // A tensor's name, datatype and shape are the model's schema; other names (a tool's) are free text.
    const tensor = 'datatype' in (v as object) || 'shape' in (v as object);
    out.push([k, tensor && ['name', 'datatype', 'shape'].includes(k) ? x : structure(x, k)]);
  }
  return out;
}

/** A body's comparable form: JSON structure, or for other bodies their content type and (images) size class. */
function signature(req: IncomingMessage, body: Buffer): string {
  const ct = req.headers['content-type'] ?? '';
  if (ct.includes('json')) {
    try {
      return JSON.stringify(structure(JSON.parse(body.toString())));
    } catch {
      return `unparseable:${body.length}`; // recorded as unparseable: replayed as bytes of its length
    }
  }
  return `${ct}:${body.length > 0}`;
}

/** Body bytes as compact JSON for JSON bodies (a replay does not reproduce the client's whitespace), else as sent. */
function compactBytes(req: IncomingMessage, body: Buffer): number {
  try {
    return (req.headers['content-type'] ?? '').includes('json') ? Buffer.byteLength(JSON.stringify(JSON.parse(body.toString()))) : body.length;
  } catch {
    return body.length;
  }
}

interface Seen { method: string; url: string; signature: string; bytes: number; body: Buffer }

function answer(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url!;
  const lines = (ct: string, events: string[]) => {
    res.writeHead(200, { 'content-type': ct });
    let i = 0;
    const next = () => {
      if (i === events.length) return res.end();
      res.write(events[i++]!);
      setTimeout(next, 3);
    };
    next();
  };
  if (url === '/api/chat') {
    // Ollama API docs, "Chat request (streaming)": one JSON object a line, the last with done: true and eval_count.
    const words = ['The', ' sky', ' is', ' blue'];
    return lines('application/x-ndjson', [
      ...words.map((w) => `${JSON.stringify({ model: 'llama3.2', created_at: '2023-08-04T08:52:19Z', message: { role: 'assistant', content: w }, done: false })}\n`),
      `${JSON.stringify({ model: 'llama3.2', created_at: '2023-08-04T19:22:45Z', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', total_duration: 4883583458, prompt_eval_count: 26, eval_count: 4, eval_duration: 4535599000 })}\n`,
    ]);
  }
  if (url === '/generate_stream') {
    // TGI's StreamResponse events; the last carries generated_text and details.
    const toks = [' Deep', ' learning', ' is'];
    return lines('text/event-stream', [
      ...toks.map((t, i) => `data:${JSON.stringify({ index: i + 1, token: { id: i + 10, text: t, logprob: -0.1, special: false }, generated_text: null, details: null })}\n\n`),
      `data:${JSON.stringify({ index: 4, token: { id: 2, text: '</s>', logprob: 0, special: true }, generated_text: 'Deep learning is', details: { finish_reason: 'eos_token', generated_tokens: 4, seed: null } })}\n\n`,
    ]);
  }
  if (/\/generate_stream$/.test(url)) return lines('text/event-stream', ['A', ' b', ' c'].map((t) => `data: ${JSON.stringify({ model_name: 'm', model_version: '1', text_output: t })}\n\n`));
  if (/\/generate$/.test(url)) {
    res.writeHead(200, { 'content-type': 'application/json' });
    return void res.end(JSON.stringify({ model_name: 'mymodel', model_version: '1', text_output: 'model output' }));
  }
  if (url.includes('/chat/completions')) {
    res.writeHead(200, { 'content-type': 'application/json' });
    return void res.end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'ok ok ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 9, completion_tokens: 7, total_tokens: 16 } }));
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end('{}');
}

/** The checking server: while `recording`, it learns each request; afterwards it answers 400 to anything it did not learn. */
async function startChecker() {
  const learned = new Map<string, Seen[]>();
  const replayed: Seen[] = [];
  const rejected: string[] = [];
  const state = { recording: true };
  const up = await startUpstream((req, res, body) => {
    if (req.method === 'GET' && req.url === '/') return void res.end(); // the replayer's warm-up connections
    const seen: Seen = { method: req.method!, url: req.url!, signature: signature(req, body), bytes: compactBytes(req, body), body };
    // Paths compare without the query: a credential in it (Gemini's `?key=`) is never recorded, so never sent again.
    const path = req.url!.split('?')[0]!;
    if (state.recording) {
      learned.set(path, [...(learned.get(path) ?? []), seen]);
      return answer(req, res);
    }
    replayed.push(seen);
    const known = learned.get(path);
    const why = !known ? `unknown path ${req.url}` : !known.some((k) => k.signature === seen.signature && k.method === seen.method) ? `${req.url}: body structure ${seen.signature} is not ${known[0]!.signature}` : null;
    if (why) {
      rejected.push(why);
      res.writeHead(400, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ error: why }));
    }
    answer(req, res);
  });
  return { ...up, learned, replayed, rejected, state };
}

interface Req { method: string; path: string; contentType: string; body: Buffer }
const json = (path: string, value: unknown): Req => ({ method: 'POST', path, contentType: 'application/json', body: Buffer.from(JSON.stringify(value)) });
const file = (path: string, f: string): Req => ({ method: 'POST', path, contentType: 'application/json', body: fixture(f) });

/** A 1,024-float FP32 tensor printed with 17 significant digits, as numpy's `tolist()` → `json.dumps` prints them. */
const fp32 = Array.from({ length: 1024 }, (_, i) => Number((Math.sin(i + 1) * 0.731).toPrecision(17)));

const CASES: Req[] = [
  { method: 'POST', path: '/predictions/densenet161', contentType: 'image/png', body: png },
  file('/v2/models/resnet152/versions/3/infer', 'cifar10_input_v2.json'),
  file('/v2/models/bert/infer', 'bert_v2_bytes.json'),
  file('/v2/models/bert/versions/2/infer', 'bert_v2_int64.json'),
  file('/v1/models/resnet152:predict', 'iris-input.json'),
  file('/v1/models/half_plus_two/versions/123:predict', 'iris-input.json'),
  json('/openai/deployments/gpt-4o-2024-08-06/chat/completions?api-version=2024-10-21', { messages: [{ role: 'user', content: 'Hello there, how are you today?' }], max_tokens: 500 }),
  file('/v2/models/mymodel/generate', 'triton_generate_request.json'),
  json('/v2/models/llama-3-8b/versions/1/generate_stream', { text_input: 'What is machine learning?', parameters: { max_tokens: 64, stream: true } }),
  // The Open Inference Protocol's generate with a tensor named `prompt` (a BYTES tensor of shape [1]).
  json('/v2/models/vllm-model/generate', { inputs: [{ name: 'prompt', shape: [1], datatype: 'BYTES', data: ['Tell me a story'] }], parameters: { max_tokens: 32 } }),
  // TorchRec DLRM: feature names as keys (pytorch/serve examples/torchrec_dlrm).
  json('/predictions/dlrm', { float_features: [[0.5, 1.25, 3.0, 0.0, 2.5, 1.0, 0.75, 4.0, 0.25, 1.5, 2.0, 3.5, 0.125]], 'id_list_features.lengths': Array(26).fill(1), 'id_list_features.values': Array.from({ length: 26 }, (_, i) => 1000 + i * 37) }),
  json('/v2/models/dense/infer', { inputs: [{ name: 'input_1', shape: [1, 1024], datatype: 'FP32', data: fp32 }] }),
  json('/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'why is the sky blue?' }] }),
  json('/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'and why is grass green?' }] }),
  json('/api/chat', { model: 'llama3.2', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'what is rain?' }] }),
  json('/generate_stream', { inputs: 'What is Deep Learning?', parameters: { max_new_tokens: 20 } }),
];

/** Every request of the planted-secrets corpus, as its manifest says it was sent. */
const PII_CASES: Req[] = (JSON.parse(readFileSync(join(ROOT, 'test/fixtures/pii/manifest.json'), 'utf8')) as Array<{ body: string; method: string; path: string; content_type: string }>)
  .map((m) => ({ method: m.method, path: m.path, contentType: m.content_type, body: readFileSync(join(ROOT, 'test/fixtures/pii', m.body)) }));

/** The model a request names as sent: in its path (`/v2/models/{m}/…`, `/predictions/{m}`, `/openai/deployments/{m}/…`), else its body's `model`. */
function modelOf(r: Req): string {
  return /\/(?:models|predictions|deployments)\/([^/:?]+)/.exec(r.path)?.[1] ?? (JSON.parse(r.body.toString()) as { model: string }).model;
}

async function recordCases(upstream: string, dir: string, reqs: Req[], name = 't', policyFile?: string): Promise<{ trace: string; records: TraceRecord[] }> {
  const trace = join(dir, `${name}.trace.db`);
  const session = await startRecord({ upstream, host: '127.0.0.1', port: 0, out: trace, policyFile }, captureOutput());
  for (const r of reqs) {
    const res = await request(session.proxy.url + r.path, { method: r.method as 'POST', headers: { 'content-type': r.contentType }, body: r.body });
    await res.body.arrayBuffer();
  }
  await session.stop();
  const reader = new TraceReader(trace);
  const records = [...reader.records()];
  reader.close();
  return { trace, records };
}

describe('record → replay against a server that checks each request', () => {
  let checker: Awaited<ReturnType<typeof startChecker>>;
  let tmp: ReturnType<typeof tempDir>;
  let recorded: { trace: string; records: TraceRecord[] };
  let run: ReturnType<typeof readRunFile>;
  beforeAll(async () => {
    tmp = tempDir();
    checker = await startChecker();
    const reqs = [...CASES, ...PII_CASES];
    // A model's own input names (TorchRec's features, a TF model's instance keys) are kept only when a policy names
    // them; a server that checks its inputs rejects anything else.
    const policy = join(tmp.dir, 'policy.yaml');
    writeFileSync(policy, 'body:\n  keepKeys: [float_features, id_list_features.lengths, id_list_features.values, text, lang]\n');
    recorded = await recordCases(checker.url, tmp.dir, reqs, 't', policy);
    checker.state.recording = false;
    // Private model names and path words are fingerprints in the trace (issue 10): the user names each one's target
    // model and path, as they know their own (here: the recorded requests).
    const maps = new Set<string>();
    recorded.records.forEach((r, i) => {
      const token = r.model?.includes('{model:') ? r.model : /\{model:[0-9a-f]{8}\}/.exec(r.route)?.[0];
      if (token) maps.add(`--model-map\0${token}=${modelOf(reqs[i]!)}`);
      if (r.route.includes('{seg:')) maps.add(`--path-map\0${r.route}=${reqs[i]!.path.split('?')[0]}`);
    });
    const out = captureOutput();
    const code = await main(['replay', recorded.trace, '--target', checker.url, '--speed', '20', '--out', join(tmp.dir, 'r.run.db'), '--quiet', ...[...maps].flatMap((m) => m.split('\0'))], out);
    expect(code, out.stderr.join('\n')).toBe(0);
    run = readRunFile(join(tmp.dir, 'r.run.db'));
  }, 60_000);
  afterAll(async () => {
    await checker.close();
    tmp.cleanup();
  });

  it('keeps model names, versions and verbs in paths, tensor names, datatypes, shapes and feature keys: every replayed request is accepted', () => {
    expect(recorded.records.map((r) => r.route)).toContain('/v2/models/resnet152/versions/3/infer');
    expect(recorded.records.map((r) => r.route)).toContain('/v1/models/half_plus_two/versions/123:predict');
    expect(checker.rejected).toEqual([]);
    expect(run.results.map((r) => r.status)).toEqual([...CASES, ...PII_CASES].map(() => 200));
    // Every recorded path was replayed exactly (with Azure's `api-version`, a query value the policy keeps).
    expect(new Set(checker.replayed.map((s) => s.url))).toEqual(new Set([...CASES, ...PII_CASES].map((c) => c.path.replace(/\?key=.*$/, ''))));
  });

  it('the generate extension, Ollama and TGI have adapters of their own', () => {
    const byRoute = new Map(recorded.records.map((r) => [r.route, r.protocol]));
    const gen = recorded.records[CASES.findIndex((c) => c.path === '/v2/models/mymodel/generate')]!;
    expect(gen.protocol).toBe('kserve-generate');
    expect(byRoute.get('/v2/models/llama-3-8b/versions/1/generate_stream')).toBe('kserve-generate');
    expect(byRoute.get('/api/chat')).toBe('ollama');
    expect(byRoute.get('/generate_stream')).toBe('tgi');
    expect(gen.promptTokens).toBe(2);
    expect(gen.outputTokens).toBe(2);
  });

  it('reads NDJSON and SSE LLM streams alike on both sides: TTFT, inter-token gaps, output tokens', () => {
    const streams = recorded.records.filter((r) => r.seq <= CASES.length).filter((r) => r.protocol === 'ollama' || r.protocol === 'tgi' || r.route.endsWith('generate_stream'));
    expect(streams).toHaveLength(5);
    for (const rec of streams) {
      const res = run.results.find((x) => x.traceSeq === rec.seq)!;
      expect(rec.ttftUs, rec.route).not.toBeNull();
      expect(res.ttftAtUs, rec.route).not.toBeNull();
      expect(res.itlUs?.length, rec.route).toBe(rec.protocol === 'ollama' ? 3 : 2);
      expect(res.outputTokens, rec.route).toBe(rec.outputTokens);
      expect(res.errorKind).toBeNull();
    }
    expect(streams.filter((r) => r.protocol === 'ollama').map((r) => r.outputTokens)).toEqual([4, 4, 4]);
  });

  it('numeric tensors keep their recorded text length (17-digit FP32 dumps replay at their size)', () => {
    for (const path of ['/v2/models/dense/infer', '/v2/models/resnet152/versions/3/infer']) {
      const before = checker.learned.get(path.split('?')[0]!)![0]!.bytes;
      const after = checker.replayed.find((s) => s.url === path)!.bytes;
      expect(Math.abs(after - before) / before, path).toBeLessThan(0.02);
    }
  });

  it('asks for the recorded output length by default, and for the client\'s own limit with --output-length as-sent', async () => {
    const azure = '/openai/deployments/gpt-4o-2024-08-06/chat/completions?api-version=2024-10-21';
    expect(JSON.parse(checker.replayed.find((s) => s.url === azure)!.body.toString()).max_tokens).toBe(7);
    const before = checker.replayed.length;
    const out = captureOutput();
    const code = await main(['replay', recorded.trace, '--target', checker.url, '--speed', '20', '--out', join(tmp.dir, 'as-sent.run.db'), '--quiet', '--output-length', 'as-sent', '--only', `route=${azure.split('?')[0]}`], out);
    expect(code, out.stderr.join('\n')).toBe(0);
    const sent = checker.replayed.slice(before);
    expect(sent.map((s) => s.url)).toEqual([azure]);
    expect(JSON.parse(sent[0]!.body.toString()).max_tokens).toBe(500);
    expect(out.stdout.join('\n')).toContain('output length as-sent');
  });
});

describe('templated paths are mapped before anything is sent; filters choose what is replayed', () => {
  let up: Awaited<ReturnType<typeof startUpstream>>;
  const seen: string[] = [];
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(async () => {
    tmp = tempDir();
    up = await startUpstream((req, res) => {
      if (req.method !== 'GET' || req.url !== '/') seen.push(req.url!); // not the replayer's warm-up connections
      res.writeHead(req.url === '/v1/tokenize' ? 404 : 200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  afterAll(async () => {
    await up.close();
    tmp.cleanup();
  });

  it('a model the trace could not keep is refused (exit 2) unless --model or --path-map names the target\'s', async () => {
    const tensor = { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [0.5, 0.25] }] };
    const { trace, records } = await recordCases(up.url, tmp.dir, [json('/v2/models/llama%2F8b/infer', tensor), json('/v2/models/llama%2F8b/infer', tensor)], 'unmapped');
    expect(records.map((r) => r.route)).toEqual(['/v2/models/{model}/infer', '/v2/models/{model}/infer']);
    seen.length = 0;
    const out = captureOutput();
    expect(await main(['replay', trace, '--target', up.url, '--out', join(tmp.dir, 'u1.run.db'), '--quiet'], out)).toBe(2);
    expect(out.stderr.join('\n')).toMatch(/2 requests .*\/v2\/models\/\{model\}\/infer ×2.*--model NAME.*--path-map/);
    expect(seen).toEqual([]);
    expect(await main(['replay', trace, '--target', up.url, '--out', join(tmp.dir, 'u2.run.db'), '--quiet', '--model', 'resnet50'], captureOutput())).toBe(0);
    expect(seen).toEqual(['/v2/models/resnet50/infer', '/v2/models/resnet50/infer']);
    seen.length = 0;
    expect(await main(['replay', trace, '--target', up.url, '--out', join(tmp.dir, 'u3.run.db'), '--quiet', '--path-map', '/v2/models/{model}=/v2/models/llama-8b/versions/2'], captureOutput())).toBe(0);
    expect(seen).toEqual(['/v2/models/llama-8b/versions/2/infer', '/v2/models/llama-8b/versions/2/infer']);
    const plan = captureOutput();
    expect(await main(['plan', trace], plan)).toBe(0);
    expect(plan.stdout.join('\n')).toContain('cannot replay as it is: 2 requests to /v2/models/{model}/infer');
  });

  it('--only, --exclude and mix(…)*0 leave recorded requests out; plan previews the same digest', async () => {
    const chat = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    const { trace } = await recordCases(up.url, tmp.dir, [json('/v1/chat/completions', chat), json('/v1/tokenize', {}), json('/v1/models', {}), json('/v1/chat/completions', chat)], 'filters');
    const replayOf = async (args: string[]) => {
      seen.length = 0;
      const out = captureOutput();
      const code = await main(['replay', trace, '--target', up.url, '--out', join(tmp.dir, `f${Math.random()}.run.db`), '--quiet', '--json', ...args], out);
      return { code, seen: [...seen], json: code === 0 ? JSON.parse(out.stdout.join('')) : null, stderr: out.stderr.join('\n') };
    };
    const only = await replayOf(['--only', 'status=2xx,protocol=openai-chat']);
    expect(only.seen).toEqual(['/v1/chat/completions', '/v1/chat/completions']);
    expect(only.stderr).toContain('the filters left out 2 of the trace\'s 4 requests');
    expect((await replayOf(['--exclude', 'status=4xx', '--exclude', 'route=/v1/models'])).seen).toEqual(['/v1/chat/completions', '/v1/chat/completions']);
    expect((await replayOf(['--drift', 'mix(route=/v1/tokenize)*0'])).seen).toEqual(['/v1/chat/completions', '/v1/models', '/v1/chat/completions']);
    const plan = captureOutput();
    expect(await main(['plan', trace, '--only', 'status=2xx,protocol=openai-chat', '--json'], plan)).toBe(0);
    expect(JSON.parse(plan.stdout.join('')).digest).toBe(only.json.digest);
    for (const [args, says] of [
      [['--only', 'colour=red'], "--only 'colour=red': unknown key 'colour'"],
      [['--only', 'error=bogus'], "unknown error kind 'bogus'"],
      [['--only', 'protocol=nonexist'], "unknown protocol 'nonexist'"],
      [['--only', 'status=2xx,,route=*'], 'an empty condition between commas'],
      [['--path-map', '/v1/models=/v1/a b'], "'/v1/a b' is not a path that can be sent"],
    ] as Array<[string[], string]>) {
      const bad = captureOutput();
      expect(await main(['replay', trace, '--target', up.url, ...args], bad), args.join(' ')).toBe(2);
      expect(bad.stderr.join('\n')).toContain(says);
    }
    // A map that matches nothing is most likely a typo: said before sending; a query in TO keeps the recorded ones after it.
    const typo = await replayOf(['--path-map', '/v1/chat/completion=/x', '--path-map', '/v1/models=/v1/models?probe=1', '--drift', 'mix(route=/v1/chat/*)*0']);
    expect(typo.stderr).toContain("--path-map '/v1/chat/completion=…' matches no route of this workload");
    expect(typo.seen).toEqual(['/v1/tokenize', '/v1/models?probe=1']);
  });
});

describe('a client that gave up is replayed giving up', () => {
  it('cuts the request as long after its send as the recorded client waited (client_aborted, client_patience); --no-client-aborts replays it whole', async () => {
    const tmp = tempDir();
    // A slow stream: an event every 50 ms for 1 s.
    const bodies: string[] = [];
    const up = await startUpstream((req, res, reqBody) => {
      if (req.method === 'GET') return void res.end();
      bodies.push(reqBody.toString());
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const t = setInterval(() => {
        if (i++ < 20) return void res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: ' x' } }] })}\n\n`);
        clearInterval(t);
        res.end('data: [DONE]\n\n');
      }, 50);
      res.on('close', () => clearInterval(t));
    });
    try {
      const trace = join(tmp.dir, 'abort.trace.db');
      const session = await startRecord({ upstream: up.url, host: '127.0.0.1', port: 0, out: trace }, captureOutput());
      const body = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'a long story please' }], max_tokens: 500 });
      const ac = new AbortController();
      const res = await request(`${session.proxy.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: ac.signal });
      setTimeout(() => ac.abort(), 250);
      await res.body.arrayBuffer().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200));
      await session.stop();
      const reader = new TraceReader(trace);
      const [rec] = [...reader.records()];
      reader.close();
      expect(rec!.errorKind).toBe('client_aborted');
      const replayed = async (extra: string[]) => {
        const out = captureOutput();
        const run = join(tmp.dir, `a${extra.length}.run.db`);
        expect(await main(['replay', trace, '--target', up.url, '--out', run, '--quiet', ...extra], out)).toBe(0);
        return { result: readRunFile(run).results[0]!, stdout: out.stdout.join('\n') };
      };
      const cut = await replayed([]);
      expect(cut.result.errorKind).toBe('client_aborted');
      expect(cut.result.errorDetail).toBe('client_patience');
      const waitedMs = (cut.result.endUs! - cut.result.sentUs!) / 1000;
      expect(waitedMs).toBeGreaterThan(rec!.latencyUs! / 1000 - 20);
      expect(waitedMs).toBeLessThan(rec!.latencyUs! / 1000 + 200);
      expect(cut.stdout).toContain('1 request was cut as long after the send as the recorded client waited');
      // The answer it got before giving up was cut short: the replay asks for the client's own limit, not that length.
      expect(JSON.parse(bodies.at(-1)!).max_tokens).toBe(500);
      const whole = await replayed(['--no-client-aborts']);
      expect(whole.result.errorKind).toBeNull();
      expect((whole.result.endUs! - whole.result.sentUs!) / 1000).toBeGreaterThan(900);
    } finally {
      await up.close();
      tmp.cleanup();
    }
  }, 30_000);
});

describe('input tensor names the trace does not keep', () => {
  it('are taken from the target\'s model metadata (GET /v2/models/{m}), as a real client takes them; without it the replay says so', async () => {
    const tmp = tempDir();
    const name = 'input image (RGB, 224×224)'; // not an identifier: the trace keeps its length only
    const got: string[] = [];
    let metadata = true;
    const up = await startUpstream((req, res, body) => {
      if (req.method === 'GET' && req.url === '/v2/models/vision') {
        res.writeHead(metadata ? 200 : 404, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify(metadata ? { name: 'vision', versions: ['1'], platform: 'onnxruntime_onnx', inputs: [{ name, datatype: 'FP32', shape: [1, 3] }], outputs: [] } : { error: 'no' }));
      }
      if (req.method === 'POST') got.push((JSON.parse(body.toString()) as { inputs: Array<{ name: string }> }).inputs[0]!.name);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    try {
      const { trace, records } = await recordCases(up.url, tmp.dir, [json('/v2/models/vision/infer', { inputs: [{ name, shape: [1, 3], datatype: 'FP32', data: [0.5, 0.25, 0.125] }] })], 'names');
      expect(records[0]!.features.tensors![0]!.name).toBe('{name}');
      expect(JSON.stringify(records)).not.toContain('RGB');
      got.length = 0;
      expect(await main(['replay', trace, '--target', up.url, '--out', join(tmp.dir, 'n1.run.db'), '--quiet', '--warmup', '0'], captureOutput())).toBe(0);
      expect(got).toEqual([name]);
      metadata = false;
      got.length = 0;
      const out = captureOutput();
      expect(await main(['replay', trace, '--target', up.url, '--out', join(tmp.dir, 'n2.run.db'), '--quiet', '--warmup', '0'], out)).toBe(0);
      expect(out.stderr.join('\n')).toContain("input tensor names the trace does not keep are sent as placeholders: /v2/models/vision/infer: the target's metadata (/v2/models/vision) answered 404");
      expect(got).toHaveLength(1);
      expect(got[0]).not.toBe(name);
    } finally {
      await up.close();
      tmp.cleanup();
    }
  }, 30_000);
});
