import { parseMetricsText, QUEUE_DEPTH_METRIC, RUNNING_METRIC } from '../scrape/prometheus.ts';
import { fetchMetricsText } from '../scrape/scraper.ts';

/** How often the drain polls the target's metrics, ms. */
export const DRAIN_POLL_MS = 250;

/** The target's queue depth plus running requests on one endpoint now (null when it cannot be read). */
async function busy(url: string): Promise<number | null> {
  try {
    const text = await fetchMetricsText(url);
    let n = 0;
    for (const f of parseMetricsText(text).families) {
      if (!QUEUE_DEPTH_METRIC.test(f.name) && !RUNNING_METRIC.test(f.name)) continue;
      for (const s of f.samples) n += s.value;
    }
    return n;
  } catch {
    return null;
  }
}

/**
 * Waits until every endpoint reports an empty queue and nothing running (vLLM's `num_requests_waiting` and
 * `num_requests_running`, TGI's queue and batch size, Triton's pending count), or `timeoutMs` passed. An endpoint
 * that cannot be read does not hold the sweep. Returns the time waited, ms.
 */
export async function drain(urls: readonly string[], timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const counts = await Promise.all(urls.map(busy));
    if (counts.every((c) => c === null || c === 0) || performance.now() - t0 >= timeoutMs) return Math.round(performance.now() - t0);
    await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
  }
}
