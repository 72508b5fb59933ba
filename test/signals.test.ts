// "Stopped by a supervisor, it still keeps every record": SIGTERM sent the way a supervisor sends it — to the process
// it started, the documented `npx tracewarp …` (npm → sh -c → node), not to tracewarp itself. npm passes the signal
// to its shell, which dies of it without passing it on; tracewarp notices its launcher went away and stops gracefully.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { readRunFile } from '../src/results/run-file.ts';
import { TraceReader } from '../src/trace/reader.ts';
import { BIN, ROOT, startUpstream, tempDir, waitFor, writeChatTrace } from './helpers.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

/** Parent pid of every process (from /proc). */
function parents(): Map<number, number> {
  const m = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // pid (comm) state ppid …: comm may hold spaces, so read after its closing parenthesis.
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      m.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // the process ended meanwhile
    }
  }
  return m;
}

/** The tracewarp node process launched (through npm and its shell) by `root`. */
function tracewarpUnder(root: number): number {
  const ppids = parents();
  const found: number[] = [];
  for (const [pid] of ppids) {
    let p: number | undefined = pid;
    for (let hops = 0; p && p > 1 && hops < 5; hops++) {
      p = ppids.get(p);
      if (p === root) {
        found.push(pid);
        break;
      }
    }
  }
  const tw = found.filter((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return /node$/.test(argv[0]!) && argv.some((a) => /tracewarp(\.js)?$/.test(a));
    } catch {
      return false;
    }
  });
  if (tw.length !== 1) throw new Error(`expected one tracewarp process under ${root}, found ${tw.length}`);
  return tw[0]!;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** `npx tracewarp ARGS` from the project folder, as a container entrypoint or a systemd unit starts it. */
