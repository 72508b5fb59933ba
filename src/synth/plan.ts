import { synthesizeRequest } from '../protocols/index.ts';
import type { PlannedRequest } from '../replay/engine.ts';
import type { Rng } from '../rng.ts';
import type { ScheduledRecord } from '../workload/warp.ts';

/**
 * Turns scheduled arrivals into requests ready to send, synthesizing each body from its recorded shape. Each request
 * draws from its own child stream (`synth/<index>`), fingerprint- and block-keyed content from one shared stream (`shared`), so bodies are the
 * same for the same seed whatever order or subset is synthesized. Lazy: synthesizes one request per pull.
 */
export function* synthesizeArrivals(arrivals: Iterable<ScheduledRecord>, rng: Rng): Generator<PlannedRequest> {
  const synth = rng.child('synth');
  const shared = rng.child('shared');
  for (const a of arrivals) {
    const r = a.record;
    const s = synthesizeRequest(r, synth.child(String(a.index)), shared);
    yield {
      index: a.index,
      traceSeq: r.seq,
      scheduledUs: a.scheduledUs,
      method: s.method,
      path: s.path,
      headers: s.headers,
      body: s.body,
      expectedOutputTokens: r.outputTokens,
      promptTokens: r.promptTokens,
      llm: r.protocol === 'openai-chat' || r.protocol === 'openai-completions',
    };
  }
}
