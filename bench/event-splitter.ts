// The SSE/NDJSON event splitter (src/protocols/sse.ts) on one long event versus the same bytes as many short events,
// side by side in one run: the time must grow with the bytes, not with bytes × chunks (a long event once made it
// quadratic and stalled the proxy). Medians of 5 runs per case; ratios are what to compare on a noisy machine.
//   npx tsx bench/event-splitter.ts [--mib 8] [--chunk-kib 64]
import { parseArgs } from 'node:util';
import { EventSplitter, type StreamFormat } from '../src/protocols/sse.ts';
import { round } from './common.ts';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '8' }, 'chunk-kib': { type: 'string', default: '64' } } });
const total = Number(values.mib) * 1024 * 1024;
const chunk = Number(values['chunk-kib']) * 1024;

/** Feeds `events` events of `size` payload bytes each in chunks of `chunk` bytes; returns ms and events seen. */
function run(format: StreamFormat, events: number, size: number, chunkBytes = chunk): { ms: number; seen: number } {
  const [head, tail] = format === 'sse' ? ['data: ', '\n\n'] : ['{"x":"', '"}\n'];
  const one = Buffer.from(head + 'a'.repeat(size) + tail);
  const stream = Buffer.concat(Array.from({ length: events }, () => one));
  const s = new EventSplitter(format);
  let seen = 0;
  const t = performance.now();
  for (let i = 0; i < stream.length; i += chunkBytes) seen += s.push(stream.subarray(i, i + chunkBytes)).length;
  return { ms: performance.now() - t, seen };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows = [];
for (const format of ['sse', 'ndjson'] as const) {
  const long: number[] = [];
  const short: number[] = [];
  const tokens: number[] = [];
  for (let r = 0; r < 5; r++) {
    long.push(run(format, 1, total).ms);
    short.push(run(format, total / chunk, chunk - 16).ms);
    // An LLM token stream: 100,000 events of about 120 bytes, each in a chunk of its own; µs per event.
    tokens.push((run(format, 100_000, 112, format === 'sse' ? 120 : 121).ms * 1000) / 100_000);
  }
  rows.push({ format, oneEventMs: round(median(long)), manyEventsMs: round(median(short)), ratio: round(median(long) / median(short)), tokenStreamUsPerEvent: round(median(tokens)) });
}
console.log(JSON.stringify({ bytes: total, chunkBytes: chunk, rows }, null, 2));
