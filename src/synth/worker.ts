// A synthesis thread: reads records from the trace itself and builds request bodies ahead of their send time, off
// the sending loop (DESIGN: "synthesis workers"). Started by synth/pool.ts; speaks the messages defined there.
import { parentPort, workerData } from 'node:worker_threads';
import { toErrorMessage } from '../errors.ts';
import { createRng } from '../rng.ts';
import { TraceReader } from '../trace/reader.ts';
import { lowerThisThreadPriority, ownBytes } from '../workers.ts';
import { DEFAULT_BLOCK_CACHE_CHARS, type ReadyRequest, type SynthThreadInput, type ToPool, type ToSynthThread } from './pool.ts';
import { BlockTextCache } from './text.ts';
import { requestHash, synthesizeItem, workloadSynth } from './workload.ts';

const input = (workerData as { data: SynthThreadInput }).data;
const port = parentPort!;
const post = (m: ToPool, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);
lowerThisThreadPriority();

let reader: TraceReader;
try {
  reader = new TraceReader(input.tracePath, { checked: true });
} catch (err) {
  post({ type: 'error', error: toErrorMessage(err) });
  throw err;
}
const blocks = new BlockTextCache(input.blockCacheChars ?? DEFAULT_BLOCK_CACHE_CHARS);
const w = workloadSynth(createRng(input.seed), input.synth, blocks);
let tokens = 0;
let busyUs = 0;

/** Ready requests go back in batches: one message per job, or sooner once a batch took this long to make (ms). */
const BATCH_MS = 2;

port.on('message', (m: ToSynthThread) => {
  if (m.type === 'close') {
    post({ type: 'stats', tokens, busyUs, cacheHitTokens: blocks.hitTokens, cacheMissTokens: blocks.missTokens });
    reader.close();
    port.close();
    return;
  }
  let ready: ReadyRequest[] = [];
  let transfer: ArrayBuffer[] = [];
  let since = performance.now();
  const flush = () => {
    if (ready.length > 0) post({ type: 'ready', requests: ready }, transfer);
    ready = [];
    transfer = [];
    since = performance.now();
  };
  for (const item of m.items) {
    const t0 = performance.now();
    try {
      const p = synthesizeItem(item, reader.get(item.seq), w, (seq) => reader.get(seq));
      const hash = requestHash(p);
      const body = p.body ? ownBytes(p.body) : null;
      const { body: _, ...rest } = p;
      tokens += p.promptTokens ?? 0;
      busyUs += Math.round((performance.now() - t0) * 1000);
      ready.push({ request: rest, body, hash });
      if (body) transfer.push(body);
      if (performance.now() - since >= BATCH_MS) flush();
    } catch (err) {
      flush();
      post({ type: 'error', error: toErrorMessage(err), index: item.index });
      return;
    }
  }
  flush();
});
post({ type: 'started' });
