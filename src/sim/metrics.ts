import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PrefixCache } from './prefix-cache.ts';
import type { Engine } from './engine.ts';

/** The KV-cache budget `vllm:kv_cache_usage_perc` is figured against, tokens (a 24 GiB GPU serving an 8B model holds about this many). */
export const DEFAULT_KV_CACHE_TOKENS = 262_144;

/** vLLM's TTFT histogram buckets, seconds (`vllm/engine/metrics.py`). */
const TTFT_BUCKETS_S = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];

/**
 * The simulator's Prometheus metrics under vLLM's names (v1 engine), read from its batching engine when scraped:
 * `vllm:num_requests_running` and `vllm:num_requests_waiting` (gauges), `vllm:kv_cache_usage_perc` (tokens the
 * running sequences hold over `kvCacheTokens`, 0–1), `vllm:num_preemptions_total` (sequences preempted by a full, bounded KV cache),
 * `vllm:prompt_tokens_total`, `vllm:generation_tokens_total`, `vllm:request_success_total`, with a prefix cache
 * `vllm:prefix_cache_queries_total` and `vllm:prefix_cache_hits_total` (tokens; vLLM v1's names) (counters) and
 * `vllm:time_to_first_token_seconds` (histogram). Labelled `model_name` as vLLM labels them. Uses `prom-client` with
 * a registry of its own (not the process-global one), so several sims in one process do not clash.
 */
export function simMetrics(engine: Engine, model: string, kvCacheTokens = DEFAULT_KV_CACHE_TOKENS, prefixCache?: PrefixCache): { contentType: string; text: () => Promise<string> } {
  const registry = new Registry();
  const labels = { model_name: model };
  const labelNames = ['model_name'] as const;
  const gauge = (name: string, help: string, read: () => number) => new Gauge({ name, help, labelNames, registers: [registry], collect() { this.set(labels, read()); } });
  gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', () => engine.load().running);
  gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', () => engine.load().waiting);
  gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', () => Math.min(1, engine.kvTokens() / kvCacheTokens));
  const counter = (name: string, help: string, read: () => number) => {
    let had = 0;
    return new Counter({
      name, help, labelNames, registers: [registry],
      collect() {
        // prom-client counters only go up by inc(): bring it to the engine's total (0 is exposed too).
        const now = read();
        this.inc(labels, now - had);
        had = now;
      },
    });
  };
  counter('vllm:num_preemptions_total', 'Cumulative number of preemptions from the engine.', () => engine.counters.preemptions);
  counter('vllm:prompt_tokens_total', 'Number of prefill tokens processed.', () => engine.counters.promptTokens);
  counter('vllm:generation_tokens_total', 'Number of generation tokens processed.', () => engine.counters.generationTokens);
  counter('vllm:request_success_total', 'Count of successfully processed requests.', () => engine.counters.finished);
  if (prefixCache) {
    counter('vllm:prefix_cache_queries_total', 'Prefix cache queries, in terms of number of queried tokens.', () => prefixCache.queries);
    counter('vllm:prefix_cache_hits_total', 'Prefix cache hits, in terms of number of cached tokens.', () => prefixCache.hits);
  }
  const ttft = new Histogram({ name: 'vllm:time_to_first_token_seconds', help: 'Histogram of time to first token in seconds.', labelNames, buckets: TTFT_BUCKETS_S, registers: [registry] });
  engine.onFirstToken = (s) => ttft.observe(labels, s);
  return { contentType: registry.contentType, text: () => registry.metrics() };
}
