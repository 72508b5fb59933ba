import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TracewarpError } from '../src/errors.ts';
import { importedChatRecord } from '../src/importers/common.ts';
import { TraceReader } from '../src/trace/reader.ts';
import { TraceWriter } from '../src/trace/writer.ts';
import { FIXTURES, runCli, tempDir } from './helpers.ts';

describe('a trace that is not a readable trace is refused with a clear error', () => {
  const tmp = tempDir();
  const good = join(tmp.dir, 'good.trace.db');

  beforeAll(async () => {
    const r = await runCli(['import', 'azure-llm', join(FIXTURES, 'azure-conv-first-5min.csv'), '--out', good]);
    expect(r.code).toBe(0);
  });
  afterAll(() => tmp.cleanup());

  const refused = (path: string, code: string) => {
    let err: unknown;
    try {
      new TraceReader(path).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TracewarpError);
    expect((err as TracewarpError).code).toBe(code);
    expect((err as Error).message).toContain(path);
    return err as TracewarpError;
  };

  it('reads the good one', () => {
    const r = new TraceReader(good);
    expect(r.count()).toBe(1445);
    r.close();
  });

  it('missing file → TW_TRACE_NOT_FOUND', () => {
    refused(join(tmp.dir, 'nope.trace.db'), 'TW_TRACE_NOT_FOUND');
  });

  it('a text file → TW_TRACE_NOT_SQLITE', () => {
    const p = join(tmp.dir, 'text.trace.db');
    writeFileSync(p, 'TIMESTAMP,ContextTokens,GeneratedTokens\n'.repeat(20));
    refused(p, 'TW_TRACE_NOT_SQLITE');
  });

  it('a truncated file → TW_TRACE_CORRUPT', () => {
    const p = join(tmp.dir, 'trunc.trace.db');
    const bytes = readFileSync(good);
    writeFileSync(p, bytes.subarray(0, Math.floor(bytes.length / 2)));
    expect(statSync(p).size).toBeLessThan(bytes.length);
    expect(refused(p, 'TW_TRACE_CORRUPT').message).toMatch(/truncated/);
  });

  it('a file shorter than its header says, with a WAL holding the pages (a checkpoint cut off by a full disk), is read whole', () => {
    // A recorder cut off: records committed to the WAL, none checkpointed (a crash-consistent copy of db and WAL).
    const live = join(tmp.dir, 'live.trace.db');
    const w = new TraceWriter(live, { source: 'test', anchorWallUs: 0, anonymization: null });
    for (let i = 1; i <= 400; i++) w.add(importedChatRecord(i, i * 1000, 10, 1, { model: 'm' }));
    w.flush();
    const cut = join(tmp.dir, 'cut.trace.db');
    copyFileSync(live, cut);
    copyFileSync(`${live}-wal`, `${cut}-wal`);
    w.close();
    // The checkpoint that failed part-way had written page 1 first (its header counts every page), then no more.
    const wal = readFileSync(`${cut}-wal`);
    const pageSize = wal.readUInt32BE(8);
    let page1: Buffer | null = null;
    for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) if (wal.readUInt32BE(at) === 1) page1 = wal.subarray(at + 24, at + 24 + pageSize);
    const db = readFileSync(cut);
    page1!.copy(db, 0);
    writeFileSync(cut, db);
    expect(statSync(cut).size).toBeLessThan(page1!.readUInt32BE(28) * pageSize);
    const r = new TraceReader(cut);
    expect(r.count()).toBe(400);
    r.close();
  });

  it('a file with damaged pages → TW_TRACE_CORRUPT', () => {
    const p = join(tmp.dir, 'damaged.trace.db');
    const bytes = Buffer.from(readFileSync(good));
    // Overwrite the middle pages (table b-tree pages) with garbage, keeping the header and length intact.
    for (let i = 8192; i < bytes.length - 4096; i++) bytes[i] = (i * 7919) & 0xff;
    writeFileSync(p, bytes);
    const err = refused(p, 'TW_TRACE_CORRUPT');
    // One line, however many pages are damaged.
    expect(err.message.split('\n')).toHaveLength(1);
    expect(err.message.length).toBeLessThan(500);
  });

  it('another SQLite database → TW_TRACE_FOREIGN', () => {
    const p = join(tmp.dir, 'foreign.db');
    const db = new Database(p);
    db.exec('CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users(name) VALUES (\'x\');');
    db.close();
    refused(p, 'TW_TRACE_FOREIGN');
  });

  it('a newer format version → TW_TRACE_VERSION', () => {
    const p = join(tmp.dir, 'future.trace.db');
    copyFileSync(good, p);
    const db = new Database(p);
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'format_version'").run();
    db.close();
    expect(refused(p, 'TW_TRACE_VERSION').message).toContain('99');
  });

  it('a run file given where a trace goes, and a trace where a run file goes, name the command to use', async () => {
    const run = join(tmp.dir, 'a.run.db');
    const db = new Database(run);
    db.exec("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('format', '\"tracewarp-run\"')");
    db.close();
    const r = await runCli(['inspect', run]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('it is a run file, read it with `tracewarp report`');
    const t = await runCli(['report', good]);
    expect(t.code).toBe(3);
    expect(t.stderr).toContain('not a tracewarp run file but a trace: use `tracewarp inspect`');
  });

  it('the CLI prints the problem and exits 3 for a corrupt trace', async () => {
    const p = join(tmp.dir, 'cli-trunc.trace.db');
    writeFileSync(p, readFileSync(good).subarray(0, 5000));
    const r = await runCli(['inspect', p]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`tracewarp: ${p}`);
    expect(r.stderr).toContain('[TW_TRACE_CORRUPT]');
    const rr = await runCli(['replay', p, '--target', 'http://127.0.0.1:9']);
    expect(rr.code).toBe(3);
    expect(rr.stderr).toMatch(/truncated/);
  });
});

