import * as hdr from 'hdr-histogram-js';
import { completed, type RequestResult } from '../results/types.ts';
import { meetsSlo, hasRequestObjectives, type Slo } from './slo.ts';
import type { Percentiles, RunSummary } from './summary.ts';

/** HDR histogram range: 1 µs to 24 h, 3 significant digits (0.1 % resolution). */
const HDR_OPTIONS = { lowestDiscernibleValue: 1, highestTrackableValue: 24 * 3_600_000_000, numberOfSignificantValueDigits: 3 } as const;

/** Version of {@link EncodedMetrics} (stored in run files of format 5 on). */
export const METRICS_ENCODING_VERSION = 1;

/**
 * One quantity's values: an HDR histogram of integer µs (or ×1000 for plain numbers) plus the exact maximum, since a
 * histogram reports a bucket's upper edge. Merging two adds their counts exactly.
 */
export class Quantity {
  private constructor(private readonly h: hdr.Histogram, private maxValue: number) {}

  static empty(): Quantity {
    return new Quantity(hdr.build(HDR_OPTIONS), 0);
  }

  get count(): number {
    return this.h.totalCount;
  }

  record(v: number): void {
    const x = Math.max(0, Math.round(v));
    this.h.recordValue(x);
    if (x > this.maxValue) this.maxValue = x;
  }

  merge(o: Quantity): void {
    if (o.count === 0) return;
    this.h.add(o.h);
    if (o.maxValue > this.maxValue) this.maxValue = o.maxValue;
  }

  /** The value at percentile `q` (0–100), never above the exact maximum; null when empty. */
  at(q: number): number | null {
    if (this.count === 0) return null;
    return Math.min(this.h.getValueAtPercentile(q), this.maxValue);
  }

  /** p50 … max in ms (values recorded in µs; 3 decimals), or nulls when empty. */
  percentilesMs(): Percentiles {
    const ms = (q: number) => Math.round(this.at(q)!) / 1000;
    if (this.count === 0) return { p50: null, p90: null, p95: null, p99: null, p999: null, max: null, count: 0 };
    return { p50: ms(50), p90: ms(90), p95: ms(95), p99: ms(99), p999: ms(99.9), max: Math.round(this.maxValue) / 1000, count: this.count };
  }

  encode(): { hdr: string; max: number } {
    return { hdr: hdr.encodeIntoCompressedBase64(this.h), max: this.maxValue };
  }

  static decode(e: { hdr: string; max: number }): Quantity {
    const q = Quantity.empty();
    if (e.hdr) q.h.add(hdr.decodeFromCompressedBase64(e.hdr));
    q.maxValue = e.max;
    return q;
  }
}

/** The quantities a run's summary reports as percentiles. µs except `outputTokensPerSecond` (tokens/s ×1000). */
export const QUANTITIES = ['latency', 'latencyFromScheduled', 'ttft', 'ttftFromScheduled', 'ttfb', 'lateness', 'itl', 'tpot', 'outputTokensPerSecond'] as const;
export type QuantityName = (typeof QUANTITIES)[number];

/** Counts and time bounds of a run (integer µs on the run's clock), all mergeable by sum, min and max. */
interface Counts {
  requests: number; attempted: number; sent: number; completed: number; capDelayed: number; recordedFailures: number;
  shorterThanRecorded: number; outputTokens: number; eligible: number; eligibleFailed: number; goodputMet: number;
  scheduledMinUs: number; scheduledMaxUs: number; sentMinUs: number; sentMaxUs: number; endMaxUs: number;
}

/** A {@link Metrics} as JSON (`metrics` in a run file's meta): counts, and each histogram compressed (HdrHistogram's base64 encoding). */
export interface EncodedMetrics {
  version: number;
  slo: string | null;
  counts: Counts;
  errorsByKind: Record<string, number>;
  statuses: Record<string, number>;
  quantities: Record<string, { hdr: string; max: number }>;
  serverTiming: Record<string, { hdr: string; max: number }>;
}

const zeroCounts = (): Counts => ({
  requests: 0, attempted: 0, sent: 0, completed: 0, capDelayed: 0, recordedFailures: 0, shorterThanRecorded: 0, outputTokens: 0,
  eligible: 0, eligibleFailed: 0, goodputMet: 0,
  scheduledMinUs: Infinity, scheduledMaxUs: -Infinity, sentMinUs: Infinity, sentMaxUs: -Infinity, endMaxUs: -Infinity,
});
const round3 = (x: number) => Math.round(x * 1000) / 1000;
const bump = (m: Record<string, number>, k: string, n = 1) => { m[k] = (m[k] ?? 0) + n; };

