// The recorder thread of `record`: describes each finished exchange (parse, tokenize, fingerprint, anonymize) and
// writes the trace file, off the loop that forwards traffic. Started by capture/recorder.ts; speaks its messages.
import { parentPort, workerData } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import { Fingerprinter } from '../anonymize/fingerprint.ts';
import { SessionTracker } from '../sessions/infer.ts';
import { captureEvidence, sessionKeyOf } from '../sessions/keys.ts';
import { compilePolicy } from '../anonymize/policy.ts';
import { toErrorMessage } from '../errors.ts';
import { TraceWriter } from '../trace/writer.ts';
import type { TraceRecord } from '../types.ts';
import { lowerThisThreadPriority } from '../workers.ts';
import { describeExchange, type DescribeContext } from './describe.ts';
import type { ExchangeSnapshot } from './exchange.ts';
import type { FromRecorder, RecorderThreadInput, ToRecorder } from './recorder.ts';

const input = (workerData as { data: RecorderThreadInput }).data;
const parent = parentPort!;
const post = (m: FromRecorder) => parent.postMessage(m);
lowerThisThreadPriority();

/** Records are written every 100 ms (a kill -9 loses about that much). */
const FLUSH_MS = 100;
const ACK_MS = 50;

let writer: TraceWriter | null = null;
let ctx: DescribeContext;
let tracker: SessionTracker | null = null;
let keyFingerprints: Fingerprinter | null = null;
try {
  const d = input.describe;
  ctx = {
    startUs: d.startUs,
    fingerprinter: d.fingerprint ? new Fingerprinter(Buffer.from(d.fingerprint.key), d.fingerprint.blockTokens) : null,
    protocol: d.protocol,
    policy: compilePolicy(d.policy.raw, d.policy.source),
  };
  if (d.inferSessions) {
    tracker = new SessionTracker();
    // Key values are fingerprinted in memory only; without a trace key, with a key of this run's own.
    keyFingerprints = ctx.fingerprinter ?? new Fingerprinter(randomBytes(32));
  }
  if (input.trace) {
    const t = input.trace;
    writer = new TraceWriter(t.path, {
      source: 'capture', anchorWallUs: t.anchorWallUs, anonymization: t.anonymization, overwrite: t.overwrite, flushIntervalMs: FLUSH_MS, busyTimeoutMs: 0,
      onHealth: (event) => post({ type: 'health', event }),
    });
    for (const [k, v] of Object.entries(t.meta ?? {})) writer.setMeta(k, v);
  }
} catch (err) {
  post({ type: 'error', error: toErrorMessage(err) });
  process.exit(0);
}

let described = 0;
let ack = { bytes: 0, count: 0 };
let back: TraceRecord[] = [];
const acker = setInterval(() => {
  if (back.length > 0) {
    post({ type: 'records', records: back });
    back = [];
  }
  if (ack.count === 0) return;
  post({ type: 'ack', ...ack });
  ack = { bytes: 0, count: 0 };
}, ACK_MS);

/** Gives a record its session (they are described in the order they ended, so a parent comes before its child). */
function linkSession(rec: TraceRecord, s: ExchangeSnapshot, messagePrefixes: string[] | undefined): void {
  const keys = input.describe.sessionKeys ?? [];
  const key = keys.length > 0 ? sessionKeyOf(keys, s.requestHeaders, s.requestBody, keyFingerprints!) : null;
  rec.session = tracker!.link(captureEvidence(rec, key, messagePrefixes));
  for (const p of tracker!.takePromoted()) writer?.linkSessionRoot(p.seq, p.link);
}

/** Exchanges are described one at a time, in the order they ended. */
let work: Promise<void> = Promise.resolve();

async function record(s: ExchangeSnapshot): Promise<void> {
  const bytes = (s.requestBody?.byteLength ?? 0) + (s.responseBody?.byteLength ?? 0) + 1024;
  try {
    const evidence: { messagePrefixes?: string[] } | undefined = tracker ? {} : undefined;
    const rec = await describeExchange(s, ctx, evidence);
    if (tracker) linkSession(rec, s, evidence!.messagePrefixes);
    described++;
    writer?.add(rec);
    if (input.captureRaw && writer) writer.addRaw(rec.seq, { url: s.url, headers: s.requestHeaders as Record<string, unknown>, body: s.requestBody });
    if (input.wantRecords) back.push(rec);
  } catch {
    // a description that fails must never stop recording the others
  } finally {
    ack.bytes += bytes;
    ack.count++;
  }
}

/**
 * How long closing waits for a trace file that cannot be written (another process's lock, a full disk) before its
 * unwritten records go to a rescue trace: long enough for a backup or a `sqlite3` query to let go.
 */
const CLOSE_WRITE_WAIT_MS = 10_000;

parent.on('message', (m: ToRecorder) => {
  if (m.type === 'exchanges') {
    for (const s of m.items) work = work.then(() => record(s));
  } else if (m.type === 'stall') {
    work = work.then(() => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, m.ms);
    });
  } else if (m.type === 'close') {
    void work.then(() => {
      clearInterval(acker);
      if (back.length > 0) post({ type: 'records', records: back });
      writer?.countDropped(m.dropped);
      // A trace that cannot be written at the end (locked, disk full) is waited for, then its records rescued.
      const r = writer?.close({ waitMs: input.trace?.closeWriteWaitMs ?? CLOSE_WRITE_WAIT_MS });
      const stats = writer?.stats;
      post({ type: 'closed', described, written: stats?.written ?? 0, dropped: stats?.dropped ?? m.dropped, whole: r?.whole ?? true, health: r?.health ?? null, rescuedTo: r?.rescuedTo ?? null, rescued: r?.rescued ?? 0, metaWritten: r?.metaWritten ?? true });
    });
  }
});
post({ type: 'started' });