describe('CLI misuse prints what is wrong and exits 2', () => {
  it('unknown flag', async () => {
    const r = await runCli(['replay', 'x.trace.db', '--target', 'http://127.0.0.1:9', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--bogus'");
  });
  it('bad values', async () => {
    const speed = await runCli(['replay', 'x.trace.db', '--target', 'http://127.0.0.1:9', '--speed', '0']);
    expect(speed.code).toBe(2);
    expect(speed.stderr).toContain('--speed must be a number > 0');
    const tiny = await runCli(['replay', 'x.trace.db', '--target', 'http://127.0.0.1:9', '--speed', '1e-320']);
    expect(tiny.code).toBe(2);
    expect(tiny.stderr).toContain("--speed must be between 0.000001 and 1000000, got '1e-320'");
    const target = await runCli(['replay', 'x.trace.db', '--target', 'ftp://x']);
    expect(target.code).toBe(2);
    expect(target.stderr).toContain('--target must be an http:// or https:// URL');
    const timeout = await runCli(['record', '--upstream', 'http://127.0.0.1:9', '--headers-timeout', 'soon']);
    expect(timeout.code).toBe(2);
    expect(timeout.stderr).toContain("--headers-timeout must be a duration (e.g. 500ms, 10s or a bare number of ms), got 'soon'");
    const long = await runCli(['demo', '--duration', '10m']);
    expect(long.code).toBe(2);
    expect(long.stderr).toContain("--duration must be between 1 and 300 s, got '10m'");
    const listen = await runCli(['sim', '--listen', 'nope']);
    expect(listen.code).toBe(2);
    expect(listen.stderr).toContain('expected HOST:PORT');
  });
  it('demo never replaces a file the user named without --force (checked before any work)', async () => {
    const tmp = tempDir();
    const precious = join(tmp.dir, 'precious.trace.db');
    writeFileSync(precious, 'mine');
    const r = await runCli(['demo', '--trace', precious, '--duration', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${precious} exists (--trace); the demo replaces only its own default files`);
    expect(readFileSync(precious, 'utf8')).toBe('mine');
    tmp.cleanup();
  });
  it('unknown command and unknown import format', async () => {
    expect((await runCli(['frobnicate'])).code).toBe(2);
    const f = await runCli(['import', 'csv', 'x', '--out', 'y']);
    expect(f.code).toBe(2);
    expect(f.stderr).toContain('azure-llm');
  });
});
