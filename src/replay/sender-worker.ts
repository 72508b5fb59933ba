// One sending loop of a multi-loop replay (`--workers N`), in its own thread: receives its ready requests from the
// coordinator, sends them on the shared schedule, passes observations to the results thread. See replay/senders.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { toErrorMessage } from '../errors.ts';
import { ObservationBatcher } from '../results/collector.ts';
import { ReplayEngine } from './engine.ts';
import { settleHeap } from './health.ts';
import { setRequestTimeout } from './http.ts';
import type { FromSenderThread, SenderThreadInput, ToSender } from './senders.ts';
import type { PlannedRequest, RequestSource } from './types.ts';

const input = (workerData as { data: SenderThreadInput }).data;
const parent = parentPort!;
const post = (m: FromSenderThread) => parent.postMessage(m);

/** Releases taken bodies' budget in batches (the coordinator lets synthesis go further ahead). */
let takenBytes: number[] = [];
const taken = setInterval(() => {
  if (takenBytes.length === 0) return;
  post({ type: 'taken', bytes: takenBytes });
  takenBytes = [];
}, 20);

const position = new Map(input.indexes.map((index, k) => [index, k]));
const ready = new Map<number, PlannedRequest>();
const waiters = new Map<number, () => void>();
const source: RequestSource = {
  total: input.indexes.length,
  indexes: input.indexes,
  scheduledUs: (index) => input.scheduledUs[position.get(index)!]!,
  traceSeq: (index) => input.traceSeqs[position.get(index)!]!,
  take(index) {
    const p = ready.get(index);
    if (!p) return null;
    ready.delete(index);
    takenBytes.push(p.body?.length ?? 0);
    return p;
  },
  onReady(index, cb) {
    if (ready.has(index)) cb();
    else waiters.set(index, cb);
  },
};

setRequestTimeout(input.requestTimeoutMs);
const engine = new ReplayEngine(input.engine);
engine.on('progress', (progress) => post({ type: 'progress', progress }));
const batcher = new ObservationBatcher(input.results);

parent.on('message', (m: ToSender) => {
  switch (m.type) {
    case 'ready': {
      for (const r of m.requests) {
        ready.set(r.request.index, { ...r.request, body: r.body ? Buffer.from(r.body) : null });
        const w = waiters.get(r.request.index);
        if (w) {
          waiters.delete(r.request.index);
          w();
        }
      }
      return;
    }
    case 'start':
      settleHeap();
      void engine.run(source, batcher.add, m.startMonoUs).then(async (sample) => {
        batcher.end();
        clearInterval(taken);
        if (takenBytes.length > 0) post({ type: 'taken', bytes: takenBytes });
        await engine.close();
        post({ type: 'done', sample });
      }, (err) => post({ type: 'error', error: toErrorMessage(err) }));
      return;
    case 'stop':
      engine.stop();
      return;
    case 'abort':
      engine.abortInFlight();
      return;
  }
});

void engine.warmup().then(() => post({ type: 'warm' }));
