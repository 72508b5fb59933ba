import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runImport } from '../src/cli/import.ts';
import { importedChatRecord } from '../src/importers/common.ts';
import { replayTrace } from '../src/replay/run.ts';
import { formatSummary } from '../src/report/text.ts';
import { readRunFile, RUN_FORMAT_VERSION } from '../src/results/run-file.ts';
import { TraceWriter } from '../src/trace/writer.ts';
import { startProbe } from '../bench/common.ts';
import { captureOutput, FIXTURES, startUpstream, tempDir } from './helpers.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('the replayer checked from outside (external arrival probe, Mooncake prompts of 15k tokens on average)', () => {
  const tmp = tempDir();
  let probe: { url: string; child: ChildProcess };
  beforeAll(async () => {
    probe = await startProbe();
  });
  afterAll(() => {
    probe.child.kill('SIGTERM');
    tmp.cleanup();
  });

  it('every request reaches the probe after the socket send the replayer reports, a few ms later at most in the median; lateness is measured at the socket', async () => {
    const trace = join(tmp.dir, 'mooncake.trace.db');
    await runImport('mooncake', join(FIXTURES, 'mooncake-first-200.jsonl'), { out: trace, model: 'probe', stream: false }, captureOutput());
    const run = join(tmp.dir, 'm.run.db');
    const outcome = await replayTrace({ trace, target: probe.url, steps: [{ op: 'window', fromUs: 0, toUs: 30e6 }, { op: 'speed', factor: 10 }], runFile: run, seed: 1 });
    const arrivals = (await (await request(`${probe.url}/__probe/arrivals`)).body.json()) as Array<[number, number]>;
    const { meta, results } = readRunFile(run);
    const start = meta.startMonoUs as number;
    expect(typeof start).toBe('number');
    expect(outcome.summary.completed).toBe(results.length);
    expect(arrivals).toHaveLength(results.length);
    const at = new Map(arrivals.map(([us, seq]) => [seq, us]));
    // The probe stamps on the same monotonic clock: no request arrives before the replayer says it wrote it (0.5 ms
    // for the per-thread calibration of the clock), and the replayer's lateness is never below the probe's lag but
    // for the transit between the two.
    const transitUs = results.map((r) => at.get(r.index)! - (start + r.sentUs!));
    expect(Math.min(...transitUs)).toBeGreaterThan(-500);
    expect(median(transitUs)).toBeLessThan(5000);
    for (const r of results) {
      expect(r.sentUs!).toBeGreaterThanOrEqual(r.dispatchedUs!);
      expect(r.bodySentUs!).toBeGreaterThanOrEqual(r.sentUs!);
      expect(r.requestBytes).toBeGreaterThan(r.promptTokens! * 4); // the long prompts really went out
    }
    const h = outcome.summary.replayerHealth!;
    expect(h.senders).toBe(1);
    expect(h.synthesis?.synthesized).toBe(results.length);
    expect(h.notReadyAtDue).toBe(0);
  });
});

