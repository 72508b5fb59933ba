import type { Fingerprinter } from './fingerprint.ts';

/**
 * `Server-Timing` metric names kept as they are: the phases servers, proxies and inference runtimes report under
 * common names (W3C Server Timing examples; CDNs' `cdn-cache`, `edge`, `origin`; LLM servers' queue, prefill and
 * decode). Any other name can be the server's own wording for a customer, a tenant or a host, and is fingerprinted.
 */
export const SERVER_TIMING_NAMES: ReadonlySet<string> = new Set([
  'total', 'app', 'db', 'cache', 'cdn-cache', 'edge', 'origin', 'upstream', 'proxy', 'network', 'dns', 'tls', 'connect',
  'auth', 'queue', 'wait', 'schedule', 'batch', 'prefill', 'decode', 'inference', 'infer', 'compute', 'model', 'gpu',
  'cpu', 'tokenize', 'detokenize', 'preprocess', 'postprocess', 'ttft', 'miss', 'hit', 'render', 'server', 'backend',
]);

/**
 * A recorded `Server-Timing` with its names anonymized: names in {@link SERVER_TIMING_NAMES} (any case) stay, others
 * become `st-<fingerprint>` (keyed, so equal names stay equal within a trace and a replay's report can still group
 * them), or `st-<n>` in order of appearance without a key.
 */
export function anonymizeServerTiming(timing: Record<string, number> | null, fp: Fingerprinter | null | undefined): Record<string, number> | null {
  if (!timing) return null;
  const out: Record<string, number> = {};
  let n = 0;
  for (const [name, dur] of Object.entries(timing)) {
    // A duration, in ms, of at most a day, to the µs: a longer or finer number is not a phase's time but someone's.
    if (!Number.isFinite(dur) || dur < 0 || dur > 86_400_000) continue;
    const lower = name.toLowerCase();
    out[SERVER_TIMING_NAMES.has(lower) ? lower : fp ? `st-${fp.name(name)}` : `st-${n++}`] = Math.round(dur * 1000) / 1000;
  }
  return Object.keys(out).length > 0 ? out : null;
}
