// Proxy overhead at real LLM payload sizes, side by side in one run: the same client against the same upstream
// (bench/upstream.ts), direct, through a bare @fastify/http-proxy (bench/bare-proxy.ts), through nginx (Debian's
// nginx-light, when installed) and through `tracewarp record` writing a real trace. Every server is its own process.
// Rounds alternate the targets so machine noise hits all alike; figures are medians, p99s and differences.
//   - small JSON and chat prompts of 1k, 12k, 100k and 128k tokens, one request at a time: latency;
//   - SSE: added delay per event;
//   - small requests' latency while 100k-token requests flow at the same time (two at once, back to back);
//   - throughput of small requests (64 at once);
//   - the trace afterwards: every exchange recorded, or dropped and counted.
//   npx tsx bench/proxy-overhead.ts [--rounds 3] [--smoke]
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { EventSplitter } from '../src/protocols/sse.ts';
import { createRng } from '../src/rng.ts';
import { textOfTokens } from '../src/synth/text.ts';
import { TraceReader } from '../src/trace/reader.ts';
import { ROOT, round, startProcess, startTracewarpProcess, startUpstreamProcess, stats } from './common.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, smoke: { type: 'boolean' }, only: { type: 'string' }, 'record-args': { type: 'string' } } });
/** Run only the cases whose name contains this (e.g. `while`), and no throughput. */
const only = values.only;
const smoke = Boolean(values.smoke);
const rounds = smoke ? 1 : Number(values.rounds);
const tmp = mkdtempSync(join(tmpdir(), 'tracewarp-proxy-bench-'));

const up = await startUpstreamProcess();
const trace = join(tmp, 'bench.trace.db');
// --record-args passes more flags to `tracewarp record` (e.g. '--max-record-queue 1048576' to see it shed recording).
const rec = await startTracewarpProcess(['record', '--upstream', up.url, '--listen', '127.0.0.1:0', '--out', trace, '--force', ...(values['record-args']?.split(' ').filter(Boolean) ?? [])]);
const bare = await startProcess(['--import', 'tsx', join(ROOT, 'bench/bare-proxy.ts'), up.url]);
const nginx = smoke ? null : await startNginx(up.url);
const targets: Array<[string, string]> = [['direct', up.url], ['bare-fastify', bare.url], ...(nginx ? [['nginx', nginx.url] as [string, string]] : []), ['tracewarp', rec.url]];

/** nginx as a plain reverse proxy (no buffering of requests or answers, keep-alive upstream), or null if absent. */
async function startNginx(upstream: string): Promise<{ url: string; child: ChildProcess } | null> {
  if (!existsSync('/usr/sbin/nginx')) return null;
  const port = 20000 + Math.floor(Math.random() * 20000);
  const u = new URL(upstream);
  const conf = join(tmp, 'nginx.conf');
  writeFileSync(conf, `worker_processes 1; daemon off; error_log stderr error; pid ${tmp}/nginx.pid;
events { worker_connections 1024; }
http { access_log off; client_max_body_size 0; client_body_temp_path ${tmp}/b; proxy_temp_path ${tmp}/p;
  proxy_request_buffering off; proxy_buffering off; proxy_http_version 1.1;
  upstream up { server ${u.host}; keepalive 64; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://up; proxy_set_header Connection ""; } } }`);
  const child = spawn('/usr/sbin/nginx', ['-c', conf, '-p', tmp], { stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    try {
      const p = new Pool(url);
      await (await p.request({ method: 'GET', path: '/json' })).body.dump();
      await p.close();
      return { url, child };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill();
  return null;
}

const chat = (tokens: number) => JSON.stringify({ model: 'm', messages: [{ role: 'user', content: textOfTokens(tokens, createRng(tokens)) }], max_tokens: 1 });
const SMALL = '{"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":1}';
const sizes = smoke ? [1000, 12_000] : [1000, 12_000, 100_000, 128_000];
const bodies = new Map(sizes.map((n) => [n, chat(n)]));
const big = chat(100_000);
/** Requests sent to each target (the tracewarp trace must hold all of its, or count them as dropped). */
const sentTo: Record<string, number> = {};
let current = '';
const sentOne = (n = 1) => (sentTo[current] = (sentTo[current] ?? 0) + n);

/** Latency of `n` requests one at a time (request → last byte), ms. */
async function latency(base: string, body: string, n: number): Promise<number[]> {
  const pool = new Pool(base, { connections: 1 });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body });
    await r.body.dump();
    out.push(performance.now() - t0);
    sentOne();
  }
  await pool.close();
  return out;
}

