import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runImport } from '../src/cli/import.ts';
import { inspectTrace } from '../src/cli/inspect.ts';
import { parseAzureTimestampUs } from '../src/importers/azure-llm.ts';
import { TraceReader } from '../src/trace/reader.ts';
import { captureOutput, FIXTURES, ROOT, runCli, SHARED, tempDir } from './helpers.ts';

/** Independent reading of an Azure CSV: count, first/last timestamps (µs, via BigInt arithmetic), token sums. */
function azureTruth(path: string) {
  const rows = readFileSync(path, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
  const us = (ts: string) => {
    const [date, time] = ts.split(' ');
    const [h, m, s] = time!.split(':');
    const [whole, frac] = s!.split('.');
    const day = BigInt(Date.parse(`${date}T00:00:00Z`)) * 1000n;
    return day + BigInt(Number(h) * 3600 + Number(m) * 60 + Number(whole)) * 1_000_000n + BigInt(frac!.padEnd(7, '0')) / 10n;
  };
  const first = us(rows[0]![0]!);
  return {
    count: rows.length,
    spanUs: Number(us(rows.at(-1)![0]!) - first),
    prompt: rows.reduce((a, r) => a + Number(r[1]), 0),
    output: rows.reduce((a, r) => a + Number(r[2]), 0),
  };
}

function mooncakeTruth(path: string) {
  const rows = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { timestamp: number; input_length: number; output_length: number; hash_ids: number[] });
  return {
    count: rows.length,
    firstUs: rows[0]!.timestamp * 1000,
    lastUs: rows.at(-1)!.timestamp * 1000,
    prompt: rows.reduce((a, r) => a + r.input_length, 0),
    output: rows.reduce((a, r) => a + r.output_length, 0),
    blocks: rows.map((r) => r.hash_ids),
  };
}

function traceTotals(path: string) {
  const r = new TraceReader(path);
  const recs = [...r.records()];
  r.close();
  return {
    recs,
    count: recs.length,
    firstUs: recs[0]!.offsetUs,
    lastUs: recs.at(-1)!.offsetUs,
    prompt: recs.reduce((a, x) => a + x.promptTokens!, 0),
    output: recs.reduce((a, x) => a + x.outputTokens!, 0),
  };
}

const azureFiles = [join(FIXTURES, 'azure-conv-first-5min.csv'), join(SHARED, 'traces/AzureLLMInferenceTrace_conv.csv')];
const mooncakeFiles = [join(FIXTURES, 'mooncake-first-200.jsonl'), join(SHARED, 'traces/synthetic_trace.jsonl')];

describe('import azure-llm', () => {
  it('parses 7-digit fractional timestamps to the microsecond', () => {
    expect(parseAzureTimestampUs('2023-11-16 18:15:46.6805900')).toBe(Date.UTC(2023, 10, 16, 18, 15, 46) * 1000 + 680590);
    expect(parseAzureTimestampUs('2023-11-16 18:15:46')).toBe(Date.UTC(2023, 10, 16, 18, 15, 46) * 1000);
    expect(parseAzureTimestampUs('16/11/2023 18:15')).toBeNull();
  });

  for (const file of azureFiles) {
    it.skipIf(!existsSync(file))(`keeps row count, offsets and token sums of ${file.split('/').pop()}`, async () => {
      const tmp = tempDir();
      const out = join(tmp.dir, 'a.trace.db');
      const stats = await runImport('azure-llm', file, { out }, captureOutput());
      const truth = azureTruth(file);
      const t = traceTotals(out);
      expect(t.count).toBe(truth.count);
      expect(stats.requests).toBe(truth.count);
      expect(t.firstUs).toBe(0);
      expect(t.lastUs).toBe(truth.spanUs);
      expect(t.prompt).toBe(truth.prompt);
      expect(t.output).toBe(truth.output);
      expect(t.recs[0]).toMatchObject({ protocol: 'openai-chat', route: '/v1/chat/completions', method: 'POST', messageCount: 1 });
      const info = inspectTrace(out);
      expect(info.source).toBe('import:azure-llm');
      expect(info.requests).toBe(truth.count);
      tmp.cleanup();
    });
  }
});

