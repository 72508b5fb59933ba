// The results thread of a replay: the response observer, the run file writer, the summary and the health verdict.
// Started by results/collector.ts; speaks the messages defined there.
import { availableParallelism } from 'node:os';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { toErrorMessage } from '../errors.ts';
import { parseSlo } from '../metrics/slo.ts';
import { metricsOf, summarize } from '../metrics/summary.ts';
import { assessHealth, markStalls } from '../metrics/health.ts';
import { observe } from '../replay/observe.ts';
import { lowerThisThreadPriority } from '../workers.ts';
import { errorDetailsOf, FailFastWatch } from './fail-fast.ts';
import { LiveWindow } from './live.ts';
import { Scraper } from '../scrape/scraper.ts';
import { LIVE_INTERVAL_MS, RUN_FLUSH_MS, type FromResults, type FromSender, type ResultsThreadInput, type ToResults } from './collector.ts';
import { RunWriter } from './run-file.ts';
import type { RequestResult } from './types.ts';

const input = (workerData as { data: ResultsThreadInput }).data;
const parent = parentPort!;
const post = (m: FromResults) => parent.postMessage(m);
lowerThisThreadPriority();

let writer: RunWriter | null = null;
try {
  writer = input.runPath ? new RunWriter(input.runPath, input.meta, input.force) : null;
} catch (err) {
  post({ type: 'error', error: toErrorMessage(err) });
  process.exit(0);
}
const results: RequestResult[] = [];
/** The first failure to write the run file; after it the results are kept in memory only, and the run says so. */
let writeError: string | null = null;
const write = (f: (w: RunWriter) => void): void => {
  if (!writer || writeError) return;
  try {
    f(writer);
  } catch (err) {
    writeError = `${input.runPath}: cannot write the run file: ${(err as Error).message}`;
  }
};
let attached = 0;
let ended = 0;
let finish: Extract<ToResults, { type: 'finish' }> | null = null;
// Rows reach the file within one flush interval, so a replay cut short (even by SIGKILL) keeps what it measured.
const flusher = setInterval(() => write((w) => w.flush()), RUN_FLUSH_MS);
const failFast = input.failFast ? new FailFastWatch(input.failFast) : null;
// The target's own metrics, polled from here (never from a sending loop) from before the clock starts to the end.
const scraper = input.scrape ? new Scraper({ urls: input.scrape.urls, intervalMs: input.scrape.intervalMs }) : null;
scraper?.start();
// Running figures for the progress line, only once results come in.
const live = new LiveWindow();
let liveChanged = false;
const liveTimer = setInterval(() => {
  if (!liveChanged) return;
  liveChanged = false;
  post({ type: 'live', live: live.figures() });
}, LIVE_INTERVAL_MS);

function onSender(port: MessagePort): void {
  attached++;
  port.on('message', (m: FromSender) => {
    if (m.type === 'eof') {
      ended++;
      port.close();
      void maybeFinish();
      return;
    }
    for (const o of m.items) {
      const r = observe(o);
      if (o.errorDetail) r.errorDetail = o.errorDetail;
      const cls = input.classes?.keys[input.classes.ofIndex[r.index] ?? -1];
      if (cls) [r.route, r.model, r.protocol] = cls;
      const ss = input.sessions;
      if (ss && ss.session[r.index]! >= 0) {
        r.session = ss.session[r.index]!;
        r.turn = ss.turn[r.index]!;
        r.parentIndex = ss.parent && ss.parent[r.index]! >= 0 ? ss.parent[r.index]! : null;
      }
      results.push(r);
      live.add(r);
      liveChanged = true;
      write((w) => w.add(r));
      const verdict = failFast?.add(r);
      if (verdict) post({ type: 'fail_fast', verdict });
    }
  });
}

async function maybeFinish(): Promise<void> {
  if (!finish || ended < attached) return;
  const f = finish;
  finish = null;
  try {
    await scraper?.stop();
    clearInterval(flusher);
    clearInterval(liveTimer);
    results.sort((a, b) => a.index - b.index);
    markStalls(results, f.samples);
    const stalled = results.filter((r) => r.toolStall).map((r) => r.index);
    write((w) => w.markToolStalls(stalled));
    const slo = f.slo ? parseSlo(f.slo) : undefined;
    const metrics = metricsOf(results, slo);
    const summary = summarize(results, slo, metrics);
    summary.replayerHealth = assessHealth(f.samples, results, f.synthesis, { cores: availableParallelism() });
    const errorDetails = errorDetailsOf(results);
    write((w) => {
      w.setMeta('errorDetails', errorDetails);
      for (const [k, v] of Object.entries(f.meta)) w.setMeta(k, v);
      w.setMeta('summary', summary);
      w.setMeta('metrics', metrics.encode());
      w.setMeta('replayerHealth', summary.replayerHealth);
      w.setMeta('replayerLoops', f.samples.map(({ stalls: _, ...s }) => s));
      if (scraper) {
        // On the run's clock: µs after its offset 0 (samples before it, while the replay prepared, are negative).
        const startMonoUs = Number(f.meta.startMonoUs ?? 0);
        w.addScrape(scraper.samples().map((s) => ({ ...s, tUs: s.tUs - startMonoUs })));
        w.setMeta('scrape', { urls: input.scrape!.urls, intervalMs: input.scrape!.intervalMs, health: scraper.health() });
      }
      w.close();
    });
    post({ type: 'finished', summary, errorDetails, runFileError: writeError });
  } catch (err) {
    post({ type: 'error', error: toErrorMessage(err) });
  }
}

parent.on('message', (m: ToResults) => {
  if (m.type === 'attach') onSender(m.port);
  else if (m.type === 'finish') {
    finish = m;
    void maybeFinish();
  }
});
post({ type: 'started' });
