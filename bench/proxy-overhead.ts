// Proxy overhead, side by side in one run: the same client against the same upstream, direct and through the
// recording proxy (`tracewarp record`, writing a real trace file). Client, proxy and upstream are three processes, as
// in production. Reports medians and ratios.
//   npx tsx bench/proxy-overhead.ts [--requests 2000] [--streams 40]
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { TraceReader } from '../src/trace/reader.ts';
import { EventSplitter } from '../src/protocols/sse.ts';
import { round, startTracewarpProcess, startUpstreamProcess, stats } from './common.ts';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '2000' }, streams: { type: 'string', default: '40' }, seconds: { type: 'string', default: '5' } } });
const nReq = Number(values.requests);
const nStreams = Number(values.streams);
const seconds = Number(values.seconds);

const up = await startUpstreamProcess();
const trace = join(tmpdir(), `bench-proxy-${process.pid}.trace.db`);
const rec = await startTracewarpProcess(['record', '--upstream', up.url, '--listen', '127.0.0.1:0', '--out', trace, '--force']);
const proxyUrl = rec.url;

async function sequentialLatency(base: string): Promise<number[]> {
  const pool = new Pool(base, { connections: 1 });
  const out: number[] = [];
  for (let i = 0; i < nReq; i++) {
    const t0 = performance.now();
    const r = await pool.request({ method: 'POST', path: '/json', headers: { 'content-type': 'application/json' }, body: '{"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":1}' });
    await r.body.text();
    out.push(performance.now() - t0);
  }
  await pool.close();
  return out;
}

async function eventDelays(base: string): Promise<number[]> {
  const pool = new Pool(base, { connections: 4 });
  const delays: number[] = [];
  for (let s = 0; s < nStreams; s++) {
    const r = await pool.request({ method: 'POST', path: '/sse?n=25&gap=20', headers: { 'content-type': 'application/json' }, body: '{"stream":true}' });
    const split = new EventSplitter('sse');
    for await (const chunk of r.body) {
      const now = performance.timeOrigin + performance.now();
      for (const e of split.push(chunk as Buffer)) if (e.data !== '[DONE]') delays.push(now - (JSON.parse(e.data) as { sentAt: number }).sentAt);
    }
  }
  await pool.close();
  return delays;
}

async function throughput(base: string): Promise<number> {
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
  return done / seconds;
}

const result: Record<string, unknown> = {};
// Alternate direct and proxied rounds so machine noise hits both alike.
const lat = { direct: [] as number[], proxy: [] as number[] };
const ev = { direct: [] as number[], proxy: [] as number[] };
for (let round_ = 0; round_ < 2; round_++) {
  lat.direct.push(...(await sequentialLatency(up.url)));
  lat.proxy.push(...(await sequentialLatency(proxyUrl)));
  ev.direct.push(...(await eventDelays(up.url)));
  ev.proxy.push(...(await eventDelays(proxyUrl)));
}
const ld = stats(lat.direct);
const lp = stats(lat.proxy);
const ed = stats(ev.direct);
const ep = stats(ev.proxy);
result.requestLatencyMs = { direct: ld, proxy: lp, addedP50: round(lp.p50 - ld.p50), ratioP50: round(lp.p50 / ld.p50, 2) };
result.sseEventDelayMs = { direct: ed, proxy: ep, addedP50: round(ep.p50 - ed.p50), addedP99: round(ep.p99 - ed.p99) };
const td = await throughput(up.url);
const tp = await throughput(proxyUrl);
result.throughputReqPerS = { direct: round(td, 0), proxy: round(tp, 0), ratio: round(tp / td, 2) };
rec.child.kill('SIGINT');
await new Promise((r) => rec.child.once('exit', r));
const reader = new TraceReader(trace);
result.recorded = { written: reader.count(), dropped: reader.meta.recordsDropped };
reader.close();
up.child.kill('SIGTERM');
rmSync(trace, { force: true });
console.log(JSON.stringify(result, null, 2));