describe('replayer health', () => {
  it('a body not synthesized by its due time is sent the moment it is, counted late, and the run says so', async () => {
    const tmp = tempDir();
    const up = await startUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[],"usage":{"completion_tokens":1}}'));
    try {
      const trace = join(tmp.dir, 'late.trace.db');
      const w = new TraceWriter(trace, { source: 'test', anchorWallUs: 0, anonymization: null });
      // A 2-million-token prompt due 20 ms after a small one, with room for one body ahead: it cannot be ready in time.
      [[0, 100], [20_000, 2_000_000], [40_000, 100]].forEach(([at, tokens], i) => w.add(importedChatRecord(i + 1, at!, tokens!, 1, { model: 'm', stream: false })));
      w.close();
      const { summary } = await replayTrace({ trace, target: up.url, runFile: join(tmp.dir, 'l.run.db'), warmup: 0, maxReadyRequests: 1, synthThreads: 1 });
      const { results } = readRunFile(join(tmp.dir, 'l.run.db'));
      expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(results[0]!.readyLagUs).toBeNull();
      expect(results[1]!.readyLagUs!).toBeGreaterThan(20_000);
      // Sent after its body was ready, never before: the lateness includes the wait for it.
      expect(results[1]!.sentUs! - results[1]!.scheduledUs).toBeGreaterThanOrEqual(results[1]!.readyLagUs!);
      const h = summary.replayerHealth!;
      expect(h.notReadyAtDue).toBeGreaterThanOrEqual(1);
      expect(h.worstReadyLagMs!).toBeGreaterThan(20);
      expect(h.verdict).toBe('distorted');
      expect(h.reasons.join(' ')).toMatch(/the body was not synthesized by its send time/);
      expect(h.fix).toMatch(/--synth-threads|--speed/);
      expect(formatSummary(summary).split('\n')[0]).toMatch(/^WARNING: the replayer itself distorted this run: .*the body was not synthesized/);
    } finally {
      await up.close();
      tmp.cleanup();
    }
  });

  it('a sending loop blocked on purpose is found: the stall, the requests measured during it (marked in the run file), and the verdict', async () => {
    const tmp = tempDir();
    const up = await startUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    try {
      const trace = join(tmp.dir, 'block.trace.db');
      const w = new TraceWriter(trace, { source: 'test', anchorWallUs: 0, anonymization: null });
      for (let i = 0; i < 100; i++) w.add(importedChatRecord(i + 1, i * 20_000, 20, 1, { model: 'm', stream: false })); // 50 req/s for 2 s
      w.close();
      let blocked = false;
      const run = join(tmp.dir, 'b.run.db');
      const { summary } = await replayTrace({
        trace, target: up.url, runFile: run, warmup: 0,
        // The first progress event comes about 250 ms in; the loop is then kept busy for 150 ms.
        onProgress: () => {
          if (blocked) return;
          blocked = true;
          const end = performance.now() + 150;
          while (performance.now() < end);
        },
      });
      const h = summary.replayerHealth!;
      expect(h.stalls).toBeGreaterThanOrEqual(1);
      expect(h.loopDelayMs.max).toBeGreaterThan(100);
      // About 7 requests were due while it was blocked: they went out late, and are marked.
      expect(h.resultsDuringStall).toBeGreaterThanOrEqual(5);
      expect(h.verdict).toBe('distorted');
      const { results } = readRunFile(run);
      expect(results.filter((r) => r.toolStall)).toHaveLength(h.resultsDuringStall);
      const late = results.filter((r) => r.sentUs! - r.scheduledUs > 50_000);
      expect(late.length).toBeGreaterThanOrEqual(5);
      expect(late.every((r) => r.toolStall)).toBe(true);
      expect(formatSummary(summary).split('\n')[0]).toMatch(/^WARNING: the replayer itself distorted this run: .*a stall of the replayer's loop may have moved the figures/);
    } finally {
      await up.close();
      tmp.cleanup();
    }
  });

  it('--workers 2: two sending loops on one schedule share the workload and one run file', async () => {
    const tmp = tempDir();
    const seen: number[] = [];
    const up = await startUpstream((req, res) => {
      if (req.headers['x-tracewarp-seq'] !== undefined) seen.push(Number(req.headers['x-tracewarp-seq']));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    try {
      const trace = join(tmp.dir, 'w.trace.db');
      const w = new TraceWriter(trace, { source: 'test', anchorWallUs: 0, anonymization: null });
      for (let i = 0; i < 200; i++) w.add(importedChatRecord(i + 1, i * 5000, 50, 1, { model: 'm', stream: false }));
      w.close();
      const run = join(tmp.dir, 'w.run.db');
      const outcome = await replayTrace({ trace, target: up.url, runFile: run, workers: 2, warmup: 2 });
      expect(outcome.senders).toBe(2);
      const { meta, results } = readRunFile(run);
      expect(meta.senders).toBe(2);
      expect(results).toHaveLength(200);
      expect(results.every((r) => r.status === 200 && r.sender === r.index % 2)).toBe(true);
      expect(new Set(seen).size).toBe(200);
      // One schedule for both: request i is due at i × 5 ms whichever loop sends it.
      expect(results.every((r) => r.scheduledUs === r.index * 5000)).toBe(true);
      expect(outcome.summary.replayerHealth!.senders).toBe(2);
    } finally {
      await up.close();
      tmp.cleanup();
    }
  });
});

describe('run file versions', () => {
  it('reads format 1 files (no socket-send columns) and refuses a newer format, naming it', async () => {
    const tmp = tempDir();
    const up = await startUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    try {
      const trace = join(tmp.dir, 'v.trace.db');
      const w = new TraceWriter(trace, { source: 'test', anchorWallUs: 0, anonymization: null });
      w.add(importedChatRecord(1, 0, 10, 1, { model: 'm', stream: false }));
      w.close();
      const run = join(tmp.dir, 'v.run.db');
      await replayTrace({ trace, target: up.url, runFile: run, warmup: 0 });
      const db = new Database(run);
      for (const c of ['dispatched_us', 'body_sent_us', 'ready_lag_us', 'sender', 'tool_stall']) db.exec(`ALTER TABLE results DROP COLUMN ${c}`);
      db.prepare("UPDATE meta SET value = '1' WHERE key = 'format_version'").run();
      db.close();
      const v1 = readRunFile(run);
      expect(v1.results[0]).toMatchObject({ status: 200, dispatchedUs: null, readyLagUs: null, sender: 0, toolStall: false });
      const db2 = new Database(run);
      db2.prepare('UPDATE meta SET value = ? WHERE key = ?').run(String(RUN_FORMAT_VERSION + 1), 'format_version');
      db2.close();
      expect(() => readRunFile(run)).toThrow(new RegExp(`format version ${RUN_FORMAT_VERSION + 1} is not one this tracewarp reads`));
    } finally {
      await up.close();
      tmp.cleanup();
    }
  });
});
