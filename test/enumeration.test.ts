import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fingerprinter } from '../src/anonymize/fingerprint.ts';
import { storedFieldName, storedHeaderName, storedQueryKey } from '../src/anonymize/field-names.ts';
import { storedModelId } from '../src/anonymize/model-id.ts';
import { templateRoute } from '../src/anonymize/route.ts';
import { main } from '../src/cli/main.ts';
import { startRecord } from '../src/cli/record.ts';
import { describeRequest } from '../src/protocols/index.ts';
import { readRunFile } from '../src/results/run-file.ts';
import { KSERVE_MODEL } from '../src/sim/kserve.ts';
import { startSim, type SimServer } from '../src/sim/server.ts';
import { TraceReader } from '../src/trace/reader.ts';
import type { TraceRecord } from '../src/types.ts';
import { captureOutput, ROOT, startUpstream, tempDir } from './helpers.ts';

// Issue 10: what a trace keeps is enumerated per protocol; everything else is a keyed token. These tests pin the
// rules (classes 2, 3, 4, 6), what replay does with the tokens, and that traces of format 1 still read and replay.

const fp = new Fingerprinter(Buffer.alloc(32, 7));
const TOKEN = (kind: string) => new RegExp(`^\\{${kind}:[0-9a-f]{8}\\}$`);

