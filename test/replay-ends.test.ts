// "A replay always ends": targets that stall, never answer, answer garbage or reset; a target that cannot be reached
// (checked before the clock starts); fail fast; the grace of the first Ctrl-C; a run killed outright keeps its results.
// Every target is a real server on 127.0.0.1 port 0 (raw TCP where HTTP would not let it misbehave).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { replayTrace } from '../src/replay/run.ts';
import { FailFastWatch } from '../src/results/fail-fast.ts';
import { readRunFile } from '../src/results/run-file.ts';
import type { RequestResult } from '../src/results/types.ts';
import { BIN, runCli, startUpstream, tempDir, waitFor, writeChatTrace } from './helpers.ts';

/** A raw TCP server on 127.0.0.1:0; `onRequest` runs once per connection when its first bytes (a request) arrive. */
async function rawTarget(onRequest: (s: Socket) => void): Promise<{ url: string; port: number; requests: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let requests = 0;
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.once('data', () => {
      requests++;
      onRequest(s);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests: () => requests,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

const SSE_HEADERS = 'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n';
const sseChunk = (data: string) => {
  const ev = `data: ${data}\n\n`;
  return `${Buffer.byteLength(ev).toString(16)}\r\n${ev}\r\n`;
};
const CONTENT = JSON.stringify({ choices: [{ delta: { content: 'x' } }] });

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let n = 0;
/** A trace of `count` streamed chat requests `gapMs` apart, in a fresh file. */
function trace(count: number, gapMs: number): string {
  const path = join(tmp.dir, `t${++n}.trace.db`);
  writeChatTrace(path, Array.from({ length: count }, (_, i) => i * gapMs * 1000), { stream: true });
  return path;
}
const runFile = () => join(tmp.dir, `r${++n}.run.db`);

describe('timeouts: every request ends, with its own kind and cause', () => {
  it('headers then nothing (a stalled stream): 40 requests end at --idle-timeout as timeout/idle_timeout, status and TTFB kept; exit 0', async () => {
    const target = await rawTarget((s) => s.write(SSE_HEADERS));
    try {
      const run = runFile();
      const t0 = Date.now();
      const r = await runCli(['replay', trace(40, 10), '--target', target.url, '--idle-timeout', '1s', '--warmup', '0', '--out', run, '--json', '--quiet'], { timeoutMs: 14_000 });
      const wallMs = Date.now() - t0;
      expect(r.code, r.stderr).toBe(0);
      const { results, meta } = readRunFile(run);
      expect(results).toHaveLength(40);
      for (const x of results) {
        expect(x).toMatchObject({ errorKind: 'timeout', errorDetail: 'idle_timeout', status: 200 });
        expect(x.ttfbAtUs).not.toBeNull();
        // undici's timers tick every 0.5 s beyond 1 s: the timeout fires between 1 and 2 s after the last byte.
        const silentMs = (x.endUs! - x.ttfbAtUs!) / 1000;
        expect(silentMs).toBeGreaterThanOrEqual(950);
        expect(silentMs).toBeLessThan(3000);
      }
      expect(meta.timeouts).toEqual({ headersMs: 120_000, idleMs: 1000, requestMs: 30 * 60_000 });
      expect(JSON.parse(r.stdout).errorDetails).toEqual({ timeout: { idle_timeout: 40 } });
      expect(wallMs).toBeLessThan(14_000);
    } finally {
      await target.close();
    }
  }, 15_000);

  it('accepts the connection and never answers: each request ends at the headers timeout, timeout/headers_timeout, sent but no status', async () => {
    const target = await rawTarget(() => undefined);
    try {
      const run = runFile();
      const { summary } = await replayTrace({ trace: trace(12, 20), target: target.url, runFile: run, warmup: 0, headersTimeoutMs: 1000 });
      expect(target.requests()).toBe(12);
      expect(summary).toMatchObject({ requests: 12, sent: 12, completed: 0, errorsByKind: { timeout: 12 } });
      for (const x of readRunFile(run).results) {
        expect(x).toMatchObject({ errorKind: 'timeout', errorDetail: 'headers_timeout', status: null, ttfbAtUs: null });
        const waitedMs = (x.endUs! - x.sentUs!) / 1000;
        expect(waitedMs).toBeGreaterThanOrEqual(950);
        expect(waitedMs).toBeLessThan(3000);
      }
    } finally {
      await target.close();
    }
  }, 15_000);

  it('a stream that trickles forever (each gap under the idle timeout) is cut at --timeout, timeout/request_timeout, its TTFT kept', async () => {
    const target = await rawTarget((s) => {
      s.write(SSE_HEADERS);
      const t = setInterval(() => s.writable && s.write(sseChunk(CONTENT)), 100);
      s.on('close', () => clearInterval(t));
    });
    try {
      const run = runFile();
      const { summary } = await replayTrace({ trace: trace(5, 20), target: target.url, runFile: run, warmup: 0, requestTimeoutMs: 1000, idleTimeoutMs: 60_000 });
      expect(summary.errorsByKind).toEqual({ timeout: 5 });
      for (const x of readRunFile(run).results) {
        expect(x).toMatchObject({ errorKind: 'timeout', errorDetail: 'request_timeout', status: 200 });
        expect(x.ttftAtUs).not.toBeNull();
        expect(x.eventCount).toBeGreaterThanOrEqual(5);
        // The sweep runs every twentieth of the timeout: cut between 1 s and a little after.
        const tookMs = (x.endUs! - x.sentUs!) / 1000;
        expect(tookMs).toBeGreaterThanOrEqual(990);
        expect(tookMs).toBeLessThan(2000);
      }
    } finally {
      await target.close();
    }
  }, 15_000);
});

describe('answers that are not whole', () => {
  it('a non-HTTP answer is bad_response with the parser\'s reason (never the bytes); the first ten stop the replay (exit 3) unless --keep-going', async () => {
    const target = await rawTarget((s) => s.end('hello SECRET-7781\r\n\r\n'));
    try {
      const t = trace(40, 20);
      const run = runFile();
      const stopped = await runCli(['replay', t, '--target', target.url, '--warmup', '0', '--out', run, '--quiet'], { timeoutMs: 14_000 });
      expect(stopped.code).toBe(3);
      expect(stopped.stderr).toMatch(/stopped early: the first 10 requests all failed before any HTTP answer came back: 127\.0\.0\.1:\d+ answered with something that is not HTTP\/1\.1 \(HPE: Expected HTTP\//);
      expect(stopped.stderr).toContain('--keep-going replays anyway');
      expect(stopped.stderr).toContain('[TW_TARGET]');
      const first = readRunFile(run);
      expect(first.results.length).toBeGreaterThanOrEqual(10);
      expect(first.results.length).toBeLessThan(40);
      expect(first.meta.failFast).toMatchObject({ verdict: { failed: 10 } });
      for (const x of first.results.filter((r) => r.errorKind !== 'client_aborted')) {
        expect(x).toMatchObject({ errorKind: 'bad_response', status: null });
        expect(x.errorDetail).toMatch(/^HPE: Expected HTTP\//);
      }
      expect(JSON.stringify(first)).not.toContain('SECRET');

      const run2 = runFile();
      const kept = await runCli(['replay', t, '--target', target.url, '--warmup', '0', '--out', run2, '--quiet', '--keep-going'], { timeoutMs: 14_000 });
      expect(kept.code, kept.stderr).toBe(0);
      expect(readRunFile(run2).results.filter((r) => r.errorKind === 'bad_response')).toHaveLength(40);
      expect(kept.stdout).toMatch(/failures by cause: bad_response \(HPE: Expected HTTP\/, RTSP\/ or ICE\/\) 40/);
    } finally {
      await target.close();
    }
  }, 30_000);

  it('a connection reset after the headers keeps its TTFB and TTFT: upstream_reset (ECONNRESET), status 200', async () => {
    const target = await rawTarget((s) => {
      s.write(SSE_HEADERS + sseChunk(CONTENT));
      setTimeout(() => s.resetAndDestroy(), 50);
    });
    try {
      const run = runFile();
      const { summary } = await replayTrace({ trace: trace(6, 20), target: target.url, runFile: run, warmup: 0, failFast: true });
      // A status came back, so the target speaks HTTP: no fail-fast, every request is data.
      expect(summary.errorsByKind).toEqual({ upstream_reset: 6 });
      for (const x of readRunFile(run).results) {
        expect(x).toMatchObject({ errorKind: 'upstream_reset', errorDetail: 'ECONNRESET', status: 200 });
        expect(x.ttfbAtUs).not.toBeNull();
        expect(x.ttftAtUs).not.toBeNull();
        expect(x.endUs! - x.ttfbAtUs!).toBeGreaterThanOrEqual(40_000);
      }
    } finally {
      await target.close();
    }
  }, 15_000);
});

describe('the target is checked before the clock starts', () => {
  const notices: string[] = [];
  it('a target that is down: exit 3 within seconds naming the cause and the address; no run file', async () => {
    const dead = await startUpstream(() => undefined);
    const url = dead.url;
    await dead.close();
    const run = runFile();
    const t0 = Date.now();
    const r = await runCli(['replay', trace(40, 100), '--target', url, '--out', run, '--quiet'], { timeoutMs: 14_000 });
    expect(r.code).toBe(3);
    const port = new URL(url).port;
    expect(r.stderr).toContain(`tracewarp: cannot reach the target ${url}: connection refused (ECONNREFUSED) at 127.0.0.1:${port}: is the server up and listening there?`);
    expect(r.stderr).toContain('nothing was sent); --keep-going replays anyway');
    expect(existsSync(run)).toBe(false);
    // The replay would have lasted 4 s; it never started.
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 15_000);

  it('https:// to a plain-HTTP port: the TLS cause (ERR_SSL_WRONG_VERSION_NUMBER); with --keep-going every result keeps it', async () => {
    const plain = createHttpServer((_req, res) => res.end('{}'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', () => r()));
    const port = (plain.address() as { port: number }).port;
    try {
      const t = trace(4, 20);
      const refused = await runCli(['replay', t, '--target', `https://127.0.0.1:${port}`, '--out', runFile(), '--quiet'], { timeoutMs: 14_000 });
      expect(refused.code).toBe(3);
      expect(refused.stderr).toContain(`TLS handshake with 127.0.0.1:${port} failed (ERR_SSL_WRONG_VERSION_NUMBER): the port does not speak TLS — use http://`);

      const run = runFile();
      const kept = await replayTrace({ trace: t, target: `https://127.0.0.1:${port}`, runFile: run, warmup: 0, failFast: false, onNotice: (l) => notices.push(l) });
      expect(notices.join('\n')).toContain('ERR_SSL_WRONG_VERSION_NUMBER');
      expect(kept.errorDetails).toEqual({ upstream_error: { ERR_SSL_WRONG_VERSION_NUMBER: 4 } });
      expect(readRunFile(run).results.map((x) => x.errorDetail)).toEqual(Array(4).fill('ERR_SSL_WRONG_VERSION_NUMBER'));
    } finally {
      plain.closeAllConnections();
      await new Promise((r) => plain.close(r));
    }
  }, 20_000);
});

describe('fail fast, decided in the results thread', () => {
  const result = (over: Partial<RequestResult>): RequestResult => ({
    index: 0, traceSeq: 1, scheduledUs: 0, sentUs: 0, ttfbAtUs: null, ttftAtUs: null, endUs: 1000, status: null, errorKind: 'upstream_reset', errorDetail: 'ECONNRESET',
    requestBytes: 1, responseBytes: 0, streamed: false, eventCount: 0, outputTokens: null, expectedOutputTokens: null, promptTokens: null, capDelayed: false, label: null, ...over,
  });
  const rule = { requests: 10, minRequests: 3, windowUs: 5e6, planned: 100 };

  it('stops on the tenth transport failure in a row, not before; counts kinds and causes', () => {
    const w = new FailFastWatch(rule);
    for (let i = 0; i < 9; i++) expect(w.add(result({ errorKind: i < 6 ? 'upstream_reset' : 'timeout', errorDetail: i < 6 ? 'ECONNRESET' : 'headers_timeout' }))).toBeNull();
    expect(w.add(result({ errorKind: 'timeout', errorDetail: 'headers_timeout' }))).toEqual({ failed: 10, causes: { upstream_reset: { ECONNRESET: 6 }, timeout: { headers_timeout: 4 } } });
    expect(w.add(result({}))).toBeNull(); // once
  });

  it('any HTTP answer (a 500 too) disarms it; requests the replay dropped or cut itself count neither way', () => {
    const w = new FailFastWatch(rule);
    for (let i = 0; i < 20; i++) expect(w.add(result({ errorKind: i % 2 ? 'dropped' : 'client_aborted', errorDetail: null }))).toBeNull();
    expect(w.add(result({ status: 500, errorKind: null, errorDetail: null }))).toBeNull();
    for (let i = 0; i < 20; i++) expect(w.add(result({}))).toBeNull();
  });

  it('a slow schedule: three failures once the run is 5 s old; a short workload: all of it', () => {
    const slow = new FailFastWatch(rule);
    expect(slow.add(result({ endUs: 1e6 }))).toBeNull();
    expect(slow.add(result({ endUs: 3e6 }))).toBeNull();
    expect(slow.add(result({ endUs: 5.2e6 }))?.failed).toBe(3);
    const short = new FailFastWatch({ ...rule, planned: 2 });
    expect(short.add(result({}))).toBeNull();
    expect(short.add(result({}))?.failed).toBe(2);
  });
});

describe('a stop always ends', () => {
  it('the first Ctrl-C with requests that never end: stops sending, waits the --grace, cuts them (client_aborted), exits 130 within the grace', async () => {
    const target = await rawTarget(() => undefined);
    try {
      const run = runFile();
      const child = spawn(process.execPath, [BIN, 'replay', trace(200, 20), '--target', target.url, '--warmup', '0', '--grace', '2s', '--out', run, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      let stdout = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.stdout.on('data', (d) => (stdout += d));
      const exited = new Promise<number | null>((r) => child.on('close', r));
      await waitFor(() => target.requests() >= 10, 12_000);
      const t0 = Date.now();
      child.kill('SIGINT');
      const code = await exited;
      const tookMs = Date.now() - t0;
      expect(code, stderr).toBe(130);
      // It waited for the hung requests (the grace), then cut them and wrote the run file: ended within the grace
      // plus the time to write the run file and exit.
      expect(tookMs).toBeGreaterThanOrEqual(1900);
      expect(tookMs).toBeLessThan(2000 + 2500);
      expect(stderr).toMatch(/replay: SIGINT: stopped sending; .* in flight may finish for up to 2 s, then are cut/);
      expect(stderr).toMatch(/replay: the 2 s grace is over: cutting \d+ requests? still in flight \(recorded as client_aborted\)/);
      const printed = JSON.parse(stdout);
      expect(printed.interrupted).toBe(true);
      const { results, meta } = readRunFile(run);
      expect(meta).toMatchObject({ interrupted: true, cutAfterGrace: true });
      expect(results.length).toBe(printed.requests);
      expect(results.length).toBeLessThan(200);
      expect(results.every((x) => x.errorKind === 'client_aborted')).toBe(true);
    } finally {
      await target.close();
    }
  }, 20_000);

  it('SIGKILL mid-run: the run file keeps every result that came back up to about one flush interval before the kill', async () => {
    const answeredAt: number[] = [];
    const up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}', () => {
        if (req.headers['x-tracewarp-seq'] !== undefined) answeredAt.push(Date.now());
      });
    });
    try {
      const run = runFile();
      const child = spawn(process.execPath, [BIN, 'replay', trace(300, 20), '--target', up.url, '--warmup', '0', '--out', run, '--quiet'], { stdio: 'ignore' });
      const exited = new Promise((r) => child.on('close', r));
      await waitFor(() => answeredAt.length >= 90, 12_000); // 1.8 s into the 6 s schedule
      const killedAt = Date.now();
      child.kill('SIGKILL');
      await exited;
      const answered = answeredAt.length;
      const { results, meta } = readRunFile(run);
      // Nothing of the end was written (no summary), but the rows are there: every answer older than one flush
      // interval (250 ms) plus the hand-over batch (20 ms) and some slack for a loaded machine.
      expect(meta.summary).toBeUndefined();
      const settled = answeredAt.filter((t) => t <= killedAt - 600).length;
      expect(settled).toBeGreaterThanOrEqual(30);
      expect(results.length).toBeGreaterThanOrEqual(settled);
      expect(results.length).toBeLessThanOrEqual(answered);
      expect(results.every((x) => x.status === 200 && x.errorKind === null)).toBe(true);
      expect(new Set(results.map((x) => x.index)).size).toBe(results.length);
    } finally {
      await up.close();
    }
  }, 20_000);
});
