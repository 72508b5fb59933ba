import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Pool } from 'undici';
import { describe, expect, it } from 'vitest';
import { startRecordingProxy, type RecordingProxy } from '../src/capture/proxy.ts';
import { TraceReader } from '../src/trace/reader.ts';
import type { WriterHealthEvent } from '../src/trace/writer.ts';
import { textOfTokens } from '../src/synth/text.ts';
import { createRng } from '../src/rng.ts';
import { runInspect } from '../src/cli/inspect.ts';
import { captureOutput, ROOT, startCli, startUpstream, tempDir, waitFor } from './helpers.ts';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** An upstream that answers each chat request with the SHA-256 of the body it received. */
async function hashingUpstream() {
  return startUpstream((_req, res, body) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ sha: sha(body), choices: [{ message: { content: 'ok' } }], usage: { completion_tokens: 1 } }));
  });
}

/** Chat bodies with prompts of `tokens` tokens (real-length prompts cost the describer real work). */
function chatBodies(n: number, tokens: number): string[] {
  const rng = createRng(5);
  const text = textOfTokens(tokens, rng);
  return Array.from({ length: n }, (_, i) => JSON.stringify({ model: 'm', messages: [{ role: 'user', content: `${i} ${text}` }], max_tokens: 1 }));
}

/** Sends each body through the proxy, `concurrency` at a time; every answer must be the upstream's hash of it. */
async function sendAll(url: string, bodies: string[], concurrency = 8): Promise<void> {
  const pool = new Pool(url, { connections: concurrency });
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < bodies.length) {
      const b = bodies[next++]!;
      const res = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: b });
      expect(res.statusCode).toBe(200);
      expect((await res.body.json() as { sha: string }).sha).toBe(sha(b));
    }
  }));
  await pool.close();
}

/** Runs `fn` with the hashing upstream and a temporary folder, both removed afterwards. */
async function withUpstream(fn: (upstream: string, dir: string) => Promise<void>): Promise<void> {
  const tmp = tempDir();
  const up = await hashingUpstream();
  try {
    await fn(up.url, tmp.dir);
  } finally {
    await up.close();
    tmp.cleanup();
  }
}

async function proxyWithTrace(upstream: string, path: string, extra: Partial<Parameters<typeof startRecordingProxy>[0]> = {}): Promise<{ proxy: RecordingProxy; events: WriterHealthEvent[] }> {
  const events: WriterHealthEvent[] = [];
  const proxy = await startRecordingProxy({ upstream, trace: { path, anonymization: null }, onRecorderHealth: (e) => events.push(e), ...extra });
  return { proxy, events };
}