describe('import mooncake', () => {
  for (const file of mooncakeFiles) {
    it.skipIf(!existsSync(file))(`keeps row count, offsets, token sums and prefix blocks of ${file.split('/').pop()}`, async () => {
      const tmp = tempDir();
      const out = join(tmp.dir, 'm.trace.db');
      await runImport('mooncake', file, { out }, captureOutput());
      const truth = mooncakeTruth(file);
      const t = traceTotals(out);
      expect(t.count).toBe(truth.count);
      expect(t.firstUs).toBe(truth.firstUs);
      expect(t.lastUs).toBe(truth.lastUs);
      expect(t.prompt).toBe(truth.prompt);
      expect(t.output).toBe(truth.output);
      // Records come back ordered by offset (ties by file order), so compare the multiset of block lists.
      expect(t.recs.map((r) => JSON.stringify(r.features.prefixBlocks)).sort()).toEqual(truth.blocks.map((b) => JSON.stringify(b)).sort());
      expect(t.recs.every((r) => r.features.prefixBlockTokens === 512)).toBe(true);
      tmp.cleanup();
    });
  }

  it('refuses a missing or directory input with one clear line (exit 3)', async () => {
    const tmp = tempDir();
    const missing = await runCli(['import', 'azure-llm', join(tmp.dir, 'nope.csv'), '--out', join(tmp.dir, 'x.trace.db')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr.trim()).toBe(`tracewarp: ${join(tmp.dir, 'nope.csv')}: no such file [TW_IMPORT_FORMAT]`);
    const dir = await runCli(['import', 'azure-llm', tmp.dir, '--out', join(tmp.dir, 'x.trace.db')]);
    expect(dir.code).toBe(3);
    expect(dir.stderr).toContain('is a directory');
    tmp.cleanup();
  });

  it('refuses a malformed line naming the file and line, and leaves no partial trace (exit 3)', async () => {
    const tmp = tempDir();
    const src = join(tmp.dir, 'bad.jsonl');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(src, '{"timestamp": 0, "input_length": 5, "output_length": 2, "hash_ids": [1]}\n{"timestamp": 10, "input_length": "x"}\n');
    const out = join(tmp.dir, 'bad.trace.db');
    const r = await runCli(['import', 'mooncake', src, '--out', out]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`${src}:2`);
    expect(existsSync(out)).toBe(false);
    tmp.cleanup();
  });
});

describe('import: sessions', () => {
  /** Records of an imported trace by sequence number (the source's line order). */
  const bySeq = (path: string) => {
    const r = new TraceReader(path);
    try {
      return new Map([...r.records()].map((x) => [x.seq, x]));
    } finally {
      r.close();
    }
  };

  it('mooncake: a request that extends every complete block of an earlier one, with room for its answer, is its next turn', async () => {
    const tmp = tempDir();
    const src = join(tmp.dir, 'chain.jsonl');
    const { writeFileSync } = await import('node:fs');
    const rows = [
      { timestamp: 0, input_length: 1100, output_length: 100, hash_ids: [1, 2, 3] }, // A: blocks 1, 2 complete, 3 partial
      { timestamp: 100, input_length: 700, output_length: 10, hash_ids: [1, 9] }, // B: shares only A's first block
      { timestamp: 2000, input_length: 1600, output_length: 50, hash_ids: [1, 2, 7, 12] }, // C: A's blocks, 1600 ≥ 1100 + 100; block 7 its own
      { timestamp: 2500, input_length: 1150, output_length: 5, hash_ids: [1, 2, 8] }, // D: A's blocks, no room for A's answer
      { timestamp: 4000, input_length: 1700, output_length: 5, hash_ids: [1, 2, 7, 11] }, // E: C's complete blocks, 1700 ≥ 1600 + 50
    ];
    writeFileSync(src, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const out = join(tmp.dir, 'chain.trace.db');
    const stats = await runImport('mooncake', src, { out }, captureOutput());
    const recs = bySeq(out);
    expect(recs.get(1)!.session).toEqual({ session: 1, turn: 0, parentSeq: null, thinkUs: null });
    expect(recs.get(2)!.session ?? null).toBeNull();
    expect(recs.get(3)!.session).toEqual({ session: 1, turn: 1, parentSeq: 1, thinkUs: 2_000_000 });
    expect(recs.get(4)!.session ?? null).toBeNull();
    expect(recs.get(5)!.session).toEqual({ session: 1, turn: 2, parentSeq: 3, thinkUs: 2_000_000 });
    expect(stats).toMatchObject({ sessions: 1, followUps: 2 });
    tmp.cleanup();
  });

  it('bailian: sessions from parent_chat_id, think time the arrival gap, inspect counts them', async () => {
    const tmp = tempDir();
    const out = join(tmp.dir, 'b.trace.db');
    await runImport('bailian', join(ROOT, 'test/fixtures/traces/bailian-sample.jsonl'), { out }, captureOutput());
    const recs = bySeq(out);
    expect(recs.size).toBe(7);
    expect(recs.get(1)!.features.prefixBlockTokens).toBe(16);
    // chat 0 → 3 → 5 (lines 1, 4, 6), chat 1 → 4 (lines 2, 5), chats 2 and 6 on their own.
    expect(recs.get(1)!.session).toEqual({ session: 1, turn: 0, parentSeq: null, thinkUs: null });
    expect(recs.get(4)!.session).toEqual({ session: 1, turn: 1, parentSeq: 1, thinkUs: 9_750_000 });
    expect(recs.get(6)!.session).toEqual({ session: 1, turn: 2, parentSeq: 4, thinkUs: 10_750_000 });
    expect(recs.get(2)!.session).toEqual({ session: 2, turn: 0, parentSeq: null, thinkUs: null });
    expect(recs.get(5)!.session).toEqual({ session: 2, turn: 1, parentSeq: 2, thinkUs: 11_500_000 });
    expect(recs.get(3)!.session ?? null).toBeNull();
    expect(recs.get(7)!.session ?? null).toBeNull();
    const s = inspectTrace(out).sessions!;
    expect(s).toMatchObject({ count: 2, multiTurn: 2, requestsInSessions: 5 });
    expect(s.turnsPerSession!.max).toBe(3);
    expect(s.thinkTimeMs!.max).toBe(11_500);
    tmp.cleanup();
  });

  it('bailian: a parent that does not come before its child is refused naming the line (exit 3)', async () => {
    const tmp = tempDir();
    const src = join(tmp.dir, 'orphan.jsonl');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(src, '{"chat_id": 0, "parent_chat_id": -1, "timestamp": 0, "input_length": 5, "output_length": 2, "turn": 1, "hash_ids": [1]}\n{"chat_id": 1, "parent_chat_id": 7, "timestamp": 1, "input_length": 9, "output_length": 2, "turn": 2, "hash_ids": [1, 2]}\n');
    const out = join(tmp.dir, 'orphan.trace.db');
    const r = await runCli(['import', 'bailian', src, '--out', out]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`${src}:2: parent_chat_id 7 does not come before this line`);
    expect(existsSync(out)).toBe(false);
    tmp.cleanup();
  });
});
