import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecord } from '../src/cli/record.ts';
import { runReplay } from '../src/cli/replay.ts';
import { importedChatRecord } from '../src/importers/common.ts';
import { summarize } from '../src/metrics/summary.ts';
import { replayTrace } from '../src/replay/run.ts';
import { readRunFile } from '../src/results/run-file.ts';
import { createRng } from '../src/rng.ts';
import { startSim, type SimServer } from '../src/sim/server.ts';
import { TraceReader } from '../src/trace/reader.ts';
import { TraceWriter } from '../src/trace/writer.ts';
import { captureOutput, runCli, startUpstream, tempDir, waitFor, writeChatTrace } from './helpers.ts';
import { spawn } from 'node:child_process';
import { BIN } from './helpers.ts';

/** Nearest-rank percentile of exact values (ms). */
function exactPercentile(values: number[], p: number): number {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.max(0, Math.ceil((p / 100) * v.length) - 1)]!;
}

const writeTrace = (path: string, offsetsUs: number[]) => writeChatTrace(path, offsetsUs);

describe('replay at 2× of a recorded trace (sim behind the recording proxy)', () => {
  const tmp = tempDir();
  const trace = join(tmp.dir, 'recorded.trace.db');
  const runPath = join(tmp.dir, 'r.run.db');
  let sim: SimServer;
  let traceOffsets: number[];
  let printed: Record<string, unknown>;

  beforeAll(async () => {
    sim = await startSim({ decodeStepMs: 2, perSeqStepMs: 0.05 });
    const session = await startRecord({ upstream: sim.url, host: '127.0.0.1', port: 0, out: trace }, captureOutput());
    // Traffic shaped like a bursty stretch of the Mooncake fixture's token counts, ~60 requests over ~3 s.
    const rng = createRng(3);
    const records = Array.from({ length: 60 }, (_, i) =>
      importedChatRecord(i + 1, Math.round(i * 50_000 + rng.int(40_000)), 10 + rng.int(300), 1 + rng.int(30), { model: 'tracewarp-sim', stream: i % 3 !== 0 }));
    records.sort((a, b) => a.offsetUs - b.offsetUs);
    const source = join(tmp.dir, 'source.trace.db');
    const w = new TraceWriter(source, { source: 'test', anchorWallUs: 0, anonymization: null });
    records.forEach((r, i) => w.add({ ...r, seq: i + 1 }));
    w.close();
    await replayTrace({ trace: source, target: session.proxy.url, runFile: null, warmup: 0, seed: 3 });
    await session.stop();
    const reader = new TraceReader(trace);
    traceOffsets = [...reader.records()].map((r) => r.offsetUs);
    reader.close();
    const out = captureOutput();
    await runReplay(trace, { target: sim.url, speed: 2, seed: 5, out: runPath, json: true }, out);
    printed = JSON.parse(out.stdout.join('\n'));
  });
  afterAll(async () => {
    await sim.close();
    tmp.cleanup();
  });

  it('schedules every request at exactly half its recorded offset', () => {
    const { results } = readRunFile(runPath);
    expect(results).toHaveLength(60);
    const first = traceOffsets[0]!;
    results.forEach((r, i) => expect(r.scheduledUs).toBe(Math.round((traceOffsets[i]! - first) / 2)));
  });

  it('sends on schedule (lateness median < 5 ms, max < 50 ms) and gets every answer', () => {
    const { results } = readRunFile(runPath);
    const lateMs = results.map((r) => (r.sentUs! - r.scheduledUs) / 1000);
    expect(lateMs.every((l) => l >= 0)).toBe(true);
    expect(exactPercentile(lateMs, 50)).toBeLessThan(5);
    expect(Math.max(...lateMs)).toBeLessThan(50);
    expect(results.every((r) => r.status === 200 && r.errorKind === null)).toBe(true);
    // Output length fidelity: the sim generates exactly the max_tokens asked for, which is the recorded output.
    expect(results.every((r) => r.outputTokens === r.expectedOutputTokens)).toBe(true);
  });

  it('prints a summary that agrees with the per-request results', () => {
    const { results } = readRunFile(runPath);
    const lat = results.map((r) => (r.endUs! - r.sentUs!) / 1000);
    const fromSched = results.map((r) => (r.endUs! - r.scheduledUs) / 1000);
    expect(printed).toMatchObject({ requests: 60, sent: 60, completed: 60, errors: 0, errorsByKind: {} });
    const p = printed as unknown as ReturnType<typeof summarize>;
    expect(p.latencyMs.max).toBeCloseTo(Math.max(...lat), 2);
    expect(p.latencyFromScheduledMs.max).toBeCloseTo(Math.max(...fromSched), 2);
    // HDR histograms keep 3 significant digits: within 0.1 % (plus the µs rounding) of the exact value.
    for (const q of [50, 90, 99] as const) {
      const key = q === 50 ? 'p50' : q === 90 ? 'p90' : 'p99';
      expect(Math.abs(p.latencyMs[key]! - exactPercentile(lat, q))).toBeLessThanOrEqual(exactPercentile(lat, q) * 0.001 + 0.002);
    }
    const streamed = results.filter((r) => r.streamed);
    expect(p.ttftMs.count).toBe(streamed.length);
    expect(streamed.length).toBe(40);
    const span = (results.at(-1)!.scheduledUs - results[0]!.scheduledUs) / 1e6;
    expect(p.targetRate).toBeCloseTo(59 / span, 2);
    for (const k of ['latencyMs', 'latencyFromScheduledMs', 'ttftMs', 'latenessMs'] as const) {
      expect(Object.keys(p[k])).toEqual(expect.arrayContaining(['p50', 'p90', 'p99', 'p999', 'max']));
    }
  });
});

