// Synthesis throughput in one thread, side by side in one run: the same long-prompt workload (the Mooncake trace,
// prompts 15k tokens on average, up to 191k, whose prompts share prefix blocks) synthesized with the prefix-block
// cache and without it, and the bundled Azure slice (short prompts, no prefix information). Medians of 3 runs of
// prompt tokens per second and body MB per second; the ratio is what to compare on a noisy machine.
//   npx tsx bench/synthesis.ts [--requests 4000] [--smoke]
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runImport } from '../src/cli/import.ts';
import { createRng } from '../src/rng.ts';
import { DEFAULT_BLOCK_CACHE_CHARS } from '../src/synth/pool.ts';
import { BlockTextCache } from '../src/synth/text.ts';
import { requestHash, synthesizeItem, workloadSynth } from '../src/synth/workload.ts';
import { TraceReader } from '../src/trace/reader.ts';
import { FIXTURES, median, quiet, round, SHARED_TRACES } from './common.ts';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '4000' }, smoke: { type: 'boolean' } } });
const n = values.smoke ? 200 : Number(values.requests);
const tmp = mkdtempSync(join(tmpdir(), 'tracewarp-synth-'));
const mooncake = existsSync(join(SHARED_TRACES, 'synthetic_trace.jsonl')) ? join(SHARED_TRACES, 'synthetic_trace.jsonl') : join(FIXTURES, 'mooncake-first-200.jsonl');
await runImport('mooncake', mooncake, { out: join(tmp, 'm.trace.db') }, quiet);
await runImport('azure-llm', join(FIXTURES, 'azure-conv-first-5min.csv'), { out: join(tmp, 'a.trace.db') }, quiet);

/** Synthesizes the first `n` requests (bodies and their digest hashes, as a synthesis thread does); tokens/s, MB/s. */
function once(trace: string, cacheBytes: number): { tokensPerS: number; mbPerS: number; cacheHitShare: number } {
  const reader = new TraceReader(trace);
  const arrivals = reader.arrivals().slice(0, n);
  const records = arrivals.map((a) => reader.get(a.seq));
  reader.close();
  const blocks = new BlockTextCache(cacheBytes);
  const w = workloadSynth(createRng(1), {}, blocks);
  let tokens = 0;
  let bytes = 0;
  const t0 = performance.now();
  arrivals.forEach((a, index) => {
    const p = synthesizeItem({ ...a, index }, records[index]!, w);
    requestHash(p);
    tokens += p.promptTokens ?? 0;
    bytes += p.body?.length ?? 0;
  });
  const s = (performance.now() - t0) / 1000;
  return { tokensPerS: tokens / s, mbPerS: bytes / s / 1e6, cacheHitShare: blocks.hitTokens / Math.max(1, blocks.hitTokens + blocks.missTokens) };
}

const rows = [];
for (const [name, trace, cache] of [['mooncake, prefix cache', 'm', DEFAULT_BLOCK_CACHE_CHARS], ['mooncake, no cache', 'm', 0], ['azure slice', 'a', DEFAULT_BLOCK_CACHE_CHARS]] as const) {
  const runs = [0, 1, 2].map(() => once(join(tmp, `${trace}.trace.db`), cache));
  rows.push({ case: name, requests: n, promptMTokensPerS: round(median(runs.map((r) => r.tokensPerS)) / 1e6, 2), bodyMBPerS: round(median(runs.map((r) => r.mbPerS)), 1), cacheHitShare: round(runs[0]!.cacheHitShare, 3) });
}
const [withCache, noCache] = rows;
rmSync(tmp, { recursive: true, force: true });
console.log(JSON.stringify({ rows, cacheSpeedup: round(withCache!.promptMTokensPerS / noCache!.promptMTokensPerS, 2) }, null, 2));
