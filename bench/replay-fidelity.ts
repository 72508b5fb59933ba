// Replay fidelity, checked from outside: `tracewarp replay` (a child process, as a user runs it) against the external
// arrival probe (bench/probe.ts, its own process: it only timestamps each request's arrival and answers at once), on
// real long-prompt traces. Per case, side by side:
//   - arrival lag at the probe: arrival − (run start + scheduled offset), on the machine's monotonic clock, and the
//     same relative to its best case (minus the smallest lag);
//   - the lateness the replayer reports next to it (it must not be smaller than what the probe saw, but for transit),
//     and per request the probe's stamp minus the replayer's socket send (transit and the probe's own delay);
//   - the latency the replayer measures against the instant probe next to a bare undici client's (same bodies, one
//     at a time): the tool's own floor;
//   - achieved/target rate and the replayer's own health verdict.
// With --baseline DIR, another tracewarp checkout (e.g. a git worktree of an older commit, its node_modules linked)
// replays the same cases against the same probe in the same run (relative lag only: older run files lack the start).
//   npx tsx bench/replay-fidelity.ts [--cases mooncake@10,azure@10,mooncake@120,azure@120] [--baseline DIR] [--smoke]
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { runImport } from '../src/cli/import.ts';
import { readRunFile } from '../src/results/run-file.ts';
import { createRng } from '../src/rng.ts';
import { synthesizeWorkload } from '../src/synth/workload.ts';
import { TraceReader } from '../src/trace/reader.ts';
import { exact, FIXTURES, quiet, ROOT, runNode, SHARED_TRACES, startProbe, timeBareClient } from './common.ts';

const { values } = parseArgs({ options: { cases: { type: 'string' }, baseline: { type: 'string' }, smoke: { type: 'boolean' } } });
const smoke = Boolean(values.smoke);
const cases = (values.cases ?? (smoke ? 'mooncake@10' : 'mooncake@10,azure@10,mooncake@120,azure@120')).split(',').map((c) => {
  const [trace, speed] = c.split('@');
  return { trace: trace!, speed: Number(speed) };
});

/** Sources: the full shared traces when present, else the bundled slices. Windows in seconds of the source. */
const mooncakeSrc = existsSync(join(SHARED_TRACES, 'synthetic_trace.jsonl')) ? join(SHARED_TRACES, 'synthetic_trace.jsonl') : join(FIXTURES, 'mooncake-first-200.jsonl');
const azureSrc = existsSync(join(SHARED_TRACES, 'AzureLLMInferenceTrace_conv.csv')) ? join(SHARED_TRACES, 'AzureLLMInferenceTrace_conv.csv') : join(FIXTURES, 'azure-conv-first-5min.csv');
const windowS = (trace: string, speed: number) => (smoke ? 60 : speed >= 100 ? (trace === 'mooncake' ? 1100 : 900) : 300);

const tmp = mkdtempSync(join(tmpdir(), 'tracewarp-fidelity-'));
const probe = await startProbe();
const traces: Record<string, string> = {};
for (const [name, fmt, src] of [['mooncake', 'mooncake', mooncakeSrc], ['azure', 'azure-llm', azureSrc]] as const) {
  traces[name] = join(tmp, `${name}.trace.db`);
  await runImport(fmt, src, { out: traces[name]!, model: 'probe', stream: false }, quiet);
}

/** One replay by the tracewarp at `root` against the probe; lag and lateness from the probe's stamps and the run file. */
async function replayOnce(root: string, trace: string, speed: number, window: number, run: string): Promise<Record<string, unknown>> {
  await request(`${probe.url}/__probe/reset`, { method: 'POST' }).then((r) => r.body.dump());
  const args = [join(root, 'bin/tracewarp.js'), 'replay', trace, '--target', probe.url, '--window', `0s..${window}s`, '--speed', String(speed), '--out', run, '--force', '--json', '--quiet'];
  // Schedule keeping is measured open loop: the Mooncake import has sessions (builds that know them would send their
  // follow-ups minutes later, after recorded think times), and a baseline build from before sessions has no flag.
  if (existsSync(join(root, 'src/sessions/schedule.ts'))) args.push('--sessions', 'open', '--cut-sessions');
  const r = await runNode(args, root);
  if (r.code !== 0) throw new Error(`replay failed (${r.code}): ${r.stderr}`);
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
  const arrivals = (await (await request(`${probe.url}/__probe/arrivals`)).body.json()) as Array<[number, number]>;
  const { meta, results } = readRunFile(run);
  const at = new Map(arrivals.map(([us, seq]) => [seq, us]));
  const start = typeof meta.startMonoUs === 'number' ? meta.startMonoUs : null;
  const raw = results.filter((x) => at.has(x.index)).map((x) => at.get(x.index)! - x.scheduledUs);
  const best = Math.min(...raw);
  const h = summary.replayerHealth;
  return {
    requests: summary.requests,
    targetRate: summary.targetRate,
    achievedRatio: summary.achievedRate && summary.targetRate ? Math.round((summary.achievedRate / summary.targetRate) * 10000) / 10000 : null,
    probeSaw: arrivals.length,
    arrivalLagMs: start === null ? null : exact(raw.map((x) => x - start)),
    arrivalLagVsBestMs: exact(raw.map((x) => x - best)),
    // Per request, the probe's stamp minus the replayer's socket send: transit plus the probe's own delay.
    sendToArrivalMs: start === null || results[0]?.dispatchedUs === undefined ? null : exact(results.filter((x) => at.has(x.index) && x.sentUs !== null).map((x) => at.get(x.index)! - (start + x.sentUs!))),
    reportedLatenessMs: { p50: summary.latenessMs.p50, p99: summary.latenessMs.p99, max: summary.latenessMs.max },
    latencyMs: { p50: summary.latencyMs.p50, p99: summary.latencyMs.p99 },
    health: h ? { verdict: h.verdict, loopDelayP99Ms: h.loopDelayMs.p99, loopDelayMaxMs: h.loopDelayMs.max, stalls: h.stalls, notReady: h.notReadyAtDue, cpuPercent: h.cpuPercent } : null,
  };
}

/** The bare client's latency for the same bodies as the case's first 300 requests. */
async function bareClient(trace: string, speed: number, window: number): Promise<{ p50: number; p99: number }> {
  const reader = new TraceReader(trace);
  const arrivals = reader.arrivals().filter((a) => a.atUs <= window * 1e6).slice(0, smoke ? 100 : 300);
  const bodies = [...synthesizeWorkload(arrivals, (s) => reader.get(s), createRng(1))];
  reader.close();
  void speed;
  return timeBareClient(probe.url, bodies);
}

const rows = [];
process.on('exit', () => probe.child.kill('SIGTERM'));
for (const c of cases) {
  const trace = traces[c.trace]!;
  const window = windowS(c.trace, c.speed);
  const row: Record<string, unknown> = { case: `${c.trace} first ${window} s at ${c.speed}×` };
  row.tracewarp = await replayOnce(ROOT, trace, c.speed, window, join(tmp, 'new.run.db'));
  if (values.baseline) {
    const { arrivalLagMs: _, ...b } = await replayOnce(values.baseline, trace, c.speed, window, join(tmp, 'old.run.db'));
    row.baseline = b;
  }
  row.bareUndiciLatencyMs = await bareClient(trace, c.speed, window);
  rows.push(row);
  if (!smoke) console.error(JSON.stringify(row));
}
probe.child.kill('SIGTERM');
rmSync(tmp, { recursive: true, force: true });
console.log(JSON.stringify(rows, null, 2));
