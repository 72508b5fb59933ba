import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { TracewarpError } from '../errors.ts';

/** Largest metrics answer read, bytes: a target's text is untrusted input (vLLM's is about 30 KiB). */
export const MAX_SCRAPE_BYTES = 4 * 1024 * 1024;
/** Most series kept from one scrape; the rest are dropped and counted. */
export const MAX_SERIES_PER_SCRAPE = 2000;

/**
 * Names of a server's queue depth (requests waiting for a batch slot): vLLM's `vllm:num_requests_waiting`, TGI's
 * `tgi_queue_size`, Triton's `nv_inference_pending_request_count`.
 */
export const QUEUE_DEPTH_METRIC = /num_requests_waiting|queue_size|pending_request_count/;
/** Names of a server's running requests: vLLM's `vllm:num_requests_running`, TGI's `tgi_batch_current_size`. */
export const RUNNING_METRIC = /num_requests_running|batch_current_size/;

/** A sample value as the text format writes one: a Go float, `NaN`, `+Inf` or `-Inf`. */
const FLOAT = /^(?:[+-]?(?:\d+\.?\d*(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?|Inf)|NaN)$/i;

/** One sample of a scraped family. */
export interface ScrapedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A metric family as scraped: gauges, counters and untyped samples as exposed; histograms and summaries as `_count` and `_sum`. */
export interface ScrapedFamily {
  name: string;
  type: 'gauge' | 'counter' | 'histogram' | 'summary' | 'untyped';
  samples: ScrapedSample[];
}

/**
 * The text with each histogram's and summary's `_count` and `_sum` lines left as plain series and the rest of those
 * families (their `# TYPE`/`# HELP`, buckets, quantiles, `_created`) taken out: the library folds every label set
 * of a histogram into one (vLLM labels all of its), but reads plain series with their labels. Also ends the text
 * with a newline (the library drops a last line without one). Returns the names of the `_count`/`_sum` series.
 */
function withPlainCounts(text: string): { text: string; cumulative: Set<string> } {
  const lines = text.split('\n');
  const folded = new Set<string>();
  for (const l of lines) {
    const m = /^#\s*TYPE\s+(\S+)\s+(histogram|summary)\s*$/i.exec(l);
    if (m) folded.add(m[1]!);
  }
  if (folded.size === 0) return { text: text.endsWith('\n') ? text : `${text}\n`, cumulative: new Set() };
  const cumulative = new Set<string>();
  const kept = lines.filter((l) => {
    const meta = /^#\s*(?:TYPE|HELP)\s+(\S+)/.exec(l);
    if (meta) return !folded.has(meta[1]!);
    const name = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(l)?.[1];
    if (!name) return true;
    for (const f of folded) {
      if (name === `${f}_count` || name === `${f}_sum`) {
        cumulative.add(name);
        return true;
      }
      if (name === f || name === `${f}_bucket` || name === `${f}_created`) return false;
    }
    return true;
  });
  return { text: `${kept.join('\n')}\n`, cumulative };
}

/**
 * Parses Prometheus text exposition format (version 0.0.4) with the `parse-prometheus-text-format` library. Buckets
 * and quantiles are left out: a histogram or summary gives its `_count` and `_sum` series (type `counter`, with their
 * labels); NaN and ±Inf values are dropped; at most {@link MAX_SERIES_PER_SCRAPE} samples are kept (`dropped`
 * counts the rest).
 * @throws TracewarpError `TW_SCRAPE` when the text is larger than {@link MAX_SCRAPE_BYTES}, or has sample lines of
 *   which none parses as a metric.
 */
export function parseMetricsText(text: string): { families: ScrapedFamily[]; dropped: number } {
  if (Buffer.byteLength(text) > MAX_SCRAPE_BYTES) throw new TracewarpError('TW_SCRAPE', `metrics text of ${Buffer.byteLength(text)} bytes is over the ${MAX_SCRAPE_BYTES}-byte cap`);
  const plain = withPlainCounts(text);
  let parsed: ReturnType<typeof parsePrometheusTextFormat>;
  try {
    parsed = parsePrometheusTextFormat(plain.text);
  } catch (err) {
    throw new TracewarpError('TW_SCRAPE', `not Prometheus text: ${(err as Error).message}`, { cause: err });
  }
  const hasSamples = text.split('\n').some((l) => l.trim() !== '' && !l.startsWith('#'));
  if (hasSamples && parsed.length === 0) throw new TracewarpError('TW_SCRAPE', `not Prometheus text: no metric in ${text.split('\n').length} lines (first: '${text.trim().split('\n')[0]!.slice(0, 60)}')`);
  // A line the library cannot read as a sample becomes a family without a value: HTML, JSON, an error page.
  if (hasSamples && parsed.every((f) => f.metrics.every((m) => !FLOAT.test(m.value ?? '')))) throw new TracewarpError('TW_SCRAPE', `not Prometheus text: no sample with a number (first line: '${text.trim().split('\n')[0]!.slice(0, 60)}')`);
  let kept = 0;
  let dropped = 0;
  const families: ScrapedFamily[] = [];
  for (const f of parsed) {
    const type = plain.cumulative.has(f.name) ? 'counter' : (f.type.toLowerCase() as ScrapedFamily['type']);
    const samples: ScrapedSample[] = [];
    for (const m of f.metrics) {
      const value = Number(m.value);
      if (m.value === undefined || !Number.isFinite(value)) continue;
      if (kept >= MAX_SERIES_PER_SCRAPE) {
        dropped++;
        continue;
      }
      kept++;
      samples.push({ name: f.name, labels: { ...m.labels }, value });
    }
    families.push({ name: f.name, type, samples });
  }
  return { families, dropped };
}