/** Small requests' latency while two 100k-token requests are in flight back to back the whole time. */
async function latencyUnderBigLoad(base: string, n: number): Promise<number[]> {
  const bg = new Pool(base, { connections: 2 });
  let stop = false;
  const loops = [0, 1].map(async () => {
    while (!stop) {
      const r = await bg.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: big });
      await r.body.dump();
      sentOne();
    }
  });
  await new Promise((r) => setTimeout(r, 200));
  const out = await latency(base, SMALL, n);
  stop = true;
  await Promise.all(loops);
  await bg.close();
  return out;
}

async function eventDelays(base: string, streams: number): Promise<number[]> {
  const pool = new Pool(base, { connections: 4 });
  const delays: number[] = [];
  for (let s = 0; s < streams; s++) {
    const r = await pool.request({ method: 'POST', path: '/sse?n=25&gap=20', headers: { 'content-type': 'application/json' }, body: '{"stream":true}' });
    const split = new EventSplitter('sse');
    for await (const chunk of r.body) {
      const now = performance.timeOrigin + performance.now();
      for (const e of split.push(chunk as Buffer)) if (e.data !== '[DONE]') delays.push(now - (JSON.parse(e.data) as { sentAt: number }).sentAt);
    }
    sentOne();
  }
  await pool.close();
  return delays;
}

async function throughput(base: string, seconds: number): Promise<number> {
  const pool = new Pool(base, { connections: 64 });
  const end = performance.now() + seconds * 1000;
  let done = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (performance.now() < end) {
      const r = await pool.request({ method: 'POST', path: '/json', headers: { 'content-type': 'application/json' }, body: '{"model":"m","max_tokens":1}' });
      await r.body.text();
      done++;
    }
  }));
  await pool.close();
  sentOne(done);
  return done / seconds;
}

type Samples = Record<string, Record<string, number[]>>;
const samples: Samples = {};
const add = (kase: string, target: string, xs: number[]) => ((samples[kase] ??= {})[target] ??= []).push(...xs);
const count = (n: number) => (smoke ? Math.max(5, Math.round(n / 10)) : n);
for (let r = 0; r < rounds; r++) {
  for (const [name, url] of targets) {
    current = name;
    const want = (kase: string) => only === undefined || kase.includes(only);
    if (want('small JSON')) add('small JSON', name, await latency(url, SMALL, count(500)));
    for (const n of sizes) if (want(`chat ${n / 1000}k tokens`)) add(`chat ${n / 1000}k tokens`, name, await latency(url, bodies.get(n)!, count(n >= 100_000 ? 20 : 100)));
    if (!smoke && want('small JSON while 100k-token requests flow')) add('small JSON while 100k-token requests flow', name, await latencyUnderBigLoad(url, 300));
    if (want('SSE event delay')) add('SSE event delay', name, await eventDelays(url, count(20)));
  }
}
const result: Record<string, unknown> = {};
for (const [kase, byTarget] of Object.entries(samples)) {
  const s = Object.fromEntries(Object.entries(byTarget).map(([t, xs]) => [t, stats(xs)]));
  const tw = s.tracewarp!;
  const vs = (t: string) => (s[t] ? { addedP50Ms: round(tw.p50 - s[t]!.p50), addedP99Ms: round(tw.p99 - s[t]!.p99) } : undefined);
  result[kase] = { ...s, tracewarpVsBare: vs('bare-fastify'), tracewarpVsNginx: vs('nginx') };
}
const tp: Record<string, number> = {};
if (only === undefined) for (const [name, url] of targets) (current = name), (tp[name] = round(await throughput(url, smoke ? 1 : 5), 0));
if (only === undefined) result.throughputReqPerS = { ...tp, tracewarpVsBare: round(tp.tracewarp! / tp['bare-fastify']!, 2) };
rec.child.kill('SIGINT');
await new Promise((r) => rec.child.once('exit', r));
const reader = new TraceReader(trace);
result.recorded = { sent: sentTo.tracewarp, exchanges: reader.count(), dropped: reader.meta.recordsDropped, lost: sentTo.tracewarp! - reader.count() - reader.meta.recordsDropped };
reader.close();
for (const p of [up, bare, nginx]) p?.child.kill('SIGTERM');
rmSync(tmp, { recursive: true, force: true });
console.log(JSON.stringify(result, null, 2));
