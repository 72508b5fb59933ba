// Schedule keeping of the sending loops: constant-rate workloads of small requests against a zero-latency upstream in
// another process, at several rates, with one sending loop and with two side by side in one run. Reports send
// lateness (socket send − due time), achieved/target rate and the replayer's own health verdict (these machines are
// shared and noisy: compare the ratios).
//   npx tsx bench/replay-accuracy.ts [--rates 1000,3000,6000] [--workers 1,2] [--seconds 5]
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { importedChatRecord } from '../src/importers/common.ts';
import { replayTrace } from '../src/replay/run.ts';
import { TraceWriter } from '../src/trace/writer.ts';
import { round, startUpstreamProcess } from './common.ts';

const { values } = parseArgs({ options: { rates: { type: 'string', default: '1000,3000,6000' }, workers: { type: 'string', default: '1,2' }, seconds: { type: 'string', default: '5' } } });
const rates = values.rates.split(',').map(Number);
const workers = values.workers.split(',').map(Number);
const seconds = Number(values.seconds);
const up = await startUpstreamProcess();
const rows = [];
for (const rate of rates) {
  const n = Math.round(rate * seconds);
  const trace = join(tmpdir(), `bench-replay-${process.pid}-${rate}.trace.db`);
  const w = new TraceWriter(trace, { source: 'bench', anchorWallUs: 0, anonymization: null, overwrite: true });
  for (let i = 0; i < n; i++) w.add({ ...importedChatRecord(i + 1, Math.round((i * 1e6) / rate), 50, 1, { stream: false }), route: '/json' });
  w.close();
  for (const k of workers) {
    const { summary: s } = await replayTrace({ trace, target: up.url, runFile: null, workers: k });
    const h = s.replayerHealth!;
    rows.push({
      targetRate: s.targetRate, workers: k, achievedRatio: round(s.achievedRate! / s.targetRate!, 4), completed: s.completed, requests: s.requests,
      latenessMs: { p50: s.latenessMs.p50, p99: s.latenessMs.p99, max: s.latenessMs.max }, health: h.verdict, loopDelayP99Ms: h.loopDelayMs.p99, stalls: h.stalls, cpuPercent: h.cpuPercent,
    });
  }
  rmSync(trace, { force: true });
}
up.child.kill('SIGTERM');
console.log(JSON.stringify(rows, null, 2));
