// The recorder thread's capacity: finished exchanges handed to it as fast as it takes them (no network), for chat
// prompts of 100 tokens to 100k tokens; exchanges described and written per second, and prompt tokens per second.
// Below this rate every exchange is recorded; above it the proxy still forwards everything and counts what it could
// not record. Medians of 3 runs.   npx tsx bench/recorder-capacity.ts [--smoke]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { DEFAULT_POLICY } from '../src/anonymize/policy.ts';
import type { ExchangeSnapshot } from '../src/capture/exchange.ts';
import { Recorder } from '../src/capture/recorder.ts';
import { createRng } from '../src/rng.ts';
import { textOfTokens } from '../src/synth/text.ts';
import { median, round } from './common.ts';

const { values } = parseArgs({ options: { smoke: { type: 'boolean' } } });
const sizes = values.smoke ? [100, 12_000] : [100, 1000, 12_000, 100_000];
const tmp = mkdtempSync(join(tmpdir(), 'tracewarp-recorder-'));

function snapshot(seq: number, body: Buffer): ExchangeSnapshot {
  const own = new Uint8Array(body.length);
  own.set(body);
  const answer = Buffer.from('{"choices":[{"message":{"role":"assistant","content":"ok"}}],"usage":{"completion_tokens":1}}');
  return {
    seq, method: 'POST', url: '/v1/chat/completions', requestHeaders: { 'content-type': 'application/json', 'content-length': String(body.length) }, arrivalUs: seq,
    status: 200, errorKind: null, requestBytes: body.length, responseBytes: answer.length, ttfbUs: 100, endUs: 200, requestBody: own, requestComplete: true,
    responseContentType: 'application/json', responseServerTiming: null, responseInferenceHeader: null, responseBody: new Uint8Array(answer), responseChunkEnds: [answer.length],
    responseChunkAtUs: [150], responseComplete: true, traceContext: null, websocket: null,
  };
}

async function once(tokens: number, n: number): Promise<number> {
  const body = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: textOfTokens(tokens, createRng(tokens)) }], max_tokens: 1 }));
  const recorder = await Recorder.start({
    trace: { path: join(tmp, `r${tokens}.trace.db`), overwrite: true, anchorWallUs: 0, anonymization: null },
    // As `record` runs by default: sessions inferred (message-prefix fingerprints, the session tracker).
    describe: { startUs: 0, fingerprint: { key: randomBytes(32), blockTokens: 64 }, policy: DEFAULT_POLICY.spec, inferSessions: true },
    captureRaw: false, wantRecords: false,
  }, { maxQueueBytes: Number.MAX_SAFE_INTEGER, maxQueueExchanges: Number.MAX_SAFE_INTEGER });
  const t0 = performance.now();
  for (let i = 1; i <= n; i++) recorder.submit(snapshot(i, body));
  const s = await recorder.close();
  if (s.written !== n) throw new Error(`recorded ${s.written} of ${n}`);
  return n / ((performance.now() - t0) / 1000);
}

const rows = [];
for (const tokens of sizes) {
  const n = Math.max(20, Math.min(20_000, Math.round((values.smoke ? 2e5 : 2e6) / tokens)));
  const runs = [];
  for (let r = 0; r < 3; r++) runs.push(await once(tokens, n));
  const perS = median(runs);
  rows.push({ promptTokens: tokens, exchanges: n, exchangesPerS: round(perS, 1), promptMTokensPerS: round((perS * tokens) / 1e6, 2) });
}
rmSync(tmp, { recursive: true, force: true });
console.log(JSON.stringify(rows, null, 2));