function npx(args: string[]): { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<[number | null, string | null]> } {
  const child = spawn('npx', ['tracewarp', ...args], { cwd: ROOT, detached: false, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<[number | null, string | null]>((r) => child.on('exit', (code, sig) => r([code, sig])));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

describe('SIGTERM to the process the README starts', () => {
  it('`npx tracewarp record`: the exchanges in flight finish, every exchange is in the trace, the proxy is gone', async () => {
    const up = await startUpstream((req, res) => {
      // Requests marked slow are still in flight when the supervisor's SIGTERM comes.
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[],"usage":{"completion_tokens":1}}'), req.headers['x-slow'] ? 1500 : 0);
    });
    let proxyPid = 0;
    const out = join(tmp.dir, 'npx.trace.db');
    const npm = npx(['record', '--upstream', up.url, '--listen', '127.0.0.1:0', '--out', out]);
    try {
      await waitFor(() => /listening on http:\/\/\S+/.test(npm.stdout()), 12_000);
      const url = /listening on (http:\/\/\S+)/.exec(npm.stdout())![1]!;
      proxyPid = tracewarpUnder(npm.child.pid!);
      expect(proxyPid).not.toBe(npm.child.pid);
      const send = async (slow: boolean) => {
        const r = await request(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...(slow ? { 'x-slow': '1' } : {}) }, body: '{"model":"m","messages":[{"role":"user","content":"hi"}]}' });
        await r.body.text();
        return r.statusCode;
      };
      for (let i = 0; i < 5; i++) expect(await send(false)).toBe(200);
      const inFlight = [send(true), send(true)];
      await new Promise((r) => setTimeout(r, 300));
      npm.child.kill('SIGTERM');
      // npm passes the signal to its shell, which dies of it; npm exits by it. The recorder was not signalled …
      expect(await npm.exited).toEqual([null, 'SIGTERM']);
      // … yet it stops gracefully: the exchanges in flight get their answers, the trace is written, it exits.
      expect(await Promise.all(inFlight)).toEqual([200, 200]);
      await waitFor(() => !alive(proxyPid), 10_000);
      await waitFor(() => /recorded \d+ exchanges/.test(npm.stdout()), 2000);
      expect(npm.stdout()).toContain(`recorded 7 exchanges to ${out}`);
      expect(npm.stderr()).toMatch(/record: the npx that launched tracewarp went away \(its shell, pid \d+, ended: npm and that shell do not pass a SIGTERM on\), so stopping as on SIGTERM: no longer accepting; finishing 2 exchanges in flight/);
      const reader = new TraceReader(out);
      const records = [...reader.records()];
      reader.close();
      expect(records).toHaveLength(7);
      expect(records.every((r) => r.status === 200 && r.errorKind === null)).toBe(true);
    } finally {
      if (proxyPid && alive(proxyPid)) process.kill(proxyPid, 'SIGKILL');
      if (npm.child.exitCode === null && npm.child.signalCode === null) npm.child.kill('SIGKILL');
      await up.close();
    }
  }, 20_000);

  it('`npx tracewarp replay`: stops sending, the requests in flight finish, the run file is written whole, the replayer is gone', async () => {
    let received = 0;
    const up = await startUpstream((req, res) => {
      if (req.headers['x-tracewarp-seq'] !== undefined) received++;
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[],"usage":{"completion_tokens":5}}'), 800);
    });
    const trace = join(tmp.dir, 'long.trace.db');
    writeChatTrace(trace, Array.from({ length: 60 }, (_, i) => i * 100_000)); // 6 s
    const run = join(tmp.dir, 'npx.run.db');
    let replayPid = 0;
    const npm = npx(['replay', trace, '--target', up.url, '--out', run, '--json', '--warmup', '0']);
    try {
      await waitFor(() => received >= 5, 12_000);
      replayPid = tracewarpUnder(npm.child.pid!);
      npm.child.kill('SIGTERM');
      expect(await npm.exited).toEqual([null, 'SIGTERM']);
      await waitFor(() => !alive(replayPid), 10_000);
      await waitFor(() => npm.stdout().trim().endsWith('}'), 2000);
      expect(npm.stderr()).toMatch(/replay: the npx that launched tracewarp went away .*, so stopping as on SIGTERM: stopped sending; .*in flight may finish for up to 10 s/);
      const printed = JSON.parse(npm.stdout());
      expect(printed.interrupted).toBe(true);
      const { meta, results } = readRunFile(run);
      expect(meta).toMatchObject({ interrupted: true, cutAfterGrace: false });
      expect(meta.summary).toBeDefined(); // closed whole, not cut
      expect(results).toHaveLength(printed.requests);
      expect(results.length).toBeGreaterThanOrEqual(5);
      expect(results.length).toBeLessThan(60);
      // The requests in flight at the signal were let finish: every one answered.
      expect(results.every((r) => r.status === 200 && r.errorKind === null)).toBe(true);
    } finally {
      if (replayPid && alive(replayPid)) process.kill(replayPid, 'SIGKILL');
      if (npm.child.exitCode === null && npm.child.signalCode === null) npm.child.kill('SIGKILL');
      await up.close();
    }
  }, 20_000);

  it('SIGTERM to tracewarp itself (`node bin/tracewarp.js replay`, a container entrypoint) is the first Ctrl-C: graceful, exit 130', async () => {
    let received = 0;
    const up = await startUpstream((req, res) => {
      if (req.headers['x-tracewarp-seq'] !== undefined) received++;
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), 500);
    });
    const trace = join(tmp.dir, 'direct.trace.db');
    writeChatTrace(trace, Array.from({ length: 60 }, (_, i) => i * 100_000));
    const run = join(tmp.dir, 'direct.run.db');
    const child = spawn(process.execPath, [BIN, 'replay', trace, '--target', up.url, '--out', run, '--json', '--warmup', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    try {
      await waitFor(() => received >= 5, 12_000);
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => child.on('close', r));
      expect(code).toBe(130);
      expect(stderr).toMatch(/replay: SIGTERM: stopped sending; .*in flight may finish for up to 10 s/);
      const { meta, results } = readRunFile(run);
      expect(meta.interrupted).toBe(true);
      expect(results.every((r) => r.status === 200)).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await up.close();
    }
  }, 20_000);
});