/**
 * A run's metrics, one result at a time (`add`), as vegeta's `Metrics.Add`: counts and HDR histograms that merge
 * exactly (`merge`: shards or repeats of a run), serialize (`encode`/`decode`) and give the {@link RunSummary}. With
 * an SLO of per-request objectives it counts goodput too (the SLO must be the same for metrics that are merged).
 */
export class Metrics {
  private c = zeroCounts();
  private readonly q = new Map<QuantityName, Quantity>(QUANTITIES.map((n) => [n, Quantity.empty()]));
  private readonly serverTiming = new Map<string, Quantity>();
  private readonly errorsByKind: Record<string, number> = {};
  private readonly statuses: Record<string, number> = {};

  constructor(readonly slo: Slo | null = null) {}

  quantity(name: QuantityName): Quantity {
    return this.q.get(name)!;
  }

  add(r: RequestResult): void {
    const c = this.c;
    c.requests++;
    if (r.sentUs !== null || (r.dispatchedUs ?? null) !== null) c.attempted++;
    if (r.status !== null) bump(this.statuses, String(r.status));
    const kind = r.errorKind ?? (r.status === null ? 'no_response' : r.status >= 400 ? `http_${r.status}` : null);
    if (kind) bump(this.errorsByKind, kind);
    c.scheduledMinUs = Math.min(c.scheduledMinUs, r.scheduledUs);
    c.scheduledMaxUs = Math.max(c.scheduledMaxUs, r.scheduledUs);
    if (r.endUs !== null) c.endMaxUs = Math.max(c.endMaxUs, r.endUs);
    if (r.capDelayed) c.capDelayed++;
    const ok = completed(r);
    if (r.recordedFailed) c.recordedFailures++;
    else {
      c.eligible++;
      if (!ok) c.eligibleFailed++;
      else if (this.slo && hasRequestObjectives(this.slo) && meetsSlo(r, this.slo)) c.goodputMet++;
    }
    if (r.sentUs !== null) {
      c.sent++;
      c.sentMinUs = Math.min(c.sentMinUs, r.sentUs);
      c.sentMaxUs = Math.max(c.sentMaxUs, r.sentUs);
      this.quantity('lateness').record(r.sentUs - r.scheduledUs);
    }
    if (ok) this.addCompleted(r);
  }

  private addCompleted(r: RequestResult): void {
    const c = this.c;
    const sent = r.sentUs!;
    const end = r.endUs!;
    c.completed++;
    c.outputTokens += r.outputTokens ?? 0;
    if (r.expectedOutputTokens !== null && r.outputTokens !== null && r.outputTokens < r.expectedOutputTokens) c.shorterThanRecorded++;
    this.quantity('latency').record(end - sent);
    this.quantity('latencyFromScheduled').record(end - r.scheduledUs);
    if (r.ttfbAtUs !== null) this.quantity('ttfb').record(r.ttfbAtUs - sent);
    if (r.outputTokens !== null && end > sent) this.quantity('outputTokensPerSecond').record(((r.outputTokens * 1e6) / (end - sent)) * 1000);
    for (const [k, v] of Object.entries(r.serverTiming ?? {})) {
      if (!this.serverTiming.has(k)) this.serverTiming.set(k, Quantity.empty());
      this.serverTiming.get(k)!.record(v * 1000);
    }
    if (!r.streamed || r.ttftAtUs === null) return;
    this.quantity('ttft').record(r.ttftAtUs - sent);
    this.quantity('ttftFromScheduled').record(r.ttftAtUs - r.scheduledUs);
    for (const g of r.itlUs ?? []) this.quantity('itl').record(g);
    if (r.outputTokens !== null && r.outputTokens > 1) this.quantity('tpot').record((end - r.ttftAtUs) / (r.outputTokens - 1));
  }

  /**
   * Adds another run's metrics (shards of one workload on one clock, or repeats): counts sum, bounds widen, histograms
   * add exactly.
   * @throws Error when the two were counted against different SLOs (their goodput cannot be added).
   */
  merge(o: Metrics): void {
    if ((this.slo?.text ?? null) !== (o.slo?.text ?? null)) throw new Error(`cannot merge metrics judged against different SLOs ('${this.slo?.text ?? 'none'}' and '${o.slo?.text ?? 'none'}')`);
    const a = this.c;
    const b = o.c;
    for (const k of Object.keys(a) as Array<keyof Counts>) {
      a[k] = k.endsWith('MinUs') ? Math.min(a[k], b[k]) : k.endsWith('MaxUs') ? Math.max(a[k], b[k]) : a[k] + b[k];
    }
    for (const n of QUANTITIES) this.quantity(n).merge(o.quantity(n));
    for (const [k, v] of o.serverTiming) {
      if (!this.serverTiming.has(k)) this.serverTiming.set(k, Quantity.empty());
      this.serverTiming.get(k)!.merge(v);
    }
    for (const [k, n] of Object.entries(o.errorsByKind)) bump(this.errorsByKind, k, n);
    for (const [k, n] of Object.entries(o.statuses)) bump(this.statuses, k, n);
  }

