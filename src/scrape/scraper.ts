import { request } from 'undici';
import { monoUs } from '../units.ts';
import { MAX_SCRAPE_BYTES, parseMetricsText } from './prometheus.ts';

/** How long one scrape may take before it counts as failed, ms. */
export const SCRAPE_TIMEOUT_MS = 2000;
/** Most samples a scraper keeps over a run (about 1,000 series every 500 ms for 15 min); later ones are counted, not kept. */
export const MAX_SCRAPE_SAMPLES = 2_000_000;

/** One scraped value: `tUs` is the monotonic µs (`units.ts` monoUs) when the answer had arrived. */
export interface ScrapeSample {
  tUs: number;
  source: string;
  name: string;
  type: string;
  labels: Record<string, string>;
  value: number;
}

/** How scraping one endpoint went. */
export interface ScrapeHealth {
  source: string;
  scrapes: number;
  failures: number;
  lastError: string | null;
  /** Series over the per-scrape cap, and samples over the run's cap, not kept. */
  droppedSeries: number;
}

/** Options of {@link Scraper}. */
export interface ScraperOptions {
  urls: readonly string[];
  intervalMs: number;
  /** The clock, monotonic µs. Default `monoUs`. */
  nowUs?: () => number;
  timeoutMs?: number;
}

/**
 * Polls Prometheus text endpoints (a target's `/metrics`) every `intervalMs` on absolute times (not "sleep the gap"),
 * one scrape per URL at a time; a scrape still running when the next is due makes that one skip. A failed scrape
 * (refused, timed out, not 200, not Prometheus text) is counted in {@link health} and never thrown: scraping never
 * stops or slows a replay. Runs in the replay's results thread, off the sending loop.
 */
export class Scraper {
  private readonly kept: ScrapeSample[] = [];
  private readonly state = new Map<string, ScrapeHealth & { busy: Promise<void> | null }>();
  private timer: NodeJS.Timeout | null = null;
  private startUs = 0;
  private tick = 0;
  private readonly nowUs: () => number;

  constructor(private readonly opts: ScraperOptions) {
    this.nowUs = opts.nowUs ?? monoUs;
    for (const source of opts.urls) this.state.set(source, { source, scrapes: 0, failures: 0, lastError: null, droppedSeries: 0, busy: null });
  }

  /** Scrapes every URL now, then every `intervalMs`. */
  start(): void {
    this.startUs = this.nowUs();
    this.due();
  }

  private due(): void {
    for (const s of this.state.values()) if (!s.busy) s.busy = this.scrape(s).finally(() => (s.busy = null));
    this.tick++;
    const nextUs = this.startUs + this.tick * this.opts.intervalMs * 1000;
    this.timer = setTimeout(() => this.due(), Math.max(0, (nextUs - this.nowUs()) / 1000));
  }

  private async scrape(s: ScrapeHealth): Promise<void> {
    s.scrapes++;
    try {
      const text = await fetchMetricsText(s.source, this.opts.timeoutMs ?? SCRAPE_TIMEOUT_MS);
      const tUs = this.nowUs();
      const { families, dropped } = parseMetricsText(text);
      s.droppedSeries += dropped;
      for (const f of families) {
        for (const x of f.samples) {
          if (this.kept.length >= MAX_SCRAPE_SAMPLES) s.droppedSeries++;
          else this.kept.push({ tUs, source: s.source, name: x.name, type: f.type, labels: x.labels, value: x.value });
        }
      }
    } catch (err) {
      s.failures++;
      s.lastError = (err as Error).message;
    }
  }

  /** Stops polling and waits for the scrapes in flight. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.all([...this.state.values()].map((s) => s.busy));
  }

  samples(): ScrapeSample[] {
    return this.kept;
  }

  health(): ScrapeHealth[] {
    return [...this.state.values()].map(({ busy: _, ...h }) => h);
  }
}

/**
 * GETs a Prometheus text endpoint, reading at most {@link MAX_SCRAPE_BYTES} (a target's answer is untrusted input).
 * @throws Error naming the problem: over the cap, a status other than 200, a timeout, a transport error.
 */
export async function fetchMetricsText(url: string, timeoutMs: number = SCRAPE_TIMEOUT_MS): Promise<string> {
  const res = await request(url, { method: 'GET', headers: { accept: 'text/plain; version=0.0.4' }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const c of res.body) {
    bytes += (c as Buffer).length;
    if (bytes > MAX_SCRAPE_BYTES) {
      res.body.destroy();
      throw new Error(`answer over the ${MAX_SCRAPE_BYTES}-byte cap`);
    }
    chunks.push(c as Buffer);
  }
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
  return Buffer.concat(chunks).toString('utf8');
}