describe('model ids (class 3): public vocabulary stays, the rest is a token', () => {
  it('keeps public base models and fingerprints organisations, people, adapters, accounts and credentials', () => {
    for (const m of ['gpt-4o-mini', 'gpt-4o-2024-08-06', 'meta-llama/Llama-3.1-8B-Instruct', 'claude-3-5-sonnet-20241022', 'Qwen/Qwen2.5-72B-Instruct-AWQ', 'mistralai/Mixtral-8x7B-Instruct-v0.1', 'llama3.2', 'text-embedding-3-small', 'densenet161', 'gemini-1.5-pro'])
      expect(storedModelId(m, fp), m).toBe(m);
    expect(storedModelId('ft:gpt-4o-mini:acme-health:jdoe-exp::9XbQ2', fp)).toMatch(/^ft:gpt-4o-mini:\{model:[0-9a-f]{8}\}$/);
    expect(storedModelId('llama-3-8b-lora-priyaraman', fp)).toMatch(/^llama-3-8b-lora-\{model:[0-9a-f]{8}\}$/);
    expect(storedModelId('acmehealth/clinic-notes-7b', fp)).toMatch(TOKEN('model'));
    expect(storedModelId('arn:aws:bedrock:us-east-1:123456789012:custom-model/abc', fp)).toMatch(TOKEN('model')); // an account's organisation
    // Never a model id: an address, a credential, free text.
    for (const v of ['jdoe@example.com', 'sk-proj-FAKEabcdefghijklmnop', 'the ssn is 078-05-1120']) expect(storedModelId(v, fp), v).toBeNull();
    // Found in review: people's names that are also model words, namespaces, grouped digits.
    const leaks: Array<[string, RegExp]> = [
      ['sam/llama3:latest', TOKEN('model')], ['iris/phi3:mini', TOKEN('model')], ['sam-test-model', TOKEN('model')],
      ['roberta-hubert-marian', TOKEN('model')], ['llama-SAM-IRIS', /^llama-\{model:[0-9a-f]{8}\}$/], ['lora-4711', /^lora-\{model:/],
      ['gpt-4o-mini-078-05-1120', /^gpt-4o-mini-\{model:/], ['llama-3-8b-415-555-0123', /^llama-3-8b-\{model:/],
      ['llama-3-8b-1985-03-14', /^llama-3-8b-\{model:/], ['gpt-4o-c123-u42-x777', /^gpt-4o-\{model:/], ['ft:gpt-4o-mini:org:12345678', /\{model:[0-9a-f]{8}\}$/],
    ];
    for (const [v, re] of leaks) expect(storedModelId(v, fp), v).toMatch(re);
    for (const m of ['claude-sonnet-4-5', 'claude-opus-4-1-20250805', 'text-embedding-ada-002', 'gemma-2-9b-it', 'FacebookAI/roberta-base', 'gpt-3.5-turbo-1106', 'Qwen3-30B-A3B', 'qwen2.5:7b-instruct-q4_K_M', 'half_plus_two'])
      expect(storedModelId(m, fp), m).toBe(m);
    // The bundled simulator's own models (its OpenAI one and its KServe one) are public.
    for (const m of ['tracewarp-sim', KSERVE_MODEL]) expect(storedModelId(m, fp), m).toBe(m);
    // Two ids never share a token; one id always has the same.
    expect(storedModelId('acme/a', fp)).not.toBe(storedModelId('acme/b', fp));
    expect(storedModelId('acme/a', fp)).toBe(storedModelId('acme/a', fp));
  });
});

describe('paths (class 4): API words stay, ids are {id}, any other word is {seg:…}', () => {
  it('templates tenants, projects, deployments and private model names', () => {
    expect(templateRoute('/v1/tenants/acme-health/chat/completions', fp)).toMatch(/^\/v1\/\{seg:[0-9a-f]{8}\}\/\{seg:[0-9a-f]{8}\}\/chat\/completions$/);
    expect(templateRoute('/v1/projects/acme-clinic-prod/locations/us-central1/publishers/google/models/gemini-1.5-pro:generateContent', fp))
      .toMatch(/^\/v1\/projects\/\{seg:[0-9a-f]{8}\}\/locations\/\{seg:[0-9a-f]{8}\}\/publishers\/google\/models\/gemini-1\.5-pro:generateContent$/);
    expect(templateRoute('/openai/deployments/jdoe-gpt4o/chat/completions?api-version=2024-02-01', fp)).toMatch(/^\/openai\/deployments\/\{model:[0-9a-f]{8}\}\/chat\/completions$/);
    expect(templateRoute('/v2/models/acme-fraud-scorer/infer', fp)).toMatch(/^\/v2\/models\/\{model:[0-9a-f]{8}\}\/infer$/);
    expect(templateRoute('/v1/threads/thread_abcdefXYZ/runs', fp)).toBe('/v1/threads/{id}/runs');
    // Versions are numbers or release words, never grouped digits.
    expect(templateRoute('/v2/models/resnet50/versions/4111-1111-1111-1111/infer', fp)).toBe('/v2/models/resnet50/versions/{version}/infer');
    expect(templateRoute('/predictions/densenet161/078-05-1120', fp)).toBe('/predictions/densenet161/{version}');
    expect(templateRoute('/v1/models/resnet50/versions/20240806:predict', fp)).toBe('/v1/models/resnet50/versions/20240806:predict');
    expect(templateRoute('/v1/models/resnet50/versions/4155550123:predict', fp)).toBe('/v1/models/resnet50/versions/{version}:predict');
    // A verb that is not an API's is part of the model id, and not public.
    expect(templateRoute('/v1/models/resnet50:jdoe', fp)).toMatch(/^\/v1\/models\/resnet50:\{model:[0-9a-f]{8}\}$/);
  });
});

describe('names (class 6): standard header names, query keys and form fields stay', () => {
  it('fingerprints the rest, decoded first', async () => {
    expect(storedHeaderName('Content-Type', fp)).toBe('content-type');
    expect(storedHeaderName('x-acme-health-tenant', fp)).toMatch(TOKEN('h'));
    expect(storedQueryKey('api-version', fp)).toBe('api-version');
    expect(storedQueryKey('jdoe_session', fp)).toMatch(TOKEN('q'));
    expect(storedFieldName('file', fp)).toBe('file');
    expect(storedFieldName('patient_mgonzalez', fp)).toMatch(TOKEN('f'));
    const d = await describeRequest('POST', '/v1/audio/transcriptions', 'application/x-www-form-urlencoded', Buffer.from('model=whisper-1&patient_mgonzalez=1'), true, { fingerprinter: fp });
    expect(d.features.parts!.map((p) => p.name)).toEqual(['model', expect.stringMatching(TOKEN('f'))]);
  });
});

describe('values that looked like names (found in review)', () => {
  it('tensor names, media types, codings, signatures, api-version, Server-Timing durations', async () => {
    const { isTensorName } = await import('../src/protocols/kserve-v2.ts');
    for (const n of ['input_1', 'conv2d_1/BiasAdd:0', 'sigmoid_0.tmp_0', '4b7c7d4a-51e4-43c8-af61-04639f6ef4bc']) expect(isTensorName(n), n).toBe(true);
    for (const n of ['AKIAIOSFODNN7EXAMPLE', 'eyJhbGciOiJIUzI1NiJ9', 'hf_ZQXabcdefghijk', '4111111111111111', 'jane_doe_mrn_5550199', 'glpat-ZQXsecret99']) expect(isTensorName(n), n).toBe(false);
    const { storedMediaType } = await import('../src/anonymize/media-type.ts');
    expect(storedMediaType('application/acme-health+json')).toBe('application/*+json');
    expect(storedMediaType('audio/jane.doe-voicememo')).toBe('audio/*');
    expect(storedMediaType('image/png')).toBe('image/png');
    const { compilePolicy, describeHeadersAndQuery } = await import('../src/anonymize/policy.ts');
    const kept = describeHeadersAndQuery(compilePolicy({}), { 'content-encoding': 'identity, john.smith', accept: 'text/jane.doe, johnsmith/*, image/*' }, '/v1/x?api-version=415.555.0123', fp);
    expect(kept.headers).toEqual([['content-encoding', 'identity'], ['accept', 'text/*, image/*']]);
    expect(kept.query).toEqual([['api-version', null]]);
    expect(describeHeadersAndQuery(compilePolicy({}), {}, '/v1/x?api-version=2024-10-21', fp).query).toEqual([['api-version', '2024-10-21']]);
    expect(() => compilePolicy({ headers: { keepValues: ['origin'] } })).toThrow(/never recorded/);
    const tf = (name: string) => describeRequest('POST', '/v1/models/m:predict', 'application/json', Buffer.from(JSON.stringify({ signature_name: name, instances: [[1]] })), true, { fingerprinter: fp });
    expect((await tf('serving_default')).params.signature_name).toBe('serving_default');
    expect((await tf('jane_doe_churn')).params.signature_name).toBeUndefined();
    const { anonymizeServerTiming } = await import('../src/anonymize/server-timing.ts');
    expect(anonymizeServerTiming({ total: 4111111111111111, queue: 12.3456789 }, fp)).toEqual({ queue: 12.346 });
  });
});

describe('keys (class 2): a protocol keeps its vocabulary, a JSON Schema its keywords', () => {
  it('tokens are stable within a trace (shapes dedupe) and a policy can keep names', async () => {
    const body = (city: string) => Buffer.from(JSON.stringify({
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: city }], metadata: { priya_raman: 'x' },
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { mgonzalez_ssn: { type: 'string', description: 'd' } }, required: ['mgonzalez_ssn'] } } }],
    }));
    const a = await describeRequest('POST', '/v1/chat/completions', 'application/json', body('Paris'), true, { fingerprinter: fp });
    const b = await describeRequest('POST', '/v1/chat/completions', 'application/json', body('Lyon'), true, { fingerprinter: fp });
    const sk = JSON.stringify(a.shape.skeleton);
    for (const k of ['"model"', '"messages"', '"metadata"', '"tools"', '"parameters"', '"properties"', '"type"', '"description"', '"required"']) expect(sk).toContain(k);
    expect(sk).not.toMatch(/priya|mgonzalez/);
    expect(sk).toMatch(/\["\{k:[0-9a-f]{8}:11\}",\{"t":"s"\}\]/); // priya_raman: a token of its length
    expect(JSON.stringify(b.shape)).toBe(JSON.stringify(a.shape));
    const { compilePolicy } = await import('../src/anonymize/policy.ts');
    const kept = await describeRequest('POST', '/v1/chat/completions', 'application/json', body('Paris'), true, { fingerprinter: fp, policy: compilePolicy({ body: { keepKeys: ['priya_raman'] } }) });
    expect(JSON.stringify(kept.shape.skeleton)).toContain('"priya_raman"');
    expect(() => compilePolicy({ body: { keepKeys: ['ssn_078051120'] } })).toThrow(/reads like data/);
  });
});