describe('recording degrades, traffic never waits (faults of the recorder and of the trace file)', () => {
  it('a stalled describer: every byte is still forwarded at once; what does not fit its bounded queue is dropped and counted', () => withUpstream(async (upstream, dir) => {
    const trace = join(dir, 'stall.trace.db');
    const { proxy } = await proxyWithTrace(upstream, trace, { maxRecordQueueBytes: 1 << 20 });
    proxy.recorder.stall(4000);
    const bodies = chatBodies(60, 25_000); // ~175 KB each: the 1 MiB queue holds five
    const t0 = Date.now();
    await sendAll(proxy.url, bodies);
    // All 60 answered while the recorder was still blocked: forwarding did not wait for it.
    expect(Date.now() - t0).toBeLessThan(4000);
    const during = proxy.recorder.stats();
    expect(during.droppedQueueFull).toBeGreaterThanOrEqual(50);
    expect(during.submitted + during.droppedQueueFull).toBe(60);
    const s = await proxy.close(1000);
    expect(s.dropped).toBe(during.droppedQueueFull);
    const r = new TraceReader(trace);
    expect(r.count()).toBe(60 - during.droppedQueueFull);
    expect(r.meta.recordsDropped).toBe(during.droppedQueueFull);
    expect([...r.records()].every((x) => x.promptTokens! > 25_000)).toBe(true);
    r.close();
  }));

  it('a trace locked by another process (BEGIN EXCLUSIVE): forwarding goes on, writes are retried and resume when the lock goes; nothing is lost', () => withUpstream(async (upstream, dir) => {
    const trace = join(dir, 'locked.trace.db');
    const { proxy, events } = await proxyWithTrace(upstream, trace);
    await sendAll(proxy.url, chatBodies(5, 200));
    await waitFor(() => proxy.recorder.stats().queued === 0);
    // Another process (as a user's sqlite3 session or a backup tool would) holds the write lock for 3 s.
    const locker = spawn(process.execPath, ['-e', `const D = require('better-sqlite3'); const db = new D(${JSON.stringify(trace)}); db.exec('BEGIN EXCLUSIVE'); console.log('locked'); setTimeout(() => { db.exec('COMMIT'); db.close(); console.log('released'); }, 3000);`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let said = '';
    locker.stdout.on('data', (d) => (said += d));
    await waitFor(() => said.includes('locked'), 10_000);
    const t0 = Date.now();
    await sendAll(proxy.url, chatBodies(40, 200));
    expect(Date.now() - t0).toBeLessThan(3000); // answered while the lock was held
    await waitFor(() => events.some((e) => e.kind === 'write_failed'), 5000);
    await waitFor(() => said.includes('released'), 10_000);
    await waitFor(() => events.some((e) => e.kind === 'write_resumed'), 10_000);
    const s = await proxy.close(1000);
    expect(events.find((e) => e.kind === 'write_failed')).toMatchObject({ code: expect.stringMatching(/^SQLITE_BUSY/) });
    expect(s.dropped).toBe(0);
    const r = new TraceReader(trace);
    expect(r.count()).toBe(45);
    expect(r.meta.recordingHealth).toMatchObject({ ok: false, recordsDropped: 0, firstFailure: { code: expect.stringMatching(/^SQLITE_BUSY/) } });
    expect(r.meta.recordingHealth!.writeFailures).toBeGreaterThanOrEqual(1);
    r.close();
    const out = captureOutput();
    runInspect(trace, {}, out);
    expect(out.stdout.join('\n')).toMatch(/recording was degraded: 0 exchanges forwarded but not recorded, \d+ failed writes \(first: SQLITE_BUSY/);
  }));

  it('a lock held past the end: close waits, then writes what it could not write to a rescue trace and says so truly', () => withUpstream(async (upstream, dir) => {
    const trace = join(dir, 'held.trace.db');
    const { proxy } = await proxyWithTrace(upstream, trace, { trace: { path: trace, anonymization: null, closeWriteWaitMs: 800 } });
    await sendAll(proxy.url, chatBodies(5, 200));
    await waitFor(() => proxy.recorder.stats().queued === 0);
    const locker = spawn(process.execPath, ['-e', `const D = require('better-sqlite3'); const db = new D(${JSON.stringify(trace)}); db.exec('BEGIN EXCLUSIVE'); console.log('locked'); setTimeout(() => { db.exec('COMMIT'); db.close(); }, 6000);`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let said = '';
    locker.stdout.on('data', (d) => (said += d));
    await waitFor(() => said.includes('locked'), 10_000);
    await sendAll(proxy.url, chatBodies(30, 200));
    const t0 = Date.now();
    const s = await proxy.close(1000);
    expect(Date.now() - t0).toBeLessThan(5000); // waited its 0.8 s, not for the lock
    expect(s.rescued).toBe(30);
    expect(s.dropped).toBe(0);
    expect(s.metaWritten).toBe(false); // the locked trace could not say so itself; the CLI says it on stderr
    const rescue = new TraceReader(s.rescuedTo!);
    expect(rescue.count()).toBe(30);
    rescue.close();
    locker.kill();
    await new Promise((r) => locker.on('exit', r));
    const r = new TraceReader(trace);
    expect(r.count()).toBe(5);
    r.close();
  }));

  it('a trace file deleted while recording is made again from the open database, nothing lost', () => withUpstream(async (upstream, dir) => {
    const trace = join(dir, 'vanish.trace.db');
    const { proxy, events } = await proxyWithTrace(upstream, trace);
    await sendAll(proxy.url, chatBodies(10, 100));
    await waitFor(() => proxy.recorder.stats().queued === 0);
    await new Promise((r) => setTimeout(r, 300)); // past a flush
    for (const suffix of ['', '-wal', '-shm']) rmSync(trace + suffix, { force: true });
    await sendAll(proxy.url, chatBodies(10, 100));
    await waitFor(() => events.some((e) => e.kind === 'file_recreated'), 5000);
    await proxy.close(1000);
    const r = new TraceReader(trace);
    expect(r.count()).toBe(20);
    r.close();
  }));

  it('kill -9 while recording leaves a readable trace with everything flushed before it', () => withUpstream(async (upstream, dir) => {
    const trace = join(dir, 'killed.trace.db');
    const rec = await startCli(['record', '--upstream', upstream, '--listen', '127.0.0.1:0', '--out', trace]);
    await sendAll(rec.url, chatBodies(30, 300));
    await new Promise((r) => setTimeout(r, 600)); // a few flush intervals
    rec.child.kill('SIGKILL');
    await rec.exited;
    const r = new TraceReader(trace);
    expect(r.count()).toBe(30);
    r.close();
  }));
});

/** Mounts a tmpfs of `size` at `dir` (root only); false where this machine does not allow it. */
function mountTmpfs(dir: string, size: string): boolean {
  mkdirSync(dir, { recursive: true });
  if (process.getuid?.() !== 0) return false;
  return spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]).status === 0;
}

const canMount = (() => {
  const probe = join(tempDir().dir, 'probe');
  const ok = mountTmpfs(probe, '64k');
  if (ok) spawnSync('umount', [probe]);
  return ok;
})();

/** Runs `fn` with the hashing upstream and a 1 MiB tmpfs, unmounted and removed afterwards. */
async function withSmallDisk(fn: (upstream: string, mnt: string) => Promise<void>): Promise<void> {
  const tmp = tempDir();
  const mnt = join(tmp.dir, 'mnt');
  expect(mountTmpfs(mnt, '1m')).toBe(true);
  const up = await hashingUpstream();
  try {
    await fn(up.url, mnt);
  } finally {
    await up.close();
    spawnSync('umount', ['-l', mnt]);
    tmp.cleanup();
  }
}

/** Fills the disk at `dir` to its last block; returns the filler file. */
function fillDisk(dir: string): string {
  const filler = join(dir, 'filler');
  writeFileSync(filler, Buffer.alloc(0));
  for (let k = 0; k < 1000; k++) {
    try {
      writeFileSync(filler, Buffer.alloc(4096), { flag: 'a' });
    } catch {
      break;
    }
  }
  return filler;
}

describe.skipIf(!canMount)('recording on a full disk (a small tmpfs)', () => {
  it('forwards every byte while the disk is full, keeps the records that could not be written and writes them once there is room; the trace is whole', () => withSmallDisk(async (upstream, mnt) => {
    const trace = join(mnt, 'full.trace.db');
    const { proxy, events } = await proxyWithTrace(upstream, trace);
    await sendAll(proxy.url, chatBodies(5, 200));
    await waitFor(() => proxy.recorder.stats().queued === 0);
    await new Promise((r) => setTimeout(r, 300));
    const filler = fillDisk(mnt);
    await sendAll(proxy.url, chatBodies(200, 200));
    await waitFor(() => events.some((e) => e.kind === 'write_failed'), 5000);
    expect(events.find((e) => e.kind === 'write_failed')).toMatchObject({ code: expect.stringMatching(/^SQLITE_FULL/) });
    rmSync(filler);
    await waitFor(() => events.some((e) => e.kind === 'write_resumed'), 10_000);
    const s = await proxy.close(1000);
    expect(s.dropped).toBe(0);
    expect(s.whole).toBe(true);
    const r = new TraceReader(trace);
    expect(r.count()).toBe(205);
    expect(r.meta.recordsDropped).toBe(0);
    r.close();
  }));

  it('closing on a still-full disk leaves the trace and its WAL; the reader takes the committed records from the WAL', () => withSmallDisk(async (upstream, mnt) => {
    const trace = join(mnt, 'stuck.trace.db');
    const { proxy } = await proxyWithTrace(upstream, trace, { trace: { path: trace, anonymization: null, closeWriteWaitMs: 500 } });
    await sendAll(proxy.url, chatBodies(50, 200));
    await waitFor(() => proxy.recorder.stats().queued === 0);
    await new Promise((r) => setTimeout(r, 300)); // the 50 are committed (in the WAL)
    fillDisk(mnt);
    await sendAll(proxy.url, chatBodies(20, 200));
    const s = await proxy.close(1000);
    expect(s.whole).toBe(false);
    expect(existsSync(`${trace}-wal`)).toBe(true);
    const r = new TraceReader(trace);
    expect(r.count()).toBeGreaterThanOrEqual(50);
    // What the full disk could not take went to a rescue trace in the temporary folder (its own disk is full).
    expect(s.rescuedTo).toContain(tmpdir());
    const rescue = new TraceReader(s.rescuedTo!);
    expect(r.count() + rescue.count() + s.dropped!).toBe(70);
    expect(rescue.count()).toBe(s.rescued);
    rescue.close();
    rmSync(s.rescuedTo!, { force: true });
    r.close();
  }));
});
