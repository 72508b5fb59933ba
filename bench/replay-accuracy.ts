// Replay schedule keeping: constant-rate workloads against a zero-latency upstream in another process, at several
// rates. Reports send lateness and achieved/target rate (a ratio; these machines are shared and noisy).
//   npx tsx bench/replay-accuracy.ts [--rates 200,1000,5000] [--seconds 5]
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runReplay } from '../src/cli/replay.ts';
import { importedChatRecord } from '../src/importers/common.ts';
import { TraceWriter } from '../src/trace/writer.ts';
import { round, startUpstreamProcess } from './common.ts';

const { values } = parseArgs({ options: { rates: { type: 'string', default: '200,1000,5000' }, seconds: { type: 'string', default: '5' } } });
const rates = values.rates.split(',').map(Number);
const seconds = Number(values.seconds);
const quiet = { out: () => undefined, err: () => undefined, tty: false };
const up = await startUpstreamProcess();
const rows = [];
for (const rate of rates) {
  const n = Math.round(rate * seconds);
  const trace = join(tmpdir(), `bench-replay-${process.pid}-${rate}.trace.db`);
  const run = trace.replace('.trace.db', '.run.db');
  const w = new TraceWriter(trace, { source: 'bench', anchorWallUs: 0, anonymization: null, overwrite: true });
  for (let i = 0; i < n; i++) {
    const r = importedChatRecord(i + 1, Math.round((i * 1e6) / rate), 50, 1, { stream: false });
    w.add({ ...r, route: '/json' });
  }
  w.close();
  const { summary } = await runReplay(trace, { target: up.url, speed: 1, seed: 1, out: run, force: true, quiet: true }, quiet);
  rows.push({
    targetRate: summary.targetRate, achievedRate: summary.achievedRate, ratio: round(summary.achievedRate! / summary.targetRate!, 4),
    latenessMs: { p50: summary.latenessMs.p50, p99: summary.latenessMs.p99, max: summary.latenessMs.max }, completed: summary.completed, requests: summary.requests,
  });
  rmSync(trace, { force: true });
  rmSync(run, { force: true });
}
up.child.kill('SIGTERM');
console.log(JSON.stringify(rows, null, 2));