  /** Requests not failed when recorded, and those of them that did not complete (error rate's numerator). */
  eligibility(): { eligible: number; failed: number } {
    return { eligible: this.c.eligible, failed: this.c.eligibleFailed };
  }

  /** The summary's figures (no objectives, labels or health: `summarize` adds those). */
  summary(): RunSummary {
    const c = this.c;
    const rate = (n: number, lo: number, hi: number): number | null => (n >= 2 && hi > lo ? round3(((n - 1) * 1e6) / (hi - lo)) : null);
    const durationUs = Number.isFinite(c.sentMinUs) && Number.isFinite(c.endMaxUs) ? c.endMaxUs - c.sentMinUs : 0;
    const p = (n: QuantityName) => this.quantity(n).percentilesMs();
    const s: RunSummary = {
      requests: c.requests, attempted: c.attempted, sent: c.sent, completed: c.completed, errors: c.requests - c.completed,
      errorsByKind: { ...this.errorsByKind }, statuses: { ...this.statuses },
      targetRate: rate(c.requests, c.scheduledMinUs, c.scheduledMaxUs), achievedRate: rate(c.sent, c.sentMinUs, c.sentMaxUs),
      throughput: durationUs > 0 ? round3((c.completed * 1e6) / durationUs) : null, durationS: round3(durationUs / 1e6),
      latencyMs: p('latency'), latencyFromScheduledMs: p('latencyFromScheduled'), ttftMs: p('ttft'), ttftFromScheduledMs: p('ttftFromScheduled'),
      ttfbMs: p('ttfb'), latenessMs: p('lateness'), itlMs: p('itl'), tpotMs: p('tpot'), outputTokensPerSecond: p('outputTokensPerSecond'),
      totalOutputTokensPerSecond: durationUs > 0 ? round3((c.outputTokens * 1e6) / durationUs) : null,
      capDelayed: c.capDelayed, recordedFailures: c.recordedFailures, shorterThanRecorded: c.shorterThanRecorded, outputTokens: c.outputTokens,
    };
    if (this.serverTiming.size > 0) s.serverTimingMs = Object.fromEntries([...this.serverTiming].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, v.percentilesMs()]));
    if (this.slo && hasRequestObjectives(this.slo)) {
      s.goodput = { slo: this.slo.text, met: c.goodputMet, eligible: c.eligible, fraction: c.eligible > 0 ? round3(c.goodputMet / c.eligible) : 0, reqPerS: s.durationS > 0 ? round3(c.goodputMet / s.durationS) : null };
    }
    return s;
  }

  encode(): EncodedMetrics {
    const enc = (m: Map<string, Quantity>) => Object.fromEntries([...m].filter(([, v]) => v.count > 0).map(([k, v]) => [k, v.encode()]));
    const counts = Object.fromEntries(Object.entries(this.c).map(([k, v]) => [k, Number.isFinite(v) ? v : null])) as unknown as Counts;
    return { version: METRICS_ENCODING_VERSION, slo: this.slo?.text ?? null, counts, errorsByKind: { ...this.errorsByKind }, statuses: { ...this.statuses }, quantities: enc(this.q), serverTiming: enc(this.serverTiming) };
  }

  /**
   * Reads {@link encode}'s output back (`slo` must be the SLO the text names, parsed).
   * @throws Error naming the problem when it is not an encoding this version reads.
   */
  static decode(e: EncodedMetrics, slo: Slo | null): Metrics {
    if (!e || e.version !== METRICS_ENCODING_VERSION) throw new Error(`metrics encoding version ${JSON.stringify(e?.version)} is not one this tracewarp reads (${METRICS_ENCODING_VERSION})`);
    const m = new Metrics(slo);
    const zero = zeroCounts();
    for (const k of Object.keys(zero) as Array<keyof Counts>) {
      const v = (e.counts as unknown as Record<string, number | null>)[k];
      m.c[k] = typeof v === 'number' ? v : zero[k];
    }
    for (const [k, v] of Object.entries(e.quantities)) if ((QUANTITIES as readonly string[]).includes(k)) m.q.set(k as QuantityName, Quantity.decode(v));
    for (const [k, v] of Object.entries(e.serverTiming)) m.serverTiming.set(k, Quantity.decode(v));
    Object.assign(m.errorsByKind, e.errorsByKind);
    Object.assign(m.statuses, e.statuses);
    return m;
  }
}