describe('replaying what the trace keeps only as tokens', () => {
  let tmp: ReturnType<typeof tempDir>;
  let up: Awaited<ReturnType<typeof startUpstream>>;
  const seen: Array<{ url: string; model: unknown }> = [];
  let trace: string;
  let records: TraceRecord[];
  beforeAll(async () => {
    tmp = tempDir();
    up = await startUpstream((req, res, body) => {
      if (req.method !== 'GET' || req.url !== '/') seen.push({ url: req.url!, model: body.length ? (JSON.parse(body.toString()) as { model?: unknown }).model : undefined });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"choices":[{"message":{"role":"assistant","content":"ok"}}]}');
    });
    trace = join(tmp.dir, 't.trace.db');
    const s = await startRecord({ upstream: up.url, host: '127.0.0.1', port: 0, out: trace }, captureOutput());
    const send = async (path: string, body: unknown) => (await request(s.proxy.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).body.text();
    await send('/v1/tenants/acme-health/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    await send('/v1/chat/completions', { model: 'ft:gpt-4o-mini:acme-health::9XbQ2', messages: [{ role: 'user', content: 'hi' }] });
    await s.stop();
    const r = new TraceReader(trace);
    records = [...r.records()];
    r.close();
    seen.length = 0;
  });
  afterAll(async () => {
    await up.close();
    tmp.cleanup();
  });

  it('refuses before sending, naming the flags; sends where --placeholder-segments, --path-map and --model-map say', async () => {
    const [tenant, ft] = records as [TraceRecord, TraceRecord];
    expect(ft.model).toMatch(/^ft:gpt-4o-mini:\{model:[0-9a-f]{8}\}$/);
    const refused = captureOutput();
    expect(await main(['replay', trace, '--target', up.url, '--out', join(tmp.dir, 'a.run.db'), '--quiet'], refused)).toBe(2);
    expect(refused.stderr.join('\n')).toMatch(/keeps only as fingerprints.*--placeholder-segments.*--path-map/);
    expect(seen).toEqual([]);
    const inspect = captureOutput();
    expect(await main(['inspect', trace], inspect)).toBe(0);
    expect(inspect.stdout.join('\n')).toContain(`models: ${ft.model}=1  gpt-4o-mini=1`);
    expect(inspect.stdout.join('\n')).toContain('anonymized by enumeration (format 2)');
    const plan = captureOutput();
    expect(await main(['plan', trace, '--model-map', 'nothing=x'], plan)).toBe(0);
    expect(plan.stdout.join('\n')).toContain(`cannot replay as it is: 1 requests name the model ${ft.model}`);
    expect(plan.stdout.join('\n')).toContain("--model-map 'nothing=…' matches no model");
    const ok = captureOutput();
    const code = await main(['replay', trace, '--target', up.url, '--out', join(tmp.dir, 'b.run.db'), '--quiet', '--placeholder-segments', '--model-map', `${ft.model}=my-finetune`], ok);
    expect(code, ok.stderr.join('\n')).toBe(0);
    const seg = /\{seg:([0-9a-f]{8})\}\/\{seg:([0-9a-f]{8})\}/.exec(tenant.route)!;
    expect(seen).toEqual([{ url: `/v1/seg-${seg[1]}/seg-${seg[2]}/chat/completions`, model: 'gpt-4o-mini' }, { url: '/v1/chat/completions', model: 'my-finetune' }]);
    seen.length = 0;
    expect(await main(['replay', trace, '--target', up.url, '--out', join(tmp.dir, 'c.run.db'), '--quiet', '--path-map', `${tenant.route.replace('/chat/completions', '')}=/v1`, '--model', 'served'], captureOutput())).toBe(0);
    expect(seen).toEqual([{ url: '/v1/chat/completions', model: 'served' }, { url: '/v1/chat/completions', model: 'served' }]);
  });

  it("says before sending that a model server's input names are tokens unless a policy keeps them", async () => {
    const t2 = join(tmp.dir, 'tf.trace.db');
    const policy = join(tmp.dir, 'p.yaml');
    writeFileSync(policy, 'body:\n  keepKeys: [text]\n');
    for (const [file, policyFile] of [[t2, undefined], [join(tmp.dir, 'tf-kept.trace.db'), policy]] as const) {
      const s = await startRecord({ upstream: up.url, host: '127.0.0.1', port: 0, out: file, policyFile }, captureOutput());
      await (await request(`${s.proxy.url}/v1/models/resnet50:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [{ text: 'a' }] }) })).body.text();
      await s.stop();
    }
    const plan = captureOutput();
    expect(await main(['plan', t2], plan)).toBe(0);
    expect(plan.stdout.join('\n')).toContain("1 request to /v1/models/resnet50:predict names the model's inputs by keys the trace keeps as fingerprints");
    const kept = captureOutput();
    expect(await main(['plan', join(tmp.dir, 'tf-kept.trace.db')], kept)).toBe(0);
    expect(kept.stdout.join('\n')).not.toContain("names the model's inputs");
  });
});

describe('a trace of format 1 (recorded before issue 10)', () => {
  const V1 = join(ROOT, 'test/fixtures/traces/v1-chat.trace.db');
  let sim: SimServer;
  beforeAll(async () => {
    sim = await startSim({ decodeStepMs: 1, perSeqStepMs: 0 });
  });
  afterAll(async () => {
    await sim.close();
  });

  it('inspects, plans and replays as before, and says which rules wrote it', async () => {
    const inspect = captureOutput();
    expect(await main(['inspect', V1], inspect)).toBe(0);
    expect(inspect.stdout.join('\n')).toContain('tracewarp trace v1');
    expect(inspect.stdout.join('\n')).toContain('anonymized by recognition (format 1)');
    const plan = captureOutput();
    expect(await main(['plan', V1, '--json'], plan)).toBe(0);
    expect(JSON.parse(plan.stdout.join('')).requests).toBe(7);
    const tmp = tempDir();
    try {
      const out = captureOutput();
      const run = join(tmp.dir, 'v1.run.db');
      expect(await main(['replay', V1, '--target', sim.url, '--speed', '4', '--out', run, '--quiet'], out), out.stderr.join('\n')).toBe(0);
      expect(readRunFile(run).results.map((r) => r.status)).toEqual(Array(7).fill(200));
    } finally {
      tmp.cleanup();
    }
  });
});