describe('open-loop schedule keeping and coordinated omission (fixture upstreams)', () => {
  it('keeps 200 req/s for 1,000 requests against a zero-latency upstream (achieved rate within 1 %)', async () => {
    const tmp = tempDir();
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"choices":[],"usage":{"completion_tokens":5}}');
    });
    try {
      const trace = join(tmp.dir, 'const.trace.db');
      writeTrace(trace, Array.from({ length: 1000 }, (_, i) => i * 5000));
      const { summary } = await runReplay(trace, { target: up.url, speed: 1, seed: 1, out: join(tmp.dir, 'c.run.db'), quiet: true }, captureOutput());
      expect(summary.completed).toBe(1000);
      expect(summary.targetRate).toBeCloseTo(200, 6);
      expect(Math.abs(summary.achievedRate! - 200) / 200).toBeLessThan(0.01);
      expect(summary.latenessMs.p50!).toBeLessThan(5);
    } finally {
      await up.close();
      tmp.cleanup();
    }
  });

  it('reports latency from the schedule when an in-flight cap delays sends (queue), and drops with --cap-policy drop', async () => {
    const tmp = tempDir();
    const up = await startUpstream((_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      }, 190);
    });
    try {
      const trace = join(tmp.dir, 'co.trace.db');
      writeTrace(trace, Array.from({ length: 40 }, (_, i) => i * 25_000)); // 40 req/s for 1 s
      const queued = await runReplay(trace, { target: up.url, speed: 1, seed: 1, maxInFlight: 4, out: join(tmp.dir, 'q.run.db'), quiet: true }, captureOutput());
      const s = queued.summary;
      expect(s.completed).toBe(40);
      // About 4 sends per 190 ms fit under the cap while 40/s are due: roughly half must wait.
      expect(s.capDelayed).toBeGreaterThanOrEqual(15);
      // Service time stays ~190 ms, but a user scheduled at t would have waited about a second by the end.
      expect(s.latencyMs.p99!).toBeLessThan(400);
      expect(s.latencyFromScheduledMs.p99!).toBeGreaterThan(900);
      expect(s.latenessMs.max!).toBeGreaterThan(700);

      const dropped = await runReplay(trace, { target: up.url, speed: 1, seed: 1, maxInFlight: 4, capPolicy: 'drop', out: join(tmp.dir, 'd.run.db'), quiet: true }, captureOutput());
      const d = dropped.summary;
      expect(d.errorsByKind.dropped).toBeGreaterThanOrEqual(15);
      expect(d.sent + d.errorsByKind.dropped!).toBe(40);
      expect(d.latencyFromScheduledMs.p99!).toBeLessThan(400);
    } finally {
      await up.close();
      tmp.cleanup();
    }
  });

  it('records transport failures as data: a refused target gives upstream_refused for every request', async () => {
    const tmp = tempDir();
    const dead = await startUpstream(() => undefined);
    const url = dead.url;
    await dead.close();
    const trace = join(tmp.dir, 'x.trace.db');
    writeTrace(trace, [0, 1000, 2000]);
    const { summary } = await runReplay(trace, { target: url, speed: 1, seed: 1, out: join(tmp.dir, 'x.run.db'), quiet: true }, captureOutput());
    // Tried, but never written to a socket: the target refused every connection.
    expect(summary).toMatchObject({ requests: 3, attempted: 3, sent: 0, completed: 0, errors: 3, errorsByKind: { upstream_refused: 3 } });
    tmp.cleanup();
  });

  it('a --target with the OpenAI base path /v1 sends /v1/chat/completions, a gateway prefix goes in front; report shows the transformations', async () => {
    const tmp = tempDir();
    const paths: string[] = [];
    const up = await startUpstream((req, res) => {
      paths.push(req.url!);
      res.writeHead(req.url!.startsWith('/v1/chat/completions') || req.url!.startsWith('/gw/v1/') ? 200 : 404, { 'content-type': 'application/json' }).end('{}');
    });
    try {
      const trace = join(tmp.dir, 'p.trace.db');
      writeTrace(trace, [0, 1000]);
      await runReplay(trace, { target: `${up.url}/v1`, speed: 1, seed: 1, out: join(tmp.dir, 'a.run.db'), quiet: true, warmup: 0 }, captureOutput());
      await runReplay(trace, { target: `${up.url}/gw/`, speed: 1, seed: 1, out: join(tmp.dir, 'b.run.db'), quiet: true, warmup: 0 }, captureOutput());
      const wrong = captureOutput();
      const argv = ['--speed', '2', '--amplify', '1'];
      await runReplay(trace, { target: `${up.url}/nope`, speed: 2, argv, seed: 1, out: join(tmp.dir, 'c.run.db'), quiet: true, warmup: 0 }, wrong);
      expect(paths).toEqual(['/v1/chat/completions', '/v1/chat/completions', '/gw/v1/chat/completions', '/gw/v1/chat/completions', '/nope/v1/chat/completions', '/nope/v1/chat/completions']);
      expect(wrong.stderr.join('\n')).toContain('warning: 2 of 2 answers were 404 Not Found: check --target');
      const report = await runCli(['report', join(tmp.dir, 'c.run.db')]);
      expect(report.stdout).toContain('(--speed 2 --amplify 1) against');
    } finally {
      await up.close();
      tmp.cleanup();
    }
  });

  it('gives the same bodies for the same seed and different ones for another seed', async () => {
    const tmp = tempDir();
    const bodies: string[][] = [[], [], []];
    let which = 0;
    const up = await startUpstream((req, res, body) => {
      if (req.method === 'POST') bodies[which]!.push(body.toString()); // (GET / are the warm-up requests)
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    try {
      const trace = join(tmp.dir, 's.trace.db');
      writeTrace(trace, [0, 1000, 2000, 3000]);
      for (const [i, seed] of [[0, 11], [1, 11], [2, 12]] as const) {
        which = i;
        await runReplay(trace, { target: up.url, speed: 1, seed, out: join(tmp.dir, `s${i}.run.db`), quiet: true }, captureOutput());
      }
      expect(bodies[0]).toHaveLength(4);
      expect(bodies[1]).toEqual(bodies[0]);
      expect(bodies[2]).not.toEqual(bodies[0]);
    } finally {
      await up.close();
      tmp.cleanup();
    }
  });
});

describe('replay CLI: Ctrl-C', () => {
  it('a second Ctrl-C cuts requests that never end; the run is still written, marked interrupted', async () => {
    const tmp = tempDir();
    let received = 0;
    const up = await startUpstream((_req, res) => {
      received++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const t = setInterval(() => res.write('data: {"choices":[{"delta":{"content":"x"}}]}\n\n'), 50); // forever
      res.on('close', () => clearInterval(t));
    });
    try {
      const trace = join(tmp.dir, 'endless.trace.db');
      writeTrace(trace, [0, 100_000, 200_000, 5_000_000]);
      const run = join(tmp.dir, 'e.run.db');
      const child = spawn(process.execPath, [BIN, 'replay', trace, '--target', up.url, '--out', run, '--json', '--warmup', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (d) => (stdout += d));
      // The first three requests are due within 0.2 s of the replay's start, the fourth 5 s later: interrupt once the
      // three are streaming (however long the CLI took to start on a loaded machine).
      await waitFor(() => received === 3, 30_000);
      await new Promise((r) => setTimeout(r, 300));
      child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 500));
      child.kill('SIGINT');
      const code = await new Promise<number | null>((r) => child.on('close', r));
      expect(code).toBe(130);
      const printed = JSON.parse(stdout);
      expect(printed).toMatchObject({ interrupted: true, requests: 3, errorsByKind: { client_aborted: 3 } });
      expect(readRunFile(run).results).toHaveLength(3);
    } finally {
      await up.close();
      tmp.cleanup();
    }
  });

  it('stops sending, finishes what is in flight, writes the run file marked interrupted and exits 130', async () => {
    const tmp = tempDir();
    let received = 0;
    const up = await startUpstream((req, res) => {
      if (req.headers['x-tracewarp-seq'] !== undefined) received++; // not the warm-up requests
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    try {
      const trace = join(tmp.dir, 'long.trace.db');
      writeTrace(trace, Array.from({ length: 100 }, (_, i) => i * 100_000)); // 10 s
      const run = join(tmp.dir, 'i.run.db');
      const child = spawn(process.execPath, [BIN, 'replay', trace, '--target', up.url, '--out', run, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (d) => (stdout += d));
      // Interrupt a second into the 10 s schedule, however long the CLI took to start on a loaded machine.
      await waitFor(() => received >= 10, 30_000);
      child.kill('SIGINT');
      const code = await new Promise<number | null>((r) => child.on('close', r));
      expect(code).toBe(130);
      const printed = JSON.parse(stdout);
      expect(printed.interrupted).toBe(true);
      expect(printed.requests).toBeGreaterThanOrEqual(10);
      expect(printed.requests).toBeLessThan(100);
      const { meta, results } = readRunFile(run);
      expect(meta.interrupted).toBe(true);
      expect(results).toHaveLength(printed.requests);
      const report = await runCli(['report', run, '--json']);
      expect(JSON.parse(report.stdout)).toMatchObject({ interrupted: true, seed: 1, requests: printed.requests });
    } finally {
      await up.close();
      tmp.cleanup();
    }
  });
});
